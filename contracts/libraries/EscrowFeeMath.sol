// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

/// @title EscrowFeeMath — protocol fee on cumulative channel amounts
/// @notice The fee on a channel is defined on the cumulative settled amount:
/// `totalFee(settled) = floor(settled * feeBps / 10_000)`. Any claim pays out the difference of
/// that function between the previous and the new claimed total, so however the payouts are
/// split, the reward pool receives exactly `totalFee(finalSettled)` and the miner the rest —
/// no rounding dust is created or lost by claiming often.
library EscrowFeeMath {
    /// @notice Basis-point denominator.
    uint256 internal constant BPS = 10_000;

    /// @notice Fee owed on a cumulative gross amount.
    /// @dev `gross` < 2**96 and `feeBps` < 2**16, so the product is < 2**112: no overflow.
    function totalFee(uint256 gross, uint16 feeBps) internal pure returns (uint256) {
        return (gross * feeBps) / BPS;
    }

    /// @notice Split the gross amount between `claimedBefore` and `claimedAfter` into miner and fee parts.
    /// @dev Requires `claimedBefore <= claimedAfter` and `feeBps <= BPS`; then
    /// `totalFee(after) - totalFee(before) <= after - before`, so `net` cannot underflow.
    function split(
        uint256 claimedBefore,
        uint256 claimedAfter,
        uint16 feeBps
    ) internal pure returns (uint256 net, uint256 fee) {
        fee = totalFee(claimedAfter, feeBps) - totalFee(claimedBefore, feeBps);
        net = claimedAfter - claimedBefore - fee;
    }
}
