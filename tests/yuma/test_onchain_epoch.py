"""The on-chain epoch (``YumaConsensus``) against its Python prediction (``chain.epoch``).

Each hypothesis example builds a subnet with real transactions (registrations, stake,
commit-reveal weights), then runs several consecutive epochs (bonds carry over) with changes
in between (new weights, new uids, more stake, escrow fees). After every epoch the stored
outputs (u16 scores on the Metagraph, per-uid emission, bonds, permits) and the credited
balances must equal :func:`chain.epoch.predict_epoch` exactly, and the tokens minted plus
the fees must equal what was credited. Examples are expensive (dozens of transactions), so
the default profile runs a handful of them; ``--hypothesis-profile=heavy`` runs more and
larger subnets.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import pytest
from eth_account.signers.local import LocalAccount
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from web3 import Web3

from chain.epoch import (
    MAX_STEP_GAS,
    EpochPrediction,
    encode_bonds,
    encode_consensus,
    epoch_emission,
    predict_epoch,
    read_epoch_state,
    top_stake_permits,
)
from chain.epoch import Phase as EpochPhase
from chain.errors import TransactionFailed, custom_error
from chain.metagraph import HyperParam
from chain.node import mine, revert, snapshot
from chain.yuma import fixed
from latent.gas.yuma import Subnet, deploy_subnet

HEAVY = getattr(settings, "_current_profile", "default") == "heavy"
MAX_UIDS, MAX_VALIDATORS = (32, 8) if HEAVY else (16, 6)
EXAMPLES = 40 if HEAVY else 8
EPOCHS = 3
TOKEN = 10**18


@pytest.fixture(scope="module")
def subnet(w3: Web3, accounts: list[LocalAccount]) -> Iterator[Subnet]:
    """A subnet deployed once for the module (everything reverted at its end)."""
    snap = snapshot(w3)
    yield deploy_subnet(w3, accounts[0], accounts[1])
    revert(w3, snap)


@contextmanager
def _reverted(subnet: Subnet) -> Iterator[None]:
    """The body's transactions on the module's subnet are reverted after it (and the subnet's
    hotkey list restored)."""
    snap = snapshot(subnet.w3)
    hotkeys = list(subnet.hotkeys)
    try:
        yield
    finally:
        revert(subnet.w3, snap)
        subnet.hotkeys[:] = hotkeys


@dataclass(frozen=True)
class Between:
    """What changes between two epochs."""

    new_uids: int
    reweight: tuple[int, ...]  # validator indexes (into the scenario's list) that re-reveal
    stake: tuple[int, int]  # (validator index, amount)
    fees: int
    seed: int


@dataclass(frozen=True)
class Scenario:
    n: int
    validators: tuple[int, ...]
    stakes: tuple[int, ...]
    max_validators: int
    params: dict[HyperParam, int]
    weights: tuple[dict[int, int], ...]
    between: tuple[Between, ...]


# Mostly positive stakes (zero stake is drawn, but must not dominate small example counts).
stake_amounts = st.one_of(
    st.sampled_from([0, 1, 7, TOKEN, 5 * TOKEN, 1_000 * TOKEN]),
    st.integers(1, 10_000 * TOKEN),
    st.integers(1, 10_000 * TOKEN),
)


@st.composite
def weight_maps(draw: st.DrawFn, n: int) -> dict[int, int]:
    style = draw(
        st.sampled_from(["random", "random", "random", "empty", "zeros", "ties", "single"])
    )
    if style == "empty":
        return {}
    targets = draw(st.lists(st.integers(0, n - 1), unique=True, min_size=1, max_size=n))
    if style == "zeros":
        return dict.fromkeys(targets, 0)
    if style == "ties":
        return dict.fromkeys(targets, draw(st.integers(1, 65_535)))
    if style == "single":
        return {targets[0]: draw(st.integers(1, 65_535))}
    return {t: draw(st.integers(0, 65_535)) for t in targets}


@st.composite
def scenarios(draw: st.DrawFn) -> Scenario:
    n = draw(st.integers(1, MAX_UIDS - 2))
    v = draw(st.integers(1, min(MAX_VALIDATORS, n)))
    validators = tuple(draw(st.lists(st.integers(0, n - 1), min_size=v, max_size=v, unique=True)))
    low = draw(st.integers(0, 65_535))
    params = {
        HyperParam.KAPPA: draw(st.sampled_from([0, 1, 32_767, 52_428, 65_535])),
        HyperParam.BONDS_MOVING_AVERAGE: draw(st.sampled_from([0, 500_000, 900_000, 1_000_000])),
        HyperParam.BONDS_PENALTY: draw(st.sampled_from([0, 32_767, 65_535])),
        HyperParam.LIQUID_ALPHA_ENABLED: int(draw(st.booleans())),
        HyperParam.ALPHA_LOW: low,
        HyperParam.ALPHA_HIGH: draw(st.integers(low, 65_535)),
        HyperParam.ALPHA_SIGMOID_STEEPNESS: draw(st.sampled_from([0, 1_000, 10_000])),
        HyperParam.ACTIVITY_CUTOFF: draw(st.sampled_from([5, 5_000])),
    }
    between = tuple(
        Between(
            new_uids=draw(st.integers(0, 1)),
            reweight=tuple(draw(st.lists(st.integers(0, v - 1), unique=True, max_size=2))),
            stake=(draw(st.integers(0, v - 1)), draw(stake_amounts)),
            fees=draw(st.sampled_from([0, 0, 1, 3 * TOKEN])),
            seed=draw(st.integers(0, 2**32)),
        )
        for _ in range(EPOCHS - 1)
    )
    return Scenario(
        n=n,
        validators=validators,
        stakes=tuple(draw(st.lists(stake_amounts, min_size=v, max_size=v))),
        max_validators=draw(st.integers(1, v + 1)),
        params=params,
        weights=tuple(draw(weight_maps(n)) for _ in range(v)),
        between=between,
    )


def _set_params(subnet: Subnet, params: dict[HyperParam, int]) -> None:
    # alphaLow <= alphaHigh at every step: open the range first.
    subnet.set_params({HyperParam.ALPHA_LOW: 0, HyperParam.ALPHA_HIGH: 65_535})
    subnet.set_params(params)


def _permitted(subnet: Subnet) -> int:
    return int(subnet.metagraph.contract.call("validatorPermits"))


def _check_epoch(subnet: Subnet, keeper: LocalAccount) -> EpochPrediction:
    """Predict, run, and compare every stored output and credit."""
    w3 = subnet.w3
    subnet.mine_to_next_epoch()
    state = read_epoch_state(w3, subnet.epoch.address)
    pred = predict_epoch(state, w3.eth.block_number + 1)
    before = {account: subnet.epoch.claimable(account) for account in pred.credits}
    supply = int(subnet.token.call("totalSupply"))
    reserved = subnet.epoch.reserved()

    receipts = subnet.epoch.run_epoch_until_done(keeper)

    assert all(int(r["gasUsed"]) <= MAX_STEP_GAS for r in receipts)
    started = subnet.epoch.contract.events(receipts[0], "EpochStarted")[0]
    assert (started["minted"], started["fees"]) == (pred.minted, pred.fees)
    mg = subnet.metagraph.snapshot()
    assert list(mg.incentive) == pred.incentive_u16
    assert list(mg.dividends) == pred.dividends_u16
    assert list(mg.consensus) == pred.consensus_u16
    assert list(mg.validator_trust) == pred.validator_trust_u16
    assert list(mg.emission) == pred.emission
    assert _permitted(subnet) == pred.permits == subnet.epoch.bond_rows()
    bonds = subnet.epoch.stored_bonds(mg.n)
    for row, uid in enumerate(pred.inputs.validator_uids):
        assert list(bonds[uid]) == pred.outputs.bonds[row]
    for account, amount in pred.credits.items():
        assert subnet.epoch.claimable(account) - before[account] == amount
    # Emission minted (plus fees) == what was credited, exactly.
    assert int(subnet.token.call("totalSupply")) - supply == pred.minted
    assert sum(pred.credits.values()) == pred.minted + pred.fees
    assert subnet.epoch.reserved() - reserved == pred.minted + pred.fees
    return pred


@settings(
    max_examples=EXAMPLES,
    # Each example costs seconds of transactions: no shrinking (a failure prints its example).
    phases=[Phase.explicit, Phase.reuse, Phase.generate],
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(scenario=scenarios())
def test_onchain_epochs_match_fixed_point_prediction(
    subnet: Subnet, accounts: list[LocalAccount], scenario: Scenario
) -> None:
    with _reverted(subnet):
        _set_params(subnet, {**scenario.params, HyperParam.MAX_VALIDATORS: scenario.max_validators})
        subnet.register(scenario.n)
        for uid, amount in zip(scenario.validators, scenario.stakes, strict=True):
            subnet.stake(uid, amount)
        subnet.metagraph.update_permits(accounts[0])
        permits = _permitted(subnet)
        subnet.set_weights(
            {
                uid: weights
                for uid, weights in zip(scenario.validators, scenario.weights, strict=True)
                if permits >> uid & 1
            }
        )
        subnet.metagraph.contract.transact(
            "setEpochContract", subnet.epoch.address, sender=subnet.owner
        )
        _check_epoch(subnet, accounts[2])
        for step in scenario.between:
            if step.new_uids and len(subnet.hotkeys) < MAX_UIDS:
                subnet.register(step.new_uids)
            vi, amount = step.stake
            subnet.stake(scenario.validators[vi], amount)
            permits = _permitted(subnet)
            n = subnet.metagraph.snapshot().n
            reweight = {}
            for k in step.reweight:
                uid = scenario.validators[k]
                if permits >> uid & 1:
                    reweight[uid] = {
                        (uid * 7 + step.seed + t) % n: t * 997 % 65_536 for t in range(n)
                    }
            if reweight:
                subnet.set_weights(reweight)
            if step.fees:
                subnet.token.transact(
                    "transfer", subnet.epoch.address, step.fees, sender=subnet.coldkey
                )
            _check_epoch(subnet, accounts[2])


def _validators_weigh_miners(
    subnet: Subnet, sender: LocalAccount, v: int, n: int, weight: Callable[[int, int], int]
) -> None:
    """``n`` uids, the first ``v`` staked validators weighing the others ``weight(u, j) % 65535
    + 1``; then the epoch contract is set (permits appear at its first epoch)."""
    subnet.set_params({HyperParam.MAX_VALIDATORS: v})
    subnet.register(n)
    for uid in range(v):
        subnet.stake(uid, (uid + 1) * 100 * TOKEN)
    subnet.metagraph.update_permits(sender)
    subnet.set_weights({u: {j: weight(u, j) % 65_535 + 1 for j in range(v, n)} for u in range(v)})
    subnet.metagraph.contract.transact(
        "setEpochContract", subnet.epoch.address, sender=subnet.owner
    )


def test_epoch_gas_steps_and_claims(subnet: Subnet, accounts: list[LocalAccount]) -> None:
    """8 validators x 32 uids: every step under 5M gas; claims pay the coldkey or stake."""
    w3 = subnet.w3
    with _reverted(subnet):
        _validators_weigh_miners(subnet, accounts[0], 8, 32, lambda u, j: u * 31 + j * 17)
        keeper = accounts[2]
        pred = _check_epoch(subnet, keeper)
        with pytest.raises(custom_error("YumaConsensusTooEarly")):
            subnet.epoch.run_epoch(keeper)  # right after an epoch
        assert any(pred.incentive_u16) and any(pred.dividends_u16)

        miner = subnet.hotkeys[20]
        amount = subnet.epoch.claimable(miner.address)
        assert amount > 0
        with pytest.raises(custom_error("YumaConsensusNotAuthorized")):
            subnet.epoch.claim(keeper, miner.address)
        balance = int(subnet.token.call("balanceOf", subnet.coldkey.address))
        assert subnet.epoch.claim(subnet.coldkey, miner.address) == amount
        assert int(subnet.token.call("balanceOf", subnet.coldkey.address)) == balance + amount
        with pytest.raises(custom_error("YumaConsensusNothingToClaim")):
            subnet.epoch.claim(subnet.coldkey, miner.address)

        validator = subnet.hotkeys[7]
        reward = subnet.epoch.claimable(validator.address)
        stake = subnet.metagraph.hotkey_stake(validator.address)
        assert subnet.epoch.claim(validator, stake=True) == reward  # the hotkey claims, stakes
        assert subnet.metagraph.hotkey_stake(validator.address) == stake + reward
        assert subnet.metagraph.stake_of(subnet.coldkey.address, validator.address) >= reward

        owner_share = subnet.epoch.claimable(subnet.owner.address)
        assert owner_share >= pred.minted * 18 // 100
        # Mine past the next tempo: the second epoch carries the bonds over, still exact.
        mine(w3, 1)
        _check_epoch(subnet, keeper)


def test_column_phase_accepts_only_the_weighted_median(
    subnet: Subnet, accounts: list[LocalAccount]
) -> None:
    """The consensus vector is checked column by column: a missing or short vector, or any
    value but the stake-weighted median (its neighbours, another validator's weight, values
    above WONE, a non-zero value on a column nobody weighs) reverts; a keeper resuming in the column phase
    computes the true vector and completes the epoch."""
    w3 = subnet.w3
    with _reverted(subnet):
        _validators_weigh_miners(subnet, accounts[0], 4, 20, lambda u, j: (u * 7 + j * 13) % 1_000)
        subnet.mine_to_next_epoch()
        state = read_epoch_state(w3, subnet.epoch.address)
        pred = predict_epoch(state, w3.eth.block_number + 1)
        keeper = accounts[2]
        with pytest.raises(custom_error("YumaConsensusNotInColumns")):
            subnet.epoch.consensus_vector()

        subnet.epoch.run_epoch(keeper)  # start and rows; no vector: stops at the columns
        assert subnet.epoch.progress() == (EpochPhase.COLUMNS, 0)
        vector = subnet.epoch.consensus_vector()
        assert vector == encode_consensus(pred.outputs.consensus)
        with pytest.raises(custom_error("YumaConsensusNeedsConsensus")):
            subnet.epoch.run_epoch(keeper)
        with pytest.raises(custom_error("YumaConsensusBadConsensusLength")):
            subnet.epoch.run_epoch(keeper, vector[:-8])

        consensus = list(pred.outputs.consensus)
        uid = 9
        median = consensus[uid]
        rows = [
            fixed.masked_row(
                list(state.weights[u]),
                u,
                state.metagraph.last_update[u],
                list(state.metagraph.registered_at),
            )
            for u in range(4)
        ]
        others = {row[uid] for row in rows} - {median}
        assert median > 0 and others
        # Above WONE no weight can be (and a slot of the four-lane pass could borrow).
        for wrong in sorted(others | {median - 1, median + 1, fixed.WONE + 1, 2**64 - 1}):
            bad = encode_consensus([*consensus[:uid], wrong, *consensus[uid + 1 :]])
            with pytest.raises(custom_error("YumaConsensusWrongConsensus")) as info:
                subnet.epoch.run_epoch(keeper, bad)
            assert info.value.error_args == {"uid": uid, "value": wrong}
        nobody = encode_consensus([1, *consensus[1:]])  # column 0: nobody weighs it
        with pytest.raises(custom_error("YumaConsensusWrongConsensus")):
            subnet.epoch.run_epoch(keeper, nobody)

        subnet.epoch.run_epoch_until_done(keeper)  # resumes in the column phase
        assert list(subnet.metagraph.snapshot().consensus) == pred.consensus_u16


def test_column_phase_takes_back_only_the_logged_bonds(
    subnet: Subnet, accounts: list[LocalAccount], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Old bonds live as logged words and a hash per packed word: a column-phase call without
    them, with a short list or with one lane changed reverts; a node without the logs gets a
    clear error; the logged words complete the epoch exactly as predicted."""
    w3 = subnet.w3
    with _reverted(subnet):
        _validators_weigh_miners(subnet, accounts[0], 4, 20, lambda u, j: (u * 5 + j * 11) % 900)
        keeper = accounts[2]
        _check_epoch(subnet, keeper)  # the first epoch logs the bonds of both packed words
        subnet.mine_to_next_epoch()
        pred = predict_epoch(read_epoch_state(w3, subnet.epoch.address), w3.eth.block_number + 1)
        subnet.epoch.run_epoch(keeper)
        assert subnet.epoch.progress() == (EpochPhase.COLUMNS, 0)
        vector = subnet.epoch.consensus_vector()
        old = subnet.epoch.old_bond_words()
        assert sorted(old) == [0, 1] and all(len(words) == 4 for words in old.values())
        with monkeypatch.context() as pruned:
            pruned.setattr(subnet.epoch.contract, "logs", lambda *args, **kwargs: [])
            with pytest.raises(TransactionFailed, match="pruning logs"):
                subnet.epoch.old_bond_words()
        with monkeypatch.context() as crediting:
            crediting.setattr(subnet.epoch, "progress", lambda block: (EpochPhase.CREDIT, 0))
            with pytest.raises(TransactionFailed, match="rewritten every bond word"):
                subnet.epoch.old_bond_words()

        bonds = encode_bonds(old, 0)
        for short in (b"", bonds[: 32 * 4 - 1]):
            with pytest.raises(custom_error("YumaConsensusNeedsBonds")) as info:
                subnet.epoch.run_epoch(keeper, vector, short)
            assert info.value.error_args == {"group": 0}
        for g in (0, 1):
            tampered = {k: list(words) for k, words in old.items()}
            tampered[g][3] ^= 1 << (16 * 9)  # one lane of the last row's word
            with pytest.raises(custom_error("YumaConsensusWrongBonds")) as info:
                subnet.epoch.run_epoch(keeper, vector, encode_bonds(tampered, 0))
            assert info.value.error_args == {"group": g}

        subnet.epoch.run_epoch_until_done(keeper)
        assert list(subnet.metagraph.snapshot().consensus) == pred.consensus_u16
        bonds_now = subnet.epoch.stored_bonds(20)
        for row, uid in enumerate(pred.inputs.validator_uids):
            assert list(bonds_now[uid]) == pred.outputs.bonds[row]


def test_liquid_alpha_calls_stop_and_resume_inside_a_packed_word(
    subnet: Subnet, accounts: list[LocalAccount], monkeypatch: pytest.MonkeyPatch
) -> None:
    """With liquid alpha a call covers a few columns (the sigmoid is costly), so calls stop
    inside a packed word and the next one resumes from the words it saved: the epochs still
    match the prediction exactly. A call after the column phase's first needs the row sums the
    last one logged: without them, or with a changed or short list, it reverts; a keeper that
    did not send the earlier calls finds them in the logs."""
    w3 = subnet.w3
    with _reverted(subnet):
        subnet.set_params({HyperParam.LIQUID_ALPHA_ENABLED: 1, HyperParam.ALPHA_LOW: 3_000})
        _validators_weigh_miners(subnet, accounts[0], 8, 112, lambda u, j: u * 131 + j * 977)
        first = w3.eth.block_number
        for _ in range(2):
            _check_epoch(subnet, accounts[2])
        stops = [
            int(args["cursor"])
            for args in subnet.epoch.contract.logs("EpochProgress", first, "latest")
            if args["phase"] == EpochPhase.COLUMNS
        ]
        assert any(cursor % 16 for cursor in stops), stops

        keeper, other = accounts[2], accounts[3]
        subnet.mine_to_next_epoch()
        pred = predict_epoch(read_epoch_state(w3, subnet.epoch.address), w3.eth.block_number + 1)
        subnet.epoch.run_epoch(keeper)
        vector = subnet.epoch.consensus_vector()
        old = subnet.epoch.old_bond_words()
        subnet.epoch.run_epoch(keeper, vector, encode_bonds(old, 0))
        phase, cursor = subnet.epoch.progress()
        assert phase == EpochPhase.COLUMNS and 0 < cursor < 112
        bonds = encode_bonds(old, cursor // 16)
        sums = subnet.epoch.row_sums()
        with monkeypatch.context() as pruned:
            pruned.setattr(subnet.epoch.contract, "logs", lambda *args, **kwargs: [])
            with pytest.raises(TransactionFailed, match="pruning logs"):
                subnet.epoch.row_sums()
        assert len(sums) == 32 * 8
        with pytest.raises(custom_error("YumaConsensusNeedsRowSums")):
            subnet.epoch.run_epoch(keeper, vector, bonds)
        changed = bytes([sums[0] ^ 1]) + sums[1:]
        for wrong in (changed, sums[:-32]):
            with pytest.raises(custom_error("YumaConsensusWrongRowSums")):
                subnet.epoch.run_epoch(keeper, vector, bonds, wrong)
        subnet.epoch.run_epoch_until_done(other)  # resumes from the logged sums
        mg = subnet.metagraph.snapshot()
        assert list(mg.dividends) == pred.dividends_u16
        assert list(mg.validator_trust) == pred.validator_trust_u16
        assert list(mg.emission) == pred.emission


def test_register_and_reveal_wait_while_an_epoch_runs(
    subnet: Subnet, accounts: list[LocalAccount]
) -> None:
    """The epoch locks registration and reveals between its first and last step."""
    with _reverted(subnet):
        subnet.register(2)
        subnet.metagraph.contract.transact(
            "setEpochContract", accounts[3].address, sender=subnet.owner
        )
        subnet.metagraph.contract.transact("setEpochRunning", True, sender=accounts[3])
        with pytest.raises(custom_error("MetagraphEpochInProgress")):
            subnet.register(1)
        subnet.metagraph.contract.transact("setEpochRunning", False, sender=accounts[3])
        subnet.register(1)


@given(
    supply=st.integers(0, 21_000_000 * TOKEN),
    rate=st.integers(0, 10 * TOKEN),
    tempo=st.integers(1, 65_535),
)
def test_epoch_emission_halves_under_the_cap(supply: int, rate: int, tempo: int) -> None:
    cap = 21_000_000 * TOKEN
    minted = epoch_emission(supply, cap, rate, tempo)
    assert 0 <= minted <= cap - supply
    remaining = cap - supply
    halvings = sum(1 for k in range(1, 80) if remaining <= cap >> k)
    assert minted == min((rate >> halvings) * tempo, remaining)
    if supply < cap // 2:
        assert minted == min(rate * tempo, remaining)


@given(st.lists(st.integers(0, 5), max_size=12), st.integers(0, 13))
def test_top_stake_permits_prefers_stake_then_lower_uid(stakes: list[int], k: int) -> None:
    bitmap = top_stake_permits(stakes, k)
    chosen = [u for u in range(len(stakes)) if bitmap >> u & 1]
    assert len(chosen) == min(k, sum(1 for s in stakes if s > 0))
    for u in chosen:
        for other in range(len(stakes)):
            if other not in chosen and stakes[other] > 0:
                assert (stakes[u], -u) > (stakes[other], -other)


def test_replaced_uid_pays_what_it_earned_to_the_old_hotkey(
    subnet: Subnet, accounts: list[LocalAccount]
) -> None:
    """Earnings are kept per uid; when registration gives the uid to a new hotkey, the old
    hotkey can still claim them and the new one starts from zero."""
    with _reverted(subnet):
        subnet.set_params({HyperParam.MAX_VALIDATORS: 2, HyperParam.MAX_UIDS: 6})
        subnet.register(6)
        subnet.stake(0, 100 * TOKEN)
        subnet.stake(1, 50 * TOKEN)
        subnet.metagraph.update_permits(accounts[0])
        subnet.set_weights({0: {2: 10, 3: 20, 4: 30, 5: 40}, 1: {2: 10, 3: 20, 4: 30, 5: 40}})
        subnet.metagraph.contract.transact(
            "setEpochContract", subnet.epoch.address, sender=subnet.owner
        )
        _check_epoch(subnet, accounts[2])
        with pytest.raises(custom_error("YumaConsensusNotMetagraph")):
            subnet.epoch.contract.transact(
                "onUidReplaced", 2, accounts[5].address, sender=accounts[5]
            )
        uid = subnet.metagraph.contract.call("nextRegistrationUid")
        old = subnet.hotkeys[uid]
        earned = subnet.epoch.claimable(old.address)
        assert earned > 0
        subnet.register(1)
        new = subnet.hotkeys[uid]
        assert new.address != old.address
        assert subnet.epoch.claimable(old.address) == earned
        assert subnet.epoch.claimable(new.address) == 0
        assert subnet.epoch.claim(old, old.address) == earned
