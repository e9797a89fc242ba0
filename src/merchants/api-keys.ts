/**
 * API keys. A secret looks like `kassa_sk_<lookup:12><secret:32>` (base62). The first part
 * (`kassa_sk_<lookup>`) is the visible prefix and the indexed lookup; only a SHA-256 of the whole
 * secret is stored, and it is compared in constant time. Keys are 190 bits of CSPRNG output, so a
 * fast hash is appropriate (no password stretching needed).
 */
import crypto from 'node:crypto';
import type postgres from 'postgres';
import type { Db } from '../db/client.ts';
import { newId, randomBase62 } from '../ids.ts';
import { KassaError, notFound } from '../errors.ts';
import type { Scope } from './scopes.ts';
import {
  merchantFromRow, paymentSettingsColumns, paymentSettingsFromRow,
  type Merchant, type MerchantPaymentSettings, type MerchantRow, type PaymentSettingsRow,
} from './service.ts';

export const KEY_PREFIX = 'kassa_sk_';
const LOOKUP_LEN = 12;
const SECRET_LEN = 32;
const KEY_RE = new RegExp(`^${KEY_PREFIX}([0-9A-Za-z]{${LOOKUP_LEN}})[0-9A-Za-z]{${SECRET_LEN}}$`);

export interface ApiKey {
  id: string;
  merchantId: string;
  name: string;
  /** Visible prefix, e.g. `kassa_sk_AbC123xyz789`. */
  prefix: string;
  scopes: Scope[];
  createdAt: Date;
  lastUsedAt: Date | null;
  revokedAt: Date | null;
}

interface ApiKeyRow {
  id: string;
  merchant_id: string;
  name: string;
  lookup: string;
  scopes: string[];
  created_at: Date;
  last_used_at: Date | null;
  revoked_at: Date | null;
}

function fromRow(r: ApiKeyRow): ApiKey {
  return {
    id: r.id,
    merchantId: r.merchant_id,
    name: r.name,
    prefix: KEY_PREFIX + r.lookup,
    scopes: r.scopes as Scope[],
    createdAt: r.created_at,
    lastUsedAt: r.last_used_at,
    revokedAt: r.revoked_at,
  };
}

function hashSecret(secret: string): Buffer {
  return crypto.createHash('sha256').update(secret, 'utf8').digest();
}

function authError(code: string, message: string): KassaError {
  return new KassaError(code, message, { status: 401, type: 'authentication_error', retryable: false });
}

export interface Authenticated {
  key: ApiKey;
  /** The key's merchant, read in the same query (settings included). */
  merchant: Merchant;
  /** The merchant's payment settings, read in the same query (invoice creation needs no other read). */
  paymentSettings: MerchantPaymentSettings;
  /** md5 of the key's id, scopes, its merchant's row and payment settings, as read (see `stillCurrent`). */
  fingerprint: string;
  /**
   * True when this answer came from the process's cache (`authenticate` with `fromCache`), not
   * from the database: the caller must not act on it unless `stillCurrent` holds in the statement
   * that acts, nor refuse anything because of it before reading the key again.
   */
  fromCache: boolean;
}

/** How long a cached authentication is used before the key is read again (see `authenticate`). */
export const AUTH_CACHE_TTL_MS = 60_000;
const AUTH_CACHE_MAX = 10_000;

export interface ApiKeyService {
  create(db: Db, input: { merchantId: string; name?: string; scopes: Scope[] }): Promise<{ key: ApiKey; secret: string }>;
  list(db: Db, merchantId: string, page: { limit: number; afterSeq?: bigint; beforeSeq?: bigint }): Promise<{ data: ApiKey[]; hasMore: boolean }>;
  seqOf(db: Db, merchantId: string, id: string): Promise<bigint | undefined>;
  revoke(db: Db, merchantId: string, id: string): Promise<ApiKey>;
  /**
   * Resolves a presented secret. Throws 401 (missing, malformed, unknown, revoked). With
   * `fromCache`, a key this process authenticated less than AUTH_CACHE_TTL_MS ago is answered from
   * memory (the secret is still hashed and compared) with `fromCache` set: only for a caller that
   * checks `stillCurrent` in the statement that acts on it. Without it the database is read (and
   * the cache refreshed).
   */
  authenticate(db: Db, presented: string | undefined, opts?: { fromCache?: boolean }): Promise<Authenticated>;
  /**
   * A boolean SQL expression: true while the key of an authentication is unrevoked and its scopes,
   * merchant row and payment settings are what they were when it was read (same `fingerprint`). A statement gated on
   * it acts exactly as if the key had been read from the database in that statement.
   */
  stillCurrent(db: Db, auth: Pick<Authenticated, 'key' | 'fingerprint'>): postgres.Fragment;
}

/**
 * The relations `k` (api_keys), `m` (its merchant) and `s` (the payment settings) and the
 * fingerprint over what an authentication answers; the same text in `authenticate` and
 * `stillCurrent`, so the two agree on what "unchanged" means.
 */
function authRelations(db: Db) {
  return db`api_keys k join merchants m on m.id = k.merchant_id cross join lateral (select ${paymentSettingsColumns(db)}) s`;
}
function authFingerprint(db: Db) {
  return db`md5(jsonb_build_array(k.id, k.merchant_id, k.scopes, to_jsonb(m.*), s.payment_bitcoin, s.payment_evm)::text)`;
}

/** `last_used_at` is kept to this resolution. */
const LAST_USED_RESOLUTION_MS = 60_000;

interface CacheEntry {
  secretHash: Buffer;
  auth: Authenticated;
  at: number;
}

export function createApiKeyService(): ApiKeyService {
  /** Lookup → the last authentication read from the database for it (unrevoked keys only). */
  const cache = new Map<string, CacheEntry>();
  /** Key id → when this service last wrote its `last_used_at` (bounded: cleared when it grows large). */
  const lastTouched = new Map<string, number>();
  function touchedRecently(keyId: string, now: number): boolean {
    const at = lastTouched.get(keyId);
    if (at !== undefined && now - at < LAST_USED_RESOLUTION_MS) return true;
    if (lastTouched.size >= 10_000) lastTouched.clear();
    lastTouched.set(keyId, now);
    return false;
  }

  /**
   * Keeps `last_used_at` to LAST_USED_RESOLUTION_MS: written at most once a minute per key and
   * process (the guard keeps requests that read the same stale value at once from all writing it).
   */
  async function touch(db: Db, key: ApiKey, now: number): Promise<void> {
    if (touchedRecently(key.id, now)) return;
    await db`
      update api_keys set last_used_at = now()
      where id = ${key.id} and (last_used_at is null or last_used_at < now() - make_interval(secs => ${LAST_USED_RESOLUTION_MS / 1000}))`;
  }

  return {
    async create(db, input) {
      const lookup = randomBase62(LOOKUP_LEN);
      const secret = KEY_PREFIX + lookup + randomBase62(SECRET_LEN);
      const [row] = await db<ApiKeyRow[]>`
        insert into api_keys (id, merchant_id, name, lookup, secret_hash, scopes)
        values (${newId('key')}, ${input.merchantId}, ${input.name ?? ''}, ${lookup}, ${hashSecret(secret)}, ${input.scopes})
        returning id, merchant_id, name, lookup, scopes, created_at, last_used_at, revoked_at`;
      return { key: fromRow(row!), secret };
    },

    async list(db, merchantId, page) {
      const rows = await db<ApiKeyRow[]>`
        select id, merchant_id, name, lookup, scopes, created_at, last_used_at, revoked_at from api_keys
        where merchant_id = ${merchantId}
          ${page.afterSeq !== undefined ? db`and seq < ${page.afterSeq}` : db``}
          ${page.beforeSeq !== undefined ? db`and seq > ${page.beforeSeq}` : db``}
        order by seq ${page.beforeSeq !== undefined ? db`asc` : db`desc`}
        limit ${page.limit + 1}`;
      const hasMore = rows.length > page.limit;
      const data = rows.slice(0, page.limit).map(fromRow);
      if (page.beforeSeq !== undefined) data.reverse();
      return { data, hasMore };
    },

    async seqOf(db, merchantId, id) {
      const [row] = await db<{ seq: bigint }[]>`select seq from api_keys where id = ${id} and merchant_id = ${merchantId}`;
      return row?.seq;
    },

    async revoke(db, merchantId, id) {
      const [row] = await db<ApiKeyRow[]>`
        update api_keys set revoked_at = coalesce(revoked_at, now())
        where id = ${id} and merchant_id = ${merchantId}
        returning id, merchant_id, name, lookup, scopes, created_at, last_used_at, revoked_at`;
      if (!row) throw notFound('API key', id, 'id');
      cache.delete(row.lookup);
      return fromRow(row);
    },

    async authenticate(db, presented, opts = {}) {
      if (!presented) {
        throw authError('api_key_missing', 'No API key provided. Send it as "Authorization: Bearer kassa_sk_…".');
      }
      const m = KEY_RE.exec(presented);
      if (!m) throw authError('api_key_invalid', 'The API key is not valid.');
      const lookup = m[1]!;
      const presentedHash = hashSecret(presented);
      const now = Date.now();
      if (opts.fromCache) {
        const hit = cache.get(lookup);
        if (hit && now - hit.at < AUTH_CACHE_TTL_MS && crypto.timingSafeEqual(presentedHash, hit.secretHash)) {
          await touch(db, hit.auth.key, now);
          return hit.auth;
        }
      }
      const [row] = await db<(ApiKeyRow & PaymentSettingsRow & { secret_hash: Buffer; merchant: MerchantRow; fingerprint: string })[]>`
        select k.id, k.merchant_id, k.name, k.lookup, k.scopes, k.created_at, k.last_used_at, k.revoked_at,
               k.secret_hash, to_jsonb(m.*) as merchant, s.payment_bitcoin, s.payment_evm, ${authFingerprint(db)} as fingerprint
        from ${authRelations(db)}
        where k.lookup = ${lookup}`;
      // Hash and compare even when the lookup misses, so timing does not reveal which part was wrong.
      const stored = row?.secret_hash ?? Buffer.alloc(32);
      const equal = crypto.timingSafeEqual(presentedHash, stored);
      if (!row || !equal) throw authError('api_key_invalid', 'The API key is not valid.');
      if (row.revoked_at) {
        cache.delete(lookup);
        throw authError('api_key_revoked', 'This API key has been revoked.');
      }
      const key = fromRow(row);
      if (!row.last_used_at || now - row.last_used_at.getTime() > LAST_USED_RESOLUTION_MS) await touch(db, key, now);
      const mer = row.merchant;
      const auth: Authenticated = {
        key,
        merchant: merchantFromRow({ ...mer, created_at: new Date(mer.created_at), updated_at: new Date(mer.updated_at) }),
        paymentSettings: paymentSettingsFromRow(row),
        fingerprint: row.fingerprint,
        fromCache: false,
      };
      if (cache.size >= AUTH_CACHE_MAX) cache.clear();
      cache.set(lookup, { secretHash: row.secret_hash, auth: { ...auth, fromCache: true }, at: now });
      return auth;
    },

    stillCurrent(db, auth) {
      return db`exists (select from ${authRelations(db)}
                        where k.id = ${auth.key.id} and k.revoked_at is null and ${authFingerprint(db)} = ${auth.fingerprint})`;
    },
  };
}
