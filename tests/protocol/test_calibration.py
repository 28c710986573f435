"""Re-measures the honest deviations that ``ProofTolerances``' docstring cites.

Honest fp32 answers from the engine -- the challenge mix (prompts of 1-~200 tokens, 8-96 new
tokens, completion and chat, greedy and sampled with top-k/top-p) at batch sizes 1, 4 and
16 -- are verified by one prefill, and every deviation must use at most HALF of its
tolerance: the margin the defaults were chosen with. If a change to the engine, the sampling
rule or the kernels eats into it, this fails before honest miners start failing checks.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import torch
from transformers import AutoTokenizer

from miner.cheats import HONEST, build_engine
from miner.tiny_model import build_tiny_model
from miner.types import GenerationResult
from protocol.proof import DEFAULT_TOLERANCES, ProofVerdict, final_hidden_forward, verify_inference
from validator.challenge_prompts import ChallengeRequest, challenge_requests
from validator.gauntlet import serve_challenges
from validator.verify import load_reference

BATCH_SIZES = (1, 4, 16)
CHALLENGES = 189  # nine rounds of 1 + 4 + 16
TOL = DEFAULT_TOLERANCES


@pytest.fixture(scope="module")
def measured(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[tuple[Any, list[tuple[ChallengeRequest, GenerationResult, ProofVerdict]]]]:
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # the tiny model decodes fastest on one thread
    try:
        model_dir: Path = build_tiny_model(tmp_path_factory.mktemp("calibration"), seed=0)
        tokenizer = AutoTokenizer.from_pretrained(str(model_dir))
        challenges = challenge_requests(101, CHALLENGES, tokenizer)
        engine = build_engine(HONEST, model_dir)
        served, _ = asyncio.run(serve_challenges(engine, challenges, BATCH_SIZES))
        reference, _ = load_reference(model_dir)
        rows = []
        for challenge, (_, result) in zip(challenges, served, strict=True):
            verdict = verify_inference(
                reference,
                challenge.prompt_token_ids,
                result.output_token_ids,
                challenge.params,
                result.proof,
                seed=result.seed,
            )
            rows.append((challenge, result, verdict))
        yield reference, rows
    finally:
        torch.set_num_threads(threads)


def test_every_honest_answer_verifies(measured: Any) -> None:
    _, rows = measured
    assert all(v.ok for _, _, v in rows), [v.reason for _, _, v in rows if not v.ok]
    assert {c.params.greedy for c, _, _ in rows} == {True, False}


def test_hidden_commitments_within_half_tolerance(measured: Any) -> None:
    _, rows = measured
    verdicts = [v for _, _, v in rows]
    # Every committed value is found (near-ties at the k-th magnitude never moved one).
    assert min(v.min_chunk_match_fraction for v in verdicts) == 1.0
    # float16 rounding of the commitment bounds this at 2**-11 = 4.88e-4.
    assert max(v.max_hidden_rel_deviation for v in verdicts) <= TOL.hidden_rtol / 2


def test_logprobs_within_half_tolerance(measured: Any) -> None:
    reference, rows = measured
    worst = 0.0
    for challenge, result, _ in rows:
        prompt = list(challenge.prompt_token_ids)
        ids = torch.tensor([prompt + list(result.output_token_ids[:-1])])
        logits, _ = final_hidden_forward(reference, ids)
        logprobs = torch.log_softmax(logits[0, len(prompt) - 1 :].float(), dim=-1)
        tokens = torch.tensor(result.output_token_ids)
        ref = logprobs.gather(1, tokens[:, None])[:, 0]
        reported = torch.tensor(result.proof.token_logprobs, dtype=torch.float32)
        allowed = TOL.logprob_atol + TOL.logprob_rtol * ref.abs()
        worst = max(worst, float(((reported - ref).abs() / allowed).max()))
    assert worst <= 0.5


def test_greedy_and_replay_within_half_tolerance(measured: Any) -> None:
    _, rows = measured
    greedy = [v for c, _, v in rows if c.params.greedy]
    sampled = [v for c, _, v in rows if not c.params.greedy]
    assert max(v.max_greedy_gap for v in greedy) <= TOL.greedy_tie_margin / 2
    assert max(v.max_replay_distance for v in sampled) <= TOL.replay_margin / 2
    replayed = sum(v.replayed_tokens for v in sampled)
    exact = sum(v.replay_exact for v in sampled)
    assert replayed > 1000
    assert (replayed - exact) / replayed <= TOL.max_replay_miss_fraction / 2
