"""``latent localnet``: the whole subnet on one machine.

Today: start anvil (1 s blocks by default), deploy the contracts (localnet hyperparameters
from ``deploy/networks.toml``: tempo 20; dev accounts 1-9 get tokens to burn, stake and pay
with), print the addresses, then keep the node up until Ctrl-C, running the Yuma epoch
whenever it is due (the validators' keeper duty, until the validator exists). Later issues add the miners, validators, renter and
dashboard as tasks of the same asyncio loop.
"""

from __future__ import annotations

import signal
import threading
from dataclasses import dataclass
from pathlib import Path

from eth_account.signers.local import LocalAccount
from rich.console import Console
from rich.table import Table
from web3 import Web3

from chain.client import connect
from chain.epoch import EpochClient
from chain.errors import LatentError
from chain.keys import dev_accounts
from chain.node import AnvilNode
from deploy.deployer import deploy_plan
from deploy.manifest import manifest_path
from deploy.networks import get_network


@dataclass(frozen=True)
class LocalnetConfig:
    """Settings of a local subnet."""

    port: int = 8545
    """RPC port of the local anvil node."""
    block_time: float = 1.0
    """Seconds per block."""
    state_path: Path | None = None
    """anvil state file: loaded when present, written on exit (None: a fresh chain)."""
    once: bool = False
    """Exit after deploying (for scripts and tests) instead of serving until Ctrl-C."""


def run_due_epoch(w3: Web3, epoch: EpochClient, keeper: LocalAccount, console: Console) -> None:
    """Keeper duty until validators take it over: run the Yuma epoch once it is due."""
    try:
        if w3.eth.block_number < epoch.next_epoch_block():
            return
        receipts = epoch.run_epoch_until_done(keeper)
    except LatentError as exc:  # a failed step is retried on the next tick
        console.print(f"[yellow]epoch keeper: {exc}[/]")
        return
    gas = sum(int(r["gasUsed"]) for r in receipts)
    console.print(
        f"epoch at block {w3.eth.block_number}: {len(receipts)} tx, {gas:,} gas "
        "(`latent metagraph` shows the results)"
    )


def run_localnet(config: LocalnetConfig, console: Console | None = None) -> None:
    """Start the node, deploy, print the addresses; serve until interrupted unless ``once``."""
    console = console or Console()
    net = get_network("localnet", rpc_url=f"http://127.0.0.1:{config.port}")
    node = AnvilNode(
        chain_id=net.chain_id,
        port=config.port,
        block_time=config.block_time,
        state_path=config.state_path,
    )
    with node:
        w3 = connect(node.rpc_url, expected_chain_id=net.chain_id)
        keeper = dev_accounts(1)[0]
        manifest, steps = deploy_plan(w3, net, keeper)
        table = Table("contract", "address", "action", title=f"localnet at {node.rpc_url}")
        for step in steps:
            table.add_row(step.name, step.address, step.action)
        console.print(table)
        console.print(f"manifest: {manifest_path(net.name)}")
        if config.once:
            return
        console.print("localnet is running; press Ctrl-C to stop")
        stop = threading.Event()
        # Explicit handlers: a shell may start us with SIGINT ignored (background jobs).
        for sig in (signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, lambda *_: stop.set())
        epoch = EpochClient(w3, manifest.address("YumaConsensus"))
        while not stop.wait(0.5) and node.running:
            run_due_epoch(w3, epoch, keeper, console)
        console.print("stopping localnet")
