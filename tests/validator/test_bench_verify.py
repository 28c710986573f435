"""``latent bench verify`` / ``latent bench gauntlet`` run and print well-formed JSON
(tiny sizes; the figures themselves are reported in the README, not judged here)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch

from latent.cli import main
from miner.tiny_model import build_tiny_model
from validator.bench_verify import TARGET_RATIO, run_verify_bench


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_tiny_model(tmp_path_factory.mktemp("bench-verify-tiny"), seed=0)


def test_verify_bench_reports_each_length_and_throughput(model_dir: Path) -> None:
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        report = run_verify_bench(model_dir, new_tokens=(8, 40), repeats=1, mix_checks=4)
    finally:
        torch.set_num_threads(threads)
    report = json.loads(json.dumps(report))
    rows = report["lengths"]
    assert [(r["new_tokens"], r["mode"]) for r in rows] == [
        (8, "greedy"),
        (8, "sampled"),
        (40, "greedy"),
        (40, "sampled"),
    ]
    assert all(r["generate_s"] > 0 and r["verify_s"] > 0 for r in rows)
    assert report["target_verify_over_generate"] == TARGET_RATIO
    assert report["context_extended_from"] is None
    throughput = report["throughput"]
    assert throughput["checks"] == throughput["passed"] == 4
    assert throughput["checks_per_minute"] > 0


@pytest.fixture
def restore_threads() -> Iterator[None]:
    """``--threads`` sets torch's global thread count; put it back."""
    threads = torch.get_num_threads()
    yield
    torch.set_num_threads(threads)


def test_cli_bench_verify_json(
    model_dir: Path, restore_threads: None, capsys: pytest.CaptureFixture[str]
) -> None:
    main(
        ["bench", "verify", "--json", "--model", str(model_dir),
         "--new-tokens", "4", "--repeats", "1", "--mix", "2", "--threads", "1"]
    )  # fmt: skip
    report = json.loads(capsys.readouterr().out)
    assert report["lengths"][0]["new_tokens"] == 4
    assert report["torch_threads"] == 1


def test_cli_bench_gauntlet_json(
    model_dir: Path, restore_threads: None, capsys: pytest.CaptureFixture[str]
) -> None:
    main(
        ["bench", "gauntlet", "--json", "--model", str(model_dir),
         "--checks", "1", "--honest-checks", "2", "--threads", "1"]
    )  # fmt: skip
    report = json.loads(capsys.readouterr().out)
    assert report["honest"]["checks"] == 2
    assert report["detection_rates"]["replay"] == 1.0
    assert "checks" not in report
