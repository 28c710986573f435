"""Yuma Consensus (Yuma 3) in float64, for simulation and as a sanity reference.

Same steps as :mod:`chain.yuma.fixed` (read its docstring) with real numbers:
no rounding dust, and bonds kept as float fractions between epochs (pass the
previous :attr:`EpochOutputs.bonds` as ``bonds``) instead of u16. Two things stay as the
chain has them, because they are the algorithm's inputs rather than its rounding: the bond
EMA rate and the bonds penalty are 16-bit fractions, and dividends weigh the new bonds as
stored (rounded to u16). The fixed version agrees within the tolerances documented in
``tests/yuma``.
"""

from __future__ import annotations

import math

from chain.yuma.fixed import MINER_PERCENT, OWNER_PERCENT, RATE_ONE, fixed_rate, penalty_factor
from chain.yuma.types import U16_MAX, EmissionSplit, EpochInputs, EpochOutputs

#: Relative margin of the weighted-median comparison (see :func:`weighted_median`).
TIE_MARGIN = 1e-9


def normalize(x: list[float]) -> list[float]:
    """Scale to sum 1; an all-zero vector stays zero."""
    total = sum(x)
    if total <= 0.0:
        return [0.0] * len(x)
    return [xi / total for xi in x]


def weighted_median(values: list[float], stakes: list[float], kappa: int) -> float:
    """Stake-weighted kappa-median (same order statistic as the fixed version).

    The condition ``S(v) * 65535 > T * (65535 - kappa)`` is tested with a relative margin
    of ``TIE_MARGIN`` so that exact ties (equal stakes with a kappa that splits them
    exactly, e.g. five of ten equal stakes at kappa 0.5) are decided as in exact
    arithmetic instead of by float summation error.
    """
    pairs = sorted((v, s) for v, s in zip(values, stakes, strict=True) if s > 0.0)
    if not pairs:
        return 0.0
    total = sum(s for _, s in pairs)
    target = total * (U16_MAX - kappa) * (1.0 + TIE_MARGIN)
    acc = 0.0
    for k, (v, s) in enumerate(pairs):
        acc += s
        last_of_value = k + 1 == len(pairs) or pairs[k + 1][0] != v
        if last_of_value and acc * U16_MAX > target:
            return v
    return pairs[-1][0]


def liquid_alpha(
    consensus: float, weight: float, bond: float, low: float, high: float, steepness: int
) -> float:
    """Per-entry EMA rate in [low, high] (subtensor's alpha_sigmoid)."""
    gap = max(weight - consensus, 0.0) if weight >= bond else bond - weight
    gap = min(gap, 1.0)
    sigmoid = 1.0 / (1.0 + math.exp(-steepness / 100.0 * (gap - 0.5)))
    return low + sigmoid * (high - low)


def epoch(inp: EpochInputs, bonds: list[list[float]] | None = None) -> EpochOutputs[float]:
    """Run one epoch in float64. ``bonds`` (fractions) overrides ``inp.bonds`` (u16)."""
    p = inp.params
    rows = len(inp.validator_uids)
    n = inp.n
    old_bonds = bonds if bonds is not None else [[b / U16_MAX for b in r] for r in inp.bonds]

    active = [lu + p.activity_cutoff >= inp.current_block for lu in inp.last_update]
    stake = normalize([float(s) for s in inp.stakes])
    active_stake = normalize(
        [float(s) if active[i] and inp.permits[i] else 0.0 for i, s in enumerate(inp.stakes)]
    )

    weights: list[list[float]] = []
    for i in range(rows):
        if not inp.permits[i]:
            weights.append([0.0] * n)
            continue
        uid, updated, raw = inp.validator_uids[i], inp.last_update[i], inp.weights[i]
        weights.append(
            normalize(
                [
                    float(raw[j]) if j != uid and updated > inp.registration_blocks[j] else 0.0
                    for j in range(n)
                ]
            )
        )

    consensus = [
        weighted_median([weights[i][j] for i in range(rows)], active_stake, p.kappa)
        for j in range(n)
    ]
    clipped = [[min(w, c) for w, c in zip(row, consensus, strict=True)] for row in weights]
    vtrust = [sum(row) for row in clipped]
    incentive = normalize(
        [sum(active_stake[i] * clipped[i][j] for i in range(rows)) for j in range(n)]
    )

    alpha_fixed = fixed_rate(p.bonds_moving_average) / RATE_ONE
    low, high = p.alpha_low / U16_MAX, p.alpha_high / U16_MAX
    penalty = penalty_factor(p.bonds_penalty) / RATE_ONE
    fresh = [reg > inp.last_epoch_block for reg in inp.registration_blocks]
    ema: list[list[float]] = []
    for i in range(rows):
        if not inp.permits[i]:
            ema.append([0.0] * n)
            continue
        row = []
        for j in range(n):
            w = weights[i][j]
            target = w - (w - clipped[i][j]) * penalty
            old = 0.0 if fresh[j] else old_bonds[i][j]
            alpha = (
                liquid_alpha(consensus[j], target, old, low, high, p.alpha_sigmoid_steepness)
                if p.liquid_alpha and consensus[j] != 0.0
                else alpha_fixed
            )
            row.append(min(1.0, (1.0 - alpha) * old + alpha * target))
        ema.append(row)

    stored = [[round(e * U16_MAX) / U16_MAX for e in row] for row in ema]
    columns = [normalize([stored[i][j] for i in range(rows)]) for j in range(n)]
    dividends = normalize(
        [active_stake[i] * sum(columns[j][i] * incentive[j] for j in range(n)) for i in range(rows)]
    )

    owner = inp.minted * OWNER_PERCENT / 100
    miner_pool = inp.minted * MINER_PERCENT / 100
    validator_pool = inp.minted - owner - miner_pool + inp.fees
    if not any(incentive):
        validator_pool += miner_pool
        miner_pool = 0.0
    miners = [miner_pool * x for x in incentive]
    validators = [0.0] * rows
    for shares in (dividends, active_stake, stake):
        if any(shares):
            validators = [validator_pool * x for x in shares]
            break
    else:
        owner += validator_pool

    return EpochOutputs(
        active_stake=active_stake,
        consensus=consensus,
        incentive=incentive,
        validator_trust=vtrust,
        dividends=dividends,
        bonds=ema,
        emission=EmissionSplit(owner, miners, validators),
    )
