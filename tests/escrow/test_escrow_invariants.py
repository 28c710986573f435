"""Stateful property test: PaymentEscrow against a Python model of every balance.

Each hypothesis example starts from an ``evm_snapshot`` (taken in the machine's
``__init__``) and ends with ``evm_revert`` in ``teardown``. Every transaction is mined at a
timestamp the model chooses (``evm_setNextBlockTimestamp``), so the model knows exactly
when grace periods end. For every action the model predicts success or the exact custom
error; after every step the invariants compare chain and model:

- escrow token balance == sum over channels of (deposit - claimed - refunded remainder)
  + accrued, unswept fees (settled-but-unclaimed earnings are still in the escrow);
- every channel's stored fields equal the model's; settled <= deposit, and settled and
  claimed only grow (checked against the previous observation);
- miners, renters and the reward pool hold exactly what the model paid them (this is where
  "no double withdraw" and "fee accounting exact" show up);
- nothing settles once final (a predicted ``EscrowChannelFinal`` that succeeds fails the run).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

from escrow_env import FEE_BPS, GRACE_S, latest_timestamp, salt, set_next_timestamp
from eth_account.signers.local import LocalAccount
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)
from web3 import Web3

from chain.errors import ContractRevert
from chain.escrow import EscrowClient, split_claim
from chain.keys import dev_accounts
from chain.node import revert, snapshot
from chain.token import SubnetTokenClient
from chain.vouchers import Voucher, sign_voucher

MAX_CHANNELS = 4
TX_GAS = 1_000_000
ZERO = "0x" + "00" * 20
ACCOUNTS = dev_accounts(7)
RENTERS = [ACCOUNTS[1], ACCOUNTS[4]]  # both funded and approved by the escrow fixture
MINERS = [ACCOUNTS[2], ACCOUNTS[6]]
SESSION = ACCOUNTS[3]
OUTSIDER = ACCOUNTS[5]


@dataclass
class ModelChannel:
    cid: bytes
    renter: LocalAccount
    miner: LocalAccount
    deposit: int
    settled: int = 0
    claimed: int = 0
    closes_at: int = 0
    refunded: bool = False
    session_key: str | None = None
    #: The replaced session key and the timestamp until which it still signs.
    previous_key: str | None = None
    previous_until: int = 0

    def final(self, now: int) -> bool:
        return self.closes_at != 0 and now >= self.closes_at


@dataclass
class Model:
    now: int
    channels: list[ModelChannel] = field(default_factory=list)
    accrued: int = 0
    #: address -> tokens received from the escrow (miners, renters' refunds, pool)
    paid: dict[str, int] = field(default_factory=dict)
    #: address -> tokens sent to the escrow
    deposited: dict[str, int] = field(default_factory=dict)

    def pay(self, who: str, amount: int) -> None:
        self.paid[who] = self.paid.get(who, 0) + amount


class EscrowMachine(RuleBasedStateMachine):
    w3: Web3
    escrow: EscrowClient
    token: SubnetTokenClient
    pool: str

    def __init__(self) -> None:
        super().__init__()
        self.snap = snapshot(self.w3)
        self.model = Model(now=latest_timestamp(self.w3) + 10)
        self.watch = [*{a.address for a in (*RENTERS, *MINERS)}, self.pool]
        self.start_balances = {a: self.token.balance_of(a) for a in self.watch}
        self.seen: dict[bytes, tuple[int, int]] = {}
        self.salt_counter = 0

    def teardown(self) -> None:
        revert(self.w3, self.snap)

    # ------------------------------------------------------------------ helpers

    def _tick(self) -> None:
        self.model.now += 1
        set_next_timestamp(self.w3, self.model.now)

    def _run(self, expected: str | None, action: Callable[[], None]) -> None:
        """Run ``action`` in the next block; it must fail with ``expected`` (or succeed if None)."""
        self._tick()
        try:
            action()
        except ContractRevert as exc:
            assert exc.error_name == expected, f"expected {expected or 'success'}, got {exc}"
            return
        assert expected is None, f"expected {expected}, but the transaction succeeded"

    def _tx(self, fn_name: str, *args: Any, sender: LocalAccount) -> None:
        """Send with a fixed gas limit: no estimate, so a failing call is mined (and decoded) at
        the timestamp the model set, exactly like a succeeding one."""
        self.escrow.transact(fn_name, *args, sender=sender, gas=TX_GAS)

    def _channel(self, index: int) -> ModelChannel:
        return self.model.channels[index % len(self.model.channels)]

    def _sign(self, ch: ModelChannel, amount: int, who: str) -> Voucher:
        signer = {"renter": ch.renter, "session": SESSION, "outsider": OUTSIDER}[who]
        return sign_voucher(
            signer,
            escrow=self.escrow.address,
            chain_id=31337,
            channel_id=ch.cid,
            cumulative_amount=amount,
        )

    def _settle_error(self, ch: ModelChannel, amount: int, who: str, now: int) -> str | None:
        """The contract's check order in ``_settle``."""
        if ch.final(now):
            return "EscrowChannelFinal"
        if amount <= ch.settled:
            return "EscrowVoucherStale"
        if amount > ch.deposit:
            return "EscrowVoucherExceedsDeposit"
        if who == "outsider":
            return "EscrowSignerUnauthorised"
        # A replaced key still signs until one grace period after the change.
        replaced_ok = ch.previous_key == SESSION.address and now < ch.previous_until
        if who == "session" and ch.session_key != SESSION.address and not replaced_ok:
            return "EscrowSignerUnauthorised"
        return None

    def _claim_into(self, ch: ModelChannel) -> tuple[int, int]:
        net, fee = split_claim(ch.claimed, ch.settled, FEE_BPS)
        ch.claimed = ch.settled
        return net, fee

    # ------------------------------------------------------------------ rules

    @precondition(lambda self: len(self.model.channels) < MAX_CHANNELS)
    @rule(
        renter=st.sampled_from(RENTERS),
        miner=st.sampled_from(MINERS),
        amount=st.integers(0, 20_000),
    )
    def open(self, renter: LocalAccount, miner: LocalAccount, amount: int) -> None:
        self.salt_counter += 1
        s = salt(self.salt_counter)
        cid = self.escrow.channel_id(renter.address, miner.address, self.token.address, s)
        expected = None if amount > 0 else "EscrowNothingReceived"
        self._run(
            expected,
            lambda: self._tx("open", miner.address, self.token.address, s, amount, sender=renter),
        )
        if expected is None:
            self.model.channels.append(ModelChannel(cid, renter, miner, amount))
            self.model.deposited[renter.address] = (
                self.model.deposited.get(renter.address, 0) + amount
            )

    @precondition(lambda self: self.model.channels)
    @rule(index=st.integers(0, MAX_CHANNELS), amount=st.integers(0, 5_000), by_renter=st.booleans())
    def top_up(self, index: int, amount: int, by_renter: bool) -> None:
        ch = self._channel(index)
        caller = ch.renter if by_renter else OUTSIDER
        if caller is not ch.renter:
            expected: str | None = "EscrowNotRenter"
        elif ch.closes_at != 0:
            expected = "EscrowChannelClosing"
        elif amount == 0:
            expected = "EscrowNothingReceived"
        else:
            expected = None
        self._run(expected, lambda: self._tx("topUp", ch.cid, amount, sender=caller))
        if expected is None:
            ch.deposit += amount
            self.model.deposited[caller.address] = (
                self.model.deposited.get(caller.address, 0) + amount
            )

    @precondition(lambda self: self.model.channels)
    @rule(index=st.integers(0, MAX_CHANNELS), set_key=st.booleans())
    def set_session_key(self, index: int, set_key: bool) -> None:
        ch = self._channel(index)
        key = SESSION.address if set_key else None
        now = self.model.now + 1
        if ch.closes_at != 0:
            expected: str | None = "EscrowChannelClosing"
        elif now < ch.previous_until:
            expected = "EscrowSessionKeyChangePending"
        else:
            expected = None
        self._run(
            expected, lambda: self._tx("setSessionKey", ch.cid, key or ZERO, sender=ch.renter)
        )
        if expected is None:
            if ch.session_key is not None:
                ch.previous_key, ch.previous_until = ch.session_key, now + GRACE_S
            ch.session_key = key

    @precondition(lambda self: self.model.channels)
    @rule(
        index=st.integers(0, MAX_CHANNELS),
        delta=st.integers(-100, 6_000),
        who=st.sampled_from(["renter", "renter", "session", "outsider"]),
    )
    def settle(self, index: int, delta: int, who: str) -> None:
        ch = self._channel(index)
        amount = max(0, ch.settled + delta)
        voucher = self._sign(ch, amount, who)
        expected = self._settle_error(ch, amount, who, self.model.now + 1)
        self._run(
            expected, lambda: self._tx("settle", ch.cid, amount, voucher.signature, sender=OUTSIDER)
        )
        if expected is None:
            ch.settled = amount

    @precondition(lambda self: self.model.channels)
    @rule(
        picks=st.lists(
            st.tuples(
                st.integers(0, MAX_CHANNELS),
                st.integers(-10, 3_000),
                st.sampled_from(["renter", "session"]),
            ),
            min_size=1,
            max_size=3,
        )
    )
    def settle_many(self, picks: list[tuple[int, int, str]]) -> None:
        now = self.model.now + 1
        trial = {id(c): replace(c) for c in self.model.channels}
        vouchers, expected = [], None
        for index, delta, who in picks:
            ch = trial[id(self._channel(index))]
            amount = max(0, ch.settled + delta)
            vouchers.append(self._sign(ch, amount, who))
            if expected is None:
                # Races are skipped (VoucherSkipped), anything else reverts the batch.
                if amount <= ch.settled or ch.final(now):
                    continue
                expected = self._settle_error(ch, amount, who, now)
                if expected is None:
                    ch.settled = amount
        self._run(
            expected,
            lambda: self._tx(
                "settleMany",
                [v.channel_id for v in vouchers],
                [v.cumulative_amount for v in vouchers],
                [v.signature for v in vouchers],
                sender=MINERS[0],
            ),
        )
        if expected is None:
            for c in self.model.channels:
                c.settled = trial[id(c)].settled

    @precondition(lambda self: self.model.channels)
    @rule(indices=st.lists(st.integers(0, MAX_CHANNELS), min_size=1, max_size=4))
    def claim(self, indices: list[int]) -> None:
        chans = [self._channel(i) for i in indices]
        mixed = any(c.miner is not chans[0].miner for c in chans)
        expected = "EscrowBatchMixed" if mixed else None
        self._run(
            expected, lambda: self._tx("claimEarnings", [c.cid for c in chans], sender=OUTSIDER)
        )
        if expected is None:
            for ch in chans:
                net, fee = self._claim_into(ch)
                self.model.pay(ch.miner.address, net)
                self.model.accrued += fee

    @precondition(lambda self: self.model.channels)
    @rule(index=st.integers(0, MAX_CHANNELS), by_renter=st.booleans())
    def request_close(self, index: int, by_renter: bool) -> None:
        ch = self._channel(index)
        caller = ch.renter if by_renter else ch.miner
        now = self.model.now + 1
        if caller is not ch.renter:
            expected: str | None = "EscrowNotRenter"
        elif ch.closes_at != 0:
            expected = "EscrowChannelFinal" if ch.final(now) else "EscrowChannelClosing"
        else:
            expected = None
        self._run(expected, lambda: self._tx("requestClose", ch.cid, sender=caller))
        if expected is None:
            ch.closes_at = now + GRACE_S

    @precondition(lambda self: self.model.channels)
    @rule(index=st.integers(0, MAX_CHANNELS))
    def withdraw(self, index: int) -> None:
        ch = self._channel(index)
        now = self.model.now + 1
        if ch.closes_at == 0:
            expected: str | None = "EscrowCloseNotRequested"
        elif now < ch.closes_at:
            expected = "EscrowGracePeriodActive"
        elif ch.refunded:
            expected = "EscrowAlreadyWithdrawn"
        else:
            expected = None
        self._run(expected, lambda: self._tx("withdraw", ch.cid, sender=OUTSIDER))
        if expected is None:
            ch.refunded = True
            self.model.pay(ch.renter.address, ch.deposit - ch.settled)

    @precondition(lambda self: self.model.channels)
    @rule(
        index=st.integers(0, MAX_CHANNELS),
        delta=st.one_of(st.none(), st.integers(-10, 4_000)),
        by_miner=st.booleans(),
    )
    def cooperative_close(self, index: int, delta: int | None, by_miner: bool) -> None:
        ch = self._channel(index)
        caller = ch.miner if by_miner else ch.renter
        now = self.model.now + 1
        voucher = None if delta is None else self._sign(ch, max(0, ch.settled + delta), "renter")
        if caller is not ch.miner:
            expected: str | None = "EscrowNotMiner"
        elif ch.final(now):
            expected = "EscrowChannelFinal"
        elif voucher is not None:
            expected = self._settle_error(ch, voucher.cumulative_amount, "renter", now)
        else:
            expected = None
        self._run(
            expected,
            lambda: self._tx(
                "cooperativeClose",
                ch.cid,
                voucher.cumulative_amount if voucher else 0,
                voucher.signature if voucher else b"",
                sender=caller,
            ),
        )
        if expected is None:
            if voucher is not None:
                ch.settled = voucher.cumulative_amount
            ch.closes_at = now
            ch.refunded = True
            self.model.pay(ch.renter.address, ch.deposit - ch.settled)
            net, fee = self._claim_into(ch)
            self.model.pay(ch.miner.address, net)
            self.model.accrued += fee

    @rule()
    def sweep(self) -> None:
        self._run(None, lambda: self._tx("sweepFees", self.token.address, sender=OUTSIDER))
        self.model.pay(self.pool, self.model.accrued)
        self.model.accrued = 0

    @rule(seconds=st.sampled_from([1, 60, GRACE_S - 2, GRACE_S - 1, GRACE_S, 2 * GRACE_S]))
    def advance_time(self, seconds: int) -> None:
        self.model.now += seconds

    # ------------------------------------------------------------------ invariants

    @invariant()
    def balance_equals_obligations(self) -> None:
        owed = sum(
            c.deposit - c.claimed - (c.deposit - c.settled if c.refunded else 0)
            for c in self.model.channels
        )
        assert self.token.balance_of(self.escrow.address) == owed + self.model.accrued
        assert self.escrow.accrued_fees(self.token.address) == self.model.accrued

    @invariant()
    def channels_match_model(self) -> None:
        for c in self.model.channels:
            on_chain = self.escrow.channel(c.cid)
            assert (on_chain.deposit, on_chain.settled, on_chain.claimed) == (
                c.deposit,
                c.settled,
                c.claimed,
            )
            assert (
                on_chain.closes_at,
                on_chain.refunded,
                on_chain.session_key,
                on_chain.previous_session_key,
                on_chain.previous_key_until,
            ) == (c.closes_at, c.refunded, c.session_key, c.previous_key, c.previous_until)
            assert c.claimed <= c.settled <= c.deposit
            prev_settled, prev_claimed = self.seen.get(c.cid, (0, 0))
            assert on_chain.settled >= prev_settled and on_chain.claimed >= prev_claimed
            self.seen[c.cid] = (on_chain.settled, on_chain.claimed)

    @invariant()
    def everyone_got_exactly_their_due(self) -> None:
        for who in self.watch:
            expected = (
                self.start_balances[who]
                + self.model.paid.get(who, 0)
                - self.model.deposited.get(who, 0)
            )
            assert self.token.balance_of(who) == expected, who


def test_escrow_state_machine(
    clean, w3: Web3, escrow: EscrowClient, token: SubnetTokenClient, parties
) -> None:
    EscrowMachine.w3 = w3
    EscrowMachine.escrow = escrow
    EscrowMachine.token = token
    EscrowMachine.pool = parties.pool.address
    run_state_machine_as_test(
        EscrowMachine, settings=settings(settings.default, stateful_step_count=15)
    )
