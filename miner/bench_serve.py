"""``latent bench serve [--json]``: the full server path against the bare engine.

Same requests (token-id prompts of varied length, greedy, fixed ``max_tokens``) go through

- ``bare``: ``miner.bench_engine.run_engine_bench`` straight into the engine;
- ``served``: HTTP ``/v1/completions`` on a uvicorn server in this process, every request
  paid with a real EIP-712 voucher (one channel per concurrent client, each voucher covering
  the receipts received so far), checked by the payment gate, answered with a signed receipt
  and a proof; channels are read from memory (a chain read is cached per channel anyway);
- ``served_stream``: the same with ``stream: true``; time to first token measured at the
  client (request sent -> first content chunk).

at concurrency 1 and 16. The HTTP load generator (signing vouchers, reading receipts) runs
in a separate process, as a renter would; on a small CPU box it still competes with the
server for cores, so the served/bare ratio there is conservative.
"""

from __future__ import annotations

import asyncio
import base64
import json
import multiprocessing
import statistics
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

import typer

from chain.errors import LatentError

DEFAULT_CONCURRENCY = (1, 16)


def _stats(values: list[float]) -> dict[str, float]:
    ordered = sorted(values)
    if not ordered:
        return {"mean": 0.0, "p50": 0.0, "p95": 0.0}
    return {
        "mean": statistics.fmean(ordered),
        "p50": ordered[len(ordered) // 2],
        "p95": ordered[min(len(ordered) - 1, int(0.95 * len(ordered)))],
    }


@dataclass(frozen=True)
class _ClientPass:
    """One load-generator pass, run in a separate process (a renter is never in-process)."""

    url: str
    concurrency: int
    stream: bool
    prompts: tuple[tuple[int, ...], ...]
    max_tokens: int
    channel_ids: tuple[bytes, ...]
    owed: tuple[int, ...]
    renter_key: bytes
    escrow: str
    chain_id: int


def _client_pass(job: _ClientPass) -> tuple[dict[str, Any], tuple[int, ...]]:
    """Run one pass of paid requests; returns (figures, new amounts owed per channel)."""
    return asyncio.run(_client_pass_async(job))


async def _client_pass_async(job: _ClientPass) -> tuple[dict[str, Any], tuple[int, ...]]:
    import httpx
    from eth_account import Account

    from chain.receipts import Receipt
    from chain.vouchers import VOUCHER_HEADER, encode_voucher_header, sign_voucher

    renter = Account.from_key(job.renter_key)
    owed = dict(zip(job.channel_ids, job.owed, strict=True))
    queue: asyncio.Queue[tuple[int, ...]] = asyncio.Queue()
    for p in job.prompts:
        queue.put_nowait(p)
    tokens = 0
    proof_bytes = 0
    ttfts: list[float] = []
    latencies: list[float] = []

    def voucher_header(cid: bytes) -> dict[str, str]:
        voucher = sign_voucher(
            renter,
            escrow=job.escrow,
            chain_id=job.chain_id,
            channel_id=cid,
            cumulative_amount=owed[cid],
        )
        return {VOUCHER_HEADER: encode_voucher_header(voucher)}

    async def worker(client: httpx.AsyncClient, cid: bytes) -> None:
        nonlocal tokens, proof_bytes
        while not queue.empty():
            prompt = queue.get_nowait()
            body = {
                "model": "bench",
                "prompt": list(prompt),
                "max_tokens": job.max_tokens,
                "temperature": 0,
                "stream": job.stream,
            }
            t0 = time.perf_counter()
            latent: dict[str, Any] | None = None
            if job.stream:
                first: float | None = None
                async with client.stream(
                    "POST", "/v1/completions", json=body, headers=voucher_header(cid)
                ) as response:
                    response.raise_for_status()
                    async for line in response.aiter_lines():
                        if not line.startswith("data: ") or line == "data: [DONE]":
                            continue
                        chunk = json.loads(line[6:])
                        if first is None and chunk["choices"][0]["text"]:
                            first = time.perf_counter() - t0
                        latent = chunk.get("latent", latent)
                ttfts.append(first if first is not None else time.perf_counter() - t0)
            else:
                response = await client.post(
                    "/v1/completions", json=body, headers=voucher_header(cid)
                )
                response.raise_for_status()
                latent = response.json()["latent"]
            latencies.append(time.perf_counter() - t0)
            if latent is None:
                raise LatentError("a served response carried no receipt")
            owed[cid] += Receipt.from_json(latent["receipt"]).price
            tokens += len(latent["output_token_ids"])
            proof_bytes += len(base64.b64decode(latent["proof"]))

    limits = httpx.Limits(max_connections=job.concurrency + 4)
    async with httpx.AsyncClient(base_url=job.url, timeout=600, limits=limits) as client:
        t0 = time.perf_counter()
        await asyncio.gather(*(worker(client, cid) for cid in job.channel_ids[: job.concurrency]))
        wall = time.perf_counter() - t0
    out: dict[str, Any] = {
        "requests": len(job.prompts),
        "concurrency": job.concurrency,
        "wall_s": wall,
        "output_tokens": tokens,
        "tokens_per_s": tokens / wall if wall else 0.0,
        "latency_s_mean": statistics.fmean(latencies) if latencies else 0.0,
        "proof_bytes_per_token": proof_bytes / tokens if tokens else 0.0,
    }
    if job.stream:
        ttft = _stats(ttfts)
        out |= {"ttft_s_mean": ttft["mean"], "ttft_s_p50": ttft["p50"], "ttft_s_p95": ttft["p95"]}
    return out, tuple(owed[cid] for cid in job.channel_ids)


async def run_serve_bench(
    model_path: Path,
    *,
    requests: int = 32,
    max_tokens: int = 32,
    concurrency: tuple[int, ...] = DEFAULT_CONCURRENCY,
    device: str | None = None,
    dtype: str | None = None,
) -> dict[str, Any]:
    """Measure bare vs served throughput; returns the JSON-able report."""
    from eth_account import Account

    from miner.bench_engine import run_engine_bench
    from miner.config import MinerConfig, PaymentConfig, PricingConfig, ServerConfig
    from miner.engine import InferenceEngine
    from miner.payment import ChannelView, InMemoryChannels, PaymentGate
    from miner.server import create_app, serve_in_loop
    from miner.types import GenerationRequest, SamplingParams

    engine = await asyncio.to_thread(
        InferenceEngine.load,
        model_path,
        device=device,
        dtype=dtype,
        max_batch_size=max(concurrency),
        model_id="bench",
    )
    vocab = engine.vocab_size
    prompts = [
        tuple((17 * i + 31 * j) % (vocab - 10) + 5 for j in range(8 + (i * 13) % 57))
        for i in range(requests)
    ]
    params = SamplingParams(max_tokens=max_tokens, temperature=0.0)
    gen_requests = [GenerationRequest(p, params) for p in prompts]

    hotkey = Account.from_key("0x" + "5e" * 32)
    renter = Account.from_key("0x" + "5f" * 32)
    escrow = "0x" + "e5" * 20
    token = "0x" + "70" * 20
    chain_id = 31337
    config = MinerConfig(
        model_path=str(model_path),
        server=ServerConfig(max_queue_depth=10_000),
        pricing=PricingConfig(),
        payment=PaymentConfig(escrow_address=escrow, token_address=token, chain_id=chain_id),
    )
    channels = InMemoryChannels()
    channel_ids = [i.to_bytes(32, "big") for i in range(1, max(concurrency) + 1)]
    for cid in channel_ids:
        channels.put(
            ChannelView(
                channel_id=cid,
                renter=renter.address,
                miner=hotkey.address,
                token=token,
                deposit=10**30,
                settled=0,
                session_key=None,
                closing=False,
                finalised=False,
            )
        )
    gate = PaymentGate(
        miner=hotkey.address, reader=channels, payment=config.payment, pricing=config.pricing
    )
    app = create_app(config, engine, hotkey=hotkey, gate=gate)
    owed = (0,) * len(channel_ids)
    pool = ProcessPoolExecutor(max_workers=1, mp_context=multiprocessing.get_context("spawn"))
    loop = asyncio.get_running_loop()

    async def served_pass(
        url: str, c: int, *, stream: bool, reqs: list[tuple[int, ...]]
    ) -> dict[str, Any]:
        nonlocal owed
        job = _ClientPass(
            url=url,
            concurrency=c,
            stream=stream,
            prompts=tuple(reqs),
            max_tokens=max_tokens,
            channel_ids=tuple(channel_ids),
            owed=owed,
            renter_key=bytes(renter.key),
            escrow=escrow,
            chain_id=chain_id,
        )
        figures, owed = await loop.run_in_executor(pool, _client_pass, job)
        return figures

    report: dict[str, Any] = {
        "model": str(model_path),
        "device": str(engine.device),
        "dtype": str(engine.dtype).removeprefix("torch."),
        "requests": requests,
        "max_tokens": max_tokens,
        "bare": {},
        "served": {},
        "served_stream": {},
    }
    try:
        async with serve_in_loop(app) as url:
            # warm-up: first forward passes, the client process, first HTTP connections
            await run_engine_bench(engine, gen_requests[:4], 4)
            await served_pass(url, 4, stream=False, reqs=prompts[:4])
            for c in concurrency:
                key = f"c{c}"
                report["bare"][key] = await run_engine_bench(engine, gen_requests, c)
                report["served"][key] = await served_pass(url, c, stream=False, reqs=prompts)
                report["served_stream"][key] = await served_pass(url, c, stream=True, reqs=prompts)
    finally:
        pool.shutdown()
    report["served_vs_bare"] = {
        key: report["served"][key]["tokens_per_s"] / report["bare"][key]["tokens_per_s"]
        for key in report["bare"]
    }
    first_c, last_c = f"c{concurrency[0]}", f"c{concurrency[-1]}"
    report["batching_speedup"] = {
        path: report[path][last_c]["tokens_per_s"] / report[path][first_c]["tokens_per_s"]
        for path in ("bare", "served")
    }
    bare_last = report["bare"][last_c]
    report["proof_bytes_per_token"] = bare_last["proof_bytes_per_token"]
    report["targets"] = {
        "served_ge_0.95_bare": all(r >= 0.95 for r in report["served_vs_bare"].values()),
        "proof_le_4_bytes_per_token": report["proof_bytes_per_token"] <= 4.0,
        "batched_ge_4x_sequential_gpu_only": report["batching_speedup"]["bare"] >= 4.0,
    }
    return report


def bench_serve(
    json_out: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
    model: Annotated[
        Path | None,
        typer.Option("--model", help="Model directory (default: build the tiny model)."),
    ] = None,
    requests: Annotated[int, typer.Option("--requests", help="Requests per pass.")] = 32,
    max_tokens: Annotated[int, typer.Option("--max-tokens")] = 32,
    device: Annotated[str | None, typer.Option("--device")] = None,
    dtype: Annotated[str | None, typer.Option("--dtype")] = None,
) -> None:
    """Tokens/s of the full server path vs the bare engine at concurrency 1 and 16."""
    with tempfile.TemporaryDirectory(prefix="latent-bench-") as tmp:
        if model is None:
            from miner.tiny_model import build_tiny_model

            model = build_tiny_model(Path(tmp) / "tiny", seed=0)
        report = asyncio.run(
            run_serve_bench(
                model, requests=requests, max_tokens=max_tokens, device=device, dtype=dtype
            )
        )
    if json_out:
        print(json.dumps(report, indent=2))
        return
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"serve bench: {report['device']} {report['dtype']}")
    for col in ("path", "concurrency", "tokens/s", "TTFT p50 (s)", "latency mean (s)"):
        table.add_column(col)
    for path in ("bare", "served", "served_stream"):
        for key, row in report[path].items():
            table.add_row(
                path,
                key[1:],
                f"{row['tokens_per_s']:.1f}",
                f"{row.get('ttft_s_p50', float('nan')):.4f}",
                f"{row['latency_s_mean']:.3f}",
            )
    console = Console()
    console.print(table)
    console.print(
        f"served/bare: {report['served_vs_bare']}  proof bytes/token: "
        f"{report['proof_bytes_per_token']:.2f}"
    )
