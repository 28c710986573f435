// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {YumaMath} from "./YumaMath.sol";

/// @title YumaEpoch
/// @notice One Yuma 3 epoch over memory arrays: V validator rows x N uid columns. The steps
/// and every rounding are specified in `chain/yuma/fixed.py` (module docstring); this is the
/// same integer algorithm. Weights and bonds come packed as stored: 16 u16 per word, lane k
/// of a word at bits [16k, 16k + 16), rows of ceil(N / 16) words, row-major.
/// @dev Units as in `fixed.py`: per-entry fractions and validator trust in WONE (a u16
/// fraction b is b << 16), stake weights q in STAKE_ONE, emission shares in ONE. One V x N
/// word matrix holds the scaled weights, then (in place) the stored u16 new bonds, to keep
/// memory expansion down; per-column sums ride in 4-word column records. The hot loops use
/// assembly for array access: every index stays inside arrays whose lengths `_checkShape`
/// has verified, and every sum is bounded in the comment beside it.
library YumaEpoch {
    using YumaMath for uint256[];

    // Assembly needs literals, so the units are spelled out (as in YumaMath).
    uint256 internal constant ONE = 1e18; // = YumaMath.ONE
    uint256 internal constant U16_MAX = 65_535; // = YumaMath.U16_MAX
    /// @notice Unit of per-entry fractions and validator trust: 65535 << 16 (= YumaMath.WONE).
    uint256 internal constant WONE = 4_294_901_760;
    /// @notice Unit of bond EMA rates and the bonds penalty factor: 2^16 (= YumaMath.RATE_ONE).
    uint256 internal constant RATE_ONE = 65_536;
    /// @notice 2^15: added before `>> 16` to round a WONE value to u16 half up.
    uint256 internal constant ROUND = 32_768;
    uint256 internal constant BMA_SCALE = 1_000_000;
    uint256 internal constant OWNER_PERCENT = 18;
    uint256 internal constant MINER_PERCENT = 41;
    /// @notice Stakes, minted amount and fees must stay below this (keeps sums far from
    /// overflow; the token cap is 21M * 1e18 < 2^85).
    uint256 internal constant MAX_AMOUNT = 2 ** 128;

    /// @notice An input array does not match the epoch's shape.
    /// @param what 0 stakes, 1 permits, 2 lastUpdate, 3 registrationBlocks, 4 weights,
    /// 5 bonds, 6 a validator uid out of range (length = the uid).
    error YumaEpochShapeMismatch(uint256 what, uint256 length, uint256 expected);

    /// @notice A hyperparameter is outside its range.
    /// @param what 0 bondsMovingAverage (max 1e6), 1 alphaLow (max alphaHigh),
    /// 2 alphaSigmoidSteepness (max 10000).
    error YumaEpochParamOutOfRange(uint256 what, uint256 value, uint256 max);

    /// @notice A stake, the minted amount or the fees are 2^128 or more.
    /// @param what 0 stake, 1 minted, 2 fees.
    error YumaEpochAmountTooLarge(uint256 what, uint256 amount);

    /// @notice Epoch hyperparameters (see `chain/yuma/types.py: YumaParams`).
    struct Params {
        uint16 kappa;
        uint32 bondsMovingAverage;
        uint16 bondsPenalty;
        bool liquidAlpha;
        uint16 alphaLow;
        uint16 alphaHigh;
        uint16 alphaSigmoidSteepness;
        uint64 activityCutoff;
    }

    /// @notice Everything one epoch reads (see `chain/yuma/types.py: EpochInputs`).
    struct Inputs {
        uint256 n;
        uint16[] validatorUids;
        uint256[] stakes;
        bool[] permits;
        uint64[] lastUpdate;
        uint64[] registrationBlocks;
        uint256[] weights;
        uint256[] bonds;
        uint64 currentBlock;
        uint64 lastEpochBlock;
        uint256 minted;
        uint256 fees;
        Params params;
    }

    /// @notice Results of one epoch; `bonds` packed like the input.
    struct Outputs {
        uint256[] activeStake; // ONE-scaled, sums to ONE (or all zero)
        uint256[] consensus; // WONE-scaled, per uid
        uint256[] incentive; // ONE-scaled, sums to ONE (or all zero)
        uint256[] validatorTrust; // WONE-scaled, per row (<= WONE)
        uint256[] dividends; // ONE-scaled, sums to ONE (or all zero)
        uint256[] bonds;
        uint256 ownerEmission;
        uint256[] minerEmission;
        uint256[] validatorEmission;
    }

    /// @notice Runs the epoch.
    function run(Inputs memory inp) internal pure returns (Outputs memory out) {
        uint256 rows = inp.validatorUids.length;
        uint256 n = inp.n;
        _checkShape(inp, rows, n);

        // Stake: all, and active + permitted (raw until the stake weights are taken).
        uint256[] memory stake = new uint256[](rows);
        out.activeStake = new uint256[](rows);
        for (uint256 i; i < rows; ++i) {
            stake[i] = inp.stakes[i];
            bool active = uint256(inp.lastUpdate[i]) + inp.params.activityCutoff >= inp.currentBlock;
            if (active && inp.permits[i]) out.activeStake[i] = inp.stakes[i];
        }
        uint256[] memory q = YumaMath.stakeWeights(out.activeStake);
        // Stakes < 2^128 (checked), so sums stay below 2^136: within normalize's precondition.
        stake.normalize();
        out.activeStake.normalize();

        uint256[] memory m = _maskedWeights(inp, rows, n);
        out.consensus = _consensus(m, q, n, inp.params.kappa);
        uint256[] memory cols = _columnRecords(inp, out.consensus);
        (out.bonds, out.validatorTrust) = _bonds(inp, m, cols, q);
        out.incentive = _incentive(cols, n);
        out.dividends = _dividends(m, cols, q, n);
        _split(inp, out, stake);
    }

    function _checkShape(Inputs memory inp, uint256 rows, uint256 n) private pure {
        uint256 words = rows * ((n + 15) >> 4);
        if (inp.stakes.length != rows) revert YumaEpochShapeMismatch(0, inp.stakes.length, rows);
        if (inp.permits.length != rows) revert YumaEpochShapeMismatch(1, inp.permits.length, rows);
        if (inp.lastUpdate.length != rows) {
            revert YumaEpochShapeMismatch(2, inp.lastUpdate.length, rows);
        }
        if (inp.registrationBlocks.length != n) {
            revert YumaEpochShapeMismatch(3, inp.registrationBlocks.length, n);
        }
        if (inp.weights.length != words) revert YumaEpochShapeMismatch(4, inp.weights.length, words);
        if (inp.bonds.length != words) revert YumaEpochShapeMismatch(5, inp.bonds.length, words);
        for (uint256 i; i < rows; ++i) {
            if (inp.validatorUids[i] >= n) revert YumaEpochShapeMismatch(6, inp.validatorUids[i], n);
            if (inp.stakes[i] >= MAX_AMOUNT) revert YumaEpochAmountTooLarge(0, inp.stakes[i]);
        }
        if (inp.minted >= MAX_AMOUNT) revert YumaEpochAmountTooLarge(1, inp.minted);
        if (inp.fees >= MAX_AMOUNT) revert YumaEpochAmountTooLarge(2, inp.fees);
        Params memory p = inp.params;
        if (p.bondsMovingAverage > BMA_SCALE) {
            revert YumaEpochParamOutOfRange(0, p.bondsMovingAverage, BMA_SCALE);
        }
        if (p.alphaLow > p.alphaHigh) revert YumaEpochParamOutOfRange(1, p.alphaLow, p.alphaHigh);
        if (p.alphaSigmoidSteepness > 10_000) {
            revert YumaEpochParamOutOfRange(2, p.alphaSigmoidSteepness, 10_000);
        }
    }

    /// @dev Row-scaled weights in WONE, `y = x * m >> 31` with the row scale `m = (WONE << 31)
    /// / X` (`X`: the row sum of the masked raw weights `x`), after zeroing non-permitted rows,
    /// self weights and weights not newer than the column's registration. Flat V x N.
    function _maskedWeights(Inputs memory inp, uint256 rows, uint256 n)
        private
        pure
        returns (uint256[] memory m)
    {
        m = new uint256[](rows * n);
        uint256 wpr = (n + 15) >> 4;
        uint64[] memory reg = inp.registrationBlocks;
        uint256[] memory packed = inp.weights;
        for (uint256 i; i < rows; ++i) {
            if (!inp.permits[i]) continue;
            uint256 self = inp.validatorUids[i];
            uint256 updated = inp.lastUpdate[i];
            // Row i of m and of packed exist (shapes checked); j < n = reg.length. Entries are
            // u16 and x <= X, so x * m <= WONE << 31 < 2^63 and y <= WONE.
            assembly ("memory-safe") {
                let mp := add(add(m, 0x20), shl(5, mul(i, n)))
                let pp := add(add(packed, 0x20), shl(5, mul(i, wpr)))
                let rp := add(reg, 0x20)
                let total := 0
                let word := 0
                for { let j := 0 } lt(j, n) { j := add(j, 1) } {
                    let lane := shl(4, and(j, 15))
                    if iszero(lane) { word := mload(add(pp, shl(5, shr(4, j)))) }
                    let v := and(shr(lane, word), 0xffff)
                    if and(gt(v, 0), and(iszero(eq(j, self)), gt(updated, mload(add(rp, shl(5, j)))))) {
                        mstore(add(mp, shl(5, j)), v)
                        total := add(total, v)
                    }
                }
                if total {
                    let scale := div(shl(31, WONE), total)
                    let end := add(mp, shl(5, n))
                    for { let p := mp } lt(p, end) { p := add(p, 0x20) } {
                        let v := mload(p)
                        if v { mstore(p, shr(31, mul(v, scale))) }
                    }
                }
            }
        }
    }

    /// @dev Stake-weighted kappa-median (WONE) of each column over the rows with `q_i > 0`.
    function _consensus(uint256[] memory m, uint256[] memory q, uint256 n, uint256 kappa)
        private
        pure
        returns (uint256[] memory consensus)
    {
        consensus = new uint256[](n);
        (uint256[] memory who, uint256 target) = _participants(q, kappa);
        if (who.length == 0) return consensus;
        uint256[] memory keys = new uint256[](2 * who.length);
        for (uint256 j; j < n; ++j) {
            // Key of each participant in column j: `y << 128 | q_i` (q_i <= 2^30).
            // who[k] < rows, so who[k] * n + j < rows * n = m.length.
            assembly ("memory-safe") {
                let mp := add(add(m, 0x20), shl(5, j))
                for { let k := 0 } lt(k, mload(who)) { k := add(k, 1) } {
                    let i := mload(add(who, shl(5, add(k, 1))))
                    let key := or(shl(128, mload(add(mp, shl(5, mul(i, n))))), mload(add(q, shl(5, add(i, 1)))))
                    mstore(add(keys, shl(5, add(k, 1))), key)
                }
            }
            consensus[j] = YumaMath.weightedMedian(keys, who.length, target);
        }
    }

    /// @dev Rows with a non-zero stake weight, and the median target `Q * (65535 - kappa)`.
    function _participants(uint256[] memory q, uint256 kappa)
        private
        pure
        returns (uint256[] memory who, uint256 target)
    {
        uint256 count;
        uint256 total;
        for (uint256 i; i < q.length; ++i) {
            if (q[i] != 0) {
                ++count;
                total += q[i];
            }
        }
        who = new uint256[](count);
        count = 0;
        for (uint256 i; i < q.length; ++i) {
            if (q[i] != 0) who[count++] = i;
        }
        target = total * (U16_MAX - kappa);
    }

    // Column records: 4 words per uid column (record j at word 4j), the rank and bond sum
    // filled while the bond rows are computed.
    uint256 private constant COL_CONSENSUS = 0x00; // c_j (WONE)
    uint256 private constant COL_FRESH = 0x20; // 1: registered after the last epoch
    uint256 private constant COL_RANK = 0x40; // R_j = sum_i q_i * clipped_ij (< 2^62)
    uint256 private constant COL_BOND_SUM = 0x60; // sum_i storedNewBond_ij (u16 values)

    /// @dev Per-row context of the bond pass (read from assembly by offset, so keep the
    /// field order: every field is one word).
    struct RowCtx {
        uint256 stakeWeight; // 0x00, q_i
        uint256 penalty; // 0x20, P = penalty + (penalty >> 15), of RATE_ONE
        uint256 rate; // 0x40, the fixed rate A, of RATE_ONE
        uint256 rates; // 0x60, address of the row's per-entry rates (liquid alpha), else 0
        uint256 n; // 0x80
        uint256 oldRow; // 0xa0, address of the row's first packed old-bond word
        uint256 newRow; // 0xc0, address of the row's first packed new-bond word
        uint256 mRow; // 0xe0, address of the row's first entry of m
        uint256 cols; // 0x100, address of the first column record
        uint256 low; // liquid alpha bounds (ONE-scaled) and steepness
        uint256 high;
        uint256 steepness;
    }

    function _columnRecords(Inputs memory inp, uint256[] memory consensus)
        private
        pure
        returns (uint256[] memory cols)
    {
        uint256 n = consensus.length;
        cols = new uint256[](n * 4);
        for (uint256 j; j < n; ++j) {
            cols[j * 4] = consensus[j];
            if (inp.registrationBlocks[j] > inp.lastEpochBlock) cols[j * 4 + 1] = 1;
        }
    }

    /// @dev Yuma 3 per-entry bond EMA toward the penalised clipped weights, row by row, with
    /// validator trust, ranks and bond column sums accumulated on the way. Overwrites `m`
    /// (scaled weights) with the stored u16 new bonds; returns them packed, and the trust.
    function _bonds(Inputs memory inp, uint256[] memory m, uint256[] memory cols, uint256[] memory q)
        private
        pure
        returns (uint256[] memory packed, uint256[] memory trust)
    {
        uint256 rows = q.length;
        uint256 n = inp.n;
        uint256 wpr = (n + 15) >> 4;
        packed = new uint256[](inp.bonds.length);
        trust = new uint256[](rows);
        Params memory p = inp.params;
        uint256 penalty = p.bondsPenalty;
        RowCtx memory ctx = RowCtx({
            stakeWeight: 0,
            penalty: penalty + (penalty >> 15),
            rate: (BMA_SCALE - p.bondsMovingAverage) * RATE_ONE / BMA_SCALE,
            rates: 0,
            n: n,
            oldRow: 0,
            newRow: 0,
            mRow: 0,
            cols: 0,
            low: YumaMath.u16ToFraction(p.alphaLow),
            high: YumaMath.u16ToFraction(p.alphaHigh),
            steepness: p.alphaSigmoidSteepness
        });
        // With liquid alpha, each row's rates are worked out first (`_liquidRates`).
        uint256[] memory rates;
        if (p.liquidAlpha) {
            rates = new uint256[](n);
            assembly ("memory-safe") {
                mstore(add(ctx, 0x60), add(rates, 0x20))
            }
        }
        uint256[] memory oldPacked = inp.bonds;
        for (uint256 i; i < rows; ++i) {
            // Rows without permit stay zero: their weights were never filled in.
            if (!inp.permits[i]) continue;
            ctx.stakeWeight = q[i];
            // Addresses of row i inside arrays whose shapes _checkShape verified.
            assembly ("memory-safe") {
                mstore(add(ctx, 0xa0), add(add(oldPacked, 0x20), shl(5, mul(i, wpr))))
                mstore(add(ctx, 0xc0), add(add(packed, 0x20), shl(5, mul(i, wpr))))
                mstore(add(ctx, 0xe0), add(add(m, 0x20), shl(5, mul(i, n))))
                mstore(add(ctx, 0x100), add(cols, 0x20))
            }
            if (p.liquidAlpha) _liquidRates(ctx, rates);
            trust[i] = _row(ctx);
        }
    }

    /// @dev One row of the EMA (see `_bonds`), at the fixed rate or at the row's liquid rates.
    /// Returns validator trust.
    function _row(RowCtx memory ctx) private pure returns (uint256 trust) {
        // Every address is inside row i of m / the packed arrays / the rates, or inside column
        // record j < n. Values: y, c, cl, t <= WONE < 2^32, (y - cl) * P <= 2^48, old << 16 <=
        // WONE and A <= RATE_ONE, so the EMA sum stays below 2^49 and its result e <= WONE
        // rounds to a u16. Trust <= WONE (a row of y sums to at most WONE); a rank sums q_i * cl
        // over rows with sum_i q_i <= STAKE_ONE (< 2^62); a bond column sum <= rows * 65535.
        assembly ("memory-safe") {
            let n := mload(add(ctx, 0x80))
            let mp := mload(add(ctx, 0xe0))
            let cp := mload(add(ctx, 0x100))
            let acc := 0
            let word := 0 // the packed old-bond word of the current 16 entries
            for { let j := 0 } lt(j, n) { j := add(j, 1) } {
                let rec := add(cp, shl(7, j))
                let lane := shl(4, and(j, 15))
                if iszero(lane) { word := mload(add(mload(add(ctx, 0xa0)), shl(5, shr(4, j)))) }
                let b := 0 // the stored new bond
                {
                    let old := 0
                    if iszero(mload(add(rec, COL_FRESH))) { old := and(shr(lane, word), 0xffff) }
                    let y := mload(add(mp, shl(5, j)))
                    // A zero weight with a zero old bond leaves everything at zero.
                    if or(y, old) {
                        let cl := mload(rec)
                        if lt(y, cl) { cl := y }
                        trust := add(trust, cl)
                        {
                            let qi := mload(ctx)
                            if qi {
                                let r := add(rec, COL_RANK)
                                mstore(r, add(mload(r), mul(qi, cl)))
                            }
                        }
                        // Target t = y - ((y - cl) * P >> 16): cl at full penalty.
                        let t := sub(y, shr(16, mul(sub(y, cl), mload(add(ctx, 0x20)))))
                        let a := mload(add(ctx, 0x40))
                        {
                            let rp := mload(add(ctx, 0x60))
                            if rp { a := mload(add(rp, shl(5, j))) }
                        }
                        // e = ((old << 16) * (RATE_ONE - A) + t * A) >> 16, stored (e + 2^15) >> 16.
                        let e := shr(16, add(mul(shl(16, old), sub(RATE_ONE, a)), mul(t, a)))
                        b := shr(16, add(e, ROUND))
                    }
                }
                mstore(add(mp, shl(5, j)), b)
                if b {
                    let s := add(rec, COL_BOND_SUM)
                    mstore(s, add(mload(s), b))
                    acc := or(acc, shl(lane, b))
                }
                if or(eq(lane, 240), eq(add(j, 1), n)) {
                    mstore(add(mload(add(ctx, 0xc0)), shl(5, shr(4, j))), acc)
                    acc := 0
                }
            }
        }
    }

    /// @dev The row's per-entry rates with liquid alpha (`YumaMath.liquidRate`), for `_row`
    /// (plain Solidity: the sigmoid dominates the cost anyway).
    function _liquidRates(RowCtx memory ctx, uint256[] memory rates) private pure {
        for (uint256 j; j < ctx.n; ++j) {
            (uint256 y, uint256 c, uint256 old) = _entry(ctx, j);
            uint256 rate = ctx.rate;
            // A column without consensus keeps the fixed rate (the column-local rule); an entry
            // with zero weight and zero old bond stays zero at any rate.
            if (c != 0 && (y | old) != 0) {
                uint256 cl = y < c ? y : c;
                uint256 t = y - ((y - cl) * ctx.penalty >> 16); // the target, as in `_row`
                rate = YumaMath.liquidRate(c, t, old, ctx.low, ctx.high, ctx.steepness);
            }
            rates[j] = rate;
        }
    }

    /// @dev Reads entry j of the row: scaled weight, consensus and old u16 bond (0 for a fresh
    /// uid).
    function _entry(RowCtx memory ctx, uint256 j) private pure returns (uint256 y, uint256 c, uint256 old) {
        // j < n: inside the row, its packed words and the column records.
        assembly ("memory-safe") {
            let rec := add(mload(add(ctx, 0x100)), shl(7, j))
            y := mload(add(mload(add(ctx, 0xe0)), shl(5, j)))
            c := mload(rec)
            if iszero(mload(add(rec, COL_FRESH))) {
                let word := mload(add(mload(add(ctx, 0xa0)), shl(5, shr(4, j))))
                old := and(shr(shl(4, and(j, 15)), word), 0xffff)
            }
        }
    }

    /// @dev Incentive: the ranks, normalised (each < 2^62: within normalize's precondition).
    function _incentive(uint256[] memory cols, uint256 n) private pure returns (uint256[] memory incentive) {
        incentive = new uint256[](n);
        for (uint256 j; j < n; ++j) {
            incentive[j] = cols[j * 4 + 2];
        }
        incentive.normalize();
    }

    /// @dev Dividends `D_i = q_i * sum_j n_ij * g_j`, normalised, over the stored new bonds
    /// `n` (in `m`) and the column gains `g_j = R_j / sum_i n_ij` (0 for an empty column).
    function _dividends(uint256[] memory m, uint256[] memory cols, uint256[] memory q, uint256 n)
        private
        pure
        returns (uint256[] memory dividends)
    {
        uint256[] memory g = new uint256[](n);
        for (uint256 j; j < n; ++j) {
            uint256 sum = cols[j * 4 + 3];
            if (sum != 0) g[j] = cols[j * 4 + 2] / sum;
        }
        uint256 rows = q.length;
        dividends = new uint256[](rows);
        for (uint256 i; i < rows; ++i) {
            if (q[i] == 0) continue;
            uint256 acc;
            // Row i of m and g (j < n) in range. n_ij <= sum_i n_ij, so a row's sum is at most
            // sum_j R_j < N * 2^62, and D_i (and sum_i D_i <= STAKE_ONE * sum_j R_j) below
            // N * 2^92: within normalize's precondition.
            assembly ("memory-safe") {
                let mp := add(add(m, 0x20), shl(5, mul(i, n)))
                let gp := add(g, 0x20)
                for { let j := 0 } lt(j, n) { j := add(j, 1) } {
                    let b := mload(add(mp, shl(5, j)))
                    if b { acc := add(acc, mul(b, mload(add(gp, shl(5, j))))) }
                }
            }
            dividends[i] = q[i] * acc;
        }
        dividends.normalize();
    }

    /// @dev 18% owner, 41% miners by incentive, the rest plus fees to validators; fallbacks
    /// and dust as documented in `chain/yuma/fixed.py`.
    function _split(Inputs memory inp, Outputs memory out, uint256[] memory stake) private pure {
        uint256 owner = inp.minted * OWNER_PERCENT / 100;
        uint256 minerPool = inp.minted * MINER_PERCENT / 100;
        uint256 validatorPool = inp.minted - owner - minerPool + inp.fees;
        if (!out.incentive.anyNonZero()) {
            validatorPool += minerPool;
            minerPool = 0;
        }
        out.minerEmission = YumaMath.distribute(minerPool, out.incentive);
        if (out.dividends.anyNonZero()) {
            out.validatorEmission = YumaMath.distribute(validatorPool, out.dividends);
        } else if (out.activeStake.anyNonZero()) {
            out.validatorEmission = YumaMath.distribute(validatorPool, out.activeStake);
        } else if (stake.anyNonZero()) {
            out.validatorEmission = YumaMath.distribute(validatorPool, stake);
        } else {
            out.validatorEmission = new uint256[](stake.length);
            owner += validatorPool;
        }
        out.ownerEmission = owner;
    }
}
