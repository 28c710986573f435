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
from latent.processes import ManifestDirLock, StateDirLock


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


def test_a_localnet_never_overwrites_the_manifest_of_a_running_one(tmp_path: Path) -> None:
    """A running localnet holds its manifest directory; a second one aimed at it (here through
    LATENT_DEPLOYMENTS_DIR, as after the first one's printed ``export``) is refused before
    anything starts, whatever its port, and the first one's manifest is left as it was."""
    manifest = tmp_path / "localnet.json"
    manifest.write_text('{"sentinel": true}\n')
    with ManifestDirLock(tmp_path):
        done = _localnet("--port", "8545", env={"LATENT_DEPLOYMENTS_DIR": str(tmp_path)})
    _one_line_error(done, f"another latent localnet keeps its manifest in {tmp_path}")
    assert manifest.read_text() == '{"sentinel": true}\n'


def test_localnet_tells_how_to_use_it(tmp_path: Path) -> None:
    """Every funded dev account with its role, and on another port the export line other
    commands need; that port's manifest stays under the state directory."""
    port = free_port()
    done = _localnet("--port", str(port), "--state", str(tmp_path), env={"COLUMNS": "200"})
    assert done.returncode == 0, done.stderr
    out = done.stdout
    rows = {
        line.split()[0]: line
        for line in out.splitlines()
        if line[:1].isdigit() and len(line.split()) > 2 and line.split()[1].startswith("0x")
    }
    assert sorted(rows, key=int) == [str(i) for i in range(10)]
    assert "owner: deployed the contracts" in rows["0"]
    assert all("miner-" in rows[str(i)] for i in (1, 2, 3, 4))
    assert "cheats: other-weights" in rows["4"]
    assert "validator-1" in rows["5"] and "validator-2" in rows["6"]
    assert "pays miners for the validator on dev account 5" in rows["7"]
    assert "renter" in rows["9"]
    deployments = tmp_path / "deployments"
    assert (
        f"export LATENT_LOCALNET_RPC_URL=http://127.0.0.1:{port} "
        f"LATENT_DEPLOYMENTS_DIR={deployments}" in out
    )
    assert (deployments / "localnet.json").is_file()
