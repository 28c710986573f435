// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {YumaEpoch} from "../libraries/YumaEpoch.sol";

/// @title YumaHarness
/// @notice Test-only: exposes the memory-array Yuma epoch for differential tests against
/// `chain/yuma/fixed.py` and for gas measurement. Not deployed in production.
contract YumaHarness {
    /// @notice Emitted by `measureEpoch`.
    /// @param outputsHash keccak256 of the ABI-encoded outputs.
    /// @param computeGas gas spent inside the epoch computation (excludes calldata and
    /// the transaction's base cost).
    event YumaEpochMeasured(bytes32 outputsHash, uint256 computeGas);

    /// @notice Runs one epoch and returns every output.
    function epoch(YumaEpoch.Inputs calldata inp) external pure returns (YumaEpoch.Outputs memory) {
        return YumaEpoch.run(inp);
    }

    /// @notice Runs one epoch in a transaction so its gas shows up in a receipt.
    function measureEpoch(YumaEpoch.Inputs calldata inp) external returns (bytes32 outputsHash) {
        uint256 start = gasleft();
        YumaEpoch.Outputs memory out = YumaEpoch.run(inp);
        uint256 used = start - gasleft();
        outputsHash = keccak256(abi.encode(out));
        emit YumaEpochMeasured(outputsHash, used);
    }
}
