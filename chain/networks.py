"""Named networks from ``deploy/networks.toml``; RPC URLs overridable by environment."""

from __future__ import annotations

import os
import tomllib
from dataclasses import dataclass, field, replace
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
    metagraph: dict[str, int] = field(default_factory=dict)
    """Metagraph hyperparameters to set after deployment, by lower-case name."""
    escrow_fee_bps: int = 100
    """PaymentEscrow protocol fee in basis points."""
    escrow_grace_period_s: int = 900
    """Seconds a miner has to settle after a renter requests close (>= 900)."""


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
            escrow = entry.get("escrow", {})
            networks[name] = Network(
                name=name,
                chain_id=int(entry["chain_id"]),
                rpc_url=os.environ.get(rpc_env) or str(entry["rpc_url"]),
                rpc_env=rpc_env,
                dev_accounts=bool(entry.get("dev_accounts", False)),
                metagraph={str(k): int(v) for k, v in entry.get("metagraph", {}).items()},
                escrow_fee_bps=int(escrow.get("fee_bps", 100)),
                escrow_grace_period_s=int(escrow.get("grace_period_s", 900)),
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
    return replace(net, rpc_url=rpc_url) if rpc_url else net
