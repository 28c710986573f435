"""Voucher payment gate: the miner serves a channel's request only if it is paid for.

Paid requests carry the header ``X-Latent-Voucher`` (``chain.vouchers.encode_voucher_header``):
a cumulative EIP-712 voucher ``Voucher(bytes32 channelId, uint128 cumulativeAmount)`` for a
PaymentEscrow channel whose miner is this miner.

Credit rule (the miner's exposure is at most one request per channel):

- ``served`` is the total price of every response already delivered on the channel (the
  prices in the receipts the renter holds).
- A request is admitted only if its voucher's ``cumulative >= served``: the voucher pays for
  everything already delivered, and the *current* request runs on credit; its price (in its
  receipt) must ride on the next voucher. The exact minimum is returned in 402 quotes as
  ``required_cumulative``.
- Re-sending an old voucher (a replay) fails as soon as anything was served after it, since
  then ``served > cumulative``; a voucher lower than one already accepted is stale (402).
  A request that fails inside the miner is not charged (``served`` does not move), so the
  renter may retry with the same voucher.
- ``cumulative <= deposit`` and ``served + max_price(request) <= deposit``: the credit is
  always backed by the deposit (``max_price`` uses ``max_tokens``; the receipt charges the
  tokens actually generated).
- Only one request per channel is in flight at a time (its price is unknown until it ends);
  a second concurrent one gets 409. Renters wanting parallelism open several channels.
- The channel must pay in the configured token (prices are in its base units).
- The signer must be the channel's renter or its session key; the channel's miner must be
  this miner; a channel whose renter requested close, or which is finalised, gets no new
  credit (the miner should settle its latest voucher instead).

Channel reads are cached for ``channel_cache_ttl_s``; a check that fails on the deposit is
retried once with a fresh read (the renter may just have topped up). The latest accepted
voucher of each channel goes to an injected :class:`VoucherStore` (``chain.vouchers.VoucherBook``
in production), from which the miner settles. After a restart ``served`` starts at the
stored voucher's cumulative amount: the miner forgives at most the one request in flight.
Earnings = the sum of accepted voucher increments (``cumulative - best previous``).
"""

from __future__ import annotations

import asyncio
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

import requests
from eth_utils import to_checksum_address
from web3.exceptions import Web3Exception

from chain.errors import ChainConnectionError, LatentError
from chain.escrow import EscrowClient
from chain.token import format_token_amount as _lat  # messages people read: in LAT
from chain.vouchers import Voucher, VoucherVerifier, decode_voucher_header
from miner.config import PaymentConfig, PricingConfig
from protocol.headers import VOUCHER_HEADER


@dataclass(frozen=True)
class ChannelView:
    """What the gate needs to know about an escrow channel (addresses checksummed)."""

    channel_id: bytes
    renter: str
    miner: str
    #: ERC-20 the channel pays in.
    token: str
    deposit: int
    settled: int
    #: Address allowed to sign vouchers for the renter, or ``None``.
    session_key: str | None
    #: The renter requested close (grace period running, or over).
    closing: bool
    #: Closed for good: nothing can be settled any more.
    finalised: bool


class ChannelReader(Protocol):
    """Reads a channel from the chain (blocking I/O; the gate calls it off the event loop)."""

    def read_channel(self, channel_id: bytes) -> ChannelView | None:
        """The channel's current state, or ``None`` if no such channel exists."""
        ...


class VoucherStore(Protocol):
    """Persists the latest accepted voucher per channel (what the miner settles)."""

    def latest(self, channel_id: bytes) -> Voucher | None:
        """The highest voucher stored for ``channel_id``."""
        ...

    def record(self, voucher: Voucher) -> object:
        """Store ``voucher`` if it is higher than the stored one (atomic on disk)."""
        ...


class PaymentRequired(LatentError):
    """A request is not (sufficiently) paid; answered as ``status`` with a price quote."""

    def __init__(
        self, message: str, *, code: str, quote: dict[str, Any], status: int = 402
    ) -> None:
        super().__init__(message)
        self.message = message
        self.code = code
        self.quote = quote
        self.status = status


@dataclass(frozen=True)
class PaymentTicket:
    """An admitted request: finish it with :meth:`PaymentGate.complete` or ``release``."""

    channel_id: bytes
    cumulative_amount: int
    #: How much the accepted voucher raised the channel's best cumulative (earnings).
    increment: int


@dataclass
class _Ledger:
    served: int
    best: int
    in_flight: bool = False


class PaymentGate:
    """Admits paid requests per the credit rule in the module docs."""

    def __init__(
        self,
        *,
        miner: str,
        reader: ChannelReader,
        payment: PaymentConfig,
        pricing: PricingConfig,
        store: VoucherStore | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._miner = to_checksum_address(miner)
        self._reader = reader
        self._payment = payment
        self._pricing = pricing
        self._store = store
        self._clock = clock
        self._escrow = to_checksum_address(payment.escrow_address)
        self._verifier = VoucherVerifier(escrow=self._escrow, chain_id=payment.chain_id)
        self._token = to_checksum_address(payment.token_address) if payment.token_address else None
        self._cache: OrderedDict[bytes, tuple[ChannelView | None, float]] = OrderedDict()
        self._ledgers: dict[bytes, _Ledger] = {}
        self.earnings_total = 0

    def max_price(self, *, prompt_tokens: int, max_tokens: int) -> int:
        """Worst-case price of a request (all ``max_tokens`` generated)."""
        return self._pricing.price(prompt_tokens=prompt_tokens, completion_tokens=max_tokens)

    def quote(
        self, *, prompt_tokens: int, max_tokens: int, channel_id: bytes | None = None
    ) -> dict[str, Any]:
        """The price quote sent with a 402 (amounts as decimal strings)."""
        ledger = self._ledgers.get(channel_id) if channel_id is not None else None
        required = max(ledger.served, ledger.best) if ledger else 0
        max_price = self.max_price(prompt_tokens=prompt_tokens, max_tokens=max_tokens)
        return {
            "miner": self._miner,
            "escrow": self._escrow,
            "token": self._token,
            "chain_id": self._payment.chain_id,
            "voucher_header": VOUCHER_HEADER,
            "channel_id": "0x" + channel_id.hex() if channel_id is not None else None,
            "required_cumulative": str(required),
            "deposit_needed": str(required + max_price),
            "max_price": str(max_price),
            "prompt_tokens": prompt_tokens,
            "max_tokens": max_tokens,
            "price_per_prompt_token": str(self._pricing.per_prompt_token),
            "price_per_completion_token": str(self._pricing.per_completion_token),
        }

    async def admit(
        self, header: str | None, *, prompt_tokens: int, max_tokens: int
    ) -> PaymentTicket:
        """Check the voucher header for a request of this size; raise PaymentRequired if unpaid."""

        def refuse(
            message: str, code: str, channel_id: bytes | None = None, status: int = 402
        ) -> PaymentRequired:
            return PaymentRequired(
                message,
                code=code,
                status=status,
                quote=self.quote(
                    prompt_tokens=prompt_tokens, max_tokens=max_tokens, channel_id=channel_id
                ),
            )

        if not header:
            raise refuse(
                f"payment required: send a voucher for an escrow channel to {self._miner} "
                f"in the {VOUCHER_HEADER} header",
                "voucher_missing",
            )
        try:
            voucher = decode_voucher_header(header)
        except LatentError as exc:
            raise refuse(f"unreadable voucher: {exc}", "voucher_malformed") from exc
        channel_id = voucher.channel_id
        try:
            signer = self._verifier.recover(voucher)
        except LatentError as exc:
            raise refuse(f"voucher signature invalid: {exc}", "voucher_bad_signature") from exc

        max_price = self.max_price(prompt_tokens=prompt_tokens, max_tokens=max_tokens)
        channel = await self._checked_channel(channel_id, fresh=False, refuse=refuse)
        for attempt in range(2):
            if channel is None:
                raise refuse(
                    "no such channel on this escrow (voucher for another channel, escrow or "
                    "chain?)",
                    "channel_unknown",
                    channel_id,
                )
            if self._token is not None and channel.token != self._token:
                raise refuse(
                    f"channel pays in token {channel.token}; this miner accepts {self._token}",
                    "channel_wrong_token",
                    channel_id,
                )
            if channel.miner != self._miner:
                raise refuse(
                    f"channel pays miner {channel.miner}, not this miner {self._miner}",
                    "channel_wrong_miner",
                    channel_id,
                )
            if signer not in {channel.renter, channel.session_key}:
                raise refuse(
                    f"voucher signed by {signer}, neither the channel's renter nor its session "
                    "key (or signed for another channel)",
                    "voucher_bad_signature",
                    channel_id,
                )
            if channel.finalised or channel.closing:
                raise refuse(
                    "channel is closing or closed; open a new channel", "channel_closed", channel_id
                )
            ledger = self._ledger(channel)
            funded = (
                voucher.cumulative_amount <= channel.deposit
                and ledger.served + max_price <= channel.deposit
            )
            if funded:
                break
            if attempt == 0:  # maybe topped up since the cached read
                channel = await self._checked_channel(channel_id, fresh=True, refuse=refuse)
                continue
            raise refuse(
                f"channel deposit {_lat(channel.deposit)} cannot cover voucher "
                f"{_lat(voucher.cumulative_amount)} or delivered work {_lat(ledger.served)} plus "
                f"this request's max price {_lat(max_price)}; top up the channel or lower "
                "max_tokens",
                "channel_underfunded",
                channel_id,
            )

        # Synchronous from here on: check-and-mark cannot interleave with another request.
        assert channel is not None  # the loop above either broke with a channel or raised
        ledger = self._ledger(channel)
        if voucher.cumulative_amount < ledger.best:
            raise refuse(
                f"stale voucher: cumulative {_lat(voucher.cumulative_amount)} is below the "
                f"{_lat(ledger.best)} already accepted",
                "voucher_stale",
                channel_id,
            )
        if voucher.cumulative_amount < ledger.served:
            raise refuse(
                f"voucher too low: cumulative {_lat(voucher.cumulative_amount)} does not cover "
                f"the {_lat(ledger.served)} already delivered on this channel (replayed or short "
                "voucher)",
                "voucher_short",
                channel_id,
            )
        if ledger.in_flight:
            raise refuse(
                "another request on this channel is in flight; channels serve one request at "
                "a time (open more channels for parallel requests)",
                "channel_busy",
                channel_id,
                status=409,
            )
        ledger.in_flight = True
        increment = voucher.cumulative_amount - ledger.best
        if increment > 0:
            if self._store is not None:
                try:  # fsync'd write: off the event loop; the channel is marked busy meanwhile
                    await asyncio.to_thread(self._store.record, voucher)
                except BaseException:
                    ledger.in_flight = False
                    raise
            ledger.best = voucher.cumulative_amount
            self.earnings_total += increment
        return PaymentTicket(
            channel_id=channel_id,
            cumulative_amount=voucher.cumulative_amount,
            increment=increment,
        )

    def complete(self, ticket: PaymentTicket, price: int) -> None:
        """The response was delivered at ``price``: it now has to ride on the next voucher."""
        ledger = self._ledgers[ticket.channel_id]
        ledger.served += price
        ledger.in_flight = False

    def release(self, ticket: PaymentTicket) -> None:
        """The request failed inside the miner: nothing delivered, nothing owed."""
        self._ledgers[ticket.channel_id].in_flight = False

    def served(self, channel_id: bytes) -> int:
        """Total price delivered on ``channel_id`` so far (0 if unseen)."""
        ledger = self._ledgers.get(channel_id)
        return ledger.served if ledger else 0

    def _ledger(self, channel: ChannelView) -> _Ledger:
        ledger = self._ledgers.get(channel.channel_id)
        if ledger is None:
            stored = self._store.latest(channel.channel_id) if self._store is not None else None
            start = max(channel.settled, stored.cumulative_amount if stored else 0)
            ledger = _Ledger(served=start, best=start)
            self._ledgers[channel.channel_id] = ledger
        return ledger

    async def _checked_channel(
        self,
        channel_id: bytes,
        *,
        fresh: bool,
        refuse: Callable[[str, str, bytes | None, int], PaymentRequired],
    ) -> ChannelView | None:
        """:meth:`_channel`, or a 503 ``chain_unavailable`` refusal while the node is down:
        the voucher cannot be checked, and the request was not the caller's fault."""
        try:
            return await self._channel(channel_id, fresh=fresh)
        except ChainConnectionError as exc:
            raise refuse(
                f"this miner cannot check the channel right now: {exc}; retry shortly",
                "chain_unavailable",
                channel_id,
                503,
            ) from exc

    async def _channel(self, channel_id: bytes, *, fresh: bool) -> ChannelView | None:
        now = self._clock()
        cached = self._cache.get(channel_id)
        if cached is not None and not fresh and cached[1] > now:
            self._cache.move_to_end(channel_id)
            return cached[0]
        view = await asyncio.to_thread(self._reader.read_channel, channel_id)
        self._cache[channel_id] = (view, self._clock() + self._payment.channel_cache_ttl_s)
        self._cache.move_to_end(channel_id)
        while len(self._cache) > self._payment.channel_cache_size:
            self._cache.popitem(last=False)
        return view


class InMemoryChannels:
    """A :class:`ChannelReader` over channels held in memory (benchmarks, tests, dev servers).

    Vouchers are still verified with real signatures; only the chain read is replaced.
    ``reads`` counts :meth:`read_channel` calls (to observe the gate's cache).
    """

    def __init__(self) -> None:
        self._channels: dict[bytes, ChannelView] = {}
        self.reads = 0

    def put(self, channel: ChannelView) -> None:
        """Create or replace a channel."""
        self._channels[channel.channel_id] = channel

    def read_channel(self, channel_id: bytes) -> ChannelView | None:
        """The stored channel, or ``None``."""
        self.reads += 1
        return self._channels.get(channel_id)


class EscrowChannelReader:
    """:class:`ChannelReader` over the on-chain PaymentEscrow (``chain.escrow.EscrowClient``)."""

    def __init__(self, escrow: EscrowClient) -> None:
        self._escrow = escrow

    def read_channel(self, channel_id: bytes) -> ChannelView | None:
        """The channel as of the latest block, or ``None`` if it does not exist; a node that
        does not answer is a :class:`ChainConnectionError` (the gate answers 503)."""
        try:
            channel = self._escrow.find_channel(channel_id)
        except LatentError:
            raise
        except (OSError, requests.RequestException, Web3Exception) as exc:
            raise ChainConnectionError(
                f"the chain node does not answer ({type(exc).__name__})"
            ) from exc
        if channel is None:
            return None
        return ChannelView(
            channel_id=channel.channel_id,
            renter=channel.renter,
            miner=channel.miner,
            token=channel.token,
            deposit=channel.deposit,
            settled=channel.settled,
            session_key=channel.session_key,
            closing=channel.closing,
            finalised=channel.finalised or channel.refunded,
        )


__all__ = [
    "VOUCHER_HEADER",
    "ChannelReader",
    "ChannelView",
    "EscrowChannelReader",
    "InMemoryChannels",
    "PaymentGate",
    "PaymentRequired",
    "PaymentTicket",
    "VoucherStore",
]
