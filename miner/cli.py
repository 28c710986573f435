"""``latent miner ...``: run a miner (mounted by the lead as ``latent miner``).

``latent miner run`` parses flags / environment once into a :class:`MinerConfig`, loads the
hotkey (keystore, wallet hotkey, or an anvil dev account on localnet), resolves contract
addresses from ``deploy/deployments/<network>.json`` (flags override), checks registration
and publishes its endpoint, loads the engine, then serves the OpenAI-compatible API with
uvicorn and runs the settlement keeper, both in one asyncio loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from eth_account.signers.local import LocalAccount

from chain.cli_options import DevOpt, KeystoreOpt, NetworkOpt, RpcOpt, WalletOpt
from chain.errors import ConfigError
from chain.token import (
    format_price,
    format_token_amount,
    format_tokens,
    parse_price,
    parse_token_amount,
)
from miner.config import (
    AuthConfig,
    MinerConfig,
    PaymentConfig,
    PricingConfig,
    ServerConfig,
    default_voucher_book,
)

if TYPE_CHECKING:
    from chain.metagraph import MetagraphClient
    from miner.payment import PaymentGate

app = typer.Typer(help="Serve inference and get paid.", no_args_is_help=True)
log = logging.getLogger("latent.miner")


@app.callback()
def _miner() -> None:
    """Serve inference and get paid (``run``)."""


@dataclass(frozen=True)
class _Chain:
    """Addresses and clients resolved for one network (all optional offline)."""

    rpc_url: str
    chain_id: int
    escrow: str
    token: str
    metagraph: str
    dev_accounts: bool


def _resolve_chain(
    network: str,
    rpc_url: str | None,
    *,
    escrow: str | None,
    token: str | None,
    metagraph: str | None,
) -> _Chain:
    from chain.target import open_target

    chain = open_target(network, rpc_url)  # fails fast on a wrong endpoint
    net = chain.network
    return _Chain(
        rpc_url=net.rpc_url,
        chain_id=net.chain_id,
        escrow=chain.optional_address("PaymentEscrow", escrow),
        token=chain.optional_address("SubnetToken", token),
        metagraph=chain.optional_address("Metagraph", metagraph),
        dev_accounts=net.dev_accounts,
    )


def _price(text: str, base_units: bool, flag: str) -> int:
    """A ``--price-*`` value -> base units per token (LAT per 1M tokens unless --base-units)."""
    if not base_units:
        try:
            return parse_price(text)
        except ConfigError as exc:
            raise ConfigError(f"{flag}: {exc} (or pass --base-units)") from None
    if not text.isdigit():
        raise ConfigError(f"{flag} {text!r} must be a whole number of base units (--base-units)")
    return int(text)


def _base_amount(text: str, base_units: bool, flag: str) -> int:
    """A token amount flag -> base units (tokens, or base units with --base-units)."""
    if not base_units:
        try:
            return parse_token_amount(text, allow_zero=True)
        except ConfigError as exc:
            raise ConfigError(f"{flag}: {exc} (or pass --base-units)") from None
    if not text.isdigit():
        raise ConfigError(f"{flag} {text!r} must be a whole number of base units (--base-units)")
    return int(text)


@app.command("run")
def run(
    model: Annotated[
        Path, typer.Option("--model", envvar="LATENT_MINER_MODEL", help="Model directory.")
    ],
    model_id: Annotated[
        str | None, typer.Option("--model-id", help="Name served in /v1/models.")
    ] = None,
    device: Annotated[str | None, typer.Option("--device", help="cuda, cpu, ...")] = None,
    dtype: Annotated[
        str | None, typer.Option("--dtype", help="bfloat16, float16 or float32.")
    ] = None,
    max_batch_size: Annotated[int, typer.Option("--max-batch-size")] = 16,
    host: Annotated[str, typer.Option("--host", envvar="LATENT_MINER_HOST")] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port", envvar="LATENT_MINER_PORT")] = 8000,
    public_url: Annotated[
        str | None,
        typer.Option(
            "--public-url", help="Endpoint to publish on-chain (default http://HOST:PORT)."
        ),
    ] = None,
    network: NetworkOpt = "localnet",
    rpc_url: RpcOpt = None,
    escrow: Annotated[str | None, typer.Option("--escrow", help="PaymentEscrow address.")] = None,
    token: Annotated[str | None, typer.Option("--token", help="Payment token address.")] = None,
    metagraph: Annotated[str | None, typer.Option("--metagraph", help="Metagraph address.")] = None,
    offline: Annotated[
        bool, typer.Option("--offline", help="No chain at all: free access, no validator auth.")
    ] = False,
    no_payment: Annotated[
        bool, typer.Option("--no-payment", help="Serve without vouchers (development).")
    ] = False,
    keystore: KeystoreOpt = None,
    wallet: WalletOpt = None,
    hotkey: Annotated[str, typer.Option("--hotkey", help="Hotkey name in the wallet.")] = "default",
    dev_account: DevOpt = None,
    price_prompt: Annotated[
        str,
        typer.Option("--price-prompt", help="Tokens (LAT) per 1M prompt tokens (default 1)."),
    ] = format_price(PricingConfig.per_prompt_token),
    price_completion: Annotated[
        str,
        typer.Option(
            "--price-completion", help="Tokens (LAT) per 1M generated tokens (default 4)."
        ),
    ] = format_price(PricingConfig.per_completion_token),
    base_units: Annotated[
        bool,
        typer.Option(
            "--base-units",
            help="--price-* are base units per token and --min-settle base units (scripts).",
        ),
    ] = False,
    max_queue_depth: Annotated[
        int, typer.Option("--max-queue-depth")
    ] = ServerConfig.max_queue_depth,
    max_body_bytes: Annotated[int, typer.Option("--max-body-bytes")] = ServerConfig.max_body_bytes,
    body_timeout: Annotated[
        float, typer.Option("--body-timeout", help="Seconds to receive a request body.")
    ] = ServerConfig.body_read_timeout_s,
    max_tokens_limit: Annotated[
        int, typer.Option("--max-tokens-limit")
    ] = ServerConfig.max_tokens_limit,
    voucher_book: Annotated[
        Path | None,
        typer.Option("--voucher-book", help="Voucher book file (default under ~/.latent)."),
    ] = None,
    settle_interval: Annotated[
        float, typer.Option("--settle-interval")
    ] = PaymentConfig.settle_interval_s,
    min_settle: Annotated[
        str,
        typer.Option(
            "--min-settle", help="Smallest amount (tokens) worth settling an open channel."
        ),
    ] = format_tokens(PaymentConfig.min_settle_amount),
    access_log: Annotated[
        bool, typer.Option("--access-log", help="Log one line per HTTP request (off: CPU).")
    ] = False,
    cheat: Annotated[
        str,
        typer.Option(
            "--cheat",
            help="Demo/test only: misbehave like this gauntlet kind (other-weights, slow, ...).",
        ),
    ] = "",
) -> None:
    """Serve the model with paid access, validator challenges, receipts and proofs."""
    from chain.keys import resolve_account

    # Refused before the chain, the key or the model is touched (loading takes a while).
    check_bind(host, port)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    chain = (
        None
        if offline
        else _resolve_chain(network, rpc_url, escrow=escrow, token=token, metagraph=metagraph)
    )
    account = resolve_account(
        keystore=keystore,
        wallet=wallet,
        hotkey=hotkey if wallet else None,
        dev_account=dev_account,
        allow_dev=offline or (chain is not None and chain.dev_accounts),
    )
    book_path = voucher_book or default_voucher_book(account.address)
    require_payment = not (no_payment or offline)
    config = MinerConfig(
        model_path=str(model),
        device=device,
        dtype=dtype,
        max_batch_size=max_batch_size,
        cheat=cheat,
        rpc_url=chain.rpc_url if chain else "",
        metagraph_address=chain.metagraph if chain else "",
        # a wildcard bind address is no dialable endpoint: publish only what was given then
        public_url=public_url
        or (f"http://{host}:{port}" if host not in ("0.0.0.0", "::", "") else ""),
        server=ServerConfig(
            host=host,
            port=port,
            max_body_bytes=max_body_bytes,
            body_read_timeout_s=body_timeout,
            max_queue_depth=max_queue_depth,
            max_tokens_limit=max_tokens_limit,
            model_id=model_id,
            access_log=access_log,
        ),
        pricing=PricingConfig(
            per_prompt_token=_price(price_prompt, base_units, "--price-prompt"),
            per_completion_token=_price(price_completion, base_units, "--price-completion"),
        ),
        payment=PaymentConfig(
            require_payment=require_payment,
            escrow_address=chain.escrow if chain else "",
            token_address=chain.token if chain else "",
            chain_id=chain.chain_id if chain else 31337,
            voucher_book_path=str(book_path) if require_payment else "",
            settle_interval_s=settle_interval,
            min_settle_amount=_base_amount(min_settle, base_units, "--min-settle"),
        ),
        auth=AuthConfig(),
    )
    config.validate()
    from protocol.serving import run_async  # uvloop when installed, like the benchmark

    run_async(serve_miner(config, account))


def check_bind(host: str, port: int) -> None:
    """Refuse a port that is no TCP port or that something already listens on (a clear
    error now instead of uvicorn's after the model has loaded)."""
    import socket

    if not 0 <= port <= 65535:
        raise ConfigError(f"--port {port} is not a TCP port (0-65535)")
    if port == 0:
        return
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as uvicorn binds
        try:
            sock.bind((host, port))
        except OSError as exc:
            raise ConfigError(
                f"cannot listen on {host}:{port} ({exc.strerror or exc}); stop what uses it "
                "or pick --port"
            ) from None


async def serve_miner(
    config: MinerConfig,
    hotkey: LocalAccount,
    *,
    stop: asyncio.Event | None = None,
    on_ready: Callable[[str], None] | None = None,
) -> None:
    """Build every part from ``config`` and serve until interrupted (one asyncio loop).

    ``stop`` (optional) ends serving when set, like Ctrl-C; ``on_ready`` is called with the
    base URL once the server listens (``port = 0`` picks a free port).
    """
    import uvicorn

    from chain.client import connect
    from chain.escrow import EscrowClient
    from chain.vouchers import VoucherBook
    from miner.auth import ValidatorAuth
    from miner.engine import InferenceEngine
    from miner.metrics import MinerMetrics
    from miner.payment import EscrowChannelReader, PaymentGate
    from miner.server import create_app
    from miner.settlement import run_settlement_keeper
    from protocol.serving import uvicorn_config

    w3 = (
        connect(config.rpc_url, expected_chain_id=config.payment.chain_id)
        if config.rpc_url
        else None
    )
    if config.cheat:
        from miner.cheats import build_engine

        engine = await asyncio.to_thread(
            build_engine,
            config.cheat,
            config.model_path,
            device=config.device,
            max_batch_size=config.max_batch_size,
            model_id=config.server.model_id,
        )
        log.warning("this miner CHEATS (%s): validators should score it 0", config.cheat)
    else:
        engine = await asyncio.to_thread(
            InferenceEngine.load,
            config.model_path,
            device=config.device,
            dtype=config.dtype,
            max_batch_size=config.max_batch_size,
            model_id=config.server.model_id,
        )
    log.info(
        "miner %s serving %s on %s (%s, %s)",
        hotkey.address,
        engine.model_id,
        engine.device,
        engine.dtype,
        "paid" if config.payment.require_payment else "free",
    )
    metrics = MinerMetrics()
    gate = escrow_client = book = None
    if config.payment.require_payment:
        if w3 is None:
            raise ConfigError("paid access needs --rpc-url (or a network with an RPC URL)")
        escrow_client = EscrowClient(w3, config.payment.escrow_address)
        book = VoucherBook(config.payment.voucher_book_path)
        gate = PaymentGate(
            miner=hotkey.address,
            reader=EscrowChannelReader(escrow_client),
            payment=config.payment,
            pricing=config.pricing,
            store=book,
        )
    auth = None
    if w3 is not None and config.metagraph_address:
        from chain.metagraph import MetagraphClient

        graph = MetagraphClient(w3, config.metagraph_address)
        await asyncio.to_thread(_check_registration, graph, hotkey, config.public_url)
        auth = ValidatorAuth(miner=hotkey.address, permits=graph, config=config.auth)
    else:
        log.warning("no metagraph: validator challenges are refused and nothing is published")

    app = create_app(config, engine, hotkey=hotkey, gate=gate, auth=auth, metrics=metrics)
    server = uvicorn.Server(
        uvicorn_config(
            app,
            host=config.server.host,
            port=config.server.port,
            log_level="info",
            access_log=config.server.access_log,
        )
    )
    stop = stop or asyncio.Event()

    async def stop_server_on_request() -> None:
        while not server.started:
            await asyncio.sleep(0.05)
        if on_ready is not None:
            port = server.servers[0].sockets[0].getsockname()[1]
            on_ready(f"http://{config.server.host}:{port}")
        await stop.wait()
        server.should_exit = True

    async with asyncio.TaskGroup() as tasks:
        if escrow_client is not None and book is not None:
            tasks.create_task(
                run_settlement_keeper(
                    escrow_client,
                    book,
                    hotkey,
                    interval_s=config.payment.settle_interval_s,
                    min_amount=config.payment.min_settle_amount,
                    stop=stop,
                )
            )
        watcher = tasks.create_task(stop_server_on_request())
        if gate is not None:
            tasks.create_task(_log_earnings(gate, stop, interval_s=60.0))
        try:
            await server.serve()
        finally:
            stop.set()
            watcher.cancel()
            if gate is not None:
                log.info(
                    "earnings this run: %s in accepted vouchers",
                    format_token_amount(gate.earnings_total),
                )


async def _log_earnings(gate: PaymentGate, stop: asyncio.Event, *, interval_s: float) -> None:
    """Log accepted voucher earnings whenever they changed, every ``interval_s``."""
    logged = 0
    while not stop.is_set():
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), timeout=interval_s)
        if gate.earnings_total != logged:
            logged = gate.earnings_total
            log.info("earnings: %s in accepted vouchers this run", format_token_amount(logged))


def _check_registration(graph: MetagraphClient, hotkey: LocalAccount, public_url: str) -> None:
    """Warn (with the fix) when unregistered; publish ``public_url`` when it changed."""
    neuron = graph.snapshot().by_hotkey(hotkey.address)
    if neuron is None:
        log.warning(
            "hotkey %s is not registered on metagraph %s: validators will not score this miner "
            "and renters cannot find it. Register it (the coldkey pays the burn), then restart: "
            "latent register --wallet WALLET --hotkey-address %s --endpoint %s",
            hotkey.address,
            graph.address,
            hotkey.address,
            public_url or "URL",
        )
        return
    if not public_url:
        log.warning("no --public-url: the on-chain endpoint stays %r", neuron.endpoint)
    elif neuron.endpoint != public_url:
        graph.set_endpoint(hotkey, public_url)
        log.info("published endpoint %s for uid %d", public_url, neuron.uid)
    else:
        log.info("registered as uid %d, endpoint %s", neuron.uid, neuron.endpoint)
