"""The validator's persisted state: scores by hotkey, the round counter, the weight commit.

Saved as JSON with ``"schema": 1`` through :func:`chain.jsonfile.write_json_atomic` (temp
file in the same directory, fsync, ``os.replace``): a crash leaves the old file or the new
one, never a torn one. A missing file is a fresh state; another schema version is refused
(:class:`StateSchemaError`) rather than guessed at.

The pending weight commit (:class:`CommitRecord`) is saved *before* its transaction is sent,
so a validator killed at any point can still reveal what it committed (see
``validator.chain_duties.WeightSetter``).
"""

from __future__ import annotations

import threading
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from chain.jsonfile import StateFileError, read_json, write_json_atomic
from validator.scoring import MinerRecord

__all__ = [
    "SCHEMA",
    "CommitRecord",
    "StateSchemaError",
    "ValidatorState",
    "load",
    "save",
]

#: Version of the state file's layout; bump it (and refuse old files) on any change.
SCHEMA = 1


class StateSchemaError(StateFileError):
    """The validator state file is unreadable or was written with another schema version."""


@dataclass(frozen=True)
class CommitRecord:
    """A weight commit: everything its reveal needs, and where it stands on chain."""

    salt: bytes
    uids: tuple[int, ...]
    values: tuple[int, ...]
    """u16 values, as committed (``chain.weights.prepare_weights``)."""
    version_key: int
    commit_hash: bytes
    """``chain.weights.commit_hash`` of the above: matched against ``weightCommit(uid)``."""
    sent_at_block: int
    """Chain head when the commit transaction was sent."""
    block: int | None = None
    """Block the commit was mined in (None until its receipt is seen or the chain confirms
    it): the reveal window is ``block // tempo + revealPeriod``."""
    reveal_window: int | None = None
    """Window (``block.number // tempo``) in which the reveal is accepted."""

    def to_json(self) -> dict[str, Any]:
        return {
            "salt": "0x" + self.salt.hex(),
            "uids": list(self.uids),
            "values": list(self.values),
            "version_key": self.version_key,
            "commit_hash": "0x" + self.commit_hash.hex(),
            "sent_at_block": self.sent_at_block,
            "block": self.block,
            "reveal_window": self.reveal_window,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> CommitRecord:
        return cls(
            salt=bytes.fromhex(str(data["salt"]).removeprefix("0x")),
            uids=tuple(int(u) for u in data["uids"]),
            values=tuple(int(v) for v in data["values"]),
            version_key=int(data["version_key"]),
            commit_hash=bytes.fromhex(str(data["commit_hash"]).removeprefix("0x")),
            sent_at_block=int(data["sent_at_block"]),
            block=None if data.get("block") is None else int(data["block"]),
            reveal_window=None if data.get("reveal_window") is None else int(data["reveal_window"]),
        )


def _record_from_json(data: dict[str, Any]) -> MinerRecord:
    return MinerRecord(
        hotkey=str(data["hotkey"]),
        score=float(data["score"]),
        rounds=int(data["rounds"]),
        checks=int(data["checks"]),
        passes=int(data["passes"]),
        fails=int(data["fails"]),
        timeouts=int(data["timeouts"]),
        penalty_until_round=int(data["penalty_until_round"]),
        last_tps=float(data["last_tps"]),
        last_ttft_s=float(data["last_ttft_s"]),
        last_reason=str(data["last_reason"]),
        uid_registered_at=int(data["uid_registered_at"]),
        cheats=int(data.get("cheats", 0)),
    )


@dataclass
class ValidatorState:
    """Everything a validator must not lose across restarts.

    Mutable: the round loop replaces ``records`` and bumps ``round_index``, the weight setter
    replaces ``commit``; :meth:`save` serialises under a lock, so the two may save from
    different threads (``asyncio.to_thread``).
    """

    records: dict[str, MinerRecord] = field(default_factory=dict)
    """Per-hotkey scores (``validator.scoring.update_records``)."""
    round_index: int = 0
    """Index of the next round."""
    commit: CommitRecord | None = None
    """The pending weight commit (None: nothing to reveal)."""
    last_commit_block: int | None = None
    """Block of the last commit mined (kept after its reveal)."""
    last_reveal_block: int | None = None
    """Block of the last reveal mined."""
    last_epoch_block: int | None = None
    """Start block of the last Yuma epoch seen (run by this validator's keeper or another)."""
    _lock: threading.RLock = field(
        default_factory=threading.RLock, init=False, repr=False, compare=False
    )

    def to_json(self) -> dict[str, Any]:
        with self._lock:
            return {
                "schema": SCHEMA,
                "round_index": self.round_index,
                "records": {hk: asdict(r) for hk, r in sorted(self.records.items())},
                "commit": None if self.commit is None else self.commit.to_json(),
                "last_commit_block": self.last_commit_block,
                "last_reveal_block": self.last_reveal_block,
                "last_epoch_block": self.last_epoch_block,
            }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> ValidatorState:
        if data.get("schema") != SCHEMA:
            raise StateSchemaError(
                f"validator state has schema {data.get('schema')!r}, this latent reads "
                f"{SCHEMA}; move the file aside to start fresh (or run the latent that wrote it)"
            )

        def opt_int(key: str) -> int | None:
            return None if data.get(key) is None else int(data[key])

        commit = data.get("commit")
        return cls(
            records={str(hk): _record_from_json(r) for hk, r in data.get("records", {}).items()},
            round_index=int(data.get("round_index", 0)),
            commit=None if commit is None else CommitRecord.from_json(commit),
            last_commit_block=opt_int("last_commit_block"),
            last_reveal_block=opt_int("last_reveal_block"),
            last_epoch_block=opt_int("last_epoch_block"),
        )

    def save(self, path: Path | str) -> None:
        """Write the state to ``path`` atomically (the lock also orders concurrent saves)."""
        with self._lock:  # re-entrant: serialise and write as one step
            write_json_atomic(path, self.to_json())

    @classmethod
    def load(cls, path: Path | str) -> ValidatorState:
        """The state saved at ``path``; a fresh state when there is no file. Raises
        :class:`StateSchemaError` for an unreadable file or another schema version."""
        try:
            data = read_json(path, schema=SCHEMA, default={"schema": SCHEMA})
        except StateSchemaError:
            raise
        except StateFileError as exc:
            raise StateSchemaError(str(exc)) from None
        try:
            return cls.from_json(data)
        except (KeyError, TypeError, ValueError) as exc:
            raise StateSchemaError(
                f"validator state {path} is malformed ({exc!r}); move it aside to start fresh"
            ) from None

    def to_status(self) -> dict[str, Any]:
        """Plain JSON for ``latent validator status`` and ``/status``: per-miner rows, the
        round, the last commit and reveal."""
        records = dict(self.records)
        commit = self.commit
        return {
            "round": self.round_index,
            "miners": [
                {
                    "hotkey": hk,
                    "score": r.score,
                    "rounds": r.rounds,
                    "checks": r.checks,
                    "passes": r.passes,
                    "fails": r.fails,
                    "timeouts": r.timeouts,
                    "cheats": r.cheats,
                    "pass_rate": r.passes / r.checks if r.checks else 0.0,
                    "tokens_per_s": r.last_tps,
                    "ttft_s": r.last_ttft_s,
                    "penalty_until_round": r.penalty_until_round,
                    "last_reason": r.last_reason,
                }
                for hk, r in sorted(records.items(), key=lambda kv: (-kv[1].score, kv[0]))
            ],
            "pending_commit": None
            if commit is None
            else {
                "block": commit.block,
                "sent_at_block": commit.sent_at_block,
                "reveal_window": commit.reveal_window,
                "uids": len(commit.uids),
            },
            "last_commit": self.last_commit_block,
            "last_reveal": self.last_reveal_block,
            "last_epoch": self.last_epoch_block,
        }


def load(path: Path | str) -> ValidatorState:
    """:meth:`ValidatorState.load`."""
    return ValidatorState.load(path)


def save(path: Path | str, state: ValidatorState) -> None:
    """:meth:`ValidatorState.save`."""
    state.save(path)
