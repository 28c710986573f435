"""``latent dashboard``: its help, and one actionable line when the chain is unreachable."""

from __future__ import annotations

import os
import subprocess
import sys


def latent(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "latent", *args],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "COLUMNS": "200"},
        stdin=subprocess.DEVNULL,
    )


def test_dashboard_help() -> None:
    result = latent("dashboard", "--help")
    assert result.returncode == 0, result.stderr
    for option in ("--network", "--rpc-url", "--port", "--validator"):
        assert option in result.stdout


def test_dashboard_unreachable_rpc_is_one_line() -> None:
    result = latent("dashboard", "--network", "localnet", "--rpc-url", "http://127.0.0.1:9")
    assert result.returncode == 1
    assert "Traceback" not in result.stderr + result.stdout
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error:"), result.stderr
    assert "cannot reach" in lines[0]
