/**
 * Exact conversion between base units (`bigint`) and decimal strings. Never a float: parsing
 * rejects signs, exponents, hex, whitespace and extra decimals instead of rounding.
 */
import { invalidParam, type KassaError } from '../errors.ts';

const DECIMAL = /^(0|[1-9][0-9]*)(?:\.([0-9]+))?$/;
/** numeric(78,0) holds at most 78 digits. */
const MAX_DIGITS = 78;

export interface ParseAmountOptions {
  /** The request field named in errors. */
  param?: string;
  /** The unit named in errors ("BTC", "USD"). */
  unit?: string;
  /** Allow "0" (default false: amounts must be positive). */
  allowZero?: boolean;
  /** At most this many digits before the decimal point (e.g. INVOICE_AMOUNT_MAX_WHOLE_DIGITS). */
  maxWholeDigits?: number;
}

/**
 * Invoice prices: at most 15 digits before the decimal point, i.e. below 10^15 major units of the
 * currency (999999999999999.99 USD is the largest USD price). Larger amounts are refused with 400
 * `amount_too_large`.
 */
export const INVOICE_AMOUNT_MAX_WHOLE_DIGITS = 15;

function amountError(param: string, message: string): KassaError {
  return invalidParam(param, message, 'amount_invalid');
}

/**
 * Parses a decimal string such as "0.00042" into base units with `decimals` fraction digits.
 * Accepts only a JSON string: a JSON number would already have been rounded by the parser.
 */
export function parseAmount(value: unknown, decimals: number, opts: ParseAmountOptions = {}): bigint {
  const param = opts.param ?? 'amount';
  const unit = opts.unit ? ` ${opts.unit}` : '';
  if (typeof value === 'number' || typeof value === 'bigint') {
    throw amountError(param, `${param} must be a decimal string such as "12.50", not a JSON number (numbers lose precision).`);
  }
  if (typeof value !== 'string') throw amountError(param, `${param} must be a decimal string such as "12.50".`);
  if (value === '') throw amountError(param, `${param} must not be empty.`);
  const m = DECIMAL.exec(value);
  if (!m) {
    let why = 'use digits with an optional decimal point, such as "12.50"';
    if (/^\s|\s$/.test(value)) why = 'remove the surrounding spaces';
    else if (/^[+-]/.test(value)) why = 'signs are not allowed; amounts are positive';
    else if (/e/i.test(value) && !/^0x/i.test(value)) why = 'exponent notation is not allowed';
    else if (/^0x/i.test(value)) why = 'hexadecimal is not allowed';
    else if (/^0[0-9]/.test(value)) why = 'leading zeros are not allowed';
    else if (/,/.test(value)) why = 'use "." as the decimal separator and no thousands separators';
    throw amountError(param, `${param} "${value.slice(0, 40)}" is not a valid amount: ${why}.`);
  }
  const whole = m[1]!;
  const frac = m[2] ?? '';
  if (frac.length > decimals) {
    throw amountError(
      param,
      decimals === 0
        ? `${param} must be a whole number${unit ? ' of' + unit : ''}: it has no decimal places.`
        : `${param} has ${frac.length} decimal places but${unit} allows at most ${decimals}.`,
    );
  }
  if (opts.maxWholeDigits !== undefined && whole.length > opts.maxWholeDigits) {
    throw invalidParam(param, `${param} is too large: at most ${opts.maxWholeDigits} digits before the decimal point (below 10^${opts.maxWholeDigits}${unit}).`, 'amount_too_large');
  }
  if (whole.length + decimals > MAX_DIGITS) throw amountError(param, `${param} is too large.`);
  const units = BigInt(whole + frac.padEnd(decimals, '0'));
  if (units === 0n && !opts.allowZero) throw amountError(param, `${param} must be greater than zero.`);
  return units;
}

/**
 * Formats base units as a decimal string with exactly `decimals` fraction digits ("25.00",
 * "0.00041667"), or, with `trim`, without trailing zeros ("0.5", "25").
 */
export function formatAmount(units: bigint, decimals: number, opts: { trim?: boolean } = {}): string {
  const negative = units < 0n;
  const digits = (negative ? -units : units).toString().padStart(decimals + 1, '0');
  const whole = digits.slice(0, digits.length - decimals);
  let frac = decimals > 0 ? digits.slice(digits.length - decimals) : '';
  if (opts.trim) frac = frac.replace(/0+$/, '');
  return (negative ? '-' : '') + whole + (frac ? '.' + frac : '');
}

/** Changes the scale of an amount; rounding up or down is explicit. */
export function rescale(units: bigint, from: number, to: number, rounding: 'up' | 'down'): bigint {
  if (to >= from) return units * 10n ** BigInt(to - from);
  const div = 10n ** BigInt(from - to);
  const q = units / div;
  return rounding === 'up' && q * div !== units && units > 0n ? q + 1n : q;
}

/**
 * A decimal string for people to read: trailing zeros after the second decimal place dropped
 * ("0.008334000000000000" → "0.008334", "25.000000" → "25.00", "0.000000000000000000" → "0",
 * "0.00020000" → "0.0002"); zero is "0". The value is unchanged.
 */
export function readableAmount(amount: string): string {
  if (!/^-?[0-9]+(\.[0-9]+)?$/.test(amount)) return amount;
  if (!/[1-9]/.test(amount)) return '0';
  const [whole, frac = ''] = amount.split('.');
  if (frac.length <= 2) return amount;
  const kept = frac.slice(0, 2) + frac.slice(2).replace(/0+$/, '');
  return `${whole}.${kept}`;
}
