// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

/// @title Test helper: sends ETH from inside a contract (an "internal transfer").
/// @notice Such payments show up in no transaction's `to`/`value`; the watcher's balance check
///         must catch them. `sendViaTransfer` uses the 2300-gas stipend like Solidity's `transfer`.
contract EthSender {
    error SendFailed();

    /// @notice Forwards msg.value to `to` with a plain CALL that passes all remaining gas.
    function sendViaCall(address payable to) external payable {
        (bool ok, ) = to.call{value: msg.value}("");
        if (!ok) revert SendFailed();
    }

    /// @notice Forwards msg.value to `to` with Solidity's `transfer` (2300-gas stipend).
    function sendViaTransfer(address payable to) external payable {
        to.transfer(msg.value);
    }

    /// @notice Splits msg.value evenly over `tos` (remainder stays here), one internal CALL each.
    function sendMany(address payable[] calldata tos) external payable {
        uint256 each = msg.value / tos.length;
        for (uint256 i = 0; i < tos.length; ++i) {
            (bool ok, ) = tos[i].call{value: each}("");
            if (!ok) revert SendFailed();
        }
    }
}
