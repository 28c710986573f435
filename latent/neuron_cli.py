"""Neuron commands: ``latent register``, ``latent stake add|remove|claim``, ``latent metagraph``,
``latent weights show``.

Mount with :func:`mount` (adds the four top-level entries to the main app). Every command takes
``--network`` (deploy/networks.toml), ``--rpc-url`` and ``--metagraph ADDRESS`` (defaults to
``contracts.Metagraph.address`` in ``deploy/deployments/<network>.json``). Amounts are given in
tokens (decimals allowed) and shown in tokens.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated

import typer
from eth_account.signers.local import LocalAccount
from eth_utils import is_address, to_checksum_address
from rich.console import Console
from rich.table import Table

from chain.errors import ConfigError, KeystoreError
from chain.metagraph import MetagraphClient
from chain.token import format_tokens, parse_token_amount
from deploy.target import ChainTarget, open_target

app = typer.Typer(help="Neurons: registration, stake, metagraph, weights.", no_args_is_help=True)
stake_app = typer.Typer(help="Bond tokens to a hotkey, unbond, claim.", no_args_is_help=True)
weights_app = typer.Typer(help="Validator weights as stored on chain.", no_args_is_help=True)
console = Console()

NetworkOpt = Annotated[
    str, typer.Option("--network", "-n", help="Network from deploy/networks.toml.")
]
RpcOpt = Annotated[str | None, typer.Option("--rpc-url", help="Override the network's RPC URL.")]
MetagraphOpt = Annotated[
    str | None,
    typer.Option("--metagraph", help="Metagraph address (default: the deployment manifest)."),
]
WalletOpt = Annotated[str | None, typer.Option("--wallet", help="Wallet name (its coldkey signs).")]
KeystoreOpt = Annotated[
    Path | None, typer.Option("--keystore", help="Keystore file of the signer.")
]
DevOpt = Annotated[
    int | None, typer.Option("--dev-account", help="anvil dev account (localnet only).")
]
HotkeyOpt = Annotated[str | None, typer.Option("--hotkey", help="Hotkey name in the wallet.")]
HotkeyAddrOpt = Annotated[
    str | None, typer.Option("--hotkey-address", help="Hotkey address (0x...).")
]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")]


@dataclass(frozen=True)
class _Target:
    client: MetagraphClient
    chain: ChainTarget


def _target(network: str, rpc_url: str | None, metagraph: str | None) -> _Target:
    chain = open_target(network, rpc_url)
    address = chain.address("Metagraph", metagraph, flag="metagraph")
    return _Target(MetagraphClient(chain.w3, address), chain)


def _signer(
    target: _Target, keystore: Path | None, wallet: str | None, dev: int | None
) -> LocalAccount:
    return target.chain.account(keystore=keystore, wallet=wallet, dev_account=dev)


def _hotkey_address(wallet: str | None, hotkey: str | None, address: str | None) -> str:
    from chain.keys import default_wallet_dir, key_path, read_address

    if address is not None:
        if not is_address(address):
            raise ConfigError(f"--hotkey-address {address!r} is not an address")
        return to_checksum_address(address)
    if wallet is not None and hotkey is not None:
        return to_checksum_address(
            read_address(key_path(default_wallet_dir(), wallet, "hotkey", hotkey))
        )
    raise KeystoreError("name the hotkey: --wallet W --hotkey H, or --hotkey-address 0x...")


def _amount(text: str) -> int:
    return parse_token_amount(text)


def _tokens(amount: int) -> str:
    return format_tokens(amount, places=4)


@app.command("register")
def register_cmd(
    network: NetworkOpt = "localnet",
    rpc_url: RpcOpt = None,
    metagraph: MetagraphOpt = None,
    wallet: WalletOpt = None,
    keystore: KeystoreOpt = None,
    dev_account: DevOpt = None,
    hotkey: HotkeyOpt = None,
    hotkey_address: HotkeyAddrOpt = None,
    endpoint: Annotated[str, typer.Option("--endpoint", help="URL the neuron serves on.")] = "",
    max_price: Annotated[
        str | None,
        typer.Option("--max-price", help="Most tokens to burn (default: current price)."),
    ] = None,
) -> None:
    """Register a hotkey by burning the current registration price from the coldkey."""
    target = _target(network, rpc_url, metagraph)
    hk = _hotkey_address(wallet, hotkey, hotkey_address)
    coldkey = _signer(target, keystore, wallet, dev_account)
    limit = None if max_price is None else _amount(max_price)
    uid, burned, _ = target.client.register(coldkey, hk, endpoint, max_price=limit)
    console.print(f"registered {hk} as uid {uid}, burned {_tokens(burned)} tokens")


@stake_app.command("add")
def stake_add(
    amount: Annotated[str, typer.Argument(help="Tokens to bond.")],
    network: NetworkOpt = "localnet",
    rpc_url: RpcOpt = None,
    metagraph: MetagraphOpt = None,
    wallet: WalletOpt = None,
    keystore: KeystoreOpt = None,
    dev_account: DevOpt = None,
    hotkey: HotkeyOpt = None,
    hotkey_address: HotkeyAddrOpt = None,
) -> None:
    """Bond tokens from the coldkey to a registered hotkey (yours or anyone's: delegation)."""
    target = _target(network, rpc_url, metagraph)
    hk = _hotkey_address(wallet, hotkey, hotkey_address)
    coldkey = _signer(target, keystore, wallet, dev_account)
    target.client.add_stake(coldkey, hk, _amount(amount))
    console.print(f"staked; {hk} now has {_tokens(target.client.hotkey_stake(hk))} tokens")


@stake_app.command("remove")
def stake_remove(
    amount: Annotated[str, typer.Argument(help="Tokens to unbond.")],
    network: NetworkOpt = "localnet",
    rpc_url: RpcOpt = None,
    metagraph: MetagraphOpt = None,
    wallet: WalletOpt = None,
    keystore: KeystoreOpt = None,
    dev_account: DevOpt = None,
    hotkey: HotkeyOpt = None,
    hotkey_address: HotkeyAddrOpt = None,
) -> None:
    """Unbond tokens; claim them with `latent stake claim` after the unbonding period."""
    target = _target(network, rpc_url, metagraph)
    hk = _hotkey_address(wallet, hotkey, hotkey_address)
    coldkey = _signer(target, keystore, wallet, dev_account)
    target.client.remove_stake(coldkey, hk, _amount(amount))
    pending, release = target.client.unbonding(coldkey.address)
    console.print(f"unbonding {_tokens(pending)} tokens, claimable from block {release}")


@stake_app.command("claim")
def stake_claim(
    network: NetworkOpt = "localnet",
    rpc_url: RpcOpt = None,
    metagraph: MetagraphOpt = None,
    wallet: WalletOpt = None,
    keystore: KeystoreOpt = None,
    dev_account: DevOpt = None,
) -> None:
    """Withdraw unbonded tokens once the unbonding period has passed."""
    target = _target(network, rpc_url, metagraph)
    coldkey = _signer(target, keystore, wallet, dev_account)
    receipt = target.client.claim_unbonded(coldkey)
    (event,) = target.client.contract.events(receipt, "UnbondedClaimed")
    console.print(f"claimed {_tokens(int(event['amount']))} tokens")


@app.command("metagraph")
def metagraph_cmd(
    network: NetworkOpt = "localnet",
    rpc_url: RpcOpt = None,
    metagraph: MetagraphOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """Show every registered uid (one batched read)."""
    snap = _target(network, rpc_url, metagraph).client.snapshot()
    if json_out:
        print(json.dumps(snap.to_json(), indent=2))
        return
    table = Table(
        "uid", "hotkey", "coldkey", "stake", "permit", "emission", "incentive", "dividends",
        "vtrust", "registered", "updated", "endpoint",
        title=f"metagraph {snap.address} at block {snap.block} "
        f"(n={snap.n}, price {_tokens(snap.registration_price)})",
    )  # fmt: skip
    for info in snap.neurons():
        table.add_row(
            str(info.uid),
            info.hotkey[:10] + "…",
            info.coldkey[:10] + "…",
            _tokens(info.stake),
            "yes" if info.validator_permit else "",
            _tokens(info.emission),
            f"{info.incentive / 65535:.4f}",
            f"{info.dividends / 65535:.4f}",
            f"{info.validator_trust / 65535:.4f}",
            str(info.registered_at),
            str(info.last_update),
            info.endpoint,
        )
    console.print(table)


@weights_app.command("show")
def weights_show(
    network: NetworkOpt = "localnet",
    rpc_url: RpcOpt = None,
    metagraph: MetagraphOpt = None,
    uid: Annotated[
        int | None, typer.Option("--uid", help="One validator uid (default: all with a permit).")
    ] = None,
    json_out: JsonOpt = False,
) -> None:
    """Stored weight rows (u16, max-upscaled) of validators."""
    client = _target(network, rpc_url, metagraph).client
    snap = client.snapshot()
    uids = [uid] if uid is not None else [u for u in range(snap.n) if snap.validator_permit[u]]
    rows = {u: {t: w for t, w in enumerate(client.weights(u)[: snap.n]) if w} for u in uids}
    if json_out:
        print(
            json.dumps(
                {str(u): {str(t): w for t, w in row.items()} for u, row in rows.items()}, indent=2
            )
        )
        return
    table = Table("validator uid", "last update", "weights (uid: u16)", title="stored weights")
    for u, row in rows.items():
        shown = ", ".join(f"{t}: {w}" for t, w in row.items()) or "(none)"
        table.add_row(str(u), str(snap.last_update[u]) if u < snap.n else "-", shown)
    console.print(table)


app.add_typer(stake_app, name="stake")
app.add_typer(weights_app, name="weights")


def mount(root: typer.Typer) -> None:
    """Add ``register``, ``stake``, ``metagraph`` and ``weights`` to the main ``latent`` app."""
    root.command("register")(register_cmd)
    root.command("metagraph")(metagraph_cmd)
    root.add_typer(stake_app, name="stake")
    root.add_typer(weights_app, name="weights")
