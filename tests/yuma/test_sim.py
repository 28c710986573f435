"""``latent sim``: the scripted validators earn what Yuma 3 says they should."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from latent.sim import SimConfig, app, simulate


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_weight_copier_earns_less_than_honest_under_commit_reveal(seed: int) -> None:
    result = simulate(SimConfig(seed=seed, epochs=20, commit_reveal=True))
    honest = result.mean_yield("honest")
    assert result.mean_yield("copier") < 0.95 * honest
    assert result.mean_yield("lazy") < honest
    assert result.mean_yield("colluder") < honest
    # The colluders' bad miner never gets past consensus.
    assert all(r.incentive["bad-miner"] < 1e-9 for r in result.records)


def test_without_commit_reveal_copying_pays() -> None:
    """The contrast that shows commit-reveal is what defeats the copier."""
    result = simulate(SimConfig(seed=0, epochs=20, commit_reveal=False))
    assert result.mean_yield("copier") > 0.98 * result.mean_yield("honest")


def test_sim_command_prints_tables_and_json() -> None:
    runner = CliRunner()
    out = runner.invoke(app, ["--epochs", "3"])
    assert out.exit_code == 0, out.output
    assert "dividends per epoch" in out.output and "weight copier earned" in out.output
    out = runner.invoke(app, ["--epochs", "4", "--json"])
    assert out.exit_code == 0, out.output
    payload = json.loads(out.output)
    assert len(payload["epochs"]) == 4
    assert payload["mean_yield"]["copier"] < payload["mean_yield"]["honest"]
