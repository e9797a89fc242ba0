// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

/// @title Test helper: a contract that refuses ETH (its receive reverts).
contract RejectingReceiver {
    error Rejected();

    receive() external payable {
        revert Rejected();
    }
}
