"""The dashboard's page model: pure functions from chain and HTTP data to ``/api/state`` JSON.

Nothing here does I/O; :mod:`latent.dashboard.sources` reads the chain, the validators and the
miners and hands the results to :func:`build_state`. Units in the model (what the page shows):

* token amounts are floats in whole tokens (18 decimals; display only, never summed back);
* u16 scores (incentive, dividends, consensus, vtrust) are 0-1 fractions of 65535;
* ``updated`` is blocks since the neuron's last weight update or registration, ``active``
  follows subtensor (updated within ``activity_cutoff`` blocks);
* per-miner quality (``pass_rate``, ``tokens_per_s``, ``ttft_s``, ``score``) is the median
  over the validators whose ``/status`` answered and that report the miner; ``None`` when
  none does;
* prices are tokens per LLM token from the miner's ``/v1/models`` (``data[0].pricing``),
  ``None`` when the miner does not publish them.
"""

from __future__ import annotations

import statistics
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import Any

from eth_utils import is_address, to_checksum_address

from chain.metagraph import Metagraph

SCHEMA = 1
TOKEN_DECIMALS = 18
U16_MAX = 65535
#: Epochs of history kept for the charts.
HISTORY_EPOCHS = 64
#: Settlements listed under "recent payments".
RECENT_SETTLEMENTS = 20
#: Quality fields taken from a validator's ``/status`` miner records (median over validators).
QUALITY_FIELDS = ("score", "pass_rate", "tokens_per_s", "ttft_s")


def tokens(base_units: int) -> float:
    """Base units -> whole tokens (float, for display)."""
    return float(Decimal(int(base_units)) / (Decimal(10) ** TOKEN_DECIMALS))


def fraction(u16: int) -> float:
    """A u16 score -> a 0-1 fraction."""
    return int(u16) / U16_MAX


def _hotkey(value: Any) -> str | None:
    if isinstance(value, str) and is_address(value):
        return to_checksum_address(value)
    return None


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value)


# --------------------------------------------------------------------------- validators


@dataclass(frozen=True)
class ValidatorReport:
    """One validator's ``GET /status`` (``status`` is ``None`` when it did not answer)."""

    url: str
    status: Mapping[str, Any] | None
    error: str = ""


@dataclass(frozen=True)
class MinerQuality:
    """Median quality of one miner over the validators that report it."""

    score: float | None = None
    pass_rate: float | None = None
    tokens_per_s: float | None = None
    ttft_s: float | None = None
    checks: int = 0
    validators: int = 0
    last_reason: str = ""


def miner_quality(reports: Iterable[ValidatorReport]) -> dict[str, MinerQuality]:
    """Per miner hotkey: the median of each quality field over the validators reporting it
    (validators that did not answer, and malformed records, are skipped)."""
    values: dict[str, dict[str, list[float]]] = {}
    checks: dict[str, int] = {}
    reasons: dict[str, str] = {}
    for report in reports:
        miners = report.status.get("miners") if report.status else None
        if not isinstance(miners, list):
            continue
        for record in miners:
            if not isinstance(record, Mapping):
                continue
            hotkey = _hotkey(record.get("hotkey"))
            if hotkey is None:
                continue
            per_field = values.setdefault(hotkey, {name: [] for name in (*QUALITY_FIELDS, "_")})
            per_field["_"].append(1.0)
            for name in QUALITY_FIELDS:
                number = _number(record.get(name))
                if number is not None:
                    per_field[name].append(number)
            count = record.get("checks")
            if isinstance(count, int) and not isinstance(count, bool):
                checks[hotkey] = checks.get(hotkey, 0) + count
            reason = record.get("last_reason")
            if isinstance(reason, str) and reason:
                reasons[hotkey] = reason
    return {
        hotkey: MinerQuality(
            **{
                name: statistics.median(per_field[name]) if per_field[name] else None
                for name in QUALITY_FIELDS
            },
            checks=checks.get(hotkey, 0),
            validators=len(per_field["_"]),
            last_reason=reasons.get(hotkey, ""),
        )
        for hotkey, per_field in values.items()
    }


def validators_model(reports: Sequence[ValidatorReport]) -> list[dict[str, Any]]:
    """One entry per configured validator URL: reachable or not, its hotkey and round."""
    out = []
    for report in reports:
        status = report.status or {}
        miners = status.get("miners")
        out.append(
            {
                "url": report.url,
                "ok": report.status is not None,
                "error": report.error,
                "hotkey": _hotkey(status.get("hotkey")),
                "round": status.get("round") if isinstance(status.get("round"), int) else None,
                "miners": len(miners) if isinstance(miners, list) else 0,
                "last_commit": status.get("last_commit"),
                "last_reveal": status.get("last_reveal"),
            }
        )
    return out


# --------------------------------------------------------------------------- prices


@dataclass(frozen=True)
class Pricing:
    """A miner's published price in tokens per LLM token."""

    prompt: float
    completion: float


def _price(value: Any) -> float | None:
    if isinstance(value, bool):
        return None
    try:
        price = Decimal(str(value))
    except InvalidOperation:
        return None
    return float(price) if price.is_finite() and price >= 0 else None


def parse_pricing(models: Any) -> Pricing | None:
    """``data[0].pricing = {"prompt": "<decimal>", "completion": "<decimal>"}`` of a
    ``/v1/models`` answer, or ``None`` when absent or malformed."""
    if not isinstance(models, Mapping):
        return None
    data = models.get("data")
    if not isinstance(data, list) or not data or not isinstance(data[0], Mapping):
        return None
    pricing = data[0].get("pricing")
    if not isinstance(pricing, Mapping):
        return None
    prompt, completion = _price(pricing.get("prompt")), _price(pricing.get("completion"))
    if prompt is None or completion is None:
        return None
    return Pricing(prompt, completion)


# --------------------------------------------------------------------------- metagraph


def neuron_rows(
    mg: Metagraph,
    block: int,
    quality: Mapping[str, MinerQuality],
    prices: Mapping[str, Pricing | None],
) -> list[dict[str, Any]]:
    """The metagraph table: one row per uid (taostats columns plus miner quality and price).

    ``prices`` is keyed by endpoint URL; ``block`` is the block the page reports (for
    ``updated`` and ``active``)."""
    cutoff = mg.hyperparameters.activity_cutoff
    rows = []
    for info in mg.neurons():
        since = max(0, block - info.last_update)
        q = quality.get(info.hotkey, MinerQuality())
        price = prices.get(info.endpoint) if info.endpoint else None
        rows.append(
            {
                "uid": info.uid,
                "hotkey": info.hotkey,
                "coldkey": info.coldkey,
                "stake": tokens(info.stake),
                "validator_permit": info.validator_permit,
                "vtrust": fraction(info.validator_trust),
                "consensus": fraction(info.consensus),
                "incentive": fraction(info.incentive),
                "dividends": fraction(info.dividends),
                "emission": tokens(info.emission),
                "updated": since,
                "active": since <= cutoff,
                "endpoint": info.endpoint,
                "registered_at": info.registered_at,
                "score": q.score,
                "pass_rate": q.pass_rate,
                "tokens_per_s": q.tokens_per_s,
                "ttft_s": q.ttft_s,
                "checks": q.checks,
                "reported_by": q.validators,
                "last_reason": q.last_reason,
                "price_prompt": price.prompt if price else None,
                "price_completion": price.completion if price else None,
            }
        )
    return rows


# --------------------------------------------------------------------------- history


@dataclass(frozen=True)
class EpochRecord:
    """One completed epoch: its ``EpochCompleted`` log and the metagraph scores at that block."""

    epoch_block: int
    completed_block: int
    distributed: int
    hotkeys: tuple[str, ...]
    incentive: tuple[int, ...]
    dividends: tuple[int, ...]
    emission: tuple[int, ...]

    @classmethod
    def from_snapshot(
        cls, epoch_block: int, completed_block: int, distributed: int, mg: Metagraph
    ) -> EpochRecord:
        return cls(
            epoch_block=epoch_block,
            completed_block=completed_block,
            distributed=distributed,
            hotkeys=mg.hotkeys,
            incentive=mg.incentive,
            dividends=mg.dividends,
            emission=mg.emission,
        )


def history_model(records: Sequence[EpochRecord], limit: int = HISTORY_EPOCHS) -> dict[str, Any]:
    """Chart data: the last ``limit`` epochs and one series per hotkey (a uid handed to a new
    hotkey starts a new series; ``None`` where the hotkey was not registered)."""
    kept = sorted(records, key=lambda r: r.epoch_block)[-limit:]
    order: list[str] = []
    uid_of: dict[str, int] = {}
    for record in kept:
        for uid, hotkey in enumerate(record.hotkeys):
            if hotkey not in uid_of:
                order.append(hotkey)
            uid_of[hotkey] = uid
    series = []
    for hotkey in order:
        points: dict[str, list[float | None]] = {"incentive": [], "dividends": [], "emission": []}
        for record in kept:
            try:
                uid = record.hotkeys.index(hotkey)
            except ValueError:
                for values in points.values():
                    values.append(None)
                continue
            points["incentive"].append(fraction(record.incentive[uid]))
            points["dividends"].append(fraction(record.dividends[uid]))
            points["emission"].append(tokens(record.emission[uid]))
        series.append({"uid": uid_of[hotkey], "hotkey": hotkey, **points})
    return {
        "epochs": [r.epoch_block for r in kept],
        "completed": [r.completed_block for r in kept],
        "distributed": [tokens(r.distributed) for r in kept],
        "series": series,
    }


# --------------------------------------------------------------------------- escrow


@dataclass(frozen=True)
class EscrowEvent:
    """A decoded PaymentEscrow log (``name`` is the event, ``args`` its arguments)."""

    name: str
    block: int
    log_index: int
    tx_hash: str
    args: Mapping[str, Any]


@dataclass
class _Channel:
    channel_id: str
    renter: str
    miner: str
    opened_block: int
    deposit: int = 0
    settled: int = 0
    fees: int = 0
    settlements: int = 0
    refund: int | None = None
    closes_at: int | None = None
    last_block: int = 0
    extra: dict[str, Any] = field(default_factory=dict)


def _cid(value: Any) -> str:
    return "0x" + bytes(value).hex() if isinstance(value, bytes | bytearray) else str(value)


def escrow_model(
    events: Iterable[EscrowEvent],
    uids: Mapping[str, int],
    *,
    timestamps: Mapping[int, int] | None = None,
    recent: int = RECENT_SETTLEMENTS,
) -> dict[str, Any]:
    """Channels (deposit, settled, remaining, status) and the last ``recent`` settlements,
    replayed from ``ChannelOpened`` / ``ChannelToppedUp`` / ``VoucherSettled`` /
    ``CloseRequested`` / ``ChannelClosed`` logs. ``uids`` maps miner hotkeys to uids;
    ``timestamps`` block -> unix time (for the settlements, where known)."""
    channels: dict[str, _Channel] = {}
    settled_events: list[EscrowEvent] = []
    for event in sorted(events, key=lambda e: (e.block, e.log_index)):
        cid = _cid(event.args.get("channelId"))
        if event.name == "ChannelOpened":
            channels[cid] = _Channel(
                channel_id=cid,
                renter=to_checksum_address(event.args["renter"]),
                miner=to_checksum_address(event.args["miner"]),
                opened_block=event.block,
                deposit=int(event.args["deposit"]),
            )
        channel = channels.get(cid)
        if channel is None:
            continue  # opened before the scanned range
        channel.last_block = event.block
        if event.name == "ChannelToppedUp":
            channel.deposit = int(event.args["deposit"])
        elif event.name == "VoucherSettled":
            channel.settled = int(event.args["cumulative"])
            channel.fees += int(event.args["fee"])
            channel.settlements += 1
            settled_events.append(event)
        elif event.name == "CloseRequested":
            channel.closes_at = int(event.args["closesAt"])
        elif event.name == "ChannelClosed":
            channel.refund = int(event.args["refund"])
    rows = []
    for c in sorted(channels.values(), key=lambda c: (-c.last_block, c.channel_id)):
        status = "closed" if c.refund is not None else "closing" if c.closes_at else "open"
        rows.append(
            {
                "channel_id": c.channel_id,
                "renter": c.renter,
                "miner": c.miner,
                "miner_uid": uids.get(c.miner),
                "deposit": tokens(c.deposit),
                "settled": tokens(c.settled),
                "remaining": 0.0 if c.refund is not None else tokens(c.deposit - c.settled),
                "fees": tokens(c.fees),
                "settlements": c.settlements,
                "status": status,
                "opened_block": c.opened_block,
                "last_block": c.last_block,
            }
        )
    times = timestamps or {}
    payments = []
    for event in reversed(settled_events[-recent:]):
        channel = channels[_cid(event.args["channelId"])]
        payments.append(
            {
                "channel_id": channel.channel_id,
                "renter": channel.renter,
                "miner": channel.miner,
                "miner_uid": uids.get(channel.miner),
                "amount": tokens(int(event.args["amount"])),
                "fee": tokens(int(event.args["fee"])),
                "cumulative": tokens(int(event.args["cumulative"])),
                "block": event.block,
                "timestamp": times.get(event.block),
                "tx_hash": event.tx_hash,
            }
        )
    open_channels = [r for r in rows if r["status"] != "closed"]
    return {
        "channels": rows,
        "settlements": payments,
        "totals": {
            "channels": len(rows),
            "open": len(open_channels),
            "deposited": sum(r["deposit"] for r in rows),
            "settled": sum(r["settled"] for r in rows),
            "remaining": sum(r["remaining"] for r in open_channels),
        },
    }


def settlement_blocks(events: Iterable[EscrowEvent], recent: int = RECENT_SETTLEMENTS) -> list[int]:
    """Blocks of the last ``recent`` settlements (whose timestamps the page shows)."""
    blocks = [e.block for e in events if e.name == "VoucherSettled"]
    return sorted(set(blocks[-recent:]))


# --------------------------------------------------------------------------- the page


@dataclass(frozen=True)
class ChainInfo:
    """Where the chain stands (read at ``block``)."""

    network: str
    chain_id: int
    block: int
    timestamp: int
    metagraph: str
    epoch: str
    escrow: str
    last_epoch_block: int
    next_epoch_block: int


def build_state(
    chain: ChainInfo,
    mg: Metagraph,
    *,
    reports: Sequence[ValidatorReport] = (),
    prices: Mapping[str, Pricing | None] | None = None,
    history: Sequence[EpochRecord] = (),
    escrow_events: Iterable[EscrowEvent] = (),
    timestamps: Mapping[int, int] | None = None,
    errors: Sequence[str] = (),
    now: float = 0.0,
) -> dict[str, Any]:
    """The whole ``/api/state`` document::

        {"schema": 1, "generated_at": unix s,
         "network": {name, chain_id, block, block_timestamp},
         "contracts": {metagraph, epoch, escrow},
         "subnet": {n, max_uids, tempo, activity_cutoff, registration_price, total_stake,
                    validators, active, emission_per_epoch, last_epoch_block,
                    next_epoch_block, blocks_to_epoch},
         "neurons": [neuron_rows(...) entries, by uid],
         "history": history_model(...),        # epochs, completed, distributed, series
         "escrow": escrow_model(...),          # channels, settlements, totals
         "validators": validators_model(...),  # url, ok, error, hotkey, round, miners, ...
         "errors": [str]}

    ``/api/state`` adds ``stale`` and ``error`` (the last refresh failed: the data is older).
    """
    hp = mg.hyperparameters
    quality = miner_quality(reports)
    neurons = neuron_rows(mg, chain.block, quality, prices or {})
    uids = {hotkey: uid for uid, hotkey in enumerate(mg.hotkeys)}
    return {
        "schema": SCHEMA,
        "generated_at": now,
        "network": {
            "name": chain.network,
            "chain_id": chain.chain_id,
            "block": chain.block,
            "block_timestamp": chain.timestamp,
        },
        "contracts": {
            "metagraph": chain.metagraph,
            "epoch": chain.epoch,
            "escrow": chain.escrow,
        },
        "subnet": {
            "n": mg.n,
            "max_uids": hp.max_uids,
            "tempo": hp.tempo,
            "activity_cutoff": hp.activity_cutoff,
            "registration_price": tokens(mg.registration_price),
            "total_stake": tokens(sum(mg.stake)),
            "validators": sum(mg.validator_permit),
            "active": sum(1 for n in neurons if n["active"]),
            "emission_per_epoch": tokens(sum(mg.emission)),
            "last_epoch_block": chain.last_epoch_block,
            "next_epoch_block": chain.next_epoch_block,
            "blocks_to_epoch": max(0, chain.next_epoch_block - chain.block),
        },
        "neurons": neurons,
        "history": history_model(history),
        "escrow": escrow_model(escrow_events, uids, timestamps=timestamps),
        "validators": validators_model(reports),
        "errors": list(errors),
    }


__all__ = [
    "SCHEMA",
    "ChainInfo",
    "EpochRecord",
    "EscrowEvent",
    "MinerQuality",
    "Pricing",
    "ValidatorReport",
    "build_state",
    "escrow_model",
    "fraction",
    "history_model",
    "miner_quality",
    "neuron_rows",
    "parse_pricing",
    "settlement_blocks",
    "tokens",
    "validators_model",
]
