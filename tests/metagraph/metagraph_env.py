"""Shared test helpers for the metagraph tests (deployment record, parameters)."""

from __future__ import annotations

from dataclasses import dataclass

from eth_account.signers.local import LocalAccount
from web3 import Web3

from chain.metagraph import HyperParam, MetagraphClient
from chain.token import SubnetTokenClient

FUNDING = 1_000_000 * 10**18

#: Parameters every metagraph test starts from (small, so blocks are cheap to mine).
TEST_PARAMS: dict[HyperParam, int] = {
    HyperParam.TEMPO: 10,
    HyperParam.IMMUNITY_PERIOD: 20,
    HyperParam.WEIGHTS_RATE_LIMIT: 0,
    HyperParam.REVEAL_PERIOD: 1,
    HyperParam.UNBONDING_PERIOD: 15,
    HyperParam.MIN_ALLOWED_WEIGHTS: 1,
    HyperParam.BURN_HALF_LIFE: 8,
}


@dataclass(frozen=True)
class MetagraphEnv:
    """The deployed metagraph and who is who."""

    w3: Web3
    client: MetagraphClient
    token: SubnetTokenClient
    owner: LocalAccount
    accounts: list[LocalAccount]
