"""Gas of the Yuma epoch: the memory-array math within its recorded budget, the on-chain epoch
within the 5M-per-transaction limit (64 x 256 only under the heavy profile: its setup sends
~450 transactions)."""

from __future__ import annotations

import pytest
from eth_account.signers.local import LocalAccount
from hypothesis import settings
from web3 import Web3

from chain.epoch import MAX_STEP_GAS
from latent.gas import yuma

HEAVY = getattr(settings, "_current_profile", "default") == "heavy"

#: Budgets ~10% above the measured figures (610k, 1.65M, 31.3M); a regression fails here.
BUDGET = {
    "epoch_math_8x32": 700_000,
    "epoch_math_8x32_liquid_alpha": 1_850_000,
    "epoch_math_64x256": 34_500_000,
}


def test_epoch_math_gas_within_budget(w3: Web3, accounts: list[LocalAccount]) -> None:
    limit_before = int(w3.eth.get_block("latest")["gasLimit"])
    gas = yuma.measure_math(w3, accounts)
    for name, budget in BUDGET.items():
        assert 0 < gas[name] <= budget, (name, gas[name])
    assert gas["epoch_math_8x32"] < gas["epoch_math_64x256"]
    assert int(w3.eth.get_block("latest")["gasLimit"]) == limit_before


@pytest.mark.parametrize(
    ("rows", "n"),
    [(8, 32), pytest.param(64, 256, marks=pytest.mark.skipif(not HEAVY, reason="heavy profile"))],
)
def test_onchain_epoch_chunks_stay_under_5m(
    w3: Web3, accounts: list[LocalAccount], rows: int, n: int
) -> None:
    gas = yuma.measure_onchain(w3, accounts, rows, n)
    name = f"epoch_onchain_{rows}x{n}"
    assert 0 < gas[f"{name}_largest_chunk"] <= MAX_STEP_GAS
    assert 0 < gas[f"{name}_first_epoch_largest_chunk"] <= MAX_STEP_GAS
    assert gas[f"{name}_total"] >= gas[f"{name}_largest_chunk"]
