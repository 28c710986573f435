"""``deploy/deployments/<network>.json``: what is deployed where, and from which sources."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from chain.errors import ConfigError
from chain.jsonfile import write_text_atomic
from chain.paths import DEPLOY_DIR

MANIFEST_SCHEMA = 1
#: Where manifests live; ``LATENT_DEPLOYMENTS_DIR`` moves them (a localnet on another port
#: keeps its own so it never overwrites the default one's).
DEPLOYMENTS_DIR = Path(os.environ.get("LATENT_DEPLOYMENTS_DIR") or DEPLOY_DIR / "deployments")


@dataclass(frozen=True)
class DeployedContract:
    """One contract in a manifest."""

    address: str
    tx_hash: str
    block: int
    gas_used: int
    source_path: str
    source_hash: str
    init_code_hash: str
    """keccak of creation bytecode + encoded constructor args: equal means 'unchanged'."""
    constructor_args: list[Any]


@dataclass
class Manifest:
    """All deployments of Latent on one network."""

    network: str
    chain_id: int
    compiler_version: str = ""
    deployer: str = ""
    contracts: dict[str, DeployedContract] = field(default_factory=dict)

    def address(self, name: str) -> str:
        """Address of contract ``name``; a clear error if it was never deployed."""
        if name not in self.contracts:
            raise ConfigError(
                f"{name} is not deployed on {self.network}; run `latent deploy --network "
                f"{self.network}` first"
            )
        return self.contracts[name].address

    def to_json(self) -> dict[str, Any]:
        return {
            "schema": MANIFEST_SCHEMA,
            "network": self.network,
            "chainId": self.chain_id,
            "compilerVersion": self.compiler_version,
            "deployer": self.deployer,
            "contracts": {
                name: {
                    "address": c.address,
                    "txHash": c.tx_hash,
                    "block": c.block,
                    "gasUsed": c.gas_used,
                    "sourcePath": c.source_path,
                    "sourceHash": c.source_hash,
                    "initCodeHash": c.init_code_hash,
                    "constructorArgs": c.constructor_args,
                }
                for name, c in sorted(self.contracts.items())
            },
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Manifest:
        if data.get("schema") != MANIFEST_SCHEMA:
            raise ConfigError(f"manifest schema {data.get('schema')} is not {MANIFEST_SCHEMA}")
        return cls(
            network=data["network"],
            chain_id=int(data["chainId"]),
            compiler_version=data.get("compilerVersion", ""),
            deployer=data.get("deployer", ""),
            contracts={
                name: DeployedContract(
                    address=c["address"],
                    tx_hash=c["txHash"],
                    block=int(c["block"]),
                    gas_used=int(c["gasUsed"]),
                    source_path=c["sourcePath"],
                    source_hash=c["sourceHash"],
                    init_code_hash=c["initCodeHash"],
                    constructor_args=list(c["constructorArgs"]),
                )
                for name, c in data.get("contracts", {}).items()
            },
        )


def manifest_path(network: str, directory: Path = DEPLOYMENTS_DIR) -> Path:
    return directory / f"{network}.json"


def load_manifest(network: str, chain_id: int, directory: Path = DEPLOYMENTS_DIR) -> Manifest:
    """The manifest for ``network`` (empty if none yet); refuses one for another chain."""
    path = manifest_path(network, directory)
    if not path.is_file():
        return Manifest(network=network, chain_id=chain_id)
    try:
        manifest = Manifest.from_json(json.loads(path.read_text()))
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise ConfigError(f"{path} is not a valid manifest ({exc}); move it aside") from None
    if manifest.chain_id != chain_id:
        raise ConfigError(
            f"{path} records chain id {manifest.chain_id}, not {chain_id}; move it aside"
        )
    return manifest


def save_manifest(manifest: Manifest, directory: Path = DEPLOYMENTS_DIR) -> Path:
    """Write the manifest atomically (temp file + rename)."""
    path = manifest_path(manifest.network, directory)
    write_text_atomic(path, json.dumps(manifest.to_json(), indent=2) + "\n", mode=0o644)
    return path


__all__ = ["DeployedContract", "Manifest", "load_manifest", "save_manifest"]
