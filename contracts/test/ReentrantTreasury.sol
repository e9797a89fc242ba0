// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

interface IFlushable {
    function flush() external;
    function flushTokens(address[] calldata tokens) external;
}

/// @title Test helper: a treasury contract that re-enters the forwarder when paid.
/// @notice On every ETH receipt it tries `flush()` (and `flushTokens`) on `target` again,
///         swallowing reverts, and counts attempts/failures so tests can assert on them.
contract ReentrantTreasury {
    address public target;
    address[] private _tokens;
    uint256 public received;
    uint256 public receiveCount;
    uint256 public reentryAttempts;
    uint256 public reentryFailures;

    function setTarget(address target_, address[] calldata tokens) external {
        target = target_;
        _tokens = tokens;
    }

    receive() external payable {
        received += msg.value;
        receiveCount += 1;
        if (target != address(0) && reentryAttempts < 3) {
            reentryAttempts += 1;
            try IFlushable(target).flush() {} catch {
                reentryFailures += 1;
            }
            reentryAttempts += 1;
            try IFlushable(target).flushTokens(_tokens) {} catch {
                reentryFailures += 1;
            }
        }
    }
}
