"""Yuma Consensus (Yuma 3) in integer fixed point, bit-exact with ``YumaMath.sol``.

This is the one place where the number format and rounding are specified; the
Solidity libraries (``contracts/libraries/YumaEpoch.sol`` over
``YumaMath.sol``) compute exactly the same integers and the differential tests
hold them to that.

Number formats
--------------
Three integer units, each chosen so the on-chain column pass can run on four uids at once
in one 256-bit word (64-bit lanes, see "Lane bounds" below):

* ``WONE = 65535 * 2**16``: per-entry fractions (scaled weights ``y``, consensus ``c``,
  clipped weights, bond targets, unrounded new bonds) and validator trust. A stored u16
  fraction ``b`` of 65535 is exactly ``b << 16`` in it, and ``(v + 2**15) >> 16`` turns a
  value back into a u16 fraction (round half up, :func:`wone_to_u16`).
* ``STAKE_ONE = 2**30``: the stake weight ``q_i = s_i * 2**30 // T`` of an active,
  permitted row (``T``: those rows' raw stake), which weighs consensus, ranks and dividends.
  A row whose ``q_i`` floors to 0 (stake below ``T / 2**30``) takes no part.
* ``ONE = 10**18``: the shares emission is split by (stake, incentive, dividends).

Every division is floor division (``//`` or ``>>``) unless stated.

Normalisation and dust
----------------------
``normalize(x)`` returns ``y_i = x_i * ONE // sum(x)`` and then adds the remainder ``ONE
- sum(y)`` (always ``< len(x)``) to the first index holding the largest ``x_i``. A
normalised non-zero vector therefore sums to exactly ``ONE``; an all-zero vector stays all
zero. This rule normalises stake, incentive and dividends (the vectors emission is split
by). Token amounts are split with the same rule (``distribute``): floor shares, remainder
(< entries, in base units) to the first largest share.

Weighted median (consensus)
---------------------------
For a uid column, the participants are the rows with ``q_i > 0`` (total ``Q``).
Consensus is the smallest participant weight ``v`` with ``S(v) * 65535 > Q * (65535 -
kappa)``, where ``S(v)`` is the stake weight of participants whose weight is ``<= v``;
when no value qualifies (kappa = 0) it is the largest participant weight, and with no
participant it is 0: the same order statistic as subtensor's ``weighted_median`` with
``minority = 1 - kappa``. Any correct selection algorithm gives the same value (sorting
here, quickselect in the memory-array library). The on-chain epoch does not select: the
caller passes the value and the contract checks it, with ``L`` the participants' stake
weight below it and ``U`` at or below it: ``U > L``, ``L * 65535 <= target`` and (``U *
65535 > target`` or ``U = Q``), which exactly one value satisfies (0 with no participant).

Epoch (V validator rows x N uid columns)
----------------------------------------
1. ``active_i = last_update_i + activity_cutoff >= current_block``.
2. ``stake = normalize(stakes)``; ``a = normalize(stakes_i if active_i and permit_i else
   0)`` (outputs, and the fallback split); ``q`` as above.
3. Weights: rows without permit are zero; the self weight (column ``validator_uids[i]``)
   and weights not newer than the column's registration (``last_update_i <=
   registration_block_j``) are zeroed, leaving ``x_ij`` with row sum ``X_i``; the row scale
   is ``m_i = WONE * 2**31 // X_i`` (0 for an empty row) and ``y_ij = x_ij * m_i >> 31``
   (``<= WONE``; within one unit of ``x_ij * WONE / X_i``).
4. ``c_j`` = weighted median above; clipped ``w'_ij = min(y_ij, c_j)``.
5. ``vtrust_i = sum_j w'_ij``; ranks ``R_j = sum_i q_i * w'_ij``; ``incentive =
   normalize(R)``.
6. Bond target ``t_ij = y_ij - ((y_ij - w'_ij) * P >> 16)`` with ``P = penalty + (penalty
   >> 15)`` (65535 -> 65536: the target is the clipped weight; 0: the weight). Old bond
   ``b_ij`` (u16), zero when uid ``j`` registered after ``last_epoch_block``. Rate ``A`` in
   ``[0, 65536]``: ``(1e6 - bonds_moving_average) * 65536 // 1e6``, or with liquid alpha,
   in every column with ``c_j > 0``, per entry ``alpha * 65536 // ONE`` with ``alpha`` from
   :func:`liquid_alpha` over ``c_j``, ``t_ij`` and ``b_ij`` in ONE (``v * ONE // WONE``; a
   column-local rule, so a chunked epoch can decide it from the column alone). Unrounded
   new bond ``e_ij = ((b_ij << 16) * (65536 - A) + t_ij * A) >> 16`` (``<= WONE``), stored
   as ``n_ij = (e_ij + 2**15) >> 16``; rows without permit are zero.
7. Dividends weigh the stored new bonds: per column ``g_j = R_j // sum_i n_ij`` (0 for an
   empty column), ``D_i = q_i * sum_j n_ij * g_j``, ``dividends = normalize(D)``.

Lane bounds (what lets the contract run four uids per word)
-----------------------------------------------------------
Per lane, every intermediate stays below ``2**64`` and no lane borrows from another:
``x * m < 2**63``; ``y, c, w', t, e <= WONE < 2**32``; ``(y - w') * P <= 2**48``; the
EMA sum ``< 2**49``; a column's stake weights below and at-or-below its consensus ``<= Q
<= 2**30`` each (two 32-bit halves of one lane); ``R_j <= WONE * Q < 2**62`` (so ``g_j <
2**62``); a column's bond sum ``< 2**24``; a row's trust ``<= WONE``. Dividends take
three uids per multiplication: ``3 * 65535 * g < 2**80``.

Liquid alpha's sigmoid needs ``e**-x``: :func:`exp_neg` multiplies ``floor(e**-1
* ONE)`` once per whole unit of ``x`` (floor each step), divides by the Taylor series of
``e**frac`` (each term floored, until a term is 0), and the sigmoid and rate follow with
floor divisions (:func:`liquid_alpha`).

Deviations from subtensor (deliberate)
--------------------------------------
Fixed 18/41/41 split with fees in the validator pool (instead of incentive vs
dividends halves); 32-bit weights and 30-bit stake weights instead of I32F32 (about the
same precision, in units the EVM can run four lanes of); dividends weigh the bonds as
stored (u16) by the ranks (not by rounded incentive); liquid alpha decided per column
(``c_j > 0``) instead of for the whole matrix; bonds stored round-half-up (subtensor
truncates) so a steady bond does not decay; rows that lose their permit get zero bonds in
the same epoch; no minimum-stake filter (permits come from the metagraph's top-K); the
stake fallback (no dividends) pays the permitted validator rows by active stake, else by
stake, never every staked hotkey as subtensor does: stake that holds no permit validates
nothing (tests/yuma/test_fixed_properties.py::test_validator_share_falls_back_to_stake_when_nobody_validates).

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

from chain.weights import pack_row, unpack_row
from chain.yuma.types import (
    BMA_SCALE,
    U16_MAX,
    EmissionSplit,
    EpochInputs,
    EpochOutputs,
)

ONE = 10**18
#: Unit of per-entry fractions: a u16 fraction ``b`` of 65535 is ``b << 16``.
WONE = U16_MAX << 16
#: Unit of stake weights.
STAKE_ONE = 2**30
#: Bond EMA rates and the bonds penalty run in 16 fractional bits.
RATE_ONE = 2**16
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


def wone_to_u16(x: int) -> int:
    """WONE-scaled fraction in [0, WONE] -> u16 fraction of 65535 (round half up)."""
    return (x + (1 << 15)) >> 16


def wone_to_fraction(x: int) -> int:
    """WONE-scaled fraction -> ONE-scaled fraction (floor)."""
    return x * ONE // WONE


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


def liquid_rate(consensus: int, target: int, old: int, low: int, high: int, steepness: int) -> int:
    """Liquid alpha's bond EMA rate (of RATE_ONE) for an entry with consensus and target in
    WONE and its old u16 bond: :func:`liquid_alpha` over them in ONE, floored to RATE_ONE."""
    alpha = liquid_alpha(
        wone_to_fraction(consensus),
        wone_to_fraction(target),
        u16_to_fraction(old),
        low,
        high,
        steepness,
    )
    return alpha * RATE_ONE // ONE


def active_stakes(inp: EpochInputs) -> list[int]:
    """Raw stake of each row that is active and permitted, else 0."""
    cutoff = inp.params.activity_cutoff
    return [
        s if inp.permits[i] and inp.last_update[i] + cutoff >= inp.current_block else 0
        for i, s in enumerate(inp.stakes)
    ]


def stake_weights(raw_active: list[int]) -> list[int]:
    """``q_i = s_i * STAKE_ONE // sum(s)`` of the raw active stakes (all 0 without stake)."""
    total = sum(raw_active)
    return [s * STAKE_ONE // total if total else 0 for s in raw_active]


def stake_vectors(inp: EpochInputs) -> tuple[list[int], list[int]]:
    """``(stake, active_stake)``: all stake, and active + permitted stake, each normalised."""
    return normalize(list(inp.stakes)), normalize(active_stakes(inp))


def row_scale(row_sum: int) -> int:
    """``m = WONE * 2**31 // row_sum`` (0 for an empty row): ``y = x * m >> 31``."""
    return (WONE << 31) // row_sum if row_sum else 0


def masked_row(raw: list[int], uid: int, updated: int, registration_blocks: list[int]) -> list[int]:
    """A permitted row of ``len(registration_blocks)`` uids in WONE: the self weight and
    weights not newer than their column's registration zeroed, then scaled by its sum."""
    x = [
        raw[j] if j != uid and updated > registered else 0
        for j, registered in enumerate(registration_blocks)
    ]
    m = row_scale(sum(x))
    return [xj * m >> 31 for xj in x]


def masked_weights(inp: EpochInputs) -> list[list[int]]:
    """Row-scaled weights (WONE); no-permit rows, self weights and outdated weights zeroed."""
    return [
        masked_row(inp.weights[i], uid, inp.last_update[i], inp.registration_blocks)
        if inp.permits[i]
        else [0] * inp.n
        for i, uid in enumerate(inp.validator_uids)
    ]


def column_consensus(
    weights: list[list[int]], q: list[int], kappa: int, n: int | None = None
) -> list[int]:
    """Stake-weighted kappa-median of every column (stake weights ``q`` from
    :func:`stake_weights`); ``n`` columns (default: the first row's length), all 0 without rows."""
    if n is None:
        n = len(weights[0]) if weights else 0
    return [weighted_median([row[j] for row in weights], q, kappa) for j in range(n)]


def clipped_ranks(
    weights: list[list[int]], consensus: list[int], q: list[int]
) -> tuple[list[list[int]], list[int]]:
    """``(clipped, ranks)``: weights clipped at consensus and the ranks ``R_j = sum_i q_i *
    min(y_ij, c_j)`` of every column."""
    clipped = [[min(w, c) for w, c in zip(row, consensus, strict=True)] for row in weights]
    ranks = [
        sum(qi * row[j] for qi, row in zip(q, clipped, strict=True)) for j in range(len(consensus))
    ]
    return clipped, ranks


def fixed_rate(bonds_moving_average: int) -> int:
    """The bond EMA rate ``A`` (of RATE_ONE) without liquid alpha."""
    return (BMA_SCALE - bonds_moving_average) * RATE_ONE // BMA_SCALE


def penalty_factor(bonds_penalty: int) -> int:
    """``P`` (of RATE_ONE) from the u16 bonds penalty: 65535 -> 65536."""
    return bonds_penalty + (bonds_penalty >> 15)


def new_bond(old: int, target: int, rate: int) -> int:
    """Unrounded new bond (WONE) from the old u16 bond, the target (WONE) and the rate."""
    return ((old << 16) * (RATE_ONE - rate) + target * rate) >> 16


def epoch(inp: EpochInputs) -> EpochOutputs[int]:
    """Run one Yuma 3 epoch in fixed point (see the module docstring for every rounding)."""
    p = inp.params
    rows = len(inp.validator_uids)
    n = inp.n

    stake, active_stake = stake_vectors(inp)
    q = stake_weights(active_stakes(inp))
    weights = masked_weights(inp)
    consensus = column_consensus(weights, q, p.kappa, n)
    clipped, ranks = clipped_ranks(weights, consensus, q)
    vtrust = [sum(row) for row in clipped]
    incentive = normalize(ranks)

    # Bonds: Yuma 3 per-entry EMA toward the (penalised) clipped weights.
    rate_fixed = fixed_rate(p.bonds_moving_average)
    penalty = penalty_factor(p.bonds_penalty)
    low, high = u16_to_fraction(p.alpha_low), u16_to_fraction(p.alpha_high)
    fresh = [reg > inp.last_epoch_block for reg in inp.registration_blocks]
    new_bonds: list[list[int]] = []
    for i in range(rows):
        if not inp.permits[i]:
            new_bonds.append([0] * n)
            continue
        row = []
        for j in range(n):
            y, cl = weights[i][j], clipped[i][j]
            target = y - ((y - cl) * penalty >> 16)
            old = 0 if fresh[j] else inp.bonds[i][j]
            rate = rate_fixed
            if p.liquid_alpha and consensus[j] != 0:
                rate = liquid_rate(consensus[j], target, old, low, high, p.alpha_sigmoid_steepness)
            row.append(wone_to_u16(new_bond(old, target, rate)))
        new_bonds.append(row)

    sums = [sum(new_bonds[i][j] for i in range(rows)) for j in range(n)]
    g = [r // s if s else 0 for r, s in zip(ranks, sums, strict=True)]
    dividends = normalize(
        [q[i] * sum(b * gj for b, gj in zip(new_bonds[i], g, strict=True)) for i in range(rows)]
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
    """Pack rows of ``n`` u16 into words of 16 lanes (:func:`chain.weights.pack_row`),
    row-major."""
    return [word for row in matrix for word in pack_row(row[:n])]


def unpack_u16_rows(words: list[int], rows: int, n: int) -> list[list[int]]:
    """Inverse of :func:`pack_u16_rows`."""
    per_row = (n + LANES - 1) // LANES
    return [unpack_row(words[i * per_row : (i + 1) * per_row])[:n] for i in range(rows)]
