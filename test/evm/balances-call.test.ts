/**
 * The hand-written coder of ForwarderFactory.balancesOf (src/chains/evm/balances-call.ts) against
 * viem's generic ABI coder with the factory's ABI: same calldata, same decoded balances, and
 * malformed answers refused. (The watcher tests run it against the real contract on hardhat.)
 */
import { describe, expect, it } from 'vitest';
import { randomBytes } from 'node:crypto';
import { decodeFunctionResult, encodeAbiParameters, encodeFunctionData, type Address, type Hex } from 'viem';
import { forwarderFactoryAbi } from '../../src/chains/evm/artifacts.ts';
import { decodeBalances, encodeBalancesOf } from '../../src/chains/evm/balances-call.ts';

const addr = (): string => `0x${randomBytes(20).toString('hex')}`;

describe('balancesOf calldata and result', () => {
  it('encodes exactly like viem, for 0, 1 and 2,000 addresses', () => {
    for (const n of [0, 1, 2_000]) {
      const list = Array.from({ length: n }, addr);
      expect(encodeBalancesOf(list)).toBe(encodeFunctionData({ abi: forwarderFactoryAbi, functionName: 'balancesOf', args: [list as Address[]] }));
    }
  });

  it('decodes exactly like viem: zero, small, and 2^256 - 1 balances', () => {
    const values = [0n, 1n, 10n ** 18n, 0n, 2n ** 256n - 1n, 123_456_789n, ...Array.from({ length: 1_994 }, () => BigInt(`0x${randomBytes(8).toString('hex')}`))];
    const data = encodeAbiParameters([{ type: 'uint256[]' }], [values]);
    expect(decodeBalances(data, values.length)).toEqual(decodeFunctionResult({ abi: forwarderFactoryAbi, functionName: 'balancesOf', data }));
    expect(decodeBalances(encodeAbiParameters([{ type: 'uint256[]' }], [[]]), 0)).toEqual([]);
  });

  it('refuses a non-canonical address and an answer of the wrong shape', () => {
    expect(() => encodeBalancesOf(['0xABCDEFabcdefABCDEFabcdefABCDEFabcdefABCD'])).toThrow(/not a lowercase hex address/);
    expect(() => encodeBalancesOf(['0x1234'])).toThrow(/not a lowercase hex address/);
    const two = encodeAbiParameters([{ type: 'uint256[]' }], [[1n, 2n]]);
    expect(() => decodeBalances(two, 3)).toThrow(/expected 3 balances/);
    expect(() => decodeBalances('0x', 1)).toThrow(/expected 1 balances/);
    const badOffset = `0x${'0'.repeat(62)}40${two.slice(66)}` as Hex;
    expect(() => decodeBalances(badOffset, 2)).toThrow(/expected 2 balances/);
  });
});
