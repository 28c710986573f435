"""The renter's books: one voucher ledger per channel, and the receipts it was served.

Layout of the state directory::

    channels/0x<channel id>.json   one ledger per channel (schema 1, written atomically)
    receipts.jsonl                 every verified receipt, append-only, one JSON per line
    stats.json                     observed miner latency and throughput (for `latent market`)

A channel ledger (``ChannelRecord.to_json``)::

    {"schema": 1, "channel_id": "0x..", "miner": "0x..", "endpoint": "http://..",
     "escrow": "0x..", "token": "0x..", "chain_id": 31337, "salt": "0x..",
     "deposit": "<base units>", "owed": "<base units>", "requests": 3,
     "prompt_tokens": 30, "completion_tokens": 40, "status": "open",
     "note": "", "opened_at": 1.7e9, "last_used": 1.7e9}

``owed`` is the sum of the prices in the verified receipts of the channel: the cumulative
amount of the next voucher, and of no other. It only moves after a receipt checked out, so a
failed or unverifiable response is never paid for, and a restart resumes from the books: the
next voucher equals the last one plus new work, never a second payment.

The receipt log is the per-request journal: each line names its channel and the channel's
``cumulative`` after it, so a served request costs one ``write`` to the log (the proxy fsyncs
it in groups, at most ``BOOKS_SYNC_S`` after the write, and on stop) and a channel file is
rewritten only when the channel itself changes (opened, topped up, retired, closed).
A process crash loses nothing written; a machine crash can lose the last unsynced lines, which
never makes the renter pay twice: the next voucher is then *short* of what the miner served,
the miner refuses it (402 ``voucher_short``), and the proxy retires the channel. :meth:`LedgerStore.load_channels` folds the log into the files:
``owed`` is the larger of the file's and the last logged cumulative, the counters the larger
of the file's and the log's sums. Channel files are written through a temp file in the same
directory, fsync and ``os.replace``; a torn last log line (a crash mid-append) is skipped.

Statuses: ``open`` (in use), ``retired`` (the miner asks for more than the ledger owes, or
misbehaved: never used again, waiting for ``latent renter close``), ``closing`` (close
requested on-chain), ``closed`` (refund withdrawn).
"""

from __future__ import annotations

import json
import os
import threading
import time
from collections import deque
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any, Literal

from chain.errors import LatentError
from chain.jsonfile import DirectoryLock, write_json_atomic

LEDGER_SCHEMA = 1

ChannelStatus = Literal["open", "retired", "closing", "closed"]


class LedgerError(LatentError):
    """A ledger file is unreadable, of another schema, or inconsistent."""


@dataclass(frozen=True)
class ChannelRecord:
    """One channel as the renter books it."""

    channel_id: bytes
    #: The miner's hotkey (the channel's payee).
    miner: str
    #: Where the miner served when the channel was opened.
    endpoint: str
    escrow: str
    token: str
    chain_id: int
    salt: bytes
    #: Deposit as last known (open + top-ups).
    deposit: int
    #: Sum of verified receipt prices: the amount of the next voucher.
    owed: int = 0
    requests: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    status: ChannelStatus = "open"
    #: Why the channel was retired or closed, for `latent renter status`.
    note: str = ""
    opened_at: float = 0.0
    last_used: float = 0.0

    @property
    def available(self) -> int:
        """Deposit not yet owed to the miner."""
        return self.deposit - self.owed

    def to_json(self) -> dict[str, Any]:
        """The ledger file's JSON (amounts as decimal strings)."""
        data = asdict(self)
        data.update(
            schema=LEDGER_SCHEMA,
            channel_id="0x" + self.channel_id.hex(),
            salt="0x" + self.salt.hex(),
            deposit=str(self.deposit),
            owed=str(self.owed),
        )
        return data

    def folded(self, logged: _Logged) -> ChannelRecord:
        """This ledger with what the receipt log holds for it (module docs)."""
        return replace(
            self,
            owed=max(self.owed, logged.cumulative),
            requests=max(self.requests, logged.requests),
            prompt_tokens=max(self.prompt_tokens, logged.prompt_tokens),
            completion_tokens=max(self.completion_tokens, logged.completion_tokens),
            last_used=max(self.last_used, logged.last_used),
        )

    @classmethod
    def from_json(cls, data: Any) -> ChannelRecord:
        """Inverse of :meth:`to_json`; raises :class:`LedgerError` on anything else."""
        if not isinstance(data, dict) or data.get("schema") != LEDGER_SCHEMA:
            found = data.get("schema") if isinstance(data, dict) else None
            raise LedgerError(
                f"channel ledger has schema {found!r}, expected {LEDGER_SCHEMA}; "
                "move the file aside (the channel stays on-chain) and restart"
            )
        try:
            return cls(
                channel_id=bytes.fromhex(str(data["channel_id"])[2:]),
                miner=str(data["miner"]),
                endpoint=str(data["endpoint"]),
                escrow=str(data["escrow"]),
                token=str(data["token"]),
                chain_id=int(data["chain_id"]),
                salt=bytes.fromhex(str(data["salt"])[2:]),
                deposit=int(str(data["deposit"])),
                owed=int(str(data["owed"])),
                requests=int(data["requests"]),
                prompt_tokens=int(data["prompt_tokens"]),
                completion_tokens=int(data["completion_tokens"]),
                status=data["status"],
                note=str(data.get("note", "")),
                opened_at=float(data.get("opened_at", 0.0)),
                last_used=float(data.get("last_used", 0.0)),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise LedgerError(f"channel ledger is malformed: {exc}") from None


@dataclass
class _Logged:
    """What the receipt log holds for one channel."""

    cumulative: int = 0
    requests: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    last_used: float = 0.0


def _fold(entries: list[dict[str, Any]]) -> dict[bytes, _Logged]:
    logged: dict[bytes, _Logged] = {}
    for entry in entries:
        try:
            cid = bytes.fromhex(str(entry["channel_id"])[2:])
            cumulative = int(str(entry["cumulative"]))
            prompt, completion = int(entry["prompt_tokens"]), int(entry["completion_tokens"])
            at = float(entry.get("time", 0.0))
        except (KeyError, TypeError, ValueError) as exc:
            raise LedgerError(f"receipt log entry is malformed: {exc}") from None
        one = logged.setdefault(cid, _Logged())
        one.cumulative = max(one.cumulative, cumulative)
        one.requests += 1
        one.prompt_tokens += prompt
        one.completion_tokens += completion
        one.last_used = max(one.last_used, at)
    return logged


class LedgerStore:
    """Channel ledgers and the receipt log under one state directory."""

    def __init__(self, state_dir: Path) -> None:
        self.state_dir = Path(state_dir)
        self.channels_dir = self.state_dir / "channels"
        self.receipts_path = self.state_dir / "receipts.jsonl"
        self.stats_path = self.state_dir / "stats.json"
        self._log_fd: int | None = None
        self._sync_lock = threading.Lock()

    def lock(self) -> DirectoryLock:
        """Exclusive use of these books while a proxy, ``renter ask`` or ``renter close``
        runs: two of them would sign vouchers from diverging copies of the same ledgers."""
        return DirectoryLock(
            self.state_dir,
            ".lock",
            f"another latent renter proxy, ask or close is using the books in "
            f"{self.state_dir}; stop it or pass another --state-dir",
        )

    def channel_path(self, channel_id: bytes) -> Path:
        return self.channels_dir / f"0x{channel_id.hex()}.json"

    def load_channels(self, receipts: list[dict[str, Any]] | None = None) -> list[ChannelRecord]:
        """Every channel ledger in the state directory, oldest first, with the receipt log
        folded in (``receipts``: the log as :meth:`read_receipts` returned it, read when not
        given)."""
        if not self.channels_dir.is_dir():
            return []
        records = []
        for path in sorted(self.channels_dir.glob("0x*.json")):
            try:
                data = json.loads(path.read_text(encoding="utf-8"))
            except (OSError, ValueError) as exc:
                raise LedgerError(f"channel ledger {path} is unreadable: {exc}") from None
            record = ChannelRecord.from_json(data)
            if path.name != f"0x{record.channel_id.hex()}.json":
                raise LedgerError(f"channel ledger {path} names another channel")
            records.append(record)
        logged = _fold(self.read_receipts() if receipts is None else receipts)
        records = [r.folded(logged[r.channel_id]) if r.channel_id in logged else r for r in records]
        return sorted(records, key=lambda r: (r.opened_at, r.channel_id))

    def save_channel(self, record: ChannelRecord) -> None:
        """Persist one ledger atomically (blocking: call it off the event loop)."""
        write_json_atomic(self.channel_path(record.channel_id), record.to_json())

    def append_receipts(self, entries: list[dict[str, Any]]) -> None:
        """Append receipt entries to the log, one line each, in one ``write``: a few
        microseconds into the page cache, so the proxy calls it on its event loop; what is
        written survives the process. :meth:`sync_receipts` makes it survive the machine."""
        if not entries:
            return
        if self._log_fd is None:
            self.state_dir.mkdir(parents=True, exist_ok=True)
            self._log_fd = os.open(
                self.receipts_path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o600
            )
        data = "".join(
            json.dumps(e, separators=(",", ":"), sort_keys=True) + "\n" for e in entries
        ).encode()
        written = os.write(self._log_fd, data)
        if written != len(data):  # a full disk mid-line: the torn line is skipped on reading
            raise OSError(f"short write to {self.receipts_path} ({written} of {len(data)} bytes)")

    def sync_receipts(self) -> None:
        """fsync the receipt log (blocking: call it off the event loop)."""
        with self._sync_lock:  # never on a descriptor that close() released
            if self._log_fd is not None:
                os.fsync(self._log_fd)

    def close(self) -> None:
        """Sync and close the receipt log (after any fsync in progress)."""
        with self._sync_lock:
            if self._log_fd is not None:
                fd, self._log_fd = self._log_fd, None
                try:
                    os.fsync(fd)
                finally:
                    os.close(fd)

    def read_receipts(self) -> list[dict[str, Any]]:
        """Every logged receipt entry (a torn last line from a crash is skipped)."""
        if not self.receipts_path.exists():
            return []
        entries = []
        for line in self.receipts_path.read_text(encoding="utf-8").splitlines():
            try:
                entries.append(json.loads(line))
            except ValueError:
                continue
        return entries

    def save_stats(self, stats: dict[str, Any]) -> None:
        write_json_atomic(self.stats_path, {"schema": LEDGER_SCHEMA, "miners": stats})

    def load_stats(self) -> dict[str, Any]:
        try:
            data = json.loads(self.stats_path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return {}
        miners = data.get("miners") if isinstance(data, dict) else None
        return miners if isinstance(miners, dict) else {}


class SpendMeter:
    """What was spent in total and within the last hour (from receipt prices)."""

    def __init__(self, *, clock: Any = time.time) -> None:
        self._clock = clock
        self._recent: deque[tuple[float, int]] = deque()
        self._recent_sum = 0
        self.total = 0

    def load(self, entries: list[dict[str, Any]]) -> None:
        """Rebuild from the receipt log."""
        for entry in entries:
            self.add(int(entry.get("price", 0)), at=float(entry.get("time", 0.0)))

    def add(self, price: int, *, at: float | None = None) -> None:
        self.total += price
        self._recent.append((self._clock() if at is None else at, price))
        self._recent_sum += price

    def last_hour(self) -> int:
        cutoff = self._clock() - 3600.0
        while self._recent and self._recent[0][0] < cutoff:
            self._recent_sum -= self._recent.popleft()[1]
        return self._recent_sum

    def seconds_until_below(self, limit: int) -> float:
        """Seconds until the last hour's spend drops below ``limit`` (0 when it is)."""
        spent = self.last_hour()
        if spent < limit:
            return 0.0
        for at, price in self._recent:
            spent -= price
            if spent < limit:
                return max(0.0, at + 3600.0 - self._clock())
        return 3600.0


def updated(record: ChannelRecord, **changes: Any) -> ChannelRecord:
    """``dataclasses.replace`` (typed helper)."""
    return replace(record, **changes)


__all__ = [
    "LEDGER_SCHEMA",
    "ChannelRecord",
    "ChannelStatus",
    "LedgerError",
    "LedgerStore",
    "SpendMeter",
    "updated",
]
