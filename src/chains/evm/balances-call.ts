/**
 * The calldata and the result of `ForwarderFactory.balancesOf(address[]) returns (uint256[])`,
 * the EVM balance check's one contract call (docs/evm.md, "Balance check"), encoded and decoded by
 * hand. The check reads up to `balance_check_per_block` (10,000) addresses at every block; viem's
 * generic ABI coder (an address check and padding per item, a byte array and a bigint per word)
 * spent about 20 ms of each block's CPU on it (bench:watch-scale). The format is fixed: selector,
 * offset 0x20, length, one 32-byte word per item; results in the same layout.
 */
import { toFunctionSelector, type Hex } from 'viem';

export const BALANCES_OF_SELECTOR: Hex = toFunctionSelector('balancesOf(address[])');

const ADDRESS = /^0x[0-9a-f]{40}$/;
const PAD_ADDRESS = '0'.repeat(24);
const ZERO_WORD = '0'.repeat(64);
const word = (n: number): string => n.toString(16).padStart(64, '0');

/** Calldata of balancesOf(addresses); `addresses` are lowercase 0x-hex (the canonical stored form). */
export function encodeBalancesOf(addresses: readonly string[]): Hex {
  const parts: string[] = [BALANCES_OF_SELECTOR, word(32), word(addresses.length)];
  for (const a of addresses) {
    if (!ADDRESS.test(a)) throw new Error(`balancesOf: "${a}" is not a lowercase hex address`);
    parts.push(PAD_ADDRESS, a.slice(2));
  }
  return parts.join('') as Hex;
}

/** The uint256[] returned by balancesOf for `count` addresses; anything else is a malformed answer (throws). */
export function decodeBalances(data: string, count: number): bigint[] {
  const expected = 2 + 64 * (2 + count);
  if (data.length !== expected || !data.startsWith('0x') || !data.startsWith(word(32), 2) || !data.startsWith(word(count), 66)) {
    throw new Error(`balancesOf: expected ${count} balances (${expected} hex characters), got ${data.length} characters`);
  }
  const out = new Array<bigint>(count);
  for (let i = 0, pos = 130; i < count; i++, pos += 64) {
    out[i] = data.startsWith(ZERO_WORD, pos) ? 0n : BigInt(`0x${data.slice(pos, pos + 64)}`);
  }
  return out;
}
