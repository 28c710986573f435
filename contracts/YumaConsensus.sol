// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {IMetagraph} from "./interfaces/IMetagraph.sol";
import {IYumaConsensus} from "./interfaces/IYumaConsensus.sol";
import {YumaLanes} from "./libraries/YumaLanes.sol";
import {YumaMath} from "./libraries/YumaMath.sol";
import {YumaLoggedCalldata} from "./YumaLoggedCalldata.sol";
import {YumaRewards} from "./YumaRewards.sol";

/// @title YumaConsensus
/// @notice The on-chain Yuma Consensus epoch in gas-bounded steps (see `IYumaConsensus`). The
/// integer algorithm and every rounding are `chain/yuma/fixed.py`'s; `chain/epoch.py` predicts
/// this contract's outputs from a Metagraph snapshot and the logged bonds.
/// @dev Where things are: this file holds the phases and their storage; `YumaRewards.sol` the
/// rewards ledger (per-uid earnings, claims); `YumaLoggedCalldata.sol` the inputs kept in logs
/// and passed back as calldata (old bond words, row sums) and the consensus vector;
/// `libraries/YumaLanes.sol` the column pass's memory layout and its four-lanes-per-word
/// arithmetic; `libraries/YumaMath.sol` the shared fixed-point helpers. Read in this order:
/// `runEpoch`, `_advance`, then the phases.
/// Phases: `_start` (permits, hyperparameters, registration blocks, mint, fees); `_rows` (16
/// validator rows per step: stake, last update, flags and the row sum the Metagraph keeps,
/// less the weights on uids registered since the row's last update); `_columns` (one packed
/// word of 16 uid columns per step, 1-2 columns with liquid alpha, four columns per word
/// operation (`YumaLanes.pass`): the caller's consensus checked against the column, clipped
/// weights, trust, ranks, bond EMA, the new bonds weighted by rank over bond sum into per-row
/// dividend sums; the old bond words come from the caller, checked against a hash per word,
/// and the new ones are logged and hashed; the rows' running sums likewise, per call);
/// `_credit` (the emission split, recomputed from stored ranks and the row sums, 48 uids per
/// step). A call runs steps while the gas it used (its calldata included) plus the next
/// step's estimate stays under `GAS_BUDGET` (the gas figures block below). Weight words known
/// to be zero are never read.
contract YumaConsensus is YumaLoggedCalldata, YumaRewards {
    using YumaMath for uint256[];
    using YumaLanes for uint256[];

    uint256 private constant ONE = 1e18;
    uint256 private constant WONE = YumaMath.WONE;
    uint256 private constant U16_MAX = 65_535;
    uint256 private constant HALF = 5e17;
    uint256 private constant BMA_SCALE = 1_000_000;
    uint256 private constant OWNER_PERCENT = 18;
    uint256 private constant MINER_PERCENT = 41;
    uint256 private constant ROW_STEP = 16; // validator rows per row step
    uint256 private constant CREDIT_STEP = 48; // uids per credit step

    // ================================================================== gas figures
    // Every gas bound a call checks before it starts a step (`_fits`). They are estimates from
    // measurements on anvil (`latent bench gas`, area yuma): a bound too low lets a call pass
    // the budget, one too high only makes calls stop earlier.

    /// @dev A call starts another step only while the gas it has used plus the step's estimate
    /// (the largest step seen in the call, or the phase's first-step bound) and the call's final
    /// writes stay below this; with the transaction's base cost every call stays below 5M.
    uint256 private constant GAS_BUDGET = 4_600_000;
    /// @dev A calldata byte at most: the call's input counts as used.
    uint256 private constant CALLDATA_BYTE_GAS = 16;
    /// @dev An SSTORE that makes a zero slot non-zero (cold).
    uint256 private constant NEW_SLOT_GAS = 22_200;
    /// @dev First row step's bound: two words read per row, more when rows weigh new uids.
    uint256 private constant ROW_STEP_GAS = 250_000;
    /// @dev Column phase, before its first step: a fixed part and, per row, its record (a word
    /// read) and final writes (up to 23k with liquid alpha's saved words), plus one step's entries.
    uint256 private constant COLUMNS_GAS = 120_000;
    uint256 private constant COLUMNS_ROW_GAS = 30_000;
    /// @dev A column step: a fixed part, per row its share of loading and finishing the group,
    /// a weight word read when the row's word is non-zero, and its entries.
    uint256 private constant STEP_GAS = 80_000;
    uint256 private constant STEP_ROW_GAS = 1_500;
    uint256 private constant WEIGHT_READ_GAS = 2_400;
    /// @dev Gas bound of one column entry at the fixed rate, with its row's share of loading
    /// and storing the words: with the STEP_ROW_GAS a row, 7,900 a row of 16 uids (measured at
    /// 64 rows: ~7,500 a row, the same whatever the values: the pass does not branch).
    uint256 private constant ENTRY_GAS = 400;
    /// @dev One column entry with liquid alpha (its sigmoid).
    uint256 private constant LIQUID_ENTRY_GAS = 16_000;
    /// @dev A column call's final writes: the row sums' hash and log (fixed and per row); a call
    /// that stops inside a group (liquid alpha) also saves one NEW word per row.
    uint256 private constant SAVE_ROWS_GAS = 60_000;
    uint256 private constant SAVE_ROWS_ROW_GAS = 1_000;
    /// @dev A credit step (CREDIT_STEP uids): a fixed part and 2 earnings words per 3 uids
    /// written from zero.
    uint256 private constant CREDIT_STEP_GAS = 60_000 + (CREDIT_STEP / 3) * 2 * NEW_SLOT_GAS;
    /// @dev The credit phase's split: a fixed part, three words a row, one per four uids.
    uint256 private constant SPLIT_GAS = 150_000;
    uint256 private constant SPLIT_ROW_GAS = 7_000;
    uint256 private constant SPLIT_UID_GAS = 1_500;

    /// @dev Row info bit layout (`_rowInfo[row]`, see `YumaLanes`).
    uint256 private constant R_LU = YumaLanes.R_LU;
    uint256 private constant R_SUM = YumaLanes.R_SUM;
    uint256 private constant R_UID = YumaLanes.R_UID;
    uint256 private constant R_WORDS = YumaLanes.R_WORDS;
    uint256 private constant R_ACTIVE = YumaLanes.R_ACTIVE;
    uint256 private constant R_BONDS = YumaLanes.R_BONDS;

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

    /// @dev The hyperparameters an epoch runs with, read from the Metagraph at its start.
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

    Epoch private _epoch;
    Params private _params;
    uint128 private _minted;
    uint128 private _fees;
    /// @dev Rows of the running epoch: the permits recomputed at its start.
    uint256 private _permits;
    uint256 private _bondRows;
    /// @dev Per row: stake (u96) | lastUpdate | row sum | uid | weight words | flags (R_*).
    uint256[256] private _rowInfo;
    /// @dev Registration blocks, 4 u64 per word.
    uint256[64] private _regWords;
    /// @dev Ranks (< 2^62), 4 u64 per word.
    uint256[64] private _rankWords;
    /// @dev Consensus as u16 (round half up), 16 per word.
    uint256[16] private _consensusWords;
    /// @dev Per row: the NEW bond word of a group a call left unfinished (liquid alpha).
    uint256[256] private _partial;

    /// @param metagraph_ the Metagraph (names this contract with `setEpochContract`)
    /// @param token_ the SubnetToken (names this contract its minter)
    /// @param emissionPerBlock_ tokens per block before halvings
    constructor(address metagraph_, address token_, uint256 emissionPerBlock_) YumaRewards(metagraph_, token_) {
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
        uint256 start = gasleft() + CALLDATA_BYTE_GAS * msg.data.length;
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

    /// @dev True when a step estimated at `cost` (including the call's final writes) fits the
    /// budget, or when it is forced.
    function _fits(uint256 start, uint256 cost, bool force) private view returns (bool) {
        return force || start - gasleft() + cost <= GAS_BUDGET;
    }

    /// @dev Permits, hyperparameters, registration blocks, mint and fees.
    function _start(Epoch memory ep) private {
        IMetagraph.Hyperparameters memory h = _hyperparameters();
        // Registrations and reveals wait until the epoch completes: every step reads one state.
        _setEpochRunning(true);
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
        _params = Params({
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
        uint256 fees = _unowed();
        uint256 minted = _emission(h.tempo);
        if (minted != 0) _token.mint(address(this), minted);
        _reserve(minted + fees);
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

    /// @dev The Metagraph's hyperparameters (one call site: the external call's code once).
    function _hyperparameters() private view returns (IMetagraph.Hyperparameters memory) {
        return _metagraph.hyperparameters();
    }

    /// @dev Registrations and reveals wait while an epoch runs (one call site, as above).
    function _setEpochRunning(bool running) private {
        _metagraph.setEpochRunning(running);
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
        uint256 maxCost = ROW_STEP_GAS;
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
            uint256 word = _epochWords(one, w)[0];
            for (uint256 c; lanes != 0; ++c) {
                if (lanes & 1 != 0) sum += (word >> (16 * c)) & 0xFFFF;
                lanes >>= 1;
            }
        }
    }

    /// @dev What the column steps of one call share.
    struct Ctx {
        uint256[] recs; // one record of YumaLanes.RECORD bytes per row
        uint256 lanes; // memory: the group area (`YumaLanes.groupArea`)
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
        OldBonds old; // the call's walk through the old bond words (`_seekBonds`)
        bool resumes; // the call starts inside a group: its NEW words so far are in `_partial`
    }

    /// @dev Fills the records from `_rowInfo` and the row sums (none: zero, at the column
    /// phase's first step); returns the stake weights' total.
    function _loadRows(uint256[] memory recs, uint256[] memory sums) private view returns (uint256 total) {
        uint256[] memory q = YumaMath.stakeWeights(_rawActive(recs.rowCount()));
        return recs.initRecords(_rowInfo, q, sums);
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
        Params memory p = _params;
        uint256 rows = ep.rows;
        uint256[] memory recs = new uint256[](rows * (YumaLanes.RECORD >> 5));
        uint256 total = _loadRows(recs, sums);
        c.recs = recs;
        c.lanes = recs.groupArea();
        c.words = new uint256[](rows);
        c.hint = _hint(inputs, ep.n);
        c.total = total;
        c.target = total * (U16_MAX - p.kappa);
        c.rate = ((BMA_SCALE - p.bondsMovingAverage) << 16) / BMA_SCALE;
        c.penalty = uint256(p.bondsPenalty) + (p.bondsPenalty >> 15);
        c.low = YumaMath.u16ToFraction(p.alphaLow);
        c.high = YumaMath.u16ToFraction(p.alphaHigh);
        c.steepness = p.alphaSigmoidSteepness;
        // The final writes: the row sums' hash and log; a call that stops inside a group
        // (liquid alpha) saves its NEW words.
        c.reserve = SAVE_ROWS_GAS + rows * SAVE_ROWS_ROW_GAS + (p.liquidAlpha ? rows * NEW_SLOT_GAS : 0);
        c.width = _width(p.liquidAlpha, rows);
        c.entry = _entryGas(rows);
        c.liquid = p.liquidAlpha;
        c.lastEpoch = ep.lastEpochBlock;
        c.epochBlock = ep.epochBlock;
        c.old = _oldBonds(inputs, ep.cursor >> 4, _oldRows(recs, rows));
        c.resumes = ep.cursor & 15 != 0;
    }

    /// @dev Turns each record's PREV flag (its uid's old bonds are current) into 1 + its index
    /// among the last epoch's rows (`_bondRows`, ascending uid); returns how many those were.
    function _oldRows(uint256[] memory recs, uint256 rows) private view returns (uint256 count) {
        uint256 bits = _bondRows;
        for (uint256 i; i < rows; ++i) {
            uint256 uid = recs.field(i, YumaLanes.UID);
            // Old rows below uid: rows ascend by uid, so the bits counted are gone from `bits`.
            for (uint256 below = bits & ((1 << uid) - 1); below != 0; below &= below - 1) {
                ++count;
            }
            bits &= ~((1 << uid) - 1);
            if (recs.field(i, YumaLanes.PREV) != 0) recs.setField(i, YumaLanes.PREV, count + 1);
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

    /// @dev Column steps from uid column `ep.cursor`: `_width` columns of one packed word each.
    /// They need the consensus vector (`hint`, see `_hint`) and the old bond words of the
    /// groups they reach (`bonds`): without them the call stops. Starts from the row sums
    /// `sums` (none at the phase's first step), returns the ones it leaves.
    function _columns(Epoch memory ep, uint256 start, bool force, Inputs memory inputs, uint256[] memory sums)
        private
        returns (bool, uint256[] memory)
    {
        if (ep.cursor < ep.n && _hint(inputs, ep.n) == 0) {
            if (force) revert YumaConsensusNeedsConsensus();
            return (false, sums);
        }
        if (!_fits(start, COLUMNS_GAS + uint256(ep.rows) * (COLUMNS_ROW_GAS + _entryGas(ep.rows)), force)) {
            return (false, sums);
        }
        Ctx memory c = _ctx(ep, inputs, sums);
        while (ep.cursor < ep.n) {
            uint256 g = ep.cursor >> 4;
            uint256 c0 = ep.cursor & 15;
            uint256 c1 = _stepEnd(ep.n, g, c0, c.width);
            if (!_fits(start, _stepBound(c, g) + c.reserve, force)) break;
            if (!_seekBonds(c.old, g)) {
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
        return _width(liquid, rows) * (liquid ? LIQUID_ENTRY_GAS : ENTRY_GAS);
    }

    /// @dev Gas bound of a step in word `g`: per row its weight read (when non-zero), its share
    /// of loading and finishing the group and `entry` for its entries.
    function _stepBound(Ctx memory c, uint256 g) private pure returns (uint256 bound) {
        uint256[] memory recs = c.recs;
        uint256 rows = recs.rowCount();
        bound = STEP_GAS + rows * (c.entry + STEP_ROW_GAS);
        for (uint256 i; i < rows; ++i) {
            if ((recs.field(i, YumaLanes.WMASK) >> g) & 1 != 0) bound += WEIGHT_READ_GAS;
        }
    }

    /// @dev Each row's trust and dividend sum: hashed, logged and returned; and the NEW words
    /// of a group the call leaves unfinished (liquid alpha) into `_partial`.
    function _saveRows(Ctx memory c, Epoch memory ep) private returns (uint256[] memory sums) {
        uint256[] memory recs = c.recs;
        sums = recs.rowSums();
        if (ep.cursor & 15 != 0 && ep.cursor < ep.n) {
            for (uint256 i; i < sums.length; ++i) {
                uint256 word = recs.field(i, YumaLanes.NEW);
                if (_partial[i] != word) _partial[i] = word;
            }
        }
        _commitRowSums(ep.epochBlock, ep.cursor, sums);
    }

    /// @dev Columns `16g + c0 .. 16g + c1 - 1`: loads the group, runs the pass, checks the
    /// consensus, records consensus and rank lanes, adds the dividend sums and, at the group's
    /// last column, commits its new bond words.
    function _step(Ctx memory c, uint256 g, uint256 c0, uint256 c1, bool finish) private {
        uint256 lanes = c.lanes;
        uint256 liquid;
        uint256[4] memory cons;
        for (uint256 col = c0; col < c1; ++col) {
            uint256 v = _hintOf(c.hint, 16 * g + col);
            // Lane bounds: a consensus above WONE is no participant's weight.
            if (v > WONE) revert YumaConsensusWrongConsensus(16 * g + col, v);
            cons[col & 3] |= v << (64 * (col >> 2));
            if (c.liquid && v != 0) liquid |= uint256(0xFFFF) << (16 * col);
        }
        YumaLanes.resetGroup(lanes, cons, liquid);
        _loadGroup(c, g, c0, YumaLanes.laneBits(c0, c1));
        if (liquid != 0) _liquidBonds(c, liquid);
        YumaLanes.pass(c.recs, lanes, c.rate, c.penalty);
        _finishColumns(c, g, c0, c1);
        YumaLanes.dividends(c.recs, lanes, YumaLanes.laneBits(c0, c1));
        if (finish) _finishGroup(c, g);
    }

    /// @dev Loads the step's lanes `step` of weight word `g` (rows whose word is non-zero; the
    /// row's own lane and lanes of uids registered at or after its last update cleared) and of
    /// the old bond word `g` (rows with current old bonds, fresh lanes cleared) into the
    /// records, the group's registration blocks into `c.reg`; NEW starts at 0 at the group's
    /// first column (else it keeps the lanes done, from `_partial` at a call's first step).
    function _loadGroup(Ctx memory c, uint256 g, uint256 c0, uint256 step) private view {
        uint256[] memory recs = c.recs;
        uint256 rows = recs.rowCount();
        uint256 maxReg = _loadRegistrations(c, g);
        uint256 count;
        for (uint256 i; i < rows; ++i) {
            if ((recs.field(i, YumaLanes.WMASK) >> g) & 1 != 0) ++count;
        }
        uint256[] memory words;
        if (count != 0) {
            uint16[] memory uids = new uint16[](count);
            count = 0;
            for (uint256 i; i < rows; ++i) {
                if ((recs.field(i, YumaLanes.WMASK) >> g) & 1 != 0) {
                    uids[count++] = uint16(recs.field(i, YumaLanes.UID));
                }
            }
            words = _epochWords(uids, g);
        }
        count = 0;
        uint256 src = c.old.hash != 0 ? c.old.offset : 0;
        uint256 keep = ~c.fresh & step;
        bool resumes = c.resumes;
        for (uint256 i; i < rows; ++i) {
            uint256 w;
            if ((recs.field(i, YumaLanes.WMASK) >> g) & 1 != 0) w = _masked(c, i, g, words[count++] & step, maxReg);
            recs.setField(i, YumaLanes.W, w);
            uint256 prev = recs.field(i, YumaLanes.PREV);
            uint256 old;
            if (src != 0 && prev != 0) {
                uint256 at = src + 32 * (prev - 1);
                // at + 32 <= c.old.end: `_seekBonds` checked the group's words are there.
                assembly {
                    old := and(calldataload(at), keep)
                }
            }
            recs.setField(i, YumaLanes.OLD, old);
            if (c0 == 0) recs.setField(i, YumaLanes.NEW, 0);
            else if (resumes) recs.setField(i, YumaLanes.NEW, _partial[i]);
        }
        c.resumes = false;
    }

    /// @dev Weight word `g` of each row `uids` (one call site: the external call's code once).
    function _epochWords(uint16[] memory uids, uint256 g) private view returns (uint256[] memory) {
        return _metagraph.epochWords(uids, g);
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
        uint256 uid = c.recs.field(i, YumaLanes.UID);
        if (uid >> 4 == g) w &= ~(uint256(0xFFFF) << (16 * (uid & 15)));
        uint256 lu = c.recs.field(i, YumaLanes.LU);
        if (lu <= maxReg) {
            for (uint256 k; k < 16; ++k) {
                if (c.reg[k] >= lu) w &= ~(uint256(0xFFFF) << (16 * k));
            }
        }
        return w;
    }

    /// @dev Liquid alpha: every row's new bonds in the lanes `liquid` (the step's lanes with
    /// non-zero consensus) into its LIQ word, one entry at a time (the sigmoid dominates).
    function _liquidBonds(Ctx memory c, uint256 liquid) private pure {
        uint256[] memory recs = c.recs;
        uint256 rows = recs.rowCount();
        for (uint256 i; i < rows; ++i) {
            uint256 word;
            for (uint256 col; col < 16; ++col) {
                if ((liquid >> (16 * col)) & 1 != 0) word |= _liquidBond(c, i, col) << (16 * col);
            }
            recs.setField(i, YumaLanes.LIQ, word);
        }
    }

    /// @dev Row `i`'s new bond (u16) in lane `col` at its liquid-alpha rate.
    function _liquidBond(Ctx memory c, uint256 i, uint256 col) private pure returns (uint256) {
        uint256 cons = YumaLanes.laneConsensus(c.lanes, col);
        uint256 t = _target(c, i, col, cons);
        uint256 old = (c.recs.field(i, YumaLanes.OLD) >> (16 * col)) & 0xFFFF;
        uint256 rate = YumaMath.liquidRate(cons, t, old, c.low, c.high, c.steepness);
        return ((((old << 16) * (65_536 - rate) + t * rate) >> 16) + (1 << 15)) >> 16;
    }

    /// @dev Row `i`'s penalised target in lane `col`, from its scaled weight and the consensus.
    function _target(Ctx memory c, uint256 i, uint256 col, uint256 cons) private pure returns (uint256) {
        uint256 y = (((c.recs.field(i, YumaLanes.W) >> (16 * col)) & 0xFFFF) * c.recs.field(i, YumaLanes.M)) >> 31;
        uint256 cl = y < cons ? y : cons;
        return y - (((y - cl) * c.penalty) >> 16);
    }

    /// @dev Checks each lane's consensus, records consensus (u16) and rank lanes, and sets the
    /// dividend factors `g_j = R_j / sum_i n_ij` (`YumaLanes.dividends`).
    function _finishColumns(Ctx memory c, uint256 g, uint256 c0, uint256 c1) private {
        uint256 lanes = c.lanes;
        uint256 consensus = _consensusWords[g] & ~YumaLanes.laneBits(c0, c1);
        uint256[4] memory ranks;
        for (uint256 k; k < 4; ++k) {
            ranks[k] = _rankWords[4 * g + k];
        }
        uint256 zero = YumaLanes.skippedStake(lanes);
        uint256[6] memory factors;
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
        YumaLanes.setFactors(lanes, factors);
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
        uint256 stakes;
        (cons, stakes, rank, bonds) = YumaLanes.laneSums(c.lanes, col);
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

    /// @dev Commits group `g`'s new bond words: their hash (0 when all are zero) and a log of
    /// them for the next epoch's caller.
    function _finishGroup(Ctx memory c, uint256 g) private {
        uint256[] memory recs = c.recs;
        uint256[] memory words = c.words;
        bool any;
        for (uint256 i; i < words.length; ++i) {
            uint256 word = recs.field(i, YumaLanes.NEW);
            words[i] = word;
            if (word != 0) any = true;
        }
        _commitBonds(uint64(c.epochBlock), g, words, any, c.old.hash);
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
        uint256 maxCost = CREDIT_STEP_GAS;
        // The first step records up to 64 score words (4 per 16 uids), maybe from zero.
        uint256 scores = ep.cursor == 0 ? 4 * ((n + 15) >> 4) * NEW_SLOT_GAS : 0;
        if (!_fits(start, maxCost + scores + SPLIT_GAS + uint256(ep.rows) * SPLIT_ROW_GAS + n * SPLIT_UID_GAS, force)) {
            return false;
        }
        Split memory s = _split(ep, sums);
        if (ep.cursor == 0) {
            _recordScores(ep, s);
            _creditAccount(_subnetOwner(), s.owner);
        }
        while (ep.cursor < n) {
            if (!_fits(start, maxCost, force)) return false;
            force = false;
            uint256 t0 = gasleft();
            uint256 first = ep.cursor;
            uint256 end = n - first < CREDIT_STEP ? n : first + CREDIT_STEP;
            _metagraph.recordEmission(uint16(first), _creditUids(first, end, s.perUid));
            ep.cursor = uint16(end);
            uint256 cost = t0 - gasleft();
            if (cost > maxCost) maxCost = cost;
        }
        _setEpochRunning(false);
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

    // ================================================================== emission

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

    // ================================================================== views

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
        return ep.lastEpochBlock + _hyperparameters().tempo;
    }

    /// @inheritdoc IYumaConsensus
    function bondRows() external view returns (uint256) {
        return _bondRows;
    }

    /// @inheritdoc IYumaConsensus
    function emissionPerBlock() external view returns (uint256) {
        return _emissionPerBlock;
    }
}
