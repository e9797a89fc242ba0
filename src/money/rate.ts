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

/**
 * Stablecoins quoted to the cent. Other assets: all their decimals up to 8 (BTC: 8), and 6 for
 * assets with more (ETH and other 18-decimal coins and tokens).
 */
const CENT_QUOTED = new Set(['USDC', 'USDT', 'DAI', 'PYUSD', 'USDP', 'TUSD', 'FDUSD', 'EURC']);
export function quotePlaces(asset: string, assetDecimals: number): number {
  if (CENT_QUOTED.has(asset)) return Math.min(2, assetDecimals);
  return assetDecimals > 8 ? 6 : assetDecimals;
}

/**
 * What a customer is asked to pay for `price` in `asset`: the exact amount (`assetAmountFor`) rounded
 * UP to `quotePlaces` decimal places, so it can be read and typed ("0.008334" ETH rather than
 * "0.008333333333333334"). When one step in that last place is worth more than one base unit of
 * the invoice currency at the locked rate, more places are kept until it is not: then paying
 * exactly this amount is credited (rounded down) as exactly the price, never less and never an
 * overpayment.
 */
export function payableAmountFor(price: bigint, currencyDecimals: number, rate: string, asset: string, assetDecimals: number): bigint {
  const exact = assetAmountFor(price, currencyDecimals, rate, assetDecimals);
  const r = parseRate(rate);
  const oneCurrencyUnit = r.den * 10n ** BigInt(assetDecimals); // compared with step × num × 10^cd
  for (let places = quotePlaces(asset, assetDecimals); places < assetDecimals; places++) {
    const step = 10n ** BigInt(assetDecimals - places);
    if (step * r.num * 10n ** BigInt(currencyDecimals) <= oneCurrencyUnit) return ceilDiv(exact, step) * step;
  }
  return exact;
}
