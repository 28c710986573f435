"""Properties of the fixed-point Yuma epoch (pure Python, no chain)."""

from __future__ import annotations

import random
from dataclasses import replace

from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from yuma_strategies import epoch_inputs

from chain.yuma import fixed
from chain.yuma.fixed import ONE, WONE
from chain.yuma.types import EpochInputs, YumaParams


@given(epoch_inputs())
def test_outputs_are_fractions_and_normalised_exactly(inp: EpochInputs) -> None:
    out = fixed.epoch(inp)
    for name in ("incentive", "dividends", "active_stake"):
        vector = getattr(out, name)
        assert sum(vector) == (ONE if any(vector) else 0), name
    assert all(0 <= c <= WONE for c in out.consensus)
    assert all(0 <= t <= WONE for t in out.validator_trust)
    assert all(0 <= b <= 65_535 for row in out.bonds for b in row)
    # A non-zero consensus means some staked validator supports that miner: incentive is ONE.
    if any(out.consensus):
        assert sum(out.incentive) == ONE


@given(epoch_inputs())
def test_emission_equals_minted_plus_fees_exactly(inp: EpochInputs) -> None:
    out = fixed.epoch(inp)
    e = out.emission
    assert e.owner + sum(e.miners) + sum(e.validators) == inp.minted + inp.fees
    assert e.owner >= inp.minted * 18 // 100
    assert all(x >= 0 for x in e.miners + e.validators)
    # Dust bound: each miner gets its exact share up to fewer than N base units.
    miner_pool = sum(e.miners)
    if miner_pool:
        assert miner_pool == inp.minted * 41 // 100
        for amount, share in zip(e.miners, out.incentive, strict=True):
            assert 0 <= amount - miner_pool * share // ONE < inp.n
    validator_pool = sum(e.validators)
    if validator_pool and any(out.dividends):
        for amount, share in zip(e.validators, out.dividends, strict=True):
            assert 0 <= amount - validator_pool * share // ONE < len(inp.validator_uids)


@st.composite
def honest_majority(draw: st.DrawFn) -> tuple[EpochInputs, list[int]]:
    """Honest validators (identical weights on miners only, stake >= kappa) plus arbitrary others."""
    rng = random.Random(draw(st.integers(0, 2**32)))
    n = draw(st.integers(3, 24))
    rows = draw(st.integers(1, min(8, n - 1)))
    honest = draw(st.integers(1, rows))
    uids = rng.sample(range(n), rows)
    miner_weights = [0 if j in uids else rng.randint(0, 65_535) for j in range(n)]
    assume(any(miner_weights))
    weights = [list(miner_weights) for _ in range(honest)]
    weights += [[rng.randint(0, 65_535) for _ in range(n)] for _ in range(rows - honest)]
    kappa = draw(st.sampled_from([16_383, 32_767, 52_428]))
    honest_stakes = [rng.randint(10**18, 10**21) for _ in range(honest)]
    # Others together hold at most (1 - kappa) of the stake, leaving honest >= kappa.
    budget = sum(honest_stakes) * (65_535 - kappa) // kappa
    others = [rng.randint(0, budget // max(1, rows - honest)) for _ in range(rows - honest)]
    inp = EpochInputs(
        n=n,
        validator_uids=uids,
        stakes=honest_stakes + others,
        permits=[True] * rows,
        last_update=[990] * rows,
        registration_blocks=[0] * n,
        weights=weights,
        bonds=[[rng.randint(0, 65_535) for _ in range(n)] for _ in range(rows)],
        current_block=1_000,
        last_epoch_block=980,
        params=YumaParams(kappa=kappa),
    )
    return inp, list(range(honest))


def assert_full_trust(vtrust: int, n: int) -> None:
    """Full trust: WONE less the row's scaling dust (<= n units), which records as u16 65535."""
    assert WONE - n - 1 < vtrust <= WONE
    assert fixed.wone_to_u16(vtrust) == 65_535


@given(honest_majority())
def test_validator_within_consensus_keeps_full_trust(case: tuple[EpochInputs, list[int]]) -> None:
    inp, honest = case
    out = fixed.epoch(inp)
    for i in honest:
        assert_full_trust(out.validator_trust[i], inp.n)


@given(epoch_inputs(), st.data())
def test_within_consensus_rows_have_full_trust(inp: EpochInputs, data: st.DataObject) -> None:
    """Generic form: any permitted row whose normalised weights never exceed consensus."""
    out = fixed.epoch(inp)
    weights = fixed.masked_weights(inp)
    for i, row in enumerate(weights):
        if any(row) and all(w <= c for w, c in zip(row, out.consensus, strict=True)):
            assert_full_trust(out.validator_trust[i], inp.n)


@st.composite
def raise_above_consensus(draw: st.DrawFn) -> tuple[EpochInputs, EpochInputs, int]:
    """An input, the same input with one validator's weight on a miner raised while it is
    already above consensus, and that miner's column."""
    inp = draw(epoch_inputs())
    weights = fixed.masked_weights(inp)
    q = fixed.stake_weights(fixed.active_stakes(inp))
    consensus = fixed.column_consensus(weights, q, inp.params.kappa)
    candidates = [
        (i, j)
        for i, row in enumerate(weights)
        for j, w in enumerate(row)
        if q[i] > 0 and w > consensus[j] and inp.weights[i][j] < 65_535
    ]
    assume(candidates)
    i, j = draw(st.sampled_from(candidates))
    raised = [list(r) for r in inp.weights]
    raised[i][j] = draw(st.integers(inp.weights[i][j] + 1, 65_535))
    return inp, replace(inp, weights=raised), j


# Most drawn epochs have some entry above consensus, but not all: the assume() filters some.
@settings(suppress_health_check=[HealthCheck.filter_too_much])
@given(raise_above_consensus())
def test_raising_weight_above_consensus_does_not_raise_support(
    case: tuple[EpochInputs, EpochInputs, int],
) -> None:
    """The miner's consensus and clipped stake-weighted support stay exactly the same; its
    normalised incentive can only move because the validator's other weights shrank (the
    row is renormalised), never because of the raise itself."""
    before, after, j = case
    results = []
    for inp in (before, after):
        weights = fixed.masked_weights(inp)
        q = fixed.stake_weights(fixed.active_stakes(inp))
        consensus = fixed.column_consensus(weights, q, inp.params.kappa)
        _, ranks = fixed.clipped_ranks(weights, consensus, q)
        results.append((consensus, ranks, fixed.epoch(inp).incentive))
    (c0, r0, i0), (c1, r1, i1) = results
    assert c1[j] == c0[j]
    assert r1[j] == r0[j]
    others_before = sum(r0) - r0[j]
    others_after = sum(r1) - r1[j]
    assert others_after <= others_before
    if others_after == others_before:
        assert i1[j] == i0[j]


def test_weighted_median_examples() -> None:
    # Two equal stakes, kappa ~ 0.5: the upper value (S(low) is exactly half, not more).
    assert fixed.weighted_median([3, 9], [1, 1], 32_767) == 9
    # A 60% holder decides.
    assert fixed.weighted_median([3, 9], [60, 40], 32_767) == 3
    assert fixed.weighted_median([3, 9], [40, 60], 32_767) == 9
    # Zero-stake entries never count; kappa = 0 falls back to the largest value.
    assert fixed.weighted_median([100, 3, 9], [0, 1, 1], 0) == 9
    assert fixed.weighted_median([5, 5, 5], [1, 2, 3], 65_535) == 5
    assert fixed.weighted_median([], [], 32_767) == 0


def test_normalize_gives_dust_to_first_largest() -> None:
    y = fixed.normalize([1, 1, 1])
    assert y == [ONE // 3 + 1, ONE // 3, ONE // 3]
    assert fixed.normalize([0, 0]) == [0, 0]
    y = fixed.normalize([1, 5, 5])
    assert sum(y) == ONE and y[1] == y[2] + 1


def test_exp_neg_matches_math_exp() -> None:
    import math

    for t in (0, 1, ONE // 7, ONE, 3 * ONE + 12345, 25 * ONE, 50 * ONE):
        expected = math.exp(-t / ONE) * ONE
        assert abs(fixed.exp_neg(t) - expected) <= max(1e-15 * expected, 100)


def _idle_validators(stakes: list[int], last_update: list[int]) -> EpochInputs:
    """Two permitted validators that never set weights, three miners, 1,000 minted."""
    return EpochInputs(
        n=5,
        validator_uids=[0, 1],
        stakes=stakes,
        permits=[True, True],
        last_update=last_update,
        registration_blocks=[0] * 5,
        weights=[[0] * 5, [0] * 5],
        bonds=[[0] * 5, [0] * 5],
        current_block=10_000,
        last_epoch_block=9_000,
        minted=1_000,
        fees=10,
    )


def test_validator_share_falls_back_to_stake_when_nobody_validates() -> None:
    """Decision (issue #13, item 6): with no dividends the validator pool (and the idle miner
    pool) goes to the permitted rows by active stake, else by stake (subtensor's stake
    fallback, over permitted validators only: paying stake that holds no permit would pay for
    no validation); with no stake at all it goes to the subnet owner. The deviation from
    subtensor (which pays every staked hotkey) is listed in chain/yuma/fixed.py."""
    active = fixed.epoch(_idle_validators([3 * 10**18, 10**18], [9_990, 9_990]))
    assert active.emission.miners == [0] * 5
    assert active.emission.owner == 180
    assert active.emission.validators == [623, 207]  # 830 split 3:1, dust to the largest
    inactive = fixed.epoch(_idle_validators([3 * 10**18, 10**18], [0, 0]))
    assert inactive.emission.validators == active.emission.validators  # stake, not activity
    nobody = fixed.epoch(_idle_validators([0, 0], [9_990, 9_990]))
    assert nobody.emission.validators == [0, 0]
    assert nobody.emission.owner == 1_010
