/**
 * The refund destination checks (docs/refunds.md, rule 10) and the fee arithmetic of the PSBT
 * builder, without a database: pure functions.
 */
import { describe, expect, it } from 'vitest';
import type { ChainConfig } from '../../src/config.ts';
import { checkDestination } from '../../src/refunds/destination.ts';
import { feeRateFromNode, formatFeeRate, parseFeeRate } from '../../src/chains/bitcoin/psbt.ts';
import { REFUND_TRANSITIONS, REFUND_STATUSES, canMove } from '../../src/refunds/state-machine.ts';
import { assetAmountDown } from '../../src/refunds/service.ts';

const regtest = { type: 'bitcoin', network: 'regtest' } as unknown as ChainConfig;
const mainnet = { type: 'bitcoin', network: 'mainnet' } as unknown as ChainConfig;
const evm = { type: 'evm', network: 'local', chain_id: 31337 } as unknown as ChainConfig;

const codeOf = (f: () => unknown) => {
  try {
    f();
  } catch (err) {
    return (err as { code: string; param: string }).code + ':' + (err as { param: string }).param;
  }
  return 'accepted';
};

describe('refund destination', () => {
  it('Bitcoin: bech32, bech32m and base58 of the right network pass; checksum errors and other networks do not', () => {
    // BIP 173 / BIP 350 test vectors (mainnet), and a regtest P2WPKH address.
    expect(checkDestination('bc1qw508d6qejxtdg4y5r3zarvary0c5xw7kv8f3t4', mainnet).address).toBe('bc1qw508d6qejxtdg4y5r3zarvary0c5xw7kv8f3t4');
    expect(checkDestination('BC1QW508D6QEJXTDG4Y5R3ZARVARY0C5XW7KV8F3T4', mainnet).address).toBe('bc1qw508d6qejxtdg4y5r3zarvary0c5xw7kv8f3t4');
    expect(checkDestination('bc1p0xlxvlhemja6c4dqv22uapctqupfhlxm9h8z3k2e72q4k9hcz7vqzk5jj0', mainnet).script).toHaveLength(34);
    expect(checkDestination('1BvBMSEYstWetqTFn5Au4m4GFg7xJaNVN2', mainnet).script).toHaveLength(25);
    expect(checkDestination(' bcrt1qw508d6qejxtdg4y5r3zarvary0c5xw7kygt080 ', regtest).address).toBe('bcrt1qw508d6qejxtdg4y5r3zarvary0c5xw7kygt080');
    expect(codeOf(() => checkDestination('bc1qw508d6qejxtdg4y5r3zarvary0c5xw7kv8f3t5', mainnet))).toBe('destination_invalid:destination'); // checksum
    expect(codeOf(() => checkDestination('1BvBMSEYstWetqTFn5Au4m4GFg7xJaNVN3', mainnet))).toBe('destination_invalid:destination'); // base58 checksum
    expect(codeOf(() => checkDestination('bc1qw508d6qejxtdg4y5r3zarvary0c5xw7kv8f3t4', regtest))).toBe('destination_invalid:destination'); // other network
    expect(codeOf(() => checkDestination('', regtest))).toBe('destination_missing:destination');
    expect(codeOf(() => checkDestination(42, regtest))).toBe('destination_missing:destination');
  });

  it('EVM: EIP-55 checksummed or single-case addresses pass (returned checksummed); a wrong checksum does not', () => {
    expect(checkDestination('0x52908400098527886E0F7030069857D2E4169EE7', evm).address).toBe('0x52908400098527886E0F7030069857D2E4169EE7');
    expect(checkDestination('0x52908400098527886e0f7030069857d2e4169ee7', evm).address).toBe('0x52908400098527886E0F7030069857D2E4169EE7');
    expect(codeOf(() => checkDestination('0x52908400098527886E0F7030069857D2E4169Ee7', evm))).toBe('destination_checksum_invalid:destination');
    expect(codeOf(() => checkDestination('0x5290840009852788', evm))).toBe('destination_invalid:destination');
    expect(codeOf(() => checkDestination('0x0000000000000000000000000000000000000000', evm))).toBe('destination_invalid:destination');
  });
});

describe('refund arithmetic and states', () => {
  it('fee rates are exact decimals: parsed, formatted, and read from the node without float maths', () => {
    expect(parseFeeRate('2')).toBe(2000n);
    expect(parseFeeRate('12.5')).toBe(12_500n);
    expect(formatFeeRate(12_500n)).toBe('12.5');
    expect(codeOf(() => parseFeeRate('0.5'))).toBe('fee_rate_invalid:fee_rate');
    expect(codeOf(() => parseFeeRate(2))).toBe('fee_rate_invalid:fee_rate');
    expect(codeOf(() => parseFeeRate('1e3'))).toBe('fee_rate_invalid:fee_rate');
    expect(feeRateFromNode(0.00012345)).toBe(12_345n); // BTC/kvB → sat/kvB
    expect(feeRateFromNode(0.0001)).toBe(10_000n);
  });

  it('currency → asset conversion rounds down (a refund never pays more than the value asked)', () => {
    expect(assetAmountDown(1000n, 2, '60000.00', 8)).toBe(16_666n); // $10 at 60,000 USD/BTC
    expect(assetAmountDown(3000n, 2, '60000.00', 8)).toBe(50_000n);
  });

  it('the transition table: claimed → approved → broadcast → completed (and back on a reorg); final states have no way out', () => {
    expect(canMove('awaiting_destination', 'awaiting_approval')).toBe(true);
    expect(canMove('awaiting_destination', 'awaiting_signature')).toBe(false); // never without a destination and an approval
    expect(canMove('broadcast', 'cancelled')).toBe(false); // money on its way cannot be cancelled
    for (const s of ['cancelled', 'failed'] as const) expect(Object.keys(REFUND_TRANSITIONS[s])).toEqual([]);
    expect(Object.keys(REFUND_TRANSITIONS.completed)).toEqual(['broadcast']);
    for (const s of REFUND_STATUSES) for (const to of Object.keys(REFUND_TRANSITIONS[s])) expect(REFUND_STATUSES).toContain(to);
  });
});
