"""CLI bad input that needs its own process (environment, another repo root): one actionable
line on stderr, no traceback, non-zero exit. The in-process cases are in test_cli_errors.py."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from chain.paths import NODE_MODULES


def latent(
    *args: str, env: dict[str, str] | None = None, cwd: Path | None = None
) -> subprocess.CompletedProcess[str]:
    full_env = {**os.environ, "COLUMNS": "200", **(env or {})}
    return subprocess.run(
        [sys.executable, "-m", "latent", *args],
        capture_output=True,
        text=True,
        timeout=120,
        env=full_env,
        cwd=cwd,
        stdin=subprocess.DEVNULL,
    )


def assert_one_line_error(result: subprocess.CompletedProcess[str], *fragments: str) -> None:
    assert result.returncode != 0
    assert "Traceback" not in result.stderr + result.stdout
    lines = [line for line in result.stderr.strip().splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error:")
    for fragment in fragments:
        assert fragment in lines[0]


def test_wrong_password_from_env(tmp_path: Path) -> None:
    env = {"LATENT_WALLET_DIR": str(tmp_path), "LATENT_WALLET_PASSWORD": "first"}
    created = latent("wallet", "create", "--wallet", "w", env=env)
    assert created.returncode == 0, created.stderr
    result = latent(
        "wallet",
        "show",
        "--wallet",
        "w",
        "--unlock",
        env={**env, "LATENT_WALLET_PASSWORD": "second"},
    )
    assert_one_line_error(result, "wrong password")


def test_compile_error(tmp_path: Path) -> None:
    root = tmp_path / "repo"
    (root / "contracts").mkdir(parents=True)
    (root / "node_modules").symlink_to(NODE_MODULES)
    (root / "contracts" / "Bad.sol").write_text(
        "// SPDX-License-Identifier: MIT\npragma solidity ^0.8.24;\ncontract Bad { uint x = ; }\n"
    )
    result = latent("compile", env={"LATENT_ROOT": str(root)})
    assert_one_line_error(result, "contracts/Bad.sol:3", "ParserError")


@pytest.mark.parametrize("args", [["--help"], ["wallet", "--help"], ["bench", "--help"]])
def test_help_works(args: list[str]) -> None:
    result = latent(*args)
    assert result.returncode == 0
    assert "Usage" in result.stdout


def test_usage_error_is_one_line_from_the_console_entry_point() -> None:
    result = latent("renter", "open", "--amount", "5")
    assert result.returncode == 2
    assert_one_line_error(result, "Missing option '--miner'", "(see 'latent renter open -h')")


def test_renter_and_dashboard_code_does_not_load_torch() -> None:
    """The proxy, the dashboard and ``latent -h`` import the wire format, never torch (2 s)."""
    code = (
        "import sys, latent.cli, latent.dashboard.app, renter.app, renter.proxy_cli; "
        "import protocol.openai, protocol.proof, protocol.sampling; "
        "sys.exit('torch' in sys.modules)"
    )
    assert subprocess.run([sys.executable, "-c", code], timeout=120).returncode == 0


def test_serving_commands_offer_an_access_log() -> None:
    for command in (["miner", "run"], ["renter", "proxy"]):
        result = latent(*command, "--help")
        assert result.returncode == 0 and "--access-log" in result.stdout
