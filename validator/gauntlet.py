"""The cheat gauntlet: named cheating miners, and how often the verifier catches each.

Every cheat is a real :class:`miner.engine.InferenceEngine` built from the honest model
directory (:func:`build_engine`), so a miner process can serve it (``--cheat KIND``) and the
validator sees exactly what a dishonest miner would send: tokens, a proof, a seed. Cheats
that only change the model (weights, precision, depth) are the plain engine over a changed
model; cheats that change what is answered are small subclasses overriding the public
``generate`` / ``stream``.

:func:`run_gauntlet` serves seeded challenges (``validator.challenge_prompts``) through the
honest engine and every cheat at several batch sizes (batch neighbours are the other
challenges of the group), verifies every answer with ONE prefill of the fp32 reference model
(``protocol.proof.verify_inference``), and reports detection rates per cheat, the honest
false-positive rate (greedy and sampled, per batch size), the honest deviations against the
tolerances, verification time and every check's reason. ``latent bench gauntlet``
(``validator.bench_cli``) prints it.

The cheats themselves (what each does, and how strong) are ``miner.cheats``.
"""

from __future__ import annotations

import asyncio
import dataclasses
import statistics
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from transformers import AutoTokenizer

from chain.errors import ConfigError
from miner.cheats import CHEAT_KINDS, CHEATS, HONEST, build_engine
from miner.engine import InferenceEngine
from miner.types import GenerationRequest, GenerationResult
from protocol.proof import (
    DEFAULT_TOLERANCES,
    ProofTolerances,
    ProofVerdict,
    verify_inference,
)
from validator.challenge_prompts import ChallengeRequest, challenge_requests
from validator.verify import load_reference

__all__ = [
    "CheckRecord",
    "EngineSummary",
    "GauntletReport",
    "check_answer",
    "honest_margins",
    "run_gauntlet",
    "serve_challenges",
]

# ---------------------------------------------------------------------------------------------
# Serving and verifying
# ---------------------------------------------------------------------------------------------


def _batches(n: int, batch_sizes: Sequence[int]) -> list[tuple[int, int, int]]:
    """Groups of ``n`` challenges, ``(start, stop, batch_size)``, cycling over
    ``batch_sizes``: every size gets the same number of groups, so checks are proportional
    to the batch size and serving time (decode steps) is about the same per size."""
    groups: list[tuple[int, int, int]] = []
    pos, i = 0, 0
    while pos < n:
        size = batch_sizes[i % len(batch_sizes)]
        stop = min(n, pos + size)
        groups.append((pos, stop, size))
        pos, i = stop, i + 1
    return groups


async def serve_challenges(
    engine: InferenceEngine,
    challenges: Sequence[ChallengeRequest],
    batch_sizes: Sequence[int],
) -> tuple[list[tuple[int, GenerationResult]], float]:
    """Serve ``challenges`` through ``engine`` in groups cycling over ``batch_sizes``, each group
    concurrently (its members are each other's batch neighbours). Returns
    ``[(batch_size, result)]`` in challenge order and the serving wall time."""
    await engine.start()
    out: list[tuple[int, GenerationResult]] = []
    t0 = time.perf_counter()
    try:
        for start, stop, size in _batches(len(challenges), batch_sizes):
            group = [
                GenerationRequest(c.prompt_token_ids, c.params) for c in challenges[start:stop]
            ]
            results = await asyncio.gather(*(engine.generate(r) for r in group))
            out += [(size, r) for r in results]
    finally:
        await engine.stop()
    return out, time.perf_counter() - t0


@dataclass(frozen=True)
class CheckRecord:
    """One verified answer."""

    engine: str
    batch_size: int
    kind: str  # "text" | "chat"
    greedy: bool
    prompt_tokens: int
    output_tokens: int
    ok: bool
    reason: str
    #: Lowest fraction of a chunk's committed values that matched (1.0 for honest answers).
    min_chunk_match: float
    verify_s: float
    ttft_s: float
    elapsed_s: float


def check_answer(
    reference: Any,
    engine_name: str,
    challenge: ChallengeRequest,
    batch_size: int,
    result: GenerationResult,
    tolerances: ProofTolerances | None = None,
) -> tuple[CheckRecord, ProofVerdict]:
    """Verify ``result`` against the challenge the validator sent (never the prompt the miner
    claims) with one prefill of ``reference``."""
    t0 = time.perf_counter()
    verdict = verify_inference(
        reference,
        challenge.prompt_token_ids,
        result.output_token_ids,
        challenge.params,
        result.proof,
        seed=result.seed,
        tolerances=tolerances,
    )
    record = CheckRecord(
        engine=engine_name,
        batch_size=batch_size,
        kind=challenge.kind,
        greedy=challenge.params.greedy,
        prompt_tokens=len(challenge.prompt_token_ids),
        output_tokens=len(result.output_token_ids),
        ok=verdict.ok,
        reason=verdict.reason,
        min_chunk_match=verdict.min_chunk_match_fraction,
        verify_s=time.perf_counter() - t0,
        ttft_s=result.time_to_first_token_s,
        elapsed_s=result.elapsed_s,
    )
    return record, verdict


# ---------------------------------------------------------------------------------------------
# The report
# ---------------------------------------------------------------------------------------------


def _reason_class(reason: str) -> str:
    """A reason without its numbers, for histograms."""
    for key in (
        "hidden-state commitment",
        "greedy token",
        "log-prob of token",
        "not the seeded draw",
        "top-p",
        "top-",
        "probability 0",
        "seed differs",
        "proof covers",
        "chunk layout",
    ):
        if key in reason:
            return key
    return reason


@dataclass(frozen=True)
class EngineSummary:
    """Outcome for one miner kind."""

    name: str
    description: str
    #: True when the miner's answers are honest (``honest``, ``slow``): rejections are
    #: false positives.
    should_pass: bool
    checks: int
    rejected: int
    #: ``rejected / checks``: the detection rate of a cheat, the false-positive rate of an
    #: honest miner.
    rejection_rate: float
    #: Rejections per (greedy|sampled, batch size): ``{"greedy/bs16": [rejected, checks]}``.
    by_mode_and_batch: dict[str, list[int]]
    reasons: dict[str, int]
    #: Highest ``min_chunk_match`` over the checks: how close the closest answer came to
    #: passing the commitment check (tolerance: ``min_chunk_match_fraction``).
    max_chunk_match: float
    #: Up to 5 reasons of checks that went the wrong way (missed cheats, false positives).
    wrong_way: list[str]
    output_tokens: int
    serve_wall_s: float
    #: Generated tokens per second of serving wall time, and mean time to first token.
    tokens_per_s: float
    ttft_s_mean: float


def _summarise(
    name: str,
    description: str,
    should_pass: bool,
    records: Sequence[CheckRecord],
    serve_wall_s: float,
) -> EngineSummary:
    rejected = [r for r in records if not r.ok]
    by: dict[str, list[int]] = {}
    for r in records:
        key = f"{'greedy' if r.greedy else 'sampled'}/bs{r.batch_size}"
        cell = by.setdefault(key, [0, 0])
        cell[0] += not r.ok
        cell[1] += 1
    wrong = [r for r in records if r.ok != should_pass]
    tokens = sum(r.output_tokens for r in records)
    return EngineSummary(
        name=name,
        description=description,
        should_pass=should_pass,
        checks=len(records),
        rejected=len(rejected),
        rejection_rate=len(rejected) / max(1, len(records)),
        by_mode_and_batch=dict(sorted(by.items())),
        reasons=dict(Counter(_reason_class(r.reason) for r in records).most_common()),
        max_chunk_match=max((r.min_chunk_match for r in records), default=0.0),
        wrong_way=[f"{r.kind} bs{r.batch_size} p{r.prompt_tokens}: {r.reason}" for r in wrong[:5]],
        output_tokens=tokens,
        serve_wall_s=serve_wall_s,
        tokens_per_s=tokens / serve_wall_s if serve_wall_s > 0 else 0.0,
        ttft_s_mean=statistics.fmean(r.ttft_s for r in records) if records else 0.0,
    )


def honest_margins(verdicts: Sequence[ProofVerdict], tol: ProofTolerances) -> dict[str, Any]:
    """Largest honest deviations, each as ``[measured, tolerance]`` (the chunk match is a
    floor, the others ceilings)."""
    replayed = sum(v.replayed_tokens for v in verdicts)
    exact = sum(v.replay_exact for v in verdicts)
    return {
        "min_chunk_match_fraction": [
            min((v.min_chunk_match_fraction for v in verdicts), default=1.0),
            tol.min_chunk_match_fraction,
        ],
        "max_hidden_rel_deviation": [
            max((v.max_hidden_rel_deviation for v in verdicts), default=0.0),
            tol.hidden_rtol,
        ],
        # Allowed: atol + rtol * |log-prob| (float16 on the wire is relative).
        "max_logprob_deviation": [
            max((v.max_logprob_deviation for v in verdicts), default=0.0),
            {"atol": tol.logprob_atol, "rtol": tol.logprob_rtol},
        ],
        "max_greedy_gap": [
            max((v.max_greedy_gap for v in verdicts), default=0.0),
            tol.greedy_tie_margin,
        ],
        "max_replay_distance": [
            max((v.max_replay_distance for v in verdicts), default=0.0),
            tol.replay_margin,
        ],
        "replay_miss_fraction": [
            (replayed - exact) / replayed if replayed else 0.0,
            tol.max_replay_miss_fraction,
        ],
    }


@dataclass(frozen=True)
class GauntletReport:
    """Everything :func:`run_gauntlet` measured (``to_json`` for ``--json``)."""

    model: dict[str, Any]
    seed: int
    batch_sizes: tuple[int, ...]
    honest: EngineSummary
    cheats: dict[str, EngineSummary]
    #: ``[measured, tolerance]`` per deviation, over the honest checks.
    honest_margins: dict[str, Any]
    verify_s: dict[str, float]
    wall_s: float
    checks: list[CheckRecord] = field(default_factory=list)

    @property
    def detection_rates(self) -> dict[str, float]:
        """Rejected fraction per cheat (``slow`` should be 0: it is honest)."""
        return {k: s.rejection_rate for k, s in self.cheats.items()}

    def to_json(self, *, with_checks: bool = True) -> dict[str, Any]:
        """A JSON-able dict (per-check records included unless ``with_checks`` is False)."""
        data = dataclasses.asdict(self)
        data["batch_sizes"] = list(self.batch_sizes)
        data["detection_rates"] = self.detection_rates
        if not with_checks:
            data.pop("checks")
        return data


def _model_info(model_dir: Path, reference: Any, preset: str | None) -> dict[str, Any]:
    config = reference.config
    return {
        "path": str(model_dir),
        "preset": preset,
        "dtype": str(next(reference.parameters()).dtype).removeprefix("torch."),
        "hidden_size": int(config.hidden_size),
        "layers": int(config.num_hidden_layers),
        "parameters": sum(p.numel() for p in reference.parameters()),
        "torch_threads": torch.get_num_threads(),
    }


def _percentile(ordered: Sequence[float], q: float) -> float:
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else 0.0


def run_gauntlet(
    model_dir: str | Path,
    *,
    checks_per_cheat: int = 100,
    honest_checks: int = 1000,
    batch_sizes: Sequence[int] = (1, 4, 16),
    seed: int = 0,
    cheats: Sequence[str] = CHEAT_KINDS,
    preset: str | None = None,
    progress: Callable[[str], None] | None = None,
) -> GauntletReport:
    """Serve seeded challenges through the honest engine and every cheat in ``cheats``, at
    ``batch_sizes`` (groups cycle over them: checks are proportional to the size), and verify every answer with one
    prefill of the fp32 reference (tolerances for fp32: :data:`DEFAULT_TOLERANCES`).

    Each miner gets its own challenge set (``challenge_requests(seed + i, ...)``), so no
    cheat is tuned to the honest run. ``preset`` only labels the report.
    """
    if checks_per_cheat < 0 or honest_checks < 1 or not batch_sizes:
        raise ConfigError("need honest_checks >= 1, checks_per_cheat >= 0 and a batch size")
    t_start = time.perf_counter()
    model_dir = Path(model_dir)
    reference, _ = load_reference(model_dir)
    tokenizer = AutoTokenizer.from_pretrained(str(model_dir), local_files_only=True)
    records: list[CheckRecord] = []
    summaries: dict[str, EngineSummary] = {}
    honest_verdicts: list[ProofVerdict] = []
    miners = [(HONEST, honest_checks)] + [(k, checks_per_cheat) for k in cheats]
    for index, (kind, n) in enumerate(miners):
        if n == 0:
            continue
        challenges = challenge_requests(seed + index, n, tokenizer)
        engine = build_engine(kind, model_dir, seed=seed + 1)
        served, wall = asyncio.run(serve_challenges(engine, challenges, batch_sizes))
        mine: list[CheckRecord] = []
        for challenge, (size, result) in zip(challenges, served, strict=True):
            record, verdict = check_answer(reference, kind, challenge, size, result)
            mine.append(record)
            if kind == HONEST:
                honest_verdicts.append(verdict)
        cheat = CHEATS.get(kind)
        summaries[kind] = _summarise(
            kind,
            cheat.description if cheat else "the pinned model, fp32",
            cheat.passes_verification if cheat else True,
            mine,
            wall,
        )
        records += mine
        if progress is not None:
            s = summaries[kind]
            progress(f"{kind}: {s.rejected}/{s.checks} rejected, {wall:.1f}s serving")
    verify_times = sorted(r.verify_s for r in records)
    honest = summaries.pop(HONEST)
    return GauntletReport(
        model=_model_info(model_dir, reference, preset),
        seed=seed,
        batch_sizes=tuple(batch_sizes),
        honest=honest,
        cheats=summaries,
        honest_margins=honest_margins(honest_verdicts, DEFAULT_TOLERANCES),
        verify_s={
            "mean": statistics.fmean(verify_times) if verify_times else 0.0,
            "p50": _percentile(verify_times, 0.5),
            "p95": _percentile(verify_times, 0.95),
            "total": sum(verify_times),
        },
        wall_s=time.perf_counter() - t_start,
        checks=records,
    )
