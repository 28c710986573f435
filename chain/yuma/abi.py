"""Conversion between :mod:`chain.yuma.types` and the ``YumaEpoch`` Solidity ABI structs.

Used by the differential tests and the gas scenario against ``YumaHarness``.
"""

from __future__ import annotations

from typing import Any

from chain.yuma.fixed import pack_u16_rows, unpack_u16_rows
from chain.yuma.types import EmissionSplit, EpochInputs, EpochOutputs


def inputs_to_abi(inp: EpochInputs) -> tuple[Any, ...]:
    """``EpochInputs`` -> the ``YumaEpoch.Inputs`` tuple (weights and bonds packed 16 u16/word)."""
    p = inp.params
    return (
        inp.n,
        list(inp.validator_uids),
        list(inp.stakes),
        list(inp.permits),
        list(inp.last_update),
        list(inp.registration_blocks),
        pack_u16_rows(inp.weights, inp.n),
        pack_u16_rows(inp.bonds, inp.n),
        inp.current_block,
        inp.last_epoch_block,
        inp.minted,
        inp.fees,
        (
            p.kappa,
            p.bonds_moving_average,
            p.bonds_penalty,
            p.liquid_alpha,
            p.alpha_low,
            p.alpha_high,
            p.alpha_sigmoid_steepness,
            p.activity_cutoff,
        ),
    )


def outputs_from_abi(raw: Any, rows: int, n: int) -> EpochOutputs[int]:
    """The returned ``YumaEpoch.Outputs`` tuple -> ``EpochOutputs[int]`` (bonds unpacked)."""
    (active, consensus, incentive, vtrust, dividends, bonds, owner, miners, validators) = raw
    return EpochOutputs(
        active_stake=list(active),
        consensus=list(consensus),
        incentive=list(incentive),
        validator_trust=list(vtrust),
        dividends=list(dividends),
        bonds=unpack_u16_rows(list(bonds), rows, n),
        emission=EmissionSplit(int(owner), list(miners), list(validators)),
    )
