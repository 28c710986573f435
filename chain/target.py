"""What every chain-facing command starts with: a named network, a checked connection, and
contract addresses from the network's manifest (or from a flag that overrides it)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from eth_account.signers.local import LocalAccount
from eth_utils import is_address, to_checksum_address
from web3 import Web3

from chain.client import connect
from chain.errors import ConfigError, name_address
from chain.keys import resolve_account
from chain.manifest import Manifest, load_manifest
from chain.networks import Network, get_network


@dataclass(frozen=True)
class ChainTarget:
    """A connected network and its deployment manifest."""

    network: Network
    w3: Web3
    manifest: Manifest

    def address(self, name: str, override: str | None = None, *, flag: str) -> str:
        """Contract ``name``: ``override`` (from ``--flag``) or the manifest's, with code on chain."""
        address: str
        if override is not None:
            if not is_address(override):
                raise ConfigError(f"--{flag} {override!r} is not an address")
            address = to_checksum_address(override)
        elif name in self.manifest.contracts:
            address = self.manifest.address(name)
        else:
            raise ConfigError(
                f"no {name} recorded for network {self.network.name!r}; run `latent deploy "
                f"--network {self.network.name}` or pass --{flag} ADDRESS"
            )
        if not self.w3.eth.get_code(to_checksum_address(address)):
            raise ConfigError(
                f"no contract at {address} on {self.network.name}; deploy first or fix --{flag}"
            )
        return address

    def optional_address(self, name: str, override: str | None = None) -> str:
        """``override``, else the manifest's address of ``name``, else ``""``."""
        if override:
            return override
        return self.manifest.contracts[name].address if name in self.manifest.contracts else ""

    def account(
        self,
        *,
        keystore: Path | None,
        wallet: str | None,
        dev_account: int | None,
        hotkey: str | None = None,
    ) -> LocalAccount:
        """The signer the flags name; dev accounts only where the network allows them."""
        account = resolve_account(
            keystore=keystore,
            wallet=wallet,
            hotkey=hotkey,
            dev_account=dev_account,
            allow_dev=self.network.dev_accounts,
        )
        name_address(account.address, "signer")
        return account


def open_target(network: str, rpc_url: str | None = None) -> ChainTarget:
    """Resolve ``network`` (``rpc_url`` overrides its endpoint), connect, load its manifest."""
    net = get_network(network, rpc_url=rpc_url)
    w3 = connect(net.rpc_url, expected_chain_id=net.chain_id)
    manifest = load_manifest(net.name, net.chain_id)
    for name, deployed in manifest.contracts.items():
        name_address(deployed.address, name)  # errors name the contracts they mention
    return ChainTarget(net, w3, manifest)
