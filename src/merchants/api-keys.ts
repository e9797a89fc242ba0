/**
 * API keys. A secret looks like `kassa_sk_<lookup:12><secret:32>` (base62). The first part
 * (`kassa_sk_<lookup>`) is the visible prefix and the indexed lookup; only a SHA-256 of the whole
 * secret is stored, and it is compared in constant time. Keys are 190 bits of CSPRNG output, so a
 * fast hash is appropriate (no password stretching needed).
 */
import crypto from 'node:crypto';
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
}

export interface ApiKeyService {
  create(db: Db, input: { merchantId: string; name?: string; scopes: Scope[] }): Promise<{ key: ApiKey; secret: string }>;
  list(db: Db, merchantId: string, page: { limit: number; afterSeq?: bigint; beforeSeq?: bigint }): Promise<{ data: ApiKey[]; hasMore: boolean }>;
  seqOf(db: Db, merchantId: string, id: string): Promise<bigint | undefined>;
  revoke(db: Db, merchantId: string, id: string): Promise<ApiKey>;
  /** Resolves a presented secret. Throws 401 (missing, malformed, unknown, revoked). */
  authenticate(db: Db, presented: string | undefined): Promise<Authenticated>;
}

/** `last_used_at` is kept to this resolution. */
const LAST_USED_RESOLUTION_MS = 60_000;

export function createApiKeyService(): ApiKeyService {
  /** Key id → when this service last wrote its `last_used_at` (bounded: cleared when it grows large). */
  const lastTouched = new Map<string, number>();
  function touchedRecently(keyId: string, now: number): boolean {
    const at = lastTouched.get(keyId);
    if (at !== undefined && now - at < LAST_USED_RESOLUTION_MS) return true;
    if (lastTouched.size >= 10_000) lastTouched.clear();
    lastTouched.set(keyId, now);
    return false;
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
      return fromRow(row);
    },

    async authenticate(db, presented) {
      if (!presented) {
        throw authError('api_key_missing', 'No API key provided. Send it as "Authorization: Bearer kassa_sk_…".');
      }
      const m = KEY_RE.exec(presented);
      if (!m) throw authError('api_key_invalid', 'The API key is not valid.');
      const [row] = await db<(ApiKeyRow & PaymentSettingsRow & { secret_hash: Buffer; merchant: MerchantRow })[]>`
        select k.id, k.merchant_id, k.name, k.lookup, k.scopes, k.created_at, k.last_used_at, k.revoked_at,
               k.secret_hash, to_jsonb(m.*) as merchant, ${paymentSettingsColumns(db)}
        from api_keys k join merchants m on m.id = k.merchant_id
        where k.lookup = ${m[1]!}`;
      // Hash and compare even when the lookup misses, so timing does not reveal which part was wrong.
      const presentedHash = hashSecret(presented);
      const stored = row?.secret_hash ?? Buffer.alloc(32);
      const equal = crypto.timingSafeEqual(presentedHash, stored);
      if (!row || !equal) throw authError('api_key_invalid', 'The API key is not valid.');
      if (row.revoked_at) throw authError('api_key_revoked', 'This API key has been revoked.');
      const now = Date.now();
      if ((!row.last_used_at || now - row.last_used_at.getTime() > LAST_USED_RESOLUTION_MS) && !touchedRecently(row.id, now)) {
        // Coarse (once a minute) so authentication does not write on every request; the process-local
        // guard keeps the requests that read the same stale value at once from all writing it.
        await db`
          update api_keys set last_used_at = now()
          where id = ${row.id} and (last_used_at is null or last_used_at < now() - make_interval(secs => ${LAST_USED_RESOLUTION_MS / 1000}))`;
      }
      const mer = row.merchant;
      return {
        key: fromRow(row),
        merchant: merchantFromRow({ ...mer, created_at: new Date(mer.created_at), updated_at: new Date(mer.updated_at) }),
        paymentSettings: paymentSettingsFromRow(row),
      };
    },
  };
}
