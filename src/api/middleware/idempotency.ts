/**
 * `Idempotency-Key` for POST routes: the first response (status + body) is stored per merchant for
 * 24 h and replayed for the same key; the same key with a different request is a 409
 * `idempotency_error`; concurrent requests with one key run the handler once (the others wait for
 * its stored response). 5xx responses are not stored, so a retry can succeed.
 * A stored response is replayed only to the API key that made the request: another key of the
 * same merchant gets a 409 `idempotency_key_in_use_by_other_key` (a replay skips the handler, so it
 * would otherwise hand one key what only another key was allowed to get, e.g. a new key's secret).
 * The route's scope check (`requireScope`) must run before this middleware: it refuses to run
 * otherwise, so no replay ever precedes authorization.
 * Stored responses are encrypted (AES-256-GCM with KASSA_SECRET_KEY): some carry a secret shown
 * once (a new API key, a webhook signing secret), and a replay must not make the database hold it
 * in the clear.
 *
 * Two ways to use it:
 * - `idempotency(deps)`: claim the key (a row in `idempotency_keys`), run the handler, store its
 *   response. Two extra statements per request.
 * - `atomicIdempotency(deps)` (POST /v1/invoices): the handler claims the key and stores its 201
 *   response in the same statement that creates the object (see `atomicIdempotencyOf`), so a
 *   successful request costs no extra statement. When the handler cannot do that (the key is
 *   taken, or the object needs a slower path) it falls back to `claimOrReplay` and marks the key
 *   claimed; a request that ends in an error before any claim (validation, 4xx from the service)
 *   claims the key afterwards and stores that answer, unless another request owns the key, in
 *   which case that request's stored answer (or the 409) is the answer. Either way one stored
 *   outcome per key, as with `idempotency`.
 */
import { createHash } from 'node:crypto';
import type { Context, MiddlewareHandler } from 'hono';
import type { Sql } from '../../db/client.ts';
import type { Config } from '../../config.ts';
import { decryptSecret, encryptSecret } from '../../crypto/secretbox.ts';
import { KassaError, invalidParam } from '../../errors.ts';
import { scopeChecked } from './auth.ts';
import type { AppEnv } from '../env.ts';

const TTL_HOURS = 24;
/** A request still "in flight" after this long is considered crashed and may be taken over. */
const STALE_LOCK_SECONDS = 60;
const WAIT_MS = 15_000;

interface Row {
  request_hash: string;
  api_key_id: string | null;
  status_code: number | null;
  response_body: string | null;
  response_plain: string | null;
  fresh: boolean;
  stale: boolean;
}

interface IdempotencyDeps {
  sql: Sql;
  config: Pick<Config, 'secretKey'>;
}

/** One request's Idempotency-Key, scoped to its merchant, with the hash of what was asked. */
export interface IdempotentRequest {
  merchantId: string;
  /** The API key that sent the request: the only one its stored response is replayed to. */
  apiKeyId: string;
  key: string;
  requestHash: string;
  method: string;
  path: string;
}

/** Reads and checks the header; undefined when the request has none. Reads the body (cached for the validator). */
async function idempotentRequest(c: Context<AppEnv>): Promise<IdempotentRequest | undefined> {
  if (!scopeChecked(c)) throw new Error(`${c.req.method} ${c.req.path}: requireScope must run before the idempotency middleware`);
  const key = c.req.header('idempotency-key');
  if (key === undefined) return undefined;
  if (key.length < 1 || key.length > 255 || !/^[\x21-\x7e]+$/.test(key)) {
    throw invalidParam('Idempotency-Key', 'The Idempotency-Key header must be 1–255 visible ASCII characters.', 'idempotency_key_invalid');
  }
  const body = await c.req.text();
  const requestHash = createHash('sha256').update(`${c.req.method} ${c.req.path}\n${body}`).digest('hex');
  const auth = c.get('auth');
  return { merchantId: auth.merchant.id, apiKeyId: auth.key.id, key, requestHash, method: c.req.method, path: c.req.path };
}

/** The stored answer of the first request with an Idempotency-Key: its status and its exact text. */
export interface StoredAnswer {
  status: number;
  text: string;
}

/** Headers of a replayed answer (the stored text is JSON). */
export const REPLAY_HEADERS = { 'content-type': 'application/json; charset=UTF-8', 'Idempotent-Replayed': 'true' } as const;

/**
 * Claims the key for this request (null), or answers without running it: the stored response of
 * the first request with this key (replayed), 409 when that request was different, 409 when it is
 * still running after WAIT_MS. Waits while the first request runs.
 */
export async function claimOrReplay(deps: IdempotencyDeps, r: IdempotentRequest): Promise<Response | null> {
  const stored = await claimOrStored(deps, r);
  return stored && new Response(stored.text, { status: stored.status, headers: REPLAY_HEADERS });
}

/**
 * `claimOrReplay` for a handler that answers the replay itself, typed as its route's response
 * (POST /v1/invoices): null when this request claimed the key, else the stored answer.
 */
export async function claimOrStored(deps: IdempotencyDeps, r: IdempotentRequest): Promise<StoredAnswer | null> {
  const { sql } = deps;
  const { merchantId, key, requestHash } = r;
  const deadline = Date.now() + WAIT_MS;
  for (;;) {
    const [claimed] = await sql<{ key: string }[]>`
      insert into idempotency_keys (merchant_id, key, request_hash, method, path, api_key_id)
      values (${merchantId}, ${key}, ${requestHash}, ${r.method}, ${r.path}, ${r.apiKeyId})
      on conflict (merchant_id, key) do update
        set request_hash = excluded.request_hash, method = excluded.method, path = excluded.path, api_key_id = excluded.api_key_id,
            status_code = null, response_body = null, response_plain = null, created_at = now(), locked_at = now()
        where idempotency_keys.created_at < now() - make_interval(hours => ${TTL_HOURS})
           or (idempotency_keys.status_code is null
               and idempotency_keys.locked_at < now() - make_interval(secs => ${STALE_LOCK_SECONDS})
               and idempotency_keys.request_hash = excluded.request_hash
               and idempotency_keys.api_key_id = excluded.api_key_id)
      returning key`;
    if (claimed) return null; // we own the key: the caller runs the request

    const [row] = await sql<Row[]>`
      select request_hash, api_key_id, status_code, response_body, response_plain,
             created_at >= now() - make_interval(hours => ${TTL_HOURS}) as fresh,
             locked_at < now() - make_interval(secs => ${STALE_LOCK_SECONDS}) as stale
      from idempotency_keys where merchant_id = ${merchantId} and key = ${key}`;
    if (!row) continue; // deleted in between (a 5xx released it): try to claim again
    // Checked first: another key learns nothing about the request or its answer.
    if (row.api_key_id !== r.apiKeyId) {
      throw new KassaError('idempotency_key_in_use_by_other_key', 'This Idempotency-Key was used by another API key of this merchant. Each API key needs its own Idempotency-Keys.', {
        status: 409, type: 'idempotency_error', param: 'Idempotency-Key',
      });
    }
    if (row.request_hash !== requestHash) {
      throw new KassaError('idempotency_key_reused', 'This Idempotency-Key was already used with a different request. Use a new key for a new request.', {
        status: 409, type: 'idempotency_error', param: 'Idempotency-Key',
      });
    }
    if (row.status_code !== null) {
      const text = row.response_body !== null
        ? decryptSecret(deps.config.secretKey, row.response_body, `idempotency:${merchantId}:${key}`)
        : row.response_plain;
      return { status: row.status_code, text: text ?? '' };
    }
    if (Date.now() > deadline) {
      throw new KassaError('idempotency_key_in_use', 'A request with this Idempotency-Key is still being processed. Retry in a few seconds.', {
        status: 409, type: 'idempotency_error', param: 'Idempotency-Key',
      });
    }
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** Forgets a claimed key (the request failed with a 5xx or threw), so a retry can run. */
async function release(deps: IdempotencyDeps, r: IdempotentRequest): Promise<void> {
  await deps.sql`delete from idempotency_keys where merchant_id = ${r.merchantId} and key = ${r.key}`;
}

/** Stores the final response of a request that claimed its key (5xx: releases the key instead). */
async function settle(deps: IdempotencyDeps, r: IdempotentRequest, res: Response): Promise<void> {
  const status = res.status;
  if (status >= 500) return release(deps, r);
  const text = await res.clone().text();
  const sealed = encryptSecret(deps.config.secretKey, text, `idempotency:${r.merchantId}:${r.key}`);
  await deps.sql`
    update idempotency_keys set status_code = ${status}, response_body = ${sealed}
    where merchant_id = ${r.merchantId} and key = ${r.key}`;
}

export function idempotency(deps: IdempotencyDeps): MiddlewareHandler<AppEnv> {
  return async (c, next) => {
    const r = await idempotentRequest(c);
    if (!r) return next();
    const replay = await claimOrReplay(deps, r);
    if (replay) return replay;
    try {
      await next();
    } catch (err) {
      await release(deps, r).catch(() => {});
      throw err;
    }
    // Errors thrown downstream were already turned into responses by Hono's compose (onError), so
    // c.res is the final response here.
    await settle(deps, r, c.res);
  };
}

/** The state of one request behind `atomicIdempotency`, shared with its handler. */
export interface AtomicIdempotency {
  readonly request: IdempotentRequest;
  /**
   * `pending`: nothing claimed yet. `claimed`: the handler claimed the key with `claimOrReplay`;
   * its response is stored afterwards. `done`: the key and its response were written together
   * with the object (or the handler answered with a replay): nothing left to do.
   */
  outcome: 'pending' | 'claimed' | 'done';
}

const atomicStates = new WeakMap<Context, AtomicIdempotency>();

/** The Idempotency-Key state of a request behind `atomicIdempotency`; undefined without the header. */
export function atomicIdempotencyOf(c: Context): AtomicIdempotency | undefined {
  return atomicStates.get(c);
}

/** See the module comment. The handler must use `atomicIdempotencyOf(c)`. */
export function atomicIdempotency(deps: IdempotencyDeps): MiddlewareHandler<AppEnv> {
  return async (c, next) => {
    const request = await idempotentRequest(c);
    if (!request) return next();
    const state: AtomicIdempotency = { request, outcome: 'pending' };
    atomicStates.set(c, state);
    try {
      await next();
    } catch (err) {
      if (state.outcome === 'claimed') await release(deps, request).catch(() => {});
      throw err;
    }
    if (state.outcome === 'done') return;
    if (state.outcome === 'pending') {
      // The request ended (with an error answer) before anything claimed the key: claim it now to
      // store that answer, unless the key belongs to another request, whose answer then wins.
      const replay = await claimOrReplay(deps, request);
      if (replay) {
        c.res = replay;
        return;
      }
    }
    await settle(deps, request, c.res);
  };
}
