// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {IERC20} from "@openzeppelin/contracts/token/ERC20/IERC20.sol";

/// @title ISubnetToken
/// @notice The subnet's ERC-20 (with ERC-2612 permit): renters pay with it, registrants burn it,
/// stakers lock it. Supply is capped at 21,000,000 tokens (18 decimals) and only the minter
/// (the emission logic, once deployed) can create new tokens.
interface ISubnetToken is IERC20 {
    /// @notice The minter role moved to `newMinter` (address(0) disables minting).
    /// @param previousMinter the account that could mint until now
    /// @param newMinter the account that can mint from now on
    event MinterChanged(address indexed previousMinter, address indexed newMinter);

    /// @notice `caller` tried to mint but is not the minter.
    /// @param caller the account that called `mint`
    /// @param minter the current minter
    error SubnetTokenNotMinter(address caller, address minter);

    /// @notice Minting `amount` would push the total supply above the cap.
    /// @param supply the total supply before the mint
    /// @param amount the amount asked for
    /// @param cap the supply cap
    error SubnetTokenCapExceeded(uint256 supply, uint256 amount, uint256 cap);

    /// @notice The supply cap: 21,000,000 tokens with 18 decimals.
    function cap() external view returns (uint256);

    /// @notice The only account allowed to mint.
    function minter() external view returns (address);

    /// @notice Hands the minter role to `newMinter`; only the owner.
    function setMinter(address newMinter) external;

    /// @notice Mints `amount` to `to`; only the minter, never above the cap.
    function mint(address to, uint256 amount) external;

    /// @notice Destroys `amount` of the caller's tokens.
    function burn(uint256 amount) external;

    /// @notice Destroys `amount` of `account`'s tokens, spending the caller's allowance.
    function burnFrom(address account, uint256 amount) external;
}
