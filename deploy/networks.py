"""Named networks from ``deploy/networks.toml``; RPC URLs overridable by environment."""

from __future__ import annotations

import os
import tomllib
from dataclasses import dataclass
from pathlib import Path

from chain.errors import ConfigError
from chain.paths import DEPLOY_DIR

NETWORKS_FILE = DEPLOY_DIR / "networks.toml"


@dataclass(frozen=True)
class Network:
    """One EVM network Latent can be deployed to."""

    name: str
    chain_id: int
    """The chain id the RPC endpoint must report; checked before anything is sent."""
    rpc_url: str
    """The endpoint in use (the environment override when set)."""
    rpc_env: str
    """Environment variable that overrides ``rpc_url``."""
    dev_accounts: bool = False
    """Whether anvil's public dev accounts may sign (local chains only)."""


def load_networks(path: Path = NETWORKS_FILE) -> dict[str, Network]:
    """Every network in the networks file, with environment overrides applied."""
    try:
        raw = tomllib.loads(path.read_text())
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise ConfigError(f"cannot read networks file {path}: {exc}") from None
    networks: dict[str, Network] = {}
    for name, entry in raw.items():
        try:
            rpc_env = str(entry["rpc_env"])
            networks[name] = Network(
                name=name,
                chain_id=int(entry["chain_id"]),
                rpc_url=os.environ.get(rpc_env) or str(entry["rpc_url"]),
                rpc_env=rpc_env,
                dev_accounts=bool(entry.get("dev_accounts", False)),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise ConfigError(f"{path}: network {name!r} is malformed ({exc})") from None
    return networks


def get_network(name: str, *, rpc_url: str | None = None) -> Network:
    """The named network; ``rpc_url`` (e.g. from ``--rpc-url``) overrides its endpoint."""
    networks = load_networks()
    if name not in networks:
        raise ConfigError(f"unknown network {name!r}; known: {', '.join(sorted(networks))}")
    net = networks[name]
    if rpc_url:
        net = Network(net.name, net.chain_id, rpc_url, net.rpc_env, net.dev_accounts)
    return net
