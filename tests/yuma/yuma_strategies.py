"""Hypothesis strategies for Yuma epoch inputs.

Matrices are built from a drawn seed plus drawn structural knobs (zero rows, tie
palettes, all-zero weights, registrations after updates, ...): hypothesis stays fast at
64 x 256 while still steering into every edge case.
"""

from __future__ import annotations

import random
from dataclasses import replace

from hypothesis import settings
from hypothesis import strategies as st

from chain.yuma.types import EpochInputs, YumaParams

HEAVY = getattr(settings, "_current_profile", "default") == "heavy"
#: (max validator rows, max uid columns): the heavy profile reaches the product size.
MAX_ROWS, MAX_COLS = (64, 256) if HEAVY else (8, 24)

TEMPO = 20


@st.composite
def yuma_params(draw: st.DrawFn) -> YumaParams:
    low = draw(st.integers(0, 65_535))
    return YumaParams(
        kappa=draw(st.sampled_from([0, 1, 16_383, 32_767, 32_768, 52_428, 65_535])),
        bonds_moving_average=draw(st.sampled_from([0, 500_000, 900_000, 975_000, 1_000_000])),
        bonds_penalty=draw(st.sampled_from([0, 32_767, 65_535])),
        liquid_alpha=draw(st.booleans()),
        alpha_low=low,
        alpha_high=draw(st.integers(low, 65_535)),
        alpha_sigmoid_steepness=draw(st.sampled_from([0, 100, 1_000, 10_000])),
        activity_cutoff=draw(st.sampled_from([5, 50, 5_000])),
    )


def random_weights(rng: random.Random, rows: int, n: int, style: str) -> list[list[int]]:
    """u16 weight rows: ``style`` picks dense, sparse, ties (small palette), zero rows, all zero."""
    if style == "all_zero":
        return [[0] * n for _ in range(rows)]
    palette = [0, 1, 7, 32_768, 65_535]
    out = []
    for _ in range(rows):
        if style == "zero_rows" and rng.random() < 0.4:
            out.append([0] * n)
        elif style == "ties":
            out.append([rng.choice(palette) for _ in range(n)])
        elif style == "sparse":
            out.append([rng.randint(1, 65_535) if rng.random() < 0.2 else 0 for _ in range(n)])
        else:
            out.append([rng.randint(0, 65_535) for _ in range(n)])
    return out


@st.composite
def epoch_inputs(
    draw: st.DrawFn, max_rows: int = MAX_ROWS, max_cols: int = MAX_COLS
) -> EpochInputs:
    """One epoch's inputs with every edge case reachable."""
    n = draw(st.integers(1, max_cols))
    rows = draw(st.integers(1, min(max_rows, n)))
    rng = random.Random(draw(st.integers(0, 2**32)))
    current = 1_000
    style = draw(st.sampled_from(["dense", "sparse", "ties", "zero_rows", "all_zero"]))
    stake_style = draw(st.sampled_from(["random", "equal", "zeros", "huge"]))
    if stake_style == "equal":
        stakes = [10**18] * rows
    elif stake_style == "zeros":
        stakes = [rng.choice([0, rng.randint(0, 10**20)]) for _ in range(rows)]
    elif stake_style == "huge":
        stakes = [rng.randint(0, 21_000_000 * 10**18) for _ in range(rows)]
    else:
        stakes = [rng.randint(0, 10**21) for _ in range(rows)]
    bonds_style = draw(st.sampled_from(["zero", "random", "full"]))
    bonds = [
        [0 if bonds_style == "zero" else 65_535 if bonds_style == "full" else rng.randint(0, 65_535)
         for _ in range(n)]
        for _ in range(rows)
    ]  # fmt: skip
    return EpochInputs(
        n=n,
        validator_uids=rng.sample(range(n), rows),
        stakes=stakes,
        permits=[rng.random() < 0.85 for _ in range(rows)],
        last_update=[current - rng.choice([0, 1, 10, 60, 900]) for _ in range(rows)],
        registration_blocks=[rng.choice([0, 100, current - 30, current - 5, current])
                             for _ in range(n)],
        weights=random_weights(rng, rows, n, style),
        bonds=bonds,
        current_block=current,
        last_epoch_block=current - TEMPO,
        minted=draw(st.sampled_from([0, 1, 999, 10**18, 2**128 - 12_345])),
        fees=draw(st.sampled_from([0, 1, 10**17 + 3])),
        params=draw(yuma_params()),
    )  # fmt: skip


def next_epoch(inp: EpochInputs, bonds: list[list[int]], seed: int) -> EpochInputs:
    """The following epoch: ``TEMPO`` blocks later, bonds carried over, some validators
    re-weighting, the odd uid re-registered."""
    rng = random.Random(seed)
    current = inp.current_block + TEMPO
    weights = [list(row) for row in inp.weights]
    last_update = list(inp.last_update)
    for i in range(len(weights)):
        if rng.random() < 0.5:
            weights[i] = [min(65_535, max(0, w + rng.randint(-3_000, 3_000))) for w in weights[i]]
            last_update[i] = current - rng.randint(0, TEMPO - 1)
    registration = list(inp.registration_blocks)
    if rng.random() < 0.3:
        registration[rng.randrange(inp.n)] = current - rng.randint(0, TEMPO - 1)
    return replace(
        inp,
        weights=weights,
        last_update=last_update,
        registration_blocks=registration,
        bonds=[list(row) for row in bonds],
        current_block=current,
        last_epoch_block=inp.current_block,
    )
