// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {ERC20} from "@openzeppelin/contracts/token/ERC20/ERC20.sol";
import {ERC20Burnable} from "@openzeppelin/contracts/token/ERC20/extensions/ERC20Burnable.sol";
import {ERC20Permit} from "@openzeppelin/contracts/token/ERC20/extensions/ERC20Permit.sol";
import {Ownable} from "@openzeppelin/contracts/access/Ownable.sol";
import {ISubnetToken} from "./interfaces/ISubnetToken.sol";

/// @title SubnetToken
/// @notice Latent's capped ERC-20 with ERC-2612 permit. The owner names the minter (the
/// emission logic); burns (registration) lower the supply, so burned tokens may be minted
/// again by emission, always under the cap.
contract SubnetToken is ERC20, ERC20Burnable, ERC20Permit, Ownable, ISubnetToken {
    uint256 private constant _CAP = 21_000_000 ether;

    address private _minter;

    constructor(address initialOwner, address initialMinter)
        ERC20("Latent Subnet Token", "LAT")
        ERC20Permit("Latent Subnet Token")
        Ownable(initialOwner)
    {
        _setMinter(initialMinter);
    }

    /// @inheritdoc ISubnetToken
    function cap() external pure returns (uint256) {
        return _CAP;
    }

    /// @inheritdoc ISubnetToken
    function minter() external view returns (address) {
        return _minter;
    }

    /// @inheritdoc ISubnetToken
    function setMinter(address newMinter) external onlyOwner {
        _setMinter(newMinter);
    }

    /// @inheritdoc ISubnetToken
    function mint(address to, uint256 amount) external {
        if (msg.sender != _minter) revert SubnetTokenNotMinter(msg.sender, _minter);
        uint256 supply = totalSupply();
        if (amount > _CAP - supply) revert SubnetTokenCapExceeded(supply, amount, _CAP);
        _mint(to, amount);
    }

    /// @inheritdoc ISubnetToken
    function burn(uint256 amount) public override(ERC20Burnable, ISubnetToken) {
        super.burn(amount);
    }

    /// @inheritdoc ISubnetToken
    function burnFrom(address account, uint256 amount) public override(ERC20Burnable, ISubnetToken) {
        super.burnFrom(account, amount);
    }

    function _setMinter(address newMinter) private {
        emit MinterChanged(_minter, newMinter);
        _minter = newMinter;
    }
}
