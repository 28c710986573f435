"""The README's commands still work: the block marked ``<!-- readme-test: NAME ... -->`` is
run line by line, in order, on a fresh anvil, and every command must exit 0.

What the test adapts, and nothing else: ``$L`` is this interpreter's ``-m latent``; the chain
is a fresh anvil on a free port (``LATENT_LOCALNET_RPC_URL``), its manifest goes to a
temporary ``LATENT_DEPLOYMENTS_DIR`` and ``HOME`` is temporary (voucher book, renter books);
the miner's port 8001 becomes a free port (the shared test machine may use 8001). A line
ending in ``&`` runs in the background until the block is done (the test waits for its
``/health``). After the paid round trip the test checks the chain: the miner settled exactly
the price of the first receipt the renter verified.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx

from chain.client import connect
from chain.escrow import EscrowClient
from chain.keys import dev_accounts
from chain.node import AnvilNode, free_port
from chain.paths import REPO_ROOT

README = REPO_ROOT / "README.md"


def readme_block(name: str) -> list[str]:
    """The command lines of the fenced block right after ``<!-- readme-test: NAME``."""
    text = README.read_text()
    match = re.search(
        rf"<!-- readme-test: {re.escape(name)}\b[^>]*-->\s*```bash\n(.*?)```", text, re.S
    )
    assert match, f"README.md has no block marked readme-test: {name}"
    lines = []
    for raw in match.group(1).splitlines():
        line = raw.split("  #", 1)[0].strip()  # trailing comments
        if line and not line.startswith("#"):
            lines.append(line)
    return lines


def test_the_marked_block_is_found_and_ends_with_a_paid_request_and_its_settlement() -> None:
    lines = readme_block("paid-round-trip")
    assert lines[0] == "L=.venv/bin/latent"
    commands = [line.split()[1:3] for line in lines[1:]]
    assert commands[-1] == ["miner", "settle"]
    assert ["renter", "ask"] in commands and ["miner", "run"] in commands


def _argv(line: str, port: int) -> list[str]:
    words = shlex.split(line.replace("8001", str(port)))
    assert words[0] == "$L", line
    return [sys.executable, "-m", "latent", *words[1:]]


def _wait_healthy(url: str, process: subprocess.Popen[bytes], timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"background command exited with {process.returncode}")
        try:
            if httpx.get(f"{url}/health", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.3)
    raise AssertionError(f"{url} not healthy after {timeout_s} s")


def test_paid_round_trip_by_hand(tmp_path: Path) -> None:
    port = free_port()
    home = tmp_path / "home"
    home.mkdir()
    with AnvilNode() as node:
        env = {
            **os.environ,
            "HOME": str(home),
            "LATENT_LOCALNET_RPC_URL": node.rpc_url,
            "LATENT_DEPLOYMENTS_DIR": str(tmp_path / "deployments"),
            "COLUMNS": "200",
        }
        env.pop("LATENT_NETWORK", None)
        background: list[subprocess.Popen[bytes]] = []
        logs = []
        try:
            for line in readme_block("paid-round-trip")[1:]:
                if line.endswith("&"):
                    log = (tmp_path / f"bg{len(background)}.log").open("wb")
                    logs.append(log)
                    process = subprocess.Popen(
                        _argv(line[:-1], port),
                        cwd=REPO_ROOT,
                        env=env,
                        stdout=log,
                        stderr=subprocess.STDOUT,
                        start_new_session=True,
                    )
                    background.append(process)
                    _wait_healthy(f"http://127.0.0.1:{port}", process, timeout_s=90)
                    continue
                done = subprocess.run(
                    _argv(line, port),
                    cwd=REPO_ROOT,
                    env=env,
                    capture_output=True,
                    text=True,
                    timeout=180,
                    stdin=subprocess.DEVNULL,
                )
                assert done.returncode == 0, f"{line}\n{done.stdout}\n{done.stderr}"
                assert "Traceback" not in done.stderr, done.stderr
        finally:
            for process in background:
                os.killpg(process.pid, signal.SIGTERM)
                try:
                    process.wait(timeout=20)
                except subprocess.TimeoutExpired:  # pragma: no cover - a stuck miner
                    os.killpg(process.pid, signal.SIGKILL)
                    process.wait()
            for log in logs:
                log.close()

        # What the round trip left on chain: the first answer, paid by the second voucher.
        receipts = [
            json.loads(line)
            for line in (home / ".latent" / "renter" / "receipts.jsonl").read_text().splitlines()
        ]
        assert len(receipts) == 2
        manifest = json.loads((tmp_path / "deployments" / "localnet.json").read_text())
        w3 = connect(node.rpc_url)
        escrow = EscrowClient(w3, manifest["contracts"]["PaymentEscrow"]["address"])
        (channel_file,) = (home / ".latent" / "renter" / "channels").glob("0x*.json")
        channel = escrow.channel(bytes.fromhex(channel_file.stem[2:]))
        assert channel.miner == dev_accounts(2)[1].address
        assert channel.renter == dev_accounts(10)[9].address
        assert channel.settled == int(receipts[0]["price"]) > 0
