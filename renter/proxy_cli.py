"""``latent renter proxy``, the proxy-aware ``latent renter status`` / ``close``, and
``latent market``.

Prices on the command line are tokens (LAT) per 1M tokens of text (``--max-price 5``;
``chain.token.parse_price``), whatever the miners' ``/v1/models`` ``pricing`` says per token;
caps and deposits are whole tokens.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from chain.cli_options import DevOpt, JsonOpt, KeystoreOpt, NetworkOpt, RpcOpt, WalletOpt
from chain.cli_output import address_cell, cli_console, print_table
from chain.errors import LatentError
from chain.token import (
    format_price,
    format_token_amount,
    format_tokens,
    parse_price,
    parse_token_amount,
)
from renter.config import ChannelConfig, ProxyConfig, SpendConfig
from renter.ledger import ChannelRecord, LedgerStore

log = logging.getLogger("latent.renter")

DEFAULT_STATE_DIR = Path.home() / ".latent" / "renter"

StateDirOpt = Annotated[
    Path,
    typer.Option(
        "--state-dir",
        envvar="LATENT_RENTER_STATE",
        help="Proxy state: channel ledgers, receipts.jsonl, stats.json.",
    ),
]


def proxy_config(
    *,
    state_dir: Path,
    host: str,
    port: int,
    api_keys: list[str],
    model: str | None,
    max_price: str | None,
    deposit: str,
    top_up: str,
    channels_per_miner: int,
    spend_cap_hour: str | None,
    spend_cap: str | None,
    recheck_rate: float,
    validators: list[str],
    max_attempts: int,
    request_timeout: float,
    permit: bool,
) -> ProxyConfig:
    """The proxy's config from CLI values (checked)."""
    config = ProxyConfig(
        state_dir=state_dir,
        host=host,
        port=port,
        api_keys=tuple(api_keys),
        model=model,
        max_price_per_token=parse_price(max_price) if max_price is not None else None,
        recheck_rate=recheck_rate,
        validators=tuple(v.rstrip("/") for v in validators),
        max_attempts=max_attempts,
        request_timeout_s=request_timeout,
        channels=ChannelConfig(
            deposit=parse_token_amount(deposit),
            top_up=parse_token_amount(top_up),
            per_miner=channels_per_miner,
            use_permit=permit,
        ),
        spend=SpendConfig(
            per_hour=parse_token_amount(spend_cap_hour) if spend_cap_hour else 0,
            total=parse_token_amount(spend_cap) if spend_cap else 0,
        ),
    )
    config.validate()
    return config


def proxy_command(
    host: Annotated[str, typer.Option("--host", help="Interface to bind.")] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port", help="Port to bind.")] = 8080,
    api_key: Annotated[
        list[str] | None,
        typer.Option("--api-key", help="Accepted client key (repeatable; off by default)."),
    ] = None,
    model: Annotated[
        str | None, typer.Option("--model", help="Only use miners serving this model.")
    ] = None,
    max_price: Annotated[
        str | None,
        typer.Option(
            "--max-price", help="Highest price, LAT per 1M tokens (prompt and completion)."
        ),
    ] = None,
    deposit: Annotated[
        str, typer.Option("--deposit", help="Deposit of each new channel (whole tokens).")
    ] = "1",
    top_up: Annotated[str, typer.Option("--top-up", help="Top-up amount (whole tokens).")] = "1",
    channels_per_miner: Annotated[
        int, typer.Option("--channels-per-miner", help="Concurrent requests per miner.")
    ] = 4,
    spend_cap_hour: Annotated[
        str | None, typer.Option("--spend-cap-hour", help="Most spent per rolling hour.")
    ] = None,
    spend_cap: Annotated[
        str | None, typer.Option("--spend-cap", help="Most spent in total (state dir).")
    ] = None,
    recheck_rate: Annotated[
        float, typer.Option("--recheck-rate", help="Share of answers sent to validators.")
    ] = 0.05,
    validator: Annotated[
        list[str] | None,
        typer.Option("--validator", help="Validator URL for re-checks (repeatable)."),
    ] = None,
    max_attempts: Annotated[int, typer.Option("--max-attempts", help="Miners per request.")] = 3,
    request_timeout: Annotated[
        float, typer.Option("--request-timeout", help="Seconds per answer / between chunks.")
    ] = 60.0,
    permit: Annotated[
        bool, typer.Option("--permit/--approve", help="Open channels with ERC-2612 permits.")
    ] = True,
    access_log: Annotated[
        bool, typer.Option("--access-log", help="Log one line per HTTP request (off: CPU).")
    ] = False,
    state_dir: StateDirOpt = DEFAULT_STATE_DIR,
    network: NetworkOpt = "localnet",
    rpc_url: RpcOpt = None,
    escrow: Annotated[str | None, typer.Option("--escrow", help="PaymentEscrow address.")] = None,
    token: Annotated[str | None, typer.Option("--token", help="Payment token address.")] = None,
    metagraph: Annotated[str | None, typer.Option("--metagraph", help="Metagraph address.")] = None,
    keystore: KeystoreOpt = None,
    wallet: WalletOpt = None,
    dev_account: DevOpt = None,
) -> None:
    """Serve an OpenAI-compatible endpoint that pays miners per token (Ctrl-C stops)."""
    from chain.target import open_target

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    logging.getLogger("httpx").setLevel(logging.WARNING)  # one line per miner call is noise
    config = proxy_config(
        state_dir=state_dir,
        host=host,
        port=port,
        api_keys=api_key or [],
        model=model,
        max_price=max_price,
        deposit=deposit,
        top_up=top_up,
        channels_per_miner=channels_per_miner,
        spend_cap_hour=spend_cap_hour,
        spend_cap=spend_cap,
        recheck_rate=recheck_rate,
        validators=validator or [],
        max_attempts=max_attempts,
        request_timeout=request_timeout,
        permit=permit,
    )
    chain = open_target(network, rpc_url)
    escrow_address = chain.address("PaymentEscrow", escrow, flag="escrow")
    token_address = chain.address("SubnetToken", token, flag="token")
    graph_address = chain.address("Metagraph", metagraph, flag="metagraph")
    renter = chain.account(keystore=keystore, wallet=wallet, dev_account=dev_account)
    from protocol.serving import run_async  # uvloop when installed, as for the miner

    run_async(
        serve_proxy_forever(
            config,
            w3=chain.w3,
            escrow=escrow_address,
            token=token_address,
            metagraph=graph_address,
            renter=renter,
            access_log=access_log,
        )
    )


async def serve_proxy_forever(
    config: ProxyConfig,
    *,
    w3: Any,
    escrow: str,
    token: str,
    metagraph: str,
    renter: Any,
    access_log: bool = False,
) -> None:
    """Build the proxy from its parts and serve it with uvicorn in this loop (the app's
    lifespan starts and stops the proxy)."""
    import uvicorn

    from protocol.serving import uvicorn_config
    from renter.app import create_proxy_app

    async with _chain_proxy(
        config, w3=w3, escrow=escrow, token=token, metagraph=metagraph, renter=renter
    ) as proxy:
        app = create_proxy_app(proxy)
        log.info(
            "renter %s: OpenAI base URL http://%s:%d/v1 (state in %s)",
            renter.address,
            config.host,
            config.port,
            config.state_dir,
        )
        server = uvicorn.Server(
            uvicorn_config(
                app, host=config.host, port=config.port, log_level="info", access_log=access_log
            )
        )
        await server.serve()


@contextlib.asynccontextmanager
async def _chain_proxy(
    config: ProxyConfig, *, w3: Any, escrow: str, token: str, metagraph: str, renter: Any
) -> AsyncIterator[Any]:
    """A :class:`RenterProxy` (not started) over the deployed contracts, paying from
    ``renter``, with the HTTP client its market probes and re-checks use; it holds the
    books' lock meanwhile."""
    import httpx

    from chain.escrow import EscrowClient
    from chain.funding import EscrowFunder
    from chain.metagraph import MetagraphReader
    from chain.token import SubnetTokenClient
    from renter.market import MetagraphMinerSource
    from renter.proxy import RenterProxy

    store = LedgerStore(config.state_dir)
    with store.lock():
        funder = await asyncio.to_thread(
            EscrowFunder,
            EscrowClient(w3, escrow),
            SubnetTokenClient(w3, token),
            renter,
            use_permit=config.channels.use_permit,
        )
        limits = httpx.Limits(max_connections=256, max_keepalive_connections=64)
        async with httpx.AsyncClient(limits=limits) as http:
            yield RenterProxy(
                config,
                source=MetagraphMinerSource(MetagraphReader(w3, metagraph), http),
                funder=funder,
                http=http,
                store=store,
            )


# ---------------------------------------------------------------------- ask


def ask_command(
    prompt: Annotated[str, typer.Argument(help="What to ask (one user message).")],
    model: Annotated[
        str | None, typer.Option("--model", help="Model to ask (default: any miner's).")
    ] = None,
    max_tokens: Annotated[
        int, typer.Option("--max-tokens", min=1, help="Most tokens to generate.")
    ] = 32,
    max_price: Annotated[
        str | None,
        typer.Option("--max-price", help="Highest price, LAT per 1M tokens (e.g. 10)."),
    ] = None,
    deposit: Annotated[
        str, typer.Option("--deposit", help="Deposit of a new channel (whole tokens).")
    ] = "1",
    state_dir: StateDirOpt = DEFAULT_STATE_DIR,
    network: NetworkOpt = "localnet",
    rpc_url: RpcOpt = None,
    keystore: KeystoreOpt = None,
    wallet: WalletOpt = None,
    dev_account: DevOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """Send one paid chat request the way `latent renter proxy` does (best miner, a channel
    from the same books, a signed voucher, a verified receipt) and print the answer."""
    from chain.target import open_target
    from renter.proxy import Relay

    config = proxy_config(
        state_dir=state_dir,
        host="127.0.0.1",
        port=0,
        api_keys=[],
        model=model,
        max_price=max_price,
        deposit=deposit,
        top_up=deposit,
        channels_per_miner=1,
        spend_cap_hour=None,
        spend_cap=None,
        recheck_rate=0.0,
        validators=[],
        max_attempts=3,
        request_timeout=60.0,
        permit=True,
    )
    chain = open_target(network, rpc_url)
    renter = chain.account(keystore=keystore, wallet=wallet, dev_account=dev_account)
    body: dict[str, Any] = {
        "model": model or "",
        "messages": [{"role": "user", "content": prompt}],
        "max_tokens": max_tokens,
        "temperature": 0,
    }

    async def send() -> Relay:
        async with _one_shot_proxy(
            config,
            w3=chain.w3,
            escrow=chain.address("PaymentEscrow", None, flag="escrow"),
            token=chain.address("SubnetToken", None, flag="token"),
            metagraph=chain.address("Metagraph", None, flag="metagraph"),
            renter=renter,
        ) as proxy:
            if not body["model"]:
                if not proxy.offers:
                    raise LatentError("no miner serves a model on this subnet (latent market)")
                body["model"] = proxy.offers[0].model
            result = await proxy.handle("chat", json.dumps(body).encode())
            if not isinstance(result, Relay):  # not asked for a stream
                raise LatentError("the proxy streamed an answer to a non-streaming request")
            return result

    relay = asyncio.run(send())
    try:
        answer = json.loads(relay.body)
    except ValueError:
        answer = {}
    if relay.status != 200:
        error = answer.get("error", {}) if isinstance(answer, dict) else {}
        raise LatentError(
            f"the request failed ({relay.status}): {error.get('message') or relay.body[:200]!r}"
        )
    if json_out:
        print(json.dumps(answer))
        return
    receipt = answer.get("latent", {}).get("receipt", {})
    print(answer["choices"][0]["message"]["content"])
    print(
        f"paid {format_tokens(int(receipt.get('price', 0)))} tokens to "
        f"{receipt.get('miner', '?')} (receipt verified, books in {state_dir})",
        file=sys.stderr,
    )


@contextlib.asynccontextmanager
async def _one_shot_proxy(
    config: ProxyConfig, *, w3: Any, escrow: str, token: str, metagraph: str, renter: Any
) -> AsyncIterator[Any]:
    """A started :class:`RenterProxy` over the books in ``config.state_dir``, stopped (books
    written) on exit."""
    async with _chain_proxy(
        config, w3=w3, escrow=escrow, token=token, metagraph=metagraph, renter=renter
    ) as proxy:
        await proxy.start()
        try:
            yield proxy
        finally:
            await proxy.stop()


# ---------------------------------------------------------------------- status


def summarise(records: list[ChannelRecord], receipts: list[dict[str, Any]]) -> dict[str, Any]:
    """Totals over the proxy's books (amounts in base units)."""
    spent = sum(r.owed for r in records)
    tokens = sum(r.prompt_tokens + r.completion_tokens for r in records)
    live = [r for r in records if r.status != "closed"]
    hour_ago = time.time() - 3600
    return {
        "channels": len(records),
        "open": sum(1 for r in records if r.status == "open"),
        "deposits": sum(r.deposit for r in live),
        "spent": spent,
        "spent_last_hour": sum(
            int(e.get("price", 0)) for e in receipts if float(e.get("time", 0)) >= hour_ago
        ),
        "refundable": sum(r.available for r in live),
        "requests": sum(r.requests for r in records),
        "tokens": tokens,
        "cost_per_million_tokens": (spent * 10**6 // tokens) if tokens else None,
    }


#: Totals that are token amounts: base units, so ``--json`` names them ``*_wei``.
_AMOUNT_TOTALS = ("deposits", "spent", "spent_last_hour", "refundable", "cost_per_million_tokens")


def _channel_json(record: ChannelRecord) -> dict[str, Any]:
    """A ledger record for ``--json``: its amounts as ``*_wei`` decimal strings."""
    data = record.to_json()
    data.pop("deposit")
    data.pop("owed")
    refundable = record.available if record.status != "closed" else 0
    return {
        **data,
        "deposit_wei": str(record.deposit),
        "owed_wei": str(record.owed),
        "refundable_wei": str(refundable),
    }


def print_proxy_status(state_dir: Path, json_out: bool) -> None:
    """``latent renter status`` without a channel: the proxy's channels and spending."""
    store = LedgerStore(state_dir)
    receipts = store.read_receipts()
    records = store.load_channels(receipts)
    totals = summarise(records, receipts)
    if json_out:
        payload = {
            "state_dir": str(state_dir),
            "channels": [_channel_json(r) for r in records],
            "totals": {
                (f"{k}_wei" if k in _AMOUNT_TOTALS else k): (str(v) if isinstance(v, int) else v)
                for k, v in totals.items()
            },
        }
        print(json.dumps(payload, indent=2))
        return
    console = cli_console()
    if not records:
        console.print(f"no channels in {state_dir} (start `latent renter proxy`)")
        return
    table = Table(
        "channel", "miner", "status", "deposit LAT", "spent LAT", "refundable LAT", "requests",
        "tokens",
    )  # fmt: skip
    for r in records:
        table.add_row(
            f"0x{r.channel_id.hex()[:12]}…",
            f"{r.miner[:10]}…",
            r.status + (f" ({r.note})" if r.note else ""),
            format_tokens(r.deposit, places=6),
            format_tokens(r.owed, places=6),
            format_tokens(r.available if r.status != "closed" else 0, places=6),
            str(r.requests),
            str(r.prompt_tokens + r.completion_tokens),
        )
    print_table(table, console)
    per_m = totals["cost_per_million_tokens"]
    console.print(
        f"spent {format_tokens(totals['spent'], places=6)} LAT "
        f"(last hour {format_tokens(totals['spent_last_hour'], places=6)} LAT), "
        f"refundable {format_tokens(totals['refundable'], places=6)} LAT, "
        f"{totals['tokens']} tokens in {totals['requests']} requests, "
        + (f"{format_tokens(per_m, places=6)} LAT per million tokens" if per_m is not None else "")
    )


# ---------------------------------------------------------------------- close


def close_proxy_channels(
    *,
    state_dir: Path,
    idle_for: float,
    settle: bool,
    network: str,
    rpc_url: str | None,
    escrow: str | None,
    keystore: Path | None,
    wallet: str | None,
    dev_account: int | None,
    json_out: bool = False,
) -> None:
    """``latent renter close`` without a channel (see ``renter.closing``); ``json_out``:
    one JSON object ``{"channels": [{"channel", "action", "amount_wei", "detail"}]}``."""
    from chain.escrow import EscrowClient
    from chain.funding import EscrowFunder
    from chain.target import open_target
    from chain.token import SubnetTokenClient
    from renter.closing import close_channels

    store = LedgerStore(state_dir)
    with store.lock():  # not while a proxy spends from these books
        records = store.load_channels()
        if not records:
            print(json.dumps({"channels": []}) if json_out else f"no channels in {state_dir}")
            return
        chain = open_target(network, rpc_url)
        escrow_address = chain.address("PaymentEscrow", escrow or records[0].escrow, flag="escrow")
        renter = chain.account(keystore=keystore, wallet=wallet, dev_account=dev_account)
        funder = EscrowFunder(
            EscrowClient(chain.w3, escrow_address),
            SubnetTokenClient(chain.w3, records[0].token),
            renter,
        )
        actions = close_channels(store, funder, idle_s=idle_for, settle=settle)
        if json_out:
            rows = [
                {
                    "channel": f"0x{a.channel_id.hex()}",
                    "action": a.action,
                    "amount_wei": str(a.amount),
                    "detail": a.detail,
                }
                for a in actions
            ]
            print(json.dumps({"channels": rows}))
            return
        for action in actions:
            amount = f" {format_token_amount(action.amount)}" if action.amount else ""
            detail = f" ({action.detail})" if action.detail else ""
            print(f"0x{action.channel_id.hex()}: {action.action}{amount}{detail}")


# ---------------------------------------------------------------------- market


def market_rows(offers: list[Any], stats: dict[str, Any]) -> list[dict[str, Any]]:
    """One JSON row per offer, with the proxy's observed figures for its miner."""
    rows = []
    for offer in sorted(offers, key=lambda o: (o.model, o.price_completion, o.price_prompt)):
        seen = stats.get(offer.hotkey, {})
        rows.append(
            {
                "uid": offer.uid,
                "hotkey": offer.hotkey,
                "endpoint": offer.endpoint,
                "model": offer.model,
                "context_length": offer.context_length,
                "pricing": {
                    "prompt": format_tokens(offer.price_prompt),
                    "completion": format_tokens(offer.price_completion),
                },
                "price_prompt_wei": str(offer.price_prompt),
                "price_completion_wei": str(offer.price_completion),
                "incentive": offer.incentive / 65535,
                "tokens_per_s": seen.get("tokens_per_s"),
                "ttft_s": seen.get("ttft_s"),
                "latency_s": seen.get("latency_s"),
                "probe_ms": round(offer.probe_s * 1000, 2),
                "dropped": seen.get("dropped", False),
            }
        )
    return rows


def market_command(
    json_out: JsonOpt = False,
    state_dir: StateDirOpt = DEFAULT_STATE_DIR,
    network: NetworkOpt = "localnet",
    rpc_url: RpcOpt = None,
    metagraph: Annotated[str | None, typer.Option("--metagraph", help="Metagraph address.")] = None,
) -> None:
    """Serving miners: model, price (LAT per 1M tokens), context, incentive, measured speed."""
    import httpx

    from chain.metagraph import MetagraphReader
    from chain.target import open_target
    from renter.market import MetagraphMinerSource

    chain = open_target(network, rpc_url)
    reader = MetagraphReader(chain.w3, chain.address("Metagraph", metagraph, flag="metagraph"))

    async def read() -> list[Any]:
        async with httpx.AsyncClient() as http:
            return await MetagraphMinerSource(reader, http).offers()

    rows = market_rows(asyncio.run(read()), LedgerStore(state_dir).load_stats())
    if json_out:
        print(json.dumps({"miners": rows}, indent=2))
        return
    console = cli_console()
    table = Table(
        "uid", "hotkey", "model", "prompt LAT/1M", "completion LAT/1M", "context", "incentive",
        "tok/s", "TTFT ms", "probe ms",
    )  # fmt: skip
    for row in rows:
        tps, ttft = row["tokens_per_s"], row["ttft_s"]
        table.add_row(
            str(row["uid"]),
            address_cell(row["hotkey"], console),
            row["model"],
            format_price(int(row["price_prompt_wei"])),
            format_price(int(row["price_completion_wei"])),
            str(row["context_length"]),
            f"{row['incentive']:.4f}",
            f"{tps:.1f}" if tps else "-",
            f"{ttft * 1000:.1f}" if ttft else "-",
            f"{row['probe_ms']:.1f}",
        )
    print_table(table, console)
    if not rows:
        console.print("no miner publishes an endpoint that answers /v1/models")


__all__ = [
    "ask_command",
    "close_proxy_channels",
    "market_command",
    "market_rows",
    "parse_price",
    "print_proxy_status",
    "proxy_command",
    "proxy_config",
    "summarise",
]
