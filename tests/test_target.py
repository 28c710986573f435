"""ChainTarget: addresses from the manifest or a flag, each with a clear error."""

from __future__ import annotations

import pytest
from web3 import Web3

from chain.errors import ConfigError
from chain.manifest import Manifest
from chain.networks import get_network
from chain.target import ChainTarget
from chain.token import SubnetTokenClient


def _target(w3: Web3, manifest: Manifest) -> ChainTarget:
    return ChainTarget(get_network("localnet"), w3, manifest)


def test_override_manifest_and_errors(w3: Web3, token: SubnetTokenClient) -> None:
    empty = _target(w3, Manifest("localnet", 31337))
    assert empty.address("SubnetToken", token.address, flag="token") == token.address
    with pytest.raises(ConfigError, match="--token 'nope' is not an address"):
        empty.address("SubnetToken", "nope", flag="token")
    with pytest.raises(ConfigError, match=r"no SubnetToken recorded .* or pass --token ADDRESS"):
        empty.address("SubnetToken", flag="token")
    codeless = "0x" + "11" * 20
    with pytest.raises(ConfigError, match=r"no contract at .* deploy first or fix --token"):
        empty.address("SubnetToken", codeless, flag="token")
    assert empty.optional_address("SubnetToken") == ""
    assert empty.optional_address("SubnetToken", codeless) == codeless
