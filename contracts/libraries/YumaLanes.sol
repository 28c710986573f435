// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {YumaMath} from "./YumaMath.sol";

/// @title YumaLanes
/// @notice The column pass of the on-chain epoch (`YumaConsensus._columns`) over memory: one
/// record per validator row and one group area per step, and the lane arithmetic that runs
/// four uid columns per word operation. The integer algorithm and its bounds are
/// `chain/yuma/fixed.py`'s ("Lane bounds"); this file only lays the numbers out in words.
/// @dev Records: `recs` is a `uint256[]` of `rows * RECORD / 32` words, record i at byte
/// `32 + i * RECORD`, fields at the offsets below. Group area: `LG_SIZE` bytes past the free
/// memory pointer (`groupArea`). Quads: a "quad" word holds lanes k, k + 4, k + 8, k + 12 of a
/// packed word of 16 u16 lanes in 64-bit slots (bits 64m .. 64m + 63 hold lane 4m + k), so
/// `(word >> 16k) & QUAD_U16` takes quad k out of a packed word. Every function trusts its
/// caller for `i < rows` and `col < 16`; the assembly never leaves the records or the area.
library YumaLanes {
    // ------------------------------------------------------------ row info word
    // A validator row as `YumaConsensus` keeps it between phases (`_rowInfo`): stake (u96) in
    // the low bits, then these fields.
    uint256 internal constant R_LU = 96; // last weight update (u64)
    uint256 internal constant R_SUM = 160; // row sum without self and outdated weights (u32)
    uint256 internal constant R_UID = 192; // uid (u16)
    uint256 internal constant R_WORDS = 208; // bit w: weight word w is non-zero (u16)
    uint256 internal constant R_ACTIVE = 240; // active flag
    uint256 internal constant R_BONDS = 241; // old bonds count: a row last epoch, registered by then

    // ------------------------------------------------------------ record of one row
    uint256 internal constant W = 0x00; // weight word of the step's group (masked, step lanes)
    uint256 internal constant OLD = 0x20; // old bond word (0 when stale; fresh and other lanes cleared)
    uint256 internal constant NEW = 0x40; // new bond word being built
    uint256 internal constant M = 0x60; // row scale m_i
    uint256 internal constant Q = 0x80; // stake weight q_i (0: not a median participant)
    uint256 internal constant LIQ = 0xa0; // liquid alpha: the step's new bonds in lanes LG_LIQUID
    uint256 internal constant TRUST = 0xc0; // sum of clipped weights
    uint256 internal constant ACC = 0xe0; // sum_j n_ij * g_j
    uint256 internal constant UID = 0x100;
    uint256 internal constant LU = 0x120; // last update
    uint256 internal constant WMASK = 0x140; // bit w: weight word w is non-zero
    uint256 internal constant PREV = 0x160; // 1 + the row's index among the old words' rows (0: none)
    uint256 internal constant RECORD = 0x180; // record size in bytes

    // ------------------------------------------------------------ group area of one step
    uint256 internal constant LG_END = 0x00; // end of the records
    uint256 internal constant LG_ZERO = 0x20; // stake weight of rows whose weight and old bond words are 0
    uint256 internal constant LG_LIQUID = 0x40; // u16 lanes whose new bonds come from `LIQ`
    uint256 internal constant LG_G = 0x60; // 6 words: dividend factors (see `dividends`)
    uint256 internal constant LG_QUAD = 0x120; // quad k's four words at LG_QUAD + k * QW:
    uint256 internal constant Q_CONS = 0x00; //   consensus
    uint256 internal constant Q_STAKES = 0x20; // stake weight below (low 32 bits) and at or below (high)
    uint256 internal constant Q_RANK = 0x40; //   sum_i q_i * cl_ij
    uint256 internal constant Q_BONDS = 0x60; //  sum_i n_ij (u16 new bonds)
    uint256 internal constant QW = 0x80;
    uint256 internal constant LG_SIZE = 0x320;

    // ------------------------------------------------------------ lane masks
    uint256 internal constant QUAD_U16 = 0x000000000000ffff000000000000ffff000000000000ffff000000000000ffff;
    uint256 internal constant QUAD_U32 = 0x00000000ffffffff00000000ffffffff00000000ffffffff00000000ffffffff;
    uint256 internal constant QUAD_U33 = 0x00000001ffffffff00000001ffffffff00000001ffffffff00000001ffffffff;
    uint256 internal constant QUAD_ONES = 0x0000000000000001000000000000000100000000000000010000000000000001;
    uint256 internal constant QUAD_TOP = 0x8000000000000000800000000000000080000000000000008000000000000000;
    uint256 internal constant QUAD_HALF = 0x0000000000008000000000000000800000000000000080000000000000008000;
    /// @dev Lanes k, k + 5, k + 10 of a packed word at bits 0, 80, 160 (`dividends`).
    uint256 internal constant TRIO_U16 = 0xffff0000000000000000ffff0000000000000000ffff;
    uint256 internal constant U80 = (1 << 80) - 1;

    // ------------------------------------------------------------ records

    /// @notice Number of records in `recs`.
    function rowCount(uint256[] memory recs) internal pure returns (uint256) {
        return recs.length / (RECORD >> 5);
    }

    function field(uint256[] memory recs, uint256 i, uint256 off) internal pure returns (uint256 v) {
        // Callers pass i < rows and an offset inside a record.
        assembly ("memory-safe") {
            v := mload(add(add(add(recs, 0x20), mul(i, RECORD)), off))
        }
    }

    function setField(uint256[] memory recs, uint256 i, uint256 off, uint256 v) internal pure {
        // Callers pass i < rows and an offset inside a record.
        assembly ("memory-safe") {
            mstore(add(add(add(recs, 0x20), mul(i, RECORD)), off), v)
        }
    }

    /// @notice Fills the records at a column call's start from the rows' info words (`R_*`
    /// fields), their stake weights `q` and running sums `sums` (trust, low 64 bits | dividend
    /// sum; none at the column phase's first call); returns the stake weights' total.
    function initRecords(
        uint256[] memory recs,
        uint256[256] storage rowInfo,
        uint256[] memory q,
        uint256[] memory sums
    ) internal view returns (uint256 total) {
        for (uint256 i; i < q.length; ++i) {
            uint256 info = rowInfo[i];
            uint256 rowSum = uint32(info >> R_SUM);
            // Row sums < 2^24: m < 2^63 / rowSum, so x * m < 2^63 for every x <= rowSum.
            uint256 m = rowSum == 0 ? 0 : (YumaMath.WONE << 31) / rowSum;
            uint256 weight = q[i];
            total += weight;
            uint256 acc = sums.length == 0 ? 0 : sums[i];
            // Record i lies inside recs (one record of RECORD bytes per row, q.length rows).
            assembly ("memory-safe") {
                let r := add(add(recs, 0x20), mul(i, RECORD))
                mstore(add(r, M), m)
                mstore(add(r, LU), and(shr(R_LU, info), 0xffffffffffffffff))
                mstore(add(r, UID), and(shr(R_UID, info), 0xffff))
                mstore(add(r, Q), weight)
                mstore(add(r, TRUST), and(acc, 0xffffffffffffffff))
                mstore(add(r, ACC), shr(64, acc))
                mstore(add(r, WMASK), and(shr(R_WORDS, info), 0xffff))
                mstore(add(r, PREV), and(shr(R_BONDS, info), 1))
            }
        }
    }

    /// @notice Every record's running sums, one word a row: trust (low 64 bits) | dividend sum.
    function rowSums(uint256[] memory recs) internal pure returns (uint256[] memory sums) {
        uint256 rows = rowCount(recs);
        sums = new uint256[](rows);
        // Records lie inside recs, sums holds one word a row; trust <= WONE < 2^64, the
        // dividend sum < 2^86.
        assembly ("memory-safe") {
            let out := add(sums, 0x20)
            for { let i := 0 } lt(i, rows) { i := add(i, 1) } {
                let r := add(add(recs, 0x20), mul(i, RECORD))
                mstore(add(out, shl(5, i)), or(mload(add(r, TRUST)), shl(64, mload(add(r, ACC)))))
            }
        }
    }

    // ------------------------------------------------------------ group area

    /// @notice Allocates the group area past the free memory pointer for the records `recs`.
    function groupArea(uint256[] memory recs) internal pure returns (uint256 lanes) {
        uint256 rows = rowCount(recs);
        assembly ("memory-safe") {
            lanes := mload(0x40)
            mstore(0x40, add(lanes, LG_SIZE))
            mstore(add(lanes, LG_END), add(add(recs, 0x20), mul(rows, RECORD)))
        }
    }

    /// @notice Starts a step: the consensus quads `cons`, zero sums, the liquid lanes.
    function resetGroup(uint256 lanes, uint256[4] memory cons, uint256 liquid) internal pure {
        for (uint256 k; k < 4; ++k) {
            uint256 quad = cons[k];
            // Quad k lies inside the group area.
            assembly ("memory-safe") {
                let q := add(add(lanes, LG_QUAD), mul(k, QW))
                mstore(add(q, Q_CONS), quad)
                mstore(add(q, Q_STAKES), 0)
                mstore(add(q, Q_RANK), 0)
                mstore(add(q, Q_BONDS), 0)
            }
        }
        assembly ("memory-safe") {
            mstore(add(lanes, LG_ZERO), 0)
            mstore(add(lanes, LG_LIQUID), liquid)
        }
    }

    /// @notice The step's consensus in lane `col`.
    function laneConsensus(uint256 lanes, uint256 col) internal pure returns (uint256 cons) {
        uint256 q = lanes + LG_QUAD + (col & 3) * QW;
        // Quad col & 3 lies inside the group area.
        assembly ("memory-safe") {
            cons := and(shr(mul(64, shr(2, col)), mload(add(q, Q_CONS))), 0xffffffffffffffff)
        }
    }

    /// @notice Lane `col` after the pass: consensus, participants' stake weight below it (low
    /// 32 bits) and at or below it (high), rank and bond sum.
    function laneSums(uint256 lanes, uint256 col)
        internal
        pure
        returns (uint256 cons, uint256 stakes, uint256 rank, uint256 bonds)
    {
        uint256 q = lanes + LG_QUAD + (col & 3) * QW;
        uint256 shift = 64 * (col >> 2);
        // Quad col & 3 lies inside the group area.
        assembly ("memory-safe") {
            cons := and(shr(shift, mload(add(q, Q_CONS))), 0xffffffffffffffff)
            stakes := and(shr(shift, mload(add(q, Q_STAKES))), 0xffffffffffffffff)
            rank := and(shr(shift, mload(add(q, Q_RANK))), 0xffffffffffffffff)
            bonds := and(shr(shift, mload(add(q, Q_BONDS))), 0xffffffffffffffff)
        }
    }

    /// @notice Stake weight of the rows the pass skipped (weight and old bond words both 0).
    function skippedStake(uint256 lanes) internal pure returns (uint256 zero) {
        assembly ("memory-safe") {
            zero := mload(add(lanes, LG_ZERO))
        }
    }

    /// @notice Stores the dividend factor words (`dividends`).
    function setFactors(uint256 lanes, uint256[6] memory factors) internal pure {
        for (uint256 k; k < 6; ++k) {
            uint256 f = factors[k];
            assembly ("memory-safe") {
                mstore(add(add(lanes, LG_G), mul(k, 0x20)), f)
            }
        }
    }

    /// @notice Bits of u16 lanes `c0 .. c1 - 1` (c0 < c1 <= 16).
    function laneBits(uint256 c0, uint256 c1) internal pure returns (uint256) {
        return (type(uint256).max >> (256 - 16 * (c1 - c0))) << (16 * c0);
    }

    // ------------------------------------------------------------ the pass

    /// @notice The pass over every row, four uid columns at a time (quads): the scaled
    /// weight `y = x * m >> 31`; the participants' stake weight below the lane's consensus and
    /// at or below it (rows whose weight and old bond words are both zero count in LG_ZERO
    /// instead); the clipped weight `cl = min(y, cons)` into the row's trust and (times `q_i`)
    /// the lane's rank; the penalised target `t = y - ((y - cl) * P >> 16)`; the new bond
    /// `((old << 16) * (65536 - A) + t * A) >> 16`, rounded to u16 (liquid lanes: from LIQ)
    /// into the row's NEW word and the lane's bond sum.
    function pass(uint256[] memory recs, uint256 lanes, uint256 rate, uint256 penalty) internal pure {
        // Records lie inside recs, quads inside the group area; "Lane bounds" in fixed.py keep
        // every slot below 2^64: no slot borrows from or carries into its neighbour. The row's
        // weight word and quad offset wait in scratch space (stack slots).
        assembly ("memory-safe") {
            let keep := shl(16, sub(65536, rate))
            let liquid := mload(add(lanes, LG_LIQUID))
            for { let p := add(recs, 0x20) } lt(p, mload(add(lanes, LG_END))) { p := add(p, RECORD) } {
                let w := mload(p)
                let o := mload(add(p, OLD))
                let q := mload(add(p, Q))
                if iszero(or(w, o)) {
                    let z := add(lanes, LG_ZERO)
                    mstore(z, add(mload(z), q))
                    continue
                }
                let m := mload(add(p, M))
                let trust := 0
                let e := 0
                for { let k := 0 } lt(k, 64) { k := add(k, 16) } {
                    let quad := add(add(lanes, LG_QUAD), mul(shr(4, k), QW))
                    let y := and(shr(31, mul(and(shr(k, w), QUAD_U16), m)), QUAD_U32)
                    let cons := mload(add(quad, Q_CONS))
                    // d: y - cons + 2^63 per slot; its top bit says y >= cons.
                    let d := sub(or(y, QUAD_TOP), cons)
                    let ge := and(shr(63, d), QUAD_ONES)
                    let le := and(shr(63, sub(or(cons, QUAD_TOP), y)), QUAD_ONES)
                    let at := add(quad, Q_STAKES)
                    mstore(at, add(mload(at), mul(or(xor(ge, QUAD_ONES), shl(32, le)), q)))
                    // d becomes y - cl (0 where y < cons), y the clipped weight.
                    d := and(d, mul(ge, 0x7fffffffffffffff))
                    y := sub(y, d)
                    trust := add(trust, y)
                    at := add(quad, Q_RANK)
                    mstore(at, add(mload(at), mul(y, q)))
                    // y becomes the target, then the new bond.
                    y := sub(add(y, d), and(shr(16, mul(d, penalty)), QUAD_U33))
                    y := and(shr(16, add(mul(and(shr(k, o), QUAD_U16), keep), mul(y, rate))), QUAD_U33)
                    e := or(e, shl(k, and(shr(16, add(y, QUAD_HALF)), QUAD_U16)))
                }
                // Slots of trust sum to at most WONE: the top slot of the product is their sum.
                mstore(add(p, TRUST), add(mload(add(p, TRUST)), shr(192, mul(trust, QUAD_ONES))))
                if liquid { e := or(and(e, not(liquid)), and(mload(add(p, LIQ)), liquid)) }
                mstore(add(p, NEW), or(mload(add(p, NEW)), e))
                for { let k := 0 } lt(k, 64) { k := add(k, 16) } {
                    let at := add(add(add(lanes, LG_QUAD), mul(shr(4, k), QW)), Q_BONDS)
                    mstore(at, add(mload(at), and(shr(k, e), QUAD_U16)))
                }
            }
        }
    }

    /// @notice Adds `sum_j n_ij * g_j` over the step's lanes `step` to every row's dividend sum:
    /// three lanes per multiplication. Factor word r holds g of lanes r + 10, r + 5, r at bits
    /// 0, 80, 160, so bits 160.. of `((new >> 16r) & TRIO_U16) * word` hold the three products'
    /// sum (each partial sum < 3 * 2^16 * 2^62 < 2^80: no carry between them).
    function dividends(uint256[] memory recs, uint256 lanes, uint256 step) internal pure {
        // Records lie inside recs, factor words inside the group area; a row's sum over the
        // epoch < 2^16 * 2^62 * 256 < 2^86.
        assembly ("memory-safe") {
            let gs := add(lanes, LG_G)
            for { let p := add(recs, 0x20) } lt(p, mload(add(lanes, LG_END))) { p := add(p, RECORD) } {
                let e := and(mload(add(p, NEW)), step)
                if iszero(e) { continue }
                let acc := add(mload(add(p, ACC)), mul(shr(240, e), mload(add(gs, 0xa0))))
                for { let r := 0 } lt(r, 80) { r := add(r, 16) } {
                    let f := mload(add(gs, mul(r, 2)))
                    acc := add(acc, and(shr(160, mul(and(shr(r, e), TRIO_U16), f)), U80))
                }
                mstore(add(p, ACC), acc)
            }
        }
    }
}
