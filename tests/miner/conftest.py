"""Tiny-model fixtures for the miner tests (built offline once per session)."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from engine_cases import Serve

from miner.engine import InferenceEngine
from miner.tiny_model import build_tiny_model
from miner.types import GenerationRequest, GenerationResult


@pytest.fixture(scope="session")
def tiny_model_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The tiny deterministic model (seed 0), saved with save_pretrained."""
    return build_tiny_model(tmp_path_factory.mktemp("tiny-seed0"), seed=0)


@pytest.fixture(scope="session")
def tiny_model_other_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Same architecture and tokenizer, other weights (seed 1)."""
    return build_tiny_model(tmp_path_factory.mktemp("tiny-seed1"), seed=1)


@pytest.fixture(scope="session")
def engine(tiny_model_path: Path) -> InferenceEngine:
    """A loaded (not started) fp32 CPU engine over the tiny model; each test starts it inside
    its own event loop (``asyncio.run``) and stops it before returning."""
    return InferenceEngine.load(tiny_model_path, device="cpu", max_batch_size=16, model_id="tiny")


def _serve(engine: InferenceEngine, requests: list[GenerationRequest]) -> list[GenerationResult]:
    async def main() -> list[GenerationResult]:
        await engine.start()
        try:
            return list(await asyncio.gather(*(engine.generate(r) for r in requests)))
        finally:
            await engine.stop()

    return asyncio.run(main())


@pytest.fixture(scope="session")
def serve() -> Serve:
    """``serve(engine, requests)``: run the requests concurrently (one batch) and return
    their results in order."""
    return _serve
