/**
 * Small helpers shared by the Bitcoin devnet: byte/hex conversion, BTC amount formatting and
 * parsing the way Bitcoin Core does it, a JSON writer that prints amounts like Core (fixed 8
 * decimals), and the JSON-RPC error type with Core's numeric codes.
 */

/** Bitcoin Core's JSON-RPC error codes (src/rpc/protocol.h) that the devnet uses. */
export const RPC = {
  INVALID_REQUEST: -32600,
  METHOD_NOT_FOUND: -32601,
  INVALID_PARAMS: -32602,
  INTERNAL_ERROR: -32603,
  PARSE_ERROR: -32700,
  MISC_ERROR: -1,
  TYPE_ERROR: -3,
  INVALID_ADDRESS_OR_KEY: -5,
  WALLET_INSUFFICIENT_FUNDS: -6,
  INVALID_PARAMETER: -8,
  DATABASE_ERROR: -20,
  DESERIALIZATION_ERROR: -22,
  VERIFY_ERROR: -25,
  VERIFY_REJECTED: -26,
  VERIFY_ALREADY_IN_CHAIN: -27,
  IN_WARMUP: -28,
  WALLET_ERROR: -4,
} as const;

/** A JSON-RPC error as Bitcoin Core reports it: `{ code, message }`. */
export class RpcError extends Error {
  readonly code: number;
  constructor(code: number, message: string) {
    super(message);
    this.name = 'RpcError';
    this.code = code;
  }
}

export const COIN = 100_000_000n;
export const MAX_MONEY = 21_000_000n * COIN;

export function toHex(bytes: Uint8Array): string {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('hex');
}

export function fromHex(hex: string): Uint8Array {
  return new Uint8Array(Buffer.from(hex, 'hex'));
}

export function isHex(s: string): boolean {
  return s.length % 2 === 0 && /^[0-9a-fA-F]*$/.test(s);
}

/** Reverses a byte array (txids and block hashes are shown byte-reversed). */
export function reversed(bytes: Uint8Array): Uint8Array {
  return Uint8Array.from(bytes).reverse();
}

/** Internal-order hash bytes → display hex (as Core prints txids and block hashes). */
export function hashToHex(hash: Uint8Array): string {
  return toHex(reversed(hash));
}

/** Display hex → internal-order hash bytes. */
export function hexToHash(hex: string): Uint8Array {
  return reversed(fromHex(hex));
}

export function bytesEqual(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

/** Satoshis → Core's FormatMoney style decimal string ("0.00010000"). */
export function formatBtc(sats: bigint): string {
  const neg = sats < 0n;
  const abs = neg ? -sats : sats;
  const whole = abs / COIN;
  const frac = (abs % COIN).toString().padStart(8, '0');
  return `${neg ? '-' : ''}${whole}.${frac}`;
}

/**
 * A BTC amount that the JSON writer prints as a bare JSON number with exactly 8 decimals, like
 * Bitcoin Core's `ValueFromAmount` (e.g. `0.00001410`, never `1.41e-5`).
 */
export class BtcAmount {
  constructor(readonly sats: bigint) {}
}

export function btc(sats: bigint): BtcAmount {
  return new BtcAmount(sats);
}

/** JSON.stringify that prints `BtcAmount` values as fixed-point JSON numbers and bigints as numbers. */
export function toJson(value: unknown): string {
  if (value instanceof BtcAmount) return formatBtc(value.sats);
  if (value === null || value === undefined) return 'null';
  if (typeof value === 'bigint') return value.toString();
  if (typeof value === 'number') return Number.isFinite(value) ? JSON.stringify(value) : 'null';
  if (typeof value === 'string' || typeof value === 'boolean') return JSON.stringify(value);
  if (Array.isArray(value)) {
    // A list of strings (txids, hashes: getrawmempool of a mainnet-size mempool) in one native call.
    if (value.every((v) => typeof v === 'string')) return JSON.stringify(value);
    return `[${value.map((v) => toJson(v)).join(',')}]`;
  }
  if (typeof value === 'object') {
    const parts: string[] = [];
    for (const [k, v] of Object.entries(value as Record<string, unknown>)) {
      if (v === undefined) continue;
      parts.push(`${JSON.stringify(k)}:${toJson(v)}`);
    }
    return `{${parts.join(',')}}`;
  }
  return 'null';
}

/**
 * Parses an amount in BTC given as a JSON number or string into satoshis, like Core's
 * `AmountFromValue`: at most 8 decimals, within 0..21e6 BTC; errors are RPC_TYPE_ERROR (-3).
 */
export function parseBtcAmount(value: unknown): bigint {
  let text: string;
  if (typeof value === 'number') {
    if (!Number.isFinite(value)) throw new RpcError(RPC.TYPE_ERROR, 'Invalid amount');
    text = String(value);
  } else if (typeof value === 'string') {
    text = value;
  } else {
    throw new RpcError(RPC.TYPE_ERROR, 'Amount is not a number or string');
  }
  const m = /^(-?)(\d*)(?:\.(\d*))?(?:[eE]([+-]?\d+))?$/.exec(text.trim());
  if (!m || (m[2] === '' && (m[3] ?? '') === '')) throw new RpcError(RPC.TYPE_ERROR, 'Invalid amount');
  const sign = m[1] === '-' ? -1n : 1n;
  let digits = (m[2] ?? '') + (m[3] ?? '');
  const scale = (m[3] ?? '').length - Number(m[4] ?? '0');
  // value = digits * 10^-scale; we need satoshis = digits * 10^(8 - scale)
  let shift = 8 - scale;
  digits = digits.replace(/^0+(?=\d)/, '');
  if (shift < 0) {
    const drop = digits.slice(digits.length + shift);
    if (/[1-9]/.test(drop) || -shift > digits.length && /[1-9]/.test(digits)) {
      throw new RpcError(RPC.TYPE_ERROR, 'Invalid amount');
    }
    digits = digits.slice(0, Math.max(0, digits.length + shift)) || '0';
    shift = 0;
  }
  const sats = sign * BigInt(digits || '0') * 10n ** BigInt(shift);
  if (sats < 0n || sats > MAX_MONEY) throw new RpcError(RPC.TYPE_ERROR, 'Amount out of range');
  return sats;
}

/** Core's JSON type names used in "JSON value of type X is not of expected type Y". */
export function jsonTypeName(v: unknown): string {
  if (v === null || v === undefined) return 'null';
  if (Array.isArray(v)) return 'array';
  if (typeof v === 'object') return 'object';
  if (typeof v === 'boolean') return 'bool';
  return typeof v; // number | string
}

export function typeError(v: unknown, expected: string): RpcError {
  return new RpcError(RPC.TYPE_ERROR, `JSON value of type ${jsonTypeName(v)} is not of expected type ${expected}`);
}
