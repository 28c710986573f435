// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {YumaMath} from "./YumaMath.sol";

/// @title YumaEpoch
/// @notice One Yuma 3 epoch over memory arrays: V validator rows x N uid columns. The steps
/// and every rounding are specified in `chain/yuma/fixed.py` (module docstring); this is the
/// same integer algorithm. Weights and bonds come packed as stored: 16 u16 per word, lane k
/// of a word at bits [16k, 16k + 16), rows of ceil(N / 16) words, row-major.
/// @dev One V x N word matrix holds the normalised weights, then (in place) the new bonds,
/// to keep memory expansion down; per-column sums ride in 8-word column records. The hot loops use
/// assembly for array access: every index stays inside arrays whose lengths `_checkShape`
/// has verified, and every sum is bounded in the comment beside it.
library YumaEpoch {
    using YumaMath for uint256[];

    uint256 internal constant ONE = 1e18; // = YumaMath.ONE (assembly needs a literal)
    uint256 internal constant U16_MAX = 65_535; // = YumaMath.U16_MAX
    uint256 internal constant HALF = 5e17; // ONE / 2, rounds bonds to u16 half up
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

    /// @notice Results of one epoch; ONE-scaled fractions, `bonds` packed like the input.
    struct Outputs {
        uint256[] activeStake;
        uint256[] consensus;
        uint256[] incentive;
        uint256[] validatorTrust;
        uint256[] dividends;
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

        // Stake: all, and active + permitted.
        uint256[] memory stake = new uint256[](rows);
        uint256[] memory rawActive = new uint256[](rows);
        out.activeStake = new uint256[](rows);
        for (uint256 i; i < rows; ++i) {
            stake[i] = inp.stakes[i];
            bool active = uint256(inp.lastUpdate[i]) + inp.params.activityCutoff >= inp.currentBlock;
            if (active && inp.permits[i]) {
                rawActive[i] = inp.stakes[i];
                out.activeStake[i] = inp.stakes[i];
            }
        }
        // Stakes < 2^128 (checked), so sums stay below 2^136: within normalize's precondition.
        stake.normalize();
        out.activeStake.normalize();

        uint256[] memory m = _maskedWeights(inp, rows, n);
        // Consensus weighs raw stake: exact, so normalisation dust cannot break ties.
        out.consensus = _consensus(m, rawActive, n, inp.params.kappa);
        uint256[] memory cols = _columnRecords(inp, out.consensus);
        (out.bonds, out.validatorTrust) = _bonds(inp, m, cols, out.activeStake);
        // Ranks: the exact sums (<= ONE^2) divided once by ONE.
        for (uint256 j; j < n; ++j) {
            cols[j * 8 + 2] /= ONE;
        }
        out.incentive = _incentive(cols, n);
        out.dividends = _dividends(m, cols, out.activeStake, n);
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

    /// @dev Row-scaled weights (`x * ONE / rowSum`, no remainder) with non-permitted rows, self
    /// weights and weights not newer than the column's registration zeroed. Flat V x N.
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
            // u16, so the sum stays below 2^24 and x * ONE below 2^80.
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
                    let end := add(mp, shl(5, n))
                    for { let q := mp } lt(q, end) { q := add(q, 0x20) } {
                        let v := mload(q)
                        if v { mstore(q, div(mul(v, ONE), total)) }
                    }
                }
            }
        }
    }

    /// @dev Stake-weighted kappa-median of each column over rows with (raw) active stake `a`.
    function _consensus(uint256[] memory m, uint256[] memory a, uint256 n, uint256 kappa)
        private
        pure
        returns (uint256[] memory consensus)
    {
        consensus = new uint256[](n);
        (uint256[] memory who, uint256 target) = _participants(a, kappa);
        if (who.length == 0) return consensus;
        uint256[] memory keys = new uint256[](2 * who.length);
        for (uint256 j; j < n; ++j) {
            // Key of each participant in column j: `weight << 128 | stake` (stakes < 2^128,
            // checked). who[k] < rows, so who[k] * n + j < rows * n = m.length.
            assembly ("memory-safe") {
                let mp := add(add(m, 0x20), shl(5, j))
                for { let k := 0 } lt(k, mload(who)) { k := add(k, 1) } {
                    let i := mload(add(who, shl(5, add(k, 1))))
                    let key := or(shl(128, mload(add(mp, shl(5, mul(i, n))))), mload(add(a, shl(5, add(i, 1)))))
                    mstore(add(keys, shl(5, add(k, 1))), key)
                }
            }
            consensus[j] = YumaMath.weightedMedian(keys, who.length, target);
        }
    }

    /// @dev Rows with non-zero active stake, and the median target `T * (65535 - kappa)`.
    function _participants(uint256[] memory a, uint256 kappa)
        private
        pure
        returns (uint256[] memory who, uint256 target)
    {
        uint256 count;
        uint256 total;
        for (uint256 i; i < a.length; ++i) {
            if (a[i] != 0) {
                ++count;
                total += a[i];
            }
        }
        who = new uint256[](count);
        count = 0;
        for (uint256 i; i < a.length; ++i) {
            if (a[i] != 0) who[count++] = i;
        }
        target = total * (U16_MAX - kappa);
    }

    // Column records: 8 words per uid column, filled while the bond rows are computed.
    uint256 private constant COL_CONSENSUS = 0x00;
    uint256 private constant COL_FRESH = 0x20; // 1: registered after the last epoch
    uint256 private constant COL_RANK = 0x40; // sum_i a_i * clipped_ij (then / ONE)
    uint256 private constant COL_BOND_SUM = 0x60; // sum_i newBond_ij

    /// @dev Per-row context of the bond pass (read from assembly by offset, so keep the
    /// field order: every field is one word).
    struct RowCtx {
        uint256 activeStake; // 0x00
        uint256 penalty; // 0x20
        uint256 alpha; // 0x40, the fixed rate
        uint256 row; // 0x60
        uint256 n; // 0x80
        uint256 oldRow; // 0xa0, address of the row's first packed old-bond word
        uint256 newRow; // 0xc0, address of the row's first packed new-bond word
        uint256 mRow; // 0xe0, address of the row's first entry of m
        uint256 cols; // 0x100, address of the first column record
        uint256 low; // liquid alpha bounds and steepness
        uint256 high;
        uint256 steepness;
    }

    function _columnRecords(Inputs memory inp, uint256[] memory consensus)
        private
        pure
        returns (uint256[] memory cols)
    {
        uint256 n = consensus.length;
        cols = new uint256[](n * 8);
        for (uint256 j; j < n; ++j) {
            cols[j * 8] = consensus[j];
            if (inp.registrationBlocks[j] > inp.lastEpochBlock) cols[j * 8 + 1] = 1;
        }
    }

    /// @dev Yuma 3 per-entry bond EMA toward the penalised clipped weights, row by row, with
    /// validator trust, ranks and bond column sums accumulated on the way. Overwrites `m`
    /// (normalised weights) with the ONE-scaled new bonds; returns them packed as u16.
    function _bonds(Inputs memory inp, uint256[] memory m, uint256[] memory cols, uint256[] memory a)
        private
        pure
        returns (uint256[] memory packed, uint256[] memory trust)
    {
        uint256 rows = a.length;
        uint256 n = inp.n;
        uint256 wpr = (n + 15) >> 4;
        packed = new uint256[](inp.bonds.length);
        trust = new uint256[](rows);
        Params memory p = inp.params;
        RowCtx memory ctx = RowCtx({
            activeStake: 0,
            penalty: p.bondsPenalty,
            alpha: (BMA_SCALE - p.bondsMovingAverage) * (ONE / BMA_SCALE),
            row: 0,
            n: n,
            oldRow: 0,
            newRow: 0,
            mRow: 0,
            cols: 0,
            low: YumaMath.u16ToFraction(p.alphaLow),
            high: YumaMath.u16ToFraction(p.alphaHigh),
            steepness: p.alphaSigmoidSteepness
        });
        // Liquid alpha is decided per column (consensus > 0), see `_liquidEntry`.
        bool liquid = p.liquidAlpha;
        uint256[] memory oldPacked = inp.bonds;
        for (uint256 i; i < rows; ++i) {
            // Rows without permit stay zero: their weights were never filled in.
            if (!inp.permits[i]) continue;
            ctx.activeStake = a[i];
            ctx.row = i;
            // Addresses of row i inside arrays whose shapes _checkShape verified.
            assembly ("memory-safe") {
                mstore(add(ctx, 0xa0), add(add(oldPacked, 0x20), shl(5, mul(i, wpr))))
                mstore(add(ctx, 0xc0), add(add(packed, 0x20), shl(5, mul(i, wpr))))
                mstore(add(ctx, 0xe0), add(add(m, 0x20), shl(5, mul(i, n))))
                mstore(add(ctx, 0x100), add(cols, 0x20))
            }
            trust[i] = liquid ? _liquidRow(ctx) : _fixedRow(ctx);
        }
    }

    /// @dev One row of the EMA at the fixed rate (see `_bonds`). Returns validator trust.
    function _fixedRow(RowCtx memory ctx) private pure returns (uint256 trust) {
        // Every address is inside row ctx.row of m / the packed arrays or inside column
        // record j < n. Values: w, cl, old, alpha <= ONE, so products stay below 2^120 and
        // the EMA below 2 * ONE; trust <= ONE (the row sums to ONE); a rank sums a_i * cl
        // over rows with sum_i a_i <= ONE (<= ONE^2); a bond column sum <= rows * ONE.
        assembly ("memory-safe") {
            let n := mload(add(ctx, 0x80))
            let mp := mload(add(ctx, 0xe0))
            let cp := mload(add(ctx, 0x100))
            let acc := 0
            let word := 0 // the packed old-bond word of the current 16 entries
            for { let j := 0 } lt(j, n) { j := add(j, 1) } {
                let c8 := add(cp, shl(8, j))
                let lane := shl(4, and(j, 15))
                if iszero(lane) { word := mload(add(mload(add(ctx, 0xa0)), shl(5, shr(4, j)))) }
                let e := 0
                {
                    let old := 0
                    if iszero(mload(add(c8, COL_FRESH))) {
                        old := div(mul(and(shr(lane, word), 0xffff), ONE), U16_MAX)
                    }
                    let w := mload(add(mp, shl(5, j)))
                    // A zero weight with a zero old bond leaves everything at zero.
                    if or(w, old) {
                        let cl := mload(c8)
                        if lt(w, cl) { cl := w }
                        trust := add(trust, cl)
                        {
                            let ai := mload(ctx)
                            if ai {
                                let r := add(c8, COL_RANK)
                                mstore(r, add(mload(r), mul(ai, cl)))
                            }
                        }
                        // t = w - (w - cl) * penalty / 65535, which is cl at full penalty.
                        let t := cl
                        {
                            let penalty := mload(add(ctx, 0x20))
                            if lt(penalty, U16_MAX) { t := sub(w, div(mul(sub(w, cl), penalty), U16_MAX)) }
                        }
                        let alpha := mload(add(ctx, 0x40))
                        e := add(div(mul(sub(ONE, alpha), old), ONE), div(mul(alpha, t), ONE))
                        if gt(e, ONE) { e := ONE }
                    }
                }
                if e {
                    mstore(add(mp, shl(5, j)), e)
                    {
                        let s := add(c8, COL_BOND_SUM)
                        mstore(s, add(mload(s), e))
                    }
                    acc := or(acc, shl(lane, div(add(mul(e, U16_MAX), HALF), ONE)))
                }
                if iszero(e) { mstore(add(mp, shl(5, j)), 0) }
                if or(eq(lane, 240), eq(add(j, 1), n)) {
                    mstore(add(mload(add(ctx, 0xc0)), shl(5, shr(4, j))), acc)
                    acc := 0
                }
            }
        }
    }

    /// @dev One row of the EMA with a liquid alpha per entry (plain Solidity: the sigmoid
    /// dominates the cost anyway). Same accumulations as `_fixedRow`.
    function _liquidRow(RowCtx memory ctx) private pure returns (uint256 trust) {
        for (uint256 j; j < ctx.n; ++j) {
            (uint256 cl, uint256 e) = _liquidEntry(ctx, j);
            trust += cl;
            _record(ctx, j, cl, e);
        }
    }

    /// @dev Clipped weight and new bond of entry j with liquid alpha.
    function _liquidEntry(RowCtx memory ctx, uint256 j) private pure returns (uint256 cl, uint256 e) {
        (uint256 w, uint256 c, uint256 old) = _entry(ctx, j);
        cl = w < c ? w : c;
        uint256 t = w - (w - cl) * ctx.penalty / U16_MAX;
        // A column without consensus keeps the fixed rate (the column-local rule).
        uint256 alpha = c == 0 ? ctx.alpha : YumaMath.liquidAlpha(c, t, old, ctx.low, ctx.high, ctx.steepness);
        e = (ONE - alpha) * old / ONE + alpha * t / ONE;
        if (e > ONE) e = ONE;
    }

    /// @dev Reads entry j of the row: weight, consensus and old bond (0 for a fresh uid).
    function _entry(RowCtx memory ctx, uint256 j) private pure returns (uint256 w, uint256 c, uint256 old) {
        // j < n: inside the row, its packed words and the column records.
        assembly ("memory-safe") {
            let c8 := add(mload(add(ctx, 0x100)), shl(8, j))
            w := mload(add(mload(add(ctx, 0xe0)), shl(5, j)))
            c := mload(c8)
            if iszero(mload(add(c8, COL_FRESH))) {
                let word := mload(add(mload(add(ctx, 0xa0)), shl(5, shr(4, j))))
                old := div(mul(and(shr(shl(4, and(j, 15)), word), 0xffff), ONE), U16_MAX)
            }
        }
    }

    /// @dev Stores new bond `e` of entry j and accumulates rank, bond sum and bond max.
    function _record(RowCtx memory ctx, uint256 j, uint256 cl, uint256 e) private pure {
        // j < n: inside the row, its packed words and the column records; bounds as in
        // `_fixedRow`.
        assembly ("memory-safe") {
            let c8 := add(mload(add(ctx, 0x100)), shl(8, j))
            mstore(add(mload(add(ctx, 0xe0)), shl(5, j)), e)
            let r := add(c8, COL_RANK)
            mstore(r, add(mload(r), mul(mload(ctx), cl)))
            let s := add(c8, COL_BOND_SUM)
            mstore(s, add(mload(s), e))
            let word := add(mload(add(ctx, 0xc0)), shl(5, shr(4, j)))
            mstore(word, or(mload(word), shl(shl(4, and(j, 15)), div(add(mul(e, U16_MAX), HALF), ONE))))
        }
    }

    /// @dev Incentive: the ranks, normalised.
    function _incentive(uint256[] memory cols, uint256 n) private pure returns (uint256[] memory incentive) {
        incentive = new uint256[](n);
        for (uint256 j; j < n; ++j) {
            incentive[j] = cols[j * 8 + 2];
        }
        // Ranks are <= ONE: within normalize's precondition.
        incentive.normalize();
    }

    /// @dev Dividends `D_i = a_i * (sum_j n_ij * R_j) / ONE^2`, normalised, where `R_j` are the
    /// exact ranks and `n` is `m` (the new bonds) column-scaled: `n_ij = floor(e_ij * ONE /
    /// sum_j)` (no remainder, as `chain/yuma/fixed.py: scale`).
    function _dividends(uint256[] memory m, uint256[] memory cols, uint256[] memory a, uint256 n)
        private
        pure
        returns (uint256[] memory dividends)
    {
        uint256 rows = a.length;
        dividends = new uint256[](rows);
        for (uint256 i; i < rows; ++i) {
            uint256 acc;
            // Row i of m and column records (j < n) in range. n_ij <= ONE and
            // sum_j R_j <= ONE, so acc <= ONE^2.
            assembly ("memory-safe") {
                let mp := add(add(m, 0x20), shl(5, mul(i, n)))
                let cp := add(cols, 0x20)
                for { let j := 0 } lt(j, n) { j := add(j, 1) } {
                    let e := mload(add(mp, shl(5, j)))
                    if e {
                        let c8 := add(cp, shl(8, j))
                        let y := div(mul(e, ONE), mload(add(c8, COL_BOND_SUM)))
                        acc := add(acc, mul(y, mload(add(c8, COL_RANK))))
                    }
                }
            }
            dividends[i] = acc;
        }
        for (uint256 i; i < rows; ++i) {
            // a_i * acc <= ONE^3; the quotient <= ONE is within normalize's precondition.
            dividends[i] = dividends[i] * a[i] / (ONE * ONE);
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
