"""``latent bench serve`` runs end to end on the tiny model (small sizes; figures not judged)."""

from __future__ import annotations

import asyncio
from pathlib import Path

from miner.bench_serve import run_serve_bench


def test_bench_serve_reports_both_paths_at_each_concurrency(tiny_model_path: Path) -> None:
    report = asyncio.run(
        run_serve_bench(tiny_model_path, requests=4, max_tokens=4, concurrency=(1, 2))
    )
    for path in ("bare", "served", "served_stream"):
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
