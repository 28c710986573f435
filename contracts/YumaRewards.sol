// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {Ownable} from "@openzeppelin/contracts/access/Ownable.sol";
import {IERC20} from "@openzeppelin/contracts/token/ERC20/IERC20.sol";
import {SafeERC20} from "@openzeppelin/contracts/token/ERC20/utils/SafeERC20.sol";
import {IMetagraph} from "./interfaces/IMetagraph.sol";
import {ISubnetToken} from "./interfaces/ISubnetToken.sol";
import {IYumaConsensus} from "./interfaces/IYumaConsensus.sol";

/// @title YumaRewards
/// @notice The rewards ledger of `YumaConsensus`: what each uid earned (credited by the epoch's
/// credit steps) and what accounts can claim, paid out by `claim` (to the coldkey, or staked
/// to the hotkey). Tokens stay in the epoch contract: it mints emission to itself, and the
/// escrow's fees arrive there too.
/// @dev Rewards are kept per uid (u85 lanes, 3 uids a word): crediting never reads a hotkey.
/// `claim` and `claimable` add the uid of a registered hotkey; when the Metagraph gives a uid
/// to a new hotkey it calls `onUidReplaced`, which moves what the uid earned to the old
/// hotkey's claimable balance. `_reserved` is everything owed (credited and not claimed);
/// the epoch counts whatever it holds beyond that as fees.
abstract contract YumaRewards is IYumaConsensus {
    using SafeERC20 for IERC20;

    uint256 private constant U85_MAX = (1 << 85) - 1;

    IMetagraph internal immutable _metagraph;
    ISubnetToken internal immutable _token;

    /// @dev Tokens owed: credited or to be credited, not yet claimed.
    uint256 private _reserved;
    mapping(address account => uint256) private _claimable;
    /// @dev What each uid earned and nobody claimed yet, u85 lanes, 3 uids per word.
    uint256[86] private _earned;

    /// @param metagraph_ the Metagraph
    /// @param token_ the SubnetToken
    constructor(address metagraph_, address token_) {
        if (metagraph_ == address(0) || token_ == address(0)) revert YumaConsensusZeroAddress();
        _metagraph = IMetagraph(metagraph_);
        _token = ISubnetToken(token_);
    }

    // ------------------------------------------------------------ crediting (the epoch)

    /// @dev Tokens this contract holds beyond what it owes (the escrow's fees).
    function _unowed() internal view returns (uint256) {
        return _token.balanceOf(address(this)) - _reserved;
    }

    /// @dev `amount` more is owed (the epoch's mint and fees, credited by its credit steps).
    function _reserve(uint256 amount) internal {
        _reserved += amount;
    }

    /// @dev Credits `amount` to `account` directly (the subnet owner's share).
    function _creditAccount(address account, uint256 amount) internal {
        _claimable[account] += amount;
    }

    /// @dev Credits uids `first .. end - 1` their `perUid` amounts; returns the amounts as
    /// the Metagraph records them.
    function _creditUids(uint256 first, uint256 end, uint256[] memory perUid)
        internal
        returns (uint96[] memory amounts)
    {
        amounts = new uint96[](end - first);
        for (uint256 w = first / 3; 3 * w < end; ++w) {
            uint256 word = _earned[w];
            uint256 before = word;
            for (uint256 uid = 3 * w; uid < 3 * w + 3 && uid < end; ++uid) {
                if (uid < first) continue;
                uint256 amount = perUid[uid];
                // uint96 and u85 hold any amount: the supply cap 21M * 1e18 < 2^85.
                amounts[uid - first] = uint96(amount);
                uint256 shift = 85 * (uid % 3);
                // What a uid earned and nobody claimed is part of the supply: < 2^85.
                word += amount << shift;
            }
            if (word != before) _earned[w] = word;
        }
    }

    function _earnedOf(uint256 uid) private view returns (uint256) {
        return (_earned[uid / 3] >> (85 * (uid % 3))) & U85_MAX;
    }

    function _clearEarned(uint256 uid) private {
        _earned[uid / 3] &= ~(U85_MAX << (85 * (uid % 3)));
    }

    /// @dev Whether `account` is a registered hotkey, and its uid if so.
    function _uidOf(address account) private view returns (bool registered, uint256 uid) {
        registered = _metagraph.isRegistered(account);
        if (registered) uid = _metagraph.uidOf(account);
    }

    /// @dev The subnet owner: the Metagraph's owner.
    function _subnetOwner() internal view returns (address) {
        return Ownable(address(_metagraph)).owner();
    }

    // ------------------------------------------------------------ claims

    /// @inheritdoc IYumaConsensus
    function claim(address account, bool stake) external returns (uint256 amount) {
        // The subnet owner's share is paid to the owner itself, never to whoever registered its
        // address as a hotkey.
        address coldkey = account == _subnetOwner() ? address(0) : _metagraph.hotkeyOwner(account);
        if (msg.sender != account && (coldkey == address(0) || msg.sender != coldkey)) {
            revert YumaConsensusNotAuthorized(msg.sender, account);
        }
        (bool registered, uint256 uid) = _uidOf(account);
        amount = _claimable[account];
        if (amount != 0) _claimable[account] = 0;
        if (registered) {
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

    // ------------------------------------------------------------ views

    /// @inheritdoc IYumaConsensus
    function claimable(address account) external view returns (uint256 amount) {
        amount = _claimable[account];
        (bool registered, uint256 uid) = _uidOf(account);
        if (registered) amount += _earnedOf(uid);
    }

    /// @inheritdoc IYumaConsensus
    function reserved() external view returns (uint256) {
        return _reserved;
    }

    /// @inheritdoc IYumaConsensus
    function metagraph() external view returns (address) {
        return address(_metagraph);
    }

    /// @inheritdoc IYumaConsensus
    function token() external view returns (address) {
        return address(_token);
    }
}
