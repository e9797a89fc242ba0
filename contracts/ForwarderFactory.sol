// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

import {Forwarder} from "./Forwarder.sol";

/// @title Kassa forwarder factory
/// @notice Deploys one minimal-proxy `Forwarder` per (treasury, invoice) with CREATE2 and
///         initializes it in the same call. The CREATE2 salt is
///         `keccak256(abi.encode(treasury, invoiceSalt))`, so the deposit address commits to the
///         treasury: a clone at that address can only ever pay out to that treasury.
/// @dev Proxy runtime (51 bytes) = EIP-1167 with a 6-byte prefix that STOPs (accepting any ETH)
///      when calldata is empty, so plain sends with a 2300-gas stipend succeed (a standard
///      EIP-1167 proxy needs >2600 gas for the cold DELEGATECALL since EIP-2929):
///        36 6005 57 00 5b | 363d3d373d3d3d363d73 <impl> 5af43d82803e903d91603157fd5bf3
///      Init code = 3d603380600a3d3981f3 ++ runtime.
contract ForwarderFactory {
    /// @notice The `Forwarder` implementation every clone delegates to.
    address public immutable IMPLEMENTATION;
    /// @notice keccak256 of the clone init code (constant per factory); used by `predict`.
    bytes32 public immutable INIT_CODE_HASH;

    event ForwarderDeployed(address indexed forwarder, address indexed treasury, bytes32 indexed invoiceSalt);

    error ZeroTreasury();
    error ForwarderAlreadyDeployed(address forwarder);
    error DeploymentFailed();

    constructor() {
        address impl = address(new Forwarder());
        IMPLEMENTATION = impl;
        INIT_CODE_HASH = keccak256(_initCode(impl));
    }

    /// @notice The clone init code (creation bytecode) for this factory's implementation.
    function initCode() external view returns (bytes memory) {
        return _initCode(IMPLEMENTATION);
    }

    /// @notice The CREATE2 salt for a (treasury, invoiceSalt) pair.
    function saltOf(address treasury, bytes32 invoiceSalt) public pure returns (bytes32) {
        return keccak256(abi.encode(treasury, invoiceSalt));
    }

    /// @notice The deposit address for a (treasury, invoiceSalt) pair, deployed or not.
    function predict(address treasury, bytes32 invoiceSalt) public view returns (address) {
        bytes32 h = keccak256(
            abi.encodePacked(bytes1(0xff), address(this), saltOf(treasury, invoiceSalt), INIT_CODE_HASH)
        );
        return address(uint160(uint256(h)));
    }

    /// @notice Whether the forwarder for (treasury, invoiceSalt) has been deployed.
    function isDeployed(address treasury, bytes32 invoiceSalt) external view returns (bool) {
        return predict(treasury, invoiceSalt).code.length != 0;
    }

    /// @notice Deploys and initializes the forwarder. Reverts with `ForwarderAlreadyDeployed` if it exists.
    function deploy(address payable treasury, bytes32 invoiceSalt) public returns (address forwarder) {
        if (treasury == address(0)) revert ZeroTreasury();
        address predicted = predict(treasury, invoiceSalt);
        if (predicted.code.length != 0) revert ForwarderAlreadyDeployed(predicted);
        bytes memory code = _initCode(IMPLEMENTATION);
        bytes32 salt = saltOf(treasury, invoiceSalt);
        assembly {
            forwarder := create2(0, add(code, 0x20), mload(code), salt)
        }
        if (forwarder == address(0) || forwarder != predicted) revert DeploymentFailed();
        Forwarder(payable(forwarder)).initialize(treasury);
        emit ForwarderDeployed(forwarder, treasury, invoiceSalt);
    }

    /// @notice Deploys the forwarder if needed, then flushes its native balance and each token's
    ///         balance to the treasury. Works for funds sent to the address before deployment.
    function deployAndFlush(address payable treasury, bytes32 invoiceSalt, address[] calldata tokens)
        external
        returns (address forwarder)
    {
        forwarder = predict(treasury, invoiceSalt);
        if (forwarder.code.length == 0) {
            deploy(treasury, invoiceSalt);
        }
        Forwarder(payable(forwarder)).flushAll(tokens);
    }

    /// @notice Flushes native coin and `tokens` from many already-deployed forwarders.
    function flushMany(address[] calldata forwarders, address[] calldata tokens) external {
        for (uint256 i = 0; i < forwarders.length; ++i) {
            Forwarder(payable(forwarders[i])).flushAll(tokens);
        }
    }

    /// @notice Native balances of many addresses in one call.
    function balancesOf(address[] calldata addrs) external view returns (uint256[] memory balances) {
        balances = new uint256[](addrs.length);
        for (uint256 i = 0; i < addrs.length; ++i) {
            balances[i] = addrs[i].balance;
        }
    }

    function _initCode(address impl) private pure returns (bytes memory) {
        return abi.encodePacked(
            hex"3d603380600a3d3981f3",
            hex"36600557005b363d3d373d3d3d363d73",
            impl,
            hex"5af43d82803e903d91603157fd5bf3"
        );
    }
}
