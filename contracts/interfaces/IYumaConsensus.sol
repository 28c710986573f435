// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

/// @title IYumaConsensus
/// @notice The subnet's Yuma Consensus epoch, run on-chain: once `tempo` blocks have passed
/// since the last epoch anyone calls `runEpoch(consensus, bonds, rowSums)` repeatedly until `progress()` is
/// Idle; each call advances a phase cursor until its gas budget is used, so no transaction
/// needs more than about 5M gas at 64 validators x 256 uids. The math is `chain/yuma/fixed.py`
/// (bit-exact): a snapshot of the permitted validators' rows (stake, last update, the row
/// sum the Metagraph keeps), then one pass over the uid columns, one packed weight word (16
/// uids) per step, 1-2 uids with liquid alpha (the caller's consensus checked, clipping,
/// ranks, trust, bond EMA, rank-weighted bond sums for dividends; four uids per 256-bit word
/// operation), then the emission split. While an epoch runs the
/// Metagraph refuses registrations and reveals, so all steps read one state. The
/// 5M-per-transaction bound holds up to 64 validator rows (the default `maxValidators`).
/// Bonds are not stored: each epoch logs its new bond words (`BondWords`, 16 u16 per word,
/// one word per validator row and packed word of uids) and keeps their hash (`bondHashes`);
/// the next epoch's caller passes them back to `runEpoch`. Per-uid scores and emission are
/// written to the Metagraph.
///
/// Emission: `emissionPerBlock >> halvings` per block times `tempo`, minted to this contract
/// and capped by the token's supply cap; a halving happens each time the remaining supply
/// falls to half of what remained at the previous one (`cap - supply <= cap >> k`). Escrow
/// fees (any tokens that arrived here since the last epoch and are not owed) join the
/// validators' share. Rewards are credited to each uid (claimable by the hotkey holding it;
/// when the Metagraph gives the uid to a new hotkey, what it earned moves to the old hotkey)
/// and to the subnet owner (the Metagraph's owner): nothing is transferred by the epoch.
interface IYumaConsensus {
    /// @notice Where an epoch in progress stands.
    enum Phase {
        Idle, //    no epoch running
        Rows, //    reading the permitted validators' stake, last update and row sum (16 per step)
        Columns, // one pass over the uid columns, 16 per step (1-2 with liquid alpha)
        Credit //   crediting emission to uids and recording it, 48 uids per step
    }

    /// @notice An epoch started (its snapshot block is this block).
    /// @param epochBlock the snapshot block (the epoch's `current_block`)
    /// @param validators rows (validators holding a permit)
    /// @param uids uid columns (registered neurons)
    /// @param minted tokens minted for this epoch
    /// @param fees escrow fees (unowed tokens received since the last epoch) added to validators
    event EpochStarted(uint64 indexed epochBlock, uint256 validators, uint256 uids, uint256 minted, uint256 fees);

    /// @notice One `runEpoch` call ended.
    /// @param phase the phase it stopped in (Idle: the epoch finished in this call)
    /// @param cursor the position inside that phase
    event EpochProgress(Phase phase, uint256 cursor);

    /// @notice The new bond words of packed word `group` (uid columns `16 * group ..`), one per
    /// row of the epoch (ascending uid), uid column `j` at bits `16 * (j % 16)` as a u16
    /// fraction of 65535. Logged only when one is non-zero. Bonds live here and as a hash
    /// (`bondHashes`), not in storage: the next epoch's caller passes them back to `runEpoch`.
    /// @param epochBlock the snapshot block of the epoch that wrote them
    event BondWords(uint64 indexed epochBlock, uint256 indexed group, uint256[] words);

    /// @notice Where each validator row's sums stand after a column-phase call: trust (low 64
    /// bits) and the rank-weighted bond sum (high 192 bits) per row, rows in ascending uid.
    /// Later calls of the epoch take them back (`runEpoch`'s `rowSums`).
    /// @param epochBlock the running epoch's snapshot block
    /// @param cursor the column cursor the call reached
    event RowSums(uint64 indexed epochBlock, uint256 cursor, uint256[] words);

    /// @notice The epoch finished: every output is recorded and every reward credited.
    /// @param epochBlock the snapshot block
    /// @param distributed minted + fees, all of it credited
    event EpochCompleted(uint64 indexed epochBlock, uint256 distributed);

    /// @notice `account` claimed its rewards.
    /// @param account the hotkey (or the subnet owner) credited
    /// @param recipient the coldkey paid or staked for (the account itself when it has no coldkey)
    /// @param amount tokens
    /// @param staked true: staked to `account` on the Metagraph for `recipient`
    event RewardsClaimed(address indexed account, address indexed recipient, uint256 amount, bool staked);

    /// @notice `runEpoch` was called before `tempo` blocks passed since the last epoch.
    /// @param nextBlock first block at which a new epoch can start
    error YumaConsensusTooEarly(uint64 nextBlock);

    /// @notice Only the account itself or its coldkey may claim its rewards.
    /// @param caller the caller
    /// @param account the account whose rewards were claimed
    error YumaConsensusNotAuthorized(address caller, address account);

    /// @notice Nothing is credited to `account`.
    /// @param account the account
    error YumaConsensusNothingToClaim(address account);

    /// @notice Staking a claim needs a registered hotkey.
    /// @param account the account that is not a registered hotkey
    error YumaConsensusNotAHotkey(address account);

    /// @notice A constructor address is zero.
    error YumaConsensusZeroAddress();

    /// @notice Only the Metagraph may report a replaced uid.
    error YumaConsensusNotMetagraph(address caller);

    /// @notice The column phase needs the consensus vector and this call brought none (and
    /// could do nothing else).
    error YumaConsensusNeedsConsensus();

    /// @notice The consensus vector must hold 8 bytes per uid.
    /// @param expected 8 x uids
    /// @param given the length passed
    error YumaConsensusBadConsensusLength(uint256 expected, uint256 given);

    /// @notice `value` is not the stake-weighted median of uid column `uid`.
    /// @param uid the column
    /// @param value the consensus given for it
    error YumaConsensusWrongConsensus(uint256 uid, uint256 value);

    /// @notice The column phase reached packed word `group`, whose old bond words (see
    /// `runEpoch`) this call did not bring, before it could do anything else.
    error YumaConsensusNeedsBonds(uint256 group);

    /// @notice The old bond words passed for packed word `group` do not hash to `bondHashes`.
    error YumaConsensusWrongBonds(uint256 group);

    /// @notice The call continues the column phase or credits, which need the row sums (see
    /// `runEpoch`), and it brought none before it could do anything else.
    error YumaConsensusNeedsRowSums();

    /// @notice The row sums passed are not 32 bytes per row or do not hash to `rowSumsHash`.
    error YumaConsensusWrongRowSums();

    /// @notice `consensusInputs` is only defined while the epoch is in its column phase.
    /// @param phase the current phase
    error YumaConsensusNotInColumns(Phase phase);

    /// @notice Advances the epoch: starts one when none is running and `tempo` blocks have
    /// passed, then processes steps until this call's gas budget is used. Permissionless.
    /// @param consensus the column phase's consensus vector: for every uid `j < n`, 8 bytes
    /// (big-endian) at byte `8j`, the stake-weighted kappa-median of column `j` in WONE
    /// (`65535 << 16`, see `chain/yuma/fixed.py`), computed off-chain from `consensusInputs()` and the Metagraph's
    /// weights. The contract checks every value against the column in one pass (a wrong one
    /// reverts), which costs a fraction of selecting the median on-chain. Empty outside the
    /// column phase: a call without it stops when it reaches that phase.
    /// @param bonds the old bond words of the packed words the call may reach, from the
    /// column cursor's word (`progress()` cursor / 16) on, in order: for each word `g` whose
    /// `bondHashes()[g]` is non-zero, the words the last epoch logged for it (`BondWords`),
    /// 32 bytes each; nothing for the others. Checked against the hashes (a wrong one
    /// reverts); a call stops at the first word it did not bring. Reading and rewriting
    /// 2 x 768 storage words would cost ~3.8M gas at 64 x 256; as calldata they cost ~0.4M.
    /// @param rowSums the row sums the last column-phase call logged (`RowSums`), needed from
    /// the column phase's second call to the end of the epoch; checked against `rowSumsHash`
    /// (a wrong list reverts). They live in calldata so a call does not read and rewrite a
    /// storage word per validator row (~0.3M gas a call at 64 rows).
    /// @return phase where the epoch stands after the call (Idle: done)
    /// @return cursor the position inside that phase (in the column phase: uid columns done;
    /// a caller can simulate a call to see which packed words it will reach, and send only
    /// their bond words)
    function runEpoch(bytes calldata consensus, bytes calldata bonds, bytes calldata rowSums)
        external
        returns (Phase phase, uint256 cursor);

    /// @notice Pays `account`'s credited rewards to its coldkey (`hotkeyOwner`, or the account
    /// itself when it has none), or stakes them to `account` for that coldkey.
    /// @param account a hotkey, or the subnet owner; the caller must be it or its coldkey
    /// @param stake true: stake on the Metagraph instead of transferring
    /// @return amount tokens claimed
    function claim(address account, bool stake) external returns (uint256 amount);

    /// @notice Rewards credited to `account` and not yet claimed (with what its uid earned
    /// while it holds one).
    function claimable(address account) external view returns (uint256);

    /// @notice Metagraph-only: `uid` is being given to a new hotkey; what it earned and nobody
    /// claimed becomes claimable by `oldHotkey`.
    function onUidReplaced(uint16 uid, address oldHotkey) external;

    /// @notice Tokens held for credited rewards plus the epoch in progress (the rest of this
    /// contract's balance counts as fees at the next epoch's start).
    function reserved() external view returns (uint256);

    /// @notice Phase and cursor of the epoch in progress.
    function progress() external view returns (Phase phase, uint256 cursor);

    /// @notice What the consensus vector of the running epoch is computed from (column phase
    /// only): kappa and, per validator row (ascending uid), its uid, raw stake when active (0
    /// otherwise: not a median participant) and last weight update. With the Metagraph's
    /// weight rows and registration blocks (frozen while an epoch runs) this fixes every
    /// column's median.
    function consensusInputs()
        external
        view
        returns (uint16 kappa, uint16[] memory uids, uint256[] memory rawActive, uint64[] memory lastUpdate);

    /// @notice Snapshot block of the last completed epoch (0: none yet).
    function lastEpochBlock() external view returns (uint64);

    /// @notice First block at which `runEpoch` can start a new epoch.
    function nextEpochBlock() external view returns (uint64);

    /// @notice The rows of the last completed epoch (bit `uid`): the rows its bond words
    /// (`BondWords`) follow, in ascending uid. Other validators start the next epoch from zero
    /// bonds.
    function bondRows() external view returns (uint256);

    /// @notice Per packed word `g` of 16 uid columns: keccak256 of the bond words the last
    /// epoch logged for it (`BondWords`, one 32-byte word per row of `bondRows`, concatenated),
    /// or 0 when they were all zero (the next epoch then takes none for `g`).
    function bondHashes() external view returns (bytes32[16] memory);

    /// @notice keccak256 of the row sums the last column-phase call logged (`RowSums`, the
    /// words concatenated).
    function rowSumsHash() external view returns (bytes32);

    /// @notice The Metagraph this epoch reads and writes.
    function metagraph() external view returns (address);

    /// @notice The SubnetToken it mints and pays.
    function token() external view returns (address);

    /// @notice Base emission per block before halvings (token base units).
    function emissionPerBlock() external view returns (uint256);
}
