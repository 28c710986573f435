// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

/// @title YumaMath
/// @notice Fixed-point primitives of Yuma Consensus. Fractions are uint256 scaled by
/// `ONE = 1e18`; u16 fractions are of 65535. Every rounding rule is specified once, in the
/// Python twin `chain/yuma/fixed.py` (module docstring); this library computes the same
/// integers, which the differential tests check bit for bit.
library YumaMath {
    uint256 internal constant ONE = 1e18;
    uint256 internal constant U16_MAX = 65_535;
    /// @dev floor(e^-1 * 1e18).
    uint256 internal constant E_INV = 367_879_441_171_442_321;

    /// @notice u16 fraction of 65535 to a ONE-scaled fraction (floor).
    function u16ToFraction(uint256 x) internal pure returns (uint256) {
        return x * ONE / U16_MAX;
    }

    /// @notice Normalises `len` entries of `x` at `start, start + stride, ...` in place to
    /// sum exactly ONE: floor each share, the remainder (< len) to the first largest entry.
    /// An all-zero range is left as is.
    /// @dev Precondition (callers guarantee it): every entry and the sum of the range are
    /// below 2^190, so `sum` and `x_i * ONE` cannot overflow; the range lies inside `x`.
    function normalizeStrided(uint256[] memory x, uint256 start, uint256 len, uint256 stride)
        internal
        pure
    {
        assembly ("memory-safe") {
            let step := shl(5, stride)
            let p := add(add(x, 0x20), shl(5, start))
            let end := add(p, mul(len, step))
            let total := 0
            let best := p
            let bestValue := 0
            for { let q := p } lt(q, end) { q := add(q, step) } {
                let v := mload(q)
                total := add(total, v)
                if gt(v, bestValue) {
                    bestValue := v
                    best := q
                }
            }
            if total {
                let assigned := 0
                for { let q := p } lt(q, end) { q := add(q, step) } {
                    let y := div(mul(mload(q), ONE), total)
                    mstore(q, y)
                    assigned := add(assigned, y)
                }
                mstore(best, add(mload(best), sub(ONE, assigned)))
            }
        }
    }

    /// @notice Normalises the whole vector in place (see `normalizeStrided`).
    function normalize(uint256[] memory x) internal pure {
        normalizeStrided(x, 0, x.length, 1);
    }

    /// @notice True when some entry is non-zero.
    function anyNonZero(uint256[] memory x) internal pure returns (bool) {
        for (uint256 i; i < x.length; ++i) {
            if (x[i] != 0) return true;
        }
        return false;
    }

    /// @notice Splits `amount` by `shares` (summing to ONE): floor each, the remainder
    /// (< shares.length base units) to the first largest share.
    function distribute(uint256 amount, uint256[] memory shares)
        internal
        pure
        returns (uint256[] memory out)
    {
        out = new uint256[](shares.length);
        uint256 assigned;
        uint256 best;
        uint256 bestShare;
        for (uint256 i; i < shares.length; ++i) {
            uint256 s = shares[i];
            uint256 y = amount * s / ONE;
            out[i] = y;
            assigned += y;
            if (s > bestShare) {
                bestShare = s;
                best = i;
            }
        }
        if (shares.length != 0) out[best] += amount - assigned;
    }

    /// @notice Stake-weighted kappa-median over the first `count` `(value, stake)` pairs stored
    /// interleaved in `buf` (`buf[2k]` value, `buf[2k + 1]` stake): the smallest value `v`
    /// with `S(v) * 65535 > target`, where `S(v)` is the stake of pairs with value `<= v` and
    /// `target = totalStake * (65535 - kappa)`; the largest value when none qualifies, 0 for
    /// no pairs. Quickselect: each round splits the live pairs around a pivot into the other
    /// half of `buf` (smaller ones from its front, larger ones from its back) and keeps only
    /// the side holding the answer. Any pivot choice gives the same order statistic.
    /// @dev `buf.length >= 4 * count`; pairs have positive stake and stakes sum below 2^200
    /// (raw stakes below 2^128, at most 256 of them). Clobbers `buf`.
    function weightedMedian(uint256[] memory buf, uint256 count, uint256 target)
        internal
        pure
        returns (uint256 result)
    {
        assembly ("memory-safe") {
            let src := add(buf, 0x20)
            let end := add(src, shl(6, count)) // `count` pairs of 0x40 bytes
            let dst := end // the second half of `buf`
            let flip := xor(src, dst) // dst' = xor(dst, flip) swaps halves
            // `target` shrinks by 65535 x the stake of pairs dropped as smaller than the
            // answer; it stays >= 0 because that stake never met the condition.
            for {} lt(src, end) {} {
                let pivot := mload(add(src, shl(6, shr(7, sub(end, src)))))
                let lo := dst
                let hi := add(dst, sub(end, src))
                let stakeLess := 0
                let stakeEqual := 0
                for { let p := src } lt(p, end) { p := add(p, 0x40) } {
                    let v := mload(p)
                    let s := mload(add(p, 0x20))
                    switch lt(v, pivot)
                    case 1 {
                        mstore(lo, v)
                        mstore(add(lo, 0x20), s)
                        lo := add(lo, 0x40)
                        stakeLess := add(stakeLess, s)
                    }
                    default {
                        switch gt(v, pivot)
                        case 1 {
                            hi := sub(hi, 0x40)
                            mstore(hi, v)
                            mstore(add(hi, 0x20), s)
                        }
                        default { stakeEqual := add(stakeEqual, s) }
                    }
                }
                let hiEnd := add(dst, sub(end, src))
                switch gt(mul(stakeLess, U16_MAX), target)
                case 1 {
                    // The answer is smaller than the pivot; [dst, lo) is non-empty because
                    // the remaining target is >= 0 on entry to every round.
                    src := dst
                    end := lo
                }
                default {
                    if or(gt(mul(add(stakeLess, stakeEqual), U16_MAX), target), eq(hi, hiEnd)) {
                        result := pivot
                        break
                    }
                    target := sub(target, mul(add(stakeLess, stakeEqual), U16_MAX))
                    src := hi
                    end := hiEnd
                }
                // The next round reads the half just written and writes the other one.
                dst := xor(dst, flip)
            }
        }
    }

    /// @notice `e^(-t / ONE) * ONE` for `t >= 0`: e^-1 repeated for the whole part (floor
    /// each step), e^frac by its Taylor series (floor each term), then divided.
    function expNeg(uint256 t) internal pure returns (uint256) {
        uint256 whole = t / ONE;
        uint256 frac = t % ONE;
        uint256 r = ONE;
        for (uint256 k; k < whole; ++k) {
            r = r * E_INV / ONE;
            if (r == 0) return 0;
        }
        uint256 term = ONE;
        uint256 series = ONE;
        for (uint256 k = 1; term != 0; ++k) {
            term = term * frac / (ONE * k);
            series += term;
        }
        return r * ONE / series;
    }

    /// @notice Liquid alpha: `low + sigmoid(steepness / 100 * (gap - 1/2)) * (high - low)` with
    /// `gap = max(weight - consensus, 0)` when `weight >= bond`, else `bond - weight`, capped
    /// at ONE.
    function liquidAlpha(
        uint256 consensus,
        uint256 weight,
        uint256 bond,
        uint256 low,
        uint256 high,
        uint256 steepness
    ) internal pure returns (uint256) {
        uint256 gap;
        if (weight >= bond) {
            gap = weight > consensus ? weight - consensus : 0;
        } else {
            gap = bond - weight;
        }
        if (gap > ONE) gap = ONE;
        uint256 half = ONE / 2;
        uint256 sigmoid;
        if (gap >= half) {
            uint256 e = expNeg((gap - half) * steepness / 100);
            sigmoid = ONE * ONE / (ONE + e);
        } else {
            uint256 e = expNeg((half - gap) * steepness / 100);
            sigmoid = e * ONE / (ONE + e);
        }
        return low + sigmoid * (high - low) / ONE;
    }
}
