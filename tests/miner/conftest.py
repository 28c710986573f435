"""Serving fixtures for the miner tests (the tiny model fixtures are in tests/conftest.py)."""

from __future__ import annotations

import asyncio

import pytest
from engine_cases import Serve

from miner.engine import InferenceEngine
from miner.types import GenerationRequest, GenerationResult


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
