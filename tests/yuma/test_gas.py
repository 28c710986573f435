"""Gas of the memory-array Yuma epoch stays within its recorded budget."""

from __future__ import annotations

from eth_account.signers.local import LocalAccount
from web3 import Web3

from latent.gas import yuma

#: Budgets ~10% above the measured figures (610k, 1.65M, 31.3M); a regression fails here.
BUDGET = {
    "epoch_math_8x32": 700_000,
    "epoch_math_8x32_liquid_alpha": 1_850_000,
    "epoch_math_64x256": 34_500_000,
}


def test_epoch_math_gas_within_budget(w3: Web3, accounts: list[LocalAccount]) -> None:
    limit_before = int(w3.eth.get_block("latest")["gasLimit"])
    gas = yuma.measure(w3, accounts)
    for name, budget in BUDGET.items():
        assert 0 < gas[name] <= budget, (name, gas[name])
    assert gas["epoch_math_8x32"] < gas["epoch_math_64x256"]
    assert int(w3.eth.get_block("latest")["gasLimit"]) == limit_before
