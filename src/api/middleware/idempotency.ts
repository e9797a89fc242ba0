/**
 * `Idempotency-Key` for POST routes (DESIGN.md §4): the first response (status + body) is stored per
 * merchant for 24 h and replayed for the same key; the same key with a different request is a 409
 * `idempotency_error`; concurrent requests with one key run the handler once (the others wait for
 * its stored response). 5xx responses are not stored, so a retry can succeed.
 * Stored responses are encrypted (AES-256-GCM with KASSA_SECRET_KEY): some carry a secret shown
 * once (a new API key, a webhook signing secret), and a replay must not make the database hold it
 * in the clear.
 */
import { createHash } from 'node:crypto';
import type { MiddlewareHandler } from 'hono';
import type { Sql } from '../../db/client.ts';
import type { Config } from '../../config.ts';
import { decryptSecret, encryptSecret } from '../../crypto/secretbox.ts';
import { KassaError, invalidParam } from '../../errors.ts';
import type { AppEnv } from '../env.ts';

const TTL_HOURS = 24;
/** A request still "in flight" after this long is considered crashed and may be taken over. */
const STALE_LOCK_SECONDS = 60;
const WAIT_MS = 15_000;

interface Row {
  request_hash: string;
  status_code: number | null;
  response_body: string | null;
  fresh: boolean;
  stale: boolean;
}

export function idempotency(deps: { sql: Sql; config: Pick<Config, 'secretKey'> }): MiddlewareHandler<AppEnv> {
  const { sql } = deps;
  return async (c, next) => {
    const key = c.req.header('idempotency-key');
    if (key === undefined) return next();
    if (key.length < 1 || key.length > 255 || !/^[\x21-\x7e]+$/.test(key)) {
      throw invalidParam('Idempotency-Key', 'The Idempotency-Key header must be 1–255 visible ASCII characters.', 'idempotency_key_invalid');
    }
    const merchantId = c.get('auth').merchant.id;
    const body = await c.req.text();
    const requestHash = createHash('sha256').update(`${c.req.method} ${c.req.path}\n${body}`).digest('hex');

    const deadline = Date.now() + WAIT_MS;
    for (;;) {
      const [claimed] = await sql<{ key: string }[]>`
        insert into idempotency_keys (merchant_id, key, request_hash, method, path)
        values (${merchantId}, ${key}, ${requestHash}, ${c.req.method}, ${c.req.path})
        on conflict (merchant_id, key) do update
          set request_hash = excluded.request_hash, method = excluded.method, path = excluded.path,
              status_code = null, response_body = null, created_at = now(), locked_at = now()
          where idempotency_keys.created_at < now() - make_interval(hours => ${TTL_HOURS})
             or (idempotency_keys.status_code is null
                 and idempotency_keys.locked_at < now() - make_interval(secs => ${STALE_LOCK_SECONDS})
                 and idempotency_keys.request_hash = excluded.request_hash)
        returning key`;
      if (claimed) break; // we own the key: run the handler below

      const [row] = await sql<Row[]>`
        select request_hash, status_code, response_body,
               created_at >= now() - make_interval(hours => ${TTL_HOURS}) as fresh,
               locked_at < now() - make_interval(secs => ${STALE_LOCK_SECONDS}) as stale
        from idempotency_keys where merchant_id = ${merchantId} and key = ${key}`;
      if (!row) continue; // deleted in between (a 5xx released it): try to claim again
      if (row.request_hash !== requestHash) {
        throw new KassaError('idempotency_key_reused', 'This Idempotency-Key was already used with a different request. Use a new key for a new request.', {
          status: 409, type: 'idempotency_error', param: 'Idempotency-Key',
        });
      }
      if (row.status_code !== null) {
        const replay = row.response_body === null ? null : decryptSecret(deps.config.secretKey, row.response_body, `idempotency:${merchantId}:${key}`);
        return new Response(replay, {
          status: row.status_code,
          headers: { 'content-type': 'application/json; charset=UTF-8', 'Idempotent-Replayed': 'true' },
        });
      }
      if (Date.now() > deadline) {
        throw new KassaError('idempotency_key_in_use', 'A request with this Idempotency-Key is still being processed. Retry in a few seconds.', {
          status: 409, type: 'idempotency_error', param: 'Idempotency-Key',
        });
      }
      await new Promise((r) => setTimeout(r, 50));
    }

    try {
      await next();
    } catch (err) {
      await sql`delete from idempotency_keys where merchant_id = ${merchantId} and key = ${key}`.catch(() => {});
      throw err;
    }
    // Errors thrown downstream were already turned into responses by Hono's compose (onError), so
    // c.res is the final response here.
    const status = c.res.status;
    if (status >= 500) {
      await sql`delete from idempotency_keys where merchant_id = ${merchantId} and key = ${key}`;
      return;
    }
    const text = await c.res.clone().text();
    const sealed = encryptSecret(deps.config.secretKey, text, `idempotency:${merchantId}:${key}`);
    await sql`
      update idempotency_keys set status_code = ${status}, response_body = ${sealed}
      where merchant_id = ${merchantId} and key = ${key}`;
  };
}
