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
/// this contract's outputs from a Metagraph snapshot and the logged bonds.
/// @dev Steps: `_start` (permits, hyperparameters, registration blocks, mint, fees); `_rows`
/// (16 validator rows per step: stake, last update, flags and the row sum the Metagraph keeps,
/// less the weights on uids registered since the row's last update); `_columns` (one packed
/// word of 16 uid columns per step, 1-2 columns with liquid alpha, four columns per word
/// operation (`_pass`): the caller's consensus checked against the column, clipped weights,
/// trust, ranks, bond EMA, the new bonds weighted by rank over bond sum into per-row dividend
/// sums; the old bond words come from the
/// caller, checked against a hash per word, and the new ones are logged and hashed; the
/// rows' running sums likewise, per call); `_credit` (the emission split, recomputed from
/// stored ranks and the row sums, 48 uids per step). A call runs steps while the gas it used (its calldata included) plus the next
/// step's estimate stays under `GAS_BUDGET`. Weight words known to be zero are never read.
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
    /// and storing the words: with the 1,500 a row `_stepBound` adds, 7,900 a row of 16 uids
    /// (measured at 64 rows: ~7,500 a row, the same whatever the values: the pass does not branch).
    uint256 private constant ENTRY_GAS = 400;

    /// @dev Row record bit layout (`_rowInfo[row]`).
    uint256 private constant R_LU = 96; // last weight update (u64)
    uint256 private constant R_SUM = 160; // row sum without self and outdated weights (u32)
    uint256 private constant R_UID = 192; // uid (u16)
    uint256 private constant R_WORDS = 208; // bit w: weight word w is non-zero (u16)
    uint256 private constant R_ACTIVE = 240; // active flag
    uint256 private constant R_BONDS = 241; // old bonds count: a row last epoch, registered by then

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
    /// @dev keccak256 of the running epoch's row sums as the last column call left them (one
    /// word per row: trust, low 64 bits | rank-weighted bond sum, high 192 bits), logged in
    /// `RowSums`; later calls take them back as calldata instead of storage.
    bytes32 private _rowSumsHash;
    /// @dev Registration blocks, 4 u64 per word.
    uint256[64] private _regWords;
    /// @dev Ranks (< 2^62), 4 u64 per word.
    uint256[64] private _rankWords;
    /// @dev Consensus as u16 (round half up), 16 per word.
    uint256[16] private _consensusWords;
    /// @dev Per packed word of 16 uid columns: keccak256 of the bond words the last epoch
    /// wrote, one per row of that epoch (`_bondRows`, ascending uid), 0 when all were zero.
    bytes32[16] private _bondHash;
    /// @dev What each uid earned and nobody claimed yet, u85 lanes, 3 uids per word.
    uint256[86] private _earned;
    /// @dev Per row: the NEW bond word of a group a call left unfinished (liquid alpha).
    uint256[256] private _partial;

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
    function runEpoch(bytes calldata consensus, bytes calldata bonds, bytes calldata rowSums)
        external
        returns (Phase, uint256)
    {
        // The calldata's cost (at most 16 gas a byte) counts as used: the budget bounds the
        // whole transaction.
        uint256 start = gasleft() + 16 * msg.data.length;
        Epoch memory ep = _epoch;
        bool progressed;
        if (ep.phase == Phase.Idle) {
            uint64 next = _nextEpochBlock(ep);
            if (block.number < next) revert YumaConsensusTooEarly(next);
            _start(ep);
            progressed = true;
        }
        _advance(ep, start, !progressed, _inputs(consensus, bonds), rowSums);
        _epoch = ep;
        emit EpochProgress(ep.phase, ep.cursor);
        return (ep.phase, ep.cursor);
    }

    /// @dev Runs the phases' steps while the budget allows (`force`: the call's first step runs
    /// whatever its estimate); a phase returns false when it stopped for lack of gas or input.
    /// The row sums the column phase leaves stay in memory for the credit phase of the same call.
    function _advance(Epoch memory ep, uint256 start, bool force, Inputs memory inputs, bytes calldata rowSums)
        private
    {
        uint256[] memory sums;
        bool known;
        while (ep.phase != Phase.Idle) {
            bool finished;
            if (ep.phase == Phase.Rows) {
                finished = _rows(ep, start, force);
            } else {
                // The column phase's first call starts the sums; every later call needs them.
                if (!known && (ep.phase == Phase.Credit || ep.cursor != 0)) {
                    (known, sums) = _readSums(rowSums, ep.rows);
                    if (!known) {
                        if (force) revert YumaConsensusNeedsRowSums();
                        break;
                    }
                }
                if (ep.phase == Phase.Columns) {
                    (finished, sums) = _columns(ep, start, force, inputs, sums);
                    known = true;
                } else {
                    finished = _credit(ep, start, force, sums);
                }
            }
            if (!finished) break;
            force = false;
        }
    }

    /// @dev The row sums the caller passed (32 bytes per row), checked against `_rowSumsHash`;
    /// false when it passed none.
    function _readSums(bytes calldata data, uint256 rows) private view returns (bool, uint256[] memory sums) {
        if (data.length == 0 && rows != 0) return (false, sums);
        if (data.length != 32 * rows) revert YumaConsensusWrongRowSums();
        sums = new uint256[](rows);
        bytes32 h;
        // sums holds exactly data.length bytes.
        assembly ("memory-safe") {
            calldatacopy(add(sums, 0x20), data.offset, data.length)
            h := keccak256(add(sums, 0x20), data.length)
        }
        if (h != _rowSumsHash) revert YumaConsensusWrongRowSums();
        return (true, sums);
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

    /// @dev Where the call's consensus vector and old bond words lie in calldata.
    struct Inputs {
        uint256 consensusLength;
        uint256 consensus;
        uint256 bondsLength;
        uint256 bonds;
    }

    function _inputs(bytes calldata consensus, bytes calldata bonds) private pure returns (Inputs memory) {
        return Inputs(consensus.length, _offset(consensus), bonds.length, _offset(bonds));
    }

    /// @dev What the column steps of one call share.
    struct Ctx {
        uint256[] recs; // one record of RECORD bytes per row
        uint256 lanes; // memory: the group area (LG_*, four quads of QW bytes)
        uint256[] words; // the finished group's new bond words, contiguous (hashed and logged)
        uint256[16] reg; // registration blocks of the step's word of uids
        uint256 hint; // calldata offset of the consensus vector (u64 per uid, big-endian)
        uint256 total; // Q: the median participants' stake weight
        uint256 target; // median target: Q * (65535 - kappa)
        uint256 rate; // fixed EMA rate A (16 fractional bits)
        uint256 penalty; // bonds penalty factor P (16 fractional bits)
        uint256 low; // liquid alpha bounds
        uint256 high;
        uint256 steepness;
        uint256 reserve; // gas of the call's final writes
        uint256 width; // uid columns per step (`_width`)
        uint256 entry; // gas bound of one row's entries in a step
        bool liquid; // liquid alpha
        uint256 lastEpoch; // the previous epoch's block
        uint256 epochBlock; // this epoch's block (tags the logged bond words)
        uint256 fresh; // lanes of the step's word whose uid registered after the last epoch
        uint256 bonds; // calldata offset of group `group`'s old bond words
        uint256 bondsEnd; // end of the call's bond words
        uint256 group; // the group `bonds` and `hash` belong to
        bytes32 hash; // that group's old bond hash (0: every old word is zero, none passed)
        uint256 prevRows; // rows of the epoch that wrote the old words: words per group
        bool verified; // the group's words were checked against `hash` in this call
        bool resumes; // the call starts inside a group: its NEW words so far are in `_partial`
    }

    /// @dev Column-pass record of one row in memory (assembly reads the fields by offset).
    uint256 private constant W = 0x00; // weight word of the step's group (masked, step lanes)
    uint256 private constant OLD = 0x20; // old bond word (0 when stale; fresh and other lanes cleared)
    uint256 private constant NEW = 0x40; // new bond word being built
    uint256 private constant M = 0x60; // row scale m_i
    uint256 private constant Q = 0x80; // stake weight q_i (0: not a median participant)
    uint256 private constant LIQ = 0xa0; // liquid alpha: the step's new bonds in lanes LG_LIQUID
    uint256 private constant TRUST = 0xc0; // sum of clipped weights
    uint256 private constant ACC = 0xe0; // sum_j n_ij * g_j
    uint256 private constant UID = 0x100;
    uint256 private constant LU = 0x120; // last update
    uint256 private constant WMASK = 0x140; // bit w: weight word w is non-zero
    uint256 private constant PREV = 0x160; // 1 + the row's index among the old words' rows (0: none)
    uint256 private constant RECORD = 0x180; // record size in bytes

    /// @dev The step's group area (`Ctx.lanes`). The pass runs on four uid columns at once: a
    /// "quad" word holds lanes k, k + 4, k + 8, k + 12 of the packed word in 64-bit slots (bits
    /// 64m .. 64m + 63 hold lane 4m + k), so `(word >> 16k) & QUAD_U16` takes quad k out of a
    /// packed word. `chain/yuma/fixed.py` ("Lane bounds") keeps every slot below 2^64.
    uint256 private constant LG_END = 0x00; // end of the records
    uint256 private constant LG_ZERO = 0x20; // stake weight of rows whose weight and old bond words are 0
    uint256 private constant LG_LIQUID = 0x40; // u16 lanes whose new bonds come from `LIQ`
    uint256 private constant LG_G = 0x60; // 6 words: dividend factors (see `_dividends`)
    uint256 private constant LG_QUAD = 0x120; // quad k's four words at LG_QUAD + k * QW:
    uint256 private constant Q_CONS = 0x00; //   consensus
    uint256 private constant Q_STAKES = 0x20; // stake weight below (low 32 bits) and at or below (high)
    uint256 private constant Q_RANK = 0x40; //   sum_i q_i * cl_ij
    uint256 private constant Q_BONDS = 0x60; //  sum_i n_ij (u16 new bonds)
    uint256 private constant QW = 0x80;
    uint256 private constant LG_SIZE = 0x320;
    uint256 private constant QUAD_U16 = 0x000000000000ffff000000000000ffff000000000000ffff000000000000ffff;
    uint256 private constant QUAD_U32 = 0x00000000ffffffff00000000ffffffff00000000ffffffff00000000ffffffff;
    uint256 private constant QUAD_U33 = 0x00000001ffffffff00000001ffffffff00000001ffffffff00000001ffffffff;
    uint256 private constant QUAD_ONES = 0x0000000000000001000000000000000100000000000000010000000000000001;
    uint256 private constant QUAD_TOP = 0x8000000000000000800000000000000080000000000000008000000000000000;
    uint256 private constant QUAD_HALF = 0x0000000000008000000000000000800000000000000080000000000000008000;
    /// @dev Lanes k, k + 5, k + 10 of a packed word at bits 0, 80, 160 (`_dividends`).
    uint256 private constant TRIO_U16 = 0xffff0000000000000000ffff0000000000000000ffff;
    uint256 private constant U80 = (1 << 80) - 1;
    uint256 private constant WONE = YumaMath.WONE;

    /// @dev Fills the records from `_rowInfo` and the row sums (none: zero, at the column
    /// phase's first step); returns the stake weights' total.
    function _loadRows(uint256[] memory recs, uint256[] memory sums) private view returns (uint256 total) {
        uint256[] memory q = YumaMath.stakeWeights(_rawActive(recs.length / (RECORD >> 5)));
        for (uint256 i; i < q.length; ++i) {
            uint256 info = _rowInfo[i];
            uint256 rowSum = uint32(info >> R_SUM);
            // Row sums < 2^24: m < 2^63 / rowSum, so x * m < 2^63 for every x <= rowSum.
            uint256 m = rowSum == 0 ? 0 : (WONE << 31) / rowSum;
            uint256 weight = q[i];
            total += weight;
            uint256 acc = sums.length == 0 ? 0 : sums[i];
            // Record i lies inside recs (one record of RECORD bytes per row).
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

    /// @dev Raw stake of each of the first `rows` rows when active, else 0.
    function _rawActive(uint256 rows) private view returns (uint256[] memory raw) {
        raw = new uint256[](rows);
        for (uint256 i; i < rows; ++i) {
            uint256 info = _rowInfo[i];
            if ((info >> R_ACTIVE) & 1 != 0) raw[i] = uint96(info);
        }
    }

    function _ctx(Epoch memory ep, Inputs memory inputs, uint256[] memory sums) private view returns (Ctx memory c) {
        YumaEpoch.Params memory p = _params;
        uint256 rows = ep.rows;
        uint256[] memory recs = new uint256[](rows * (RECORD >> 5));
        uint256 total = _loadRows(recs, sums);
        uint256 lanes;
        // The group area past the free memory pointer.
        assembly ("memory-safe") {
            lanes := mload(0x40)
            mstore(0x40, add(lanes, LG_SIZE))
            mstore(add(lanes, LG_END), add(add(recs, 0x20), mul(rows, RECORD)))
        }
        c.recs = recs;
        c.lanes = lanes;
        c.words = new uint256[](rows);
        c.hint = _hint(ep, inputs);
        c.total = total;
        c.target = total * (U16_MAX - p.kappa);
        c.rate = ((BMA_SCALE - p.bondsMovingAverage) << 16) / BMA_SCALE;
        c.penalty = uint256(p.bondsPenalty) + (p.bondsPenalty >> 15);
        c.low = YumaMath.u16ToFraction(p.alphaLow);
        c.high = YumaMath.u16ToFraction(p.alphaHigh);
        c.steepness = p.alphaSigmoidSteepness;
        // The final writes: the row sums' hash and log; a call that stops inside a group
        // (liquid alpha) saves its NEW words.
        c.reserve = 60_000 + rows * 1_000 + (p.liquidAlpha ? rows * 22_200 : 0);
        c.width = _width(p.liquidAlpha, rows);
        c.entry = _entryGas(rows);
        c.liquid = p.liquidAlpha;
        c.lastEpoch = ep.lastEpochBlock;
        c.epochBlock = ep.epochBlock;
        c.bonds = inputs.bonds;
        c.bondsEnd = inputs.bonds + inputs.bondsLength;
        c.group = ep.cursor >> 4;
        if (c.group < 16) c.hash = _bondHash[c.group];
        c.prevRows = _oldRows(recs, rows);
        c.resumes = ep.cursor & 15 != 0;
    }

    /// @dev Turns each record's PREV flag (its uid's old bonds are current) into 1 + its index
    /// among the last epoch's rows (`_bondRows`, ascending uid); returns how many those were.
    function _oldRows(uint256[] memory recs, uint256 rows) private view returns (uint256 count) {
        uint256 bits = _bondRows;
        for (uint256 i; i < rows; ++i) {
            uint256 uid = _field(recs, i, UID);
            // Old rows below uid: rows ascend by uid, so the bits counted are gone from `bits`.
            for (uint256 below = bits & ((1 << uid) - 1); below != 0; below &= below - 1) {
                ++count;
            }
            bits &= ~((1 << uid) - 1);
            if (_field(recs, i, PREV) != 0) _setField(recs, i, PREV, count + 1);
        }
        for (; bits != 0; bits &= bits - 1) {
            ++count;
        }
    }

    /// @dev Uid columns per step: a whole word of 16 at the fixed rate; with liquid alpha (its
    /// sigmoid costs ~16k gas an entry) the widest that keeps a step under the budget at 64 rows.
    function _width(bool liquid, uint256 rows) private pure returns (uint256) {
        if (!liquid) return 16;
        return rows > 32 ? 1 : 2;
    }

    /// @dev Calldata offset of the consensus vector, 0 when the call brought none (a real
    /// offset is past the selector); reverts unless it holds 8 bytes per uid.
    function _hint(Epoch memory ep, Inputs memory inputs) private pure returns (uint256) {
        if (inputs.consensusLength == 0) return 0;
        if (inputs.consensusLength != 8 * uint256(ep.n)) {
            revert YumaConsensusBadConsensusLength(8 * uint256(ep.n), inputs.consensusLength);
        }
        return inputs.consensus;
    }

    /// @dev Column steps from uid column `ep.cursor`: `_width` columns of one packed word each.
    /// They need the consensus vector (`hint`, see `_hint`) and the old bond words of the
    /// groups they reach (`bonds`): without them the call stops. Starts from the row sums
    /// `sums` (none at the phase's first step), returns the ones it leaves.
    function _columns(Epoch memory ep, uint256 start, bool force, Inputs memory inputs, uint256[] memory sums)
        private
        returns (bool, uint256[] memory)
    {
        if (ep.cursor < ep.n && _hint(ep, inputs) == 0) {
            if (force) revert YumaConsensusNeedsConsensus();
            return (false, sums);
        }
        // The context reads a word per row, the final writes cost up to 23k a row with liquid
        // alpha's saved words; a step at most what `_stepBound` allows.
        if (!_fits(start, 120_000 + uint256(ep.rows) * (30_000 + _entryGas(ep.rows)), force)) return (false, sums);
        Ctx memory c = _ctx(ep, inputs, sums);
        while (ep.cursor < ep.n) {
            uint256 g = ep.cursor >> 4;
            uint256 c0 = ep.cursor & 15;
            uint256 c1 = _stepEnd(ep.n, g, c0, c.width);
            if (!_fits(start, _stepBound(c, g) + c.reserve, force)) break;
            if (!_groupBonds(c, g)) {
                if (force) revert YumaConsensusNeedsBonds(g);
                break;
            }
            force = false;
            _step(c, g, c0, c1, c1 == 16 || 16 * g + c1 == ep.n);
            ep.cursor = uint16(16 * g + c1);
        }
        sums = _saveRows(c, ep);
        if (ep.cursor < ep.n) return (false, sums);
        ep.phase = Phase.Credit;
        ep.cursor = 0;
        return (true, sums);
    }

    /// @dev End (exclusive) of the step from lane `c0` of word `g`: `width` lanes, at most to
    /// the word's last uid.
    function _stepEnd(uint256 n, uint256 g, uint256 c0, uint256 width) private pure returns (uint256) {
        uint256 last = n - 16 * g < 16 ? n - 16 * g : 16;
        return c0 + width < last ? c0 + width : last;
    }

    /// @dev Gas bound of one row's entries in a step.
    function _entryGas(uint256 rows) private view returns (uint256) {
        bool liquid = _params.liquidAlpha;
        return _width(liquid, rows) * (liquid ? 16_000 : ENTRY_GAS);
    }

    function _offset(bytes calldata data) private pure returns (uint256 off) {
        assembly {
            off := data.offset
        }
    }

    /// @dev Points `c.bonds` at group `g`'s old bond words (groups come in order: each takes
    /// `prevRows` words when its old hash is non-zero, none otherwise) and checks them against
    /// the hash once per call. False when the call did not bring them.
    function _groupBonds(Ctx memory c, uint256 g) private view returns (bool) {
        uint256 size = 32 * c.prevRows;
        while (c.group < g) {
            if (c.hash != 0) c.bonds += size;
            c.group += 1;
            c.hash = _bondHash[c.group];
            c.verified = false;
        }
        if (c.hash == 0 || c.verified) return true;
        if (c.bonds + size > c.bondsEnd) return false;
        uint256 off = c.bonds;
        bytes32 got;
        // Hashes the words in free memory without allocating.
        assembly ("memory-safe") {
            let m := mload(0x40)
            calldatacopy(m, off, size)
            got := keccak256(m, size)
        }
        if (got != c.hash) revert YumaConsensusWrongBonds(g);
        c.verified = true;
        return true;
    }

    /// @dev Gas bound of a step in word `g`: per row its weight read (when non-zero), its share
    /// of loading and finishing the group and `entry` for its entries.
    function _stepBound(Ctx memory c, uint256 g) private pure returns (uint256 bound) {
        uint256[] memory recs = c.recs;
        uint256 rows = recs.length / (RECORD >> 5);
        bound = 80_000 + rows * (c.entry + 1_500);
        for (uint256 i; i < rows; ++i) {
            if ((_field(recs, i, WMASK) >> g) & 1 != 0) bound += 2_400;
        }
    }

    /// @dev Each row's trust and dividend sum: hashed, logged and returned; and the NEW words
    /// of a group the call leaves unfinished (liquid alpha) into `_partial`.
    function _saveRows(Ctx memory c, Epoch memory ep) private returns (uint256[] memory sums) {
        uint256[] memory recs = c.recs;
        bool inside = ep.cursor & 15 != 0 && ep.cursor < ep.n;
        sums = new uint256[](ep.rows);
        for (uint256 i; i < sums.length; ++i) {
            uint256 word;
            // Record i lies inside recs; trust <= WONE < 2^64, the dividend sum < 2^86.
            assembly ("memory-safe") {
                let r := add(add(recs, 0x20), mul(i, RECORD))
                word := or(mload(add(r, TRUST)), shl(64, mload(add(r, ACC))))
            }
            sums[i] = word;
            if (inside) {
                word = _field(recs, i, NEW);
                if (_partial[i] != word) _partial[i] = word;
            }
        }
        _rowSumsHash = keccak256(abi.encodePacked(sums));
        emit RowSums(ep.epochBlock, ep.cursor, sums);
    }

    /// @dev Columns `16g + c0 .. 16g + c1 - 1`: loads the group, runs the pass, checks the
    /// consensus, records consensus and rank lanes, adds the dividend sums and, at the group's
    /// last column, commits its new bond words.
    function _step(Ctx memory c, uint256 g, uint256 c0, uint256 c1, bool finish) private {
        uint256 lanes = c.lanes;
        uint256 liquid;
        uint256[4] memory cons;
        for (uint256 col = c0; col < c1; ++col) {
            uint256 v = _hintOf(c, 16 * g + col);
            // Lane bounds: a consensus above WONE is no participant's weight.
            if (v > WONE) revert YumaConsensusWrongConsensus(16 * g + col, v);
            cons[col & 3] |= v << (64 * (col >> 2));
            if (c.liquid && v != 0) liquid |= uint256(0xFFFF) << (16 * col);
        }
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
        _loadGroup(c, g, c0, _lanes(c0, c1));
        if (liquid != 0) _liquidBonds(c, liquid);
        _pass(c.recs, lanes, c.rate, c.penalty);
        _finishColumns(c, g, c0, c1);
        _dividends(c.recs, lanes, _lanes(c0, c1));
        if (finish) _finishGroup(c, g);
    }

    /// @dev Bits of u16 lanes `c0 .. c1 - 1` (c0 < c1 <= 16).
    function _lanes(uint256 c0, uint256 c1) private pure returns (uint256) {
        return (type(uint256).max >> (256 - 16 * (c1 - c0))) << (16 * c0);
    }

    /// @dev The consensus the caller gives for uid `j` (u64 at byte `8j` of the vector).
    function _hintOf(Ctx memory c, uint256 j) private pure returns (uint256 cons) {
        uint256 off = c.hint + 8 * j;
        // The vector's length is 8n (checked in `_hint`) and j < n.
        assembly {
            cons := shr(192, calldataload(off))
        }
    }

    /// @dev Loads the step's lanes `step` of weight word `g` (rows whose word is non-zero; the
    /// row's own lane and lanes of uids registered at or after its last update cleared) and of
    /// the old bond word `g` (rows with current old bonds, fresh lanes cleared) into the
    /// records, the group's registration blocks into `c.reg`; NEW starts at 0 at the group's
    /// first column (else it keeps the lanes done, from `_partial` at a call's first step).
    function _loadGroup(Ctx memory c, uint256 g, uint256 c0, uint256 step) private view {
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
        uint256 src = c.hash != 0 ? c.bonds : 0;
        uint256 keep = ~c.fresh & step;
        bool resumes = c.resumes;
        for (uint256 i; i < rows; ++i) {
            uint256 w;
            if ((_field(recs, i, WMASK) >> g) & 1 != 0) w = _masked(c, i, g, words[count++] & step, maxReg);
            _setField(recs, i, W, w);
            uint256 prev = _field(recs, i, PREV);
            uint256 old;
            if (src != 0 && prev != 0) {
                uint256 at = src + 32 * (prev - 1);
                // at + 32 <= c.bondsEnd: `_groupBonds` checked the group's words are there.
                assembly {
                    old := and(calldataload(at), keep)
                }
            }
            _setField(recs, i, OLD, old);
            if (c0 == 0) _setField(recs, i, NEW, 0);
            else if (resumes) _setField(recs, i, NEW, _partial[i]);
        }
        c.resumes = false;
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

    function _field(uint256[] memory recs, uint256 i, uint256 off) private pure returns (uint256 v) {
        // Callers pass i < rows and an offset inside a record.
        assembly ("memory-safe") {
            v := mload(add(add(add(recs, 0x20), mul(i, RECORD)), off))
        }
    }

    function _setField(uint256[] memory recs, uint256 i, uint256 off, uint256 v) private pure {
        // Callers pass i < rows and an offset inside a record.
        assembly ("memory-safe") {
            mstore(add(add(add(recs, 0x20), mul(i, RECORD)), off), v)
        }
    }

    /// @dev Liquid alpha: every row's new bonds in the lanes `liquid` (the step's lanes with
    /// non-zero consensus) into its LIQ word, one entry at a time (the sigmoid dominates).
    function _liquidBonds(Ctx memory c, uint256 liquid) private pure {
        uint256[] memory recs = c.recs;
        uint256 rows = recs.length / (RECORD >> 5);
        for (uint256 i; i < rows; ++i) {
            uint256 word;
            for (uint256 col; col < 16; ++col) {
                if ((liquid >> (16 * col)) & 1 != 0) word |= _liquidBond(c, i, col) << (16 * col);
            }
            _setField(recs, i, LIQ, word);
        }
    }

    /// @dev Row `i`'s new bond (u16) in lane `col` at its liquid-alpha rate.
    function _liquidBond(Ctx memory c, uint256 i, uint256 col) private pure returns (uint256) {
        uint256 cons;
        uint256 q = c.lanes + LG_QUAD + (col & 3) * QW;
        // Quad col & 3 lies inside the group area.
        assembly ("memory-safe") {
            cons := and(shr(mul(64, shr(2, col)), mload(add(q, Q_CONS))), 0xffffffffffffffff)
        }
        uint256 t = _target(c, i, col, cons);
        uint256 old = (_field(c.recs, i, OLD) >> (16 * col)) & 0xFFFF;
        uint256 rate = YumaMath.liquidRate(cons, t, old, c.low, c.high, c.steepness);
        return ((((old << 16) * (65_536 - rate) + t * rate) >> 16) + (1 << 15)) >> 16;
    }

    /// @dev Row `i`'s penalised target in lane `col`, from its scaled weight and the consensus.
    function _target(Ctx memory c, uint256 i, uint256 col, uint256 cons) private pure returns (uint256) {
        uint256 y = (((_field(c.recs, i, W) >> (16 * col)) & 0xFFFF) * _field(c.recs, i, M)) >> 31;
        uint256 cl = y < cons ? y : cons;
        return y - (((y - cl) * c.penalty) >> 16);
    }

    /// @dev The pass over every row, four uid columns at a time (quads, see LG_QUAD): the scaled
    /// weight `y = x * m >> 31`; the participants' stake weight below the lane's consensus and
    /// at or below it (rows whose weight and old bond words are both zero count in LG_ZERO
    /// instead); the clipped weight `cl = min(y, cons)` into the row's trust and (times `q_i`)
    /// the lane's rank; the penalised target `t = y - ((y - cl) * P >> 16)`; the new bond
    /// `((old << 16) * (65536 - A) + t * A) >> 16`, rounded to u16 (liquid lanes: from LIQ)
    /// into the row's NEW word and the lane's bond sum.
    function _pass(uint256[] memory recs, uint256 lanes, uint256 rate, uint256 penalty) private pure {
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

    /// @dev Checks each lane's consensus, records consensus (u16) and rank lanes, and sets the
    /// dividend factors `g_j = R_j / sum_i n_ij` (`_dividends`).
    function _finishColumns(Ctx memory c, uint256 g, uint256 c0, uint256 c1) private {
        uint256 lanes = c.lanes;
        uint256 consensus = _consensusWords[g] & ~_lanes(c0, c1);
        uint256[4] memory ranks;
        for (uint256 k; k < 4; ++k) {
            ranks[k] = _rankWords[4 * g + k];
        }
        uint256 zero;
        uint256[6] memory factors;
        assembly ("memory-safe") {
            zero := mload(add(lanes, LG_ZERO))
        }
        for (uint256 col = c0; col < c1; ++col) {
            (uint256 cons, uint256 rank, uint256 bonds) = _checkedLane(c, g, col, zero);
            consensus |= ((cons + (1 << 15)) >> 16) << (16 * col);
            uint256 shift = 64 * (col & 3);
            // rank < 2^62 fits its u64 lane.
            ranks[col >> 2] = (ranks[col >> 2] & ~(uint256(type(uint64).max) << shift)) | (rank << shift);
            // Lanes 5t + r go to factor word r at bits 80 * (2 - t) (lane 15: word 5 alone).
            if (bonds != 0) {
                if (col == 15) factors[5] = rank / bonds;
                else factors[col % 5] |= (rank / bonds) << (80 * (2 - col / 5));
            }
        }
        for (uint256 k; k < 6; ++k) {
            uint256 f = factors[k];
            assembly ("memory-safe") {
                mstore(add(add(lanes, LG_G), mul(k, 0x20)), f)
            }
        }
        if (_consensusWords[g] != consensus) _consensusWords[g] = consensus;
        for (uint256 k; k < 4; ++k) {
            if (_rankWords[4 * g + k] != ranks[k]) _rankWords[4 * g + k] = ranks[k];
        }
    }

    /// @dev Lane `col` of word `g`: its consensus, rank and bond sum, once the consensus is
    /// checked (`zero`: the stake weight of the rows the pass skipped).
    function _checkedLane(Ctx memory c, uint256 g, uint256 col, uint256 zero)
        private
        pure
        returns (uint256 cons, uint256 rank, uint256 bonds)
    {
        uint256 q = c.lanes + LG_QUAD + (col & 3) * QW;
        uint256 shift = 64 * (col >> 2);
        uint256 stakes;
        // Quad col & 3 lies inside the group area.
        assembly ("memory-safe") {
            cons := and(shr(shift, mload(add(q, Q_CONS))), 0xffffffffffffffff)
            stakes := and(shr(shift, mload(add(q, Q_STAKES))), 0xffffffffffffffff)
            rank := and(shr(shift, mload(add(q, Q_RANK))), 0xffffffffffffffff)
            bonds := and(shr(shift, mload(add(q, Q_BONDS))), 0xffffffffffffffff)
        }
        // The skipped rows' scaled weights are 0: at a zero consensus, below it otherwise.
        _checkConsensus(c, 16 * g + col, cons, uint32(stakes) + (cons == 0 ? 0 : zero), (stakes >> 32) + zero);
    }

    /// @dev `cons` is the stake-weighted median of a column whose participants hold stake
    /// weight `below` under it and `upTo` at or under it: the smallest participant value `v`
    /// with `S(v) * 65535 > Q * (65535 - kappa)`, else the largest (0 without participants).
    function _checkConsensus(Ctx memory c, uint256 j, uint256 cons, uint256 below, uint256 upTo) private pure {
        bool ok;
        if (c.total == 0) {
            ok = cons == 0;
        } else {
            ok = upTo > below && below * U16_MAX <= c.target && (upTo * U16_MAX > c.target || upTo == c.total);
        }
        if (!ok) revert YumaConsensusWrongConsensus(j, cons);
    }

    /// @dev Adds `sum_j n_ij * g_j` over the step's lanes `step` to every row's dividend sum:
    /// three lanes per multiplication. Factor word r holds g of lanes r + 10, r + 5, r at bits
    /// 0, 80, 160, so bits 160.. of `((new >> 16r) & TRIO_U16) * word` hold the three products'
    /// sum (each partial sum < 3 * 2^16 * 2^62 < 2^80: no carry between them).
    function _dividends(uint256[] memory recs, uint256 lanes, uint256 step) private pure {
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

    /// @dev Commits group `g`'s new bond words: their hash (0 when all are zero) and a log of
    /// them for the next epoch's caller.
    function _finishGroup(Ctx memory c, uint256 g) private {
        uint256[] memory recs = c.recs;
        uint256[] memory words = c.words;
        bool any;
        for (uint256 i; i < words.length; ++i) {
            uint256 word = _field(recs, i, NEW);
            words[i] = word;
            if (word != 0) any = true;
        }
        bytes32 h = any ? keccak256(abi.encodePacked(words)) : bytes32(0);
        if (h != c.hash) _bondHash[g] = h;
        if (any) emit BondWords(uint64(c.epochBlock), g, words);
    }

    /// @dev The epoch's split, recomputed from the stored ranks and row sums.
    struct Split {
        uint256[] perUid;
        uint256[] incentive;
        uint256[] dividends;
        uint256[] trust;
        uint256 owner;
    }

    function _split(Epoch memory ep, uint256[] memory sums) private view returns (Split memory s) {
        uint256 n = ep.n;
        uint256 rows = ep.rows;
        s.incentive = new uint256[](n);
        for (uint256 j; j < n; ++j) {
            s.incentive[j] = uint64(_rankWords[j >> 2] >> (64 * (j & 3)));
        }
        // Ranks < 2^62: within normalize's precondition.
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
            uint256 acc = sums[i];
            s.trust[i] = uint64(acc);
            s.dividends[i] = acc >> 64;
        }
        uint256[] memory q = YumaMath.stakeWeights(active);
        for (uint256 i; i < rows; ++i) {
            // q_i <= 2^30 and the sum < 2^86: D_i < 2^116, within normalize's precondition.
            s.dividends[i] *= q[i];
        }
        stake.normalize();
        active.normalize();
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
    function _credit(Epoch memory ep, uint256 start, bool force, uint256[] memory sums) private returns (bool) {
        uint256 n = ep.n;
        // The split reads three words per row and one per four uids; the first step records up
        // to 64 score words, and a step writes 32 words (first writes when the lanes were zero).
        uint256 maxCost = 60_000 + (CREDIT_STEP / 3) * 2 * 22_200;
        uint256 scores = ep.cursor == 0 ? 4 * ((n + 15) >> 4) * 22_200 : 0;
        if (!_fits(start, maxCost + scores + 150_000 + uint256(ep.rows) * 7_000 + n * 1_500, force)) return false;
        Split memory s = _split(ep, sums);
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
            trust[j >> 4] |= ((s.trust[j] + (1 << 15)) >> 16) << shift;
        }
        for (uint256 w; w < 16; ++w) {
            consensus[w] = _consensusWords[w];
        }
        _metagraph.recordEpochScores(incentive, dividends, consensus, trust);
    }

    /// @dev ONE-scaled share in [0, ONE] to u16 (round half up).
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
        // The subnet owner's share is paid to the owner itself, never to whoever registered its
        // address as a hotkey.
        address coldkey =
            account == Ownable(address(_metagraph)).owner() ? address(0) : _metagraph.hotkeyOwner(account);
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
        rawActive = _rawActive(ep.rows);
        lastUpdate = new uint64[](ep.rows);
        for (uint256 i; i < ep.rows; ++i) {
            uint256 info = _rowInfo[i];
            uids[i] = uint16(info >> R_UID);
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
    function bondHashes() external view returns (bytes32[16] memory) {
        return _bondHash;
    }

    /// @inheritdoc IYumaConsensus
    function rowSumsHash() external view returns (bytes32) {
        return _rowSumsHash;
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
}
