// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {Ownable} from "@openzeppelin/contracts/access/Ownable.sol";
import {Ownable2Step} from "@openzeppelin/contracts/access/Ownable2Step.sol";
import {SafeCast} from "@openzeppelin/contracts/utils/math/SafeCast.sol";
import {EIP712} from "@openzeppelin/contracts/utils/cryptography/EIP712.sol";
import {SignatureChecker} from "@openzeppelin/contracts/utils/cryptography/SignatureChecker.sol";
import {IERC20} from "@openzeppelin/contracts/token/ERC20/IERC20.sol";
import {SafeERC20} from "@openzeppelin/contracts/token/ERC20/utils/SafeERC20.sol";
import {IMetagraph} from "./interfaces/IMetagraph.sol";
import {ISubnetToken} from "./interfaces/ISubnetToken.sol";
import {IYumaConsensus} from "./interfaces/IYumaConsensus.sol";
import {BurnPrice} from "./libraries/BurnPrice.sol";
import {TopStake} from "./libraries/TopStake.sol";
import {WeightRows} from "./libraries/WeightRows.sol";

/// @title Metagraph
/// @notice Neurons, burned registration, stake, validator permits and commit-reveal weights of
/// one Latent subnet (rules after subtensor's `pallets/subtensor/src`).
///
/// Storage layout (what the epoch reads; all per-uid data in fixed-size arrays, no hashing):
/// - `_neurons[uid]`  one word: `stake` u96 (mirror of the hotkey's total stake while it is
///   registered) | `registeredAt` u64 | `rowSum` u32 (sum of the stored weight row without the
///   uid's own lane) | `rowWords` u16 (bit w: weight word w is non-zero);
/// - `_emission`      last epoch's emission per uid, u85 lanes, 3 per word (uid `u` in word
///   `u / 3` at bits `85 * (u % 3)`);
/// - `_keys[uid]`     one word: `hotkey` address | `lastUpdate` u64 (block of the last reveal,
///   registration block until then);
/// - `_weights[uid]`  16 words, 16 u16 lanes each (see `WeightRows`);
/// - `_incentive`, `_dividends`, `_consensus`, `_validatorTrust`: 16 words each, same packing;
/// - `_permits`       one word, bit `uid`.
/// Stake itself is keyed by hotkey (`_hotkeyStake`) and survives deregistration.
contract Metagraph is IMetagraph, Ownable2Step, EIP712 {
    using SafeERC20 for IERC20;
    using SafeCast for uint256;

    /// @dev Hard ceiling on `maxUids`: bitmaps and packed rows are 256 wide.
    uint256 private constant _UID_LIMIT = 256;
    /// @dev Longest endpoint URL accepted, in bytes.
    uint256 private constant _MAX_ENDPOINT = 256;
    /// @dev Largest `maxBurn`: the token's supply cap.
    uint256 private constant _MAX_BURN_LIMIT = 21_000_000 ether;
    uint256 private constant _U16_MAX = 0xFFFF;
    uint256 private constant _U32_MAX = 0xFFFFFFFF;
    uint256 private constant _U85_MAX = (1 << 85) - 1;
    /// @dev Longest immunity and unbonding periods the owner may set: 50,400 blocks (a week
    /// of 12 s blocks), so stakers can always leave and a new neuron's protection stays finite.
    uint256 private constant _MAX_PERIOD = 50_400;

    /// @notice EIP-712 type of a hotkey's consent to be registered for a coldkey.
    bytes32 public constant REGISTER_CONSENT_TYPEHASH =
        keccak256("RegisterConsent(address hotkey,address coldkey,uint256 nonce,uint256 deadline)");
    /// @notice Blocks between proposing a new epoch contract and completing the switch (a day of
    /// 12 s blocks): everyone sees who will mint and credit rewards before it happens.
    uint64 public constant EPOCH_SWITCH_DELAY = 7200;

    struct Neuron {
        uint96 stake;
        uint64 registeredAt;
        uint32 rowSum;
        uint16 rowWords;
    }

    struct NeuronKeys {
        address hotkey;
        uint64 lastUpdate;
    }

    struct BurnState {
        uint128 price; // price right after the last checkpoint, unclamped-by-decay
        uint64 block; // block of the last checkpoint
        uint64 decayFactor; // per-block factor in Q64 for the current half-life
    }

    struct Unbonding {
        uint128 amount;
        uint64 releaseBlock;
    }

    ISubnetToken private immutable _token;

    /// @dev Hyperparameters by `Param` index, packed four per word; MinBurn/MaxBurn live in
    /// `_minBurn`/`_maxBurn` (their entries here stay 0).
    uint64[21] private _params;
    uint128 private _minBurn;
    uint128 private _maxBurn;
    BurnState private _burn;

    uint16 private _neuronCount;
    uint64 private _lastPermitUpdate;
    address private _epoch;
    /// @dev Set by the epoch contract while an epoch is in progress: registration and reveals
    /// wait, so every chunk of the epoch reads the same weights and uids.
    bool private _epochRunning;
    uint256 private _permits;
    /// @dev Bit `uid`: `_weights[uid]` may hold non-zero words (cleared when the uid is replaced).
    uint256 private _rowsWritten;

    Neuron[256] private _neurons;
    NeuronKeys[256] private _keys;
    uint256[16][256] private _weights;
    uint256[16] private _incentive;
    uint256[16] private _dividends;
    uint256[16] private _consensus;
    uint256[16] private _validatorTrust;
    uint256[86] private _emission;
    mapping(uint256 uid => string) private _endpoints;
    mapping(uint256 uid => WeightCommit) private _commits;
    mapping(address hotkey => uint256) private _uidPlusOne;
    mapping(address hotkey => address) private _hotkeyOwner;
    mapping(address hotkey => uint256) private _consentNonces;
    address private _pendingEpoch;
    uint64 private _pendingEpochReady;
    uint64 private _epochSince;
    /// @dev Every epoch contract replaced so far (with code): they keep per-uid earnings, and
    /// learn of uid replacements like the current one. Switches are owner-only and time-locked,
    /// so the list stays short.
    address[] private _retiredEpochs;
    /// @dev Every registration in order, `block << 16 | uid`; a reveal walks it backwards to find
    /// the uids registered at or after its commit block.
    uint256[] private _registrationJournal;

    mapping(address hotkey => mapping(address coldkey => uint256)) private _stake;
    mapping(address hotkey => uint256) private _hotkeyStake;
    mapping(address coldkey => Unbonding) private _unbonding;
    uint256 private _totalStake;
    uint256 private _totalUnbonding;

    /// @param token_ the SubnetToken (burned by registration, bonded by stake)
    /// @param owner_ the subnet owner (sets hyperparameters)
    constructor(address token_, address owner_) Ownable(owner_) EIP712("Latent Metagraph", "1") {
        _token = ISubnetToken(token_);
        // Defaults after subtensor; the deployer tunes them with `setHyperparameter`.
        _params[uint256(Param.Tempo)] = 360;
        _params[uint256(Param.Kappa)] = 32_767;
        _params[uint256(Param.ImmunityPeriod)] = 4096;
        _params[uint256(Param.MaxUids)] = 256;
        _params[uint256(Param.MaxValidators)] = 64;
        _params[uint256(Param.MinAllowedWeights)] = 1;
        _params[uint256(Param.WeightsRateLimit)] = 100;
        _params[uint256(Param.RevealPeriod)] = 1;
        _params[uint256(Param.BondsMovingAverage)] = 900_000;
        _params[uint256(Param.BondsPenalty)] = 65_535;
        _params[uint256(Param.AlphaLow)] = 45_875;
        _params[uint256(Param.AlphaHigh)] = 58_982;
        _params[uint256(Param.AlphaSigmoidSteepness)] = 1000;
        _params[uint256(Param.ActivityCutoff)] = 5000;
        _params[uint256(Param.BurnHalfLife)] = 720;
        _params[uint256(Param.BurnIncreaseMult)] = 12_600;
        _params[uint256(Param.UnbondingPeriod)] = 7200;
        _minBurn = 1 ether;
        _maxBurn = 100 ether;
        _burn = BurnState({price: 1 ether, block: uint64(block.number), decayFactor: BurnPrice.decayFactor(720)});
    }

    modifier onlyEpoch() {
        if (msg.sender != _epoch || _epoch == address(0)) revert MetagraphNotEpoch(msg.sender, _epoch);
        _;
    }

    // ================================================================== registration

    /// @inheritdoc IMetagraph
    function register(address hotkey, string calldata endpoint, uint256 maxPrice)
        external
        returns (uint16 uid, uint256 burned)
    {
        if (msg.sender != hotkey && _hotkeyOwner[hotkey] != msg.sender) {
            revert MetagraphHotkeyConsentRequired(hotkey, msg.sender);
        }
        return _register(hotkey, endpoint, maxPrice);
    }

    /// @inheritdoc IMetagraph
    function registerWithConsent(
        address hotkey,
        string calldata endpoint,
        uint256 maxPrice,
        uint256 deadline,
        bytes calldata signature
    ) external returns (uint16 uid, uint256 burned) {
        if (block.timestamp > deadline) revert MetagraphConsentExpired(deadline);
        uint256 nonce = _consentNonces[hotkey]++;
        bytes32 digest =
            _hashTypedDataV4(keccak256(abi.encode(REGISTER_CONSENT_TYPEHASH, hotkey, msg.sender, nonce, deadline)));
        if (!SignatureChecker.isValidSignatureNow(hotkey, digest, signature)) revert MetagraphConsentInvalid(hotkey);
        return _register(hotkey, endpoint, maxPrice);
    }

    /// @inheritdoc IMetagraph
    function consentNonce(address hotkey) external view returns (uint256) {
        return _consentNonces[hotkey];
    }

    /// @inheritdoc IMetagraph
    function registeredAt(uint16 uid) external view returns (uint64) {
        return _neurons[uid].registeredAt;
    }

    function _register(address hotkey, string calldata endpoint, uint256 maxPrice)
        private
        returns (uint16 uid, uint256 burned)
    {
        if (hotkey == address(0)) revert MetagraphZeroHotkey();
        if (_epochRunning) revert MetagraphEpochInProgress();
        uint256 existing = _uidPlusOne[hotkey];
        if (existing != 0) revert MetagraphHotkeyAlreadyRegistered(hotkey, uint16(existing - 1));
        address owner_ = _hotkeyOwner[hotkey];
        if (owner_ != address(0) && owner_ != msg.sender) revert MetagraphHotkeyOwnedByOther(hotkey, owner_);
        if (bytes(endpoint).length > _MAX_ENDPOINT) {
            revert MetagraphEndpointTooLong(bytes(endpoint).length, _MAX_ENDPOINT);
        }

        burned = _currentPrice();
        if (burned > maxPrice) revert MetagraphPriceAboveLimit(burned, maxPrice);

        uint256 n = _neuronCount;
        address replaced;
        if (n < _p(Param.MaxUids)) {
            uid = uint16(n);
            _neuronCount = uint16(n + 1);
        } else {
            uid = _pruneCandidate(n);
            replaced = _keys[uid].hotkey;
            _clearUid(uid, replaced);
        }

        // Effects: the neuron, then the price, then the journal.
        uint64 now_ = uint64(block.number);
        _neurons[uid] = Neuron({stake: _hotkeyStake[hotkey].toUint96(), registeredAt: now_, rowSum: 0, rowWords: 0});
        _keys[uid] = NeuronKeys({hotkey: hotkey, lastUpdate: now_});
        _endpoints[uid] = endpoint;
        _uidPlusOne[hotkey] = uint256(uid) + 1;
        if (owner_ == address(0)) _hotkeyOwner[hotkey] = msg.sender;
        _registrationJournal.push((uint256(now_) << 16) | uid);
        _burn.price = BurnPrice.clamp(BurnPrice.bump(burned, _p(Param.BurnIncreaseMult)), _minBurn, _maxBurn)
            .toUint128();
        _burn.block = now_;

        emit NeuronRegistered(uid, hotkey, msg.sender, burned, replaced);
        emit EndpointSet(uid, endpoint);

        // Interaction: destroy the burn (needs the caller's allowance to this contract).
        _token.burnFrom(msg.sender, burned);
    }

    /// @inheritdoc IMetagraph
    function setEndpoint(string calldata endpoint) external {
        uint16 uid = _requireUid(msg.sender);
        if (bytes(endpoint).length > _MAX_ENDPOINT) {
            revert MetagraphEndpointTooLong(bytes(endpoint).length, _MAX_ENDPOINT);
        }
        _endpoints[uid] = endpoint;
        emit EndpointSet(uid, endpoint);
    }

    /// @inheritdoc IMetagraph
    function registrationPrice() external view returns (uint256) {
        return _currentPrice();
    }

    /// @inheritdoc IMetagraph
    function burnState() external view returns (uint256 price, uint64 checkpointBlock, uint64 decayFactorQ64) {
        BurnState memory b = _burn;
        return (b.price, b.block, b.decayFactor);
    }

    /// @inheritdoc IMetagraph
    function nextRegistrationUid() external view returns (uint16) {
        uint256 n = _neuronCount;
        if (n < _p(Param.MaxUids)) return uint16(n);
        return _pruneCandidate(n);
    }

    function _currentPrice() private view returns (uint256) {
        BurnState memory b = _burn;
        uint256 decayed = BurnPrice.decay(b.price, b.decayFactor, block.number - b.block);
        return BurnPrice.clamp(decayed, _minBurn, _maxBurn);
    }

    /// @dev Lowest emission among non-immune uids; ties: earlier registration, then lower uid.
    function _pruneCandidate(uint256 n) private view returns (uint16 best) {
        uint256 immunity = _p(Param.ImmunityPeriod);
        uint256 bestEmission = type(uint256).max;
        uint256 bestRegistered = type(uint256).max;
        uint256 firstRelease = type(uint256).max;
        bool found;
        for (uint256 uid; uid < n; ++uid) {
            Neuron memory neuron = _neurons[uid];
            uint256 emission = _emissionOf(uid);
            uint256 release = uint256(neuron.registeredAt) + immunity;
            if (block.number < release) {
                if (release < firstRelease) firstRelease = release;
                continue;
            }
            // Strictly better only: scanning uids upward keeps the lower uid on a full tie.
            if (
                emission < bestEmission || (emission == bestEmission && neuron.registeredAt < bestRegistered)
            ) {
                best = uint16(uid);
                bestEmission = emission;
                bestRegistered = neuron.registeredAt;
                found = true;
            }
        }
        if (!found) revert MetagraphAllNeuronsImmune(uint64(firstRelease));
    }

    /// @dev Frees `uid` from `oldHotkey`: uid mapping, permit, pending commit, weight row, scores.
    function _clearUid(uint16 uid, address oldHotkey) private {
        delete _uidPlusOne[oldHotkey];
        uint256 bit = 1 << uid;
        if (_permits & bit != 0) _permits &= ~bit;
        delete _commits[uid];
        if (_rowsWritten & bit != 0) {
            delete _weights[uid];
            _rowsWritten &= ~bit;
        }
        uint256 word = uid >> 4;
        uint256 keep = ~(_U16_MAX << ((uid & 15) << 4));
        if (_incentive[word] & ~keep != 0) _incentive[word] &= keep;
        if (_dividends[word] & ~keep != 0) _dividends[word] &= keep;
        if (_consensus[word] & ~keep != 0) _consensus[word] &= keep;
        if (_validatorTrust[word] & ~keep != 0) _validatorTrust[word] &= keep;
        uint256 lane = _U85_MAX << (85 * (uid % 3));
        if (_emission[uid / 3] & lane != 0) _emission[uid / 3] &= ~lane;
        // The epoch contract pays what the uid earned so far to the hotkey that earned it; so
        // do the contracts it replaced (per-uid earnings there must not pass to the next holder).
        address epoch = _epoch;
        if (epoch.code.length != 0) IYumaConsensus(epoch).onUidReplaced(uid, oldHotkey);
        uint256 retired = _retiredEpochs.length;
        for (uint256 i; i < retired; ++i) {
            IYumaConsensus(_retiredEpochs[i]).onUidReplaced(uid, oldHotkey);
        }
    }

    function _emissionOf(uint256 uid) private view returns (uint256) {
        return (_emission[uid / 3] >> (85 * (uid % 3))) & _U85_MAX;
    }

    function _requireUid(address hotkey) private view returns (uint16) {
        uint256 plusOne = _uidPlusOne[hotkey];
        if (plusOne == 0) revert MetagraphHotkeyNotRegistered(hotkey);
        return uint16(plusOne - 1);
    }

    // ================================================================== staking

    /// @inheritdoc IMetagraph
    function addStake(address hotkey, uint256 amount) external {
        _addStake(msg.sender, hotkey, amount);
    }

    /// @inheritdoc IMetagraph
    function addStakeFor(address coldkey, address hotkey, uint256 amount) external {
        _addStake(coldkey, hotkey, amount);
    }

    /// @dev The caller pays `amount`; `coldkey` owns the stake.
    function _addStake(address coldkey, address hotkey, uint256 amount) private {
        if (amount == 0) revert MetagraphZeroAmount();
        _requireUid(hotkey);
        uint256 total = _hotkeyStake[hotkey] + amount;
        _setStake(hotkey, coldkey, _stake[hotkey][coldkey] + amount, total);
        _totalStake += amount;
        emit StakeAdded(coldkey, hotkey, amount, total);
        IERC20(address(_token)).safeTransferFrom(msg.sender, address(this), amount);
    }

    /// @inheritdoc IMetagraph
    function removeStake(address hotkey, uint256 amount) external {
        if (amount == 0) revert MetagraphZeroAmount();
        uint256 staked = _stake[hotkey][msg.sender];
        if (amount > staked) revert MetagraphInsufficientStake(msg.sender, hotkey, staked, amount);
        // unchecked: amount <= staked <= hotkey total <= _totalStake (the ledger's invariant).
        uint256 total;
        unchecked {
            total = _hotkeyStake[hotkey] - amount;
            _setStake(hotkey, msg.sender, staked - amount, total);
            _totalStake -= amount;
        }
        Unbonding storage u = _unbonding[msg.sender];
        uint64 release = (block.number + _p(Param.UnbondingPeriod)).toUint64();
        u.amount = (uint256(u.amount) + amount).toUint128();
        u.releaseBlock = release;
        _totalUnbonding += amount;
        emit StakeRemoved(msg.sender, hotkey, amount, total, release);
    }

    /// @inheritdoc IMetagraph
    function claimUnbonded() external returns (uint256 amount) {
        Unbonding memory u = _unbonding[msg.sender];
        if (u.amount == 0) revert MetagraphNothingToClaim(msg.sender);
        if (block.number < u.releaseBlock) revert MetagraphUnbondingNotElapsed(u.releaseBlock, uint64(block.number));
        amount = u.amount;
        delete _unbonding[msg.sender];
        _totalUnbonding -= amount;
        emit UnbondedClaimed(msg.sender, amount);
        IERC20(address(_token)).safeTransfer(msg.sender, amount);
    }

    /// @dev The one place stake changes: the (hotkey, coldkey) entry, the hotkey total and, while
    /// the hotkey is registered, the per-uid mirror the epoch and the permit selection read.
    function _setStake(address hotkey, address coldkey, uint256 pairStake, uint256 hotkeyTotal) private {
        _stake[hotkey][coldkey] = pairStake;
        _hotkeyStake[hotkey] = hotkeyTotal;
        uint256 plusOne = _uidPlusOne[hotkey];
        if (plusOne != 0) _neurons[plusOne - 1].stake = hotkeyTotal.toUint96();
    }

    /// @inheritdoc IMetagraph
    function stakeOf(address coldkey, address hotkey) external view returns (uint256) {
        return _stake[hotkey][coldkey];
    }

    /// @inheritdoc IMetagraph
    function hotkeyStake(address hotkey) external view returns (uint256) {
        return _hotkeyStake[hotkey];
    }

    /// @inheritdoc IMetagraph
    function totalStake() external view returns (uint256) {
        return _totalStake;
    }

    /// @inheritdoc IMetagraph
    function totalUnbonding() external view returns (uint256) {
        return _totalUnbonding;
    }

    /// @inheritdoc IMetagraph
    function unbonding(address coldkey) external view returns (uint256 amount, uint64 releaseBlock) {
        Unbonding memory u = _unbonding[coldkey];
        return (u.amount, u.releaseBlock);
    }

    // ================================================================== permits

    /// @inheritdoc IMetagraph
    function updatePermits() external {
        if (_epoch != address(0)) revert MetagraphPermitsManagedByEpoch(_epoch);
        uint256 last = _lastPermitUpdate;
        if (last != 0 && block.number < last + _p(Param.Tempo)) {
            revert MetagraphPermitUpdateTooSoon(uint64(last + _p(Param.Tempo)));
        }
        _recomputePermits();
    }

    /// @inheritdoc IMetagraph
    function recomputePermits() external onlyEpoch returns (uint256 permits) {
        return _recomputePermits();
    }

    function _recomputePermits() private returns (uint256 permits) {
        uint256 n = _neuronCount;
        uint256[] memory stakes = new uint256[](n);
        for (uint256 uid; uid < n; ++uid) {
            stakes[uid] = _neurons[uid].stake;
        }
        uint256 count;
        (permits, count) = TopStake.select(stakes, _p(Param.MaxValidators));
        _permits = permits;
        _lastPermitUpdate = uint64(block.number);
        emit ValidatorPermitsUpdated(permits, count);
    }

    /// @inheritdoc IMetagraph
    function validatorPermits() external view returns (uint256) {
        return _permits;
    }

    // ================================================================== weights

    /// @inheritdoc IMetagraph
    function commitWeights(bytes32 hash) external {
        uint16 uid = _requireUid(msg.sender);
        _commits[uid] = WeightCommit({hash: hash, block: uint64(block.number)});
        emit WeightsCommitted(uid, hash, uint64(block.number / _p(Param.Tempo) + _p(Param.RevealPeriod)));
    }

    /// @inheritdoc IMetagraph
    function revealWeights(bytes calldata uids, bytes calldata values, bytes32 salt, uint64 versionKey) external {
        uint16 uid = _requireUid(msg.sender);
        uint64 commitBlock = _checkReveal(uid, uids, values, salt, versionKey);
        uint256 n = _neuronCount;
        uint256 count = uids.length >> 1;
        uint256 required = _p(Param.MinAllowedWeights) < n ? _p(Param.MinAllowedWeights) : n;
        if (count < required) revert MetagraphTooFewWeights(count, required);

        (uint256[16] memory row, uint256 dropped) = WeightRows.build(uids, values, n, _registeredSince(commitBlock));

        delete _commits[uid];
        uint256[16] storage stored = _weights[uid];
        uint256 sum;
        uint256 words;
        for (uint256 w; w < 16; ++w) {
            uint256 word = row[w];
            stored[w] = word;
            if (word != 0) {
                words |= 1 << w;
                sum += WeightRows.laneSum(word);
            }
        }
        // The epoch ignores a validator's weight on itself: leave it out of the sum.
        Neuron storage neuron = _neurons[uid];
        neuron.rowSum = uint32(sum - WeightRows.lane(row, uid));
        neuron.rowWords = uint16(words);
        _rowsWritten |= 1 << uid;
        _keys[uid].lastUpdate = uint64(block.number);
        emit WeightsRevealed(uid, count, dropped);
    }

    /// @dev Every check of a reveal except the contents of the row; returns the commit block.
    function _checkReveal(uint16 uid, bytes calldata uids, bytes calldata values, bytes32 salt, uint64 versionKey)
        private
        view
        returns (uint64)
    {
        WeightCommit memory commit = _commits[uid];
        if (commit.hash == bytes32(0)) revert MetagraphNoCommit(uid);
        if (_epochRunning) revert MetagraphEpochInProgress();
        if (_permits & (1 << uid) == 0) revert MetagraphNoValidatorPermit(uid);
        _checkRevealWindow(commit.block);
        bytes32 revealed = keccak256(abi.encode(msg.sender, uids, values, salt, versionKey));
        if (revealed != commit.hash) revert MetagraphCommitMismatch(commit.hash, revealed);
        uint64 requiredKey = _params[uint256(Param.WeightsVersionKey)];
        if (versionKey < requiredKey) revert MetagraphVersionKeyTooLow(versionKey, requiredKey);
        uint64 lastUpdate = _keys[uid].lastUpdate;
        uint256 nextBlock = uint256(lastUpdate) + _p(Param.WeightsRateLimit);
        if (block.number < nextBlock) revert MetagraphWeightsRateLimited(lastUpdate, uint64(nextBlock));
        if (uids.length != values.length || uids.length & 1 != 0) {
            revert MetagraphMalformedWeights(uids.length, values.length);
        }
        return commit.block;
    }

    function _checkRevealWindow(uint64 commitBlock) private view {
        uint256 tempo = _p(Param.Tempo);
        uint64 revealWindow = uint64(commitBlock / tempo + _p(Param.RevealPeriod));
        uint64 current = uint64(block.number / tempo);
        if (current < revealWindow) revert MetagraphRevealTooEarly(current, revealWindow);
        if (current > revealWindow) revert MetagraphRevealExpired(current, revealWindow);
    }

    /// @dev Bitmap of uids registered at or after `fromBlock` (walks the journal from its end;
    /// cost grows with the registrations since the commit, which the rising price throttles).
    function _registeredSince(uint64 fromBlock) private view returns (uint256 mask) {
        uint256 i = _registrationJournal.length;
        while (i != 0) {
            uint256 entry = _registrationJournal[--i];
            if (entry >> 16 < fromBlock) break;
            mask |= 1 << (entry & 0xFFFF);
        }
    }

    /// @inheritdoc IMetagraph
    function weightCommit(uint16 uid) external view returns (WeightCommit memory) {
        return _commits[uid];
    }

    /// @inheritdoc IMetagraph
    function weightRow(uint16 uid) external view returns (uint256[16] memory) {
        return _weights[uid];
    }

    // ================================================================== epoch interface

    /// @inheritdoc IMetagraph
    function epochRowKeys(uint16[] calldata uids) external view returns (uint256[] memory rows) {
        rows = new uint256[](uids.length);
        for (uint256 k; k < uids.length; ++k) {
            // Reverts (index out of bounds) for uid >= 256.
            Neuron memory neuron = _neurons[uids[k]];
            rows[k] = uint256(neuron.stake) | (uint256(_keys[uids[k]].lastUpdate) << 96)
                | (uint256(neuron.rowSum) << 160) | (uint256(neuron.rowWords) << 192);
        }
    }

    /// @inheritdoc IMetagraph
    function epochWords(uint16[] calldata uids, uint256 word) external view returns (uint256[] memory words) {
        words = new uint256[](uids.length);
        for (uint256 k; k < uids.length; ++k) {
            // Reverts (index out of bounds) for uid >= 256 or word >= 16.
            words[k] = _weights[uids[k]][word];
        }
    }

    /// @inheritdoc IMetagraph
    function hotkeys(uint16 firstUid, uint256 count) external view returns (address[] memory keys) {
        keys = new address[](count);
        for (uint256 k; k < count; ++k) {
            keys[k] = _keys[firstUid + k].hotkey;
        }
    }

    /// @inheritdoc IMetagraph
    function registrationBlocks() external view returns (uint64[] memory blocks) {
        uint256 n = _neuronCount;
        blocks = new uint64[](n);
        for (uint256 uid; uid < n; ++uid) {
            blocks[uid] = _neurons[uid].registeredAt;
        }
    }

    /// @inheritdoc IMetagraph
    function recordEpochScores(
        uint256[16] calldata incentive,
        uint256[16] calldata dividends,
        uint256[16] calldata consensus,
        uint256[16] calldata validatorTrust
    ) external onlyEpoch {
        _incentive = incentive;
        _dividends = dividends;
        _consensus = consensus;
        _validatorTrust = validatorTrust;
    }

    /// @inheritdoc IMetagraph
    function recordEmission(uint16 firstUid, uint96[] calldata emission) external onlyEpoch {
        uint256 end = uint256(firstUid) + emission.length;
        if (end > _neuronCount) revert MetagraphEpochRangeInvalid(firstUid, emission.length, _neuronCount);
        uint256 uid = firstUid;
        while (uid < end) {
            uint256 w = uid / 3;
            uint256 word = _emission[w];
            for (; uid < end && uid / 3 == w; ++uid) {
                uint256 shift = 85 * (uid % 3);
                // Fits: an epoch emits less than the token's cap, 21M * 1e18 < 2^85.
                word = (word & ~(_U85_MAX << shift)) | (uint256(emission[uid - firstUid]) << shift);
            }
            if (_emission[w] != word) _emission[w] = word;
        }
        emit EpochResultsRecorded(firstUid, emission.length);
    }

    /// @inheritdoc IMetagraph
    function setEpochContract(address epoch) external onlyOwner {
        address current = _epoch;
        if (current != address(0)) {
            // Replacing the contract that mints and credits rewards is time-locked.
            if (_pendingEpoch != epoch || _pendingEpochReady == 0) {
                uint64 ready = uint64(block.number) + EPOCH_SWITCH_DELAY;
                _pendingEpoch = epoch;
                _pendingEpochReady = ready;
                emit EpochContractProposed(epoch, ready);
                return;
            }
            if (block.number < _pendingEpochReady) revert MetagraphEpochSwitchNotReady(epoch, _pendingEpochReady);
        }
        _pendingEpoch = address(0);
        _pendingEpochReady = 0;
        if (current.code.length != 0) _retiredEpochs.push(current);
        emit EpochContractSet(current, epoch);
        _epoch = epoch;
        _epochSince = uint64(block.number);
        _epochRunning = false;
    }

    /// @inheritdoc IMetagraph
    function epochContractSince() external view returns (uint64) {
        return _epochSince;
    }

    /// @inheritdoc IMetagraph
    function pendingEpochContract() external view returns (address epoch, uint64 readyBlock) {
        return (_pendingEpoch, _pendingEpochReady);
    }

    /// @inheritdoc IMetagraph
    function setEpochRunning(bool running) external onlyEpoch {
        _epochRunning = running;
    }

    /// @inheritdoc IMetagraph
    function epochContract() external view returns (address) {
        return _epoch;
    }

    // ================================================================== hyperparameters

    /// @inheritdoc IMetagraph
    function setHyperparameter(Param param, uint256 value) external onlyOwner {
        (uint256 lo, uint256 hi) = _bounds(param);
        if (value < lo || value > hi) revert MetagraphHyperparameterOutOfBounds(param, value, lo, hi);
        if (param == Param.MinBurn || param == Param.MaxBurn || param == Param.BurnHalfLife) {
            // Checkpoint the price so the change is not applied retroactively.
            _burn.price = _currentPrice().toUint128();
            _burn.block = uint64(block.number);
        }
        uint256 old = _read(param);
        _write(param, value);
        if (param == Param.BurnHalfLife) _burn.decayFactor = BurnPrice.decayFactor(value);
        emit HyperparameterSet(param, old, value);
    }

    /// @inheritdoc IMetagraph
    function hyperparameters() external view returns (Hyperparameters memory h) {
        uint64[21] memory p = _params;
        h = Hyperparameters({
            tempo: p[uint256(Param.Tempo)],
            kappa: p[uint256(Param.Kappa)],
            immunityPeriod: p[uint256(Param.ImmunityPeriod)],
            maxUids: p[uint256(Param.MaxUids)],
            maxValidators: p[uint256(Param.MaxValidators)],
            minAllowedWeights: p[uint256(Param.MinAllowedWeights)],
            weightsRateLimit: p[uint256(Param.WeightsRateLimit)],
            revealPeriod: p[uint256(Param.RevealPeriod)],
            bondsMovingAverage: p[uint256(Param.BondsMovingAverage)],
            bondsPenalty: p[uint256(Param.BondsPenalty)],
            liquidAlphaEnabled: p[uint256(Param.LiquidAlphaEnabled)] == 1,
            alphaLow: p[uint256(Param.AlphaLow)],
            alphaHigh: p[uint256(Param.AlphaHigh)],
            alphaSigmoidSteepness: p[uint256(Param.AlphaSigmoidSteepness)],
            activityCutoff: p[uint256(Param.ActivityCutoff)],
            minBurn: _minBurn,
            maxBurn: _maxBurn,
            burnHalfLife: p[uint256(Param.BurnHalfLife)],
            burnIncreaseMult: p[uint256(Param.BurnIncreaseMult)],
            unbondingPeriod: p[uint256(Param.UnbondingPeriod)],
            weightsVersionKey: p[uint256(Param.WeightsVersionKey)]
        });
    }

    function _bounds(Param p) private view returns (uint256 lo, uint256 hi) {
        if (p == Param.Tempo) return (1, _U16_MAX);
        if (p == Param.Kappa || p == Param.BondsPenalty) return (0, _U16_MAX);
        if (p == Param.MaxUids) return (_neuronCount > 0 ? _neuronCount : 1, _UID_LIMIT);
        if (p == Param.MaxValidators) return (1, _UID_LIMIT);
        if (p == Param.MinAllowedWeights) return (0, _UID_LIMIT);
        if (p == Param.RevealPeriod) return (1, 32);
        if (p == Param.BondsMovingAverage) return (0, 1_000_000);
        if (p == Param.LiquidAlphaEnabled) return (0, 1);
        if (p == Param.AlphaLow) return (0, _p(Param.AlphaHigh));
        if (p == Param.AlphaHigh) return (_p(Param.AlphaLow), _U16_MAX);
        if (p == Param.AlphaSigmoidSteepness) return (0, 10_000);
        if (p == Param.ActivityCutoff || p == Param.BurnHalfLife) return (1, _U32_MAX);
        if (p == Param.MinBurn) return (1, _maxBurn);
        if (p == Param.MaxBurn) return (_minBurn, _MAX_BURN_LIMIT);
        if (p == Param.BurnIncreaseMult) return (10_000, 100_000);
        if (p == Param.WeightsVersionKey) return (0, type(uint64).max);
        if (p == Param.ImmunityPeriod || p == Param.UnbondingPeriod) return (0, _MAX_PERIOD);
        // WeightsRateLimit
        return (0, _U32_MAX);
    }

    function _p(Param p) private view returns (uint256) {
        return _params[uint256(p)];
    }

    function _read(Param p) private view returns (uint256) {
        if (p == Param.MinBurn) return _minBurn;
        if (p == Param.MaxBurn) return _maxBurn;
        return _params[uint256(p)];
    }

    /// @dev `value` is within `_bounds(p)`, so every narrowing cast below is lossless.
    function _write(Param p, uint256 value) private {
        if (p == Param.MinBurn) _minBurn = uint128(value);
        else if (p == Param.MaxBurn) _maxBurn = uint128(value);
        else _params[uint256(p)] = uint64(value);
    }

    // ================================================================== reads

    /// @inheritdoc IMetagraph
    function token() external view returns (address) {
        return address(_token);
    }

    /// @inheritdoc IMetagraph
    function neuronCount() external view returns (uint16) {
        return _neuronCount;
    }

    /// @inheritdoc IMetagraph
    function uidOf(address hotkey) external view returns (uint16) {
        return _requireUid(hotkey);
    }

    /// @inheritdoc IMetagraph
    function isRegistered(address hotkey) external view returns (bool) {
        return _uidPlusOne[hotkey] != 0;
    }

    /// @inheritdoc IMetagraph
    function hotkeyOwner(address hotkey) external view returns (address) {
        return _hotkeyOwner[hotkey];
    }

    /// @inheritdoc IMetagraph
    function neurons() external view returns (NeuronView[] memory out) {
        uint256 n = _neuronCount;
        out = new NeuronView[](n);
        uint256 permits = _permits;
        for (uint256 uid; uid < n; ++uid) {
            Neuron memory neuron = _neurons[uid];
            NeuronKeys memory keys = _keys[uid];
            uint256 word = uid >> 4;
            uint256 shift = (uid & 15) << 4;
            out[uid] = NeuronView({
                hotkey: keys.hotkey,
                coldkey: _hotkeyOwner[keys.hotkey],
                stake: neuron.stake,
                emission: _emissionOf(uid),
                registeredAt: neuron.registeredAt,
                lastUpdate: keys.lastUpdate,
                validatorPermit: (permits >> uid) & 1 == 1,
                incentive: uint16(_incentive[word] >> shift),
                dividends: uint16(_dividends[word] >> shift),
                consensus: uint16(_consensus[word] >> shift),
                validatorTrust: uint16(_validatorTrust[word] >> shift),
                endpoint: _endpoints[uid]
            });
        }
    }
}
