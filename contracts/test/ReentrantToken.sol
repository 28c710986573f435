// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

import {ERC20} from "@openzeppelin/contracts/token/ERC20/ERC20.sol";

/// @title ReentrantToken — TEST ONLY: an ERC-20 that calls back into a target on its next transfer
/// @notice `arm(target, data)` makes the next balance change call `target` with `data` from this
/// token's own address, after the balances moved (the point where a non-guarded escrow would be
/// mid-operation). The outcome is recorded instead of bubbled up, so tests can assert that the
/// reentrant call was refused while the outer operation completed.
contract ReentrantToken is ERC20 {
    address private _hookTarget;
    bytes private _hookData;
    bool private _armed;

    /// @notice Whether the last reentrant call succeeded.
    bool public lastHookSucceeded;
    /// @notice Return or revert data of the last reentrant call.
    bytes public lastHookReturnData;
    /// @notice Number of reentrant calls made.
    uint256 public hookCalls;

    constructor() ERC20("Reentrant", "REENT") {}

    /// @notice Mint freely (test token).
    function mint(address to, uint256 amount) external {
        _mint(to, amount);
    }

    /// @notice Call `target` with `data` on the next transfer (once).
    function arm(address target, bytes calldata data) external {
        _hookTarget = target;
        _hookData = data;
        _armed = true;
    }

    /// @notice Make an arbitrary call from this token's address (lets a test use the token as a
    /// renter of its own channel).
    function callAs(address target, bytes calldata data) external returns (bytes memory) {
        (bool ok, bytes memory ret) = target.call(data);
        if (!ok) {
            assembly ("memory-safe") {
                revert(add(ret, 0x20), mload(ret))
            }
        }
        return ret;
    }

    function _update(address from, address to, uint256 value) internal override {
        super._update(from, to, value);
        if (_armed) {
            _armed = false;
            ++hookCalls;
            (bool ok, bytes memory ret) = _hookTarget.call(_hookData);
            lastHookSucceeded = ok;
            lastHookReturnData = ret;
        }
    }
}
