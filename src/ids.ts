import { randomFillSync } from 'node:crypto';

const ALPHABET = '0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz';

/** CSPRNG bytes fetched 4 KiB at a time (one call per ~90 ids instead of one per id); each byte is used once. */
const pool = Buffer.alloc(4096);
let poolAt = pool.length;

/** Random base62 string from a CSPRNG (rejection sampling, no modulo bias). */
export function randomBase62(length: number): string {
  let out = '';
  while (out.length < length) {
    if (poolAt === pool.length) {
      randomFillSync(pool);
      poolAt = 0;
    }
    const b = pool[poolAt++]!;
    if (b < 248) out += ALPHABET[b % 62];
  }
  return out;
}

export type IdPrefix = 'mer' | 'key' | 'inv' | 'pay' | 'evt' | 'we' | 'req' | 'del' | 'usr' | 'led' | 'ref' | 'po';

/** A prefixed, unguessable object id (`inv_…`): 22 base62 characters ≈ 131 bits. */
export function newId(prefix: IdPrefix): string {
  return `${prefix}_${randomBase62(22)}`;
}

export function hasPrefix(id: string, prefix: IdPrefix): boolean {
  return id.startsWith(prefix + '_') && /^[a-z]+_[0-9A-Za-z]{1,64}$/.test(id);
}
