// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

/// @title BurnPrice
/// @notice Registration price arithmetic, after subtensor's continuous burn: every block the
/// price is multiplied by a per-block factor `f` (the largest Q64 value with `f^halfLife <= 1/2`),
/// every registration multiplies it by `increaseMultBps / 10000`, and the result is clamped to
/// `[minBurn, maxBurn]`. The decay is applied lazily: `price * f^elapsed` with `f^elapsed`
/// computed by square-and-multiply in Q64, each product rounded down. `chain/metagraph_rules.py`
/// mirrors every step bit for bit.
library BurnPrice {
    /// @dev 1.0 in Q64.
    uint256 internal constant ONE_Q64 = 1 << 64;
    /// @dev 0.5 in Q64.
    uint256 internal constant HALF_Q64 = 1 << 63;
    /// @dev Basis-point denominator of the increase multiplier.
    uint256 internal constant BPS = 10_000;

    /// @notice `base^exponent` in Q64, rounding each product down.
    /// @param baseQ64 a Q64 value below 1.0 (`< 2^64`)
    /// @param exponent any block count
    function powQ64(uint256 baseQ64, uint256 exponent) internal pure returns (uint256 result) {
        result = ONE_Q64;
        // unchecked: result and baseQ64 stay <= 2^64, so every product is < 2^128.
        unchecked {
            while (exponent != 0) {
                if (exponent & 1 != 0) result = (result * baseQ64) >> 64;
                exponent >>= 1;
                if (exponent != 0) baseQ64 = (baseQ64 * baseQ64) >> 64;
            }
        }
    }

    /// @notice The per-block decay factor for a half-life: the largest `f < 2^64` with
    /// `powQ64(f, halfLife) <= 2^63` (binary search; `powQ64` is monotone in `f`).
    /// @param halfLife blocks, >= 1
    function decayFactor(uint256 halfLife) internal pure returns (uint64) {
        uint256 lo = 0; // powQ64(0, h) == 0 <= 1/2
        uint256 hi = ONE_Q64 - 1; // powQ64(hi, h) > 1/2 for every h < 2^32
        // unchecked: lo < hi < 2^64, so neither the sum nor the difference overflows.
        unchecked {
            while (hi - lo > 1) {
                uint256 mid = (lo + hi) >> 1;
                if (powQ64(mid, halfLife) <= HALF_Q64) lo = mid;
                else hi = mid;
            }
        }
        return uint64(lo);
    }

    /// @notice `price` after `elapsed` blocks of decay by `factorQ64` per block, unclamped.
    function decay(uint256 price, uint64 factorQ64, uint256 elapsed) internal pure returns (uint256) {
        return (price * powQ64(factorQ64, elapsed)) >> 64;
    }

    /// @notice The price after one registration at `price`, unclamped.
    function bump(uint256 price, uint256 increaseMultBps) internal pure returns (uint256) {
        return (price * increaseMultBps) / BPS;
    }

    /// @notice `value` clamped to `[lo, hi]` (assumes `lo <= hi`).
    function clamp(uint256 value, uint256 lo, uint256 hi) internal pure returns (uint256) {
        if (value < lo) return lo;
        if (value > hi) return hi;
        return value;
    }
}
