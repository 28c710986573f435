"""Fixtures of the renter proxy tests: the tiny model (built offline once per session) and a
loaded engine that tests start inside their own event loop."""

from __future__ import annotations

from pathlib import Path

import pytest

from miner.engine import InferenceEngine
from miner.tiny_model import build_tiny_model


@pytest.fixture(scope="session")
def proxy_model_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_tiny_model(tmp_path_factory.mktemp("proxy-tiny"), seed=0)


@pytest.fixture(scope="session")
def proxy_engine(proxy_model_path: Path) -> InferenceEngine:
    return InferenceEngine.load(proxy_model_path, device="cpu", max_batch_size=16, model_id="tiny")
