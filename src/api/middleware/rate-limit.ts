import { createHash } from 'node:crypto';
import type { MiddlewareHandler } from 'hono';
import type { Redis } from 'ioredis';
import { KassaError } from '../../errors.ts';
import type { AppEnv } from '../env.ts';

/** INCRBY the window's counter; a new counter expires after ARGV[2] seconds. One command, atomic. */
const INCR_SCRIPT = `local n = redis.call('INCRBY', KEYS[1], ARGV[1])
if n == tonumber(ARGV[1]) then redis.call('EXPIRE', KEYS[1], ARGV[2]) end
return n`;
const INCR_SHA = createHash('sha1').update(INCR_SCRIPT).digest('hex');

interface Batch {
  n: number;
  waiters: { resolve(count: number): void; reject(err: unknown): void }[];
}

/**
 * Redis-backed fixed-window limit per API key (one-second windows). Shared by every API process,
 * so a horizontally scaled deployment enforces one limit. When Redis is unreachable the request is
 * allowed (fail open) and logged: losing rate limiting is better than refusing payments.
 *
 * Requests of one key that reach the limiter in the same event-loop turn share one Redis command
 * (INCRBY their number, via a small Lua script that also sets the expiry): each gets its own count
 * as if they had been counted one by one, so the decisions are those of one INCR per request, with
 * fewer round trips under load.
 */
export function rateLimitPerKey(opts: { redis: Redis; prefix: string; perSecond: number }): MiddlewareHandler<AppEnv> {
  const pending = new Map<string, Batch>();

  async function incrBy(key: string, n: number): Promise<number> {
    try {
      return Number(await opts.redis.evalsha(INCR_SHA, 1, key, n, 2));
    } catch (err) {
      if (!/NOSCRIPT/.test((err as Error).message)) throw err;
      return Number(await opts.redis.eval(INCR_SCRIPT, 1, key, n, 2));
    }
  }

  function flush(key: string, batch: Batch): void {
    pending.delete(key);
    incrBy(key, batch.n).then(
      (total) => {
        const first = total - batch.n;
        batch.waiters.forEach((w, i) => w.resolve(first + i + 1));
      },
      (err: unknown) => batch.waiters.forEach((w) => w.reject(err)),
    );
  }

  function count(key: string): Promise<number> {
    let batch = pending.get(key);
    if (!batch) {
      const b: Batch = { n: 0, waiters: [] };
      pending.set(key, b);
      setImmediate(() => flush(key, b));
      batch = b;
    }
    batch.n++;
    const b = batch;
    return new Promise((resolve, reject) => b.waiters.push({ resolve, reject }));
  }

  return async (c, next) => {
    const keyId = c.get('auth').key.id;
    const window = Math.floor(Date.now() / 1000);
    const redisKey = `${opts.prefix}:ratelimit:${keyId}:${window}`;
    let used = 0;
    try {
      used = await count(redisKey);
    } catch (err) {
      c.get('log').warn({ err: (err as Error).message }, 'rate limiter unavailable; allowing request');
    }
    c.header('RateLimit-Limit', String(opts.perSecond));
    c.header('RateLimit-Remaining', String(Math.max(0, opts.perSecond - used)));
    if (used > opts.perSecond) {
      throw new KassaError('rate_limited', `Too many requests for this API key (limit ${opts.perSecond} per second). Retry after the Retry-After delay.`, {
        status: 429, type: 'rate_limit_error', headers: { 'Retry-After': '1' },
      });
    }
    await next();
  };
}
