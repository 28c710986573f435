"""``latent miner settle``: settle the newest voucher of every channel, then claim earnings.

Pure core: :func:`plan_settlement` decides, from the voucher book and the channels read from
chain, which vouchers to settle and why the others are skipped. The edge,
:func:`settle_vouchers`, reads the channels, sends one ``settleMany`` and one
``claimEarnings`` per token, and returns a :class:`SettlementReport`. :func:`settle_command`
is the typer command the lead mounts under ``latent miner``.

Skip rule: settling a voucher costs about :data:`SETTLE_GAS_PER_VOUCHER` gas (the marginal
cost in a ``settleMany``; the measured figure is ~19.3k). A channel is skipped when that gas,
valued in the channel's token at ``token_price_native`` (native coin per whole token), costs
more than what the miner would receive (the increment minus the protocol fee). The whole
batch is skipped when its total value does not cover the transaction's base cost either.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Annotated

import typer
from eth_account.signers.local import LocalAccount
from eth_utils import to_checksum_address
from web3.exceptions import Web3Exception

from chain.cli_options import DevOpt, JsonOpt, KeystoreOpt, NetworkOpt, RpcOpt, WalletOpt
from chain.errors import LatentError, TransactionFailed
from chain.escrow import Channel, EscrowClient, split_claim
from chain.token import format_token_amount
from chain.vouchers import Voucher, VoucherBook, VoucherSignatureInvalid, recover_voucher_signer

log = logging.getLogger("latent.miner.settlement")

#: Marginal gas of one voucher inside ``settleMany`` (measured 19.3k; rounded up).
SETTLE_GAS_PER_VOUCHER = 21_000
#: Gas of a transaction carrying a batch, beyond its vouchers (intrinsic 21k + dispatch).
SETTLE_GAS_BASE = 24_000
#: Gas of a claim: base plus per channel (measured 59k for one, 181k for ten).
CLAIM_GAS_BASE = 46_000
CLAIM_GAS_PER_CHANNEL = 14_000


@dataclass(frozen=True)
class SettlementPolicy:
    """How the miner values gas against earnings."""

    #: Gas price the transactions will pay, in wei.
    gas_price_wei: int
    #: Value of one whole token in the chain's native coin (1.0 = parity, e.g. on localnet).
    token_price_native: Fraction = Fraction(1)
    #: Token decimals (SubnetToken: 18).
    token_decimals: int = 18

    def gas_cost_in_token_units(self, gas: int) -> Fraction:
        """What ``gas`` costs, in token base units."""
        wei = Fraction(gas * self.gas_price_wei)
        return wei * 10**self.token_decimals / (self.token_price_native * 10**18)


@dataclass(frozen=True)
class SettlementPlan:
    """Vouchers to settle and channels skipped, with the reason for each skip."""

    to_settle: tuple[Voucher, ...]
    skipped: tuple[tuple[bytes, str], ...]
    #: Net tokens the settled vouchers credit to the miner, per token.
    net_by_token: Mapping[str, int]


def plan_settlement(
    vouchers: Sequence[Voucher],
    channels: Mapping[bytes, Channel | None],
    *,
    miner: str,
    escrow: str,
    chain_id: int,
    policy: SettlementPolicy,
    min_amount: int = 0,
) -> SettlementPlan:
    """Decide which vouchers are worth settling (pure: no I/O).

    ``min_amount``: smallest increment (token base units) worth settling on an open channel;
    a channel whose renter requested close is settled whatever the increment (its voucher is
    lost at finalisation), as long as the gas does not cost more than it pays.
    """
    miner = to_checksum_address(miner)
    chosen: list[Voucher] = []
    skipped: list[tuple[bytes, str]] = []
    net_by_token: dict[str, int] = {}
    per_voucher_cost = policy.gas_cost_in_token_units(SETTLE_GAS_PER_VOUCHER)
    for voucher in vouchers:
        cid = voucher.channel_id
        ch = channels.get(cid)
        if ch is None:
            skipped.append((cid, "no such channel on this escrow"))
            continue
        if ch.miner != miner:
            skipped.append((cid, f"channel pays {ch.miner}, not this miner"))
            continue
        if ch.finalised:
            skipped.append((cid, "channel is final"))
            continue
        if voucher.cumulative_amount <= ch.settled:
            skipped.append((cid, "already settled"))
            continue
        if voucher.cumulative_amount > ch.deposit:
            skipped.append((cid, "voucher exceeds the deposit"))
            continue
        try:
            signer = recover_voucher_signer(voucher, escrow=escrow, chain_id=chain_id)
        except VoucherSignatureInvalid:
            skipped.append((cid, "invalid signature"))
            continue
        if not ch.may_sign(signer):
            skipped.append((cid, f"signed by {signer}, not the renter or session key"))
            continue
        increment = voucher.cumulative_amount - ch.settled
        # A voucher of a replaced session key settles only until its grace period ends:
        # settle it now, like a closing channel's.
        urgent = ch.closing or signer not in (ch.renter, ch.session_key)
        if not urgent and increment < min_amount:
            skipped.append(
                (
                    cid,
                    f"increment {format_token_amount(increment)} below the minimum "
                    f"{format_token_amount(min_amount)}",
                )
            )
            continue
        net, _ = split_claim(ch.settled, voucher.cumulative_amount, ch.fee_bps)
        if per_voucher_cost > net:
            skipped.append(
                (
                    cid,
                    f"gas (~{format_token_amount(int(per_voucher_cost))}) exceeds the amount "
                    f"({format_token_amount(net)})",
                )
            )
            continue
        chosen.append(voucher)
        net_by_token[ch.token] = net_by_token.get(ch.token, 0) + net
    if chosen:
        total_cost = policy.gas_cost_in_token_units(
            SETTLE_GAS_BASE + SETTLE_GAS_PER_VOUCHER * len(chosen)
        )
        if total_cost > sum(net_by_token.values()):
            reason = "batch too small to pay for its gas"
            return SettlementPlan((), tuple(skipped + [(v.channel_id, reason) for v in chosen]), {})
    return SettlementPlan(tuple(chosen), tuple(skipped), net_by_token)


@dataclass
class SettlementReport:
    """What a settlement run did."""

    settled: list[tuple[bytes, int]] = field(default_factory=list)
    skipped: list[tuple[bytes, str]] = field(default_factory=list)
    #: token -> tokens paid to the miner by claims in this run
    claimed: dict[str, int] = field(default_factory=dict)
    gas_used: int = 0
    transactions: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, object]:
        """JSON form (ids in hex, amounts as decimal strings of base units in ``*_wei``)."""
        return {
            "settled": [
                {"channel_id": "0x" + c.hex(), "cumulative_wei": str(a)} for c, a in self.settled
            ],
            "skipped": [{"channel_id": "0x" + c.hex(), "reason": r} for c, r in self.skipped],
            "claimed_wei": {t: str(a) for t, a in self.claimed.items()},
            "gas_used": self.gas_used,
            "transactions": self.transactions,
        }


def settle_vouchers(
    escrow: EscrowClient,
    book: VoucherBook,
    miner: LocalAccount,
    *,
    policy: SettlementPolicy,
    claim: bool = True,
    dry_run: bool = False,
    min_amount: int = 0,
) -> SettlementReport:
    """Settle the book's newest vouchers worth settling, then claim the miner's earnings."""
    vouchers = book.vouchers()
    channels = {v.channel_id: escrow.find_channel(v.channel_id) for v in vouchers}
    plan = plan_settlement(
        vouchers,
        channels,
        miner=miner.address,
        escrow=escrow.address,
        chain_id=escrow.chain_id,
        policy=policy,
        min_amount=min_amount,
    )
    report = SettlementReport(skipped=list(plan.skipped))
    if plan.to_settle:
        if dry_run:
            escrow.estimate_settle_many(plan.to_settle, sender=miner.address)  # surfaces reverts
        else:
            receipt = escrow.settle_many(plan.to_settle, sender=miner)
            report.gas_used += int(receipt["gasUsed"])
            report.transactions.append("0x" + bytes(receipt["transactionHash"]).hex())
        report.settled = [(v.channel_id, v.cumulative_amount) for v in plan.to_settle]
    if not claim:
        return report

    # Claim every channel of ours with settled-but-unclaimed earnings, one claim per token.
    by_token: dict[str, list[bytes]] = {}
    expected: dict[str, int] = {}
    settled_now = dict(report.settled)
    for cid, ch in channels.items():
        if ch is None or ch.miner != miner.address:
            continue
        settled = max(ch.settled, settled_now.get(cid, 0))
        if settled > ch.claimed:
            by_token.setdefault(ch.token, []).append(cid)
            expected[ch.token] = (
                expected.get(ch.token, 0) + split_claim(ch.claimed, settled, ch.fee_bps)[0]
            )
    for token, cids in sorted(by_token.items()):
        cost = policy.gas_cost_in_token_units(CLAIM_GAS_BASE + CLAIM_GAS_PER_CHANNEL * len(cids))
        if cost > expected[token]:
            report.skipped.extend((c, "claim too small to pay for its gas") for c in cids)
            continue
        if dry_run:
            report.claimed[token] = expected[token]
            continue
        receipt = escrow.claim_earnings(cids, sender=miner)
        events = escrow.events(receipt, "EarningsClaimed")
        report.claimed[token] = sum(int(e["paid"]) for e in events)
        report.gas_used += int(receipt["gasUsed"])
        report.transactions.append("0x" + bytes(receipt["transactionHash"]).hex())
    return report


async def run_settlement_keeper(
    escrow: EscrowClient,
    book: VoucherBook,
    miner: LocalAccount,
    *,
    interval_s: float,
    min_amount: int = 0,
    stop: asyncio.Event,
    token_price_native: Fraction = Fraction(1),
) -> None:
    """Settle and claim every ``interval_s`` until ``stop`` is set (runs in the miner's loop).

    Chain I/O runs in a worker thread; a failed pass is logged and retried next interval.
    """
    while not stop.is_set():
        try:
            gas_price = await asyncio.to_thread(lambda: int(escrow.w3.eth.gas_price))
            policy = SettlementPolicy(
                gas_price_wei=gas_price, token_price_native=token_price_native
            )
            report = await asyncio.to_thread(
                settle_vouchers, escrow, book, miner, policy=policy, min_amount=min_amount
            )
            if report.settled or report.claimed:
                log.info(
                    "settled %d vouchers, claimed %s, gas %d",
                    len(report.settled),
                    ", ".join(format_token_amount(a) for a in report.claimed.values()) or "nothing",
                    report.gas_used,
                )
        except (LatentError, Web3Exception, OSError) as exc:
            log.warning("settlement pass failed (retrying in %.0fs): %s", interval_s, exc)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), timeout=interval_s)


def settle_command(
    vouchers: Annotated[
        Path | None,
        typer.Option(
            "--vouchers",
            help="Voucher book (default: the one `latent miner run` writes for this key).",
        ),
    ] = None,
    escrow: Annotated[
        str | None,
        typer.Option("--escrow", help="PaymentEscrow address (default: the network's manifest)."),
    ] = None,
    network: NetworkOpt = "localnet",
    rpc_url: RpcOpt = None,
    keystore: KeystoreOpt = None,
    wallet: WalletOpt = None,
    hotkey: Annotated[
        str | None,
        typer.Option("--hotkey", help="Hotkey name in the wallet (the miner's payee key)."),
    ] = None,
    dev_account: DevOpt = None,
    gas_price_gwei: Annotated[
        float | None,
        typer.Option("--gas-price-gwei", help="Value gas at this price (default: the node's)."),
    ] = None,
    token_price_native: Annotated[
        float,
        typer.Option(
            "--token-price-native", help="Native coin per whole token, to value gas in tokens."
        ),
    ] = 1.0,
    claim: Annotated[
        bool, typer.Option("--claim/--no-claim", help="Also pay out settled earnings.")
    ] = True,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Plan and estimate; send nothing.")
    ] = False,
    json_out: JsonOpt = False,
) -> None:
    """Settle the newest voucher of each channel (skipping those not worth their gas) and claim."""
    from chain.target import open_target
    from miner.config import default_voucher_book

    if token_price_native <= 0:
        raise LatentError("--token-price-native must be positive")
    chain = open_target(network, rpc_url)
    w3 = chain.w3
    address = chain.address("PaymentEscrow", escrow, flag="escrow")
    account = chain.account(
        keystore=keystore, wallet=wallet, hotkey=hotkey, dev_account=dev_account
    )
    vouchers = vouchers or default_voucher_book(account.address)
    if not vouchers.exists():
        raise LatentError(
            f"no voucher book at {vouchers}; pass the --vouchers file the miner writes"
        )
    gas_price = int(gas_price_gwei * 10**9) if gas_price_gwei is not None else int(w3.eth.gas_price)
    policy = SettlementPolicy(
        gas_price_wei=gas_price, token_price_native=Fraction(str(token_price_native))
    )
    try:
        report = settle_vouchers(
            EscrowClient(w3, address),
            VoucherBook(vouchers),
            account,
            policy=policy,
            claim=claim,
            dry_run=dry_run,
        )
    except TransactionFailed as exc:
        raise LatentError(f"settlement failed: {exc}; nothing was settled") from None
    if json_out:
        print(json.dumps(report.to_json(), indent=2))
        return
    for cid, amount in report.settled:
        shown = format_token_amount(amount)
        print(f"{'would settle' if dry_run else 'settled'} 0x{cid.hex()}  cumulative {shown}")
    for cid, reason in report.skipped:
        print(f"skipped 0x{cid.hex()}  {reason}")
    for token, paid in report.claimed.items():
        shown = format_token_amount(paid)
        print(f"{'would claim' if dry_run else 'claimed'} {shown} (token {token})")
    if not dry_run:
        print(f"gas used: {report.gas_used:,}")


__all__ = [
    "SettlementPlan",
    "SettlementPolicy",
    "SettlementReport",
    "plan_settlement",
    "run_settlement_keeper",
    "settle_command",
    "settle_vouchers",
]
