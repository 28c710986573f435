"""Atomic JSON state files with a schema version (one home for every role's state).

A write goes to a temporary file in the same directory, is fsynced, then ``os.replace``d
over the old file: a crash leaves either the old or the new content, never a torn file.
Every file carries ``"schema": N``; a reader refuses another version with a message that
says what to do instead of guessing.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any

from chain.errors import LatentError

__all__ = ["StateFileError", "read_json", "write_json_atomic", "write_text_atomic"]


class StateFileError(LatentError):
    """A state file that cannot be read, or has another schema version."""


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
