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
from typing import Annotated, Any

import typer
from eth_account.signers.local import LocalAccount
from eth_utils import is_address, to_checksum_address
from rich.table import Table

from chain.cli_options import (
    DevOpt,
    JsonOpt,
    KeystoreOpt,
    NetworkOpt,
    RpcOpt,
    WalletOpt,
    dev_account_option,
)
from chain.cli_output import address_cell, cli_console, print_table
from chain.errors import ConfigError, KeystoreError
from chain.metagraph import MetagraphClient
from chain.target import ChainTarget, open_target
from chain.token import format_tokens, parse_token_amount

app = typer.Typer(help="Neurons: registration, stake, metagraph, weights.", no_args_is_help=True)
stake_app = typer.Typer(help="Bond tokens to a hotkey, unbond, claim.", no_args_is_help=True)
weights_app = typer.Typer(help="Validator weights as stored on chain.", no_args_is_help=True)
console = cli_console()

MetagraphOpt = Annotated[
    str | None,
    typer.Option("--metagraph", help="Metagraph address (default: the deployment manifest)."),
]
HotkeyOpt = Annotated[str | None, typer.Option("--hotkey", help="Hotkey name in the wallet.")]
HotkeyAddrOpt = Annotated[
    str | None, typer.Option("--hotkey-address", help="Hotkey address (0x...).")
]


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


def _check_endpoint(endpoint: str) -> None:
    """Refuse an endpoint no renter could dial, before anything is burned."""
    from urllib.parse import urlparse

    if not endpoint:
        return
    parsed = urlparse(endpoint)
    if parsed.scheme not in ("http", "https") or not parsed.hostname:
        raise ConfigError(
            f"--endpoint {endpoint!r} is not an http(s) URL; use e.g. http://203.0.113.7:8000"
        )


def register_cmd(
    network: NetworkOpt = "localnet",
    rpc_url: RpcOpt = None,
    metagraph: MetagraphOpt = None,
    wallet: WalletOpt = None,
    keystore: KeystoreOpt = None,
    dev_account: DevOpt = None,
    hotkey: HotkeyOpt = None,
    hotkey_address: HotkeyAddrOpt = None,
    hotkey_dev_account: Annotated[
        int | None,
        dev_account_option(
            "--hotkey-dev-account", "Hotkey: anvil dev account 0-9 (signs its consent)."
        ),
    ] = None,
    hotkey_consent: Annotated[
        str | None,
        typer.Option(
            "--hotkey-consent",
            help="DEADLINE:0xSIG from `latent consent` on the hotkey's box (with --hotkey-address).",
        ),
    ] = None,
    endpoint: Annotated[str, typer.Option("--endpoint", help="URL the neuron serves on.")] = "",
    max_price: Annotated[
        str | None,
        typer.Option("--max-price", help="Most tokens to burn (default: current price)."),
    ] = None,
    json_out: JsonOpt = False,
) -> None:
    """Register a hotkey by burning the current registration price from the coldkey.

    The hotkey consents: it is the coldkey itself, its key is here (--wallet W --hotkey H,
    --hotkey-dev-account N) and signs, or its signature comes from `latent consent`."""
    from chain.metagraph import HotkeyConsent

    _check_endpoint(endpoint)
    target = _target(network, rpc_url, metagraph)
    if wallet is not None and hotkey is not None:
        # The wallet's coldkey pays; its hotkey (a keystore on this box) signs the consent.
        coldkey = target.chain.account(keystore=keystore, wallet=wallet, dev_account=dev_account)
        hk: LocalAccount | str = target.chain.account(
            keystore=None, wallet=wallet, dev_account=None, hotkey=hotkey
        )
    else:
        coldkey = _signer(target, keystore, wallet, dev_account)
        if hotkey_dev_account is not None:
            hk = target.chain.account(keystore=None, wallet=None, dev_account=hotkey_dev_account)
        elif hotkey_address is not None:
            hk = _hotkey_address(None, None, hotkey_address)
        else:
            raise KeystoreError(
                "name the hotkey: --wallet W --hotkey H, --hotkey-dev-account N, or "
                "--hotkey-address 0x... (with --hotkey-consent unless it is the coldkey)"
            )
    address = hk if isinstance(hk, str) else hk.address
    consent = (
        HotkeyConsent.from_text(hotkey_consent, hotkey=address, coldkey=coldkey.address)
        if hotkey_consent
        else None
    )
    limit = None if max_price is None else _amount(max_price)
    uid, burned, _ = target.client.register(coldkey, hk, endpoint, max_price=limit, consent=consent)
    owner = target.client.hotkey_owner(address)
    if owner != coldkey.address:
        raise ConfigError(
            f"{address} got uid {uid} but is owned by {owner}, not {coldkey.address}: "
            "rewards of this uid go to that coldkey"
        )
    if json_out:
        print(
            json.dumps(
                {
                    "uid": uid,
                    "hotkey": address,
                    "coldkey": coldkey.address,
                    "burned_wei": str(burned),
                }
            )
        )
        return
    console.print(
        f"registered {address} as uid {uid} (coldkey {coldkey.address}), burned {_tokens(burned)} tokens"
    )


def consent_cmd(
    coldkey_address: Annotated[
        str, typer.Option("--coldkey-address", help="The coldkey that will register this hotkey.")
    ],
    network: NetworkOpt = "localnet",
    rpc_url: RpcOpt = None,
    metagraph: MetagraphOpt = None,
    wallet: WalletOpt = None,
    hotkey: HotkeyOpt = None,
    keystore: KeystoreOpt = None,
    dev_account: DevOpt = None,
    hours: Annotated[float, typer.Option("--hours", help="How long the consent is valid.")] = 24.0,
) -> None:
    """Sign, with the hotkey, its consent to be registered by --coldkey-address (on the
    hotkey's box); pass the printed DEADLINE:0xSIG to `latent register --hotkey-consent`."""
    if not is_address(coldkey_address):
        raise ConfigError(f"--coldkey-address {coldkey_address!r} is not an address")
    target = _target(network, rpc_url, metagraph)
    key = target.chain.account(
        keystore=keystore, wallet=wallet, dev_account=dev_account, hotkey=hotkey
    )
    now = int(target.chain.w3.eth.get_block("latest")["timestamp"])
    consent = target.client.sign_consent(key, coldkey_address, deadline=now + int(hours * 3600))
    print(consent.to_text())


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
    json_out: JsonOpt = False,
) -> None:
    """Bond tokens from the coldkey to a registered hotkey (yours or anyone's: delegation)."""
    target = _target(network, rpc_url, metagraph)
    hk = _hotkey_address(wallet, hotkey, hotkey_address)
    coldkey = _signer(target, keystore, wallet, dev_account)
    bonded = _amount(amount)
    target.client.add_stake(coldkey, hk, bonded)
    if json_out:
        stake = target.client.hotkey_stake(hk)
        print(
            json.dumps(
                {
                    "hotkey": hk,
                    "coldkey": coldkey.address,
                    "staked_wei": str(bonded),
                    "hotkey_stake_wei": str(stake),
                }
            )
        )
        return
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
    json_out: JsonOpt = False,
) -> None:
    """Unbond tokens; claim them with `latent stake claim` after the unbonding period."""
    target = _target(network, rpc_url, metagraph)
    hk = _hotkey_address(wallet, hotkey, hotkey_address)
    coldkey = _signer(target, keystore, wallet, dev_account)
    unbonded = _amount(amount)
    target.client.remove_stake(coldkey, hk, unbonded)
    pending, release = target.client.unbonding(coldkey.address)
    if json_out:
        print(
            json.dumps(
                {
                    "hotkey": hk,
                    "coldkey": coldkey.address,
                    "unstaked_wei": str(unbonded),
                    "unbonding_wei": str(pending),
                    "claimable_from_block": release,
                }
            )
        )
        return
    console.print(f"unbonding {_tokens(pending)} tokens, claimable from block {release}")


@stake_app.command("claim")
def stake_claim(
    network: NetworkOpt = "localnet",
    rpc_url: RpcOpt = None,
    metagraph: MetagraphOpt = None,
    wallet: WalletOpt = None,
    keystore: KeystoreOpt = None,
    dev_account: DevOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """Withdraw unbonded tokens once the unbonding period has passed."""
    target = _target(network, rpc_url, metagraph)
    coldkey = _signer(target, keystore, wallet, dev_account)
    receipt = target.client.claim_unbonded(coldkey)
    (event,) = target.client.contract.events(receipt, "UnbondedClaimed")
    if json_out:
        print(json.dumps({"coldkey": coldkey.address, "claimed_wei": str(int(event["amount"]))}))
        return
    console.print(f"claimed {_tokens(int(event['amount']))} tokens")


def _metagraph_json(snap: Any, claimable: dict[str, int]) -> dict[str, Any]:
    """``latent metagraph --json``: token amounts in base units, named ``*_wei``."""
    doc: dict[str, Any] = snap.to_json()
    doc["registration_price_wei"] = str(doc.pop("registration_price"))
    hp = doc["hyperparameters"]
    for key in ("min_burn", "max_burn"):
        hp[f"{key}_wei"] = str(hp.pop(key))
    for neuron in doc["neurons"]:
        for key in ("stake", "emission"):
            neuron[f"{key}_wei"] = str(neuron.pop(key))
        owed = claimable.get(neuron["hotkey"])
        neuron["claimable_wei"] = None if owed is None else str(owed)
    return doc


def _claimable(target: _Target, snap: Any) -> dict[str, int]:
    """Emission each hotkey can claim now (``latent rewards claim``), read at the snapshot's
    block; empty when the network records no epoch contract."""
    from chain.epoch import EpochClient

    address = target.chain.optional_address("YumaConsensus")
    if not address:
        return {}
    epoch = EpochClient(target.chain.w3, address)
    if epoch.metagraph_address() != target.client.address:  # --metagraph names another one
        return {}
    return {hk: int(epoch.contract.call("claimable", hk, block=snap.block)) for hk in snap.hotkeys}


@app.command("metagraph")
def metagraph_cmd(
    network: NetworkOpt = "localnet",
    rpc_url: RpcOpt = None,
    metagraph: MetagraphOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """Show every registered uid (one batched read)."""
    target = _target(network, rpc_url, metagraph)
    snap = target.client.snapshot()
    claimable = _claimable(target, snap)
    if json_out:
        print(json.dumps(_metagraph_json(snap, claimable), indent=2))
        return
    table = Table(
        "uid", "hotkey", "coldkey", "stake", "permit", "emission", "claimable", "incentive",
        "dividends", "vtrust", "registered", "updated", "endpoint",
        title=f"metagraph {snap.address} at block {snap.block} "
        f"(n={snap.n}, price {_tokens(snap.registration_price)} LAT; amounts in LAT)",
    )  # fmt: skip
    for info in snap.neurons():
        table.add_row(
            str(info.uid),
            address_cell(info.hotkey, console),
            address_cell(info.coldkey, console),
            _tokens(info.stake),
            "yes" if info.validator_permit else "",
            _tokens(info.emission),
            _tokens(claimable[info.hotkey]) if info.hotkey in claimable else "-",
            f"{info.incentive / 65535:.4f}",
            f"{info.dividends / 65535:.4f}",
            f"{info.validator_trust / 65535:.4f}",
            str(info.registered_at),
            str(info.last_update),
            info.endpoint,
        )
    print_table(table, console)


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
    print_table(table, console)


app.add_typer(stake_app, name="stake")
app.add_typer(weights_app, name="weights")


def mount(root: typer.Typer) -> None:
    """Add ``register``, ``stake``, ``metagraph`` and ``weights`` to the main ``latent`` app."""
    root.command("register")(register_cmd)
    root.command("consent")(consent_cmd)
    root.command("metagraph")(metagraph_cmd)
    root.add_typer(stake_app, name="stake")
    root.add_typer(weights_app, name="weights")
