"""The cheat gauntlet on the tiny model: every cheat caught, honest miners never rejected.

One gauntlet run (module fixture, ~1 min on 2 busy cores with one torch thread): 100 checks
per cheat -- so ">= 99%" allows at most one miss -- and 1,000 honest checks, greedy and
sampled, at batch sizes 1, 2, 4, 8 and 16 (groups cycle over the sizes, so checks are
proportional to the size: 32 at batch size 1, 516 at 16).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from chain.errors import ConfigError
from miner.cheats import CHEAT_KINDS, CHEATS, HONEST, build_engine, tampered_prompt
from miner.tiny_model import build_tiny_model
from validator.challenge_prompts import challenge_requests
from validator.gauntlet import GauntletReport, run_gauntlet

CHECKS_PER_CHEAT = 100
HONEST_CHECKS = 1000
BATCH_SIZES = (1, 2, 4, 8, 16)
#: The cheats the verifier must catch on >= 99% of checks.
MUST_CATCH = (
    "other-weights",
    "perturbed-layer",
    "low-precision",
    "dropped-layers",
    "random-tokens",
    "replay",
    "tampered-prompt",
)


@pytest.fixture(scope="session")
def model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_tiny_model(tmp_path_factory.mktemp("gauntlet-tiny"), seed=0)


@pytest.fixture(scope="session")
def report(model_dir: Path) -> GauntletReport:
    """The full gauntlet (~80 s), computed once per test process (scripts/test hands each
    file to one pytest-xdist worker: ``--dist loadfile``)."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)  # the tiny model decodes several times faster on one thread
    try:
        return run_gauntlet(
            model_dir,
            checks_per_cheat=CHECKS_PER_CHEAT,
            honest_checks=HONEST_CHECKS,
            batch_sizes=BATCH_SIZES,
            seed=0,
        )
    finally:
        torch.set_num_threads(before)


@pytest.mark.parametrize("kind", MUST_CATCH)
def test_cheat_detected_on_99_percent_of_checks(report: GauntletReport, kind: str) -> None:
    summary = report.cheats[kind]
    assert summary.checks == CHECKS_PER_CHEAT
    assert summary.rejection_rate >= 0.99, summary.wrong_way


def test_fp16_is_caught_almost_always(report: GauntletReport) -> None:
    """fp16 sits at the commitment's float16 resolution (gauntlet module doc): measured 99%."""
    assert report.cheats["half-precision"].rejection_rate >= 0.95


def test_honest_miner_never_rejected(report: GauntletReport) -> None:
    honest = report.honest
    assert honest.checks >= 1000
    assert honest.rejected == 0, honest.wrong_way
    cells = honest.by_mode_and_batch
    for mode in ("greedy", "sampled"):
        for size in BATCH_SIZES:
            rejected, checks = cells[f"{mode}/bs{size}"]
            assert rejected == 0 and checks > 0


def test_honest_deviations_use_at_most_half_the_tolerances(report: GauntletReport) -> None:
    margins = report.honest_margins
    measured, floor = margins["min_chunk_match_fraction"]
    assert 1.0 - measured <= (1.0 - floor) / 2
    for key in ("max_greedy_gap", "max_replay_distance", "replay_miss_fraction"):
        measured, tolerance = margins[key]
        assert measured <= tolerance / 2, key


def test_slow_miner_passes_but_is_slower(report: GauntletReport) -> None:
    slow, honest = report.cheats["slow"], report.honest
    assert slow.rejected == 0, slow.wrong_way
    assert slow.ttft_s_mean > honest.ttft_s_mean
    assert slow.tokens_per_s < honest.tokens_per_s


def test_report_is_json_with_per_check_reasons(report: GauntletReport) -> None:
    data = json.loads(json.dumps(report.to_json()))
    assert set(data["detection_rates"]) == set(CHEAT_KINDS)
    assert len(data["checks"]) == HONEST_CHECKS + CHECKS_PER_CHEAT * len(CHEAT_KINDS)
    assert all(c["reason"] for c in data["checks"])
    assert data["verify_s"]["mean"] > 0
    assert "checks" not in report.to_json(with_checks=False)


def test_challenge_mix(model_dir: Path) -> None:
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(str(model_dir))
    challenges = challenge_requests(7, 400, tokenizer)
    assert challenges == challenge_requests(7, 400, tokenizer)
    lengths = [len(c.prompt_token_ids) for c in challenges]
    assert min(lengths) == 1 and 150 <= max(lengths) <= 260
    assert {c.kind for c in challenges} == {"text", "chat"}
    sampled = [c for c in challenges if not c.params.greedy]
    assert 100 < len(sampled) < 300
    assert all(c.params.seed is not None and c.body["seed"] == c.params.seed for c in sampled)
    assert all(0.6 <= c.params.temperature <= 1.2 for c in sampled)
    assert any(c.params.top_k for c in sampled) and any(c.params.top_p < 1 for c in sampled)
    assert all(8 <= c.params.max_tokens <= 96 for c in challenges)
    assert any("system" in [m["role"] for m in c.body.get("messages", [])] for c in challenges)


def test_tampered_prompt_always_differs() -> None:
    assert tampered_prompt((5,), 10) == (6,)
    assert tampered_prompt((1, 2), 10) == (2,)
    assert tampered_prompt((1, 2, 3), 10) == (1, 3)
    assert tampered_prompt(tuple(range(9)), 10) == (0, 3, 4, 5, 6, 7, 8)


def test_build_engine_names_the_kinds(model_dir: Path) -> None:
    assert "slow" in CHEATS and CHEATS["slow"].passes_verification
    assert build_engine(HONEST, model_dir).dtype == torch.float32
    assert build_engine("low-precision", model_dir).dtype == torch.bfloat16
    with pytest.raises(ConfigError, match="unknown miner kind"):
        build_engine("lazy", model_dir)
