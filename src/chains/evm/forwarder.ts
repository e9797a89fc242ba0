/**
 * Offline prediction of Kassa deposit (forwarder) addresses — the TypeScript twin of
 * `ForwarderFactory.predict` (contracts/ForwarderFactory.sol). No RPC calls.
 *
 * address = CREATE2(factory, salt = keccak256(abi.encode(treasury, invoiceSalt)), keccak256(initCode))
 * where initCode is the factory's minimal-proxy init code for `implementation`.
 */
import {
  concat,
  encodeAbiParameters,
  getAddress,
  getContractAddress,
  isAddress,
  keccak256,
  stringToBytes,
  type Address,
  type Hex,
} from 'viem';
import { KassaError } from '../../errors.ts';

/** Init-code prefix: copies the 51-byte runtime that follows into memory and returns it. */
const PROXY_INIT_PREFIX: Hex = '0x3d603380600a3d3981f3';
/**
 * Runtime, part before the implementation address. EIP-1167 preceded by `36 6005 57 00 5b`:
 * calls with empty calldata STOP right away (accepting ETH with a 2300-gas stipend); anything
 * else is delegated to the implementation exactly like EIP-1167.
 */
const PROXY_RUNTIME_PREFIX: Hex = '0x36600557005b363d3d373d3d3d363d73';
/** Runtime, part after the implementation address (the revert jump target is 0x31). */
const PROXY_RUNTIME_SUFFIX: Hex = '0x5af43d82803e903d91603157fd5bf3';

function checkAddress(value: string, param: string): Address {
  if (!isAddress(value, { strict: false })) {
    throw new KassaError('evm_address_invalid', `${param} is not an EVM address: '${value}'.`, {
      status: 400,
      param,
      retryable: false,
    });
  }
  return getAddress(value);
}

function checkBytes32(value: string, param: string): Hex {
  if (!/^0x[0-9a-fA-F]{64}$/.test(value)) {
    throw new KassaError('evm_bytes32_invalid', `${param} must be 32 bytes of hex (0x + 64 digits).`, {
      status: 400,
      param,
      retryable: false,
    });
  }
  return value as Hex;
}

/**
 * The per-invoice salt: keccak256 of the invoice id's UTF-8 bytes. Pure, no RPC.
 * Example: `invoiceSaltFor('inv_123')`.
 */
export function invoiceSaltFor(invoiceId: string): Hex {
  if (invoiceId.length === 0) {
    throw new KassaError('invoice_id_empty', 'An invoice id is needed to derive a forwarder salt.', {
      status: 400,
      retryable: false,
    });
  }
  return keccak256(stringToBytes(invoiceId));
}

/**
 * The CREATE2 salt the factory uses: `keccak256(abi.encode(treasury, invoiceSalt))`
 * (same as `ForwarderFactory.saltOf`). Pure, no RPC.
 */
export function forwarderSalt(treasury: Address, invoiceSalt: Hex): Hex {
  const t = checkAddress(treasury, 'treasury');
  const s = checkBytes32(invoiceSalt, 'invoiceSalt');
  return keccak256(encodeAbiParameters([{ type: 'address' }, { type: 'bytes32' }], [t, s]));
}

/** The 51-byte runtime code of a forwarder clone pointing at `implementation`. */
export function forwarderProxyRuntimeCode(implementation: Address): Hex {
  const impl = checkAddress(implementation, 'implementation');
  return concat([PROXY_RUNTIME_PREFIX, impl.toLowerCase() as Hex, PROXY_RUNTIME_SUFFIX]);
}

/** The 61-byte init (creation) code of a forwarder clone (same as `ForwarderFactory.initCode()`). */
export function forwarderProxyInitCode(implementation: Address): Hex {
  return concat([PROXY_INIT_PREFIX, forwarderProxyRuntimeCode(implementation)]);
}

export interface PredictForwarderParams {
  /** The `ForwarderFactory` address (the CREATE2 deployer). */
  factory: Address;
  /** The factory's `IMPLEMENTATION()` (the `Forwarder` it deployed in its constructor). */
  implementation: Address;
  /** The merchant treasury the forwarder will pay out to. */
  treasury: Address;
  /** Per-invoice salt, usually `invoiceSaltFor(invoiceId)`. */
  invoiceSalt: Hex;
}

/**
 * The deposit address for (treasury, invoiceSalt), computed offline with viem's CREATE2 helper.
 * Equals `ForwarderFactory.predict(treasury, invoiceSalt)` on chain (tested). Checksummed.
 */
export function predictForwarderAddress(params: PredictForwarderParams): Address {
  const factory = checkAddress(params.factory, 'factory');
  return getContractAddress({
    opcode: 'CREATE2',
    from: factory,
    salt: forwarderSalt(params.treasury, params.invoiceSalt),
    bytecode: forwarderProxyInitCode(params.implementation),
  });
}
