"""Yuma Consensus: integer fixed point (bit-exact with ``YumaMath.sol``) and float64 models."""

from chain.yuma.fixed import ONE
from chain.yuma.fixed import epoch as epoch_fixed
from chain.yuma.reference import epoch as epoch_float
from chain.yuma.types import EmissionSplit, EpochInputs, EpochOutputs, YumaParams

__all__ = [
    "ONE",
    "EmissionSplit",
    "EpochInputs",
    "EpochOutputs",
    "YumaParams",
    "epoch_fixed",
    "epoch_float",
]
