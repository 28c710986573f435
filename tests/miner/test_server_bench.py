"""``latent bench serve`` runs end to end on the tiny model (small sizes; figures not judged)."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

from miner.bench_serve import run_serve_bench


def test_bench_serve_reports_both_paths_at_each_concurrency(tiny_model_path: Path) -> None:
    report = asyncio.run(
        run_serve_bench(
            tiny_model_path, requests=4, max_tokens=4, concurrency=(1, 2), preset="tiny"
        )
    )
    for path in ("bare", "served", "bare_stream", "served_stream"):
        assert set(report[path]) == {"c1", "c2"}
        for row in report[path].values():
            assert row["requests"] == 4
            assert row["output_tokens"] > 0
            assert row["tokens_per_s"] > 0
    # the same greedy requests produce the same tokens through the server as bare
    assert report["served"]["c1"]["output_tokens"] == report["bare"]["c1"]["output_tokens"]
    assert report["served_stream"]["c2"]["ttft_s_p50"] > 0
    assert 0 < report["proof_bytes_per_token"] <= 8
    assert report["served"]["c1"]["proof_bytes_per_token"] == report["proof_bytes_per_token"]
    assert set(report["served_vs_bare"]) == {"c1", "c2"}
    assert set(report["served_stream_vs_bare_stream"]) == {"c1", "c2"}


def test_bench_serve_json_describes_its_setup(tiny_model_path: Path) -> None:
    report = asyncio.run(
        run_serve_bench(tiny_model_path, requests=3, max_tokens=2, concurrency=(2,), rounds=2)
    )
    assert report["model"]["path"] == str(tiny_model_path)
    assert report["model"]["hidden_size"] == 64 and report["model"]["parameters"] > 0
    assert report["device"] == "cpu" and report["dtype"] == "float32"
    assert report["concurrency"] == [2] and report["requests"] == 3 and report["rounds"] == 2
    assert report["prompt_tokens_total"] > 0 and report["torch_threads"] >= 1
    for path in ("bare", "served", "bare_stream", "served_stream"):
        row = report[path]["c2"]
        assert len(row["tokens_per_s_rounds"]) == 2
        assert row["tokens_per_s"] in row["tokens_per_s_rounds"]
        assert row["loop_cpu_ms_per_request"] >= 0
    assert report["served"]["c2"]["client_cpu_s"] > 0
    assert set(report["server_path_loop_cpu_ms_per_request"]) == {"served", "served_stream"}
    assert report["ttft_s_p50"]["served_stream"]["c2"] > 0
    json.dumps(report)  # JSON-able as printed by --json
