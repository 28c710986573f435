"""Gas of the Yuma epoch math (``YumaEpoch`` over memory arrays, through ``YumaHarness``).

The scenario is a realistic epoch: every validator scores every miner uid (true quality
plus noise, max-upscaled u16 like the chain stores weights), validator uids get no
weight, and bonds come from a first epoch so the measured one carries bonds over. This is
the pure math; the storage-backed, chunked coordinator adds storage reads and writes.
"""

from __future__ import annotations

import random

from eth_account.signers.local import LocalAccount
from web3 import Web3

from chain.client import deploy_contract
from chain.yuma import fixed
from chain.yuma.abi import inputs_to_abi
from chain.yuma.types import U16_MAX, EpochInputs, YumaParams

SIZES = ((8, 32), (64, 256))


def benchmark_inputs(
    rows: int, n: int, *, liquid_alpha: bool = False, seed: int = 1
) -> EpochInputs:
    """A realistic epoch of ``rows`` validators over ``n`` uids, bonds from a prior epoch."""
    rng = random.Random(seed)
    validators = list(range(rows))
    quality = [0.0 if j < rows else rng.uniform(0.2, 1.0) for j in range(n)]
    weights = []
    for _ in range(rows):
        scores = [q * (1.0 + rng.gauss(0.0, 0.05)) if q else 0.0 for q in quality]
        top = max(scores) or 1.0
        weights.append([round(max(s, 0.0) / top * U16_MAX) for s in scores])
    first = EpochInputs(
        n=n,
        validator_uids=validators,
        stakes=[rng.randint(1_000, 100_000) * 10**18 for _ in range(rows)],
        permits=[True] * rows,
        last_update=[990] * rows,
        registration_blocks=[0] * n,
        weights=weights,
        bonds=[[0] * n for _ in range(rows)],
        current_block=1_000,
        last_epoch_block=980,
        minted=20 * 10**18,
        fees=10**17,
        params=YumaParams(liquid_alpha=liquid_alpha),
    )
    bonds = fixed.epoch(first).bonds
    return EpochInputs(
        **{**first.__dict__, "bonds": bonds, "current_block": 1_020, "last_epoch_block": 1_000}
    )


#: The memory-array epoch at 64 x 256 needs about 31M gas, more than anvil's default 30M
#: block: the scenario raises the block gas limit to this while it runs, then restores it.
MEASURE_BLOCK_GAS = 100_000_000


def _set_block_gas_limit(w3: Web3, limit: int) -> None:
    w3.provider.make_request("anvil_setBlockGasLimit", [hex(limit)])  # type: ignore[arg-type]
    w3.provider.make_request("evm_mine", [])  # type: ignore[arg-type]


def measure(w3: Web3, accounts: list[LocalAccount]) -> dict[str, int]:
    """Receipt gas of one ``measureEpoch`` transaction per size (calldata included)."""
    harness, receipt = deploy_contract(w3, "YumaHarness", sender=accounts[0])
    gas = {"harness_deploy": int(receipt["gasUsed"])}
    cases = [(r, n, False) for r, n in SIZES] + [(8, 32, True)]
    previous = int(w3.eth.get_block("latest")["gasLimit"])
    _set_block_gas_limit(w3, max(previous, MEASURE_BLOCK_GAS))
    try:
        for rows, n, liquid in cases:
            name = f"epoch_math_{rows}x{n}" + ("_liquid_alpha" if liquid else "")
            tx = harness.transact(
                "measureEpoch", inputs_to_abi(benchmark_inputs(rows, n, liquid_alpha=liquid)),
                sender=accounts[0], gas=MEASURE_BLOCK_GAS - 1,
            )  # fmt: skip
            gas[name] = int(tx["gasUsed"])
    finally:
        _set_block_gas_limit(w3, previous)
    return gas
