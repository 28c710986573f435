// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {IMetagraph} from "../interfaces/IMetagraph.sol";

/// @title WeightRows
/// @notice Weight rows packed 16 u16 lanes per word: a 256-uid row is 16 words, uid `j` sits in
/// word `j >> 4` at bits `16 * (j & 15)`. Revealed weights arrive as big-endian packed u16
/// `bytes` (2 bytes per entry) and are stored max-upscaled: the largest kept value becomes 65535,
/// every other `floor(v * 65535 / max)` (subtensor's `vec_u16_max_upscale`).
library WeightRows {
    uint256 internal constant U16_MAX = 0xFFFF;
    uint256 internal constant WORDS = 16;

    /// @notice The `i`-th big-endian u16 of packed calldata `data` (caller checks bounds).
    function u16At(bytes calldata data, uint256 i) internal pure returns (uint256 value) {
        assembly ("memory-safe") {
            // Load 32 bytes starting at byte 2*i and keep the top 16 bits; bytes past the end of
            // calldata read as zero, and callers only ask for i < data.length / 2.
            value := shr(240, calldataload(add(data.offset, shl(1, i))))
        }
    }

    /// @notice Sum of the 16 u16 lanes of `word` (pairwise folding: 8 u32, 4 u64, 2 u128).
    function laneSum(uint256 word) internal pure returns (uint256 x) {
        // Each fold adds two lanes of at most 2^16 * (lanes so far) into a lane twice as wide.
        x = (word & 0x0000ffff0000ffff0000ffff0000ffff0000ffff0000ffff0000ffff0000ffff)
            + ((word >> 16) & 0x0000ffff0000ffff0000ffff0000ffff0000ffff0000ffff0000ffff0000ffff);
        x = (x & 0x00000000ffffffff00000000ffffffff00000000ffffffff00000000ffffffff)
            + ((x >> 32) & 0x00000000ffffffff00000000ffffffff00000000ffffffff00000000ffffffff);
        x = (x & 0x0000000000000000ffffffffffffffff0000000000000000ffffffffffffffff)
            + ((x >> 64) & 0x0000000000000000ffffffffffffffff0000000000000000ffffffffffffffff);
        x = (x & type(uint128).max) + (x >> 128);
    }

    /// @notice Lane `uid` of a packed row.
    function lane(uint256[16] memory row, uint256 uid) internal pure returns (uint256) {
        return (row[uid >> 4] >> ((uid & 15) << 4)) & U16_MAX;
    }

    /// @notice Builds the stored row from a reveal: validates every uid (`< neuronCount`, no
    /// duplicates), zeroes entries whose uid is in `dropMask`, and max-upscales the rest.
    /// @param uids packed u16 uids (length already checked even and equal to `values`)
    /// @param values packed u16 weights
    /// @param neuronCount registered uids (<= 256)
    /// @param dropMask bit `uid` set: the uid was registered at or after the commit
    /// @return row the packed, max-upscaled row
    /// @return dropped entries zeroed by `dropMask`
    function build(bytes calldata uids, bytes calldata values, uint256 neuronCount, uint256 dropMask)
        internal
        pure
        returns (uint256[16] memory row, uint256 dropped)
    {
        uint256 count = uids.length >> 1;
        uint256 seen;
        uint256 maxValue;
        for (uint256 i; i < count; ++i) {
            uint256 uid = u16At(uids, i);
            if (uid >= neuronCount) revert IMetagraph.MetagraphUidOutOfRange(uint16(uid), neuronCount);
            uint256 bit = 1 << uid;
            if (seen & bit != 0) revert IMetagraph.MetagraphDuplicateUid(uint16(uid));
            seen |= bit;
            if (dropMask & bit != 0) {
                ++dropped;
                continue;
            }
            uint256 value = u16At(values, i);
            if (value > maxValue) maxValue = value;
            row[uid >> 4] |= value << ((uid & 15) << 4);
        }
        if (maxValue != 0 && maxValue != U16_MAX) upscale(row, maxValue);
    }

    /// @notice Replaces every lane `v` by `floor(v * 65535 / maxValue)` in place.
    function upscale(uint256[16] memory row, uint256 maxValue) internal pure {
        for (uint256 w; w < WORDS; ++w) {
            uint256 word = row[w];
            if (word == 0) continue;
            uint256 scaled;
            for (uint256 shift; shift < 256; shift += 16) {
                uint256 v = (word >> shift) & U16_MAX;
                if (v != 0) scaled |= ((v * U16_MAX) / maxValue) << shift;
            }
            row[w] = scaled;
        }
    }
}
