"""Fixtures for the PaymentEscrow tests: a deployed escrow, funded parties, test tokens.

Roles (anvil dev accounts): 0 deployer/owner/token minter, 1 renter, 2 miner, 3 session key,
4 stranger, 9 reward pool. Session fixtures deploy once; tests isolate state with ``clean``
(snapshot/revert, taken after the session deployments exist).
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from escrow_env import FEE_BPS, GRACE_S, INITIAL_BALANCE, Parties
from eth_account.signers.local import LocalAccount
from web3 import Web3

from chain.client import Contract, deploy_contract
from chain.escrow import EscrowClient
from chain.node import revert, snapshot
from chain.token import SubnetTokenClient


@pytest.fixture(scope="session")
def parties(accounts: list[LocalAccount]) -> Parties:
    return Parties(accounts[0], accounts[1], accounts[2], accounts[3], accounts[4], accounts[9])


@pytest.fixture(scope="session")
def escrow(w3: Web3, token: SubnetTokenClient, parties: Parties) -> EscrowClient:
    client, _ = EscrowClient.deploy(
        w3,
        sender=parties.owner,
        reward_pool=parties.pool.address,
        fee_bps=FEE_BPS,
        grace_period_s=GRACE_S,
    )
    for who in (parties.renter, parties.stranger):
        token.mint(who.address, INITIAL_BALANCE, sender=parties.owner)
        token.approve(client.address, 2**256 - 1, sender=who)
    return client


@pytest.fixture(scope="session")
def fot_token(w3: Web3, escrow: EscrowClient, parties: Parties) -> Contract:
    contract, _ = deploy_contract(w3, "FeeOnTransferToken", sender=parties.owner)
    contract.transact("mint", parties.renter.address, INITIAL_BALANCE, sender=parties.owner)
    contract.transact("approve", escrow.address, 2**256 - 1, sender=parties.renter)
    return contract


@pytest.fixture(scope="session")
def reentrant_token(w3: Web3, escrow: EscrowClient, parties: Parties) -> Contract:
    contract, _ = deploy_contract(w3, "ReentrantToken", sender=parties.owner)
    contract.transact("mint", parties.renter.address, INITIAL_BALANCE, sender=parties.owner)
    contract.transact("approve", escrow.address, 2**256 - 1, sender=parties.renter)
    return contract


@pytest.fixture
def clean(
    w3: Web3, escrow: EscrowClient, fot_token: Contract, reentrant_token: Contract
) -> Iterator[Web3]:
    """Snapshot after every session deployment, revert after the test."""
    snap = snapshot(w3)
    yield w3
    revert(w3, snap)
