"""Hypothesis state machines against anvil, each checked against a Python model.

Every example starts from an ``evm_snapshot`` taken in ``__init__`` and is rolled back in
``teardown``. Transactions whose outcome depends on the block number are sent with an explicit
gas limit (no estimate at the previous block), so the contract is judged at the block the
transaction is mined in, and the model predicts that block (``latest + 1``).
"""

from __future__ import annotations

from typing import Any

import pytest
from eth_account import Account
from eth_account.signers.local import LocalAccount
from eth_utils import keccak
from hypothesis import event, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)
from metagraph_env import MetagraphEnv

from chain.errors import ContractRevert, TransactionFailed
from chain.metagraph import HyperParam
from chain.metagraph_rules import BurnModel, prune_uid
from chain.node import mine, revert, snapshot
from chain.weights import WeightSet, commit_hash, prepare_weights, stored_row, unpack_row

TOKEN = 10**18
# Each step is one or two transactions: keep the default run small, let the heavy profile scale.
_PROFILE_EXAMPLES = settings.default.max_examples
STEPS = settings(
    max_examples=10 if _PROFILE_EXAMPLES <= 25 else _PROFILE_EXAMPLES,
    stateful_step_count=10,
    deadline=None,
)


def _expect(outcome: Any, error: str | None) -> None:
    """``outcome`` is a receipt or the raised exception; compare with the expected error name."""
    event(f"outcome: {error or 'ok'}")
    if not error:
        assert not isinstance(outcome, Exception), f"unexpected revert: {outcome}"
    else:
        assert isinstance(outcome, ContractRevert), f"expected {error}, got {outcome!r}"
        assert outcome.error_name == error, f"expected {error}, got {outcome.error_name}"


def _send(fn: Any) -> Any:
    try:
        return fn()
    except TransactionFailed as exc:
        return exc


class _ChainMachine(RuleBasedStateMachine):
    env: MetagraphEnv

    def __init__(self) -> None:
        super().__init__()
        self.snap = snapshot(self.env.w3)
        self.hotkey_counter = 0

    def teardown(self) -> None:
        revert(self.env.w3, self.snap)

    @property
    def latest(self) -> int:
        return int(self.env.w3.eth.block_number)

    def fresh_hotkey(self) -> LocalAccount:
        """A new deterministic hotkey (it signs its registration consent)."""
        self.hotkey_counter += 1
        return Account.from_key(keccak(f"hotkey-{self.hotkey_counter}".encode()))

    def register_raw(self, coldkey_idx: int, hotkey: LocalAccount) -> Any:
        coldkey = self.env.accounts[coldkey_idx]
        consent = self.env.client.sign_consent(hotkey, coldkey.address, deadline=2**40)
        return _send(
            lambda: self.env.client.contract.transact(
                "registerWithConsent",
                hotkey.address,
                "",
                10**30,
                consent.deadline,
                consent.signature,
                sender=coldkey,
                gas=1_500_000,
            )
        )


# --------------------------------------------------------------------------- staking


class StakingMachine(_ChainMachine):
    """Stake conservation and the unbonding period."""

    def __init__(self) -> None:
        super().__init__()
        env = self.env
        self.hotkeys = [env.accounts[7].address, env.accounts[8].address]
        for idx in (7, 8):
            env.client.register(env.accounts[1], env.accounts[idx])
        self.coldkeys = [1, 2, 3]
        self.stakes: dict[tuple[int, str], int] = {}
        self.unbonding: dict[int, tuple[int, int]] = {}
        self.period = env.client.hyperparameters().unbonding_period

    @rule(c=st.sampled_from([1, 2, 3]), h=st.integers(0, 1), amount=st.integers(1, 1000))
    def add(self, c: int, h: int, amount: int) -> None:
        hk = self.hotkeys[h]
        self.env.client.add_stake(self.env.accounts[c], hk, amount * TOKEN)
        self.stakes[(c, hk)] = self.stakes.get((c, hk), 0) + amount * TOKEN

    @rule(c=st.sampled_from([1, 2, 3]), h=st.integers(0, 1), amount=st.integers(1, 1200))
    def remove(self, c: int, h: int, amount: int) -> None:
        hk = self.hotkeys[h]
        staked = self.stakes.get((c, hk), 0)
        outcome = _send(
            lambda: self.env.client.remove_stake(self.env.accounts[c], hk, amount * TOKEN)
        )
        if amount * TOKEN > staked:
            _expect(outcome, "MetagraphInsufficientStake")
            return
        _expect(outcome, None)
        self.stakes[(c, hk)] = staked - amount * TOKEN
        old, _ = self.unbonding.get(c, (0, 0))
        self.unbonding[c] = (old + amount * TOKEN, int(outcome["blockNumber"]) + self.period)

    @rule(c=st.sampled_from([1, 2, 3]))
    def claim(self, c: int) -> None:
        mined_at = self.latest + 1
        amount, release = self.unbonding.get(c, (0, 0))
        before = self.env.token.balance_of(self.env.accounts[c].address)
        outcome = _send(
            lambda: self.env.client.contract.transact(
                "claimUnbonded", sender=self.env.accounts[c], gas=200_000
            )
        )
        if amount == 0:
            _expect(outcome, "MetagraphNothingToClaim")
        elif mined_at < release:
            _expect(outcome, "MetagraphUnbondingNotElapsed")  # never before the period ends
        else:
            _expect(outcome, None)
            assert self.env.token.balance_of(self.env.accounts[c].address) == before + amount
            del self.unbonding[c]

    @rule(c=st.sampled_from([1, 2, 3]), h=st.integers(0, 1))
    def unstake_then_claim_at_once(self, c: int, h: int) -> None:
        if self.stakes.get((c, self.hotkeys[h]), 0) < TOKEN:
            self.add(c, h, 1)
        self.remove(c, h, 1)
        self.claim(c)  # the model expects MetagraphUnbondingNotElapsed here

    @rule(blocks=st.integers(1, 12))
    def advance(self, blocks: int) -> None:
        mine(self.env.w3, blocks)

    @invariant()
    def conservation(self) -> None:
        client = self.env.client
        total_stake = int(client.contract.call("totalStake"))
        total_unbonding = int(client.contract.call("totalUnbonding"))
        assert self.env.token.balance_of(client.address) == total_stake + total_unbonding
        assert total_stake == sum(self.stakes.values())
        assert total_unbonding == sum(a for a, _ in self.unbonding.values())
        for hk in self.hotkeys:
            expected = sum(v for (_, h), v in self.stakes.items() if h == hk)
            assert client.hotkey_stake(hk) == expected
        mirrored = [int(view[2]) for view in client.contract.call("neurons")]
        assert mirrored == [client.hotkey_stake(hk) for hk in self.hotkeys]


# --------------------------------------------------------------------------- registration

MAX_UIDS = 4
IMMUNITY = 6


class RegistrationMachine(_ChainMachine):
    """Registration price across sequences of registrations and blocks; the pruned uid."""

    def __init__(self) -> None:
        super().__init__()
        env = self.env
        env.client.set_hyperparameter(env.owner, HyperParam.MAX_UIDS, MAX_UIDS)
        env.client.set_hyperparameter(env.owner, HyperParam.IMMUNITY_PERIOD, IMMUNITY)
        env.client.set_hyperparameter(env.owner, HyperParam.MAX_BURN, 50 * TOKEN)
        env.client.contract.transact("setEpochContract", env.accounts[9].address, sender=env.owner)
        hp = env.client.hyperparameters()
        price, block, _ = env.client.contract.call("burnState")
        self.burn = BurnModel(
            price=int(price),
            block=int(block),
            min_burn=hp.min_burn,
            max_burn=hp.max_burn,
            half_life=hp.burn_half_life,
            increase_mult_bps=hp.burn_increase_mult,
        )
        self.hotkeys: list[str] = []
        self.emission: list[int] = []
        self.registered_at: list[int] = []

    @initialize(half_life=st.integers(1, 40), mult=st.integers(10_000, 30_000))
    def burn_params(self, half_life: int, mult: int) -> None:
        env = self.env
        receipt = env.client.set_hyperparameter(env.owner, HyperParam.BURN_HALF_LIFE, half_life)
        at = int(receipt["blockNumber"])
        self.burn = BurnModel(
            price=self.burn.price_at(at),
            block=at,
            min_burn=self.burn.min_burn,
            max_burn=self.burn.max_burn,
            half_life=half_life,
            increase_mult_bps=self.burn.increase_mult_bps,
        )
        env.client.set_hyperparameter(env.owner, HyperParam.BURN_INCREASE_MULT, mult)
        self.burn = BurnModel(**{**self.burn.__dict__, "increase_mult_bps": mult})

    @rule(c=st.sampled_from([1, 2, 3]))
    def register(self, c: int) -> None:
        hotkey = self.fresh_hotkey()
        block = self.latest + 1
        supply = self.env.token.total_supply()
        outcome = self.register_raw(c, hotkey)
        n = len(self.hotkeys)
        if n < MAX_UIDS:
            expected_uid: int | None = n
        else:
            expected_uid = prune_uid(self.emission, self.registered_at, block, IMMUNITY)
        if expected_uid is None:
            _expect(outcome, "MetagraphAllNeuronsImmune")
            return
        _expect(outcome, None)
        assert int(outcome["blockNumber"]) == block
        (event,) = self.env.client.contract.events(outcome, "NeuronRegistered")
        burned, self.burn = self.burn.after_registration(block)
        assert event["uid"] == expected_uid, "the pruned uid is the one the rule names"
        assert event["burned"] == burned, "registration price follows the model"
        assert self.env.token.total_supply() == supply - burned
        if expected_uid == n:
            self.hotkeys.append(hotkey.address)
            self.emission.append(0)
            self.registered_at.append(block)
        else:
            assert event["replacedHotkey"] == self.hotkeys[expected_uid]
            self.hotkeys[expected_uid] = hotkey.address
            self.emission[expected_uid] = 0
            self.registered_at[expected_uid] = block

    @precondition(lambda self: len(self.hotkeys) > 0)
    @rule(data=st.data(), value=st.integers(0, 3))
    def set_emission(self, data: st.DataObject, value: int) -> None:
        uid = data.draw(st.integers(0, len(self.hotkeys) - 1))
        self.env.client.contract.transact(
            "recordEmission", uid, [value], sender=self.env.accounts[9]
        )
        self.emission[uid] = value

    @rule(blocks=st.integers(1, 12))
    def advance(self, blocks: int) -> None:
        mine(self.env.w3, blocks)

    @invariant()
    def matches_model(self) -> None:
        client = self.env.client
        at = self.latest
        assert int(client.contract.call("registrationPrice", block=at)) == self.burn.price_at(at)
        snap = client.snapshot(at)
        assert list(snap.hotkeys) == self.hotkeys
        assert list(snap.registered_at) == self.registered_at
        assert list(snap.emission) == self.emission


# --------------------------------------------------------------------------- commit / reveal


class RevealMachine(_ChainMachine):
    """Commit-reveal: wrong salt, too early, too late, no permit, and the stored row."""

    def __init__(self) -> None:
        super().__init__()
        env = self.env
        self.validators = [2, 3, 4]  # accounts; 2 and 3 get stake (permits), 4 none
        for idx in self.validators:
            env.client.register(env.accounts[1], env.accounts[idx])
        for _ in range(2):
            env.client.register(env.accounts[1], self.fresh_hotkey())
        for idx in (2, 3):
            env.client.add_stake(env.accounts[1], env.accounts[idx].address, 10 * TOKEN)
        env.client.update_permits(env.accounts[1])
        hp = env.client.hyperparameters()
        self.tempo, self.reveal_period = hp.tempo, hp.reveal_period
        snap = env.client.snapshot()
        self.registered_at = list(snap.registered_at)
        self.permitted = {
            idx for idx in self.validators if snap.has_validator_permit(env.accounts[idx].address)
        }
        assert self.permitted == {2, 3}
        self.commits: dict[int, tuple[WeightSet, bytes, int]] = {}

    @rule(v=st.sampled_from([2, 3, 4]), data=st.data(), salt=st.binary(min_size=32, max_size=32))
    def commit(self, v: int, data: st.DataObject, salt: bytes) -> None:
        n = len(self.registered_at)
        weights = prepare_weights(
            data.draw(
                st.dictionaries(
                    st.integers(0, n - 1), st.integers(0, 65_535), min_size=1, max_size=n
                )
            )
        )
        account = self.env.accounts[v]
        digest = commit_hash(account.address, weights, salt, 0)
        receipt = self.env.client.contract.transact("commitWeights", digest, sender=account)
        self.commits[v] = (weights, salt, int(receipt["blockNumber"]))

    @rule()
    def register_miner(self) -> None:
        outcome = self.register_raw(1, self.fresh_hotkey())
        _expect(outcome, None)
        self.registered_at.append(int(outcome["blockNumber"]))

    @rule(blocks=st.integers(1, 25))
    def advance(self, blocks: int) -> None:
        mine(self.env.w3, blocks)

    @rule()
    def advance_to_next_window(self) -> None:
        """Mine so that the next transaction is the first of the next window."""
        nxt = self.latest + 1
        mine(self.env.w3, (nxt // self.tempo + 1) * self.tempo - nxt)

    @rule(
        v=st.sampled_from([2, 3]),
        data=st.data(),
        salt=st.binary(min_size=32, max_size=32),
        snipe=st.booleans(),
    )
    def commit_then_reveal(self, v: int, data: st.DataObject, salt: bytes, snipe: bool) -> None:
        """A full honest round; with ``snipe`` a miner registers between commit and reveal."""
        self.commit(v, data, salt)
        if snipe:
            self.register_miner()
        self.advance_to_next_window()
        self.reveal(v, "none")  # the model expects success and checks the stored row

    @precondition(lambda self: bool(self.commits))
    @rule(data=st.data(), tamper=st.sampled_from(["none", "none", "salt", "value"]))
    def reveal_pending(self, data: st.DataObject, tamper: str) -> None:
        self.reveal(data.draw(st.sampled_from(sorted(self.commits))), tamper)

    @rule(v=st.sampled_from([2, 3, 4]), tamper=st.sampled_from(["none", "salt", "value"]))
    def reveal(self, v: int, tamper: str) -> None:
        account = self.env.accounts[v]
        block = self.latest + 1
        uid = self.validators.index(v)
        commit = self.commits.get(v)
        weights, salt, commit_block = commit if commit else (WeightSet((0,), (1,)), bytes(32), 0)
        if tamper == "salt":
            salt = bytes([salt[0] ^ 1]) + salt[1:]
        elif tamper == "value":
            weights = WeightSet(weights.uids, (weights.values[0] ^ 1, *weights.values[1:]))
        outcome = _send(
            lambda: self.env.client.contract.transact(
                "revealWeights", weights.packed_uids, weights.packed_values, salt, 0,
                sender=account, gas=1_500_000,
            )
        )  # fmt: skip
        window = commit_block // self.tempo + self.reveal_period
        if commit is None:
            _expect(outcome, "MetagraphNoCommit")
        elif v not in self.permitted:
            _expect(outcome, "MetagraphNoValidatorPermit")
        elif block // self.tempo < window:
            _expect(outcome, "MetagraphRevealTooEarly")
        elif block // self.tempo > window:
            _expect(outcome, "MetagraphRevealExpired")
        elif tamper != "none":
            _expect(outcome, "MetagraphCommitMismatch")
        else:
            _expect(outcome, "")
            dropped = frozenset(u for u, at in enumerate(self.registered_at) if at >= commit_block)
            row = unpack_row(self.env.client.contract.call("weightRow", uid))
            assert row == stored_row(weights, dropped)
            (event,) = self.env.client.contract.events(outcome, "WeightsRevealed")
            assert event["dropped"] == len(dropped & set(weights.uids))
            del self.commits[v]


@pytest.mark.parametrize("machine", [StakingMachine, RegistrationMachine, RevealMachine])
def test_state_machine(machine: type[_ChainMachine], metagraph_env: MetagraphEnv) -> None:
    machine.env = metagraph_env
    run_state_machine_as_test(machine, settings=STEPS)
