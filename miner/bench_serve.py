"""``latent bench serve [--json]``: the full server path against the bare engine.

Same requests (token-id prompts of varied length, greedy, fixed ``max_tokens``) go through

- ``bare``: ``miner.bench_engine.run_engine_bench`` straight into ``engine.generate``;
- ``served``: HTTP ``/v1/completions`` on a uvicorn server in this process, every request
  paid with a real EIP-712 voucher (one channel per concurrent client, each voucher covering
  the receipts received so far), checked by the payment gate, answered with a signed receipt
  and a proof; channels are read from memory (a chain read is cached per channel anyway);
- ``bare_stream``: straight into ``engine.stream`` (every token's delta reaches the loop);
- ``served_stream``: ``served`` with ``stream: true`` (SSE).

``served`` is compared with ``bare`` and ``served_stream`` with ``bare_stream``; both TTFTs
run to the first delta with visible text (measured at the client for ``served_stream``).
Every level (concurrency 1 and 16 by default, ``--concurrency``) runs the four passes back to
back, ``--rounds`` times; ratios are medians of the per-round ratios (the machine's load
changes between rounds, rarely within one). ``loop_cpu_ms_per_request`` is the event loop
thread's CPU time per request (the engine steps in its own thread), and
``server_path_loop_cpu_ms_per_request`` its served - bare difference: the server path's
fixed cost, a figure that load elsewhere on the machine barely moves.

The HTTP load generator (signing vouchers, reading receipts) runs in a separate process, as
a renter would, on aiohttp (the client of vLLM's serving benchmark; httpx costs ~1 ms more
per request, which is the client's cost, not the server's) and signs vouchers straight
through libsecp256k1 (``client_cpu_s`` reports its CPU time). On a small CPU box it still
competes with the server for cores, so the served/bare ratio there is conservative. Server,
engine and client run on uvloop when it is installed (``protocol.serving.run_async``).

The model is ``--model PATH`` or a generated preset (``--preset tiny|small``, see
``miner.tiny_model.PRESETS``), built into a temporary directory. The JSON report names
everything needed to quote it: model and preset (with its architecture and parameter count),
device, dtype, torch threads, CPU count, load average, versions, requests, prompt and output
tokens, concurrency levels, rounds, per-path figures, the ratios, time to first token and
proof bytes per generated token.
"""

from __future__ import annotations

import asyncio
import base64
import json
import multiprocessing
import os
import platform
import statistics
import tempfile
import time
from collections.abc import Awaitable
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

import typer

from chain.cli_options import JsonOpt
from chain.cli_output import cli_console, print_table
from chain.errors import ConfigError, LatentError

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
    from protocol.serving import run_async

    return run_async(_client_pass_async(job))


async def _client_pass_async(job: _ClientPass) -> tuple[dict[str, Any], tuple[int, ...]]:
    import aiohttp
    from eth_account import Account

    from chain.vouchers import encode_voucher_header, sign_voucher
    from protocol.headers import VOUCHER_HEADER

    signer = Account.from_key(job.renter_key)
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
            signer,
            escrow=job.escrow,
            chain_id=job.chain_id,
            channel_id=cid,
            cumulative_amount=owed[cid],
        )
        return {VOUCHER_HEADER: encode_voucher_header(voucher)}

    async def worker(session: aiohttp.ClientSession, cid: bytes) -> None:
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
            async with session.post(
                "/v1/completions", json=body, headers=voucher_header(cid)
            ) as response:
                if response.status != 200:
                    raise LatentError(
                        f"served request failed: {response.status} {await response.text()}"
                    )
                if job.stream:
                    first: float | None = None
                    async for raw_line in response.content:
                        line = raw_line.strip()
                        if not line.startswith(b"data: ") or line == b"data: [DONE]":
                            continue
                        chunk = json.loads(line[6:])
                        if first is None and chunk["choices"][0]["text"]:
                            first = time.perf_counter() - t0
                        latent = chunk.get("latent", latent)
                    ttfts.append(first if first is not None else time.perf_counter() - t0)
                else:
                    latent = json.loads(await response.read())["latent"]
            latencies.append(time.perf_counter() - t0)
            if latent is None:
                raise LatentError("a served response carried no receipt")
            owed[cid] += int(latent["receipt"]["price"])  # rides on this channel's next voucher
            tokens += len(latent["output_token_ids"])
            proof_bytes += len(base64.b64decode(latent["proof"]))

    cpu0 = time.process_time()
    connector = aiohttp.TCPConnector(limit=job.concurrency + 4)
    timeout = aiohttp.ClientTimeout(total=600)
    async with aiohttp.ClientSession(job.url, connector=connector, timeout=timeout) as session:
        t0 = time.perf_counter()
        await asyncio.gather(*(worker(session, cid) for cid in job.channel_ids[: job.concurrency]))
        wall = time.perf_counter() - t0
    out: dict[str, Any] = {
        "requests": len(job.prompts),
        "concurrency": job.concurrency,
        "wall_s": wall,
        "output_tokens": tokens,
        "tokens_per_s": tokens / wall if wall else 0.0,
        "latency_s_mean": statistics.fmean(latencies) if latencies else 0.0,
        "proof_bytes_per_token": proof_bytes / tokens if tokens else 0.0,
        "client_cpu_s": time.process_time() - cpu0,
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
    preset: str | None = None,
    rounds: int = 1,
) -> dict[str, Any]:
    """Measure bare vs served throughput; returns the JSON-able report.

    Each of ``rounds`` runs bare, served and served_stream back to back at every concurrency
    level; a path's row is its median round (``tokens_per_s_rounds`` lists them all) and a
    ratio is the median of the per-round ratios. ``preset`` only labels the report (the caller
    built ``model_path`` from it)."""
    if rounds < 1:
        raise ConfigError(f"rounds must be >= 1, got {rounds}")
    from eth_account import Account

    from miner.bench_engine import run_engine_bench
    from miner.config import MinerConfig, PaymentConfig, PricingConfig, ServerConfig
    from miner.engine import InferenceEngine
    from miner.payment import ChannelView, InMemoryChannels, PaymentGate
    from miner.server import create_app
    from miner.types import GenerationRequest
    from protocol.sampling import SamplingParams
    from protocol.serving import serve_in_loop

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
        "bench": "serve",
        "model": _describe_model(engine, model_path, preset),
        "device": str(engine.device),
        "device_name": _device_name(engine),
        "dtype": str(engine.dtype).removeprefix("torch."),
        "torch_threads": _torch_threads(),
        "cpu_count": os.cpu_count(),
        "concurrency": list(concurrency),
        "requests": requests,
        "max_tokens": max_tokens,
        "rounds": rounds,
        "sampling": "greedy (temperature 0)",
        "prompt_tokens_total": sum(len(p) for p in prompts),
        "prompt_tokens_mean": statistics.fmean(len(p) for p in prompts) if prompts else 0.0,
        "paths": {
            "bare": "InferenceEngine.generate in-process, at most `concurrency` in flight",
            "served": "POST /v1/completions over HTTP with a voucher each, signed receipt, proof",
            "bare_stream": "InferenceEngine.stream in-process; TTFT to the first visible text",
            "served_stream": "served with stream: true (SSE); TTFT to the first visible text, "
            "measured at the client",
        },
        "client": "aiohttp in a separate process, one escrow channel per concurrent client",
        "event_loop": _loop_name(),
        "versions": _versions(),
        "bare": {},
        "served": {},
        "bare_stream": {},
        "served_stream": {},
    }

    async def timed(run: Awaitable[dict[str, Any]]) -> dict[str, Any]:
        cpu0, loop0 = time.process_time(), time.thread_time()
        row = await run
        # the engine steps in its own thread: this thread's CPU is the event loop's (HTTP,
        # payment, receipts, proof encoding, delivering deltas), little affected by load
        # elsewhere on the machine, unlike wall-clock figures
        row["loop_cpu_ms_per_request"] = 1e3 * (time.thread_time() - loop0) / row["requests"]
        row["server_cpu_s"] = time.process_time() - cpu0  # engine + event loop, this process
        return row

    load_before = os.getloadavg()[0]
    paths = ("bare", "served", "bare_stream", "served_stream")
    rows: dict[str, dict[str, list[dict[str, Any]]]] = {
        path: {f"c{c}": [] for c in concurrency} for path in paths
    }
    try:
        async with serve_in_loop(app) as url:
            # warm-up: first forward passes, the client process, first HTTP connections
            await run_engine_bench(engine, gen_requests[:4], 4)
            await served_pass(url, 4, stream=False, reqs=prompts[:4])
            # Rounds interleave the paths, so a burst of load elsewhere on the machine hits
            # one round of each rather than one path.
            for _ in range(rounds):
                for c in concurrency:
                    key = f"c{c}"
                    rows["bare"][key].append(await timed(run_engine_bench(engine, gen_requests, c)))
                    rows["served"][key].append(
                        await timed(served_pass(url, c, stream=False, reqs=prompts))
                    )
                    rows["bare_stream"][key].append(
                        await timed(run_engine_bench(engine, gen_requests, c, stream=True))
                    )
                    rows["served_stream"][key].append(
                        await timed(served_pass(url, c, stream=True, reqs=prompts))
                    )
    finally:
        pool.shutdown()
    for path in paths:
        for key, runs in rows[path].items():
            best = sorted(runs, key=lambda r: r["tokens_per_s"])[len(runs) // 2]  # median
            report[path][key] = best | {"tokens_per_s_rounds": [r["tokens_per_s"] for r in runs]}

    twins = {"served": "bare", "served_stream": "bare_stream"}

    def ratio(path: str, key: str) -> float:
        # median over rounds of served/bare measured back to back in the same round
        per_round = [
            s["tokens_per_s"] / b["tokens_per_s"]
            for s, b in zip(rows[path][key], rows[twins[path]][key], strict=True)
        ]
        return statistics.median(per_round)

    report["served_vs_bare"] = {key: ratio("served", key) for key in report["bare"]}
    report["server_path_loop_cpu_ms_per_request"] = {
        path: {
            key: statistics.median(
                s["loop_cpu_ms_per_request"] - b["loop_cpu_ms_per_request"]
                for s, b in zip(rows[path][key], rows[twins[path]][key], strict=True)
            )
            for key in report["bare"]
        }
        for path in twins
    }
    report["load_avg_1m"] = {"before": load_before, "after": os.getloadavg()[0]}
    report["served_stream_vs_bare_stream"] = {
        key: ratio("served_stream", key) for key in report["bare"]
    }
    report["ttft_s_p50"] = {  # both to the first visible text
        path: {key: row["ttft_s_p50"] for key, row in report[path].items()}
        for path in ("bare_stream", "served_stream")
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


def _describe_model(engine: Any, model_path: Path, preset: str | None) -> dict[str, Any]:
    config = engine.model.config
    return {
        "path": str(model_path),
        "preset": preset,
        "architecture": type(engine.model).__name__,
        "hidden_size": getattr(config, "hidden_size", None),
        "num_hidden_layers": getattr(config, "num_hidden_layers", None),
        "vocab_size": engine.vocab_size,
        "parameters": sum(p.numel() for p in engine.model.parameters()),
    }


def _device_name(engine: Any) -> str:
    import torch

    if engine.device.type == "cuda":
        return str(torch.cuda.get_device_name(engine.device))
    return platform.processor() or platform.machine()


def _torch_threads() -> int:
    import torch

    return int(torch.get_num_threads())


def _loop_name() -> str:
    loop = asyncio.get_running_loop()
    return f"{type(loop).__module__}.{type(loop).__name__}"


def _versions() -> dict[str, str]:
    import torch
    import transformers

    return {
        "python": platform.python_version(),
        "torch": torch.__version__,
        "transformers": transformers.__version__,
    }


def _parse_concurrency(value: str) -> tuple[int, ...]:
    try:
        levels = tuple(int(part) for part in value.split(",") if part.strip())
    except ValueError:
        levels = ()
    if not levels or any(c < 1 for c in levels):
        raise ConfigError(
            f"--concurrency must be a comma-separated list of ints >= 1, not {value!r}"
        )
    return levels


def bench_serve(
    json_out: JsonOpt = False,
    model: Annotated[
        Path | None,
        typer.Option("--model", help="Model directory (default: build --preset)."),
    ] = None,
    preset: Annotated[
        str,
        typer.Option(
            "--preset",
            help="Generated model to build when --model is absent: tiny, or small "
            "(hidden 512, 6 layers; a more realistic per-request compute size).",
        ),
    ] = "tiny",
    requests: Annotated[int, typer.Option("--requests", help="Requests per pass.")] = 32,
    max_tokens: Annotated[int, typer.Option("--max-tokens")] = 32,
    concurrency: Annotated[
        str, typer.Option("--concurrency", help="Comma-separated concurrency levels.")
    ] = "1,16",
    rounds: Annotated[
        int,
        typer.Option("--rounds", help="Repeat every pass; report medians (noisy machines)."),
    ] = 1,
    device: Annotated[str | None, typer.Option("--device")] = None,
    dtype: Annotated[str | None, typer.Option("--dtype")] = None,
) -> None:
    """Tokens/s of the full server path vs the bare engine at concurrency 1 and 16."""
    from protocol.serving import run_async

    levels = _parse_concurrency(concurrency)
    if requests < 1 or max_tokens < 1 or rounds < 1:
        raise ConfigError("--requests, --max-tokens and --rounds must be >= 1")
    with tempfile.TemporaryDirectory(prefix="latent-bench-") as tmp:
        if model is None:
            from miner.tiny_model import PRESETS, build_tiny_model

            if preset not in PRESETS:
                raise ConfigError(
                    f"unknown --preset {preset!r}; choose one of {', '.join(PRESETS)}"
                )
            model = build_tiny_model(Path(tmp) / preset, seed=0, preset=preset)
            label: str | None = preset
        else:
            label = None
        report = run_async(
            run_serve_bench(
                model,
                requests=requests,
                max_tokens=max_tokens,
                concurrency=levels,
                device=device,
                dtype=dtype,
                preset=label,
                rounds=rounds,
            )
        )
    if json_out:
        print(json.dumps(report, indent=2))
        return
    from rich.table import Table

    name = report["model"]["preset"] or report["model"]["path"]
    table = Table(title=f"serve bench: {name} on {report['device']} {report['dtype']}")
    for col in ("path", "concurrency", "tokens/s", "TTFT p50 (s)", "latency mean (s)"):
        table.add_column(col)
    for path in ("bare", "served", "bare_stream", "served_stream"):
        for key, row in report[path].items():
            table.add_row(
                path,
                key[1:],
                f"{row['tokens_per_s']:.1f}",
                f"{row.get('ttft_s_p50', float('nan')):.4f}",
                f"{row['latency_s_mean']:.3f}",
            )
    console = cli_console()
    print_table(table, console)

    def fmt(ratios: dict[str, float]) -> str:
        return ", ".join(f"c{key[1:]} {value:.3f}" for key, value in ratios.items())

    console.print(
        f"served/bare: {fmt(report['served_vs_bare'])}; "
        f"served_stream/bare_stream: {fmt(report['served_stream_vs_bare_stream'])}; "
        f"proof bytes/token: {report['proof_bytes_per_token']:.2f}"
    )
