"""Metagraph fixtures: one deployment per session with short, test-friendly parameters.

Tests take ``fresh_chain`` (snapshot/revert around each test); state machines snapshot in
``__init__`` and revert in ``teardown``.
"""

from __future__ import annotations

import pytest
from eth_account.signers.local import LocalAccount
from metagraph_env import FUNDING, TEST_PARAMS, MetagraphEnv
from web3 import Web3

from chain.client import deploy_contract
from chain.metagraph import MetagraphClient
from chain.token import SubnetTokenClient


@pytest.fixture(scope="session")
def metagraph_env(w3: Web3, accounts: list[LocalAccount], token: SubnetTokenClient) -> MetagraphEnv:
    owner = accounts[0]
    contract, _ = deploy_contract(w3, "Metagraph", token.address, owner.address, sender=owner)
    client = MetagraphClient(w3, contract.address)
    for param, value in TEST_PARAMS.items():
        client.set_hyperparameter(owner, param, value)
    for account in accounts[1:]:
        if token.balance_of(account.address) < FUNDING:
            token.mint(account.address, FUNDING, sender=owner)
        token.approve(client.address, 2**256 - 1, sender=account)
    return MetagraphEnv(w3=w3, client=client, token=token, owner=owner, accounts=accounts)
