"""``latent bench verify``: what one check costs the validator, relative to the miner's work.

The subnet's economics rest on verification being much cheaper than generation: a miner
decodes token by token, the validator checks the whole completion with ONE prefill pass.
This benchmark measures both on the same completions:

* per length (64, 256 and 1024 new tokens by default), greedy and sampled: the batch-size-1
  generation time of the engine (submission to the last token) and the time of
  ``protocol.proof.verify_inference`` on the fp32 reference, and their ratio (target: <= 0.10
  on CPU for the tiny and small presets). EOS is disabled so that every completion has
  exactly the asked length (the verifier's cost depends on the length only). When prompt +
  1024 tokens exceed the model's context (both presets have 1024 positions), the context is
  extended in memory for models whose positions are rotary without scaling (no position
  weights: the compute is what a longer-context model would do), else the length is capped;
  the report says which.
* validator throughput: checks per minute of verification on the challenge mix
  (``validator.challenge_prompts``: prompts of 1-200 tokens, 8-96 new tokens, half greedy),
  answered by the honest engine at batch size 16.
"""

from __future__ import annotations

import asyncio
import os
import platform
import statistics
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
from transformers import AutoTokenizer, PreTrainedTokenizerBase

from chain.errors import ConfigError
from miner.engine import InferenceEngine
from miner.types import GenerationRequest, GenerationResult
from protocol.proof import verify_inference
from protocol.sampling import SamplingParams
from validator.challenge_prompts import challenge_requests
from validator.gauntlet import serve_challenges
from validator.verify import load_reference

__all__ = ["DEFAULT_NEW_TOKENS", "TARGET_RATIO", "run_verify_bench"]

DEFAULT_NEW_TOKENS = (64, 256, 1024)
#: verify time / generate time the subnet aims for (reported, not enforced).
TARGET_RATIO = 0.10
_PROMPT = "The validator checks every answer with one prefill pass of the reference model, so"


def _rotary_without_scaling(config: Any) -> bool:
    rope = getattr(config, "rope_scaling", None) or getattr(config, "rope_parameters", None)
    rope_type = (rope or {}).get("rope_type", (rope or {}).get("type", "default"))
    return bool(getattr(config, "rope_theta", None) or rope) and rope_type == "default"


def _fit_context(
    model: Any, tokenizer: PreTrainedTokenizerBase, needed: int
) -> tuple[int, int | None]:
    """Make room for ``needed`` positions if the model allows it (module doc); returns
    ``(max_context, extended_from)``."""
    current = int(getattr(model.config, "max_position_embeddings", needed) or needed)
    if needed <= current or not _rotary_without_scaling(model.config):
        return current, None
    model.config.max_position_embeddings = needed
    tokenizer.model_max_length = needed
    return needed, current


async def _generate_alone(
    engine: InferenceEngine, request: GenerationRequest
) -> tuple[GenerationResult, float]:
    t0 = time.perf_counter()
    result = await engine.generate(request)
    return result, time.perf_counter() - t0


async def _generate_each(
    engine: InferenceEngine, requests: Sequence[GenerationRequest]
) -> list[tuple[GenerationResult, float]]:
    """Serve ``requests`` one after the other (batch size 1), timing each."""
    await engine.start()
    try:
        return [await _generate_alone(engine, r) for r in requests]
    finally:
        await engine.stop()


def _describe(model_dir: Path, model: Any, preset: str | None) -> dict[str, Any]:
    config = model.config
    return {
        "path": str(model_dir),
        "preset": preset,
        "hidden_size": int(config.hidden_size),
        "layers": int(config.num_hidden_layers),
        "parameters": sum(p.numel() for p in model.parameters()),
        "dtype": "float32",
    }


def run_verify_bench(
    model_dir: str | Path,
    *,
    new_tokens: Sequence[int] = DEFAULT_NEW_TOKENS,
    repeats: int = 3,
    mix_checks: int = 48,
    seed: int = 0,
    preset: str | None = None,
) -> dict[str, Any]:
    """Measure verify vs generate time per length and the validator's checks per minute
    (module doc). Returns a JSON-able dict; times are the best of ``repeats`` runs (other
    load on the machine only ever adds time, to either side)."""
    if not new_tokens or min(new_tokens) < 1 or repeats < 1 or mix_checks < 1:
        raise ConfigError("need new token counts >= 1, repeats >= 1 and mix checks >= 1")
    model_dir = Path(model_dir)
    reference, _ = load_reference(model_dir)
    tokenizer = AutoTokenizer.from_pretrained(str(model_dir), local_files_only=True)
    prompt = tuple(int(i) for i in tokenizer(_PROMPT).input_ids)
    context, extended_from = _fit_context(reference, tokenizer, len(prompt) + max(new_tokens))
    miner_model, _ = load_reference(model_dir)  # the miner's own copy, same fp32 weights
    miner_model.config.max_position_embeddings = reference.config.max_position_embeddings
    engine = InferenceEngine(miner_model, tokenizer, model_id="bench", max_batch_size=16)
    engine.eos_token_ids = frozenset()  # every completion runs to its requested length

    rows: list[dict[str, Any]] = []
    for n in new_tokens:
        length = min(n, context - len(prompt))
        for mode in ("greedy", "sampled"):
            params = SamplingParams(max_tokens=length)
            if mode == "sampled":
                params = SamplingParams(
                    max_tokens=length, temperature=0.8, top_k=40, top_p=0.95, seed=seed + n
                )
            served = asyncio.run(
                _generate_each(engine, [GenerationRequest(prompt, params)] * repeats)
            )
            gen_times, verify_times = [], []
            for result, gen_s in served:
                t0 = time.perf_counter()
                verdict = verify_inference(
                    reference,
                    prompt,
                    result.output_token_ids,
                    params,
                    result.proof,
                    seed=result.seed,
                )
                verify_times.append(time.perf_counter() - t0)
                gen_times.append(gen_s)
                if not verdict.ok:
                    raise ConfigError(f"honest completion failed verification: {verdict.reason}")
            gen, ver = min(gen_times), min(verify_times)
            rows.append(
                {
                    "requested_new_tokens": n,
                    "new_tokens": length,
                    "mode": mode,
                    "prompt_tokens": len(prompt),
                    "generate_s": gen,
                    "verify_s": ver,
                    "verify_over_generate": ver / gen if gen > 0 else 0.0,
                }
            )

    challenges = challenge_requests(seed, mix_checks, tokenizer)
    answered, _ = asyncio.run(serve_challenges(engine, challenges, (16,)))
    passes: list[float] = []
    ok = 0
    for _ in range(repeats):  # best pass, as above
        t0 = time.perf_counter()
        ok = 0
        for challenge, (_, result) in zip(challenges, answered, strict=True):
            ok += verify_inference(
                reference,
                challenge.prompt_token_ids,
                result.output_token_ids,
                challenge.params,
                result.proof,
                seed=result.seed,
            ).ok
        passes.append(time.perf_counter() - t0)
    mix_s = min(passes)
    worst = max(r["verify_over_generate"] for r in rows)
    return {
        "model": _describe(model_dir, reference, preset),
        "device": "cpu",
        "torch_threads": torch.get_num_threads(),
        "cpu_count": os.cpu_count(),
        "load_average": list(os.getloadavg()) if hasattr(os, "getloadavg") else None,
        "python": platform.python_version(),
        "torch": torch.__version__,
        "max_context": context,
        "context_extended_from": extended_from,
        "repeats": repeats,
        "lengths": rows,
        "max_verify_over_generate": worst,
        "target_verify_over_generate": TARGET_RATIO,
        "meets_target": worst <= TARGET_RATIO,
        "throughput": {
            "checks": len(challenges),
            "passed": ok,
            "mean_prompt_tokens": statistics.fmean(len(c.prompt_token_ids) for c in challenges),
            "mean_output_tokens": statistics.fmean(len(r.output_token_ids) for _, r in answered),
            "verify_s_total": mix_s,
            "verify_ms_mean": 1e3 * mix_s / len(challenges),
            "checks_per_minute": 60.0 * len(challenges) / mix_s if mix_s > 0 else 0.0,
        },
    }
