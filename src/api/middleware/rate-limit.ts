import type { MiddlewareHandler } from 'hono';
import type { Redis } from 'ioredis';
import { KassaError } from '../../errors.ts';
import type { AppEnv } from '../env.ts';

/**
 * Redis-backed fixed-window limit per API key (one-second windows). Shared by every API process,
 * so a horizontally scaled deployment enforces one limit. When Redis is unreachable the request is
 * allowed (fail open) and logged: losing rate limiting is better than refusing payments.
 */
export function rateLimitPerKey(opts: { redis: Redis; prefix: string; perSecond: number }): MiddlewareHandler<AppEnv> {
  return async (c, next) => {
    const keyId = c.get('auth').key.id;
    const window = Math.floor(Date.now() / 1000);
    const redisKey = `${opts.prefix}:ratelimit:${keyId}:${window}`;
    let count = 0;
    try {
      const res = await opts.redis.multi().incr(redisKey).expire(redisKey, 2).exec();
      count = Number(res?.[0]?.[1] ?? 0);
    } catch (err) {
      c.get('log').warn({ err: (err as Error).message }, 'rate limiter unavailable; allowing request');
    }
    c.header('RateLimit-Limit', String(opts.perSecond));
    c.header('RateLimit-Remaining', String(Math.max(0, opts.perSecond - count)));
    if (count > opts.perSecond) {
      throw new KassaError('rate_limited', `Too many requests for this API key (limit ${opts.perSecond} per second). Retry after the Retry-After delay.`, {
        status: 429, type: 'rate_limit_error', headers: { 'Retry-After': '1' },
      });
    }
    await next();
  };
}
