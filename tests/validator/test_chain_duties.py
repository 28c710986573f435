"""``validator.chain_duties`` on a real anvil: commit/reveal timing, rate limit, permits,
restarts between commit and reveal, and the epoch keeper; plus the pure planner."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from pathlib import Path

import pytest
from eth_account.signers.local import LocalAccount
from hypothesis import given
from hypothesis import strategies as st
from web3 import Web3

from chain.metagraph import HyperParam
from chain.node import mine, revert, snapshot
from chain.weights import WeightSet, normalize, prepare_weights, stored_row
from latent.gas.yuma import Subnet, deploy_subnet
from validator.chain_duties import (
    EpochKeeper,
    WeightChainView,
    WeightSetter,
    pad_to_min_weights,
    plan_weights,
)
from validator.state import CommitRecord, ValidatorState

TOKEN = 10**18
WEIGHTS = {1: 0.5, 2: 0.3, 3: 0.2}


@pytest.fixture(scope="module")
def subnet(w3: Web3, accounts: list[LocalAccount]) -> Iterator[Subnet]:
    """Token, metagraph (tempo 10, reveal period 1) and epoch; uid 0 is a staked validator
    with a permit, uids 1-3 are miners. Reverted at the end of the module."""
    snap = snapshot(w3)
    subnet = deploy_subnet(w3, accounts[0], accounts[1])
    subnet.register(4)
    subnet.stake(0, 100 * TOKEN)
    subnet.metagraph.update_permits(accounts[0])
    yield subnet
    revert(w3, snap)


@pytest.fixture
def chain(subnet: Subnet) -> Iterator[Subnet]:
    snap = snapshot(subnet.w3)
    yield subnet
    revert(subnet.w3, snap)


def head(subnet: Subnet) -> int:
    return int(subnet.w3.eth.block_number)


def setter_for(subnet: Subnet, uid: int, path: Path | None = None) -> WeightSetter:
    state = ValidatorState.load(path) if path is not None else ValidatorState()
    return WeightSetter(subnet.metagraph, subnet.hotkeys[uid], state, state_path=path)


def advance_to_action(subnet: Subnet, setter: WeightSetter, limit: int = 80) -> str:
    """Mine until the setter has something to do; returns the action."""
    for _ in range(limit):
        block = head(subnet)
        action = setter.due_action(block)
        if action is not None:
            return action
        nxt = setter.next_action_block(block)
        assert nxt > block
        mine(subnet.w3, nxt - block)
    raise AssertionError("no action became due")


def expected_row(weights: Mapping[int, float]) -> list[int]:
    uids = sorted(weights)
    return stored_row(
        prepare_weights(dict(zip(uids, normalize([weights[u] for u in uids]), strict=True)))
    )


def test_commit_then_reveal_in_the_next_window_stores_the_u16_row(
    chain: Subnet, tmp_path: Path
) -> None:
    setter = setter_for(chain, 0, tmp_path / "state.json")
    tempo = chain.metagraph.hyperparameters().tempo
    assert setter.due_action(head(chain)) == "commit"
    receipt = setter.step(head(chain), WEIGHTS)
    assert receipt is not None and setter.last_action == "commit"
    commit_block = int(receipt["blockNumber"])
    commit = setter.state.commit
    assert commit is not None and commit.block == commit_block
    assert commit.reveal_window == commit_block // tempo + 1
    assert ValidatorState.load(tmp_path / "state.json").commit == commit  # persisted
    # Nothing to do until the reveal window: next_action_block says when (no busy-waiting).
    block = head(chain)
    assert setter.due_action(block) is None
    assert setter.next_action_block(block) == commit.reveal_window * tempo - 1
    assert setter.step(block, WEIGHTS) is None and "waiting to reveal" in setter.last_reason

    assert advance_to_action(chain, setter) == "reveal"
    receipt = setter.step(head(chain), WEIGHTS)
    assert receipt is not None and setter.last_action == "reveal"
    assert int(receipt["blockNumber"]) // tempo == commit.reveal_window
    assert chain.metagraph.weights(0) == expected_row(WEIGHTS)
    assert chain.metagraph.weights(0)[1] == 65_535
    assert setter.state.commit is None
    assert setter.state.last_reveal_block == int(receipt["blockNumber"])
    # Steady state: the next commit is due right away (one commit and one reveal per window).
    assert setter.due_action(head(chain)) == "commit"


def test_an_expired_commit_is_committed_again(chain: Subnet) -> None:
    setter = setter_for(chain, 0)
    tempo = chain.metagraph.hyperparameters().tempo
    first = setter.step(head(chain), WEIGHTS)
    assert first is not None
    window = int(first["blockNumber"]) // tempo + 1
    mine(chain.w3, (window + 1) * tempo - head(chain))  # past the reveal window
    block = head(chain)
    assert setter.due_action(block) == "commit"
    second = setter.step(block, {1: 1.0, 2: 1.0})
    assert second is not None and setter.last_action == "commit"
    assert "expired" in setter.last_reason
    assert advance_to_action(chain, setter) == "reveal"
    assert setter.step(head(chain), {}) is not None
    assert chain.metagraph.weights(0) == expected_row({1: 1.0, 2: 1.0})


def test_the_rate_limit_is_respected(chain: Subnet) -> None:
    chain.set_params({HyperParam.WEIGHTS_RATE_LIMIT: 25})
    setter = setter_for(chain, 0)
    reveals = []
    for _ in range(2):
        while True:
            action = advance_to_action(chain, setter)
            receipt = setter.step(head(chain), WEIGHTS)
            assert receipt is not None, setter.last_reason  # never a refused transaction
            if action == "reveal":
                reveals.append(int(receipt["blockNumber"]))
                break
    assert reveals[1] - reveals[0] >= 25
    # Right after a reveal the next commit waits for the window whose reveal is allowed.
    block = head(chain)
    assert setter.due_action(block) is None and "rate limit" in setter.plan(block).reason
    assert (setter.next_action_block(block) + 1) // 10 + 1 >= (reveals[1] + 25) // 10


def test_no_permit_means_no_transaction(chain: Subnet) -> None:
    setter = setter_for(chain, 2)  # a miner: registered, no stake, no permit
    hotkey = chain.hotkeys[2].address
    nonce = chain.w3.eth.get_transaction_count(hotkey)
    block = head(chain)
    assert setter.due_action(block) is None
    assert setter.next_action_block(block) > block
    assert setter.step(block, WEIGHTS) is None
    assert "permit" in setter.last_reason
    assert chain.w3.eth.get_transaction_count(hotkey) == nonce


@pytest.mark.parametrize("receipt_lost", [False, True])
def test_a_validator_killed_between_commit_and_reveal_still_reveals(
    chain: Subnet, tmp_path: Path, receipt_lost: bool
) -> None:
    path = tmp_path / "state.json"
    first = setter_for(chain, 0, path)
    assert first.step(head(chain), WEIGHTS) is not None
    del first  # killed
    if receipt_lost:  # killed after sending, before the receipt was recorded
        state = ValidatorState.load(path)
        assert state.commit is not None
        state.commit = CommitRecord(**{**state.commit.__dict__, "block": None})
        state.save(path)
    restarted = setter_for(chain, 0, path)
    assert restarted.state.commit is not None
    assert advance_to_action(chain, restarted) == "reveal"
    assert restarted.step(head(chain), {}) is not None
    assert chain.metagraph.weights(0) == expected_row(WEIGHTS)
    assert ValidatorState.load(path).commit is None


def test_too_few_miners_are_padded_to_min_allowed_weights(chain: Subnet) -> None:
    chain.set_params({HyperParam.MIN_ALLOWED_WEIGHTS: 3})
    setter = setter_for(chain, 0)
    assert setter.step(head(chain), {2: 0.7}) is not None
    commit = setter.state.commit
    assert commit is not None and len(commit.uids) == 3 and "padded" in setter.last_reason
    assert advance_to_action(chain, setter) == "reveal"
    assert setter.step(head(chain), {}) is not None
    row = chain.metagraph.weights(0)
    assert row[2] == 65_535 and sum(row) == 65_535


def test_a_contract_error_is_reported_and_the_commit_replaced(chain: Subnet) -> None:
    setter = setter_for(chain, 0)
    assert setter.step(head(chain), WEIGHTS) is not None
    assert setter.state.commit is not None
    # A corrupted salt: the chain refuses the reveal (MetagraphCommitMismatch), no exception.
    setter.state.commit = CommitRecord(**{**setter.state.commit.__dict__, "salt": bytes(32)})
    assert advance_to_action(chain, setter) == "reveal"
    assert setter.step(head(chain), WEIGHTS) is None
    assert "MetagraphCommitMismatch" in setter.last_reason
    assert setter.state.commit is None
    assert setter.due_action(head(chain)) == "commit"


def test_the_keeper_runs_a_due_epoch_and_otherwise_does_nothing(
    chain: Subnet, accounts: list[LocalAccount]
) -> None:
    chain.metagraph.contract.transact("setEpochContract", chain.epoch.address, sender=chain.owner)
    state = ValidatorState()
    keeper = EpochKeeper(chain.epoch, accounts[5], state=state)
    assert keeper.is_due(head(chain))  # no epoch yet: due at once
    receipts = keeper.run_if_due(head(chain))
    assert receipts and keeper.last_error is None
    last = chain.epoch.last_epoch_block()
    assert state.last_epoch_block == last > 0
    # Not due again until tempo blocks later.
    block = head(chain)
    assert not keeper.is_due(block)
    assert keeper.run_if_due(block) == []
    nxt = keeper.next_action_block(block)
    assert nxt == keeper.next_epoch_block() - 1 > block
    mine(chain.w3, nxt - block)
    again = keeper.run_if_due(head(chain))
    assert again and chain.epoch.last_epoch_block() == int(again[0]["blockNumber"])


# ----------------------------------------------------------------- the pure planner


@st.composite
def views(draw: st.DrawFn) -> tuple[WeightChainView, CommitRecord | None]:
    tempo = draw(st.integers(1, 20))
    head_block = draw(st.integers(0, 400))
    last_update = draw(st.integers(0, head_block))
    n = draw(st.integers(1, 8))
    commit = None
    chain_hash, chain_block = bytes(32), 0
    if draw(st.booleans()):
        chain_block = draw(st.integers(0, head_block))
        commit = CommitRecord(
            salt=b"\x01" * 32,
            uids=tuple(range(n)),
            values=(65_535,) * n,
            version_key=draw(st.integers(0, 2)),
            commit_hash=b"\x02" * 32,
            sent_at_block=chain_block,
            block=draw(st.sampled_from([None, chain_block])),
        )
        if draw(st.integers(0, 3)):
            chain_hash = commit.commit_hash
    view = WeightChainView(
        head=head_block,
        tempo=tempo,
        reveal_period=draw(st.integers(1, 3)),
        weights_rate_limit=draw(st.integers(0, 60)),
        min_allowed_weights=draw(st.integers(0, 10)),
        weights_version_key=draw(st.integers(0, 2)),
        n=n,
        uid=draw(st.sampled_from([None, 0, 1])),
        permit=draw(st.booleans()),
        last_update=last_update,
        chain_commit_hash=chain_hash,
        chain_commit_block=chain_block,
    )
    return view, commit


@given(views())
def test_plans_only_send_what_the_contract_accepts(case) -> None:
    view, commit = case
    plan = plan_weights(view, commit)
    tx = view.head + 1
    assert plan.next_block >= view.head
    if plan.action is None:
        assert plan.next_block > view.head
    if plan.action is not None:
        assert view.uid is not None and view.permit
    if plan.action == "reveal":
        assert plan.commit is not None and plan.commit.block is not None
        window = plan.commit.block // view.tempo + view.reveal_period
        assert tx // view.tempo == window
        assert tx >= view.last_update + view.weights_rate_limit
        assert plan.commit.version_key >= view.weights_version_key
        assert len(plan.commit.uids) >= view.required_weights
    if plan.action == "commit":
        # Its reveal window reaches the block from which the rate limit allows a reveal.
        reveal_window = tx // view.tempo + view.reveal_period
        assert (reveal_window + 1) * view.tempo - 1 >= view.last_update + view.weights_rate_limit


def test_padding_adds_zero_entries_only() -> None:
    ws = WeightSet((3,), (65_535,))
    padded, added = pad_to_min_weights(ws, 3, 5)
    assert added == 2 and padded == WeightSet((0, 1, 3), (0, 0, 65_535))
    assert pad_to_min_weights(ws, 1, 5) == (ws, 0)
