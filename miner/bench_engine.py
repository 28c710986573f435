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
    engine: InferenceEngine,
    requests: Sequence[GenerationRequest],
    concurrency: int,
    *,
    stream: bool = False,
) -> dict[str, Any]:
    """Serve ``requests`` straight through ``engine`` with at most ``concurrency`` in flight,
    with ``engine.generate`` (the non-streaming server path's twin) or, with ``stream``,
    ``engine.stream`` (the streaming path's twin: every delta reaches the event loop).

    Returns a JSON-able dict: ``requests``, ``concurrency``, ``wall_s``, ``output_tokens``,
    ``tokens_per_s`` (generated tokens / wall time), ``ttft_s_mean`` / ``ttft_s_p50`` /
    ``ttft_s_p95`` (submission to the first generated token; with ``stream``, to the first
    delta with visible text, what a streaming client sees: a token that is an incomplete
    UTF-8 character or a special token shows no text yet), ``first_token_s_p50``
    (submission to the first generated token, visible or not), ``latency_s_mean``,
    ``proof_bytes`` and
    ``proof_bytes_per_token``. Starts and stops the engine if it is not already running.
    """
    if concurrency < 1:
        raise ValueError("concurrency must be >= 1")
    started_here = not engine.running
    if started_here:
        await engine.start()
    gate = asyncio.Semaphore(concurrency)
    first_text: list[float] = []

    async def one(request: GenerationRequest) -> GenerationResult:
        async with gate:
            if not stream:
                return await engine.generate(request)
            t0 = time.perf_counter()
            seen = False
            async for delta in engine.stream(request):
                if not seen and delta.text:
                    first_text.append(time.perf_counter() - t0)
                    seen = True
                if delta.result is not None:
                    if not seen:  # no visible text at all: time to the end
                        first_text.append(time.perf_counter() - t0)
                    return delta.result
            raise RuntimeError("engine stream ended without a result")  # unreachable

    try:
        t0 = time.perf_counter()
        results = await asyncio.gather(*(one(r) for r in requests))
        wall = time.perf_counter() - t0
    finally:
        if started_here:
            await engine.stop()
    tokens = sum(len(r.output_token_ids) for r in results)
    first_tokens = sorted(r.time_to_first_token_s for r in results)
    ttfts = sorted(first_text) if stream else first_tokens
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
        "first_token_s_p50": first_tokens[len(first_tokens) // 2] if first_tokens else 0.0,
        "latency_s_mean": statistics.fmean(r.elapsed_s for r in results) if results else 0.0,
        "proof_bytes": proof_bytes,
        "proof_bytes_per_token": proof_bytes / tokens if tokens else 0.0,
    }
