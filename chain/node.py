"""A local anvil node: start on a free port, wait until it answers, stop cleanly.

anvil comes from the npm package ``@foundry-rs/anvil`` (pinned in ``package.json``); an
``anvil`` on PATH is used when ``node_modules`` has none. Used by tests (one node per test
session, ``evm_snapshot``/``evm_revert`` between tests) and by ``latent localnet``.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path
from types import TracebackType
from typing import Any

from web3 import Web3

from chain.errors import NodeError
from chain.paths import NODE_MODULES

#: anvil's default dev mnemonic; its accounts are public knowledge and only for local chains.
DEV_MNEMONIC = "test test test test test test test test test test test junk"


def find_anvil() -> str:
    """Path of the anvil binary: the npm-pinned one, else one on PATH."""
    for candidate in (
        NODE_MODULES / "@foundry-rs" / "anvil-linux-amd64" / "bin" / "anvil",
        NODE_MODULES / ".bin" / "anvil",
    ):
        if candidate.is_file() and os.access(candidate, os.X_OK):
            return str(candidate)
    found = shutil.which("anvil")
    if found:
        return found
    raise NodeError(
        "anvil not found: run `npm ci` in the repository (the README's set-up commands do it)"
    )


def _die_with_parent() -> None:
    """In the child: ask Linux to SIGTERM it when the parent dies (no-op elsewhere)."""
    try:
        import ctypes

        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        libc.prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


def port_is_free(port: int) -> bool:
    """Whether a server could bind ``port`` now. SO_REUSEADDR as servers set it, so a port
    left in TIME_WAIT by a process that just stopped counts as free (restarts work)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class AnvilNode:
    """One anvil process on 127.0.0.1.

    ``block_time=None`` mines a block per transaction (fast tests); a number mines on a
    timer like a real chain. With ``state_path`` the chain is loaded from that file when it
    exists and dumped into it on stop, so a localnet survives restarts.
    """

    def __init__(
        self,
        *,
        chain_id: int = 31337,
        block_time: float | None = None,
        port: int | None = None,
        state_path: Path | None = None,
        accounts: int = 10,
        balance_eth: int = 10_000,
        gas_limit: int = 30_000_000,
        startup_timeout_s: float = 20.0,
    ) -> None:
        self.chain_id = chain_id
        self.block_time = block_time
        self.port = port
        self.state_path = state_path
        self.accounts = accounts
        self.balance_eth = balance_eth
        self.gas_limit = gas_limit
        self.startup_timeout_s = startup_timeout_s
        self._proc: subprocess.Popen[bytes] | None = None
        self._log_path: Path | None = None
        #: Where anvil pages out historical states (GBs on long runs); removed on stop.
        self._cache_dir: Path | None = None

    @property
    def rpc_url(self) -> str:
        if self.port is None:
            raise NodeError("the node has not been started")
        return f"http://127.0.0.1:{self.port}"

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def command(self) -> list[str]:
        cmd = [
            find_anvil(),
            "--host", "127.0.0.1",
            "--port", str(self.port),
            "--chain-id", str(self.chain_id),
            "--accounts", str(self.accounts),
            "--balance", str(self.balance_eth),
            "--mnemonic", DEV_MNEMONIC,
            "--gas-limit", str(self.gas_limit),
        ]  # fmt: skip
        if self.block_time is not None:
            cmd += ["--block-time", str(self.block_time)]
        if self.state_path is not None:
            # --state loads the file if present and dumps into it on exit
            cmd += ["--state", str(self.state_path)]
        if self._cache_dir is not None:
            # anvil's default (~/.foundry/anvil/tmp) outlives a killed node: 66 GB piled up
            cmd += ["--cache-path", str(self._cache_dir)]
        return cmd

    def start(self) -> AnvilNode:
        """Start anvil and block until it answers JSON-RPC with the right chain id."""
        if self.running:
            return self
        if self.port is None:
            self.port = free_port()
        elif not port_is_free(self.port):
            # Checked first: otherwise the readiness probe would talk to whoever holds it.
            raise NodeError(f"port {self.port} is already in use; stop that process or pick --port")
        if self.state_path is not None:
            self.state_path.parent.mkdir(parents=True, exist_ok=True)
        log_dir = Path(os.environ.get("TMPDIR", "/tmp"))
        self._log_path = log_dir / f"latent-anvil-{self.port}.log"
        self._cache_dir = Path(tempfile.mkdtemp(prefix="latent-anvil-states-", dir=log_dir))
        log = self._log_path.open("wb")
        try:
            self._proc = subprocess.Popen(
                self.command(),
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # a terminal's Ctrl-C reaches us only; we stop anvil
                preexec_fn=_die_with_parent,  # never outlive a killed test run or CLI
            )
        except OSError as exc:
            self._remove_cache()
            raise NodeError(f"could not start anvil: {exc}") from None
        finally:
            log.close()
        deadline = time.monotonic() + self.startup_timeout_s
        w3 = Web3(Web3.HTTPProvider(self.rpc_url, request_kwargs={"timeout": 2}))
        while time.monotonic() < deadline:
            if self._proc.poll() is not None:
                self._remove_cache()
                raise NodeError(f"anvil exited at start-up: {self._tail_log()}")
            try:
                if w3.eth.chain_id == self.chain_id:
                    return self
            except Exception:  # noqa: BLE001 - not listening yet: any transport error
                time.sleep(0.05)
        self.stop()
        raise NodeError(
            f"anvil did not answer within {self.startup_timeout_s:.0f}s on {self.rpc_url}"
        )

    def _tail_log(self) -> str:
        if self._log_path is None or not self._log_path.exists():
            return "(no log)"
        lines = self._log_path.read_text(errors="replace").strip().splitlines()
        return lines[-1] if lines else "(empty log)"

    def stop(self, timeout_s: float = 10.0) -> None:
        """Stop anvil (SIGINT first, so a state file is dumped), then SIGKILL if it hangs."""
        proc, self._proc = self._proc, None
        if proc is not None and proc.poll() is None:
            proc.send_signal(signal.SIGINT)
            try:
                proc.wait(timeout=timeout_s)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=timeout_s)
        self._remove_cache()

    def _remove_cache(self) -> None:
        cache, self._cache_dir = self._cache_dir, None
        if cache is not None:
            shutil.rmtree(cache, ignore_errors=True)

    def web3(self) -> Web3:
        """A Web3 connected to this node."""
        return Web3(Web3.HTTPProvider(self.rpc_url, request_kwargs={"timeout": 60}))

    def __enter__(self) -> AnvilNode:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


def _rpc(w3: Web3, method: str, params: list[Any]) -> Any:
    response = w3.provider.make_request(method, params)  # type: ignore[arg-type]
    if "error" in response:
        raise NodeError(f"{method} failed: {response['error']}")
    return response["result"]


def snapshot(w3: Web3) -> str:
    """Take an ``evm_snapshot`` of a dev node; pass the id to :func:`revert`."""
    return str(_rpc(w3, "evm_snapshot", []))


def revert(w3: Web3, snapshot_id: str) -> None:
    """Roll a dev node back to ``snapshot_id`` (the snapshot is consumed)."""
    if not _rpc(w3, "evm_revert", [snapshot_id]):
        raise NodeError(f"evm_revert to {snapshot_id} failed")


def mine(w3: Web3, blocks: int = 1) -> None:
    """Mine ``blocks`` empty blocks on a dev node, in requests of at most 500 blocks (thousands
    at once can outlast the HTTP timeout on a loaded machine)."""
    while blocks > 0:
        step = min(blocks, 500)
        _rpc(w3, "anvil_mine", [hex(step)])
        blocks -= step


def increase_time(w3: Web3, seconds: int) -> None:
    """Move a dev node's clock forward by ``seconds`` and mine one block."""
    _rpc(w3, "evm_increaseTime", [int(seconds)])
    mine(w3, 1)
