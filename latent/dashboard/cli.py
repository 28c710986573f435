"""``latent dashboard``: serve the dashboard of a deployment until Ctrl-C."""

from __future__ import annotations

import asyncio
import signal
from typing import Annotated

import typer

from chain.cli_options import NetworkOpt, RpcOpt
from chain.cli_output import cli_console

console = cli_console()


async def _serve(
    network: str,
    rpc_url: str | None,
    host: str,
    port: int,
    validators: list[str],
    refresh_s: float,
) -> None:
    from chain.target import open_target
    from latent.dashboard.app import serve_dashboard

    target = await asyncio.to_thread(open_target, network, rpc_url)
    manifest = target.manifest
    metagraph = target.address("Metagraph", None, flag="metagraph")
    blocks = [c.block for c in manifest.contracts.values()]
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    async with serve_dashboard(
        target.w3,
        metagraph=metagraph,
        epoch=target.optional_address("YumaConsensus") or None,
        escrow=target.optional_address("PaymentEscrow") or None,
        validator_urls=validators,
        network=target.network.name,
        from_block=min(blocks) if blocks else 0,
        host=host,
        port=port,
        refresh_s=refresh_s,
    ) as url:
        console.print(f"dashboard of {target.network.name} at {url}  (Ctrl-C stops)")
        await stop.wait()


def dashboard(
    network: NetworkOpt = "localnet",
    rpc_url: RpcOpt = None,
    port: Annotated[int, typer.Option("--port", help="HTTP port of the page.")] = 8080,
    host: Annotated[str, typer.Option("--host", help="Address to bind.")] = "127.0.0.1",
    validator: Annotated[
        list[str] | None,
        typer.Option(
            "--validator",
            help="Validator base URL whose /status feeds the quality columns (repeatable).",
        ),
    ] = None,
    refresh: Annotated[float, typer.Option("--refresh", help="Seconds between refreshes.")] = 2.0,
) -> None:
    """Serve the subnet dashboard (metagraph, miner quality, epoch charts, payments)."""
    asyncio.run(_serve(network, rpc_url, host, port, list(validator or []), refresh))
