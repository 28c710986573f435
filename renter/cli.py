"""``latent renter ...``: manage PaymentEscrow channels (mounted by the lead as ``latent renter``).

Amounts are given in whole tokens (decimals allowed, e.g. ``--amount 2.5``) and converted
with the token's ``decimals()``. The escrow and token addresses default to the network's
deployment manifest (``deploy/deployments/<network>.json``); flags override them.
"""

from __future__ import annotations

import json
import secrets
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated

import typer
from eth_account.signers.local import LocalAccount
from web3 import Web3

from chain.cli_options import DevOpt, JsonOpt, KeystoreOpt, NetworkOpt, RpcOpt, WalletOpt
from chain.errors import ConfigError, LatentError
from chain.escrow import Channel, EscrowClient
from chain.target import ChainTarget, open_target
from chain.token import format_token_amount, format_tokens, parse_token_amount
from renter.proxy_cli import (
    DEFAULT_STATE_DIR,
    StateDirOpt,
    ask_command,
    close_proxy_channels,
    print_proxy_status,
    proxy_command,
)

app = typer.Typer(help="Pay miners through escrow channels.", no_args_is_help=True)
app.command("proxy")(proxy_command)
app.command("ask")(ask_command)

EscrowOpt = Annotated[
    str | None, typer.Option("--escrow", help="PaymentEscrow address (default: manifest).")
]
ChannelArg = Annotated[str, typer.Argument(help="Channel id (0x + 64 hex).")]
OptionalChannelArg = Annotated[
    str | None, typer.Argument(help="Channel id (0x + 64 hex); none: the proxy's channels.")
]


@dataclass(frozen=True)
class _Ctx:
    chain: ChainTarget
    escrow: EscrowClient
    manifest_token: str | None

    @property
    def w3(self) -> Web3:
        return self.chain.w3

    @property
    def network(self) -> str:
        return self.chain.network.name

    @property
    def chain_id(self) -> int:
        return self.chain.network.chain_id


def _context(network: str, rpc_url: str | None, escrow: str | None) -> _Ctx:
    chain = open_target(network, rpc_url)
    # The manifest's token is only a default when the escrow also comes from the manifest.
    token = None
    if escrow is None:
        token = chain.optional_address("SubnetToken") or None
    address = chain.address("PaymentEscrow", escrow, flag="escrow")
    return _Ctx(chain, EscrowClient(chain.w3, address), token)


def _account(ctx: _Ctx, keystore: Path | None, wallet: str | None, dev: int | None) -> LocalAccount:
    return ctx.chain.account(keystore=keystore, wallet=wallet, dev_account=dev)


def parse_channel_id(value: str) -> bytes:
    """``0x`` + 64 hex -> 32 bytes; a :class:`ConfigError` otherwise."""
    text = value[2:] if value.lower().startswith("0x") else value
    try:
        raw = bytes.fromhex(text)
    except ValueError:
        raw = b""
    if len(raw) != 32:
        raise ConfigError(f"channel id {value!r} must be 0x followed by 64 hex digits")
    return raw


def _token_client(ctx: _Ctx, token: str):  # type: ignore[no-untyped-def]
    from chain.token import SubnetTokenClient

    return SubnetTokenClient(ctx.w3, token)  # any ERC-20 (+ permit) works through this ABI


def _print_channel(ch: Channel, decimals: int, json_out: bool) -> None:
    if json_out:
        print(json.dumps(ch.to_json(), indent=2))
        return

    def fmt(x: int) -> str:
        return format_tokens(x, decimals)

    print(f"channel   0x{ch.channel_id.hex()}  ({ch.status})")
    print(f"renter    {ch.renter}\nminer     {ch.miner}\ntoken     {ch.token}")
    print(
        f"deposit   {fmt(ch.deposit)}\nsettled   {fmt(ch.settled)}\nremaining {fmt(ch.remaining)}"
    )
    print(f"fee       {ch.fee_bps / 100:.2f}%\nsession   {ch.session_key or '-'}")
    if ch.closing:
        print(f"closes at {ch.closes_at} (unix){'  - withdrawn' if ch.refunded else ''}")


@app.command("open")
def open_cmd(
    miner: Annotated[str, typer.Option("--miner", help="Miner address (payee).")],
    amount: Annotated[str, typer.Option("--amount", help="Deposit in whole tokens.")],
    token: Annotated[
        str | None, typer.Option("--token", help="Token (default: SubnetToken).")
    ] = None,
    salt: Annotated[
        str | None, typer.Option("--salt", help="32-byte hex salt (default: random).")
    ] = None,
    session_key: Annotated[
        str | None, typer.Option("--session-key", help="Address allowed to sign vouchers too.")
    ] = None,
    permit: Annotated[
        bool, typer.Option("--permit/--approve", help="ERC-2612 permit or approve.")
    ] = True,
    network: NetworkOpt = "localnet",
    rpc_url: RpcOpt = None,
    escrow: EscrowOpt = None,
    keystore: KeystoreOpt = None,
    wallet: WalletOpt = None,
    dev_account: DevOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """Open a channel to MINER with a deposit; prints the channel id."""
    ctx = _context(network, rpc_url, escrow)
    token = token or ctx.manifest_token
    if token is None or not Web3.is_address(token):
        raise ConfigError("pass --token ADDRESS (no SubnetToken in the network's manifest)")
    if not Web3.is_address(miner):
        raise ConfigError(f"--miner {miner!r} is not an address")
    renter = _account(ctx, keystore, wallet, dev_account)
    erc20 = _token_client(ctx, token)
    base = parse_token_amount(amount, int(erc20.call("decimals")))
    raw_salt = parse_channel_id(salt) if salt else secrets.token_bytes(32)
    if erc20.balance_of(renter.address) < base:
        raise LatentError(f"{renter.address} holds less than {amount} of token {token}")
    if permit:
        signed = erc20.sign_permit(renter, ctx.escrow.address, base, 2**48)
        cid, _ = ctx.escrow.open_with_permit(miner, token, raw_salt, signed, sender=renter)
    else:
        if erc20.allowance(renter.address, ctx.escrow.address) < base:
            erc20.approve(ctx.escrow.address, base, sender=renter)
        cid, _ = ctx.escrow.open(miner, token, raw_salt, base, sender=renter)
    if session_key:
        ctx.escrow.set_session_key(cid, session_key, sender=renter)
    ch = ctx.escrow.channel(cid)
    if json_out:
        print(json.dumps(ch.to_json(), indent=2))
    else:
        print(f"opened channel 0x{cid.hex()}")
        _print_channel(ch, int(erc20.call("decimals")), json_out=False)


@app.command("topup")
def topup_cmd(
    channel: ChannelArg,
    amount: Annotated[str, typer.Option("--amount", help="Tokens to add (whole tokens).")],
    network: NetworkOpt = "localnet",
    rpc_url: RpcOpt = None,
    escrow: EscrowOpt = None,
    keystore: KeystoreOpt = None,
    wallet: WalletOpt = None,
    dev_account: DevOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """Add tokens to an open channel."""
    ctx = _context(network, rpc_url, escrow)
    cid = parse_channel_id(channel)
    ch = ctx.escrow.channel(cid)
    renter = _account(ctx, keystore, wallet, dev_account)
    erc20 = _token_client(ctx, ch.token)
    decimals = int(erc20.call("decimals"))
    base = parse_token_amount(amount, decimals)
    if erc20.allowance(renter.address, ctx.escrow.address) < base:
        erc20.approve(ctx.escrow.address, base, sender=renter)
    ctx.escrow.top_up(cid, base, sender=renter)
    _print_channel(ctx.escrow.channel(cid), decimals, json_out=json_out)


@app.command("status")
def status_cmd(
    channel: OptionalChannelArg = None,
    network: NetworkOpt = "localnet",
    rpc_url: RpcOpt = None,
    escrow: EscrowOpt = None,
    json_out: JsonOpt = False,
    state_dir: StateDirOpt = DEFAULT_STATE_DIR,
) -> None:
    """Show a channel (deposit, settled, remaining, status), or without CHANNEL the proxy's
    channels: deposits, spent, refundable, cost per million tokens."""
    if channel is None:
        print_proxy_status(state_dir, json_out)
        return
    ctx = _context(network, rpc_url, escrow)
    ch = ctx.escrow.channel(parse_channel_id(channel))
    _print_channel(ch, int(_token_client(ctx, ch.token).call("decimals")), json_out)


@app.command("close")
def close_cmd(
    channel: OptionalChannelArg = None,
    network: NetworkOpt = "localnet",
    rpc_url: RpcOpt = None,
    escrow: EscrowOpt = None,
    keystore: KeystoreOpt = None,
    wallet: WalletOpt = None,
    dev_account: DevOpt = None,
    state_dir: StateDirOpt = DEFAULT_STATE_DIR,
    idle_for: Annotated[
        float, typer.Option("--idle-for", help="Proxy channels unused this many seconds.")
    ] = 300.0,
    settle: Annotated[
        bool,
        typer.Option("--settle/--no-settle", help="Settle the receipts' sum before closing."),
    ] = True,
    json_out: JsonOpt = False,
) -> None:
    """Request close: the miner keeps the grace period to settle, then `withdraw`. Without
    CHANNEL: the proxy's idle channels (settling what their receipts prove first), and
    withdraw those whose grace period is over; run it again after the grace period."""
    if channel is None:
        close_proxy_channels(
            state_dir=state_dir,
            idle_for=idle_for,
            settle=settle,
            network=network,
            rpc_url=rpc_url,
            escrow=escrow,
            keystore=keystore,
            wallet=wallet,
            dev_account=dev_account,
            json_out=json_out,
        )
        return
    ctx = _context(network, rpc_url, escrow)
    cid = parse_channel_id(channel)
    renter = _account(ctx, keystore, wallet, dev_account)
    receipt = ctx.escrow.request_close(cid, sender=renter)
    closes_at = ctx.escrow.events(receipt, "CloseRequested")[0]["closesAt"]
    if json_out:
        print(json.dumps({"channel": f"0x{cid.hex()}", "closes_at": int(closes_at)}))
        return
    print(f"close requested; withdraw from unix time {closes_at} (grace period for the miner)")


@app.command("withdraw")
def withdraw_cmd(
    channel: ChannelArg,
    network: NetworkOpt = "localnet",
    rpc_url: RpcOpt = None,
    escrow: EscrowOpt = None,
    keystore: KeystoreOpt = None,
    wallet: WalletOpt = None,
    dev_account: DevOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """Withdraw the unspent deposit once the grace period is over."""
    ctx = _context(network, rpc_url, escrow)
    cid = parse_channel_id(channel)
    ch = ctx.escrow.channel(cid)
    if not ch.closing:
        raise LatentError(f"close the channel first: latent renter close 0x{cid.hex()}")
    if not ch.finalised:
        raise LatentError(
            f"the miner's grace period runs until unix time {ch.closes_at} "
            f"({ch.closes_at - ch.read_at}s from now); withdraw after it"
        )
    renter = _account(ctx, keystore, wallet, dev_account)
    receipt = ctx.escrow.withdraw(cid, sender=renter)
    refund = ctx.escrow.events(receipt, "ChannelClosed")[0]["refund"]
    if json_out:
        print(
            json.dumps(
                {"channel": f"0x{cid.hex()}", "renter": ch.renter, "refund_wei": str(int(refund))}
            )
        )
        return
    print(f"withdrew {format_token_amount(refund)} to {ch.renter}")
