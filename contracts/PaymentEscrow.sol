// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

import {Ownable} from "@openzeppelin/contracts/access/Ownable.sol";
import {Ownable2Step} from "@openzeppelin/contracts/access/Ownable2Step.sol";
import {IERC20} from "@openzeppelin/contracts/token/ERC20/IERC20.sol";
import {IERC20Permit} from "@openzeppelin/contracts/token/ERC20/extensions/IERC20Permit.sol";
import {SafeERC20} from "@openzeppelin/contracts/token/ERC20/utils/SafeERC20.sol";
import {ECDSA} from "@openzeppelin/contracts/utils/cryptography/ECDSA.sol";
import {EIP712} from "@openzeppelin/contracts/utils/cryptography/EIP712.sol";
import {ReentrancyGuardTransient} from "@openzeppelin/contracts/utils/ReentrancyGuardTransient.sol";

import {IPaymentEscrow} from "./interfaces/IPaymentEscrow.sol";
import {EscrowFeeMath} from "./libraries/EscrowFeeMath.sol";

/// @title PaymentEscrow — renter-to-miner channels with EIP-712 cumulative vouchers
/// @notice See {IPaymentEscrow}. Gas design: `settle` touches two channel slots (slot 0 holds
/// deposit, settled, closesAt, feeBps and the refund flag — everything it checks or writes — and
/// slot 1 the renter) and makes no external call besides the ecrecover precompile; tokens leave
/// the escrow only in `claimEarnings`, `withdraw`, `cooperativeClose` and `sweepFees`.
/// @dev Every function that moves tokens is `nonReentrant` and applies its effects (and events)
/// before the transfer. Deposits are credited by balance delta, which requires the transfer to
/// come before the credit; the guard is what makes that safe (a reentrant deposit during the
/// pull would otherwise be counted twice).
contract PaymentEscrow is IPaymentEscrow, EIP712, Ownable2Step, ReentrancyGuardTransient {
    using SafeERC20 for IERC20;

    /// @notice EIP-712 type hash of `Voucher(bytes32 channelId,uint128 cumulativeAmount)`.
    bytes32 public constant VOUCHER_TYPEHASH = keccak256("Voucher(bytes32 channelId,uint128 cumulativeAmount)");
    /// @notice Hard cap on the protocol fee: 10%.
    uint16 public constant MAX_FEE_BPS = 1_000;
    /// @notice Shortest grace period the owner may set: 15 minutes.
    uint32 public constant MIN_GRACE_PERIOD = 15 minutes;
    /// @notice Longest grace period the owner may set: 30 days.
    uint32 public constant MAX_GRACE_PERIOD = 30 days;

    mapping(bytes32 channelId => Channel) private _channels;
    mapping(address token => uint256) private _accruedFees;

    // One slot: read by open (fee), requestClose (grace) and sweepFees (pool).
    address private _rewardPool;
    uint16 private _protocolFeeBps;
    uint32 private _gracePeriod;

    /// @param initialOwner Owner (sets fee, grace period, reward pool).
    /// @param rewardPool_ Receiver of swept protocol fees.
    /// @param feeBps Protocol fee for new channels, at most `MAX_FEE_BPS`.
    /// @param gracePeriod_ Miner grace period after a close request, within the bounds.
    constructor(
        address initialOwner,
        address rewardPool_,
        uint16 feeBps,
        uint32 gracePeriod_
    ) EIP712("Latent PaymentEscrow", "1") Ownable(initialOwner) {
        _setRewardPool(rewardPool_);
        _setProtocolFee(feeBps);
        _setGracePeriod(gracePeriod_);
    }

    // ================================================================ renter

    /// @inheritdoc IPaymentEscrow
    function open(
        address miner,
        address token,
        bytes32 salt,
        uint256 amount
    ) external nonReentrant returns (bytes32 channelId) {
        return _open(miner, token, salt, amount);
    }

    /// @inheritdoc IPaymentEscrow
    function openWithPermit(
        address miner,
        address token,
        bytes32 salt,
        uint256 amount,
        uint256 deadline,
        uint8 v,
        bytes32 r,
        bytes32 s
    ) external nonReentrant returns (bytes32 channelId) {
        // A permit can be front-run (its signature is public once in the mempool): the front-runner's
        // call sets the same allowance and ours reverts on the used nonce. Ignore the failure; the
        // transferFrom in `_open` then decides, with the allowance that is actually there.
        try IERC20Permit(token).permit(msg.sender, address(this), amount, deadline, v, r, s) {} catch {}
        return _open(miner, token, salt, amount);
    }

    /// @inheritdoc IPaymentEscrow
    function topUp(bytes32 channelId, uint256 amount) external nonReentrant {
        Channel storage c = _channels[channelId];
        _requireRenter(channelId, c);
        uint40 closesAt = c.closesAt;
        if (closesAt != 0) revert EscrowChannelClosing(channelId, closesAt);
        uint256 received = _pull(channelId, IERC20(c.token), amount);
        uint256 deposit = c.deposit + received;
        if (deposit > type(uint96).max) revert EscrowDepositOverflow(channelId, deposit);
        c.deposit = uint96(deposit);
        emit ChannelToppedUp(channelId, received, deposit);
    }

    /// @inheritdoc IPaymentEscrow
    function setSessionKey(bytes32 channelId, address sessionKey) external {
        Channel storage c = _channels[channelId];
        _requireRenter(channelId, c);
        uint40 closesAt = c.closesAt;
        if (closesAt != 0) revert EscrowChannelClosing(channelId, closesAt);
        uint40 until = c.previousKeyUntil;
        if (block.timestamp < until) revert EscrowSessionKeyChangePending(channelId, until);
        address current = c.sessionKey;
        if (current != address(0)) {
            // The replaced key keeps signing for one grace period: a voucher it signed for work
            // already served stays settleable (the miner's exposure stays one request).
            // uint40 seconds cannot overflow before the year 36812 (grace <= 30 days).
            until = uint40(block.timestamp + _gracePeriod);
            c.previousSessionKey = current;
            c.previousKeyUntil = until;
        } else {
            until = 0;
        }
        c.sessionKey = sessionKey;
        emit SessionKeySet(channelId, sessionKey, until);
    }

    /// @inheritdoc IPaymentEscrow
    function requestClose(bytes32 channelId) external {
        Channel storage c = _channels[channelId];
        _requireRenter(channelId, c);
        uint40 closesAt = c.closesAt;
        if (closesAt != 0) {
            if (block.timestamp >= closesAt) revert EscrowChannelFinal(channelId, closesAt);
            revert EscrowChannelClosing(channelId, closesAt);
        }
        // uint40 seconds last until the year 36812; the sum of a current timestamp and a grace
        // period of at most 30 days cannot exceed it.
        closesAt = uint40(block.timestamp + _gracePeriod);
        c.closesAt = closesAt;
        emit CloseRequested(channelId, closesAt);
    }

    /// @inheritdoc IPaymentEscrow
    function withdraw(bytes32 channelId) external nonReentrant {
        Channel storage c = _channels[channelId];
        address renter = c.renter;
        if (renter == address(0)) revert EscrowChannelUnknown(channelId);
        uint40 closesAt = c.closesAt;
        if (closesAt == 0) revert EscrowCloseNotRequested(channelId);
        if (block.timestamp < closesAt) revert EscrowGracePeriodActive(channelId, closesAt, block.timestamp);
        if (c.refunded) revert EscrowAlreadyWithdrawn(channelId);
        c.refunded = true;
        // settled <= deposit always holds (settle checks it), so this cannot underflow.
        uint256 refund = uint256(c.deposit) - c.settled;
        emit ChannelClosed(channelId, refund, false);
        if (refund != 0) IERC20(c.token).safeTransfer(renter, refund);
    }

    // ================================================================ miner

    /// @inheritdoc IPaymentEscrow
    function settle(bytes32 channelId, uint128 cumulativeAmount, bytes calldata signature) external nonReentrant {
        _settle(channelId, cumulativeAmount, signature);
    }

    /// @inheritdoc IPaymentEscrow
    function settleMany(
        bytes32[] calldata channelIds,
        uint128[] calldata cumulativeAmounts,
        bytes[] calldata signatures
    ) external nonReentrant returns (uint256 settledCount) {
        uint256 n = channelIds.length;
        if (cumulativeAmounts.length != n || signatures.length != n) {
            revert EscrowBatchLengthMismatch(n, cumulativeAmounts.length, signatures.length);
        }
        for (uint256 i; i < n; ++i) {
            bytes32 channelId = channelIds[i];
            uint128 cumulative = cumulativeAmounts[i];
            Channel storage c = _channels[channelId];
            uint96 settled = c.settled;
            uint40 closesAt = c.closesAt;
            // The races a batch must survive: someone settled this voucher (or a later one)
            // first, or the channel turned final while the batch waited.
            if (
                c.renter != address(0)
                    && (cumulative <= settled || (closesAt != 0 && block.timestamp >= closesAt))
            ) {
                emit VoucherSkipped(channelId, cumulative, settled);
                continue;
            }
            _settle(channelId, cumulative, signatures[i]);
            ++settledCount;
        }
    }

    /// @inheritdoc IPaymentEscrow
    function claimEarnings(bytes32[] calldata channelIds) external nonReentrant returns (uint256 paid) {
        uint256 n = channelIds.length;
        if (n == 0) return 0;
        address miner;
        address token;
        uint256 fees;
        for (uint256 i; i < n; ++i) {
            bytes32 channelId = channelIds[i];
            Channel storage c = _channels[channelId];
            if (c.renter == address(0)) revert EscrowChannelUnknown(channelId);
            if (i == 0) {
                miner = c.miner;
                token = c.token;
            } else if (c.miner != miner || c.token != token) {
                revert EscrowBatchMixed(channelId, c.miner, c.token);
            }
            (uint256 net, uint256 fee) = _claimInto(c);
            paid += net;
            fees += fee;
        }
        _payEarnings(miner, token, paid, fees);
    }

    /// @inheritdoc IPaymentEscrow
    function cooperativeClose(
        bytes32 channelId,
        uint128 cumulativeAmount,
        bytes calldata signature
    ) external nonReentrant {
        Channel storage c = _channels[channelId];
        address miner = c.miner;
        if (c.renter == address(0)) revert EscrowChannelUnknown(channelId);
        if (msg.sender != miner) revert EscrowNotMiner(channelId, msg.sender);
        uint40 closesAt = c.closesAt;
        if (closesAt != 0 && block.timestamp >= closesAt) revert EscrowChannelFinal(channelId, closesAt);
        if (signature.length != 0) _settle(channelId, cumulativeAmount, signature);

        // Effects: final from this block on, remainder refunded, earnings claimed.
        c.closesAt = uint40(block.timestamp);
        c.refunded = true;
        uint256 refund = uint256(c.deposit) - c.settled; // settled <= deposit
        (uint256 net, uint256 fee) = _claimInto(c);
        emit ChannelClosed(channelId, refund, true);

        IERC20 token = IERC20(c.token);
        if (refund != 0) token.safeTransfer(c.renter, refund);
        _payEarnings(miner, address(token), net, fee);
    }

    // ================================================================ protocol

    /// @inheritdoc IPaymentEscrow
    function sweepFees(address token) external nonReentrant returns (uint256 amount) {
        amount = _accruedFees[token];
        if (amount == 0) return 0;
        _accruedFees[token] = 0;
        address pool = _rewardPool;
        emit FeesSwept(token, pool, amount);
        IERC20(token).safeTransfer(pool, amount);
    }

    /// @inheritdoc IPaymentEscrow
    function setProtocolFee(uint16 feeBps) external onlyOwner {
        _setProtocolFee(feeBps);
    }

    /// @inheritdoc IPaymentEscrow
    function setGracePeriod(uint32 gracePeriod_) external onlyOwner {
        _setGracePeriod(gracePeriod_);
    }

    /// @inheritdoc IPaymentEscrow
    function setRewardPool(address rewardPool_) external onlyOwner {
        _setRewardPool(rewardPool_);
    }

    // ================================================================ views

    /// @inheritdoc IPaymentEscrow
    function channelIdOf(address renter, address miner, address token, bytes32 salt) public view returns (bytes32) {
        return keccak256(abi.encode(renter, miner, token, salt, address(this), block.chainid));
    }

    /// @inheritdoc IPaymentEscrow
    function getChannel(bytes32 channelId) external view returns (Channel memory) {
        return _channels[channelId];
    }

    /// @inheritdoc IPaymentEscrow
    function channelStatus(bytes32 channelId) external view returns (ChannelStatus) {
        Channel storage c = _channels[channelId];
        if (c.renter == address(0)) return ChannelStatus.None;
        uint40 closesAt = c.closesAt;
        if (closesAt == 0) return ChannelStatus.Open;
        return block.timestamp >= closesAt ? ChannelStatus.Final : ChannelStatus.Closing;
    }

    /// @inheritdoc IPaymentEscrow
    function voucherDigest(bytes32 channelId, uint128 cumulativeAmount) public view returns (bytes32) {
        return _hashTypedDataV4(keccak256(abi.encode(VOUCHER_TYPEHASH, channelId, cumulativeAmount)));
    }

    /// @inheritdoc IPaymentEscrow
    function accruedFees(address token) external view returns (uint256) {
        return _accruedFees[token];
    }

    /// @inheritdoc IPaymentEscrow
    function protocolFeeBps() external view returns (uint16) {
        return _protocolFeeBps;
    }

    /// @inheritdoc IPaymentEscrow
    function gracePeriod() external view returns (uint32) {
        return _gracePeriod;
    }

    /// @inheritdoc IPaymentEscrow
    function rewardPool() external view returns (address) {
        return _rewardPool;
    }

    // ================================================================ internals

    function _open(address miner, address token, bytes32 salt, uint256 amount) private returns (bytes32 channelId) {
        if (miner == address(0)) revert EscrowMinerZero();
        if (token.code.length == 0) revert EscrowTokenInvalid(token);
        channelId = channelIdOf(msg.sender, miner, token, salt);
        Channel storage c = _channels[channelId];
        if (c.renter != address(0)) revert EscrowChannelExists(channelId);
        // Register the parties before the pull so the id is taken even mid-transfer.
        c.renter = msg.sender;
        c.miner = miner;
        c.token = token;
        uint256 received = _pull(channelId, IERC20(token), amount);
        if (received > type(uint96).max) revert EscrowDepositOverflow(channelId, received);
        uint16 feeBps = _protocolFeeBps;
        c.deposit = uint96(received);
        c.feeBps = feeBps;
        emit ChannelOpened(channelId, msg.sender, miner, token, salt, received, feeBps);
    }

    /// @dev Pull `amount` from the caller and return what actually arrived (fee-on-transfer tokens
    /// deliver less). Reverts if nothing arrived.
    function _pull(bytes32 channelId, IERC20 token, uint256 amount) private returns (uint256 received) {
        uint256 before = token.balanceOf(address(this));
        token.safeTransferFrom(msg.sender, address(this), amount);
        uint256 balance = token.balanceOf(address(this));
        // A token whose balance shrinks on an inbound transfer credits nothing.
        received = balance > before ? balance - before : 0;
        if (received == 0) revert EscrowNothingReceived(channelId, amount);
    }

    function _settle(bytes32 channelId, uint128 cumulativeAmount, bytes calldata signature) private {
        Channel storage c = _channels[channelId];
        address renter = c.renter;
        if (renter == address(0)) revert EscrowChannelUnknown(channelId);
        // Slot 0, read once (cold) and written once (warm).
        uint96 settled = c.settled;
        uint96 deposit = c.deposit;
        uint40 closesAt = c.closesAt;
        if (closesAt != 0 && block.timestamp >= closesAt) revert EscrowChannelFinal(channelId, closesAt);
        if (cumulativeAmount <= settled) revert EscrowVoucherStale(channelId, cumulativeAmount, settled);
        if (cumulativeAmount > deposit) revert EscrowVoucherExceedsDeposit(channelId, cumulativeAmount, deposit);

        address signer = _recoverVoucherSigner(channelId, cumulativeAmount, signature);
        // The session key slots are read only when the renter did not sign. `signer` is never
        // zero (recovery failures revert), so an unset key never matches.
        if (signer != renter && signer != c.sessionKey) {
            if (signer != c.previousSessionKey || block.timestamp >= c.previousKeyUntil) {
                revert EscrowSignerUnauthorised(channelId, signer);
            }
        }

        // cumulativeAmount <= deposit < 2**96, so the narrowing is lossless.
        c.settled = uint96(cumulativeAmount);
        uint16 feeBps = c.feeBps;
        uint256 fee = EscrowFeeMath.totalFee(cumulativeAmount, feeBps) - EscrowFeeMath.totalFee(settled, feeBps);
        // cumulativeAmount > settled was checked above.
        unchecked {
            emit VoucherSettled(channelId, cumulativeAmount, cumulativeAmount - settled, fee);
        }
    }

    function _recoverVoucherSigner(
        bytes32 channelId,
        uint128 cumulativeAmount,
        bytes calldata signature
    ) private view returns (address signer) {
        if (signature.length != 65) {
            revert EscrowSignatureInvalid(channelId, uint8(ECDSA.RecoverError.InvalidSignatureLength));
        }
        bytes32 r;
        bytes32 s;
        uint8 v;
        // Read r, s, v straight from calldata (no copy to memory).
        assembly ("memory-safe") {
            r := calldataload(signature.offset)
            s := calldataload(add(signature.offset, 0x20))
            v := byte(0, calldataload(add(signature.offset, 0x40)))
        }
        ECDSA.RecoverError err;
        // OpenZeppelin rejects high-s (malleable) signatures and v outside {27, 28}.
        (signer, err, ) = ECDSA.tryRecover(voucherDigest(channelId, cumulativeAmount), v, r, s);
        if (err != ECDSA.RecoverError.NoError) revert EscrowSignatureInvalid(channelId, uint8(err));
    }

    /// @dev Mark everything settled on `c` as claimed; return the miner's and the pool's parts.
    function _claimInto(Channel storage c) private returns (uint256 net, uint256 fee) {
        uint96 settled = c.settled;
        uint96 claimed = c.claimed;
        if (settled == claimed) return (0, 0);
        (net, fee) = EscrowFeeMath.split(claimed, settled, c.feeBps);
        c.claimed = settled;
    }

    /// @dev The fee ledger's choke point for claims: accrue `fee`, emit, then pay the miner.
    function _payEarnings(address miner, address token, uint256 net, uint256 fee) private {
        if (net == 0 && fee == 0) return;
        if (fee != 0) _accruedFees[token] += fee;
        emit EarningsClaimed(miner, token, net, fee);
        if (net != 0) IERC20(token).safeTransfer(miner, net);
    }

    function _requireRenter(bytes32 channelId, Channel storage c) private view {
        address renter = c.renter;
        if (renter == address(0)) revert EscrowChannelUnknown(channelId);
        if (renter != msg.sender) revert EscrowNotRenter(channelId, msg.sender);
    }

    function _setProtocolFee(uint16 feeBps) private {
        if (feeBps > MAX_FEE_BPS) revert EscrowFeeTooHigh(feeBps, MAX_FEE_BPS);
        _protocolFeeBps = feeBps;
        emit ProtocolFeeSet(feeBps);
    }

    function _setGracePeriod(uint32 gracePeriod_) private {
        if (gracePeriod_ < MIN_GRACE_PERIOD || gracePeriod_ > MAX_GRACE_PERIOD) {
            revert EscrowGracePeriodOutOfRange(gracePeriod_, MIN_GRACE_PERIOD, MAX_GRACE_PERIOD);
        }
        _gracePeriod = gracePeriod_;
        emit GracePeriodSet(gracePeriod_);
    }

    function _setRewardPool(address rewardPool_) private {
        if (rewardPool_ == address(0)) revert EscrowRewardPoolZero();
        _rewardPool = rewardPool_;
        emit RewardPoolSet(rewardPool_);
    }
}
