"""The demo subnet, built once for the module that asks for it and reverted at its end."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from dashboard_env import DemoSubnet, build_demo_subnet
from eth_account.signers.local import LocalAccount
from web3 import Web3

from chain.node import revert, snapshot
from chain.token import SubnetTokenClient


@pytest.fixture(scope="module")
def demo(
    w3: Web3,
    accounts: list[LocalAccount],
    token: SubnetTokenClient,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[DemoSubnet]:
    # `token` first: session contracts must exist before this snapshot (see fresh_chain).
    snap = snapshot(w3)
    yield build_demo_subnet(w3, accounts, tmp_path_factory.mktemp("deployments"))
    revert(w3, snap)
