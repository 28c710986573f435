"""Plain data types for one Yuma Consensus epoch.

Both implementations (:mod:`chain.yuma.fixed`, bit-exact with the Solidity
library, and :mod:`chain.yuma.reference`, float64) take the same
:class:`EpochInputs` and :class:`YumaParams`. The layout is the on-chain one:
``V`` validator rows (the uids that may hold a permit) by ``N`` uid columns
(every registered uid, miners and validators alike). Row ``i`` belongs to uid
``validator_uids[i]``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Generic, TypeVar

T = TypeVar("T", int, float)

U16_MAX = 65_535
#: Bonds moving average is expressed per million, as in subtensor.
BMA_SCALE = 1_000_000
#: Stakes, minted amount and fees stay below this (the contract reverts otherwise).
MAX_AMOUNT = 2**128


@dataclass(frozen=True)
class YumaParams:
    """Epoch hyperparameters (the subnet owner's, bounded by the metagraph)."""

    #: Consensus majority as a u16 fraction of 65535 (32767 ~ 0.5, subtensor default).
    kappa: int = 32_767
    #: Bonds moving average per million: new bond = (1 - a) * old + a * weight with
    #: a = 1 - bma / 1e6 (subtensor default 900_000).
    bonds_moving_average: int = 900_000
    #: u16 fraction: 65535 = bonds move toward clipped weights (Yuma 3 default), 0 = raw weights.
    bonds_penalty: int = U16_MAX
    #: Per-entry EMA rate from a sigmoid of the weight/consensus/bond gap.
    liquid_alpha: bool = False
    #: Liquid alpha bounds as u16 fractions of 65535.
    alpha_low: int = 45_875  # ~0.7
    alpha_high: int = 58_982  # ~0.9
    #: Sigmoid steepness x100 (subtensor convention: 1000 means slope 10).
    alpha_sigmoid_steepness: int = 1_000
    #: A validator whose last weight update is older than this many blocks is inactive.
    activity_cutoff: int = 5_000

    def __post_init__(self) -> None:
        for name in ("kappa", "bonds_penalty", "alpha_low", "alpha_high"):
            value = getattr(self, name)
            if not 0 <= value <= U16_MAX:
                raise ValueError(f"{name}={value} outside [0, 65535]")
        if not 0 <= self.bonds_moving_average <= BMA_SCALE:
            raise ValueError(f"bonds_moving_average={self.bonds_moving_average} outside [0, 1e6]")
        if self.alpha_low > self.alpha_high:
            raise ValueError("alpha_low must not exceed alpha_high")
        if not 0 <= self.alpha_sigmoid_steepness <= 10_000:
            raise ValueError("alpha_sigmoid_steepness outside [0, 10000]")
        if self.activity_cutoff < 0:
            raise ValueError("activity_cutoff must be >= 0")


@dataclass(frozen=True)
class EpochInputs:
    """Everything one epoch reads. Matrices are lists of rows (``V`` x ``N``)."""

    #: Number of uid columns.
    n: int
    #: uid of each validator row (distinct, < n).
    validator_uids: list[int]
    #: Raw stake of each validator row (token base units).
    stakes: list[int]
    #: Validator permit of each row.
    permits: list[bool]
    #: Block of each row's last weight update.
    last_update: list[int]
    #: Block at which each uid column was (last) registered.
    registration_blocks: list[int]
    #: Weights as stored: u16 per (row, uid), max-upscaled or not (rows are normalised).
    weights: list[list[int]]
    #: Bonds as stored: u16 fractions of 65535 per (row, uid).
    bonds: list[list[int]]
    #: Block at which this epoch runs.
    current_block: int
    #: Block of the previous epoch; bond columns of uids registered after it restart at 0.
    last_epoch_block: int
    #: Tokens minted this epoch (base units).
    minted: int = 0
    #: Escrow protocol fees collected since the last epoch; join the validator pool.
    fees: int = 0
    params: YumaParams = field(default_factory=YumaParams)

    def __post_init__(self) -> None:
        v = len(self.validator_uids)
        for name in ("stakes", "permits", "last_update", "weights", "bonds"):
            if len(getattr(self, name)) != v:
                raise ValueError(f"{name} has {len(getattr(self, name))} rows, expected {v}")
        if len(self.registration_blocks) != self.n:
            raise ValueError("registration_blocks must have n entries")
        if len(set(self.validator_uids)) != v or any(
            not 0 <= u < self.n for u in self.validator_uids
        ):
            raise ValueError("validator_uids must be distinct uids < n")
        for name in ("weights", "bonds"):
            for row in getattr(self, name):
                if len(row) != self.n or any(not 0 <= x <= U16_MAX for x in row):
                    raise ValueError(f"{name} rows must be n u16 values")
        for amount in (self.minted, self.fees, *self.stakes):
            if not 0 <= amount < MAX_AMOUNT:
                raise ValueError(f"amount {amount} outside [0, 2**128)")


@dataclass(frozen=True)
class EmissionSplit(Generic[T]):
    """Where one epoch's tokens go; ``owner + sum(miners) + sum(validators) == minted + fees``."""

    owner: T
    #: Per uid column, by incentive.
    miners: list[T]
    #: Per validator row, by dividends (or stake when nobody holds bonds).
    validators: list[T]

    def per_uid(self, validator_uids: list[int]) -> list[T]:
        """Total emission per uid (a uid may earn both as miner and as validator)."""
        total = list(self.miners)
        for row, uid in enumerate(validator_uids):
            total[uid] += self.validators[row]
        return total


@dataclass(frozen=True)
class EpochOutputs(Generic[T]):
    """Results of one epoch. ``T`` is ``int`` (fixed point: consensus and validator trust in
    ``WONE``, the share vectors in ``ONE``, see :mod:`chain.yuma.fixed`) or ``float``."""

    #: Normalised active, permitted stake per row.
    active_stake: list[T]
    #: Stake-weighted kappa-median weight per uid column.
    consensus: list[T]
    #: Normalised clipped, stake-weighted support per uid column.
    incentive: list[T]
    #: Sum of a row's weights clipped at consensus.
    validator_trust: list[T]
    #: Normalised dividends per row.
    dividends: list[T]
    #: New bonds (fixed: u16 fractions of 65535 as stored; float: fractions of 1).
    bonds: list[list[T]]
    emission: EmissionSplit[T]
