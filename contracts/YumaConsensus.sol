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
/// (16 validator rows per step: stake, last update, flags and the row sum the Metagraph keeps,
/// less the weights on uids registered since the row's last update); `_columns` (one packed
/// word of 16 uid columns per step, 1-2 columns with liquid alpha: the caller's consensus
/// checked against the column, clipped weights, trust, ranks, bond EMA, the column-scaled
/// bonds weighted by rank into per-row dividend sums); `_credit` (the emission split,
/// recomputed from stored ranks and row sums, 48 uids per step). A call runs steps while the gas it used plus the next step's estimate stays
/// under `GAS_BUDGET`. Weight and bond words known to be zero are never read.
contract YumaConsensus is IYumaConsensus {
    using SafeERC20 for IERC20;
    using YumaMath for uint256[];

    uint256 private constant ONE = 1e18;
    uint256 private constant U16_MAX = 65_535;
    uint256 private constant U85_MAX = (1 << 85) - 1;
    uint256 private constant HALF = 5e17;
    uint256 private constant BMA_SCALE = 1_000_000;
    uint256 private constant OWNER_PERCENT = 18;
    uint256 private constant MINER_PERCENT = 41;
    /// @dev A call starts another step only while the gas it has used plus the step's estimate
    /// (the largest step seen in the call, or the phase's first-step bound) and the call's final
    /// writes stay below this; with the transaction's base cost every call stays below 5M.
    uint256 private constant GAS_BUDGET = 4_600_000;
    uint256 private constant ROW_STEP = 16;
    uint256 private constant CREDIT_STEP = 48;
    /// @dev Gas bound of one column entry at the fixed rate, with its row's share of loading
    /// and storing the words (measured: ~900 when every entry is clipped and penalised).
    uint256 private constant ENTRY_GAS = 1_000;

    /// @dev Row record bit layout (`_rowInfo[row]`).
    uint256 private constant R_LU = 96; // last weight update (u64)
    uint256 private constant R_SUM = 160; // row sum without self and outdated weights (u32)
    uint256 private constant R_UID = 192; // uid (u16)
    uint256 private constant R_WORDS = 208; // bit w: weight word w is non-zero (u16)
    uint256 private constant R_ACTIVE = 240; // active flag
    uint256 private constant R_BONDS = 241; // stored bonds of this uid are current

    /// @dev Column-pass record of one row in memory, 16 words (assembly reads them by offset).
    uint256 private constant W = 0x00; // weight word of the step's group
    uint256 private constant OLD = 0x20; // old bond word (0 when the stored bonds are stale)
    uint256 private constant NEW = 0x40; // new bond word being built
    uint256 private constant SUM = 0x60; // row sum
    uint256 private constant LU = 0x80; // last update
    uint256 private constant UID = 0xa0; // uid
    uint256 private constant A = 0xc0; // normalised active stake
    uint256 private constant RAW = 0xe0; // raw active stake (0: not a median participant)
    uint256 private constant TRUST = 0x100; // sum of clipped weights
    uint256 private constant ACC = 0x120; // sum_j n_ij * R_j
    uint256 private constant Y = 0x140; // scaled weight of the current column
    uint256 private constant E = 0x160; // new bond of the current column
    uint256 private constant STORED = 0x180; // bond word as stored
    uint256 private constant BMASK = 0x1a0; // bit w: stored bond word w is non-zero
    uint256 private constant WMASK = 0x1c0; // bit w: weight word w is non-zero
    uint256 private constant VALID = 0x1e0; // 1: stored bonds are current

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
        uint64 maxRegistration; // latest registration block among the epoch's uids
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
    /// @dev Per row: stake (u96) | lastUpdate | row sum | uid | weight words | flags (R_*).
    uint256[256] private _rowInfo;
    /// @dev Per row: trust (low 64 bits) | rank-weighted bond sum (high 192 bits).
    uint256[256] private _rowAcc;
    /// @dev Registration blocks, 4 u64 per word.
    uint256[64] private _regWords;
    /// @dev Ranks (<= ONE), 4 u64 per word.
    uint256[64] private _rankWords;
    /// @dev Consensus as u16 (round half up), 16 per word.
    uint256[16] private _consensusWords;
    /// @dev 16 bits per uid, 16 uids per word: bit w set when bond word w of the uid is non-zero.
    uint256[16] private _bondMasks;
    /// @dev What each uid earned and nobody claimed yet, u85 lanes, 3 uids per word.
    uint256[86] private _earned;
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
    function runEpoch(bytes calldata consensus) external returns (bool done) {
        uint256 start = gasleft();
        Epoch memory ep = _epoch;
        bool progressed;
        if (ep.phase == Phase.Idle) {
            uint64 next = _nextEpochBlock(ep);
            if (block.number < next) revert YumaConsensusTooEarly(next);
            _start(ep);
            progressed = true;
        }
        // Each phase runs steps while the budget allows (forced: the call's first step runs
        // whatever its estimate) and returns false when it stopped for lack of gas.
        while (ep.phase != Phase.Idle) {
            bool force = !progressed;
            progressed = true;
            bool finished;
            if (ep.phase == Phase.Rows) finished = _rows(ep, start, force);
            else if (ep.phase == Phase.Columns) finished = _columns(ep, start, force, _hint(ep, consensus));
            else finished = _credit(ep, start, force);
            if (!finished) break;
        }
        _epoch = ep;
        emit EpochProgress(ep.phase, ep.cursor);
        return ep.phase == Phase.Idle;
    }

    /// @dev True when a step estimated at `cost` (including the call's final writes) fits the
    /// budget, or when it is forced.
    function _fits(uint256 start, uint256 cost, bool force) private view returns (bool) {
        return force || start - gasleft() + cost <= GAS_BUDGET;
    }

    /// @dev Permits, hyperparameters, registration blocks, mint and fees.
    function _start(Epoch memory ep) private {
        IMetagraph.Hyperparameters memory h = _metagraph.hyperparameters();
        // Registrations and reveals wait until the epoch completes: every step reads one state.
        _metagraph.setEpochRunning(true);
        uint256 permits = _metagraph.recomputePermits();
        uint64[] memory reg = _metagraph.registrationBlocks();
        uint256 n = reg.length;
        uint256 maxReg;
        for (uint256 w; w < (n + 3) >> 2; ++w) {
            uint256 word;
            for (uint256 k; k < 4 && 4 * w + k < n; ++k) {
                uint256 r = reg[4 * w + k];
                if (r > maxReg) maxReg = r;
                word |= r << (64 * k);
            }
            if (_regWords[w] != word) _regWords[w] = word;
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
        // Both fit: the token's supply cap is 21M * 1e18 < 2^85.
        _minted = uint128(minted);
        _fees = uint128(fees);

        ep.phase = Phase.Rows;
        ep.cursor = 0;
        ep.rows = uint16(rows);
        ep.n = uint16(n);
        ep.epochBlock = uint64(block.number);
        ep.maxRegistration = uint64(maxReg);
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
    function _rows(Epoch memory ep, uint256 start, bool force) private returns (bool) {
        // A step reads two words per row, more when rows hold weights on new uids.
        uint256 maxCost = 250_000;
        if (!_fits(start, maxCost, force)) return false;
        uint256[] memory regWords = _loadRegWords(ep.n);
        while (ep.cursor < ep.rows) {
            if (!_fits(start, maxCost, force)) return false;
            force = false;
            uint256 t0 = gasleft();
            _rowStep(ep, regWords);
            uint256 cost = t0 - gasleft();
            if (cost > maxCost) maxCost = cost;
        }
        ep.phase = Phase.Columns;
        ep.cursor = 0;
        return true;
    }

    /// @dev Records rows `ep.cursor ..` (up to 16) and advances the cursor.
    function _rowStep(Epoch memory ep, uint256[] memory regWords) private {
        uint256 first = ep.cursor;
        uint256 count = ep.rows - first < ROW_STEP ? ep.rows - first : ROW_STEP;
        uint16[] memory uids = _rowUids(first, count);
        uint256[] memory keys = _metagraph.epochRowKeys(uids);
        for (uint256 k; k < count; ++k) {
            _rowInfo[first + k] = _rowRecord(ep, keys[k], uids[k], regWords);
        }
        ep.cursor = uint16(first + count);
    }

    /// @dev The `_rowInfo` word of `uid` from its `epochRowKeys` word.
    function _rowRecord(Epoch memory ep, uint256 key, uint256 uid, uint256[] memory regWords)
        private
        view
        returns (uint256 info)
    {
        uint256 lu = uint64(key >> 96);
        uint256 sum = uint32(key >> 160);
        uint256 words = uint16(key >> 192);
        // Weights on uids registered at or after the last update belong to an earlier holder of
        // the uid: the epoch ignores them, so the sum leaves them out.
        if (lu <= ep.maxRegistration && sum != 0) sum -= _outdated(ep.n, uid, lu, words, regWords);
        info = uint96(key) | (lu << R_LU) | (sum << R_SUM) | (uid << R_UID) | (words << R_WORDS);
        if (lu + _params.activityCutoff >= ep.epochBlock) info |= 1 << R_ACTIVE;
        if ((_bondRows >> uid) & 1 != 0 && _regOf(regWords, uid) <= ep.lastEpochBlock) info |= 1 << R_BONDS;
    }

    /// @dev Sum of row `uid`'s weights on other uids registered at or after `lu` (reads only
    /// the weight words that hold such a uid).
    function _outdated(uint256 n, uint256 uid, uint256 lu, uint256 words, uint256[] memory regWords)
        private
        view
        returns (uint256 sum)
    {
        uint16[] memory one = new uint16[](1);
        one[0] = uint16(uid);
        for (uint256 w; w < 16 && 16 * w < n; ++w) {
            if ((words >> w) & 1 == 0) continue;
            uint256 lanes;
            for (uint256 c; c < 16 && 16 * w + c < n; ++c) {
                uint256 j = 16 * w + c;
                if (j != uid && _regOf(regWords, j) >= lu) lanes |= 1 << c;
            }
            if (lanes == 0) continue;
            uint256 word = _metagraph.epochWords(one, w)[0];
            for (uint256 c; lanes != 0; ++c) {
                if (lanes & 1 != 0) sum += (word >> (16 * c)) & 0xFFFF;
                lanes >>= 1;
            }
        }
    }

    /// @dev What the column steps of one call share.
    struct Ctx {
        uint256[] recs; // one record of RECORD bytes per row (offsets W .. PREV_MASK)
        uint256[16] reg; // registration blocks of the step's word of uids
        uint256 hint; // calldata offset of the consensus vector (u64 per uid, big-endian)
        uint256 total; // T: raw active stake of the median participants
        uint256 target; // median target: T * (65535 - kappa)
        uint256 alpha; // fixed EMA rate
        uint256 penalty; // bonds penalty (u16)
        uint256 low; // liquid alpha bounds
        uint256 high;
        uint256 steepness;
        uint256 reserve; // gas of the call's final writes
        uint256 lastEpoch; // the previous epoch's block
        uint256 fresh; // lanes of the step's word whose uid registered after the last epoch
    }

    uint256 private constant PREV_ACC = 0x200; // the row's accumulator word as stored
    uint256 private constant PREV_MASK = 0x220; // BMASK as stored
    uint256 private constant RECORD = 0x240; // record size in bytes

    function _ctx(Epoch memory ep, uint256 hint) private view returns (Ctx memory c) {
        YumaEpoch.Params memory p = _params;
        uint256 rows = ep.rows;
        uint256[] memory recs = new uint256[](rows * (RECORD >> 5));
        uint256[] memory active = new uint256[](rows);
        uint256 total;
        uint256 reserve = 40_000;
        for (uint256 i; i < rows; ++i) {
            uint256 info = _rowInfo[i];
            uint256 raw = (info >> R_ACTIVE) & 1 != 0 ? uint96(info) : 0;
            active[i] = raw;
            total += raw;
            uint256 uid = uint16(info >> R_UID);
            uint256 prev = _rowAcc[i];
            // The accumulators restart at the column phase's first step.
            uint256 acc = ep.cursor == 0 ? 0 : prev;
            reserve += prev == 0 ? 22_200 : 5_000;
            uint256 bmask = uint16(_bondMasks[uid >> 4] >> (16 * (uid & 15)));
            // Record i lies inside recs (rows records of RECORD bytes).
            assembly ("memory-safe") {
                let r := add(add(recs, 0x20), mul(i, RECORD))
                mstore(add(r, SUM), and(shr(R_SUM, info), 0xffffffff))
                mstore(add(r, LU), and(shr(R_LU, info), 0xffffffffffffffff))
                mstore(add(r, UID), uid)
                mstore(add(r, RAW), raw)
                mstore(add(r, TRUST), and(acc, 0xffffffffffffffff))
                mstore(add(r, ACC), shr(64, acc))
                mstore(add(r, BMASK), bmask)
                mstore(add(r, WMASK), and(shr(R_WORDS, info), 0xffff))
                mstore(add(r, VALID), and(shr(R_BONDS, info), 1))
                mstore(add(r, PREV_ACC), prev)
                mstore(add(r, PREV_MASK), bmask)
            }
        }
        // Raw stakes are below 2^96: within normalize's precondition.
        active.normalize();
        for (uint256 i; i < rows; ++i) {
            uint256 a = active[i];
            assembly ("memory-safe") {
                mstore(add(add(add(recs, 0x20), mul(i, RECORD)), A), a)
            }
        }
        c.recs = recs;
        c.hint = hint;
        c.total = total;
        c.target = total * (U16_MAX - p.kappa);
        c.alpha = (BMA_SCALE - p.bondsMovingAverage) * (ONE / BMA_SCALE);
        c.penalty = p.bondsPenalty;
        c.low = YumaMath.u16ToFraction(p.alphaLow);
        c.high = YumaMath.u16ToFraction(p.alphaHigh);
        c.steepness = p.alphaSigmoidSteepness;
        c.reserve = reserve;
        c.lastEpoch = ep.lastEpochBlock;
    }

    /// @dev Steps per packed word of 16 uid columns: the widest that keeps one step (with the
    /// call's context and final writes, every bond word written for the first time) under the
    /// budget at 64 rows. An entry costs a few hundred gas, ~16k with liquid alpha's sigmoid.
    function _stepsPerWord(bool liquid, uint256 rows) private pure returns (uint256) {
        if (liquid) return rows > 32 ? 16 : 8;
        return 1;
    }

    /// @dev Calldata offset of the consensus vector, 0 when the call brought none (a real
    /// offset is past the selector); reverts unless it holds 8 bytes per uid.
    function _hint(Epoch memory ep, bytes calldata consensus) private pure returns (uint256 off) {
        if (consensus.length == 0) return 0;
        if (consensus.length != 8 * uint256(ep.n)) {
            revert YumaConsensusBadConsensusLength(8 * uint256(ep.n), consensus.length);
        }
        assembly {
            off := consensus.offset
        }
    }

    /// @dev Column steps: `16 / _stepsPerWord` uid columns of one packed word each. They need
    /// the consensus vector (`hint`, see `_hint`): without one the call stops here.
    function _columns(Epoch memory ep, uint256 start, bool force, uint256 hint) private returns (bool) {
        bool liquid = _params.liquidAlpha;
        uint256 per = _stepsPerWord(liquid, ep.rows);
        uint256 steps = ((uint256(ep.n) + 15) >> 4) * per;
        if (ep.cursor < steps && hint == 0) {
            if (force) revert YumaConsensusNeedsConsensus();
            return false;
        }
        // The context reads about three words per row, the final writes cost up to 23k a row;
        // a step at most what `_stepBound` allows for a row that writes its first bonds.
        uint256 entry = (16 / per) * (liquid ? 16_000 : ENTRY_GAS);
        if (!_fits(start, 120_000 + uint256(ep.rows) * (57_000 + entry), force)) return false;
        Ctx memory c = _ctx(ep, hint);
        while (ep.cursor < steps) {
            if (!_fits(start, _stepBound(c, ep.cursor / per, entry) + c.reserve, force)) break;
            force = false;
            _step(ep, c, liquid, per, ep.cursor);
            ep.cursor += 1;
        }
        _saveRows(c, ep.rows);
        if (ep.cursor < steps) return false;
        ep.phase = Phase.Credit;
        ep.cursor = 0;
        return true;
    }

    /// @dev Gas bound of a step in word `g`: per row its weight read, its bond word read and
    /// write (a first write when the stored word is zero) and `entry` for its entries.
    function _stepBound(Ctx memory c, uint256 g, uint256 entry) private pure returns (uint256 bound) {
        uint256[] memory recs = c.recs;
        uint256 rows = recs.length / (RECORD >> 5);
        bound = 60_000 + rows * entry;
        for (uint256 i; i < rows; ++i) {
            bound += (_field(recs, i, BMASK) >> g) & 1 != 0 ? 5_200 : 22_400;
            if ((_field(recs, i, WMASK) >> g) & 1 != 0) bound += 2_400;
        }
    }

    /// @dev Writes back each row's trust and dividend sum and the bond-word masks that changed.
    function _saveRows(Ctx memory c, uint256 rows) private {
        uint256[] memory recs = c.recs;
        for (uint256 i; i < rows; ++i) {
            uint256 uid;
            uint256 word;
            uint256 prev;
            uint256 mask;
            uint256 prevMask;
            // Record i lies inside recs; trust <= ONE < 2^64, the dividend sum <= ONE^2 < 2^192.
            assembly ("memory-safe") {
                let r := add(add(recs, 0x20), mul(i, RECORD))
                uid := mload(add(r, UID))
                word := or(mload(add(r, TRUST)), shl(64, mload(add(r, ACC))))
                prev := mload(add(r, PREV_ACC))
                mask := mload(add(r, BMASK))
                prevMask := mload(add(r, PREV_MASK))
                mstore(add(r, PREV_ACC), word)
                mstore(add(r, PREV_MASK), mask)
            }
            if (word != prev) _rowAcc[i] = word;
            if (mask != prevMask) {
                uint256 shift = 16 * (uid & 15);
                _bondMasks[uid >> 4] = (_bondMasks[uid >> 4] & ~(uint256(0xFFFF) << shift)) | (mask << shift);
            }
        }
    }

    /// @dev Step `st`: columns `16g + c0 .. 16g + c1 - 1` of packed word `g = st / per`
    /// (`per` steps per word, see `_stepsPerWord`), `c0 = (16 / per) * (st % per)` (a
    /// no-op past the last column). The other lanes of the bond, consensus and rank words are
    /// kept: old bonds before their step, this epoch's after it (a row whose stored bonds are
    /// stale starts from a zero word at `c0 = 0`).
    function _step(Epoch memory ep, Ctx memory c, bool liquid, uint256 per, uint256 st) private {
        uint256 g = st / per;
        uint256 c0 = (st % per) * (16 / per);
        uint256 c1 = uint256(ep.n) - 16 * g < 16 ? uint256(ep.n) - 16 * g : 16;
        if (c0 >= c1) return;
        if (c0 + 16 / per < c1) c1 = c0 + 16 / per;
        uint256 lanes = _lanes(c0, c1);
        bool live = _loadGroup(c, g, c0 != 0, lanes);
        _groupColumns(c, live ? (liquid ? 2 : 1) : 0, g, c0, c1);
        _storeGroup(c, g);
    }

    /// @dev Bits of u16 lanes `c0 .. c1 - 1` (c0 < c1 <= 16).
    function _lanes(uint256 c0, uint256 c1) private pure returns (uint256) {
        return (type(uint256).max >> (256 - 16 * (c1 - c0))) << (16 * c0);
    }

    /// @dev Columns `16g + c0 .. 16g + c1 - 1`: their consensus and rank lanes (`mode` 0: the
    /// group holds no weight and no old bond, every output is 0; 1 fixed rate; 2 liquid alpha).
    function _groupColumns(Ctx memory c, uint256 mode, uint256 g, uint256 c0, uint256 c1) private {
        uint256 consensus = _consensusWords[g] & ~_lanes(c0, c1);
        uint256[4] memory ranks;
        for (uint256 k; k < 4; ++k) {
            ranks[k] = _rankWords[4 * g + k];
        }
        for (uint256 col = c0; col < c1; ++col) {
            uint256 j = 16 * g + col;
            uint256 cons = _hintOf(c, j);
            uint256 rank;
            // With no weight and no old bond every scaled weight is 0, and so is the median.
            if (mode == 0 && cons != 0) revert YumaConsensusWrongConsensus(j, cons);
            if (mode != 0) rank = _column(c, mode == 2, j, 16 * col, cons);
            consensus |= _toU16(cons) << (16 * col);
            uint256 shift = 64 * (col & 3);
            // rank <= ONE < 2^64 fits its lane.
            ranks[col >> 2] = (ranks[col >> 2] & ~(uint256(type(uint64).max) << shift)) | (rank << shift);
        }
        if (_consensusWords[g] != consensus) _consensusWords[g] = consensus;
        for (uint256 k; k < 4; ++k) {
            if (_rankWords[4 * g + k] != ranks[k]) _rankWords[4 * g + k] = ranks[k];
        }
    }

    /// @dev The consensus the caller gives for uid `j` (u64 at byte `8j` of the vector).
    function _hintOf(Ctx memory c, uint256 j) private pure returns (uint256 cons) {
        uint256 off = c.hint + 8 * j;
        // The vector's length is 8n (checked in `_hint`) and j < n.
        assembly {
            cons := shr(192, calldataload(off))
        }
    }

    /// @dev Loads weight word `g` (rows whose word is non-zero; the row's own lane and lanes of
    /// uids registered at or after its last update cleared) and bond word `g` (rows whose
    /// stored word is non-zero) into the records, the group's registration blocks into
    /// `c.reg`, and starts each new bond word from the stored one without `lanes` (from zero
    /// for stale bonds at a group's first step). True when some row has a weight or an old
    /// bond in `lanes`.
    function _loadGroup(Ctx memory c, uint256 g, bool second, uint256 lanes) private view returns (bool live) {
        uint256[] memory recs = c.recs;
        uint256 rows = recs.length / (RECORD >> 5);
        uint256 maxReg = _loadRegistrations(c, g);
        uint256 count;
        for (uint256 i; i < rows; ++i) {
            if ((_field(recs, i, WMASK) >> g) & 1 != 0) ++count;
        }
        uint256[] memory words;
        if (count != 0) {
            uint16[] memory uids = new uint16[](count);
            count = 0;
            for (uint256 i; i < rows; ++i) {
                if ((_field(recs, i, WMASK) >> g) & 1 != 0) uids[count++] = uint16(_field(recs, i, UID));
            }
            words = _metagraph.epochWords(uids, g);
        }
        count = 0;
        uint256 seen;
        for (uint256 i; i < rows; ++i) {
            uint256 w;
            if ((_field(recs, i, WMASK) >> g) & 1 != 0) w = _masked(c, i, g, words[count++], maxReg);
            _setField(recs, i, W, w);
            seen |= (w | _loadBond(c, i, g, second, lanes)) & lanes;
        }
        live = seen != 0;
    }

    /// @dev Registration blocks of word `g`'s uids into `c.reg`, the lanes of uids registered
    /// after the last epoch (their old bonds count as zero) into `c.fresh`; returns the latest.
    function _loadRegistrations(Ctx memory c, uint256 g) private view returns (uint256 maxReg) {
        uint256 fresh;
        for (uint256 k; k < 4; ++k) {
            uint256 word = _regWords[4 * g + k];
            for (uint256 q; q < 4; ++q) {
                uint256 r = uint64(word >> (64 * q));
                c.reg[4 * k + q] = r;
                if (r > maxReg) maxReg = r;
                if (r > c.lastEpoch) fresh |= uint256(0xFFFF) << (64 * k + 16 * q);
            }
        }
        c.fresh = fresh;
    }

    /// @dev Weight word `g` of row `i` without the row's own lane and the lanes of uids
    /// registered at or after its last update (`maxReg`: the latest registration in `g`).
    function _masked(Ctx memory c, uint256 i, uint256 g, uint256 w, uint256 maxReg) private pure returns (uint256) {
        uint256 uid = _field(c.recs, i, UID);
        if (uid >> 4 == g) w &= ~(uint256(0xFFFF) << (16 * (uid & 15)));
        uint256 lu = _field(c.recs, i, LU);
        if (lu <= maxReg) {
            for (uint256 k; k < 16; ++k) {
                if (c.reg[k] >= lu) w &= ~(uint256(0xFFFF) << (16 * k));
            }
        }
        return w;
    }

    /// @dev Bond word `g` of row `i` into STORED, OLD (without `c.fresh`) and NEW (see
    /// `_loadGroup`); returns OLD.
    function _loadBond(Ctx memory c, uint256 i, uint256 g, bool second, uint256 lanes)
        private
        view
        returns (uint256 old)
    {
        uint256[] memory recs = c.recs;
        uint256 fresh = c.fresh;
        uint256 stored = (_field(recs, i, BMASK) >> g) & 1 != 0 ? _bonds[_field(recs, i, UID)][g] : 0;
        bool valid = _field(recs, i, VALID) != 0;
        old = valid ? stored & ~fresh : 0;
        _setField(recs, i, STORED, stored);
        _setField(recs, i, OLD, old);
        _setField(recs, i, NEW, (valid || second ? stored : 0) & ~lanes);
    }

    /// @dev Writes each row's bond word `g` when it changed and records whether it is non-zero.
    function _storeGroup(Ctx memory c, uint256 g) private {
        uint256[] memory recs = c.recs;
        uint256 rows = recs.length / (RECORD >> 5);
        for (uint256 i; i < rows; ++i) {
            uint256 word = _field(recs, i, NEW);
            if (word != _field(recs, i, STORED)) _bonds[_field(recs, i, UID)][g] = word;
            uint256 mask = _field(recs, i, BMASK);
            _setField(recs, i, BMASK, word != 0 ? mask | (1 << g) : mask & ~(1 << g));
        }
    }

    function _field(uint256[] memory recs, uint256 i, uint256 off) private pure returns (uint256 v) {
        // Callers pass i < rows and an offset inside a record.
        assembly ("memory-safe") {
            v := mload(add(add(add(recs, 0x20), mul(i, RECORD)), off))
        }
    }

    /// @dev Adds `v` to a field (for the NEW word: sets a lane that is still zero).
    function _addField(uint256[] memory recs, uint256 i, uint256 off, uint256 v) private pure {
        _setField(recs, i, off, _field(recs, i, off) + v);
    }

    function _setField(uint256[] memory recs, uint256 i, uint256 off, uint256 v) private pure {
        // Callers pass i < rows and an offset inside a record.
        assembly ("memory-safe") {
            mstore(add(add(add(recs, 0x20), mul(i, RECORD)), off), v)
        }
    }

    /// @dev Column `j` at lane `lane` of the loaded words, with the caller's consensus `cons`:
    /// checks `cons` is the column's stake-weighted median, returns its rank; adds to each
    /// row's trust and dividend sum and sets the new bond lane.
    function _column(Ctx memory c, bool liquid, uint256 j, uint256 lane, uint256 cons)
        private
        pure
        returns (uint256 rank)
    {
        bool scaleOnly = liquid && cons != 0;
        uint256 colSum;
        uint256 stakes;
        (rank, colSum, stakes) = _pass(c.recs, c.alpha, c.penalty, lane, cons, scaleOnly);
        _checkConsensus(c, j, cons, stakes);
        if (scaleOnly) (rank, colSum) = _bondsLiquid(c, lane, cons);
        rank /= ONE;
        if (colSum != 0 && rank != 0) _addDividends(c.recs, colSum, rank);
    }

    /// @dev `cons` is the stake-weighted median of a column whose participants hold raw stake
    /// `stakes >> 128` below it and `uint128(stakes)` at it: the smallest participant value `v`
    /// with `S(v) * 65535 > T * (65535 - kappa)`, else the largest (0 without participants).
    function _checkConsensus(Ctx memory c, uint256 j, uint256 cons, uint256 stakes) private pure {
        bool ok;
        if (c.total == 0) {
            ok = cons == 0;
        } else {
            uint256 below = stakes >> 128;
            uint256 equal = uint128(stakes);
            uint256 upTo = below + equal;
            ok = equal != 0 && below * U16_MAX <= c.target && (upTo * U16_MAX > c.target || upTo == c.total);
        }
        if (!ok) revert YumaConsensusWrongConsensus(j, cons);
    }

    /// @dev One pass over the rows of a column: the scaled weight `x * ONE / rowSum` of each
    /// row and the participants' raw stake below `cons` (high 128 bits of `stakes`) and at it
    /// (low 128 bits); then, unless `scaleOnly` (which leaves the scaled weight in Y for
    /// `_bondsLiquid`), clipping, trust, rank (unscaled) and the fixed-rate bond EMA, leaving
    /// each new bond in E and its u16 lane in NEW. Returns the rank, the new bonds' sum and the
    /// stakes.
    function _pass(
        uint256[] memory recs,
        uint256 alpha,
        uint256 penalty,
        uint256 lane,
        uint256 cons,
        bool scaleOnly
    ) private pure returns (uint256 rank, uint256 colSum, uint256 stakes) {
        // Records lie inside recs. Lanes cleared at load read 0, and a row whose sum is 0 has
        // only zero lanes (the EVM's x / 0 is 0); x * ONE < 2^76. y, cl, old, alpha <= ONE:
        // products < 2^120, and the new bond (1 - alpha) * old + alpha * t <= ONE needs no
        // clamp. Raw stakes sum below 2^104 (a 128-bit half each); trust <= ONE per row (a row
        // sums to at most ONE); rank <= ONE^2 (sum_i a_i <= ONE); colSum <= rows * ONE.
        // The rates wait in scratch space (the loop runs out of stack slots otherwise).
        assembly ("memory-safe") {
            mstore(0x00, sub(ONE, alpha))
            mstore(0x20, alpha)
            let p := add(recs, 0x20)
            let end := add(p, mul(div(mload(recs), 18), RECORD))
            for {} lt(p, end) { p := add(p, RECORD) } {
                let y := div(mul(and(shr(lane, mload(p)), 0xffff), ONE), mload(add(p, SUM)))
                let t := mload(add(p, RAW))
                stakes := add(stakes, or(shl(128, mul(t, lt(y, cons))), mul(t, eq(y, cons))))
                if scaleOnly {
                    mstore(add(p, Y), y)
                    continue
                }
                let old := div(mul(and(shr(lane, mload(add(p, OLD))), 0xffff), ONE), U16_MAX)
                // A zero weight with a zero old bond leaves everything at zero.
                t := 0
                if or(y, old) {
                    // t: the clipped weight cl = min(y, cons), then the EMA target
                    // y - (y - cl) * penalty / 65535 (cl at full penalty), then the new bond.
                    t := y
                    if lt(cons, y) { t := cons }
                    mstore(add(p, TRUST), add(mload(add(p, TRUST)), t))
                    rank := add(rank, mul(mload(add(p, A)), t))
                    if gt(y, t) { t := sub(y, div(mul(sub(y, t), penalty), U16_MAX)) }
                    t := add(div(mul(mload(0x00), old), ONE), div(mul(mload(0x20), t), ONE))
                    colSum := add(colSum, t)
                    mstore(add(p, NEW), or(mload(add(p, NEW)), shl(lane, div(add(mul(t, U16_MAX), HALF), ONE))))
                }
                mstore(add(p, E), t)
            }
        }
    }

    /// @dev The liquid-alpha EMA of a column whose scaled weights are in Y (the sigmoid
    /// dominates the cost): clipping, trust, rank (unscaled), new bonds in E and NEW. Returns
    /// the rank and the new bonds' sum.
    function _bondsLiquid(Ctx memory c, uint256 lane, uint256 cons)
        private
        pure
        returns (uint256 rank, uint256 colSum)
    {
        uint256 rows = c.recs.length / (RECORD >> 5);
        for (uint256 i; i < rows; ++i) {
            (uint256 r, uint256 e) = _liquidEntry(c, i, lane, cons);
            rank += r;
            colSum += e;
        }
    }

    /// @dev Row `i` of the column with liquid alpha: returns `a_i * cl` and the new bond.
    function _liquidEntry(Ctx memory c, uint256 i, uint256 lane, uint256 cons)
        private
        pure
        returns (uint256 rank, uint256 e)
    {
        uint256 y = _field(c.recs, i, Y);
        uint256 old = YumaMath.u16ToFraction((_field(c.recs, i, OLD) >> lane) & 0xFFFF);
        if (y != 0 || old != 0) {
            uint256 cl = y < cons ? y : cons;
            _addField(c.recs, i, TRUST, cl);
            rank = _field(c.recs, i, A) * cl;
            e = _emaLiquid(c, y, cl, old, cons);
            _addField(c.recs, i, NEW, _toU16(e) << lane);
        }
        _setField(c.recs, i, E, e);
    }

    /// @dev New bond of one entry with liquid alpha: EMA from `old` toward the penalised
    /// clipped weight.
    function _emaLiquid(Ctx memory c, uint256 y, uint256 cl, uint256 old, uint256 cons)
        private
        pure
        returns (uint256 e)
    {
        uint256 t = y - (y - cl) * c.penalty / U16_MAX;
        uint256 alpha = YumaMath.liquidAlpha(cons, t, old, c.low, c.high, c.steepness);
        e = (ONE - alpha) * old / ONE + alpha * t / ONE;
        if (e > ONE) e = ONE;
    }

    /// @dev Adds `floor(e_i * ONE / colSum) * rank` to every row's dividend sum.
    function _addDividends(uint256[] memory recs, uint256 colSum, uint256 rank) private pure {
        // Records lie inside recs. The scaled bond <= ONE and rank <= ONE, and a row's sum of
        // scaled bond x rank over the epoch stays <= ONE^2 (ranks sum to at most ONE).
        assembly ("memory-safe") {
            let p := add(recs, 0x20)
            let end := add(p, mul(div(mload(recs), 18), RECORD))
            for {} lt(p, end) { p := add(p, RECORD) } {
                let e := mload(add(p, E))
                if e {
                    let q := add(p, ACC)
                    mstore(q, add(mload(q), mul(div(mul(e, ONE), colSum), rank)))
                }
            }
        }
    }

    /// @dev The epoch's split, recomputed from the stored ranks and row sums.
    struct Split {
        uint256[] perUid;
        uint256[] incentive;
        uint256[] dividends;
        uint256[] trust;
        uint256 owner;
    }

    function _split(Epoch memory ep) private view returns (Split memory s) {
        uint256 n = ep.n;
        uint256 rows = ep.rows;
        s.incentive = new uint256[](n);
        for (uint256 j; j < n; ++j) {
            s.incentive[j] = uint64(_rankWords[j >> 2] >> (64 * (j & 3)));
        }
        // Ranks <= ONE: within normalize's precondition.
        s.incentive.normalize();
        uint256[] memory stake = new uint256[](rows);
        uint256[] memory active = new uint256[](rows);
        s.dividends = new uint256[](rows);
        s.trust = new uint256[](rows);
        uint256[] memory uids = new uint256[](rows);
        for (uint256 i; i < rows; ++i) {
            uint256 info = _rowInfo[i];
            stake[i] = uint96(info);
            if ((info >> R_ACTIVE) & 1 != 0) active[i] = uint96(info);
            uids[i] = uint16(info >> R_UID);
            uint256 acc = _rowAcc[i];
            s.trust[i] = uint64(acc);
            s.dividends[i] = acc >> 64;
        }
        stake.normalize();
        active.normalize();
        for (uint256 i; i < rows; ++i) {
            // a_i * acc_i <= ONE^3; the quotient <= ONE.
            s.dividends[i] = active[i] * s.dividends[i] / (ONE * ONE);
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
                s.perUid[uids[i]] += validators[i];
            }
        }
        s.owner = owner;
        // Reuse: the uid of each row, for the scores.
        s.trust = _withUids(s.trust, uids);
        s.dividends = _withUids(s.dividends, uids);
    }

    /// @dev Row values re-indexed by uid (256 entries, 0 where no row).
    function _withUids(uint256[] memory byRow, uint256[] memory uids) private pure returns (uint256[] memory byUid) {
        byUid = new uint256[](256);
        for (uint256 i; i < byRow.length; ++i) {
            byUid[uids[i]] = byRow[i];
        }
    }

    /// @dev Credit steps: the first records scores and credits the owner; each step adds 48
    /// uids' emission to what they earned and records it on the Metagraph.
    function _credit(Epoch memory ep, uint256 start, bool force) private returns (bool) {
        uint256 n = ep.n;
        // The split reads three words per row and one per four uids; the first step records up
        // to 64 score words, and a step writes 32 words (first writes when the lanes were zero).
        uint256 maxCost = 60_000 + (CREDIT_STEP / 3) * 2 * 22_200;
        uint256 scores = ep.cursor == 0 ? 4 * ((n + 15) >> 4) * 22_200 : 0;
        if (!_fits(start, maxCost + scores + 150_000 + uint256(ep.rows) * 7_000 + n * 1_500, force)) return false;
        Split memory s = _split(ep);
        if (ep.cursor == 0) {
            _recordScores(ep, s);
            _claimable[Ownable(address(_metagraph)).owner()] += s.owner;
        }
        while (ep.cursor < n) {
            if (!_fits(start, maxCost, force)) return false;
            force = false;
            uint256 t0 = gasleft();
            uint256 first = ep.cursor;
            uint256 end = n - first < CREDIT_STEP ? n : first + CREDIT_STEP;
            uint96[] memory amounts = new uint96[](end - first);
            for (uint256 w = first / 3; 3 * w < end; ++w) {
                uint256 word = _earned[w];
                uint256 before = word;
                for (uint256 uid = 3 * w; uid < 3 * w + 3 && uid < end; ++uid) {
                    if (uid < first) continue;
                    uint256 amount = s.perUid[uid];
                    // uint96 and u85 hold any amount: the supply cap 21M * 1e18 < 2^85.
                    amounts[uid - first] = uint96(amount);
                    uint256 shift = 85 * (uid % 3);
                    // What a uid earned and nobody claimed is part of the supply: < 2^85.
                    word += amount << shift;
                }
                if (word != before) _earned[w] = word;
            }
            _metagraph.recordEmission(uint16(first), amounts);
            ep.cursor = uint16(end);
            uint256 cost = t0 - gasleft();
            if (cost > maxCost) maxCost = cost;
        }
        _metagraph.setEpochRunning(false);
        _bondRows = _permits;
        ep.lastEpochBlock = ep.epochBlock;
        ep.phase = Phase.Idle;
        ep.cursor = 0;
        emit EpochCompleted(ep.epochBlock, uint256(_minted) + _fees);
        return true;
    }

    function _recordScores(Epoch memory ep, Split memory s) private {
        uint256[16] memory incentive;
        uint256[16] memory dividends;
        uint256[16] memory consensus;
        uint256[16] memory trust;
        for (uint256 j; j < ep.n; ++j) {
            uint256 shift = 16 * (j & 15);
            incentive[j >> 4] |= _toU16(s.incentive[j]) << shift;
            dividends[j >> 4] |= _toU16(s.dividends[j]) << shift;
            trust[j >> 4] |= _toU16(s.trust[j]) << shift;
        }
        for (uint256 w; w < 16; ++w) {
            consensus[w] = _consensusWords[w];
        }
        _metagraph.recordEpochScores(incentive, dividends, consensus, trust);
    }

    /// @dev ONE-scaled fraction in [0, ONE] to u16 (round half up), as bonds are stored.
    function _toU16(uint256 x) private pure returns (uint256) {
        return (x * U16_MAX + HALF) / ONE;
    }

    function _earnedOf(uint256 uid) private view returns (uint256) {
        return (_earned[uid / 3] >> (85 * (uid % 3))) & U85_MAX;
    }

    function _clearEarned(uint256 uid) private {
        _earned[uid / 3] &= ~(U85_MAX << (85 * (uid % 3)));
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
        bool registered = _metagraph.isRegistered(account);
        amount = _claimable[account];
        if (amount != 0) _claimable[account] = 0;
        if (registered) {
            uint256 uid = _metagraph.uidOf(account);
            uint256 earned = _earnedOf(uid);
            if (earned != 0) {
                _clearEarned(uid);
                amount += earned;
            }
        }
        if (amount == 0) revert YumaConsensusNothingToClaim(account);
        _reserved -= amount;
        address recipient = coldkey == address(0) ? account : coldkey;
        emit RewardsClaimed(account, recipient, amount, stake);
        if (stake) {
            if (!registered) revert YumaConsensusNotAHotkey(account);
            IERC20(address(_token)).forceApprove(address(_metagraph), amount);
            _metagraph.addStakeFor(recipient, account, amount);
        } else {
            IERC20(address(_token)).safeTransfer(recipient, amount);
        }
    }

    /// @inheritdoc IYumaConsensus
    function onUidReplaced(uint16 uid, address oldHotkey) external {
        if (msg.sender != address(_metagraph)) revert YumaConsensusNotMetagraph(msg.sender);
        uint256 earned = _earnedOf(uid);
        if (earned != 0) {
            _clearEarned(uid);
            _claimable[oldHotkey] += earned;
        }
    }

    // ================================================================== views

    /// @inheritdoc IYumaConsensus
    function claimable(address account) external view returns (uint256 amount) {
        amount = _claimable[account];
        if (_metagraph.isRegistered(account)) amount += _earnedOf(_metagraph.uidOf(account));
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
    function consensusInputs()
        external
        view
        returns (uint16 kappa, uint16[] memory uids, uint256[] memory rawActive, uint64[] memory lastUpdate)
    {
        Epoch memory ep = _epoch;
        if (ep.phase != Phase.Columns) revert YumaConsensusNotInColumns(ep.phase);
        kappa = _params.kappa;
        uids = new uint16[](ep.rows);
        rawActive = new uint256[](ep.rows);
        lastUpdate = new uint64[](ep.rows);
        for (uint256 i; i < ep.rows; ++i) {
            uint256 info = _rowInfo[i];
            uids[i] = uint16(info >> R_UID);
            if ((info >> R_ACTIVE) & 1 != 0) rawActive[i] = uint96(info);
            lastUpdate[i] = uint64(info >> R_LU);
        }
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
