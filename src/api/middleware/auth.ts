import type { Context, MiddlewareHandler } from 'hono';
import { KassaError, isKassaError } from '../../errors.ts';
import { clientIp } from '../client-ip.ts';
import type { Deps } from '../../deps.ts';
import type { Scope } from '../../merchants/scopes.ts';
import type { Authenticated } from '../../merchants/api-keys.ts';
import type { AppEnv } from '../env.ts';

/** Failed authentications one client IP may make per minute before it gets 429s. */
export const AUTH_FAILURES_PER_MINUTE = 30;

/**
 * Routes whose handler may act on an authentication answered from the process's cache, because it
 * acts in ONE statement gated on `apiKeys.stillCurrent` (the key unrevoked, its merchant's settings
 * unchanged) and calls `reauthenticate` when that fails: POST /v1/invoices. Every other route reads
 * the key from the database on each request.
 */
const CACHED_AUTH_ROUTES = new Set(['POST /v1/invoices']);

/** The database authentication of the current request again (see `reauthenticate`). */
const reauthenticators = new WeakMap<Context, () => Promise<Authenticated>>();

/**
 * For a request authenticated from the cache whose statement found it stale: reads the key from the
 * database (401 when it was revoked in the meantime, counted as a failed authentication like any
 * other), checks `scopes` again (403) and sets `auth` to the fresh answer, which it also returns.
 */
export async function reauthenticate(c: Context<AppEnv>, scopes: readonly Scope[]): Promise<Authenticated> {
  const again = reauthenticators.get(c);
  if (!again) throw new Error(`${c.req.method} ${c.req.path}: reauthenticate without requireApiKey`);
  const auth = await again();
  c.set('auth', auth);
  checkScopes(auth, scopes);
  return auth;
}

/**
 * Bearer API key authentication: sets `auth` (key + merchant) or answers 401. Failed attempts are
 * counted per client IP (src/api/client-ip.ts, so TRUSTED_PROXIES applies) in Redis, in one-minute
 * windows: past AUTH_FAILURES_PER_MINUTE the IP gets 429 with Retry-After until the window ends,
 * before any key lookup. A malformed key (wrong prefix, length or characters) is refused by its
 * shape, without a database query. Redis unreachable: the limit is skipped (logged), not the API.
 */
export function requireApiKey(deps: Pick<Deps, 'sql' | 'apiKeys' | 'redis'> & { config: Pick<Deps['config'], 'queuePrefix'> }): MiddlewareHandler<AppEnv> {
  const keyOf = (ip: string, window: number) => `${deps.config.queuePrefix}:authfail:${ip}:${window}`;
  // Requests from one IP share a GET that is still in flight instead of sending their own (under
  // load that is one read per IP per Redis round trip, not one per request). Their answer can miss a
  // failure counted during that round trip; the check and the count were never atomic (concurrent
  // guesses all read the count before any of them adds to it), so the limit is the same.
  const reads = new Map<string, Promise<string | null>>();
  const failuresOf = (key: string): Promise<string | null> => {
    let p = reads.get(key);
    if (!p) {
      p = deps.redis.get(key).finally(() => reads.delete(key));
      reads.set(key, p);
    }
    return p;
  };
  return async (c, next) => {
    const ip = clientIp(c);
    const now = Date.now();
    const window = Math.floor(now / 60_000);
    let failures = 0;
    try {
      failures = Number((await failuresOf(keyOf(ip, window))) ?? 0);
    } catch (err) {
      c.get('log')?.warn({ err: (err as Error).message }, 'auth failure limiter unavailable');
    }
    if (failures >= AUTH_FAILURES_PER_MINUTE) {
      const retryAfter = Math.max(1, Math.ceil(((window + 1) * 60_000 - now) / 1000));
      throw new KassaError('auth_rate_limited', `Too many failed authentications from this address. Retry after ${retryAfter} seconds.`, {
        status: 429, type: 'rate_limit_error', headers: { 'Retry-After': String(retryAfter) },
      });
    }
    const fail = async (err: KassaError) => {
      try {
        const k = keyOf(ip, window);
        await deps.redis.multi().incr(k).expire(k, 120).exec();
      } catch {
        // counted best effort (see above)
      }
      return err;
    };
    const header = c.req.header('authorization');
    let presented: string | undefined;
    if (header) {
      const m = /^Bearer\s+(\S+)\s*$/i.exec(header);
      if (!m) {
        throw await fail(new KassaError('api_key_invalid', 'The Authorization header must be "Bearer <API key>".', {
          status: 401, type: 'authentication_error',
        }));
      }
      presented = m[1];
    }
    const authenticate = async (fromCache: boolean) => {
      try {
        return await deps.apiKeys.authenticate(deps.sql, presented, { fromCache });
      } catch (err) {
        if (isKassaError(err) && err.status === 401) throw await fail(err);
        throw err;
      }
    };
    const cacheable = CACHED_AUTH_ROUTES.has(`${c.req.method} ${c.req.path}`);
    c.set('auth', await authenticate(cacheable));
    if (cacheable) reauthenticators.set(c, () => authenticate(false));
    await next();
  };
}

/** Whether `requireScope` ran for this request (the idempotency layer refuses to replay before it). */
export function scopeChecked(c: Context): boolean {
  return c.get('scopeChecked') === true;
}

/** 403 unless the key has every listed scope. The scopes ride along as `kassaScopes` (read by the OpenAPI document). */
export function requireScope(...scopes: Scope[]): MiddlewareHandler<AppEnv> & { kassaScopes: readonly Scope[] } {
  const mw: MiddlewareHandler<AppEnv> = async (c, next) => {
    checkScopes(c.get('auth'), scopes);
    c.set('scopeChecked', true);
    await next();
  };
  return Object.assign(mw, { kassaScopes: scopes });
}

function checkScopes(auth: Authenticated, scopes: readonly Scope[]): void {
  const have = auth.key.scopes;
  const missing = scopes.filter((s) => !have.includes(s));
  if (missing.length > 0) {
    throw new KassaError('scope_missing', `This API key lacks the scope ${missing.join(', ')} needed for this request.`, {
      status: 403, type: 'permission_error',
    });
  }
}
