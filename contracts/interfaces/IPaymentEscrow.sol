// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

/// @title IPaymentEscrow — renter-to-miner payment channels settled with EIP-712 cumulative vouchers
/// @notice A renter locks a deposit in a channel bound to (renter, miner, token, salt, escrow, chain id)
/// and signs, per request, a voucher `Voucher(bytes32 channelId, uint128 cumulativeAmount)` for the
/// running total it owes. Anyone may `settle` the newest voucher; it credits the channel's miner with
/// `cumulativeAmount - settled`. Credited earnings leave the escrow through `claimEarnings` — one token
/// transfer to the miner for any number of its channels — minus the protocol fee (basis points fixed at
/// open), which accrues per token and is swept to the reward pool in one transfer by `sweepFees`.
/// Settling therefore moves no tokens: it is a single warm storage write plus a signature check, which
/// is what keeps a repeat settle under 45k gas (a token transfer alone costs ~15k).
/// Closing: the renter `requestClose`s, the miner keeps the grace period to settle (settling is
/// accepted while `block.timestamp < closesAt`), after which the channel is final and the renter
/// `withdraw`s `deposit - settled`. The miner may `cooperativeClose` at any time, refunding the
/// renter at once.
interface IPaymentEscrow {
    /// @notice A channel as stored (five slots; the first holds everything `settle` writes).
    /// @param deposit Tokens credited to the channel (what actually arrived; fee-on-transfer aware).
    /// @param settled Highest cumulative voucher amount settled so far (gross, before the fee).
    /// @param closesAt Zero while open; otherwise the timestamp from which the channel is final.
    /// @param feeBps Protocol fee in basis points, snapshotted at open so later changes never apply
    /// retroactively to earned amounts.
    /// @param refunded True once `deposit - settled` has been paid back to the renter.
    /// @param renter Owner of the deposit; signs vouchers (as may the session key).
    /// @param miner Payee of settled vouchers.
    /// @param claimed Gross part of `settled` already paid out (to the miner and to accrued fees).
    /// @param token ERC-20 the channel is denominated in.
    /// @param sessionKey Optional second voucher signer chosen by the renter (zero: none).
    /// @param previousSessionKey The session key `setSessionKey` replaced; its vouchers still
    /// settle until `previousKeyUntil`, so a key change never erases what the renter owes.
    /// @param previousKeyUntil Timestamp until which `previousSessionKey` still signs (one grace
    /// period after the change; the renter cannot change the key again before it).
    struct Channel {
        uint96 deposit;
        uint96 settled;
        uint40 closesAt;
        uint16 feeBps;
        bool refunded;
        address renter;
        address miner;
        uint96 claimed;
        address token;
        address sessionKey;
        address previousSessionKey;
        uint40 previousKeyUntil;
    }

    /// @notice Lifecycle of a channel as seen at the current block.
    enum ChannelStatus {
        None,
        Open,
        Closing,
        Final
    }

    // ---------------------------------------------------------------- errors

    /// @notice A channel with this id already exists; open with another salt.
    error EscrowChannelExists(bytes32 channelId);
    /// @notice No channel has this id.
    error EscrowChannelUnknown(bytes32 channelId);
    /// @notice The miner address is zero.
    error EscrowMinerZero();
    /// @notice The token address has no code (not an ERC-20).
    error EscrowTokenInvalid(address token);
    /// @notice A deposit or top-up credited nothing (zero amount, or a token that delivered nothing).
    error EscrowNothingReceived(bytes32 channelId, uint256 requested);
    /// @notice The channel deposit would not fit in 96 bits.
    error EscrowDepositOverflow(bytes32 channelId, uint256 deposit);
    /// @notice Only the channel's renter may do this.
    error EscrowNotRenter(bytes32 channelId, address caller);
    /// @notice Only the channel's miner may do this.
    error EscrowNotMiner(bytes32 channelId, address caller);
    /// @notice The voucher does not raise the settled amount.
    error EscrowVoucherStale(bytes32 channelId, uint128 cumulative, uint128 settled);
    /// @notice The voucher asks for more than the channel holds.
    error EscrowVoucherExceedsDeposit(bytes32 channelId, uint128 cumulative, uint128 deposit);
    /// @notice The signature is malformed: wrong length, high-s (malleable), bad v, or unrecoverable.
    /// @param reason OpenZeppelin `ECDSA.RecoverError` code (1 invalid, 2 length, 3 high s).
    error EscrowSignatureInvalid(bytes32 channelId, uint8 reason);
    /// @notice The voucher was signed by neither the renter nor the channel's session key.
    error EscrowSignerUnauthorised(bytes32 channelId, address signer);
    /// @notice The channel is final (grace period over, withdrawn or cooperatively closed).
    error EscrowChannelFinal(bytes32 channelId, uint40 closesAt);
    /// @notice The renter already requested close; the channel can no longer be topped up or re-keyed.
    error EscrowChannelClosing(bytes32 channelId, uint40 closesAt);
    /// @notice Withdrawal needs a close request first.
    error EscrowCloseNotRequested(bytes32 channelId);
    /// @notice The miner's grace period has not ended yet.
    error EscrowGracePeriodActive(bytes32 channelId, uint40 closesAt, uint256 timestamp);
    /// @notice The remainder was already paid back to the renter.
    error EscrowAlreadyWithdrawn(bytes32 channelId);
    /// @notice The renter changed the session key less than a grace period ago; the replaced
    /// key still signs until `until`, and a second change would cut that short.
    error EscrowSessionKeyChangePending(bytes32 channelId, uint40 until);
    /// @notice `settleMany` arrays differ in length.
    error EscrowBatchLengthMismatch(uint256 channels, uint256 amounts, uint256 signatures);
    /// @notice `claimEarnings` mixes channels of different miners or tokens.
    error EscrowBatchMixed(bytes32 channelId, address miner, address token);
    /// @notice The protocol fee exceeds the hard cap.
    error EscrowFeeTooHigh(uint16 feeBps, uint16 maxFeeBps);
    /// @notice The grace period is outside the allowed range.
    error EscrowGracePeriodOutOfRange(uint32 gracePeriod, uint32 minimum, uint32 maximum);
    /// @notice The reward pool address is zero.
    error EscrowRewardPoolZero();

    // ---------------------------------------------------------------- events

    /// @notice A channel was opened with `deposit` tokens credited.
    event ChannelOpened(
        bytes32 indexed channelId,
        address indexed renter,
        address indexed miner,
        address token,
        bytes32 salt,
        uint256 deposit,
        uint16 feeBps
    );
    /// @notice The renter added `amount` (as credited); the deposit is now `deposit`.
    event ChannelToppedUp(bytes32 indexed channelId, uint256 amount, uint256 deposit);
    /// @notice The renter set (or cleared, with zero) the channel's session key; the replaced key
    /// keeps signing until `previousKeyUntil` (zero when there was none).
    event SessionKeySet(bytes32 indexed channelId, address sessionKey, uint40 previousKeyUntil);
    /// @notice `settleMany` skipped a voucher that another settlement or the channel's end made
    /// unsettleable since it was signed (settled at or above it, or final).
    event VoucherSkipped(bytes32 indexed channelId, uint128 cumulative, uint96 settled);
    /// @notice A voucher raised the settled total to `cumulative`; `amount` gross was credited to the
    /// miner, of which `fee` is owed to the reward pool.
    event VoucherSettled(bytes32 indexed channelId, uint128 cumulative, uint256 amount, uint256 fee);
    /// @notice The renter asked to close; the channel becomes final at `closesAt`.
    event CloseRequested(bytes32 indexed channelId, uint40 closesAt);
    /// @notice The remainder `refund` went back to the renter; the channel is final.
    event ChannelClosed(bytes32 indexed channelId, uint256 refund, bool cooperative);
    /// @notice `paid` tokens went to `miner`; `fee` tokens were added to the accrued protocol fees.
    event EarningsClaimed(address indexed miner, address indexed token, uint256 paid, uint256 fee);
    /// @notice Accrued protocol fees in `token` were transferred to the reward pool.
    event FeesSwept(address indexed token, address indexed rewardPool, uint256 amount);
    /// @notice The protocol fee for newly opened channels changed.
    event ProtocolFeeSet(uint16 feeBps);
    /// @notice The grace period for new close requests changed.
    event GracePeriodSet(uint32 gracePeriod);
    /// @notice The address receiving swept fees changed.
    event RewardPoolSet(address rewardPool);

    // ---------------------------------------------------------------- renter

    /// @notice Open a channel from `msg.sender` (the renter) to `miner`, pulling `amount` of `token`
    /// (needs an allowance). The deposit credited is what actually arrived.
    /// @return channelId `channelIdOf(msg.sender, miner, token, salt)`.
    function open(address miner, address token, bytes32 salt, uint256 amount) external returns (bytes32 channelId);

    /// @notice `open` preceded by an ERC-2612 `permit`. A permit that fails (for instance because
    /// someone front-ran it) is ignored; the open then succeeds if the allowance is in place.
    function openWithPermit(
        address miner,
        address token,
        bytes32 salt,
        uint256 amount,
        uint256 deadline,
        uint8 v,
        bytes32 r,
        bytes32 s
    ) external returns (bytes32 channelId);

    /// @notice Add `amount` of the channel's token to an open channel (renter only).
    function topUp(bytes32 channelId, uint256 amount) external;

    /// @notice Let `sessionKey` sign vouchers for the renter on this channel (zero clears it).
    /// The replaced key keeps signing for one grace period, so vouchers the miner already
    /// accepted stay settleable; no further change is allowed until then.
    function setSessionKey(bytes32 channelId, address sessionKey) external;

    /// @notice Start the miner's grace period; the channel becomes final after it.
    function requestClose(bytes32 channelId) external;

    /// @notice Pay `deposit - settled` back to the renter once the channel is final. Callable by anyone.
    function withdraw(bytes32 channelId) external;

    // ---------------------------------------------------------------- miner

    /// @notice Settle a voucher: credit the channel's miner with `cumulativeAmount - settled`.
    /// Callable by anyone; only the miner ever benefits.
    function settle(bytes32 channelId, uint128 cumulativeAmount, bytes calldata signature) external;

    /// @notice `settle` for several channels in one transaction. A voucher that has become
    /// unsettleable by a race (already settled at or above it by someone else, or the channel
    /// turned final) is skipped with `VoucherSkipped`; any other invalid voucher reverts all.
    /// @return settledCount Vouchers settled (the others were skipped).
    function settleMany(
        bytes32[] calldata channelIds,
        uint128[] calldata cumulativeAmounts,
        bytes[] calldata signatures
    ) external returns (uint256 settledCount);

    /// @notice Pay out settled-but-unclaimed earnings of channels sharing one miner and one token:
    /// one transfer to the miner (net of fee); the fee is added to the accrued fees. Callable by anyone.
    /// @return paid Tokens transferred to the miner.
    function claimEarnings(bytes32[] calldata channelIds) external returns (uint256 paid);

    /// @notice Miner-initiated close at any time: settles `cumulativeAmount` if `signature` is
    /// non-empty, pays the miner's unclaimed earnings and refunds the renter, making the channel final.
    function cooperativeClose(bytes32 channelId, uint128 cumulativeAmount, bytes calldata signature) external;

    // ---------------------------------------------------------------- protocol

    /// @notice Transfer all accrued fees in `token` to the reward pool. Callable by anyone.
    /// @return amount Tokens swept.
    function sweepFees(address token) external returns (uint256 amount);

    /// @notice Set the protocol fee for channels opened from now on (owner only, <= `MAX_FEE_BPS`).
    function setProtocolFee(uint16 feeBps) external;

    /// @notice Set the grace period for close requests made from now on (owner only, bounded).
    function setGracePeriod(uint32 gracePeriod) external;

    /// @notice Set the address that receives swept fees (owner only).
    function setRewardPool(address rewardPool) external;

    // ---------------------------------------------------------------- views

    /// @notice The id a channel of these parties has on this escrow and chain.
    function channelIdOf(address renter, address miner, address token, bytes32 salt) external view returns (bytes32);

    /// @notice The stored channel (all zero when unknown).
    function getChannel(bytes32 channelId) external view returns (Channel memory);

    /// @notice The channel's lifecycle status at this block.
    function channelStatus(bytes32 channelId) external view returns (ChannelStatus);

    /// @notice EIP-712 digest the renter (or session key) signs for a voucher.
    function voucherDigest(bytes32 channelId, uint128 cumulativeAmount) external view returns (bytes32);

    /// @notice Fees accrued in `token` and not yet swept.
    function accruedFees(address token) external view returns (uint256);

    /// @notice Protocol fee (basis points) for channels opened now.
    function protocolFeeBps() external view returns (uint16);

    /// @notice Grace period (seconds) for close requests made now.
    function gracePeriod() external view returns (uint32);

    /// @notice Address receiving swept fees.
    function rewardPool() external view returns (address);
}
