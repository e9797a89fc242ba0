/**
 * Base58 and Base58Check (Bitcoin alphabet), dependency-free. Used for extended keys and for
 * recognising WIF private keys; addresses go through bitcoinjs-lib.
 */
import { sha256 } from '@noble/hashes/sha2';

const ALPHABET = '123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz';
const INDEX = new Int8Array(128).fill(-1);
for (let i = 0; i < ALPHABET.length; i++) INDEX[ALPHABET.charCodeAt(i)] = i;

export const BASE58_CHARS = /^[1-9A-HJ-NP-Za-km-z]+$/;

/** Decodes Base58; returns null on a character outside the alphabet. */
export function base58Decode(s: string): Uint8Array | null {
  let zeros = 0;
  while (zeros < s.length && s.charCodeAt(zeros) === 49) zeros++;
  const bytes: number[] = [];
  for (let i = zeros; i < s.length; i++) {
    const c = s.charCodeAt(i);
    const v = c < 128 ? INDEX[c]! : -1;
    if (v < 0) return null;
    let carry = v;
    for (let j = 0; j < bytes.length; j++) {
      carry += bytes[j]! * 58;
      bytes[j] = carry & 0xff;
      carry >>= 8;
    }
    while (carry > 0) {
      bytes.push(carry & 0xff);
      carry >>= 8;
    }
  }
  const out = new Uint8Array(zeros + bytes.length);
  for (let i = 0; i < bytes.length; i++) out[out.length - 1 - i] = bytes[i]!;
  return out;
}

export function base58Encode(data: Uint8Array): string {
  let zeros = 0;
  while (zeros < data.length && data[zeros] === 0) zeros++;
  const digits: number[] = [];
  for (let i = zeros; i < data.length; i++) {
    let carry = data[i]!;
    for (let j = 0; j < digits.length; j++) {
      carry += digits[j]! << 8;
      digits[j] = carry % 58;
      carry = (carry / 58) | 0;
    }
    while (carry > 0) {
      digits.push(carry % 58);
      carry = (carry / 58) | 0;
    }
  }
  let s = '1'.repeat(zeros);
  for (let i = digits.length - 1; i >= 0; i--) s += ALPHABET[digits[i]!];
  return s;
}

function checksum4(payload: Uint8Array): Uint8Array {
  return sha256(sha256(payload)).subarray(0, 4);
}

export type Base58CheckResult = { ok: true; payload: Uint8Array } | { ok: false; reason: 'alphabet' | 'checksum' };

/** Decodes Base58Check, telling an invalid character apart from a failed checksum. */
export function base58CheckDecode(s: string): Base58CheckResult {
  const raw = base58Decode(s);
  if (!raw) return { ok: false, reason: 'alphabet' };
  if (raw.length < 5) return { ok: false, reason: 'checksum' };
  const payload = raw.subarray(0, raw.length - 4);
  const sum = checksum4(payload);
  for (let i = 0; i < 4; i++) if (sum[i] !== raw[raw.length - 4 + i]) return { ok: false, reason: 'checksum' };
  return { ok: true, payload };
}

export function base58CheckEncode(payload: Uint8Array): string {
  const buf = new Uint8Array(payload.length + 4);
  buf.set(payload);
  buf.set(checksum4(payload), payload.length);
  return base58Encode(buf);
}
