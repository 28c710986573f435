"""``latent localnet`` refuses bad set-ups with one line on stderr, a non-zero exit, and
nothing left running: an occupied port, a second instance on the same state directory, a
missing npm toolchain, an unknown cheat."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from chain.node import free_port
from latent.processes import StateDirLock


def _localnet(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "latent", "localnet", "--once", "--dashboard-port", "0", *args],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, **(env or {})},
        check=False,
    )


def _one_line_error(done: subprocess.CompletedProcess[str], text: str) -> None:
    assert done.returncode == 1, done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error:"), done.stderr
    assert text in lines[0]
    assert "Traceback" not in done.stderr


def test_an_occupied_port_is_refused() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        port = sock.getsockname()[1]
        _one_line_error(_localnet("--port", str(port)), f"port {port} is already in use")


def test_a_second_localnet_on_the_same_state_directory_is_refused(tmp_path: Path) -> None:
    with StateDirLock(tmp_path):
        done = _localnet("--port", str(free_port()), "--state", str(tmp_path))
    _one_line_error(done, "another latent localnet is using")


def test_a_missing_npm_toolchain_is_named(tmp_path: Path) -> None:
    """No node_modules and no anvil on PATH: the error says how to install them."""
    done = _localnet(
        "--port", str(free_port()), env={"LATENT_ROOT": str(tmp_path), "PATH": "/usr/bin:/bin"}
    )
    _one_line_error(done, "anvil not found")


@pytest.mark.parametrize("cheat", ["bribery"])
def test_an_unknown_cheat_is_refused(cheat: str) -> None:
    _one_line_error(_localnet("--port", str(free_port()), "--cheat", cheat), "is not a cheat")
