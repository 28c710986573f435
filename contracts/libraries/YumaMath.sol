// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

/// @title YumaMath
/// @notice Fixed-point primitives of Yuma Consensus. Shares are uint256 scaled by `ONE = 1e18`,
/// per-entry fractions by `WONE = 65535 << 16`, stake weights by `STAKE_ONE = 2^30`, bond EMA
/// rates by `RATE_ONE = 2^16`; u16 fractions are of 65535. Every rounding rule is specified once, in the
/// Python twin `chain/yuma/fixed.py` (module docstring); this library computes the same
/// integers, which the differential tests check bit for bit.
library YumaMath {
    uint256 internal constant ONE = 1e18;
    uint256 internal constant U16_MAX = 65_535;
    uint256 internal constant WONE = 4_294_901_760;
    uint256 internal constant STAKE_ONE = 1_073_741_824;
    uint256 internal constant RATE_ONE = 65_536;
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

    /// @notice Stake-weighted kappa-median of the first `count` keys of `buf`, each
    /// `value << 128 | stake` (stake > 0, below 2^128): the smallest key whose cumulative stake
    /// (keys ascending) times 65535 exceeds `target` (`totalStake * (65535 - kappa)`), or the
    /// largest key; returns that key's value. Ordering keys by (value, stake) refines the order
    /// by value, so this is the smallest value `v` with `S(v) * 65535 > target` (`S(v)`: stake
    /// of the keys with value `<= v`), as `chain/yuma/fixed.py: weighted_median` specifies.
    /// Quickselect: each round splits the live keys around a pivot into the other half of
    /// `buf` (smaller from its front, larger from its back) and keeps the side holding the
    /// answer; any pivot choice gives the same order statistic.
    /// @dev `buf.length >= 2 * count`; at most 256 keys (stakes sum below 2^136). Clobbers
    /// `buf`.
    function weightedMedian(uint256[] memory buf, uint256 count, uint256 target)
        internal
        pure
        returns (uint256 result)
    {
        assembly ("memory-safe") {
            let stakeMask := sub(shl(128, 1), 1)
            let src := add(buf, 0x20)
            let end := add(src, shl(5, count))
            let dst := end
            let flip := xor(src, dst) // dst' = xor(dst, flip) swaps halves
            // `target` shrinks by 65535 x the stake of keys dropped as smaller than the answer;
            // it stays >= 0 because that stake never met the condition.
            for {} lt(src, end) {} {
                let pivot := mload(add(src, shl(5, shr(6, sub(end, src)))))
                let lo := dst
                let hiEnd := add(dst, sub(end, src))
                let hi := hiEnd
                let less := 0
                let equal := 0
                for { let p := src } lt(p, end) { p := add(p, 0x20) } {
                    let k := mload(p)
                    switch lt(k, pivot)
                    case 1 {
                        mstore(lo, k)
                        lo := add(lo, 0x20)
                        less := add(less, and(k, stakeMask))
                    }
                    default {
                        switch gt(k, pivot)
                        case 1 {
                            hi := sub(hi, 0x20)
                            mstore(hi, k)
                        }
                        default { equal := add(equal, and(k, stakeMask)) }
                    }
                }
                switch gt(mul(less, U16_MAX), target)
                case 1 {
                    // The answer is smaller than the pivot: [dst, lo) is non-empty.
                    src := dst
                    end := lo
                }
                default {
                    let upTo := add(less, equal)
                    if or(gt(mul(upTo, U16_MAX), target), eq(hi, hiEnd)) {
                        result := shr(128, pivot)
                        break
                    }
                    target := sub(target, mul(upTo, U16_MAX))
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

    /// @notice Stake weights `q_i = s_i * STAKE_ONE / T` of the raw active stakes `s` (`T`:
    /// their sum), all zero without active stake.
    /// @dev Precondition: every `s_i < 2^128`, so products stay below 2^158.
    function stakeWeights(uint256[] memory s) internal pure returns (uint256[] memory q) {
        q = new uint256[](s.length);
        uint256 total;
        for (uint256 i; i < s.length; ++i) {
            total += s[i];
        }
        if (total == 0) return q;
        for (uint256 i; i < s.length; ++i) {
            q[i] = s[i] * STAKE_ONE / total;
        }
    }

    /// @notice Liquid alpha's bond EMA rate (of RATE_ONE) for an entry with consensus and
    /// target in WONE and its old u16 bond: `liquidAlpha` over them in ONE (floor), floored to
    /// RATE_ONE.
    function liquidRate(uint256 consensus, uint256 target, uint256 old, uint256 low, uint256 high, uint256 steepness)
        internal
        pure
        returns (uint256)
    {
        uint256 alpha = liquidAlpha(consensus * ONE / WONE, target * ONE / WONE, u16ToFraction(old), low, high, steepness);
        return alpha * RATE_ONE / ONE;
    }
}
