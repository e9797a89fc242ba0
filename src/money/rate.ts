/**
 * Exchange rates as exact rationals. A rate is the price of one whole unit of an asset in the
 * invoice currency, as a decimal string ("60000.00"). Conversions round in the merchant's favour
 * exactly once: the amount a customer is asked to pay rounds up; the value credited for a payment
 * rounds down, so paying exactly the amount asked always covers the price.
 */
import { KassaError } from '../errors.ts';

export interface Rational {
  num: bigint;
  den: bigint;
}

export function parseRate(rate: string): Rational {
  const m = /^(0|[1-9][0-9]*)(?:\.([0-9]+))?$/.exec(rate);
  if (!m) throw new KassaError('rate_invalid', `Invalid rate "${rate}".`, { status: 500 });
  const frac = m[2] ?? '';
  const r = { num: BigInt(m[1]! + frac), den: 10n ** BigInt(frac.length) };
  if (r.num === 0n) throw new KassaError('rate_invalid', 'A rate of zero cannot be used.', { status: 500 });
  return r;
}

const ceilDiv = (a: bigint, b: bigint): bigint => (a + b - 1n) / b;

/** Asset base units a customer must pay for `price` currency base units (rounded up). */
export function assetAmountFor(price: bigint, currencyDecimals: number, rate: string, assetDecimals: number): bigint {
  const r = parseRate(rate);
  // price / 10^cd  currency  =  x / 10^ad  asset  *  num/den
  return ceilDiv(price * r.den * 10n ** BigInt(assetDecimals), r.num * 10n ** BigInt(currencyDecimals));
}

/** Currency base units credited for `amount` asset base units (rounded down). */
export function currencyValueOf(amount: bigint, assetDecimals: number, rate: string, currencyDecimals: number): bigint {
  const r = parseRate(rate);
  return (amount * r.num * 10n ** BigInt(currencyDecimals)) / (r.den * 10n ** BigInt(assetDecimals));
}
