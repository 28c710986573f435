// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {Ownable} from "@openzeppelin/contracts/access/Ownable.sol";
import {IERC20} from "@openzeppelin/contracts/token/ERC20/IERC20.sol";
import {SafeERC20} from "@openzeppelin/contracts/token/ERC20/utils/SafeERC20.sol";
import {IMetagraph} from "./interfaces/IMetagraph.sol";
import {ISubnetToken} from "./interfaces/ISubnetToken.sol";
import {IYumaConsensus} from "./interfaces/IYumaConsensus.sol";
import {YumaEpoch} from "./libraries/YumaEpoch.sol";
import {YumaMath} from "./libraries/YumaMath.sol";

/// @title YumaConsensus
/// @notice The on-chain Yuma Consensus epoch in gas-bounded steps (see `IYumaConsensus`). The
/// integer algorithm and every rounding are `chain/yuma/fixed.py`'s; `chain/epoch.py` predicts
/// this contract's outputs from a Metagraph snapshot and the stored bonds.
/// @dev Steps: `_start` (permits, hyperparameters, registration blocks, mint, fees); `_rows`
/// (16 validator rows per step: masked row sum, its first largest entry and the row's
/// normalisation dust, so any column can rebuild the normalised weights); `_columns` (8 uid
/// columns per step, 2 with liquid alpha: consensus, clipped weights, trust, ranks, bond EMA,
/// the column-normalised bonds weighted by rank into per-row dividend sums); `_credit` (the
/// emission split, recomputed from stored ranks and row sums, 32 uids per step). A call runs
/// steps while the gas it used plus the next step's estimate stays under `GAS_BUDGET`.
contract YumaConsensus is IYumaConsensus {
    using SafeERC20 for IERC20;
    using YumaMath for uint256[];

    uint256 private constant ONE = 1e18;
    uint256 private constant U16_MAX = 65_535;
    uint256 private constant HALF = 5e17;
    uint256 private constant BMA_SCALE = 1_000_000;
    uint256 private constant OWNER_PERCENT = 18;
    uint256 private constant MINER_PERCENT = 41;
    /// @dev A call starts another step only while the gas it has used plus the largest step seen
    /// (or the phase's first-step estimate) stays below this; with the transaction's base cost
    /// and the final writes every call stays below 5M.
    uint256 private constant GAS_BUDGET = 4_500_000;
    uint256 private constant ROW_STEP = 16;
    uint256 private constant CREDIT_STEP = 32;

    /// @dev Row record bit layout (`_rowInfo[row]`).
    uint256 private constant R_LU = 96; // last weight update (u64)
    uint256 private constant R_SUM = 160; // masked raw row sum (u32)
    uint256 private constant R_UID = 192; // uid (u16)
    uint256 private constant R_ARG = 208; // first largest masked entry (u16)
    uint256 private constant R_DUST = 224; // ONE - sum of floored normalised weights (u16)
    uint256 private constant R_ACTIVE = 240; // active flag
    uint256 private constant R_BONDS = 241; // stored bonds of this uid are current

    IMetagraph private immutable _metagraph;
    ISubnetToken private immutable _token;
    uint256 private immutable _emissionPerBlock;

    struct Epoch {
        Phase phase;
        uint16 cursor;
        uint16 rows;
        uint16 n;
        uint64 epochBlock;
        uint64 lastEpochBlock;
    }

    Epoch private _epoch;
    YumaEpoch.Params private _params;
    uint128 private _minted;
    uint128 private _fees;
    /// @dev Rows of the running epoch: the permits recomputed at its start.
    uint256 private _permits;
    uint256 private _bondRows;
    uint256 private _reserved;
    mapping(address account => uint256) private _claimable;
    /// @dev Per row: stake (u96) | lastUpdate | row sum | uid | argmax | dust | flags (R_*).
    uint256[256] private _rowInfo;
    /// @dev Per row: trust (low 64 bits) | rank-weighted bond sum (high 192 bits).
    uint256[256] private _rowAcc;
    /// @dev Registration blocks, 4 u64 per word.
    uint256[64] private _regWords;
    /// @dev Exact ranks, 2 u128 per word.
    uint256[128] private _rankWords;
    /// @dev Consensus as u16 (round half up), 16 per word.
    uint256[16] private _consensusWords;
    uint256[16][256] private _bonds;

    /// @param metagraph_ the Metagraph (names this contract with `setEpochContract`)
    /// @param token_ the SubnetToken (names this contract its minter)
    /// @param emissionPerBlock_ tokens per block before halvings
    constructor(address metagraph_, address token_, uint256 emissionPerBlock_) {
        if (metagraph_ == address(0) || token_ == address(0)) revert YumaConsensusZeroAddress();
        _metagraph = IMetagraph(metagraph_);
        _token = ISubnetToken(token_);
        _emissionPerBlock = emissionPerBlock_;
    }

    // ================================================================== epoch

    /// @inheritdoc IYumaConsensus
    function runEpoch() external returns (bool done) {
        uint256 start = gasleft();
        Epoch memory ep = _epoch;
        bool progressed;
        if (ep.phase == Phase.Idle) {
            uint64 next = _nextEpochBlock(ep);
            if (block.number < next) revert YumaConsensusTooEarly(next);
            _start(ep);
            progressed = true;
        }
        while (ep.phase != Phase.Idle) {
            // The first step of a phase: about 40k gas per row plus fixed costs.
            if (progressed && start - gasleft() + 200_000 + uint256(ep.rows) * 40_000 > GAS_BUDGET) break;
            if (ep.phase == Phase.Rows) _rows(ep, start);
            else if (ep.phase == Phase.Columns) _columns(ep, start);
            else _credit(ep, start);
            progressed = true;
        }
        _epoch = ep;
        emit EpochProgress(ep.phase, ep.cursor);
        return ep.phase == Phase.Idle;
    }

    /// @dev Permits, hyperparameters, registration blocks, mint and fees.
    function _start(Epoch memory ep) private {
        IMetagraph.Hyperparameters memory h = _metagraph.hyperparameters();
        // Registrations and reveals wait until the epoch completes: every step reads one state.
        _metagraph.setEpochRunning(true);
        uint256 permits = _metagraph.recomputePermits();
        uint64[] memory reg = _metagraph.registrationBlocks();
        uint256 n = reg.length;
        for (uint256 w; w < (n + 3) >> 2; ++w) {
            uint256 word;
            for (uint256 k; k < 4 && 4 * w + k < n; ++k) {
                word |= uint256(reg[4 * w + k]) << (64 * k);
            }
            _regWords[w] = word;
        }
        _params = YumaEpoch.Params({
            kappa: uint16(h.kappa),
            bondsMovingAverage: uint32(h.bondsMovingAverage),
            bondsPenalty: uint16(h.bondsPenalty),
            liquidAlpha: h.liquidAlphaEnabled,
            alphaLow: uint16(h.alphaLow),
            alphaHigh: uint16(h.alphaHigh),
            alphaSigmoidSteepness: uint16(h.alphaSigmoidSteepness),
            activityCutoff: h.activityCutoff
        });
        uint256 rows;
        for (uint256 bits = permits; bits != 0; bits &= bits - 1) {
            ++rows;
        }
        _permits = permits;

        // Fees: whatever this contract holds beyond what it owes.
        uint256 fees = _token.balanceOf(address(this)) - _reserved;
        uint256 minted = _emission(h.tempo);
        if (minted != 0) _token.mint(address(this), minted);
        _reserved += minted + fees;
        // Both fit: the token's supply cap is 21M * 1e18 < 2^75.
        _minted = uint128(minted);
        _fees = uint128(fees);

        ep.phase = Phase.Rows;
        ep.cursor = 0;
        ep.rows = uint16(rows);
        ep.n = uint16(n);
        ep.epochBlock = uint64(block.number);
        emit EpochStarted(ep.epochBlock, rows, n, minted, fees);
    }

    /// @dev Uids of rows `first .. first + count - 1` (set bits of `_permits`, ascending).
    function _rowUids(uint256 first, uint256 count) private view returns (uint16[] memory uids) {
        uids = new uint16[](count);
        uint256 bits = _permits;
        uint256 row;
        for (uint256 uid; bits != 0 && row < first + count; ++uid) {
            if (bits & 1 != 0) {
                if (row >= first) uids[row - first] = uint16(uid);
                ++row;
            }
            bits >>= 1;
        }
    }

    /// @dev Registration block of `uid` from the snapshot words.
    function _regOf(uint256[] memory regWords, uint256 uid) private pure returns (uint256) {
        return uint64(regWords[uid >> 2] >> (64 * (uid & 3)));
    }

    function _loadRegWords(uint256 n) private view returns (uint256[] memory regWords) {
        regWords = new uint256[]((n + 3) >> 2);
        for (uint256 w; w < regWords.length; ++w) {
            regWords[w] = _regWords[w];
        }
    }

    /// @dev Row steps: 16 validator rows each.
    function _rows(Epoch memory ep, uint256 start) private {
        uint256[] memory regWords = _loadRegWords(ep.n);
        uint256[] memory raw = new uint256[](ep.n);
        uint256 maxCost;
        while (ep.cursor < ep.rows) {
            uint256 t0 = gasleft();
            _rowStep(ep, regWords, raw);
            uint256 cost = t0 - gasleft();
            if (cost > maxCost) maxCost = cost;
            if (start - gasleft() + maxCost > GAS_BUDGET) break;
        }
        if (ep.cursor == ep.rows) {
            ep.phase = Phase.Columns;
            ep.cursor = 0;
        }
    }

    /// @dev Records rows `ep.cursor ..` (up to 16) and advances the cursor.
    function _rowStep(Epoch memory ep, uint256[] memory regWords, uint256[] memory raw) private {
        uint256 first = ep.cursor;
        uint256 count = ep.rows - first < ROW_STEP ? ep.rows - first : ROW_STEP;
        uint16[] memory uids = _rowUids(first, count);
        (uint256[] memory stakes, uint64[] memory lus, uint256[] memory words) =
            _metagraph.epochRows(uids, 0, (raw.length + 15) >> 4, true);
        for (uint256 k; k < count; ++k) {
            uint256 info = _rowSum(words, k, uids[k], lus[k], regWords, raw);
            info |= _rowFlags(ep, uids[k], lus[k], regWords);
            info |= stakes[k] | (uint256(lus[k]) << R_LU) | (uint256(uids[k]) << R_UID);
            _rowInfo[first + k] = info;
            _rowAcc[first + k] = 0;
        }
        ep.cursor = uint16(first + count);
    }

    /// @dev R_ACTIVE and R_BONDS of a row.
    function _rowFlags(Epoch memory ep, uint256 uid, uint256 lu, uint256[] memory regWords)
        private
        view
        returns (uint256 flags)
    {
        if (lu + _params.activityCutoff >= ep.epochBlock) flags = 1 << R_ACTIVE;
        if ((_bondRows >> uid) & 1 != 0 && _regOf(regWords, uid) <= ep.lastEpochBlock) flags |= 1 << R_BONDS;
    }

    /// @dev Masked raw sum of row `k` of `words` (rows of ceil(n / 16) words), its first largest entry and the dust
    /// `ONE - sum_j floor(x_j * ONE / sum)` that normalisation adds there (0 for a zero row),
    /// packed at R_SUM, R_ARG and R_DUST.
    function _rowSum(
        uint256[] memory words,
        uint256 k,
        uint256 uid,
        uint256 lu,
        uint256[] memory regWords,
        uint256[] memory raw
    ) private pure returns (uint256 packed) {
        // Indices: j < n = raw.length; words holds rows of ceil(n / 16) words and row k exists;
        // regWords holds ceil(n / 4) words. Sums < 256 * 2^16; x * ONE < 2^76.
        assembly ("memory-safe") {
            let n := mload(raw)
            let rp := add(raw, 0x20)
            let wp := add(add(words, 0x20), shl(5, mul(k, shr(4, add(n, 15)))))
            let gp := add(regWords, 0x20)
            let sum := 0
            let arg := 0
            let best := 0
            for { let j := 0 } lt(j, n) { j := add(j, 1) } {
                let x := and(shr(shl(4, and(j, 15)), mload(add(wp, shl(5, shr(4, j))))), 0xffff)
                if x {
                    let reg := and(shr(shl(6, and(j, 3)), mload(add(gp, shl(5, shr(2, j))))), 0xffffffffffffffff)
                    if or(eq(j, uid), iszero(gt(lu, reg))) { x := 0 }
                }
                mstore(add(rp, shl(5, j)), x)
                sum := add(sum, x)
                if gt(x, best) {
                    best := x
                    arg := j
                }
            }
            if sum {
                let assigned := 0
                for { let j := 0 } lt(j, n) { j := add(j, 1) } {
                    assigned := add(assigned, div(mul(mload(add(rp, shl(5, j))), ONE), sum))
                }
                packed := shl(R_DUST, sub(ONE, assigned))
            }
            packed := or(packed, or(shl(R_SUM, sum), shl(R_ARG, arg)))
        }
    }

    /// @dev What every column step of one call needs about the rows (assembly reads the
    /// first seven fields by offset: keep the order).
    struct RowCtx {
        uint16[] uids;
        uint256[] info;
        uint256[] rawActive;
        uint256[] active; // normalised
        uint256[] trust;
        uint256[] acc;
        uint256[] who; // rows with active stake (median participants)
        uint256 target; // median target: T * (65535 - kappa)
        uint256 alpha; // 0x100: fixed EMA rate
        uint256 low;
        uint256 high;
        uint256 penalty; // 0x160: bonds penalty (u16)
    }

    function _rowCtx(Epoch memory ep, YumaEpoch.Params memory p) private view returns (RowCtx memory ctx) {
        uint256 rows = ep.rows;
        ctx.uids = new uint16[](rows);
        ctx.info = new uint256[](rows);
        ctx.rawActive = new uint256[](rows);
        ctx.active = new uint256[](rows);
        ctx.trust = new uint256[](rows);
        ctx.acc = new uint256[](rows);
        uint256 count;
        uint256 total;
        for (uint256 i; i < rows; ++i) {
            uint256 info = _rowInfo[i];
            ctx.info[i] = info;
            ctx.uids[i] = uint16(info >> R_UID);
            if ((info >> R_ACTIVE) & 1 != 0) {
                uint256 s = uint96(info);
                ctx.rawActive[i] = s;
                ctx.active[i] = s;
                if (s != 0) {
                    ++count;
                    total += s;
                }
            }
            uint256 acc = _rowAcc[i];
            ctx.trust[i] = uint64(acc);
            ctx.acc[i] = acc >> 64;
        }
        ctx.active.normalize();
        ctx.who = new uint256[](count);
        count = 0;
        for (uint256 i; i < rows; ++i) {
            if (ctx.rawActive[i] != 0) ctx.who[count++] = i;
        }
        ctx.target = total * (U16_MAX - p.kappa);
        ctx.alpha = (BMA_SCALE - p.bondsMovingAverage) * (ONE / BMA_SCALE);
        ctx.low = YumaMath.u16ToFraction(p.alphaLow);
        ctx.high = YumaMath.u16ToFraction(p.alphaHigh);
        ctx.penalty = p.bondsPenalty;
    }

    /// @dev Column steps: 16 uid columns each.
    function _columns(Epoch memory ep, uint256 start) private {
        YumaEpoch.Params memory p = _params;
        RowCtx memory ctx = _rowCtx(ep, p);
        // Steps of 8 columns (2 with liquid alpha, whose sigmoid costs ~14k gas an entry): part
        // of a packed word, so a step's compute and first-time bond writes stay small.
        uint256 steps = ((uint256(ep.n) + 15) >> 4) * (p.liquidAlpha ? 8 : 2);
        uint256 rows = ep.rows;
        Group memory gr;
        gr.oldBonds = new uint256[](rows);
        gr.newBonds = new uint256[](rows);
        gr.w = new uint256[](rows);
        gr.e = new uint256[](rows);
        gr.buf = new uint256[](4 * ctx.who.length);
        gr.stored = new uint256[](rows);
        gr.lastEpoch = ep.lastEpochBlock;
        uint256 maxCost;
        while (ep.cursor < steps) {
            uint256 t0 = gasleft();
            _group(ep, p, ctx, gr, ep.cursor);
            ep.cursor += 1;
            uint256 cost = t0 - gasleft();
            if (cost > maxCost) maxCost = cost;
            // Steps differ (one without weights is cheap, one writing bond words for the first
            // time costs ~60k gas per row): assume the worst, and leave room for the per-row
            // write-back below.
            uint256 next = maxCost > 100_000 + rows * 60_000 ? maxCost : 100_000 + rows * 60_000;
            if (start - gasleft() + next + rows * 6000 > GAS_BUDGET) break;
        }
        for (uint256 i; i < ep.rows; ++i) {
            _rowAcc[i] = ctx.trust[i] | (ctx.acc[i] << 64);
        }
        if (ep.cursor == steps) {
            ep.phase = Phase.Credit;
            ep.cursor = 0;
        }
    }

    /// @dev Per-group scratch (assembly reads fields by offset: keep the order, one word each).
    struct Group {
        uint256[] words; // weight word of each row
        uint256[] oldBonds;
        uint256[] newBonds;
        uint256[] w; // normalised weights of the current column
        uint256[] e; // new bonds (ONE-scaled) of the current column
        uint256[] buf; // median scratch
        uint256 regs; // registration blocks of the current 4 columns
        uint256 reg; // registration block of the current column
        uint256 lastEpoch; // the previous epoch's block
        uint256 colSum; // sum of the current column's new bonds
        uint256 best; // first row holding the column's largest new bond
        uint256 bestE; // that bond
        uint256[] stored; // each row's bond word as read from storage (0: not read)
    }

    /// @dev Step `st`: columns `16g + c0 .. 16g + c1 - 1` of packed word `g = st / k` with
    /// `k` steps per word (2, or 8 with liquid alpha), `c0 = (16 / k) * (st % k)` (a no-op past
    /// the last column). The other lanes of the bond and consensus words are kept: old bonds
    /// before their step, this epoch's after it (a row whose stored bonds are stale starts from
    /// a zero word at `c0 = 0`).
    function _group(
        Epoch memory ep,
        YumaEpoch.Params memory p,
        RowCtx memory ctx,
        Group memory gr,
        uint256 st
    ) private {
        uint256 width = p.liquidAlpha ? 2 : 8;
        uint256 g = st / (16 / width);
        uint256 c0 = (st % (16 / width)) * width;
        uint256 c1 = uint256(ep.n) - 16 * g < 16 ? uint256(ep.n) - 16 * g : 16; // columns in word g
        if (c0 >= c1) return;
        if (c0 + width < c1) c1 = c0 + width;
        uint256 keep = ~(((1 << (16 * (c1 - c0))) - 1) << (16 * c0));
        (,, gr.words) = _metagraph.epochRows(ctx.uids, g, 1, false);
        _loadBonds(ctx, gr, g, c0 != 0, keep);
        uint256 consensusWord = c0 == 0 ? 0 : _consensusWords[g] & keep;
        _consensusWords[g] = consensusWord | _groupColumns(ctx, gr, p, 16 * g + c0, 16 * g + c1);
        _storeBonds(ctx, gr, g, c0 != 0);
    }

    /// @dev Columns `from .. to - 1` (inside one packed word); returns their consensus lanes.
    function _groupColumns(RowCtx memory ctx, Group memory gr, YumaEpoch.Params memory p, uint256 from, uint256 to)
        private
        returns (uint256 consensusWord)
    {
        for (uint256 j = from; j < to; ++j) {
            if (j == from || j & 3 == 0) gr.regs = _regWords[j >> 2];
            gr.reg = uint64(gr.regs >> (64 * (j & 3)));
            consensusWord |= _toU16(_column(ctx, gr, p, j)) << (16 * (j & 15));
        }
    }

    /// @dev Reads each row's bond word `g`: old bonds (zero for stale rows) and the lanes
    /// `keep`s of the word the step starts from.
    function _loadBonds(RowCtx memory ctx, Group memory gr, uint256 g, bool second, uint256 keep) private view {
        for (uint256 i; i < ctx.uids.length; ++i) {
            bool valid = (ctx.info[i] >> R_BONDS) & 1 != 0;
            uint256 stored = valid || second ? _bonds[ctx.uids[i]][g] : 0;
            gr.stored[i] = stored;
            gr.oldBonds[i] = valid ? stored : 0;
            gr.newBonds[i] = stored & keep;
        }
    }

    /// @dev Writes each row's bond word `g` when it changed (unread words always).
    function _storeBonds(RowCtx memory ctx, Group memory gr, uint256 g, bool second) private {
        for (uint256 i; i < ctx.uids.length; ++i) {
            bool read = second || (ctx.info[i] >> R_BONDS) & 1 != 0;
            if (!read || gr.newBonds[i] != gr.stored[i]) _bonds[ctx.uids[i]][g] = gr.newBonds[i];
        }
    }

    /// @dev Column `j` (registered at `gr.reg`): returns its consensus; updates trust,
    /// rank-weighted bond sums, the stored rank and the new bond lanes.
    function _column(RowCtx memory ctx, Group memory gr, YumaEpoch.Params memory p, uint256 j)
        private
        returns (uint256 cons)
    {
        _columnWeights(ctx, gr, j);
        cons = YumaMath.weightedMedian(gr.buf, ctx.who.length, ctx.target);
        uint256 lane = 16 * (j & 15);
        uint256 rank = p.liquidAlpha && cons != 0
            ? _columnBondsLiquid(ctx, gr, p, lane, cons)
            : _columnBonds(ctx, gr, lane, cons);
        _columnDividends(ctx, gr, rank);
        uint256 slot = _rankWords[j >> 1];
        uint256 shift = 128 * (j & 1);
        // rank <= ONE^2 < 2^120 fits its 128-bit lane.
        _rankWords[j >> 1] = (slot & ~(uint256(type(uint128).max) << shift)) | (rank << shift);
    }

    /// @dev The normalised weights of column `j` into `gr.w` (row `i`: `x * ONE / sum`, plus the
    /// row's dust on its first largest entry; 0 for its own uid and for weights not newer than
    /// the column's registration), and the median pairs `(w, raw active stake)` into `gr.buf`.
    function _columnWeights(RowCtx memory ctx, Group memory gr, uint256 j) private pure {
        uint256 reg = gr.reg;
        uint256 lane = 16 * (j & 15);
        // Every array has `rows` entries (`buf` 4 per participant, `who` < rows); indices stay
        // below those lengths. x < 2^16 and ONE < 2^60: no overflow.
        assembly ("memory-safe") {
            let rows := mload(mload(ctx)) // ctx.uids.length
            let info := add(mload(add(ctx, 0x20)), 0x20)
            let words := add(mload(gr), 0x20)
            let w := add(mload(add(gr, 0x60)), 0x20)
            for { let i := 0 } lt(i, rows) { i := add(i, 1) } {
                let inf := mload(add(info, shl(5, i)))
                let v := 0
                let x := and(shr(lane, mload(add(words, shl(5, i)))), 0xffff)
                if x {
                    if gt(and(shr(R_LU, inf), 0xffffffffffffffff), reg) {
                        if iszero(eq(j, and(shr(R_UID, inf), 0xffff))) {
                            // A non-zero entry implies a non-zero row sum.
                            v := div(mul(x, ONE), and(shr(R_SUM, inf), 0xffffffff))
                            if eq(j, and(shr(R_ARG, inf), 0xffff)) { v := add(v, and(shr(R_DUST, inf), 0xffff)) }
                        }
                    }
                }
                mstore(add(w, shl(5, i)), v)
            }
            let who := mload(add(ctx, 0xc0))
            let count := mload(who)
            let raw := add(mload(add(ctx, 0x40)), 0x20)
            let buf := add(mload(add(gr, 0xa0)), 0x20)
            for { let k := 0 } lt(k, count) { k := add(k, 1) } {
                let i := mload(add(who, shl(5, add(k, 1))))
                let q := add(buf, shl(6, k))
                mstore(q, mload(add(w, shl(5, i))))
                mstore(add(q, 0x20), mload(add(raw, shl(5, i))))
            }
        }
    }

    /// @dev Clipping, trust, rank and the fixed-rate bond EMA of the current column; leaves the
    /// new bonds in `gr.e`, their sum in `gr.colSum` and the first largest row in `gr.best`.
    function _columnBonds(RowCtx memory ctx, Group memory gr, uint256 lane, uint256 cons)
        private
        pure
        returns (uint256 rank)
    {
        // Indices < rows in arrays of `rows` entries. w, cl, old, alpha <= ONE: products < 2^120;
        // trust <= ONE per row (a row sums to ONE); rank <= ONE^2 (sum_i a_i <= ONE);
        // colSum <= rows * ONE. Few stack slots: addresses are recomputed from the structs.
        assembly ("memory-safe") {
            let fresh := gt(mload(add(gr, 0xe0)), mload(add(gr, 0x100))) // reg > lastEpoch
            mstore(add(gr, 0x120), 0) // colSum
            mstore(add(gr, 0x140), 0) // best
            for { let i := 0 } lt(i, mload(mload(ctx))) { i := add(i, 1) } {
                let w := mload(add(add(mload(add(gr, 0x60)), 0x20), shl(5, i)))
                let old := 0
                if iszero(fresh) {
                    old := and(shr(lane, mload(add(add(mload(add(gr, 0x20)), 0x20), shl(5, i)))), 0xffff)
                    old := div(mul(old, ONE), U16_MAX)
                }
                let e := 0
                // A zero weight with a zero old bond leaves everything at zero.
                if or(w, old) {
                    let cl := w
                    if lt(cons, w) { cl := cons }
                    let p := add(add(mload(add(ctx, 0x80)), 0x20), shl(5, i)) // ctx.trust[i]
                    mstore(p, add(mload(p), cl))
                    rank := add(rank, mul(mload(add(add(mload(add(ctx, 0x60)), 0x20), shl(5, i))), cl)) // a_i
                    // The EMA target w - (w - cl) * penalty / 65535.
                    w := sub(w, div(mul(sub(w, cl), mload(add(ctx, 0x160))), U16_MAX))
                    p := mload(add(ctx, 0x100)) // alpha
                    e := add(div(mul(sub(ONE, p), old), ONE), div(mul(p, w), ONE))
                    if gt(e, ONE) { e := ONE }
                    mstore(add(gr, 0x120), add(mload(add(gr, 0x120)), e))
                    p := add(add(mload(add(gr, 0x40)), 0x20), shl(5, i)) // gr.newBonds[i]
                    mstore(p, or(mload(p), shl(lane, div(add(mul(e, U16_MAX), HALF), ONE))))
                }
                let ep := add(mload(add(gr, 0x80)), 0x20)
                mstore(add(ep, shl(5, i)), e)
                // e[best] is already written (best <= i), so ties keep the first row.
                if gt(e, mload(add(ep, shl(5, mload(add(gr, 0x140)))))) { mstore(add(gr, 0x140), i) }
            }
        }
    }

    /// @dev `_columnBonds` with a liquid alpha per entry (the sigmoid dominates the cost).
    function _columnBondsLiquid(
        RowCtx memory ctx,
        Group memory gr,
        YumaEpoch.Params memory p,
        uint256 lane,
        uint256 cons
    )
        private
        pure
        returns (uint256 rank)
    {
        bool fresh = gr.reg > gr.lastEpoch;
        gr.colSum = 0;
        gr.best = 0;
        gr.bestE = 0;
        for (uint256 i; i < ctx.uids.length; ++i) {
            uint256 w = gr.w[i];
            uint256 old = fresh ? 0 : YumaMath.u16ToFraction((gr.oldBonds[i] >> lane) & 0xFFFF);
            uint256 e;
            if (w != 0 || old != 0) {
                uint256 cl = w < cons ? w : cons;
                ctx.trust[i] += cl;
                rank += ctx.active[i] * cl;
                e = _emaLiquid(ctx, p, w, cl, old, cons);
                gr.colSum += e;
                if (e > gr.bestE) {
                    gr.bestE = e;
                    gr.best = i;
                }
                gr.newBonds[i] |= _toU16(e) << lane;
            }
            gr.e[i] = e;
        }
    }

    /// @dev New bond of one entry with liquid alpha: EMA from `old` toward the penalised
    /// clipped weight.
    function _emaLiquid(RowCtx memory ctx, YumaEpoch.Params memory p, uint256 w, uint256 cl, uint256 old, uint256 cons)
        private
        pure
        returns (uint256 e)
    {
        uint256 t = w - (w - cl) * p.bondsPenalty / U16_MAX;
        uint256 alpha = YumaMath.liquidAlpha(cons, t, old, ctx.low, ctx.high, p.alphaSigmoidSteepness);
        e = (ONE - alpha) * old / ONE + alpha * t / ONE;
        if (e > ONE) e = ONE;
    }

    /// @dev Adds `n_ij * rank` to every row's dividend sum, `n` the column-normalised new bonds
    /// (floor shares, the dust `ONE - sum` on the first largest bond).
    function _columnDividends(RowCtx memory ctx, Group memory gr, uint256 rank) private pure {
        uint256 colSum = gr.colSum;
        if (colSum == 0) return;
        // Indices < rows. y <= ONE, rank <= ONE^2: each row's sum stays <= ONE^3 over the
        // epoch; sum of y <= ONE.
        assembly ("memory-safe") {
            let rows := mload(mload(ctx))
            let acc := add(mload(add(ctx, 0xa0)), 0x20)
            let ep := add(mload(add(gr, 0x80)), 0x20)
            let assigned := 0
            for { let i := 0 } lt(i, rows) { i := add(i, 1) } {
                let e := mload(add(ep, shl(5, i)))
                if e {
                    let y := div(mul(e, ONE), colSum)
                    assigned := add(assigned, y)
                    let ap := add(acc, shl(5, i))
                    mstore(ap, add(mload(ap), mul(y, rank)))
                }
            }
            let bp := add(acc, shl(5, mload(add(gr, 0x140))))
            mstore(bp, add(mload(bp), mul(sub(ONE, assigned), rank)))
        }
    }

    /// @dev The epoch's split, recomputed from the stored ranks and row sums.
    struct Split {
        uint256[] perUid;
        uint256[] incentive;
        uint256[] dividends;
        uint256 owner;
    }

    function _split(Epoch memory ep) private view returns (Split memory s) {
        uint256 n = ep.n;
        uint256 rows = ep.rows;
        s.incentive = new uint256[](n);
        for (uint256 j; j < n; ++j) {
            s.incentive[j] = uint128(_rankWords[j >> 1] >> (128 * (j & 1)));
        }
        // Ranks <= ONE^2 < 2^120: within normalize's precondition.
        s.incentive.normalize();
        uint256[] memory stake = new uint256[](rows);
        uint256[] memory active = new uint256[](rows);
        s.dividends = new uint256[](rows);
        uint256[] memory acc = new uint256[](rows);
        for (uint256 i; i < rows; ++i) {
            uint256 info = _rowInfo[i];
            stake[i] = uint96(info);
            if ((info >> R_ACTIVE) & 1 != 0) active[i] = uint96(info);
            acc[i] = _rowAcc[i] >> 64;
        }
        stake.normalize();
        active.normalize();
        for (uint256 i; i < rows; ++i) {
            // a_i * acc_i <= ONE^4 < 2^240; the quotient <= ONE^2.
            s.dividends[i] = active[i] * acc[i] / (ONE * ONE);
        }
        s.dividends.normalize();

        uint256 minted = _minted;
        uint256 owner = minted * OWNER_PERCENT / 100;
        uint256 minerPool = minted * MINER_PERCENT / 100;
        uint256 validatorPool = minted - owner - minerPool + _fees;
        if (!s.incentive.anyNonZero()) {
            validatorPool += minerPool;
            minerPool = 0;
        }
        s.perUid = YumaMath.distribute(minerPool, s.incentive);
        uint256[] memory validators;
        if (s.dividends.anyNonZero()) validators = YumaMath.distribute(validatorPool, s.dividends);
        else if (active.anyNonZero()) validators = YumaMath.distribute(validatorPool, active);
        else if (stake.anyNonZero()) validators = YumaMath.distribute(validatorPool, stake);
        else owner += validatorPool;
        if (validators.length != 0) {
            for (uint256 i; i < rows; ++i) {
                s.perUid[uint16(_rowInfo[i] >> R_UID)] += validators[i];
            }
        }
        s.owner = owner;
    }

    /// @dev Credit steps: the first records scores and credits the owner; each step credits 32
    /// uids' emission to their hotkeys and records it on the Metagraph.
    function _credit(Epoch memory ep, uint256 start) private {
        Split memory s = _split(ep);
        uint256 n = ep.n;
        if (ep.cursor == 0) {
            _recordScores(ep, s);
            _claimable[Ownable(address(_metagraph)).owner()] += s.owner;
        }
        uint256 maxCost;
        while (ep.cursor < n) {
            uint256 t0 = gasleft();
            uint256 first = ep.cursor;
            uint256 count = n - first < CREDIT_STEP ? n - first : CREDIT_STEP;
            address[] memory keys = _metagraph.hotkeys(uint16(first), count);
            uint96[] memory amounts = new uint96[](count);
            for (uint256 k; k < count; ++k) {
                uint256 amount = s.perUid[first + k];
                // uint96 holds any amount: the supply cap 21M * 1e18 < 2^75.
                amounts[k] = uint96(amount);
                if (amount != 0) _claimable[keys[k]] += amount;
            }
            _metagraph.recordEmission(uint16(first), amounts);
            ep.cursor = uint16(first + count);
            uint256 cost = t0 - gasleft();
            if (cost > maxCost) maxCost = cost;
            if (start - gasleft() + maxCost > GAS_BUDGET) break;
        }
        if (ep.cursor == n) {
            _metagraph.setEpochRunning(false);
            _bondRows = _permits;
            ep.lastEpochBlock = ep.epochBlock;
            ep.phase = Phase.Idle;
            ep.cursor = 0;
            emit EpochCompleted(ep.epochBlock, uint256(_minted) + _fees);
        }
    }

    function _recordScores(Epoch memory ep, Split memory s) private {
        uint256[16] memory incentive;
        uint256[16] memory dividends;
        uint256[16] memory consensus;
        uint256[16] memory trust;
        for (uint256 j; j < ep.n; ++j) {
            incentive[j >> 4] |= _toU16(s.incentive[j]) << (16 * (j & 15));
        }
        for (uint256 w; w < 16; ++w) {
            consensus[w] = _consensusWords[w];
        }
        for (uint256 i; i < ep.rows; ++i) {
            uint256 info = _rowInfo[i];
            uint256 uid = uint16(info >> R_UID);
            uint256 shift = 16 * (uid & 15);
            dividends[uid >> 4] |= _toU16(s.dividends[i]) << shift;
            trust[uid >> 4] |= _toU16(uint64(_rowAcc[i])) << shift;
        }
        _metagraph.recordEpochScores(incentive, dividends, consensus, trust);
    }

    /// @dev ONE-scaled fraction in [0, ONE] to u16 (round half up), as bonds are stored.
    function _toU16(uint256 x) private pure returns (uint256) {
        return (x * U16_MAX + HALF) / ONE;
    }

    // ================================================================== emission and claims

    function _emission(uint256 tempo) private view returns (uint256) {
        uint256 cap = _token.cap();
        uint256 supply = _token.totalSupply();
        if (supply >= cap) return 0;
        uint256 remaining = cap - supply;
        uint256 rate = _emissionPerBlock;
        for (uint256 k = 1; rate != 0 && remaining <= cap >> k; ++k) {
            rate >>= 1;
        }
        uint256 amount = rate * tempo;
        return amount < remaining ? amount : remaining;
    }

    /// @inheritdoc IYumaConsensus
    function claim(address account, bool stake) external returns (uint256 amount) {
        address coldkey = _metagraph.hotkeyOwner(account);
        if (msg.sender != account && (coldkey == address(0) || msg.sender != coldkey)) {
            revert YumaConsensusNotAuthorized(msg.sender, account);
        }
        amount = _claimable[account];
        if (amount == 0) revert YumaConsensusNothingToClaim(account);
        _claimable[account] = 0;
        _reserved -= amount;
        address recipient = coldkey == address(0) ? account : coldkey;
        emit RewardsClaimed(account, recipient, amount, stake);
        if (stake) {
            if (!_metagraph.isRegistered(account)) revert YumaConsensusNotAHotkey(account);
            IERC20(address(_token)).forceApprove(address(_metagraph), amount);
            _metagraph.addStakeFor(recipient, account, amount);
        } else {
            IERC20(address(_token)).safeTransfer(recipient, amount);
        }
    }

    // ================================================================== views

    /// @inheritdoc IYumaConsensus
    function claimable(address account) external view returns (uint256) {
        return _claimable[account];
    }

    /// @inheritdoc IYumaConsensus
    function reserved() external view returns (uint256) {
        return _reserved;
    }

    /// @inheritdoc IYumaConsensus
    function epochRunning() external view returns (bool) {
        return _epoch.phase != Phase.Idle;
    }

    /// @inheritdoc IYumaConsensus
    function progress() external view returns (Phase phase, uint256 cursor) {
        return (_epoch.phase, _epoch.cursor);
    }

    /// @inheritdoc IYumaConsensus
    function lastEpochBlock() external view returns (uint64) {
        return _epoch.lastEpochBlock;
    }

    /// @inheritdoc IYumaConsensus
    function nextEpochBlock() external view returns (uint64) {
        return _nextEpochBlock(_epoch);
    }

    function _nextEpochBlock(Epoch memory ep) private view returns (uint64) {
        if (ep.lastEpochBlock == 0) return 0;
        return ep.lastEpochBlock + _metagraph.hyperparameters().tempo;
    }

    /// @inheritdoc IYumaConsensus
    function bondRows() external view returns (uint256) {
        return _bondRows;
    }

    /// @inheritdoc IYumaConsensus
    function bondRow(uint16 uid) external view returns (uint256[16] memory) {
        return _bonds[uid];
    }

    /// @inheritdoc IYumaConsensus
    function metagraph() external view returns (address) {
        return address(_metagraph);
    }

    /// @inheritdoc IYumaConsensus
    function token() external view returns (address) {
        return address(_token);
    }

    /// @inheritdoc IYumaConsensus
    function emissionPerBlock() external view returns (uint256) {
        return _emissionPerBlock;
    }

    /// @inheritdoc IYumaConsensus
    function epochEmission() external view returns (uint256) {
        return _emission(_metagraph.hyperparameters().tempo);
    }
}
