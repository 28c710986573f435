"""The fixed-point epoch agrees with the float64 reference within documented tolerances.

Tolerances (absolute, on fractions of 1), per epoch from identical inputs, each with the
worst case measured over 4,500 hypothesis epochs (default profile) unless stated:

* active stake: 1e-15 (the fixed version normalises the same raw stakes to 1e18).
* consensus, validator trust: 1e-7 (worst 1.05e-8 under the heavy profile): weights run
  in 32 bits (``WONE``) and each scaled weight is within one unit, so a row's trust over
  ``n <= 256`` uids is within about ``(n + 1) / WONE`` (6e-8).
* incentive: 1e-5 plus ``2 (n + 1) / S`` (worst 2.4e-6 over the default profile), with ``S``
  the stake-weighted clipped support ``sum(R) / sum(q)`` in WONE units: every rank moves by
  at most about one weight unit per uid, which matters where every rank is tiny (a
  consensus of a few units); plus 30-bit stake weights. Exception by design: a validator whose stake weight floors to 0 (stake below
  total / 2**30) takes no part in the fixed-point consensus; such inputs are skipped.
* new bonds: half a u16 step (rounding) plus one 16-bit rate step (liquid alpha's rate is
  a 16-bit fraction on chain, a real number here) plus 1e-12 (worst 1.41 u16 steps).
* dividends: 1e-3 (worst 1.1e-4) when every uid's new bonds sum to at least 256 u16
  steps. Dividends weigh the bonds as stored (u16) in both versions, and a bond that sits
  at a rounding boundary may round the other way: in a column whose bonds sum to only a
  few steps that moves a large part of its share, so such epochs have no general bound.
* emission amounts: ``n + V + 2`` base units plus the dividend and incentive tolerances
  of the pools (floor dust and the integer 18/41/41 split).

Carrying bonds across epochs separately (u16 in fixed, exact floats in the reference) has
no general bound either, for the same reason. On a realistic subnet (every validator
scores every miner, with noise) dividends stay within 1e-3 over 15 epochs.
"""

from __future__ import annotations

import random
from dataclasses import replace

from hypothesis import given
from hypothesis import strategies as st
from yuma_strategies import epoch_inputs, next_epoch

from chain.yuma import fixed, reference
from chain.yuma.fixed import ONE, STAKE_ONE, WONE
from chain.yuma.types import EpochInputs, EpochOutputs
from latent.gas.yuma import benchmark_inputs

WEIGHT_TOL = 1e-7
INCENTIVE_TOL = 1e-5
DIVIDEND_TOL = 1e-3
#: A column's new bonds sum to at least this many u16 steps for the dividend bound.
DIVIDEND_MIN_BONDS = 256
BOND_TOL = 0.5 / 65_535 + 1 / 65_536 + 1e-12
DRIFT_TOL = 1e-3
EPOCHS = 3


def _max_diff(a: list[int], b: list[float], unit: int = ONE) -> float:
    return max([abs(x / unit - y) for x, y in zip(a, b, strict=True)] + [0.0])


def _assert_close(inp: EpochInputs, a: EpochOutputs[int], b: EpochOutputs[float]) -> None:
    assert _max_diff(a.active_stake, b.active_stake) <= 1e-15
    for name in ("consensus", "validator_trust"):
        assert _max_diff(getattr(a, name), getattr(b, name), WONE) <= WEIGHT_TOL, name
    q = fixed.stake_weights(fixed.active_stakes(inp))
    _, ranks = fixed.clipped_ranks(fixed.masked_weights(inp), a.consensus, q)
    support = sum(ranks) / max(1, sum(q))
    incentive_tol = INCENTIVE_TOL + (2 * (inp.n + 1) / support if support else 0.0)
    assert _max_diff(a.incentive, b.incentive) <= incentive_tol
    sums = [sum(column) for column in zip(*a.bonds, strict=True)]
    dividends_bounded = all(s == 0 or s >= DIVIDEND_MIN_BONDS for s in sums)
    if dividends_bounded:
        assert _max_diff(a.dividends, b.dividends) <= DIVIDEND_TOL
    for row_a, row_b in zip(a.bonds, b.bonds, strict=True):
        for x, y in zip(row_a, row_b, strict=True):
            assert abs(x / 65_535 - y) <= BOND_TOL
    total = inp.minted + inp.fees
    slack = inp.n + len(inp.validator_uids) + 2 + 1e-12 * total
    fa, fb = a.emission, b.emission
    assert abs(fa.owner - fb.owner) <= slack
    for x, y in zip(fa.miners, fb.miners, strict=True):
        assert abs(x - y) <= slack + incentive_tol * total
    if dividends_bounded:
        for x, y in zip(fa.validators, fb.validators, strict=True):
            assert abs(x - y) <= slack + DIVIDEND_TOL * total


def _visible_stakes(inp: EpochInputs) -> bool:
    """Every non-zero stake has a non-zero stake weight (see the module docstring)."""
    total = sum(inp.stakes)
    return all(s == 0 or s * STAKE_ONE >= total for s in inp.stakes)


@given(epoch_inputs(), st.integers(0, 2**32))
def test_fixed_matches_float_each_epoch(inp: EpochInputs, seed: int) -> None:
    for epoch in range(EPOCHS):
        a = fixed.epoch(inp)
        if _visible_stakes(inp):
            _assert_close(inp, a, reference.epoch(inp))
        inp = next_epoch(inp, a.bonds, seed + epoch)


@given(st.integers(0, 2**32), st.integers(2, 8), st.integers(4, 32))
def test_dividend_drift_on_a_realistic_subnet_is_small(seed: int, rows: int, n: int) -> None:
    rng = random.Random(seed)
    inp = benchmark_inputs(rows, max(n, rows + 1), seed=seed)
    float_bonds = None
    for _ in range(15):
        a = fixed.epoch(inp)
        b = reference.epoch(inp, bonds=float_bonds)
        assert _max_diff(a.dividends, b.dividends) <= DRIFT_TOL
        float_bonds = b.bonds
        weights = [
            [min(65_535, max(0, w + rng.randint(-2_000, 2_000))) if w else 0 for w in row]
            for row in inp.weights
        ]
        block = inp.current_block + 20
        inp = replace(
            inp,
            weights=weights,
            bonds=a.bonds,
            last_update=[block - 1] * rows,
            current_block=block,
            last_epoch_block=inp.current_block,
        )
