"""Shared fixtures: one anvil node per test session, compiled artifacts, dev accounts.

State isolation: tests that change chain state take ``fresh_chain`` (evm_snapshot before,
evm_revert after); hypothesis state machines snapshot/revert per example themselves.

Hypothesis profiles: ``default`` (CI, small), ``heavy`` (``--hypothesis-profile=heavy``).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from eth_account.signers.local import LocalAccount
from hypothesis import HealthCheck, settings
from web3 import Web3

from chain.client import Contract, deploy_contract
from chain.compile import Artifact, compile_contracts
from chain.keys import dev_accounts
from chain.node import AnvilNode, revert, snapshot
from chain.token import SubnetTokenClient

if TYPE_CHECKING:  # torch and transformers load only for the tests that use a model
    from miner.engine import InferenceEngine

settings.register_profile(
    "default",
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
settings.register_profile(
    "heavy",
    max_examples=500,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "default"))


@pytest.fixture(scope="session")
def artifacts() -> dict[str, Artifact]:
    return compile_contracts()


@pytest.fixture(scope="session")
def anvil(artifacts: dict[str, Artifact]) -> Iterator[AnvilNode]:
    with AnvilNode() as node:
        yield node


@pytest.fixture(scope="session")
def w3(anvil: AnvilNode) -> Web3:
    return anvil.web3()


@pytest.fixture(scope="session")
def accounts() -> list[LocalAccount]:
    return dev_accounts(10)


@pytest.fixture
def fresh_chain(w3: Web3, token: SubnetTokenClient) -> Iterator[Web3]:
    """Snapshot before the test, revert after (session contracts are deployed first)."""
    snap = snapshot(w3)
    yield w3
    revert(w3, snap)


@pytest.fixture(scope="session")
def token(w3: Web3, accounts: list[LocalAccount]) -> SubnetTokenClient:
    deployer = accounts[0]
    contract, _ = deploy_contract(
        w3, "SubnetToken", deployer.address, deployer.address, sender=deployer
    )
    return SubnetTokenClient(w3, contract.address)


@pytest.fixture(scope="session")
def tiny_model_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The tiny deterministic model (seed 0), saved with save_pretrained."""
    from miner.tiny_model import build_tiny_model

    return build_tiny_model(tmp_path_factory.mktemp("tiny-seed0"), seed=0)


@pytest.fixture(scope="session")
def tiny_model_other_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Same architecture and tokenizer, other weights (seed 1)."""
    from miner.tiny_model import build_tiny_model

    return build_tiny_model(tmp_path_factory.mktemp("tiny-seed1"), seed=1)


@pytest.fixture(scope="session")
def engine(tiny_model_path: Path) -> InferenceEngine:
    """A loaded (not started) fp32 CPU engine over the tiny model; each test starts it inside
    its own event loop (``asyncio.run``) and stops it before returning."""
    from miner.engine import InferenceEngine

    return InferenceEngine.load(tiny_model_path, device="cpu", max_batch_size=16, model_id="tiny")


__all__ = ["Contract"]
