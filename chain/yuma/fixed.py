"""Yuma Consensus (Yuma 3) in integer fixed point, bit-exact with ``YumaMath.sol``.

This is the one place where the number format and rounding are specified; the
Solidity libraries (``contracts/libraries/YumaEpoch.sol`` over
``YumaMath.sol``) compute exactly the same integers and the differential tests
hold them to that.

Number format
-------------
* Every fraction is a non-negative integer scaled by ``ONE = 10**18``.
* Stored u16 fractions (weights, bonds, kappa, alpha bounds, bonds penalty) are
  fractions of ``U16_MAX = 65535``. Reading one: ``x * ONE // 65535`` (floor).
  Writing a bond back: ``(b * 65535 + ONE // 2) // ONE`` (round half up, so a
  bond that did not move reads back to the same u16).
* Every other division is floor division (``//``); intermediate products stay
  below 2**256 (the largest, a dividend before its division by ``ONE**2``, is
  at most ``ONE**4`` < 2**240).

Normalisation and dust
----------------------
``normalize(x)`` returns ``y_i = x_i * ONE // sum(x)`` and then adds the
remainder ``ONE - sum(y)`` (always ``< len(x)``) to the first index holding
the largest ``x_i``. A normalised non-zero vector therefore sums to exactly
``ONE``; an all-zero vector stays all zero. This rule normalises stake,
incentive and dividends (the vectors emission is split by). Token amounts are
split with the same rule (``distribute``): floor shares, remainder (< entries,
in base units) to the first largest share.

Weight rows and bond columns are only *scaled* (``scale``: ``x_i * ONE //
sum(x)``, no remainder): they feed sums that are normalised again, so their
dust (``ONE - sum < len(x)`` units of ``1e-18``) changes nothing that is paid
out, and the contract can scale an entry knowing only its row or column sum,
without a pass to find the largest entry. A row kept within consensus has
``vtrust = ONE - dust`` (``> ONE - N``), which records as u16 65535.

Weighted median (consensus)
---------------------------
For a uid column, the participants are the active, permitted validator rows with
non-zero raw stake ``s_i`` (total ``T``). Consensus is the smallest participant
weight ``v`` with ``S(v) * 65535 > T * (65535 - kappa)``, where ``S(v)`` is the raw
stake of participants whose weight is ``<= v``; when no value qualifies (kappa = 0)
it is the largest participant weight, and with no participant it is 0. Raw stakes
make this an exact rational comparison (normalisation dust cannot break ties), the
same order statistic as subtensor's ``weighted_median`` with ``minority = 1 - kappa``.
Any correct selection algorithm gives the same value (sorting here, quickselect in the
memory-array library). The on-chain epoch does not select: the caller passes the value and
the contract checks it, with ``L`` the participants' stake below it and ``E`` at it:
``E > 0``, ``L * 65535 <= target`` and (``(L + E) * 65535 > target`` or ``L + E = T``),
which exactly one value satisfies (0 when there is no participant).

Epoch (V validator rows x N uid columns)
----------------------------------------
1. ``active_i = last_update_i + activity_cutoff >= current_block``.
2. ``stake = normalize(stakes)``; ``a = normalize(stakes_i if active_i and permit_i else 0)``.
3. Weights: rows without permit are zero; the self weight (column
   ``validator_uids[i]``) and weights not newer than the column's
   registration (``last_update_i <= registration_block_j``) are zeroed; each
   row is ``scale``d.
4. ``c_j`` = weighted median above (raw active stake); clipped ``w'_ij = min(w_ij, c_j)``.
5. ``vtrust_i = sum_j w'_ij``; ``incentive = normalize(R)`` with the ranks
   ``R_j = (sum_i a_i * w'_ij) // ONE`` (one division, after the exact sum).
6. Bond target ``t_ij = w_ij - (w_ij - w'_ij) * bonds_penalty // 65535``.
   Old bond ``b_ij = bonds_ij * ONE // 65535``, zero when uid ``j`` registered
   after ``last_epoch_block``. Rate ``alpha = (1e6 - bonds_moving_average) *
   10**12``, or with liquid alpha, in every column with ``c_j > 0``, per entry
   ``alpha_ij`` from :func:`liquid_alpha` (a column-local rule, so a chunked epoch
   can decide it from the column alone). New bond
   ``e_ij = min(ONE, (ONE - alpha) * b_ij // ONE + alpha * t_ij // ONE)``;
   rows without permit are zero. Stored as u16 (round half up).
7. ``e`` (unrounded) column-``scale``d to ``n_ij``; ``dividends = normalize(D)``
   with ``D_i = a_i * (sum_j n_ij * R_j) // ONE**2`` over the ranks ``R_j``
   of step 5 (proportional to the incentive, but known column by column, so a
   chunked epoch needs no second pass over the bonds).

Liquid alpha's sigmoid needs ``e**-x``: :func:`exp_neg` multiplies ``floor(e**-1
* ONE)`` once per whole unit of ``x`` (floor each step), divides by the Taylor
series of ``e**frac`` (each term floored, until a term is 0), and the sigmoid and
rate follow with floor divisions (:func:`liquid_alpha`).

Deviations from subtensor (deliberate)
--------------------------------------
Fixed 18/41/41 split with fees in the validator pool (instead of incentive vs
dividends halves); consensus over raw stake; ranks and dividends from integer
integer sums (dividends weigh bonds by ranks, not by rounded incentive); liquid
alpha decided per column (``c_j > 0``) instead of for the whole matrix; bonds stored round-half-up (subtensor truncates) so a steady bond
does not decay; rows that lose their permit get zero bonds in the same epoch;
no minimum-stake filter (permits come from the metagraph's top-K).

Emission split
--------------
``owner = minted * 18 // 100``, ``miner pool = minted * 41 // 100``,
``validator pool = minted - owner - miner pool + fees``. The miner pool is
distributed by incentive; when no miner has incentive it joins the validator
pool. The validator pool is distributed by dividends, else (nobody holds
bonds) by active stake, else by stake; with no stake at all it goes to the
owner. ``owner + sum(miners) + sum(validators) == minted + fees`` exactly;
rounding moves at most ``N - 1`` (miners) and ``V - 1`` (validators) base
units to the first largest share.
"""

from __future__ import annotations

from chain.yuma.types import (
    BMA_SCALE,
    U16_MAX,
    EmissionSplit,
    EpochInputs,
    EpochOutputs,
)

ONE = 10**18
#: floor(e^-1 * 10**18).
E_INV = 367_879_441_171_442_321
OWNER_PERCENT = 18
MINER_PERCENT = 41
#: u16 values per packed storage word: lane k of a word is bits [16k, 16k + 16).
LANES = 16


def u16_to_fraction(x: int) -> int:
    """u16 fraction of 65535 -> ONE-scaled fraction (floor)."""
    return x * ONE // U16_MAX


def fraction_to_u16(x: int) -> int:
    """ONE-scaled fraction in [0, ONE] -> u16 fraction of 65535 (round half up)."""
    return (x * U16_MAX + ONE // 2) // ONE


def _first_argmax(x: list[int]) -> int:
    best = 0
    for i in range(1, len(x)):
        if x[i] > x[best]:
            best = i
    return best


def normalize(x: list[int]) -> list[int]:
    """Scale to sum exactly ``ONE`` (floor, dust to the first largest); zeros stay zeros."""
    total = sum(x)
    if total == 0:
        return [0] * len(x)
    y = [xi * ONE // total for xi in x]
    y[_first_argmax(x)] += ONE - sum(y)
    return y


def scale(x: list[int]) -> list[int]:
    """``x_i * ONE // sum(x)`` with no remainder assigned; zeros stay zeros."""
    total = sum(x)
    if total == 0:
        return [0] * len(x)
    return [xi * ONE // total for xi in x]


def distribute(amount: int, shares: list[int]) -> list[int]:
    """Split ``amount`` by ``shares`` (summing to ``ONE``): floor, dust to the first largest."""
    out = [amount * s // ONE for s in shares]
    if out:
        out[_first_argmax(shares)] += amount - sum(out)
    return out


def weighted_median(values: list[int], stakes: list[int], kappa: int) -> int:
    """Stake-weighted kappa-median of ``values`` over entries with positive stake."""
    pairs = sorted((v, s) for v, s in zip(values, stakes, strict=True) if s > 0)
    if not pairs:
        return 0
    total = sum(s for _, s in pairs)
    target = total * (U16_MAX - kappa)
    acc = 0
    for k, (v, s) in enumerate(pairs):
        acc += s
        last_of_value = k + 1 == len(pairs) or pairs[k + 1][0] != v
        if last_of_value and acc * U16_MAX > target:
            return v
    return pairs[-1][0]


def exp_neg(t: int) -> int:
    """``e**(-t / ONE) * ONE`` (floor-rounded steps) for ``t >= 0``."""
    whole, frac = divmod(t, ONE)
    r = ONE
    for _ in range(whole):
        r = r * E_INV // ONE
        if r == 0:
            return 0
    # e^frac by its Taylor series (all terms positive), then invert.
    term = ONE
    series = ONE
    k = 1
    while term != 0:
        term = term * frac // (ONE * k)
        series += term
        k += 1
    return r * ONE // series


def liquid_alpha(
    consensus: int, weight: int, bond: int, low: int, high: int, steepness: int
) -> int:
    """Per-entry EMA rate in [low, high]: sigmoid of the buy/sell gap (subtensor's alpha_sigmoid).

    ``gap = clamp(weight - consensus)`` when ``weight >= bond`` else ``bond - weight``;
    ``alpha = low + sigmoid(steepness / 100 * (gap - 1/2)) * (high - low)``.
    """
    buy_gap = max(weight - consensus, 0)
    gap = min(buy_gap if weight >= bond else bond - weight, ONE)
    half = ONE // 2
    if gap >= half:
        e = exp_neg((gap - half) * steepness // 100)
        sigmoid = ONE * ONE // (ONE + e)
    else:
        e = exp_neg((half - gap) * steepness // 100)
        sigmoid = e * ONE // (ONE + e)
    return low + sigmoid * (high - low) // ONE


def active_stakes(inp: EpochInputs) -> list[int]:
    """Raw stake of each row that is active and permitted, else 0."""
    cutoff = inp.params.activity_cutoff
    return [
        s if inp.permits[i] and inp.last_update[i] + cutoff >= inp.current_block else 0
        for i, s in enumerate(inp.stakes)
    ]


def stake_vectors(inp: EpochInputs) -> tuple[list[int], list[int]]:
    """``(stake, active_stake)``: all stake, and active + permitted stake, each normalised."""
    return normalize(list(inp.stakes)), normalize(active_stakes(inp))


def masked_row(raw: list[int], uid: int, updated: int, registration_blocks: list[int]) -> list[int]:
    """A permitted row of ``len(registration_blocks)`` uids: the self weight and weights not
    newer than their column's registration zeroed, then ``scale``d."""
    return scale(
        [
            raw[j] if j != uid and updated > registered else 0
            for j, registered in enumerate(registration_blocks)
        ]
    )


def masked_weights(inp: EpochInputs) -> list[list[int]]:
    """Row-scaled weights; no-permit rows, self weights and outdated weights zeroed."""
    return [
        masked_row(inp.weights[i], uid, inp.last_update[i], inp.registration_blocks)
        if inp.permits[i]
        else [0] * inp.n
        for i, uid in enumerate(inp.validator_uids)
    ]


def column_consensus(
    weights: list[list[int]], raw_active: list[int], kappa: int, n: int | None = None
) -> list[int]:
    """Stake-weighted kappa-median of every column (``raw_active`` from :func:`active_stakes`);
    ``n`` columns (default: the first row's length), all 0 without rows."""
    if n is None:
        n = len(weights[0]) if weights else 0
    return [weighted_median([row[j] for row in weights], raw_active, kappa) for j in range(n)]


def clipped_ranks(
    weights: list[list[int]], consensus: list[int], active_stake: list[int]
) -> tuple[list[list[int]], list[int]]:
    """``(clipped, ranks)``: weights clipped at consensus and the stake-weighted clipped
    support ``R_j = (sum_i a_i * min(w_ij, c_j)) // ONE`` of every column (ONE-scaled)."""
    clipped = [[min(w, c) for w, c in zip(row, consensus, strict=True)] for row in weights]
    ranks = [
        sum(a * row[j] for a, row in zip(active_stake, clipped, strict=True)) // ONE
        for j in range(len(consensus))
    ]
    return clipped, ranks


def epoch(inp: EpochInputs) -> EpochOutputs[int]:
    """Run one Yuma 3 epoch in fixed point (see the module docstring for every rounding)."""
    p = inp.params
    rows = len(inp.validator_uids)
    n = inp.n

    stake, active_stake = stake_vectors(inp)
    weights = masked_weights(inp)
    consensus = column_consensus(weights, active_stakes(inp), p.kappa, n)
    clipped, ranks = clipped_ranks(weights, consensus, active_stake)
    vtrust = [sum(row) for row in clipped]
    incentive = normalize(ranks)

    # Bonds: Yuma 3 per-entry EMA toward the (penalised) clipped weights.
    alpha_fixed = (BMA_SCALE - p.bonds_moving_average) * (ONE // BMA_SCALE)
    low, high = u16_to_fraction(p.alpha_low), u16_to_fraction(p.alpha_high)
    fresh = [reg > inp.last_epoch_block for reg in inp.registration_blocks]
    ema: list[list[int]] = []
    for i in range(rows):
        if not inp.permits[i]:
            ema.append([0] * n)
            continue
        row = []
        for j in range(n):
            w, cw = weights[i][j], clipped[i][j]
            target = w - (w - cw) * p.bonds_penalty // U16_MAX
            old = 0 if fresh[j] else u16_to_fraction(inp.bonds[i][j])
            alpha = (
                liquid_alpha(consensus[j], target, old, low, high, p.alpha_sigmoid_steepness)
                if p.liquid_alpha and consensus[j] != 0
                else alpha_fixed
            )
            row.append(min(ONE, (ONE - alpha) * old // ONE + alpha * target // ONE))
        ema.append(row)
    new_bonds = [[fraction_to_u16(e) for e in row] for row in ema]

    columns = [scale([ema[i][j] for i in range(rows)]) for j in range(n)]
    dividends = normalize(
        [
            active_stake[i] * sum(columns[j][i] * ranks[j] for j in range(n)) // ONE**2
            for i in range(rows)
        ]
    )

    emission = split_emission(inp.minted, inp.fees, incentive, dividends, active_stake, stake)
    return EpochOutputs(
        active_stake=active_stake,
        consensus=consensus,
        incentive=incentive,
        validator_trust=vtrust,
        dividends=dividends,
        bonds=new_bonds,
        emission=emission,
    )


def split_emission(
    minted: int,
    fees: int,
    incentive: list[int],
    dividends: list[int],
    active_stake: list[int],
    stake: list[int],
) -> EmissionSplit[int]:
    """18% owner / 41% miners by incentive / 41% + fees validators; sums to ``minted + fees``."""
    owner = minted * OWNER_PERCENT // 100
    miner_pool = minted * MINER_PERCENT // 100
    validator_pool = minted - owner - miner_pool + fees
    if not any(incentive):
        validator_pool += miner_pool
        miner_pool = 0
    miners = distribute(miner_pool, incentive)
    for shares in (dividends, active_stake, stake):
        if any(shares):
            return EmissionSplit(owner, miners, distribute(validator_pool, shares))
    return EmissionSplit(owner + validator_pool, miners, [0] * len(dividends))


def pack_u16_rows(matrix: list[list[int]], n: int) -> list[int]:
    """Pack rows of ``n`` u16 into words of 16 lanes (lane k = bits [16k, 16k+16)), row-major."""
    words_per_row = (n + LANES - 1) // LANES
    out: list[int] = []
    for row in matrix:
        for w in range(words_per_row):
            word = 0
            for k in range(LANES):
                j = w * LANES + k
                if j < n:
                    word |= row[j] << (16 * k)
            out.append(word)
    return out


def unpack_u16_rows(words: list[int], rows: int, n: int) -> list[list[int]]:
    """Inverse of :func:`pack_u16_rows`."""
    words_per_row = (n + LANES - 1) // LANES
    return [
        [(words[i * words_per_row + j // LANES] >> (16 * (j % LANES))) & 0xFFFF for j in range(n)]
        for i in range(rows)
    ]
