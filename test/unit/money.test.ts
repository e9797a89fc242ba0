import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { formatAmount, parseAmount, rescale } from '../../src/money/amount.ts';
import { createAssetRegistry } from '../../src/money/assets.ts';
import { KassaError } from '../../src/errors.ts';

function errorOf(fn: () => unknown): KassaError {
  try {
    fn();
  } catch (err) {
    return err as KassaError;
  }
  throw new Error('expected an error');
}

describe('parseAmount', () => {
  it('parses decimal strings into exact base units', () => {
    expect(parseAmount('0.00042', 8)).toBe(42000n);
    expect(parseAmount('25', 2)).toBe(2500n);
    expect(parseAmount('25.5', 2)).toBe(2550n);
    expect(parseAmount('1', 18)).toBe(10n ** 18n);
    expect(parseAmount('123456789012345678901234567890.123456789012345678', 18)).toBe(123456789012345678901234567890123456789012345678n);
  });

  it.each([
    ['1e5', 'exponent'],
    ['-1', 'signs'],
    ['+1', 'signs'],
    ['0x10', 'hexadecimal'],
    [' 1', 'spaces'],
    ['1 ', 'spaces'],
    ['01', 'leading zeros'],
    ['1,5', 'decimal separator'],
    ['.5', 'not a valid amount'],
    ['5.', 'not a valid amount'],
    ['NaN', 'not a valid amount'],
    ['Infinity', 'not a valid amount'],
  ])('rejects %j (%s)', (input, why) => {
    const err = errorOf(() => parseAmount(input, 8, { param: 'amount' }));
    expect(err).toBeInstanceOf(KassaError);
    expect(err.status).toBe(400);
    expect(err.param).toBe('amount');
    expect(err.code).toBe('amount_invalid');
    expect(err.message).toContain(why);
  });

  it('rejects more decimals than the asset has, naming the limit', () => {
    const err = errorOf(() => parseAmount('1.123456789', 8, { param: 'amount', unit: 'BTC' }));
    expect(err.message).toBe('amount has 9 decimal places but BTC allows at most 8.');
    expect(errorOf(() => parseAmount('1.5', 0, { unit: 'JPY' })).message).toContain('whole number');
  });

  it('rejects empty strings, JSON numbers, zero and non-strings', () => {
    expect(errorOf(() => parseAmount('', 2)).message).toContain('must not be empty');
    expect(errorOf(() => parseAmount(12.5, 2)).message).toContain('not a JSON number');
    expect(errorOf(() => parseAmount(null, 2)).message).toContain('decimal string');
    expect(errorOf(() => parseAmount('0', 2)).message).toContain('greater than zero');
    expect(errorOf(() => parseAmount('0.00', 2)).message).toContain('greater than zero');
    expect(parseAmount('0', 2, { allowZero: true })).toBe(0n);
  });

  it('rejects amounts that do not fit numeric(78,0)', () => {
    expect(errorOf(() => parseAmount('9'.repeat(61), 18)).message).toContain('too large');
  });
});

describe('formatAmount', () => {
  it('formats with the asset precision, or trimmed', () => {
    expect(formatAmount(2500n, 2)).toBe('25.00');
    expect(formatAmount(41667n, 8)).toBe('0.00041667');
    expect(formatAmount(0n, 6)).toBe('0.000000');
    expect(formatAmount(5n, 0)).toBe('5');
    expect(formatAmount(-150n, 2)).toBe('-1.50');
    expect(formatAmount(10n ** 18n / 2n, 18, { trim: true })).toBe('0.5');
    expect(formatAmount(2500n, 2, { trim: true })).toBe('25');
  });
});

describe('round trips (property tests)', () => {
  it('formatAmount then parseAmount returns the same base units for every precision', () => {
    fc.assert(
      fc.property(fc.bigInt({ min: 1n, max: 10n ** 40n }), fc.integer({ min: 0, max: 18 }), (units, decimals) => {
        expect(parseAmount(formatAmount(units, decimals), decimals)).toBe(units);
        expect(parseAmount(formatAmount(units, decimals, { trim: true }), decimals)).toBe(units);
      }),
      { numRuns: 2000 },
    );
  });

  it('parseAmount then formatAmount returns the canonical string', () => {
    const decimalString = fc
      .tuple(fc.bigInt({ min: 1n, max: 10n ** 30n }), fc.integer({ min: 0, max: 18 }))
      .map(([n, d]) => ({ s: formatAmount(n, d), d }));
    fc.assert(
      fc.property(decimalString, ({ s, d }) => {
        expect(formatAmount(parseAmount(s, d), d)).toBe(s);
      }),
      { numRuns: 2000 },
    );
  });

  it('rescale up then down is the identity; down rounds as asked', () => {
    fc.assert(
      fc.property(fc.bigInt({ min: 0n, max: 10n ** 30n }), fc.integer({ min: 0, max: 10 }), fc.integer({ min: 0, max: 10 }), (u, a, b) => {
        expect(rescale(rescale(u, a, a + b, 'down'), a + b, a, 'down')).toBe(u);
      }),
    );
    expect(rescale(101n, 2, 0, 'down')).toBe(1n);
    expect(rescale(101n, 2, 0, 'up')).toBe(2n);
    expect(rescale(100n, 2, 0, 'up')).toBe(1n);
  });
});

describe('asset registry', () => {
  const assets = createAssetRegistry({
    bitcoin: { type: 'bitcoin', network: 'regtest', poll_interval_ms: 1000, reorg_window: 100 },
    ethereum: {
      type: 'evm', network: 'local', chain_id: 31337, rpc_url: 'http://127.0.0.1:8545', native_symbol: 'ETH',
      confirmations: { high: 0, medium: 1, low_medium: 3, low: 12 }, use_finalized_tag: false,
      tokens: [{ symbol: 'USDC', address: '0x5FbDB2315678afecb367f032d93F642f64180aa3', decimals: 6 }],
      poll_interval_ms: 1000, max_log_range: 2000, reorg_window: 128,
    },
  });

  it('knows fiat minor units and crypto decimals', () => {
    expect(assets.currency('USD')).toEqual({ kind: 'fiat', code: 'USD', decimals: 2 });
    expect(assets.currency('JPY')).toEqual({ kind: 'fiat', code: 'JPY', decimals: 0 });
    expect(assets.currency('btc')).toEqual({ kind: 'crypto', code: 'BTC', decimals: 8 });
    expect(assets.currency('ETH').decimals).toBe(18);
  });

  it('lists payment methods per chain with their decimals', () => {
    expect(assets.methods().map((m) => m.method).sort()).toEqual(['BTC', 'ETH-ethereum', 'USDC-ethereum']);
    expect(assets.method('USDC-ethereum')).toMatchObject({ decimals: 6, chain: 'ethereum', token: '0x5fbdb2315678afecb367f032d93f642f64180aa3' });
  });

  it('rejects unknown currencies with a 400 naming the field', () => {
    const err = errorOf(() => assets.currency('DOGE'));
    expect(err.status).toBe(400);
    expect(err.param).toBe('currency');
    expect(err.code).toBe('currency_unsupported');
  });
});
