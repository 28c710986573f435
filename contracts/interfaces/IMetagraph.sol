// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

/// @title IMetagraph
/// @notice The subnet's on-chain metagraph, after subtensor's `pallets/subtensor`: up to
/// `maxUids` neurons registered by burning SubnetToken, stake bonded to hotkeys, validator
/// permits for the top `maxValidators` hotkeys by stake, and commit-reveal weights stored as
/// packed u16 rows. The Yuma Consensus epoch (a separate contract named by the owner) reads
/// this storage through the views below and writes its per-uid outputs back.
///
/// Units: blocks are `block.number`; token amounts are SubnetToken base units (18 decimals);
/// u16 fractions are of 65535 (subtensor convention). A "window" is `block.number / tempo`.
interface IMetagraph {
    // ------------------------------------------------------------------ types

    /// @notice Owner-settable hyperparameters; `setHyperparameter` names them by this enum.
    enum Param {
        Tempo, //                 blocks per epoch and per commit-reveal window
        Kappa, //                 consensus majority, u16 fraction
        ImmunityPeriod, //        blocks a new neuron cannot be pruned
        MaxUids, //               neuron slots (<= 256, >= current neuron count)
        MaxValidators, //         validator permits (top-K by stake)
        MinAllowedWeights, //     minimum entries per revealed weight set (capped at neuron count)
        WeightsRateLimit, //      blocks between two reveals of one validator
        RevealPeriod, //          windows between commit and reveal
        BondsMovingAverage, //    per million
        BondsPenalty, //          u16 fraction
        LiquidAlphaEnabled, //    0 or 1
        AlphaLow, //              u16 fraction
        AlphaHigh, //             u16 fraction
        AlphaSigmoidSteepness, // x100
        ActivityCutoff, //        blocks
        MinBurn, //               token base units
        MaxBurn, //               token base units
        BurnHalfLife, //          blocks for the registration price to halve
        BurnIncreaseMult, //      basis points applied per registration (12600 = x1.26)
        UnbondingPeriod, //       blocks between unstake and claim
        WeightsVersionKey //      minimum version key of revealed weights
    }

    /// @notice All hyperparameters at once (what `hyperparameters()` returns).
    struct Hyperparameters {
        uint64 tempo;
        uint64 kappa;
        uint64 immunityPeriod;
        uint64 maxUids;
        uint64 maxValidators;
        uint64 minAllowedWeights;
        uint64 weightsRateLimit;
        uint64 revealPeriod;
        uint64 bondsMovingAverage;
        uint64 bondsPenalty;
        bool liquidAlphaEnabled;
        uint64 alphaLow;
        uint64 alphaHigh;
        uint64 alphaSigmoidSteepness;
        uint64 activityCutoff;
        uint128 minBurn;
        uint128 maxBurn;
        uint64 burnHalfLife;
        uint64 burnIncreaseMult;
        uint64 unbondingPeriod;
        uint64 weightsVersionKey;
    }

    /// @notice One uid as the snapshot reader sees it (`neurons()`).
    struct NeuronView {
        address hotkey;
        address coldkey;
        uint256 stake;
        uint256 emission;
        uint64 registeredAt;
        uint64 lastUpdate;
        bool validatorPermit;
        uint16 incentive;
        uint16 dividends;
        uint16 consensus;
        uint16 validatorTrust;
        string endpoint;
    }

    /// @notice A pending weight commit.
    struct WeightCommit {
        bytes32 hash;
        uint64 block;
    }

    // ------------------------------------------------------------------ events

    /// @notice `hotkey` (owned by `coldkey`) took `uid`, burning `burned` tokens.
    /// @param uid the slot taken
    /// @param hotkey the neuron's operating key
    /// @param coldkey the key that paid and owns the hotkey
    /// @param burned tokens destroyed
    /// @param replacedHotkey the hotkey pruned from `uid`, or address(0) when the slot was free
    event NeuronRegistered(
        uint16 indexed uid, address indexed hotkey, address indexed coldkey, uint256 burned, address replacedHotkey
    );

    /// @notice The hotkey of `uid` announced a new endpoint URL.
    /// @param uid the neuron
    /// @param endpoint the URL miners serve on (may be empty)
    event EndpointSet(uint16 indexed uid, string endpoint);

    /// @notice `coldkey` bonded `amount` to `hotkey`.
    /// @param coldkey the staker
    /// @param hotkey the hotkey staked to
    /// @param amount tokens added
    /// @param hotkeyStake the hotkey's total stake afterwards
    event StakeAdded(address indexed coldkey, address indexed hotkey, uint256 amount, uint256 hotkeyStake);

    /// @notice `coldkey` unbonded `amount` from `hotkey`; claimable from `releaseBlock`.
    /// @param coldkey the staker
    /// @param hotkey the hotkey unstaked from
    /// @param amount tokens moved to unbonding
    /// @param hotkeyStake the hotkey's total stake afterwards
    /// @param releaseBlock first block at which the coldkey's whole unbonding balance is claimable
    event StakeRemoved(
        address indexed coldkey, address indexed hotkey, uint256 amount, uint256 hotkeyStake, uint64 releaseBlock
    );

    /// @notice `coldkey` withdrew `amount` of unbonded tokens.
    /// @param coldkey the staker
    /// @param amount tokens sent back
    event UnbondedClaimed(address indexed coldkey, uint256 amount);

    /// @notice Validator permits were recomputed.
    /// @param permits bitmap of uids holding a permit (bit `uid`)
    /// @param count number of permits
    event ValidatorPermitsUpdated(uint256 permits, uint256 count);

    /// @notice The hotkey of `uid` committed to a weight set.
    /// @param uid the validator
    /// @param hash `keccak256(abi.encode(hotkey, uids, values, salt, versionKey))`
    /// @param revealWindow the window (`block.number / tempo`) in which it must be revealed
    event WeightsCommitted(uint16 indexed uid, bytes32 hash, uint64 revealWindow);

    /// @notice The hotkey of `uid` revealed its weights; the stored row changed.
    /// @param uid the validator
    /// @param count entries submitted
    /// @param dropped entries dropped because their uid was registered at or after the commit
    event WeightsRevealed(uint16 indexed uid, uint256 count, uint256 dropped);

    /// @notice The owner changed a hyperparameter.
    /// @param param which one
    /// @param oldValue the previous value
    /// @param newValue the new value
    event HyperparameterSet(Param indexed param, uint256 oldValue, uint256 newValue);

    /// @notice The owner named the epoch contract allowed to write epoch outputs and permits.
    /// @param previousEpoch the former epoch contract (address(0): none)
    /// @param newEpoch the new epoch contract (address(0): permits recomputed by anyone once per tempo)
    event EpochContractSet(address indexed previousEpoch, address indexed newEpoch);

    /// @notice The owner proposed to replace the epoch contract; `setEpochContract(newEpoch)`
    /// takes effect from `readyBlock` (stakers and miners see the switch coming).
    /// @param newEpoch the proposed epoch contract
    /// @param readyBlock first block at which the switch may be completed
    event EpochContractProposed(address indexed newEpoch, uint64 readyBlock);

    /// @notice The epoch contract recorded its per-uid outputs.
    /// @param firstUid first uid whose emission was written
    /// @param count number of emissions written
    event EpochResultsRecorded(uint16 firstUid, uint256 count);

    // ------------------------------------------------------------------ errors

    /// @notice `hotkey` is already registered at `uid`.
    /// @param hotkey the hotkey
    /// @param uid its current uid
    error MetagraphHotkeyAlreadyRegistered(address hotkey, uint16 uid);

    /// @notice Registering `hotkey` for `coldkey` needs the hotkey's consent: the hotkey itself
    /// calls `register`, or the coldkey calls `registerWithConsent` with the hotkey's signature.
    /// @param hotkey the hotkey
    /// @param coldkey the caller that would own it
    error MetagraphHotkeyConsentRequired(address hotkey, address coldkey);

    /// @notice The hotkey's consent signature is past its deadline.
    /// @param deadline the signed deadline (unix seconds)
    error MetagraphConsentExpired(uint256 deadline);

    /// @notice The consent signature is not the hotkey's for this coldkey, nonce and deadline.
    /// @param hotkey the hotkey that should have signed
    error MetagraphConsentInvalid(address hotkey);

    /// @notice The epoch-contract switch is not ready yet.
    /// @param pending the proposed contract
    /// @param readyBlock first block at which it may be completed
    error MetagraphEpochSwitchNotReady(address pending, uint64 readyBlock);

    /// @notice `hotkey` belongs to another coldkey (hotkeys are bound at first registration).
    /// @param hotkey the hotkey
    /// @param owner the coldkey that owns it
    error MetagraphHotkeyOwnedByOther(address hotkey, address owner);

    /// @notice `hotkey` holds no uid.
    /// @param hotkey the key that is not registered
    error MetagraphHotkeyNotRegistered(address hotkey);

    /// @notice The hotkey must not be the zero address.
    error MetagraphZeroHotkey();

    /// @notice The registration price exceeds the caller's limit.
    /// @param price the current burn price
    /// @param maxPrice the most the caller accepted
    error MetagraphPriceAboveLimit(uint256 price, uint256 maxPrice);

    /// @notice The subnet is full and every neuron is inside its immunity period.
    /// @param immuneUntil the first block at which some neuron leaves immunity
    error MetagraphAllNeuronsImmune(uint64 immuneUntil);

    /// @notice The endpoint string is longer than allowed.
    /// @param length its length in bytes
    /// @param maxLength the limit
    error MetagraphEndpointTooLong(uint256 length, uint256 maxLength);

    /// @notice Stake amounts must be positive.
    error MetagraphZeroAmount();

    /// @notice `coldkey` tried to unstake more than it has on `hotkey`.
    /// @param coldkey the staker
    /// @param hotkey the hotkey
    /// @param staked what it has staked there
    /// @param requested what it asked to unstake
    error MetagraphInsufficientStake(address coldkey, address hotkey, uint256 staked, uint256 requested);

    /// @notice The unbonding period has not elapsed.
    /// @param releaseBlock first block at which the claim succeeds
    /// @param currentBlock now
    error MetagraphUnbondingNotElapsed(uint64 releaseBlock, uint64 currentBlock);

    /// @notice The caller has nothing unbonding.
    /// @param coldkey the caller
    error MetagraphNothingToClaim(address coldkey);

    /// @notice Permits were recomputed less than a tempo ago.
    /// @param nextBlock first block at which `updatePermits` succeeds
    error MetagraphPermitUpdateTooSoon(uint64 nextBlock);

    /// @notice An epoch contract manages permits; `updatePermits` is disabled.
    /// @param epoch the epoch contract
    error MetagraphPermitsManagedByEpoch(address epoch);

    /// @notice Only the epoch contract may call this.
    /// @param caller the caller
    /// @param epoch the epoch contract (address(0): none set)
    error MetagraphNotEpoch(address caller, address epoch);

    /// @notice The hotkey of `uid` has no pending commit.
    /// @param uid the validator
    error MetagraphNoCommit(uint16 uid);

    /// @notice The reveal comes before its window.
    /// @param currentWindow the current window
    /// @param revealWindow the window in which the reveal is accepted
    error MetagraphRevealTooEarly(uint64 currentWindow, uint64 revealWindow);

    /// @notice The reveal window has passed; commit again.
    /// @param currentWindow the current window
    /// @param revealWindow the window in which the reveal was accepted
    error MetagraphRevealExpired(uint64 currentWindow, uint64 revealWindow);

    /// @notice The revealed data does not hash to the commit (wrong salt, values or order).
    /// @param committed the committed hash
    /// @param revealed the hash of the revealed data
    error MetagraphCommitMismatch(bytes32 committed, bytes32 revealed);

    /// @notice The validator holds no validator permit.
    /// @param uid the validator
    error MetagraphNoValidatorPermit(uint16 uid);

    /// @notice The weights' version key is below the subnet's.
    /// @param versionKey the revealed version key
    /// @param required the subnet's `weightsVersionKey`
    error MetagraphVersionKeyTooLow(uint64 versionKey, uint64 required);

    /// @notice Weights were set too recently.
    /// @param lastUpdate the validator's last weight update
    /// @param nextBlock first block at which weights may be set again
    error MetagraphWeightsRateLimited(uint64 lastUpdate, uint64 nextBlock);

    /// @notice `uids` and `values` must be packed u16 arrays of equal length.
    /// @param uidsBytes byte length of `uids`
    /// @param valuesBytes byte length of `values`
    error MetagraphMalformedWeights(uint256 uidsBytes, uint256 valuesBytes);

    /// @notice Fewer weights than `min(minAllowedWeights, neuron count)`.
    /// @param count entries submitted
    /// @param required entries required
    error MetagraphTooFewWeights(uint256 count, uint256 required);

    /// @notice A uid is not registered.
    /// @param uid the uid
    /// @param neuronCount the number of registered uids
    error MetagraphUidOutOfRange(uint16 uid, uint256 neuronCount);

    /// @notice A uid appears twice in one weight set.
    /// @param uid the duplicated uid
    error MetagraphDuplicateUid(uint16 uid);

    /// @notice A hyperparameter value is outside its bounds.
    /// @param param which one
    /// @param value the rejected value
    /// @param min the smallest allowed value
    /// @param max the largest allowed value
    error MetagraphHyperparameterOutOfBounds(Param param, uint256 value, uint256 min, uint256 max);

    /// @notice An epoch is being processed (a few blocks); retry after it completes.
    error MetagraphEpochInProgress();

    /// @notice An epoch write addressed uids past the neuron count.
    /// @param firstUid first uid written
    /// @param count entries written
    /// @param neuronCount the number of registered uids
    error MetagraphEpochRangeInvalid(uint16 firstUid, uint256 count, uint256 neuronCount);

    // ------------------------------------------------------------------ registration

    /// @notice Registers `hotkey` (owned by the caller, its coldkey) by burning the current price
    /// from the caller (needs a SubnetToken allowance). Takes the next free uid, or when the subnet
    /// is full replaces the non-immune uid with the lowest emission (ties: earlier registration,
    /// then lower uid). The price then rises by `burnIncreaseMult`.
    /// @param hotkey the neuron's operating key
    /// @param endpoint the URL the neuron serves on (may be empty; the hotkey may change it)
    /// @param maxPrice the most the caller accepts to burn
    /// @return uid the slot taken
    /// @return burned tokens destroyed
    /// The hotkey must consent: it is the caller (coldkey = hotkey), or it is already owned by
    /// the caller (a re-registration), or the caller uses `registerWithConsent`.
    function register(address hotkey, string calldata endpoint, uint256 maxPrice)
        external
        returns (uint16 uid, uint256 burned);

    /// @notice `register` for a hotkey that is not the caller: `signature` is the hotkey's
    /// EIP-712 `RegisterConsent(address hotkey,address coldkey,uint256 nonce,uint256 deadline)`
    /// over this contract and chain, `coldkey` the caller and `nonce` `consentNonce(hotkey)`
    /// (used up by the registration). Stops anyone from registering a key they do not hold
    /// (someone else's hotkey, or the subnet owner's address) and owning what it earns.
    /// @param deadline last unix second at which the consent is valid
    /// @param signature the hotkey's 65-byte signature (or an ERC-1271 contract's)
    function registerWithConsent(
        address hotkey,
        string calldata endpoint,
        uint256 maxPrice,
        uint256 deadline,
        bytes calldata signature
    ) external returns (uint16 uid, uint256 burned);

    /// @notice The nonce the next consent of `hotkey` must sign.
    function consentNonce(address hotkey) external view returns (uint256);

    /// @notice Block at which `uid`'s current hotkey registered.
    function registeredAt(uint16 uid) external view returns (uint64);

    /// @notice The caller (a registered hotkey) announces a new endpoint URL.
    function setEndpoint(string calldata endpoint) external;

    /// @notice The price `register` would burn in this block.
    function registrationPrice() external view returns (uint256);

    /// @notice The lazily decayed price state: `price` stored at `checkpointBlock` (after the last
    /// registration or burn-parameter change) and the per-block decay factor in Q64.
    function burnState() external view returns (uint256 price, uint64 checkpointBlock, uint64 decayFactorQ64);

    /// @notice The uid `register` would take when the subnet is full (reverts when all are immune;
    /// returns the next free uid when not full).
    function nextRegistrationUid() external view returns (uint16);

    // ------------------------------------------------------------------ staking

    /// @notice The caller (a coldkey) bonds `amount` to a registered `hotkey` (any coldkey may
    /// stake to any hotkey: delegation). Needs a SubnetToken allowance.
    function addStake(address hotkey, uint256 amount) external;

    /// @notice Like `addStake`, but the stake belongs to `coldkey`; the caller pays (used by the
    /// epoch contract to stake claimed rewards on a coldkey's behalf).
    function addStakeFor(address coldkey, address hotkey, uint256 amount) external;

    /// @notice The caller unbonds `amount` from `hotkey`; the tokens are claimable once
    /// `unbondingPeriod` blocks have passed (the release block of the caller's whole unbonding
    /// balance moves to now + unbondingPeriod).
    function removeStake(address hotkey, uint256 amount) external;

    /// @notice Sends the caller its unbonded tokens once the release block is reached.
    /// @return amount tokens sent
    function claimUnbonded() external returns (uint256 amount);

    /// @notice Stake `coldkey` has bonded to `hotkey`.
    function stakeOf(address coldkey, address hotkey) external view returns (uint256);

    /// @notice Total stake bonded to `hotkey`.
    function hotkeyStake(address hotkey) external view returns (uint256);

    /// @notice Total stake bonded across all hotkeys.
    function totalStake() external view returns (uint256);

    /// @notice Tokens unbonding across all coldkeys.
    function totalUnbonding() external view returns (uint256);

    /// @notice `coldkey`'s unbonding balance and the block from which it is claimable.
    function unbonding(address coldkey) external view returns (uint256 amount, uint64 releaseBlock);

    // ------------------------------------------------------------------ permits

    /// @notice Recomputes validator permits (top `maxValidators` registered hotkeys by stake,
    /// stake > 0, ties to the lower uid). Permissionless, at most once per `tempo` blocks, and only
    /// while no epoch contract is set; afterwards the epoch recomputes permits each epoch.
    function updatePermits() external;

    /// @notice The epoch contract's permit recomputation (same rule, no rate limit).
    /// @return permits bitmap of permitted uids
    function recomputePermits() external returns (uint256 permits);

    /// @notice Bitmap of uids holding a validator permit (bit `uid`).
    function validatorPermits() external view returns (uint256);

    // ------------------------------------------------------------------ weights

    /// @notice The caller (a registered hotkey) commits to a weight set; replaces any pending
    /// commit. Reveal in window `block.number / tempo + revealPeriod`.
    /// @param hash `keccak256(abi.encode(hotkey, uids, values, salt, versionKey))` with `uids` and
    /// `values` the exact `bytes` later passed to `revealWeights`
    function commitWeights(bytes32 hash) external;

    /// @notice Reveals the pending commit and stores the weights as a max-upscaled u16 row.
    /// Entries on uids registered at or after the commit block are dropped (set to 0).
    /// @param uids big-endian packed u16 uids (2 bytes each), any order, no duplicates
    /// @param values big-endian packed u16 weights, one per uid
    /// @param salt the commit's salt
    /// @param versionKey must be >= `weightsVersionKey`
    function revealWeights(bytes calldata uids, bytes calldata values, bytes32 salt, uint64 versionKey) external;

    /// @notice The pending commit of `uid` (zero hash: none).
    function weightCommit(uint16 uid) external view returns (WeightCommit memory);

    /// @notice The stored weight row of validator `uid`: 16 words, word `j / 16` holds uid `j`'s u16
    /// at bits `16 * (j % 16)`.
    function weightRow(uint16 uid) external view returns (uint256[16] memory);

    // ------------------------------------------------------------------ epoch interface

    /// @notice What the epoch reads about each validator row, one word per uid: stake (bits
    /// 0-95) | last weight update (96-159) | sum of the stored weight row without the uid's own
    /// lane (160-191) | bit w set when weight word w is non-zero (192-207).
    function epochRowKeys(uint16[] calldata uids) external view returns (uint256[] memory rows);

    /// @notice Word `word` of the weight row of each of `uids`.
    function epochWords(uint16[] calldata uids, uint256 word) external view returns (uint256[] memory words);

    /// @notice Hotkeys of uids `firstUid .. firstUid + count - 1` (address(0) for a free slot).
    function hotkeys(uint16 firstUid, uint256 count) external view returns (address[] memory keys);

    /// @notice Registration block of every registered uid (index = uid).
    function registrationBlocks() external view returns (uint64[] memory);

    /// @notice Epoch-only: records per-uid u16 outputs (packed 16 per word like weight rows).
    function recordEpochScores(
        uint256[16] calldata incentive,
        uint256[16] calldata dividends,
        uint256[16] calldata consensus,
        uint256[16] calldata validatorTrust
    ) external;

    /// @notice Epoch-only: records the emission of uids `firstUid ..` (used by pruning).
    function recordEmission(uint16 firstUid, uint96[] calldata emission) external;

    /// @notice Epoch-only: marks an epoch in progress; while set, `register` and `revealWeights`
    /// revert `MetagraphEpochInProgress` (so a chunked epoch reads one consistent state).
    function setEpochRunning(bool running) external;

    /// @notice Owner: names the epoch contract (address(0) re-enables `updatePermits`); clears
    /// the epoch-in-progress mark. The first one takes effect at once; replacing it is
    /// time-locked: the first call proposes (`EpochContractProposed`), a call with the same
    /// address from `EPOCH_SWITCH_DELAY` blocks later completes the switch.
    function setEpochContract(address epoch) external;

    /// @notice Block from which the current epoch contract is in charge (0: none yet). Replaced
    /// contracts keep being told of uid replacements, so what a uid earned there is moved to the
    /// hotkey that earned it, never to the uid's next holder.
    function epochContractSince() external view returns (uint64);

    /// @notice The proposed epoch contract and the block from which it may take over.
    function pendingEpochContract() external view returns (address epoch, uint64 readyBlock);

    /// @notice The epoch contract, or address(0).
    function epochContract() external view returns (address);

    // ------------------------------------------------------------------ reads

    /// @notice Sets one hyperparameter; only the subnet owner, bounded, emits `HyperparameterSet`.
    function setHyperparameter(Param param, uint256 value) external;

    /// @notice Every hyperparameter.
    function hyperparameters() external view returns (Hyperparameters memory);

    /// @notice The SubnetToken burned by registration and bonded by stake.
    function token() external view returns (address);

    /// @notice Number of registered uids (uids are `0 .. neuronCount - 1`).
    function neuronCount() external view returns (uint16);

    /// @notice uid of `hotkey`; reverts `MetagraphHotkeyNotRegistered` when it has none.
    function uidOf(address hotkey) external view returns (uint16);

    /// @notice Whether `hotkey` holds a uid.
    function isRegistered(address hotkey) external view returns (bool);

    /// @notice The coldkey that owns `hotkey` (address(0): never registered).
    function hotkeyOwner(address hotkey) external view returns (address);

    /// @notice Every registered uid in one call (the snapshot reader's batched read).
    function neurons() external view returns (NeuronView[] memory);
}
