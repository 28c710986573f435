"""How a validator asks miners: ordinary paid OpenAI requests, timed, with the answer parsed.

Checks must be indistinguishable from renter traffic (DESIGN.md), so the validator is a
renter: it pays each miner through an ordinary escrow channel opened by a *payer* account
that is not its hotkey, sends the same OpenAI bodies a renter proxy sends (a seed on every
sampled request, as the proxy sets one), streams about half of them like chat clients do,
and adds no header a renter would not send. What a miner could still use to tell — the
payer address, funded on-chain — is the reason organic answers forwarded by renters are
re-checked too (``protocol.recheck``): any answer to anyone may be verified.

The channel rule is the miner's (``miner/payment.py``): each request carries a voucher for
everything delivered so far; the request itself runs on credit and its price (from the
signed receipt) is added to what we owe. What we owe per channel is persisted atomically
before the next request, so a restart never pays twice nor under-pays.
"""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, Protocol

import httpx
from eth_utils import to_checksum_address

from chain.errors import LatentError
from chain.funding import EscrowFunder
from chain.jsonfile import read_json, write_json_atomic
from chain.vouchers import encode_voucher_header
from protocol.headers import VOUCHER_HEADER
from protocol.openai import InvalidResponse, LatentField

__all__ = ["ChannelPayer", "MinerAnswer", "MinerClient", "MinerTarget", "Payer"]

PAYER_SCHEMA = 1


@dataclass(frozen=True)
class MinerTarget:
    """A serving miner as the metagraph lists it."""

    uid: int
    hotkey: str
    endpoint: str


@dataclass(frozen=True)
class MinerAnswer:
    """What came back from one request."""

    #: True when a well-formed 2xx answer with a parseable ``latent`` field arrived.
    responded: bool
    status: int
    latent: LatentField | None
    error: str
    ttft_s: float
    elapsed_s: float


class Payer(Protocol):
    """Pays miners the way renters do (a fake may return None: free lane / unpaid miners)."""

    def voucher_header(self, miner: str) -> str | None:
        """The voucher header for the next request to ``miner`` (covers delivered work)."""
        ...

    def delivered(self, miner: str, price: int) -> None:
        """Record that ``miner`` delivered an answer costing ``price``."""
        ...


class ChannelPayer:
    """One escrow channel per miner, opened (with a permit when the token has one, exactly as
    the renter proxy opens them: ``chain.funding.EscrowFunder``) and topped up on demand.

    State file: ``{"schema": 1, "channels": {"<miner>": {"channel_id", "owed", "deposit"}}}``
    written atomically on every change. Blocking (web3): call it from a worker thread.
    """

    def __init__(
        self,
        funder: EscrowFunder,
        *,
        state_path: Path,
        deposit: int,
        top_up_below: int,
    ) -> None:
        self.funder = funder
        self.state_path = state_path
        self.deposit = deposit
        self.top_up_below = top_up_below
        self._lock = threading.Lock()
        data = read_json(state_path, schema=PAYER_SCHEMA, default={"channels": {}})
        self._channels: dict[str, dict[str, Any]] = dict(data.get("channels", {}))

    def _save(self) -> None:
        write_json_atomic(self.state_path, {"schema": PAYER_SCHEMA, "channels": self._channels})

    def _channel(self, miner: str) -> dict[str, Any]:
        miner = to_checksum_address(miner)
        entry = self._channels.get(miner)
        if entry is None:
            cid, _salt = self.funder.open_channel(miner, self.deposit)
            entry = {"channel_id": "0x" + cid.hex(), "owed": "0", "deposit": str(self.deposit)}
            self._channels[miner] = entry
            self._save()
        return entry

    def voucher_header(self, miner: str) -> str | None:
        with self._lock:
            entry = self._channel(miner)
            owed, deposit = int(entry["owed"]), int(entry["deposit"])
            cid = bytes.fromhex(entry["channel_id"][2:])
            if deposit - owed < self.top_up_below:
                self.funder.top_up(cid, self.deposit)
                entry["deposit"] = str(deposit + self.deposit)
                self._save()
            return encode_voucher_header(self.funder.sign(cid, owed))

    def delivered(self, miner: str, price: int) -> None:
        with self._lock:
            entry = self._channel(miner)
            entry["owed"] = str(int(entry["owed"]) + price)
            self._save()


class MinerClient:
    """Sends one OpenAI request to a miner and times it; never raises for a bad miner."""

    def __init__(
        self,
        http: httpx.AsyncClient,
        payer: Payer | None,
        *,
        timeout_s: float,
        max_response_bytes: int = 4 << 20,
        clock: Callable[[], float] = time.perf_counter,
    ) -> None:
        self.http = http
        self.payer = payer
        self.timeout_s = timeout_s
        self.max_response_bytes = max_response_bytes
        self.clock = clock

    async def ask(
        self, miner: MinerTarget, kind: Literal["text", "chat"], body: bytes, *, stream: bool
    ) -> MinerAnswer:
        """POST ``body`` to the miner's completions route; ``stream`` must match the body."""
        path = "/v1/chat/completions" if kind == "chat" else "/v1/completions"
        url = miner.endpoint.rstrip("/") + path
        headers = {"Content-Type": "application/json"}
        started = self.clock()
        try:
            if self.payer is not None:
                voucher = await asyncio.to_thread(self.payer.voucher_header, miner.hotkey)
                if voucher:
                    headers[VOUCHER_HEADER] = voucher
            async with asyncio.timeout(self.timeout_s):
                answer = await self._post(url, body, headers, stream, started)
        except TimeoutError:
            return MinerAnswer(False, 0, None, "timeout", 0.0, self.clock() - started)
        except httpx.DecodingError as exc:
            return MinerAnswer(
                False, 0, None, f"malformed answer: {exc}", 0.0, self.clock() - started
            )
        except (httpx.HTTPError, OSError) as exc:
            return MinerAnswer(False, 0, None, f"connection: {exc}", 0.0, self.clock() - started)
        except LatentError as exc:  # our own payment failed: not the miner's fault
            return MinerAnswer(False, -1, None, f"payer: {exc}", 0.0, self.clock() - started)
        if answer.latent is not None and self.payer is not None:
            await asyncio.to_thread(self.payer.delivered, miner.hotkey, answer.latent.receipt.price)
        return answer

    async def _post(
        self, url: str, body: bytes, headers: dict[str, str], stream: bool, started: float
    ) -> MinerAnswer:
        async with self.http.stream("POST", url, content=body, headers=headers) as response:
            if response.status_code != 200:
                raw = await _read_limited(response, 64 << 10)
                return MinerAnswer(
                    False,
                    response.status_code,
                    None,
                    f"HTTP {response.status_code}: {raw[:200].decode('utf-8', 'replace')}",
                    0.0,
                    self.clock() - started,
                )
            if not stream:
                raw = await _read_limited(response, self.max_response_bytes)
                elapsed = self.clock() - started
                return _answer(200, _json_latent(raw), elapsed, elapsed)
            ttft = 0.0
            latent: Any = None
            size = 0
            async for line in response.aiter_lines():
                size += len(line)
                if size > self.max_response_bytes:
                    raise httpx.DecodingError("response too large")
                if not line.startswith("data: ") or line == "data: [DONE]":
                    continue
                if not ttft:
                    ttft = self.clock() - started
                try:
                    event = json.loads(line[6:])
                except ValueError:
                    return MinerAnswer(False, 200, None, "malformed SSE event", ttft, 0.0)
                if isinstance(event, dict) and "error" in event:
                    return MinerAnswer(
                        False, 200, None, f"stream error: {event['error']}", ttft, 0.0
                    )
                if isinstance(event, dict) and "latent" in event:
                    latent = event["latent"]
            return _answer(200, latent, ttft, self.clock() - started)


async def _read_limited(response: httpx.Response, limit: int) -> bytes:
    chunks: list[bytes] = []
    size = 0
    async for chunk in response.aiter_bytes():
        size += len(chunk)
        if size > limit:
            raise httpx.DecodingError(f"response larger than {limit} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


def _json_latent(raw: bytes) -> Any:
    try:
        data = json.loads(raw)
    except ValueError:
        return None
    return data.get("latent") if isinstance(data, dict) else None


def _answer(status: int, latent: Any, ttft: float, elapsed: float) -> MinerAnswer:
    try:
        parsed = LatentField.from_json(latent)
    except InvalidResponse as exc:
        return MinerAnswer(False, status, None, f"malformed answer: {exc}", ttft, elapsed)
    return MinerAnswer(True, status, parsed, "ok", ttft, elapsed)
