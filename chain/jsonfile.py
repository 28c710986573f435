"""Atomic JSON state files with a schema version (one home for every role's state).

A write goes to a temporary file in the same directory, is fsynced, then ``os.replace``d
over the old file: a crash leaves either the old or the new content, never a torn file.
Every file carries ``"schema": N``; a reader refuses another version with a message that
says what to do instead of guessing.
"""

from __future__ import annotations

import fcntl
import json
import os
import tempfile
from pathlib import Path
from typing import IO, Any

from chain.errors import LatentError

__all__ = [
    "DirectoryLock",
    "DirectoryLocked",
    "StateFileError",
    "read_json",
    "write_json_atomic",
    "write_text_atomic",
]


class StateFileError(LatentError):
    """A state file that cannot be read, or has another schema version."""


class DirectoryLocked(LatentError):
    """Another process holds the directory's lock."""


class DirectoryLock:
    """An exclusive ``fcntl`` lock on a file in ``directory``, held while one process owns
    the state there (a localnet, the renter's books); a second holder is refused with
    ``refusal`` (the kernel drops the lock when the process dies, so a crash never blocks
    the next one)."""

    def __init__(self, directory: Path, filename: str, refusal: str) -> None:
        self.path = directory / filename
        self._refusal = refusal
        self._fh: IO[str] | None = None

    def __enter__(self) -> DirectoryLock:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fh = self.path.open("a+")
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            fh.close()
            raise DirectoryLocked(self._refusal) from None
        fh.seek(0)
        fh.truncate()
        fh.write(str(os.getpid()))
        fh.flush()
        self._fh = fh
        return self

    def __exit__(self, *exc: object) -> None:
        if self._fh is not None:
            fcntl.flock(self._fh, fcntl.LOCK_UN)
            self._fh.close()
            self._fh = None


def write_text_atomic(path: Path | str, text: str, *, mode: int = 0o600) -> None:
    """Write ``text`` to ``path`` atomically (temp file, fsync, ``os.replace``); the file
    gets ``mode`` (private by default: keys and state; 0o644 for files meant to be shared)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            os.fchmod(fh.fileno(), mode)
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_json_atomic(path: Path | str, data: dict[str, Any]) -> None:
    """Write ``data`` (which should hold a ``"schema"`` key) to ``path`` atomically."""
    write_text_atomic(path, json.dumps(data, indent=1, sort_keys=True))


def read_json(
    path: Path | str, *, schema: int, default: dict[str, Any] | None = None
) -> dict[str, Any]:
    """The object stored at ``path``; ``default`` (a fresh state) when the file is missing
    and a default is given. Raises :class:`StateFileError` for unreadable JSON or another
    schema version."""
    path = Path(path)
    if not path.exists() and default is not None:
        return dict(default)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise StateFileError(f"state file {path} is unreadable: {exc}") from None
    found = data.get("schema") if isinstance(data, dict) else None
    if found != schema:
        raise StateFileError(
            f"state file {path} has schema {found!r}, expected {schema}; "
            "move it aside to start fresh (or use the version of latent that wrote it)"
        )
    return dict(data)
