"""``latent renter proxy``: a local OpenAI-compatible endpoint that pays miners per token.

Any OpenAI client points its base URL here. Per request the proxy validates the body, sets
a ``seed`` on sampled requests the client left unseeded (so validators can replay them),
ranks the miners (``renter.selection``), leases a free escrow channel of the best one
(opening or topping one up as needed), attaches a voucher for exactly what the channel owes
for delivered work, forwards the exact bytes, verifies the receipt of the answer and books
its price.

Charging and retry rules (the miner's credit rule, ``miner/payment.py``, seen from the
renter):

- The voucher on a request covers the receipts already verified on that channel, never the
  request itself. A request that fails (connection error, timeout, 5xx, missing or bad
  receipt, a stream cut short) books nothing, so the next voucher is what it would have
  been: a failed request is never paid for, and never twice.
- Connection failure, timeout, 5xx, 429 or a bad receipt: the request goes to the next
  miner in the ranking (at most ``max_attempts`` miners). A failing miner cools down for
  ``failure_cooldown_s``; a miner whose receipt does not verify (wrong signer, request
  hash, output hash, proof commitment, chain, or a price above its advertised rates) is
  dropped for the proxy's lifetime.
- Streams are retried only before the first byte reached the client; after that a broken
  stream ends with an OpenAI error event and nothing is booked. A client that leaves
  mid-stream does not stop the booking: the proxy keeps reading the miner's answer to its
  receipt (the miner charges for what it delivered).
- A miner answering 402 ``voucher_short``/``voucher_stale`` claims more than the ledger's
  receipts prove (a request it served but whose receipt never arrived): the proxy does not
  pay it; the channel is retired (``latent renter close`` settles what the receipts prove
  and refunds the rest) and the request moves on. ``channel_underfunded`` tops up and
  retries on the same channel.
- Other 4xx answers are the client's: relayed as they are, nothing booked.

Streams are relayed event by event, so ``stream_options.include_usage`` reaches the client in
the miner's shape (usage and the receipt in a last chunk with ``choices: []``); the proxy books
the receipt and usage of whichever chunk carries ``latent``.

Status codes of the proxy itself: 400 bad input (JSON, schema with strict types, ``n``, ``max_tokens`` above
the context, no miner within ``--max-price``), 401 bad API key, 404 unknown model, 429 +
``Retry-After`` when every miner is busy or a spending cap is reached, 503 when no miner
serves the model right now, 402 only when the renter's own wallet cannot fund a channel.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import random
import secrets
import time
from collections import deque
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

import aiohttp
import httpx
from eth_utils import keccak

from chain.errors import LatentError
from chain.funding import Funder, InsufficientFunds
from chain.receipts import ReceiptInvalid, output_hash, verify_receipt
from chain.token import format_price, format_token_amount
from chain.vouchers import encode_voucher_header
from protocol.headers import VOUCHER_HEADER
from protocol.openai import (
    ApiError,
    ChatBody,
    CompletionBody,
    InvalidResponse,
    LatentField,
    SamplingBody,
    load_json_object,
    parse_request,
    requested_max_tokens,
)
from protocol.recheck import RECHECK_PATH, RecheckSubmission
from renter.config import ProxyConfig
from renter.ledger import ChannelRecord, LedgerStore, SpendMeter, updated
from renter.market import MinerOffer, MinerSource
from renter.selection import MinerHealth, RankedMiner, rank_miners

log = logging.getLogger("latent.renter")

#: Seconds between fsyncs of the receipt log while receipts are appended (group commit;
#: ``renter.ledger`` says what a machine crash can and cannot cost).
BOOKS_SYNC_S = 0.5

Kind = Literal["text", "chat"]


class _MinerFailed(LatentError):
    """This attempt failed on the miner's side; try the next miner."""

    def __init__(self, message: str, *, bad_receipt: bool = False, cool_down: bool = True):
        super().__init__(message)
        self.bad_receipt = bad_receipt
        self.cool_down = cool_down


@dataclass
class _Channel:
    record: ChannelRecord
    busy: bool = False
    #: (cumulative, header) of the last signed voucher: signed once per amount.
    voucher: tuple[int, str] | None = None


@dataclass(frozen=True)
class Prepared:
    """A validated request, ready to send."""

    kind: Kind
    body: bytes
    model: str
    stream: bool
    max_tokens: int | None
    #: Upper estimate of the prompt's tokens (its bytes), for costs before sending.
    prompt_estimate: int


@dataclass(frozen=True)
class Relay:
    """A miner's answer to hand to the client unchanged (a 4xx of the client's making, or a
    verified 200)."""

    status: int
    body: bytes
    headers: dict[str, str] = field(default_factory=dict)


@dataclass
class _Outcome:
    """What one served request booked (for tests and the bench)."""

    miner: str
    channel_id: bytes
    price: int


class RenterProxy:
    """Request handling, channel pool and books of the proxy (one asyncio loop)."""

    def __init__(
        self,
        config: ProxyConfig,
        *,
        source: MinerSource,
        funder: Funder,
        http: httpx.AsyncClient,
        store: LedgerStore,
        clock: Callable[[], float] = time.monotonic,
        rng: random.Random | None = None,
    ) -> None:
        self.config = config
        self._source = source
        self._funder = funder
        self._http = http  # the market's probes and re-check submissions
        #: Requests to miners (the hot path): aiohttp costs a quarter of httpx's CPU per
        #: request; opened in :meth:`start`, inside the serving loop.
        self._upstream: aiohttp.ClientSession | None = None
        self._upstream_timeout = aiohttp.ClientTimeout(
            total=None, sock_connect=config.connect_timeout_s, sock_read=config.request_timeout_s
        )
        self._store = store
        self._clock = clock
        self._rng = rng or random.Random()
        self.offers: list[MinerOffer] = []
        self.known_models: set[str] = set()
        self.health: dict[str, MinerHealth] = {}
        self._channels: dict[bytes, _Channel] = {}
        self._opening: dict[str, int] = {}
        self._chain_lock = asyncio.Lock()
        #: Set (and replaced) whenever a channel is freed; waiters hold the current one.
        self._freed = asyncio.Event()
        self._tasks: set[asyncio.Task[Any]] = set()
        self._refreshed_at = -1e18
        self._refresh_lock = asyncio.Lock()
        self.spend = SpendMeter()
        #: The last 10,000 booked answers (tests, the bench, diagnostics).
        self.outcomes: deque[_Outcome] = deque(maxlen=10_000)
        #: Seconds of the proxy's own work per plain request (handling minus the miner's
        #: answer time), the last 10,000 (``latent bench proxy``).
        self.overhead_s: deque[float] = deque(maxlen=10_000)
        self.rechecks_sent = 0
        self._dirty: dict[bytes, _Channel] = {}
        self._writer: asyncio.Task[None] | None = None
        self._syncer: asyncio.Task[None] | None = None
        self._unsynced = False
        self._write_error: OSError | None = None

    # ------------------------------------------------------------------ lifecycle

    async def start(self) -> None:
        """Load the ledgers (reconciled with the chain) and the receipt log, read the market."""
        self._upstream = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(limit=0, ttl_dns_cache=300),
            timeout=self._upstream_timeout,
        )
        receipts = await asyncio.to_thread(self._store.read_receipts)
        records = await asyncio.to_thread(self._store.load_channels, receipts)
        for record in records:
            if (
                record.escrow != self._funder.escrow_address
                or record.chain_id != self._funder.chain_id
            ):
                continue  # another deployment's channel: left alone
            if record.status == "open":
                onchain = await asyncio.to_thread(self._funder.read_channel, record.channel_id)
                if onchain is None or onchain.closing or onchain.refunded:
                    record = updated(record, status="closing", note="closing on-chain")
                else:
                    # The chain is the truth for the deposit; a settled amount above the
                    # file's means the file missed a receipt before a crash (the voucher the
                    # miner settled was signed for it): resume from what was paid.
                    record = updated(
                        record,
                        deposit=onchain.deposit,
                        owed=max(record.owed, onchain.settled),
                    )
                await asyncio.to_thread(self._store.save_channel, record)
            self._channels[record.channel_id] = _Channel(record)
        self.spend.load(receipts)
        await self.refresh(force=True)

    async def stop(self) -> None:
        """Wait for pending books and re-check submissions, sync and close the receipt log,
        save miner statistics."""
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)
        if self._syncer is not None:
            self._syncer.cancel()
            await asyncio.gather(self._syncer, return_exceptions=True)
        if self._upstream is not None:
            await self._upstream.close()
        await asyncio.to_thread(self._store.close)
        await asyncio.to_thread(self._store.save_stats, self.stats())

    def _refresh_due(self) -> bool:
        # With no miner found yet (a subnet still starting), look again every few seconds.
        interval = (
            self.config.refresh_interval_s
            if self.offers
            else min(3.0, self.config.refresh_interval_s)
        )
        return self._clock() - self._refreshed_at >= interval

    async def refresh(self, *, force: bool = False) -> None:
        """Re-read the miner list when it is older than ``refresh_interval_s`` (3 s while no
        miner answers)."""
        if not force and not self._refresh_due():
            return
        async with self._refresh_lock:
            if not force and not self._refresh_due():
                return
            try:
                offers = await self._source.offers()
            except LatentError as exc:
                log.warning("cannot read the miner list: %s", exc)
                return
            if self.config.model is not None:
                offers = [o for o in offers if o.model == self.config.model]
            self.offers = offers
            self.known_models.update(o.model for o in offers)
            self._refreshed_at = self._clock()
            if self.health:  # for `latent market`
                self._spawn(asyncio.to_thread(self._store.save_stats, self.stats()))

    def stats(self) -> dict[str, Any]:
        """Observed per-miner statistics (JSON)."""
        return {hotkey: h.to_json() for hotkey, h in sorted(self.health.items())}

    def channels(self) -> list[ChannelRecord]:
        """Every channel ledger the proxy holds."""
        return [c.record for c in self._channels.values()]

    # ------------------------------------------------------------------ requests

    def prepare(self, kind: Kind, raw: bytes) -> Prepared:
        """Validate the body and set a seed on unseeded sampled requests; raises ApiError."""
        if len(raw) > self.config.max_body_bytes:
            raise ApiError(413, "Request body too large.", code="request_too_large")
        data = load_json_object(raw)
        schema: type[SamplingBody] = CompletionBody if kind == "text" else ChatBody
        parsed = parse_request(schema, data)
        # The schema bounds n (1), temperature (>= 0) and max_tokens (>= 1).
        max_tokens = requested_max_tokens(parsed)
        body = raw
        if parsed.temperature > 0 and parsed.seed is None:
            # Sampled and unseeded: fix the seed in the signed body so a validator can
            # replay the miner's draws exactly (DESIGN.md, "Sampled requests carry a seed").
            data["seed"] = secrets.randbelow(2**31)
            body = json.dumps(data, separators=(",", ":")).encode()
        return Prepared(
            kind=kind,
            body=body,
            model=parsed.model,
            stream=parsed.stream,
            max_tokens=max_tokens,
            prompt_estimate=len(raw),
        )

    def _rank(self, prepared: Prepared, exclude: set[str]) -> list[RankedMiner]:
        serving = [o for o in self.offers if o.model == prepared.model]
        if not serving:
            if prepared.model in self.known_models or prepared.model == self.config.model:
                raise ApiError(
                    503,
                    f"No miner serves '{prepared.model}' right now; retry later.",
                    type="server_error",
                    code="no_miner_available",
                    headers={"Retry-After": str(self.config.retry_after_s * 5)},
                )
            models = sorted({o.model for o in self.offers}) or ["(none)"]
            raise ApiError(
                404,
                f"The model '{prepared.model}' does not exist; miners serve: " + ", ".join(models),
                param="model",
                code="model_not_found",
            )
        context = max(o.context_length for o in serving)
        if prepared.max_tokens is not None and context and prepared.max_tokens > context:
            raise ApiError(
                400,
                f"max_tokens={prepared.max_tokens} is above this model's maximum context "
                f"length of {context} tokens; lower max_tokens.",
                param="max_tokens",
                code="context_length_exceeded",
            )
        limit = self.config.max_price_per_token
        if limit is not None and all(
            o.price_prompt > limit or o.price_completion > limit for o in serving
        ):
            cheapest = min(serving, key=lambda o: max(o.price_prompt, o.price_completion))
            raise ApiError(
                400,
                f"Every miner serving '{prepared.model}' charges more than --max-price "
                f"({format_price(limit)} LAT per 1M tokens); the cheapest asks "
                f"{format_price(cheapest.price_prompt)} per 1M prompt and "
                f"{format_price(cheapest.price_completion)} per 1M completion tokens. Raise "
                "--max-price to use them.",
                param="model",
                code="price_above_max",
            )
        ranked = rank_miners(
            (o for o in serving if o.hotkey not in exclude),
            model=prepared.model,
            prompt_tokens=prepared.prompt_estimate,
            max_tokens=self._max_tokens(prepared, context),
            max_price_per_token=limit,
            health=self.health,
            config=self.config.selection,
            now=self._clock(),
        )
        return ranked

    @staticmethod
    def _max_tokens(prepared: Prepared, context: int) -> int:
        if prepared.max_tokens is not None:
            return prepared.max_tokens
        return context or 1

    def _check_caps(self, estimate: int) -> None:
        caps = self.config.spend
        if caps.total and self.spend.total + estimate > caps.total:
            raise ApiError(
                429,
                f"Spending cap reached: {format_token_amount(self.spend.total)} of the total cap "
                f"{format_token_amount(caps.total)} spent; raise --spend-cap to continue.",
                type="insufficient_quota",
                code="spend_cap_total",
            )
        if caps.per_hour and self.spend.last_hour() + estimate > caps.per_hour:
            wait = max(1, int(self.spend.seconds_until_below(caps.per_hour - estimate)) + 1)
            raise ApiError(
                429,
                f"Hourly spending cap of {format_token_amount(caps.per_hour)} reached; retry in "
                f"{wait} s or raise --spend-cap-hour.",
                type="insufficient_quota",
                code="spend_cap_hourly",
                headers={"Retry-After": str(wait)},
            )

    async def handle(self, kind: Kind, raw: bytes) -> Relay | AsyncIterator[bytes]:
        """Serve one request: a :class:`Relay` for plain answers, an async iterator of SSE
        bytes for streams. Raises :class:`ApiError`."""
        entered = time.perf_counter()
        if self._write_error is not None:
            raise ApiError(
                503,
                f"The proxy cannot write its books in {self._store.state_dir} "
                f"({self._write_error}); fix the disk and restart it.",
                type="server_error",
                code="books_unwritable",
            )
        prepared = self.prepare(kind, raw)
        await self.refresh()
        tried: set[str] = set()
        last_failure = "no miner could be tried"
        deadline = self._clock() + self.config.busy_wait_s
        attempts = 0
        while attempts < self.config.max_attempts:
            ranked = self._rank(prepared, tried)
            if not ranked:
                break
            self._check_caps(min(r.cost for r in ranked))
            lease = await self._lease(ranked)
            if lease is None:
                remaining = deadline - self._clock()
                if remaining <= 0:
                    raise ApiError(
                        429,
                        "Every miner is busy; retry shortly.",
                        type="rate_limit_error",
                        code="miners_busy",
                        headers={"Retry-After": str(self.config.retry_after_s)},
                    )
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._freed.wait(), timeout=remaining)
                continue
            offer, channel = lease
            attempts += 1
            try:
                if prepared.stream:
                    return await self._stream(prepared, offer, channel)
                relay, waited = await self._plain(prepared, offer, channel)
                self.overhead_s.append(time.perf_counter() - entered - waited)
                return relay
            except _MinerFailed as exc:
                last_failure = f"{offer.endpoint}: {exc}"
                self._miner_failed(offer, exc)
                tried.add(offer.hotkey)
        raise ApiError(
            503 if not tried else 502,
            f"No miner could serve the request ({last_failure}); retry later.",
            type="server_error",
            code="no_miner_available" if not tried else "miners_failed",
            headers={"Retry-After": str(self.config.retry_after_s * 5)},
        )

    def _miner_failed(self, offer: MinerOffer, exc: _MinerFailed) -> None:
        health = self.health.setdefault(offer.hotkey, MinerHealth())
        health.failures += 1
        health.note = str(exc)
        if exc.bad_receipt:
            health.dropped = True
            log.warning("dropping miner %s: %s", offer.hotkey, exc)
        elif exc.cool_down:
            health.cooldown_until = self._clock() + self.config.selection.failure_cooldown_s
            log.info("miner %s failed, cooling down: %s", offer.hotkey, exc)

    # ------------------------------------------------------------------ channels

    async def _lease(self, ranked: list[RankedMiner]) -> tuple[MinerOffer, _Channel] | None:
        """A free channel of the best miner that has one (opening one when allowed), marked
        busy; ``None`` when every candidate's channels are busy."""
        for candidate in ranked:
            offer = candidate.offer
            free = [
                c
                for c in self._channels.values()
                if c.record.miner == offer.hotkey and c.record.status == "open" and not c.busy
            ]
            if free:
                channel = max(free, key=lambda c: c.record.available)
                channel.busy = True
                try:
                    await self._ensure_funds(channel, candidate.cost)
                except BaseException:
                    self._release(channel)
                    raise
                return offer, channel
            count = sum(
                1
                for c in self._channels.values()
                if c.record.miner == offer.hotkey and c.record.status == "open"
            ) + self._opening.get(offer.hotkey, 0)
            if count < self.config.channels.per_miner:
                channel = await self._open(offer, candidate.cost)
                return offer, channel
        return None

    async def _open(self, offer: MinerOffer, needed: int) -> _Channel:
        amount = max(self.config.channels.deposit, needed)
        self._opening[offer.hotkey] = self._opening.get(offer.hotkey, 0) + 1
        try:
            async with self._chain_lock:
                try:
                    cid, salt = await asyncio.to_thread(
                        self._funder.open_channel, offer.hotkey, amount
                    )
                except InsufficientFunds as exc:
                    raise ApiError(
                        402, str(exc), type="insufficient_funds", code="renter_funds_exhausted"
                    ) from None
        except BaseException:
            self._opening[offer.hotkey] -= 1
            raise
        now = time.time()
        record = ChannelRecord(
            channel_id=cid,
            miner=offer.hotkey,
            endpoint=offer.endpoint,
            escrow=self._funder.escrow_address,
            token=self._funder.token_address,
            chain_id=self._funder.chain_id,
            salt=salt,
            deposit=amount,
            opened_at=now,
            last_used=now,
        )
        channel = _Channel(record, busy=True)
        # Counted among the miner's channels before the first await, so concurrent requests
        # never open more than per_miner.
        self._channels[cid] = channel
        self._opening[offer.hotkey] -= 1
        await asyncio.to_thread(self._store.save_channel, record)
        log.info(
            "opened channel 0x%s to %s with %s",
            cid.hex(),
            offer.hotkey,
            format_token_amount(amount),
        )
        return channel

    async def _ensure_funds(self, channel: _Channel, needed: int) -> None:
        if channel.record.available >= needed:
            return
        await self._top_up(channel, needed - channel.record.available)

    async def _top_up(self, channel: _Channel, shortfall: int) -> None:
        amount = max(self.config.channels.top_up, shortfall)
        async with self._chain_lock:
            try:
                await asyncio.to_thread(self._funder.top_up, channel.record.channel_id, amount)
            except InsufficientFunds as exc:
                raise ApiError(
                    402, str(exc), type="insufficient_funds", code="renter_funds_exhausted"
                ) from None
        channel.record = updated(channel.record, deposit=channel.record.deposit + amount)
        self._write_later(channel)

    def _release(self, channel: _Channel) -> None:
        """Free the channel and wake the requests waiting for one."""
        channel.busy = False
        self._freed.set()
        self._freed = asyncio.Event()

    def _voucher_header(self, channel: _Channel) -> str:
        owed = channel.record.owed
        if channel.voucher is None or channel.voucher[0] != owed:
            voucher = self._funder.sign(channel.record.channel_id, owed)
            channel.voucher = (owed, encode_voucher_header(voucher))
        return channel.voucher[1]

    async def _retire(self, channel: _Channel, note: str) -> None:
        channel.record = updated(channel.record, status="retired", note=note)
        self._write_later(channel)
        self._release(channel)
        log.warning("retired channel 0x%s: %s", channel.record.channel_id.hex(), note)

    # ------------------------------------------------------------------ one attempt

    def _session(self) -> aiohttp.ClientSession:
        if self._upstream is None:
            raise RuntimeError("RenterProxy.start() opens the connection to miners")
        return self._upstream

    def _url(self, offer: MinerOffer, kind: Kind) -> str:
        return offer.endpoint + ("/v1/completions" if kind == "text" else "/v1/chat/completions")

    async def _miner_refusal(
        self, response_status: int, body: bytes, offer: MinerOffer, channel: _Channel
    ) -> Relay:
        """Handle a non-2xx answer: retry cases raise _MinerFailed, client errors relay."""
        if response_status >= 500:
            self._release(channel)
            raise _MinerFailed(f"miner answered {response_status}")
        if response_status == 429:
            self._release(channel)
            raise _MinerFailed("miner overloaded (429)")
        code = None
        quote: dict[str, Any] = {}
        try:
            data = json.loads(body)
            code = data.get("error", {}).get("code")
            quote = data.get("quote") or {}
        except (ValueError, AttributeError):
            pass
        if response_status == 402 and code == "channel_underfunded":
            needed = int(str(quote.get("deposit_needed", "0")))
            await self._top_up(channel, max(needed - channel.record.deposit, 1))
            self._release(channel)
            raise _MinerFailed("channel topped up", cool_down=False)
        if response_status == 402 and code in _RETIRING_CODES:
            await self._retire(channel, f"miner answered {response_status} {code}")
            raise _MinerFailed(f"miner refused the channel ({code})", cool_down=False)
        if response_status in (402, 409):
            # busy (the miner has not noticed a cut request yet) or a channel it cannot read
            # yet (its node lags): this channel may work later
            self._release(channel)
            raise _MinerFailed(f"miner refused the request ({code})", cool_down=False)
        if response_status in (401, 403):
            self._release(channel)
            raise _MinerFailed(f"miner refused access ({response_status})")
        self._release(channel)
        return Relay(
            status=response_status,
            body=body,
            headers={"content-type": "application/json"},
        )

    async def _plain(
        self, prepared: Prepared, offer: MinerOffer, channel: _Channel
    ) -> tuple[Relay, float]:
        """One attempt; returns the answer and the seconds spent waiting for the miner."""
        headers = {
            "content-type": "application/json",
            VOUCHER_HEADER: self._voucher_header(channel),
        }
        started = time.perf_counter()
        try:
            async with self._session().post(
                self._url(offer, prepared.kind), data=prepared.body, headers=headers
            ) as response:
                status = response.status
                body = await response.read()
                relay_headers = _relay_headers(response.headers)
        except (aiohttp.ClientError, TimeoutError) as exc:
            self._release(channel)
            raise _MinerFailed(f"{type(exc).__name__}: {exc}") from None
        elapsed = time.perf_counter() - started
        if status != 200:
            relay = await self._miner_refusal(status, body, offer, channel)
            return relay, elapsed
        try:
            data = json.loads(body)
            latent = LatentField.from_json(data.get("latent"))
            usage = data.get("usage") or {}
            self._verify(prepared, offer, latent, usage)
        except (ValueError, AttributeError, InvalidResponse, ReceiptInvalid) as exc:
            await self._retire(channel, f"bad receipt: {exc}")
            raise _MinerFailed(f"bad receipt: {exc}", bad_receipt=True) from None
        completion = len(latent.output_token_ids)
        health = self.health.setdefault(offer.hotkey, MinerHealth())
        health.observe(
            latency_s=elapsed,
            tokens=completion,
            total_s=elapsed,
            alpha=self.config.selection.latency_ema_alpha,
        )
        self._book(prepared, offer, channel, latent, usage)
        return Relay(status=200, body=body, headers=relay_headers), elapsed

    def _verify(
        self, prepared: Prepared, offer: MinerOffer, latent: LatentField, usage: dict[str, Any]
    ) -> None:
        """Raise ReceiptInvalid unless the receipt binds this miner to what was sent and
        served, at no more than its advertised prices."""
        verify_receipt(
            latent.receipt,
            miner=offer.hotkey,
            chain_id=self._funder.chain_id,
            request_hash=keccak(prepared.body),
            output_hash=output_hash(latent.output_token_ids),
            proof_commitment=keccak(latent.proof_bytes),
        )
        prompt = int(usage.get("prompt_tokens", 0))
        completion = len(latent.output_token_ids)
        if int(usage.get("completion_tokens", completion)) != completion:
            raise ReceiptInvalid("usage.completion_tokens differs from the receipted tokens")
        allowed = offer.price(prompt, completion)
        if latent.receipt.price > allowed:
            raise ReceiptInvalid(
                f"receipt price {latent.receipt.price} is above the advertised {allowed} "
                f"for {prompt} prompt and {completion} completion tokens"
            )
        if prepared.max_tokens is not None and completion > prepared.max_tokens:
            raise ReceiptInvalid("more tokens than max_tokens were charged")

    def _book(
        self,
        prepared: Prepared,
        offer: MinerOffer,
        channel: _Channel,
        latent: LatentField,
        usage: dict[str, Any],
    ) -> None:
        """Add a verified receipt to the channel's ledger and the receipt log, and free the
        channel."""
        price = latent.receipt.price
        record = channel.record
        prompt = int(usage.get("prompt_tokens", 0))
        completion = len(latent.output_token_ids)
        now = time.time()
        channel.record = updated(
            record,
            owed=record.owed + price,
            requests=record.requests + 1,
            prompt_tokens=record.prompt_tokens + prompt,
            completion_tokens=record.completion_tokens + completion,
            last_used=now,
        )
        self.spend.add(price)
        self.outcomes.append(_Outcome(offer.hotkey, record.channel_id, price))
        entry = {
            "time": now,
            "kind": prepared.kind,
            "model": prepared.model,
            "miner": offer.hotkey,
            "endpoint": offer.endpoint,
            "channel_id": "0x" + record.channel_id.hex(),
            "price": str(price),
            "cumulative": str(channel.record.owed),
            "prompt_tokens": prompt,
            "completion_tokens": completion,
            "receipt": latent.receipt.to_json(),
        }
        self._append_receipt(entry)
        self._release(channel)
        # The channel's next request needs a voucher for the new amount: sign it after this
        # answer went out (the task's next yield), off that request's path.
        asyncio.get_running_loop().call_soon(self._voucher_header, channel)
        if self.config.validators and self._rng.random() < self.config.recheck_rate:
            submission = RecheckSubmission(
                kind=prepared.kind, request_body=prepared.body, miner=offer.hotkey, latent=latent
            )
            for url in self.config.validators:
                self._spawn(self._send_recheck(url, submission))

    def _append_receipt(self, entry: dict[str, Any]) -> None:
        """Append a booked receipt to the log, the ledger's journal (``renter.ledger``), and
        have it fsynced within ``BOOKS_SYNC_S``; a failure stops paid traffic (``handle``)."""
        try:
            self._store.append_receipts([entry])
        except OSError as exc:
            self._books_failed(exc)
            return
        self._unsynced = True
        if self._syncer is None or self._syncer.done():
            self._syncer = asyncio.get_running_loop().create_task(self._sync_books())

    async def _sync_books(self) -> None:
        """Group commit: one fsync per ``BOOKS_SYNC_S`` while receipts are being appended."""
        while self._unsynced:
            await asyncio.sleep(BOOKS_SYNC_S)
            self._unsynced = False
            try:
                await asyncio.to_thread(self._store.sync_receipts)
            except OSError as exc:
                self._books_failed(exc)
                return

    def _books_failed(self, exc: OSError) -> None:
        self._write_error = exc
        log.error("cannot write the books in %s: %s", self._store.state_dir, exc)

    def _write_later(self, channel: _Channel) -> None:
        """Have the writer persist the channel's current ledger (a channel whose state
        changed: topped up, retired)."""
        self._dirty[channel.record.channel_id] = channel
        if self._writer is None or self._writer.done():
            self._writer = asyncio.get_running_loop().create_task(self._write_books())
            self._tasks.add(self._writer)
            self._writer.add_done_callback(self._tasks.discard)

    async def _write_books(self) -> None:
        """The one writer of the channel ledgers: writes each dirty channel's *current*
        record, until none is dirty; a failure stops paid traffic (``handle``)."""
        while self._dirty:
            records = [channel.record for channel in self._dirty.values()]
            self._dirty.clear()
            try:
                for record in records:
                    await asyncio.to_thread(self._store.save_channel, record)
            except OSError as exc:
                self._books_failed(exc)
                return

    def _spawn(self, coro: Any) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _send_recheck(self, url: str, submission: RecheckSubmission) -> None:
        try:
            response = await self._http.post(
                url.rstrip("/") + RECHECK_PATH, json=submission.to_json(), timeout=10.0
            )
            if response.status_code >= 300:
                log.info("validator %s refused a re-check: %s", url, response.status_code)
            else:
                self.rechecks_sent += 1
        except httpx.HTTPError as exc:
            log.info("re-check to %s failed: %s", url, exc)

    # ------------------------------------------------------------------ streams

    async def _stream(
        self, prepared: Prepared, offer: MinerOffer, channel: _Channel
    ) -> Relay | AsyncIterator[bytes]:
        """Open the miner's stream and wait for its first event (failures before it raise
        _MinerFailed, so the request is retried); then hand back the client's iterator."""
        queue: asyncio.Queue[bytes | None] = asyncio.Queue()
        first: asyncio.Future[Relay | None] = asyncio.get_running_loop().create_future()
        pump = asyncio.get_running_loop().create_task(
            self._pump(prepared, offer, channel, queue, first)
        )
        self._tasks.add(pump)
        pump.add_done_callback(self._tasks.discard)
        try:
            relay = await first
        except _MinerFailed:
            await asyncio.gather(pump, return_exceptions=True)
            raise
        if relay is not None:
            return relay
        return _drain(queue)

    async def _pump(
        self,
        prepared: Prepared,
        offer: MinerOffer,
        channel: _Channel,
        queue: asyncio.Queue[bytes | None],
        first: asyncio.Future[Relay | None],
    ) -> None:
        """Read the miner's SSE stream into ``queue`` (runs to the end even when the client
        leaves, so a delivered answer is booked), verify the final receipt, book it."""
        headers = {
            "content-type": "application/json",
            VOUCHER_HEADER: self._voucher_header(channel),
        }
        started = time.perf_counter()
        ttft: float | None = None
        latent: LatentField | None = None
        usage: dict[str, Any] = {}
        done = False
        released = False

        def fail(exc: _MinerFailed) -> None:
            if not first.done():
                first.set_exception(exc)
            else:  # bytes already reached the client: end its stream with an error event
                queue.put_nowait(_error_event(str(exc)))
                queue.put_nowait(None)

        try:
            async with self._session().post(
                self._url(offer, prepared.kind), data=prepared.body, headers=headers
            ) as response:
                if response.status != 200:
                    body = await response.read()
                    released = True
                    try:
                        relay = await self._miner_refusal(response.status, body, offer, channel)
                    except _MinerFailed as exc:
                        first.set_exception(exc)
                        return
                    first.set_result(relay)
                    return
                buffer = b""
                async for piece in response.content.iter_any():
                    buffer += piece
                    while b"\n\n" in buffer:
                        event, buffer = buffer.split(b"\n\n", 1)
                        event += b"\n\n"
                        payload = event[6:].strip() if event.startswith(b"data: ") else b""
                        if payload == b"[DONE]":
                            done = True
                        elif b'"latent"' in payload:
                            data = json.loads(payload)
                            latent = LatentField.from_json(data.get("latent"))
                            usage = data.get("usage") or {}
                        elif payload.startswith(b'{"error"'):
                            raise _MinerFailed("the miner's stream ended with an error")
                        elif ttft is None and _has_text(payload):
                            ttft = time.perf_counter() - started
                        if not first.done():
                            first.set_result(None)
                        queue.put_nowait(event)
            if latent is None or not done:
                raise _MinerFailed("the miner's stream ended without a receipt")
            try:
                self._verify(prepared, offer, latent, usage)
            except (ReceiptInvalid, InvalidResponse) as exc:
                await self._retire(channel, f"bad receipt: {exc}")
                released = True
                bad = _MinerFailed(f"bad receipt: {exc}", bad_receipt=True)
                if first.done():  # else the caller records it
                    self._miner_failed(offer, bad)
                fail(bad)
                return
            total = time.perf_counter() - started
            health = self.health.setdefault(offer.hotkey, MinerHealth())
            health.observe(
                latency_s=ttft if ttft is not None else total,
                tokens=len(latent.output_token_ids),
                total_s=total - (ttft or 0.0),
                alpha=self.config.selection.latency_ema_alpha,
            )
            if ttft is not None:
                health.ttft_s = ttft if health.ttft_s is None else 0.8 * health.ttft_s + 0.2 * ttft
            released = True  # _book frees the channel once the ledger is written
            self._book(prepared, offer, channel, latent, usage)
            queue.put_nowait(None)
        except _MinerFailed as exc:
            if first.done():  # after the first byte the caller no longer retries
                self._miner_failed(offer, exc)
            fail(exc)
        except (aiohttp.ClientError, TimeoutError, ValueError, InvalidResponse) as exc:
            failure = _MinerFailed(f"{type(exc).__name__}: {exc}")
            if first.done():
                self._miner_failed(offer, failure)
            fail(failure)
        finally:
            if not released:
                self._release(channel)
            if not first.done():
                first.set_exception(_MinerFailed("the miner's stream ended early"))


#: 402 codes after which a channel is never used again: the miner claims more than the
#: receipts prove, or the channel cannot pay this miner at all.
_RETIRING_CODES = frozenset(
    {
        "voucher_short",
        "voucher_stale",
        "voucher_bad_signature",
        "channel_closed",
        "channel_wrong_miner",
        "channel_wrong_token",
    }
)


def _relay_headers(headers: Mapping[str, str]) -> dict[str, str]:
    keep = {"content-type", "x-latent-receipt", "x-latent-proof"}
    return {k: v for k, v in headers.items() if k.lower() in keep}


def _error_event(message: str) -> bytes:
    error = {
        "error": {
            "message": f"The miner failed mid-stream ({message}); nothing was charged. Retry.",
            "type": "server_error",
            "param": None,
            "code": "miner_failed",
        }
    }
    return b"data: " + json.dumps(error).encode() + b"\n\n"


async def _drain(queue: asyncio.Queue[bytes | None]) -> AsyncIterator[bytes]:
    while True:
        item = await queue.get()
        if item is None:
            return
        yield item


def _has_text(payload: bytes) -> bool:
    """Whether an SSE chunk carries generated text (not the empty role chunk)."""
    if b'"text":"' in payload:
        return b'"text":""' not in payload
    return b'"content":"' in payload and b'"content":""' not in payload


__all__ = ["Prepared", "Relay", "RenterProxy"]
