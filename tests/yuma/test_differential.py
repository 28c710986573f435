"""Differential test: ``YumaEpoch.sol`` (through ``YumaHarness``) equals ``chain.yuma.fixed``
bit for bit, over several consecutive epochs with bonds carried over."""

from __future__ import annotations

import pytest
from eth_account.signers.local import LocalAccount
from hypothesis import given
from hypothesis import strategies as st
from web3 import Web3
from yuma_strategies import epoch_inputs, next_epoch

from chain.client import Contract, deploy_contract
from chain.errors import ContractRevert
from chain.yuma import fixed
from chain.yuma.abi import inputs_to_abi, outputs_from_abi
from chain.yuma.types import EpochInputs, EpochOutputs, YumaParams

#: eth_call gas: the memory-array harness at 64 x 256 with liquid alpha needs ~250M.
CALL_GAS = 1_000_000_000
EPOCHS = 3


@pytest.fixture(scope="module")
def harness(w3: Web3, accounts: list[LocalAccount]) -> Contract:
    contract, _ = deploy_contract(w3, "YumaHarness", sender=accounts[0])
    return contract


def solidity_epoch(harness: Contract, inp: EpochInputs) -> EpochOutputs[int]:
    raw = harness.functions.epoch(inputs_to_abi(inp)).call({"gas": CALL_GAS})
    return outputs_from_abi(raw, len(inp.validator_uids), inp.n)


@given(epoch_inputs(), st.integers(0, 2**32))
def test_contract_equals_python_over_epochs(harness: Contract, inp: EpochInputs, seed: int) -> None:
    for epoch in range(EPOCHS):
        expected = fixed.epoch(inp)
        assert solidity_epoch(harness, inp) == expected, f"epoch {epoch}"
        inp = next_epoch(inp, expected.bonds, seed + epoch)


@pytest.mark.parametrize(
    ("rows", "n", "liquid"), [(1, 1, False), (1, 17, True), (64, 256, False), (64, 256, True)]
)
def test_contract_equals_python_at_edges_and_full_size(
    harness: Contract, rows: int, n: int, liquid: bool
) -> None:
    import random

    rng = random.Random(rows * 1000 + n)
    inp = EpochInputs(
        n=n,
        validator_uids=rng.sample(range(n), rows),
        stakes=[rng.randint(1, 10**22) for _ in range(rows)],
        permits=[True] * rows,
        last_update=[990] * rows,
        registration_blocks=[rng.choice([0, 995]) for _ in range(n)],
        weights=[[rng.choice([0, 65_535, rng.randint(0, 65_535)]) for _ in range(n)]
                 for _ in range(rows)],
        bonds=[[rng.randint(0, 65_535) for _ in range(n)] for _ in range(rows)],
        current_block=1_000,
        last_epoch_block=980,
        minted=10**18 + 1,
        fees=7,
        params=YumaParams(liquid_alpha=liquid),
    )  # fmt: skip
    for epoch in range(2):
        expected = fixed.epoch(inp)
        assert solidity_epoch(harness, inp) == expected
        inp = next_epoch(inp, expected.bonds, epoch)


def test_bad_inputs_revert_with_named_errors(harness: Contract) -> None:
    inp = inputs_to_abi(
        EpochInputs(
            n=2,
            validator_uids=[0],
            stakes=[1],
            permits=[True],
            last_update=[1],
            registration_blocks=[0, 0],
            weights=[[1, 2]],
            bonds=[[0, 0]],
            current_block=1,
            last_epoch_block=0,
        )
    )
    bad = list(inp)
    bad[2] = [1, 2]  # two stakes for one validator row
    with pytest.raises(ContractRevert) as info:
        harness.call("epoch", tuple(bad))
    assert info.value.error_name == "YumaEpochShapeMismatch"
    assert info.value.error_args == {"what": 0, "length": 2, "expected": 1}

    bad = list(inp)
    bad[2] = [2**128]
    with pytest.raises(ContractRevert) as info:
        harness.call("epoch", tuple(bad))
    assert info.value.error_name == "YumaEpochAmountTooLarge"

    bad = list(inp)
    params = list(bad[12])
    params[4], params[5] = 9, 8  # alphaLow above alphaHigh
    bad[12] = tuple(params)
    with pytest.raises(ContractRevert) as info:
        harness.call("epoch", tuple(bad))
    assert info.value.error_args == {"what": 1, "value": 9, "max": 8}
