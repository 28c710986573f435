"""Bare-engine throughput benchmark: the baseline ``latent bench serve`` compares against."""

from __future__ import annotations

import asyncio
import statistics
import time
from collections.abc import Sequence
from typing import Any

from miner.engine import InferenceEngine
from miner.types import GenerationRequest, GenerationResult


async def run_engine_bench(
    engine: InferenceEngine, requests: Sequence[GenerationRequest], concurrency: int
) -> dict[str, Any]:
    """Serve ``requests`` straight through ``engine`` with at most ``concurrency`` in flight.

    Returns a JSON-able dict: ``requests``, ``concurrency``, ``wall_s``, ``output_tokens``,
    ``tokens_per_s`` (generated tokens / wall time), ``ttft_s_mean`` / ``ttft_s_p50`` /
    ``ttft_s_p95`` (submission to first token), ``latency_s_mean``, ``proof_bytes`` and
    ``proof_bytes_per_token``. Starts and stops the engine if it is not already running.
    """
    if concurrency < 1:
        raise ValueError("concurrency must be >= 1")
    started_here = not engine.running
    if started_here:
        await engine.start()
    gate = asyncio.Semaphore(concurrency)

    async def one(request: GenerationRequest) -> GenerationResult:
        async with gate:
            return await engine.generate(request)

    try:
        t0 = time.perf_counter()
        results = await asyncio.gather(*(one(r) for r in requests))
        wall = time.perf_counter() - t0
    finally:
        if started_here:
            await engine.stop()
    tokens = sum(len(r.output_token_ids) for r in results)
    ttfts = sorted(r.time_to_first_token_s for r in results)
    proof_bytes = sum(len(r.proof.to_bytes()) for r in results)
    return {
        "requests": len(results),
        "concurrency": concurrency,
        "wall_s": wall,
        "output_tokens": tokens,
        "tokens_per_s": tokens / wall if wall > 0 else 0.0,
        "ttft_s_mean": statistics.fmean(ttfts) if ttfts else 0.0,
        "ttft_s_p50": ttfts[len(ttfts) // 2] if ttfts else 0.0,
        "ttft_s_p95": ttfts[min(len(ttfts) - 1, int(0.95 * len(ttfts)))] if ttfts else 0.0,
        "latency_s_mean": statistics.fmean(r.elapsed_s for r in results) if results else 0.0,
        "proof_bytes": proof_bytes,
        "proof_bytes_per_token": proof_bytes / tokens if tokens else 0.0,
    }
