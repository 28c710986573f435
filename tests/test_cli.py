"""CLI bad input: one actionable line on stderr, no traceback, non-zero exit."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from chain.node import AnvilNode
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


def test_unreachable_rpc() -> None:
    result = latent("deploy", "--network", "localnet", "--rpc-url", "http://127.0.0.1:9")
    assert_one_line_error(result, "cannot reach", "http://127.0.0.1:9")


def test_wrong_chain_id_for_named_network(anvil: AnvilNode) -> None:
    result = latent("deploy", "--network", "sepolia", "--rpc-url", anvil.rpc_url)
    assert_one_line_error(result, "chain id 31337", "11155111")


def test_unknown_network() -> None:
    assert_one_line_error(latent("deploy", "--network", "moon"), "unknown network 'moon'")


def test_missing_keystore(anvil: AnvilNode, tmp_path: Path) -> None:
    result = latent(
        "deploy", "--network", "localnet", "--rpc-url", anvil.rpc_url,
        "--keystore", str(tmp_path / "missing.json"),
    )  # fmt: skip
    assert_one_line_error(result, "no keystore at", "latent wallet create")


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


def test_usage_error_is_not_a_traceback() -> None:
    result = latent("renter", "open", "--amount", "5")
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    assert "Missing option '--miner'" in result.stderr
