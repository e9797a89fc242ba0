// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

/// @title Test helper: an ERC-20 whose `transfer` returns false without moving anything.
contract FalseToken {
    mapping(address => uint256) public balanceOf;

    event Transfer(address indexed from, address indexed to, uint256 value);

    function mint(address to, uint256 amount) external {
        balanceOf[to] += amount;
        emit Transfer(address(0), to, amount);
    }

    function transfer(address, uint256) external pure returns (bool) {
        return false;
    }
}
