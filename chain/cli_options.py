"""The command-line options every chain-facing ``latent`` command shares, defined once.

Roles (``miner``, ``validator``, ``renter``) and ``latent`` itself import these aliases, so
``--network``, ``--rpc-url``, ``--wallet``, ``--keystore``, ``--dev-account`` and ``--json``
are spelled, documented and checked the same way everywhere. They live in ``chain`` because
that is the one package every role may import (never the deployer, never another role).

- ``--network/-n`` defaults to ``localnet`` and honours ``$LATENT_NETWORK``.
- ``--rpc-url`` overrides the network's endpoint; without it the network's own variable
  (``rpc_env`` in ``deploy/networks.toml``, e.g. ``$LATENT_LOCALNET_RPC_URL``) or URL is used.
  There is deliberately no network-independent RPC variable: a stray one would silently point
  every network at one node (the chain id check would then refuse every other network).
- ``--dev-account N`` (and every other dev-account index option) is refused before anything
  else happens unless ``0 <= N <= 9``: anvil's mnemonic funds ten accounts.
- ``--json`` prints one JSON object on stdout (nothing else on stdout).
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from chain.errors import KeystoreError

#: anvil's mnemonic funds accounts 0-9; the localnet gives each a role.
DEV_ACCOUNTS = 10


def check_dev_account(param: typer.CallbackParam, value: int | None) -> int | None:
    """Option callback: a dev account index is 0-9, checked while parsing (before any
    connection, key or transaction)."""
    if value is not None and not 0 <= value < DEV_ACCOUNTS:
        flag = param.opts[0] if param.opts else "--dev-account"
        raise KeystoreError(f"{flag} {value}: dev accounts are 0-{DEV_ACCOUNTS - 1}")
    return value


NetworkOpt = Annotated[
    str,
    typer.Option(
        "--network",
        "-n",
        envvar="LATENT_NETWORK",
        help="Network name from deploy/networks.toml.",
    ),
]
RpcOpt = Annotated[
    str | None,
    typer.Option(
        "--rpc-url",
        help="Override the network's RPC URL (default: its rpc_env variable, e.g. "
        "LATENT_LOCALNET_RPC_URL, else deploy/networks.toml).",
    ),
]
WalletOpt = Annotated[
    str | None,
    typer.Option("--wallet", help="Wallet name in ~/.latent/wallets (its coldkey signs)."),
]
KeystoreOpt = Annotated[
    Path | None, typer.Option("--keystore", help="Keystore file of the signing key.")
]
DevOpt = Annotated[
    int | None,
    typer.Option(
        "--dev-account",
        callback=check_dev_account,
        help="anvil dev account index 0-9 (local chains only).",
    ),
]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print one JSON object.")]


def dev_account_option(flag: str, help: str) -> typer.models.OptionInfo:
    """Another dev-account index option (e.g. ``--payer-dev-account``), checked like
    ``--dev-account``."""
    return typer.Option(flag, callback=check_dev_account, help=help)


__all__ = [
    "DEV_ACCOUNTS",
    "DevOpt",
    "JsonOpt",
    "KeystoreOpt",
    "NetworkOpt",
    "RpcOpt",
    "WalletOpt",
    "check_dev_account",
    "dev_account_option",
]
