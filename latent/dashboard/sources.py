"""Where the dashboard's data comes from: the chain (metagraph, epoch logs, escrow logs) and
HTTP (validators' ``/status``, miners' ``/v1/models``).

:class:`ChainSource` is synchronous (web3); the dashboard calls it through
``asyncio.to_thread``. It keeps a log cursor and scans forward from it, so each refresh reads
only the blocks it has not seen: ``EpochCompleted`` logs of the epoch contract (each one
becomes an :class:`~latent.dashboard.model.EpochRecord` from the metagraph read at the
log's block, which needs a node that serves state at past blocks; where it cannot, the epoch
is left out of the charts and an error says why) and the escrow's channel logs.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping, Sequence
from typing import Any

import httpx
from eth_utils import event_abi_to_log_topic, to_checksum_address
from web3 import Web3
from web3.exceptions import Web3Exception

from chain.compile import artifact
from chain.epoch import EpochClient, Phase
from chain.errors import LatentError
from chain.metagraph import Metagraph, MetagraphReader
from latent.dashboard.model import (
    HISTORY_EPOCHS,
    ChainInfo,
    EpochRecord,
    EscrowEvent,
    Pricing,
    ValidatorReport,
    parse_pricing,
    settlement_blocks,
)

log = logging.getLogger(__name__)

#: Escrow events the channel table replays.
ESCROW_EVENTS = (
    "ChannelOpened",
    "ChannelToppedUp",
    "VoucherSettled",
    "CloseRequested",
    "ChannelClosed",
)
#: Blocks per ``eth_getLogs`` request (halved when a node refuses a range).
LOG_CHUNK = 5_000
MIN_LOG_CHUNK = 100
#: Chunks scanned per refresh: a deployment opened late catches up over a few refreshes
#: instead of blocking the first page.
CHUNKS_PER_REFRESH = 40
#: Errors that a read of a remote node can raise (transport, node, decoding).
READ_ERRORS = (LatentError, Web3Exception, OSError, ValueError)


class _Events:
    """topic0 -> decoder for a contract's events of interest."""

    def __init__(self, w3: Web3, name: str, address: str, events: Sequence[str]) -> None:
        contract = w3.eth.contract(address=to_checksum_address(address), abi=artifact(name).abi)
        self.address = contract.address
        self.by_topic: dict[bytes, Any] = {}
        for entry in artifact(name).abi:
            if entry.get("type") == "event" and entry["name"] in events:
                topic = event_abi_to_log_topic(entry)  # type: ignore[arg-type]
                self.by_topic[topic] = getattr(contract.events, entry["name"])()

    def decode(self, raw: Any) -> Any | None:
        topics = raw.get("topics") or []
        event = self.by_topic.get(bytes(topics[0])) if topics else None
        return None if event is None else event.process_log(raw)


class ChainSource:
    """Reads one deployment for the dashboard.

    ``epoch`` defaults to the metagraph's epoch contract; without ``escrow`` the payments
    section stays empty. ``from_block`` is where log scans start (a deployment's first
    block: older blocks cannot hold its logs).
    """

    def __init__(
        self,
        w3: Web3,
        *,
        metagraph: str,
        epoch: str | None = None,
        escrow: str | None = None,
        network: str = "",
        from_block: int = 0,
        history_epochs: int = HISTORY_EPOCHS,
    ) -> None:
        self.w3 = w3
        self.network = network
        self.reader = MetagraphReader(w3, metagraph)
        if not epoch:
            epoch = to_checksum_address(self.reader.contract.call("epochContract"))
        self.epoch = EpochClient(w3, epoch) if int(epoch, 16) else None
        self.escrow_address = to_checksum_address(escrow) if escrow else ""
        self._epoch_events = (
            _Events(w3, "YumaConsensus", self.epoch.address, ("EpochCompleted",))
            if self.epoch
            else None
        )
        self._escrow_events = (
            _Events(w3, "PaymentEscrow", escrow, ESCROW_EVENTS) if escrow else None
        )
        self.history_epochs = history_epochs
        self.cursor = from_block  # next block to scan
        self.chunk = LOG_CHUNK
        self.history: list[EpochRecord] = []
        self.escrow_events: list[EscrowEvent] = []
        self._timestamps: dict[int, int] = {}
        self.errors: list[str] = []
        self._chain_id: int | None = None
        self._last: tuple[ChainInfo, Metagraph] | None = None

    # ------------------------------------------------------------------ logs

    def _get_logs(self, start: int, end: int) -> list[Any]:
        addresses = [e.address for e in (self._epoch_events, self._escrow_events) if e is not None]
        if not addresses:
            return []
        return list(
            self.w3.eth.get_logs({"address": addresses, "fromBlock": start, "toBlock": end})
        )

    def scan(self, to_block: int) -> None:
        """Read new logs up to ``to_block`` (at most :data:`CHUNKS_PER_REFRESH` chunks)."""
        completed: list[tuple[int, int, int]] = []
        for _ in range(CHUNKS_PER_REFRESH):
            if self.cursor > to_block:
                break
            end = min(to_block, self.cursor + self.chunk - 1)
            try:
                raw_logs = self._get_logs(self.cursor, end)
            except READ_ERRORS as exc:
                if self.chunk > MIN_LOG_CHUNK:  # many public nodes cap the range
                    self.chunk //= 2
                    continue
                raise LatentError(f"reading logs {self.cursor}..{end} failed: {exc}") from None
            for raw in raw_logs:
                self._take(raw, completed)
            self.cursor = end + 1
        # Only the epochs the charts keep need a metagraph read.
        kept = completed[-self.history_epochs :]
        for i, (epoch_block, block, distributed) in enumerate(kept):
            mg = self._scores_at(block, to_block, latest=i == len(kept) - 1)
            if mg is not None:
                self.history.append(EpochRecord.from_snapshot(epoch_block, block, distributed, mg))
        self.history = self.history[-self.history_epochs :]

    def _scores_at(self, block: int, head: int, *, latest: bool) -> Metagraph | None:
        """The metagraph as epoch-completing ``block`` left it. A node that no longer serves
        that block's state still gives the latest epoch's scores: they only change when an
        epoch completes, so the head's are the same while no other epoch has started."""
        try:
            return self.reader.snapshot(block)
        except READ_ERRORS as exc:
            self._error(
                f"cannot read the metagraph at past blocks ({type(exc).__name__}); the charts "
                "show the epochs completed while the dashboard runs (an archive node gives all)"
            )
        if not latest or self.epoch is None:
            return None
        try:
            if self.epoch.progress(block=head)[0] != Phase.IDLE:
                return None
            return self.reader.snapshot(head)
        except READ_ERRORS:
            return None

    def _take(self, raw: Any, completed: list[tuple[int, int, int]]) -> None:
        address = to_checksum_address(raw["address"])
        if self._epoch_events is not None and address == self._epoch_events.address:
            event = self._epoch_events.decode(raw)
            if event is not None:
                args = event["args"]
                completed.append(
                    (int(args["epochBlock"]), int(event["blockNumber"]), int(args["distributed"]))
                )
        elif self._escrow_events is not None and address == self._escrow_events.address:
            event = self._escrow_events.decode(raw)
            if event is not None:
                self.escrow_events.append(
                    EscrowEvent(
                        name=event["event"],
                        block=int(event["blockNumber"]),
                        log_index=int(event["logIndex"]),
                        tx_hash="0x" + bytes(event["transactionHash"]).hex(),
                        args=dict(event["args"]),
                    )
                )

    def _error(self, message: str) -> None:
        if message not in self.errors:
            self.errors.append(message)
            log.warning("dashboard: %s", message)

    def timestamps(self) -> dict[int, int]:
        """Timestamps of the blocks holding the recent settlements (cached)."""
        for block in settlement_blocks(self.escrow_events):
            if block not in self._timestamps:
                self._timestamps[block] = int(self.w3.eth.get_block(block)["timestamp"])
        return dict(self._timestamps)

    # ------------------------------------------------------------------ state

    def read(self) -> tuple[ChainInfo, Metagraph]:
        """Scan new logs and read the metagraph at the latest block (the last read again while
        no new block arrived)."""
        head = self.w3.eth.get_block("latest")
        block = int(head["number"])
        if self._last is not None and self._last[0].block == block:
            return self._last
        if self._chain_id is None:
            self._chain_id = int(self.w3.eth.chain_id)
        self.scan(block)
        mg = self.reader.snapshot(block)
        last = next_block = 0
        if self.epoch is not None:
            last = self.epoch.last_epoch_block(block=block)
            next_block = int(self.epoch.contract.call("nextEpochBlock", block=block))
        info = ChainInfo(
            network=self.network,
            chain_id=self._chain_id,
            block=block,
            timestamp=int(head["timestamp"]),
            metagraph=self.reader.address,
            epoch=self.epoch.address if self.epoch else "",
            escrow=self.escrow_address,
            last_epoch_block=last,
            next_epoch_block=next_block,
        )
        self._last = (info, mg)
        return self._last


# ---------------------------------------------------------------------- HTTP


async def fetch_validator_reports(
    client: httpx.AsyncClient, urls: Sequence[str], *, timeout_s: float = 1.5
) -> list[ValidatorReport]:
    """Every validator's ``GET /status`` concurrently; one that fails is reported as such."""

    async def one(url: str) -> ValidatorReport:
        try:
            response = await client.get(url.rstrip("/") + "/status", timeout=timeout_s)
            response.raise_for_status()
            body = response.json()
        except (httpx.HTTPError, ValueError) as exc:
            return ValidatorReport(url, None, f"{type(exc).__name__}: {exc}"[:200])
        if not isinstance(body, Mapping):
            return ValidatorReport(url, None, "status is not a JSON object")
        return ValidatorReport(url, body)

    return list(await asyncio.gather(*(one(u) for u in urls)))


async def fetch_prices(
    client: httpx.AsyncClient, endpoints: Sequence[str], *, timeout_s: float = 1.5
) -> dict[str, Pricing | None]:
    """Each miner endpoint's published price (``None``: unreachable or no pricing)."""

    async def one(endpoint: str) -> Pricing | None:
        try:
            response = await client.get(endpoint.rstrip("/") + "/v1/models", timeout=timeout_s)
            response.raise_for_status()
            return parse_pricing(response.json())
        except (httpx.HTTPError, ValueError):
            return None

    unique = sorted({e for e in endpoints if e.startswith(("http://", "https://"))})
    prices = await asyncio.gather(*(one(e) for e in unique))
    return dict(zip(unique, prices, strict=True))


__all__ = [
    "ChainSource",
    "fetch_prices",
    "fetch_validator_reports",
]
