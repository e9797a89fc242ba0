// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

/// @dev The subset of ERC-20 the forwarder needs. `transfer` is called with a low-level call so
///      tokens that return nothing (USDT) work too.
interface IERC20Balance {
    function balanceOf(address account) external view returns (uint256);
}

/// @title Kassa deposit forwarder (implementation behind the minimal proxies)
/// @notice One clone per invoice. The clone's address is derived (CREATE2) from the treasury and
///         the invoice salt, and the clone can only ever pay out to that treasury: `initialize` is
///         callable once and only by the factory, in the same call that deploys the clone.
///         Anyone may call `flush` / `flushTokens`; they only move funds to the treasury.
/// @dev Runs behind `ForwarderFactory`'s minimal proxy, which answers calls with empty calldata
///      itself (accepting ETH without a DELEGATECALL), so 2300-gas `transfer`s to a deposit address
///      succeed. `receive()` here only matters for direct sends to the implementation.
contract Forwarder {
    /// @notice The factory that deployed this implementation; the only caller of `initialize`.
    /// @dev Immutable: stored in the implementation's code, so clones read the same value.
    address public immutable FACTORY;

    /// @dev Slot 0: treasury (20 bytes) + reentrancy flag (1 byte), packed.
    address payable private _treasury;
    bool private _entered;

    event Flushed(address indexed treasury, uint256 amount);
    event TokensFlushed(address indexed token, address indexed treasury, uint256 amount);

    error NotFactory();
    error AlreadyInitialized();
    error NotInitialized();
    error ZeroTreasury();
    error Reentrancy();
    error NativeTransferFailed(address treasury, uint256 amount);
    error TokenTransferFailed(address token, address treasury, uint256 amount);

    constructor() {
        FACTORY = msg.sender;
    }

    modifier nonReentrant() {
        if (_entered) revert Reentrancy();
        _entered = true;
        _;
        _entered = false;
    }

    /// @notice Binds the clone to its treasury. Once, and only from the factory.
    function initialize(address payable treasury_) external {
        if (msg.sender != FACTORY) revert NotFactory();
        if (_treasury != address(0)) revert AlreadyInitialized();
        if (treasury_ == address(0)) revert ZeroTreasury();
        _treasury = treasury_;
    }

    /// @notice Accepts ETH. Does nothing else so that 2300-gas sends succeed.
    receive() external payable {}

    /// @notice The address every flush pays (zero before initialization).
    function treasury() external view returns (address) {
        return _treasury;
    }

    /// @notice Sends the whole native balance to the treasury. Callable by anyone.
    function flush() external nonReentrant {
        _flushNative(_initializedTreasury());
    }

    /// @notice Sends this contract's whole balance of each token to the treasury. Callable by anyone.
    function flushTokens(address[] calldata tokens) external nonReentrant {
        address payable t = _initializedTreasury();
        for (uint256 i = 0; i < tokens.length; ++i) {
            _flushToken(tokens[i], t);
        }
    }

    /// @notice `flush()` and `flushTokens(tokens)` in one call (used by the factory's `deployAndFlush`).
    function flushAll(address[] calldata tokens) external nonReentrant {
        address payable t = _initializedTreasury();
        _flushNative(t);
        for (uint256 i = 0; i < tokens.length; ++i) {
            _flushToken(tokens[i], t);
        }
    }

    function _initializedTreasury() private view returns (address payable t) {
        t = _treasury;
        if (t == address(0)) revert NotInitialized();
    }

    function _flushNative(address payable t) private {
        uint256 amount = address(this).balance;
        if (amount == 0) return;
        (bool ok, ) = t.call{value: amount}("");
        if (!ok) revert NativeTransferFailed(t, amount);
        emit Flushed(t, amount);
    }

    function _flushToken(address token, address t) private {
        uint256 amount = IERC20Balance(token).balanceOf(address(this));
        if (amount == 0) return;
        // transfer(address,uint256); accept "no return data" (USDT) or a true bool.
        (bool ok, bytes memory ret) = token.call(abi.encodeWithSelector(0xa9059cbb, t, amount));
        if (!ok || (ret.length != 0 && (ret.length < 32 || !abi.decode(ret, (bool))))) {
            revert TokenTransferFailed(token, t, amount);
        }
        emit TokensFlushed(token, t, amount);
    }
}
