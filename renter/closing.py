"""Closing the proxy's channels: settle what the receipts prove, request close, withdraw.

``latent renter close`` runs :func:`close_channels` over the state directory (with the proxy
stopped, or on channels idle long enough that the proxy is not using them):

1. an ``open`` or ``retired`` channel idle for ``idle_s`` gets the renter's own final
   voucher settled when the miner has not settled it yet (``settle`` may be sent by
   anyone and only pays the miner: this pays exactly the sum of the channel's verified
   receipts, the request the miner served on credit included), then ``requestClose``;
2. a ``closing`` channel whose grace period is over is withdrawn (the refund is the deposit
   less what was settled).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Protocol

from chain.escrow import Channel
from chain.vouchers import Voucher
from renter.ledger import ChannelRecord, LedgerStore, updated


class ClosingFunder(Protocol):
    """The chain operations closing needs (``chain.funding.EscrowFunder``)."""

    def read_channel(self, channel_id: bytes) -> Channel | None: ...

    def sign(self, channel_id: bytes, cumulative: int) -> Voucher: ...

    def settle_own(self, voucher: Voucher) -> None: ...

    def request_close(self, channel_id: bytes) -> int: ...

    def withdraw(self, channel_id: bytes) -> int: ...


@dataclass(frozen=True)
class CloseAction:
    """What happened to one channel."""

    channel_id: bytes
    action: str
    amount: int = 0
    detail: str = ""


def close_channels(
    store: LedgerStore,
    funder: ClosingFunder,
    *,
    idle_s: float = 0.0,
    settle: bool = True,
    now: float | None = None,
) -> list[CloseAction]:
    """Advance every channel of the state directory one step towards closed (module docs)."""
    now = time.time() if now is None else now
    actions: list[CloseAction] = []
    for record in store.load_channels():
        cid = record.channel_id
        onchain = funder.read_channel(cid)
        if onchain is None:
            actions.append(CloseAction(cid, "missing", detail="not on this chain"))
            continue
        if record.status in ("open", "retired") and not onchain.closing:
            if now - record.last_used < idle_s:
                actions.append(CloseAction(cid, "busy", detail="used recently"))
                continue
            settled = 0
            if settle and record.owed > onchain.settled:
                funder.settle_own(funder.sign(cid, record.owed))
                settled = record.owed - onchain.settled
            closes_at = funder.request_close(cid)
            _save(store, record, status="closing", note=f"withdraw from unix {closes_at}")
            actions.append(CloseAction(cid, "close requested", settled, f"closes at {closes_at}"))
        elif record.status == "closed" or onchain.refunded:
            if record.status != "closed":
                _save(store, record, status="closed", note="refunded")
            actions.append(CloseAction(cid, "closed"))
        elif onchain.finalised:
            refund = funder.withdraw(cid)
            _save(store, record, status="closed", note=f"refunded {refund}")
            actions.append(CloseAction(cid, "withdrawn", refund))
        else:
            if record.status != "closing":
                _save(store, record, status="closing", note="closing on-chain")
            actions.append(
                CloseAction(cid, "waiting", detail=f"grace period until {onchain.closes_at}")
            )
    return actions


def _save(store: LedgerStore, record: ChannelRecord, **changes: object) -> None:
    store.save_channel(updated(record, **changes))


__all__ = ["CloseAction", "ClosingFunder", "close_channels"]
