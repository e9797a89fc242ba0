/**
 * The per-key limiter counts requests of one event-loop turn with one Redis command; each request
 * must still get its own count (the decisions of one INCR per request).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Hono } from 'hono';
import { Redis } from 'ioredis';
import { rateLimitPerKey } from '../../src/api/middleware/rate-limit.ts';
import type { AppEnv } from '../../src/api/env.ts';
import { createLogger } from '../../src/logger.ts';
import { randomBase62 } from '../../src/ids.ts';
import { REDIS_URL } from '../support/db.ts';

let redis: Redis;
const prefix = `{kassa-test-rl-${randomBase62(8)}}`;

beforeAll(() => {
  redis = new Redis(REDIS_URL, { maxRetriesPerRequest: 1 });
});
afterAll(async () => {
  const keys = await redis.keys(`${prefix}*`);
  if (keys.length) await redis.del(...keys);
  redis.disconnect();
});

function appWith(r: Pick<Redis, 'evalsha' | 'eval'>, perSecond: number, keyId = 'key_1') {
  const app = new Hono<AppEnv>();
  app.use('*', async (c, next) => {
    c.set('log', createLogger({ level: 'silent' }));
    c.set('auth', { key: { id: keyId } } as never);
    await next();
  });
  app.use('*', rateLimitPerKey({ redis: r as Redis, prefix, perSecond }));
  app.get('/', (c) => c.text('ok'));
  app.onError((err, c) => c.text(err.message, ((err as { status?: number }).status ?? 500) as 429));
  return app;
}

describe('rateLimitPerKey', () => {
  it('one Redis command for a burst, yet every request gets its own count', async () => {
    let calls = 0;
    const counting = {
      evalsha: (...args: Parameters<Redis['evalsha']>) => { calls++; return redis.evalsha(...args); },
      eval: (...args: Parameters<Redis['eval']>) => { calls++; return redis.eval(...args); },
    } as unknown as Redis;
    const app = appWith(counting, 5, `key_${randomBase62(6)}`);
    await new Promise((r) => setTimeout(r, 1000 - (Date.now() % 1000))); // start of a one-second window
    const results = await Promise.all(Array.from({ length: 12 }, () => app.request('/')));
    expect(results.filter((r) => r.status === 200)).toHaveLength(5);
    expect(results.filter((r) => r.status === 429)).toHaveLength(7);
    expect(results.map((r) => r.headers.get('ratelimit-remaining')).sort()).toEqual(['0', '0', '0', '0', '0', '0', '0', '0', '1', '2', '3', '4']);
    expect(calls).toBeLessThanOrEqual(2); // 1, or 2 when the script was not loaded yet (NOSCRIPT → EVAL)
    // The counter holds every request, and expires.
    const keys = await redis.keys(`${prefix}:ratelimit:*`);
    const mine = keys.filter((k) => k.includes(':key_'));
    const values = await Promise.all(mine.map((k) => redis.get(k)));
    expect(values.map(Number).reduce((a, b) => a + b, 0)).toBe(12);
    for (const k of mine) expect(await redis.ttl(k)).toBeGreaterThan(0);
  });

  it('requests in separate turns keep counting in the same window', async () => {
    const app = appWith(redis, 3, `key_${randomBase62(6)}`);
    await new Promise((r) => setTimeout(r, 1000 - (Date.now() % 1000)));
    const statuses = [];
    for (let i = 0; i < 5; i++) statuses.push((await app.request('/')).status);
    expect(statuses).toEqual([200, 200, 200, 429, 429]);
  });

  it('fails open when Redis errors', async () => {
    const broken = { evalsha: () => Promise.reject(new Error('connection lost')), eval: () => Promise.reject(new Error('connection lost')) } as unknown as Redis;
    const res = await appWith(broken, 1).request('/');
    expect(res.status).toBe(200);
  });
});
