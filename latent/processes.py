"""Supervise the role processes ``latent localnet`` starts: one log file each, readiness
by HTTP, and a clean stop of every one of them whatever happens.

Each role runs as an ordinary ``latent ...`` command (the same a user would type on a
separate machine), in its own session so a terminal's Ctrl-C reaches the supervisor only;
the supervisor stops them in reverse start order with SIGTERM, then SIGKILL after a grace
period. Children also get SIGTERM from the kernel if the supervisor itself dies.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import IO

import httpx

from chain.errors import LatentError
from chain.jsonfile import DirectoryLock

__all__ = [
    "DirectoryLock",
    "ManifestDirLock",
    "ProcessFailed",
    "RoleProcess",
    "StateDirLock",
    "Supervisor",
    "latent_command",
]


class ProcessFailed(LatentError):
    """A role process exited or did not become ready."""


def latent_command(*args: str) -> list[str]:
    """argv that runs ``latent ARGS`` with this interpreter (no PATH lookup)."""
    return [sys.executable, "-m", "latent", *args]


def _die_with_parent() -> None:
    try:
        import ctypes

        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


@dataclass
class RoleProcess:
    """One started role: its name, argv, log file and readiness URL."""

    name: str
    argv: list[str]
    log_path: Path
    ready_url: str | None = None
    env: dict[str, str] = field(default_factory=dict)
    proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        """Start the process, appending its output to ``log_path``."""
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        log: IO[bytes] = self.log_path.open("ab")
        try:
            self.proc = subprocess.Popen(
                self.argv,
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
                preexec_fn=_die_with_parent,
                env={**os.environ, "PYTHONUNBUFFERED": "1", **self.env},
            )
        except OSError as exc:
            raise ProcessFailed(f"{self.name}: could not start ({exc})") from None
        finally:
            log.close()

    @property
    def running(self) -> bool:
        """True while the process has not exited."""
        return self.proc is not None and self.proc.poll() is None

    def tail(self, lines: int = 3) -> str:
        """The last lines of the log, for error messages."""
        try:
            text = self.log_path.read_text(errors="replace").strip().splitlines()
        except OSError:
            return "(no log)"
        return " | ".join(text[-lines:]) if text else "(empty log)"

    def wait_ready(self, timeout_s: float) -> None:
        """Block until ``ready_url`` answers 2xx; raise :class:`ProcessFailed` if the process
        exits first or the time runs out."""
        if self.ready_url is None:
            return
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if not self.running:
                raise ProcessFailed(
                    f"{self.name} exited during start-up (log {self.log_path}): {self.tail()}"
                )
            try:
                if httpx.get(self.ready_url, timeout=1.0).is_success:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        raise ProcessFailed(
            f"{self.name} was not ready within {timeout_s:.0f} s (log {self.log_path}): {self.tail()}"
        )

    def stop(self, grace_s: float = 10.0) -> None:
        """SIGTERM, then SIGKILL after ``grace_s``; a no-op when not running."""
        proc = self.proc
        if proc is None or proc.poll() is not None:
            return
        try:
            os.killpg(proc.pid, signal.SIGTERM)
        except ProcessLookupError:
            return
        try:
            proc.wait(timeout=grace_s)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=grace_s)


class Supervisor:
    """Starts role processes and stops all of them on exit (reverse order)."""

    def __init__(self) -> None:
        self.processes: list[RoleProcess] = []

    def start(self, role: RoleProcess) -> RoleProcess:
        """Start ``role`` and track it (it is stopped with the others)."""
        self.processes.append(role)
        role.start()
        return role

    def failed(self) -> list[RoleProcess]:
        """Started processes that have exited."""
        return [p for p in self.processes if p.proc is not None and not p.running]

    def stop_all(self) -> None:
        """Stop every process, newest first."""
        for role in reversed(self.processes):
            role.stop()

    def __enter__(self) -> Supervisor:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop_all()


class StateDirLock(DirectoryLock):
    """An exclusive lock on a state directory: a second localnet on it is refused."""

    def __init__(self, directory: Path) -> None:
        super().__init__(
            directory,
            ".lock",
            f"another latent localnet is using {directory}; stop it or pick --state",
        )


class ManifestDirLock(DirectoryLock):
    """A localnet's claim on the directory its ``localnet.json`` manifest goes to: a second
    localnet writing there would silently repoint every other command at its chain."""

    def __init__(self, directory: Path) -> None:
        super().__init__(
            directory,
            ".localnet.lock",
            f"another latent localnet keeps its manifest in {directory}; stop it, or unset "
            "LATENT_DEPLOYMENTS_DIR / pick another --port to keep this one's apart",
        )


def wait_all_ready(roles: Sequence[RoleProcess], timeout_s: float) -> None:
    """Wait for every role (they start in parallel; the slowest bounds the wait)."""
    deadline = time.monotonic() + timeout_s
    for role in roles:
        role.wait_ready(max(1.0, deadline - time.monotonic()))
