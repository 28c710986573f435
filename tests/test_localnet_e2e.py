"""README command 1, end to end: ``latent localnet --epochs N`` as a user runs it (anvil,
miners, one of them cheating, a validator, a paying renter behind the proxy, each an
ordinary ``latent`` process), then the books are checked from its JSON summary, which it
computes from chain reads and the proxy's receipts."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from chain.node import free_port


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def test_localnet_pays_the_honest_catches_the_cheater_and_balances_the_books(
    tmp_path: Path, tiny_model_path: Path
) -> None:
    state = tmp_path / "localnet"
    argv = [
        sys.executable, "-m", "latent", "localnet", "--epochs", "5", "--miners", "3",
        "--validators", "1", "--tempo", "10", "--port", str(free_port()),
        "--dashboard-port", "0", "--state", str(state), "--json",
    ]  # fmt: skip
    done = subprocess.run(argv, capture_output=True, text=True, timeout=600, check=False)
    assert done.returncode == 0, done.stderr[-3000:]
    summary = json.loads(done.stdout)
    by_role = {n["role"].split(" ")[0]: n for n in summary["neurons"]}
    cheater = next(n for n in summary["neurons"] if "(" in n["role"])
    honest = [by_role["miner-1"], by_role["miner-2"]]

    # The cheater earns nothing; the honest miners share the miners' incentive.
    assert cheater["incentive"] == 0.0 and cheater["emission_wei"] == 0
    assert cheater["pass_rate"] == 0.0
    assert all(m["incentive"] > 0 for m in honest)
    assert abs(sum(m["incentive"] for m in honest) - 1.0) < 1e-3
    assert by_role["validator-1"]["dividends"] > 0.99
    # Emission minted (plus escrow fees) equals what the epochs credited, to the unit.
    assert summary["minted_wei"] > 0
    assert summary["credited_wei"] == summary["minted_wei"] + summary["fees_wei"]
    assert summary["reserved_wei"] == summary["credited_wei"]
    # The renter paid exactly what its receipts prove (settled on-chain, fees included).
    assert summary["requests_ok"] > 0
    assert summary["renter_settled_wei"] == summary["renter_receipts_wei"] > 0
    # Every process it started is gone, and every role wrote its own log.
    assert not [pid for pid in summary["pids"] if _alive(pid)]
    logs = sorted(p.name for p in (state / "logs").iterdir())
    assert logs == [
        "miner-1.log",
        "miner-2.log",
        "miner-3.log",
        "renter-proxy.log",
        "validator-1.log",
    ]
