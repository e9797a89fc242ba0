import type { OpenAPIHono } from '@hono/zod-openapi';
import { createRoute, z } from '@hono/zod-openapi';
import type { Redis } from 'ioredis';
import type { Sql } from '../../db/client.ts';
import { readChainHealth } from '../../chains/health.ts';
import type { AppEnv } from '../env.ts';

export interface HealthCheck {
  name: string;
  /** Resolves with details when healthy; throws (or resolves {ok:false}) when not. */
  check(): Promise<{ ok: boolean; detail?: unknown }>;
}

function withTimeout<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const t = setTimeout(() => reject(new Error(`${what} did not answer within ${ms} ms`)), ms);
    p.then((v) => { clearTimeout(t); resolve(v); }, (e) => { clearTimeout(t); reject(e); });
  });
}

export function coreHealthChecks(deps: { sql: Sql; redis: Redis }): HealthCheck[] {
  return [
    { name: 'postgres', check: async () => { await deps.sql`select 1`; return { ok: true }; } },
    { name: 'redis', check: async () => ({ ok: (await deps.redis.ping()) === 'PONG' }) },
  ];
}

/** One check per chain: its watcher's last report (src/chains/health.ts), unhealthy when older than `staleAfterMs`. */
export function chainHealthChecks(redis: Redis, prefix: string, chains: string[], staleAfterMs = 60_000): HealthCheck[] {
  return chains.map((chain) => ({
    name: `chain:${chain}`,
    async check() {
      const h = await readChainHealth(redis, prefix, chain);
      if (!h) return { ok: false, detail: { state: 'unknown', error: 'no watcher has reported yet (is `kassa worker` running?)' } };
      const stale = Date.now() - Date.parse(h.updated_at) > staleAfterMs;
      return { ok: h.state === 'ok' && !stale, detail: stale ? { ...h, state: 'stale' } : h };
    },
  }));
}

const HealthSchema = z
  .object({
    status: z.enum(['ok', 'degraded']),
    checks: z.record(z.string(), z.object({ ok: z.boolean(), error: z.string().optional(), detail: z.unknown().optional() })),
  })
  .openapi('Health');

/** GET /health: 200 when every check passes, 503 otherwise (with each check's state). */
export function registerHealthRoute(app: OpenAPIHono<AppEnv>, checks: HealthCheck[]): void {
  app.openapi(
    createRoute({
      method: 'get', path: '/health', tags: ['Operations'], summary: 'Health of the API and its dependencies',
      responses: {
        200: { description: 'Healthy', content: { 'application/json': { schema: HealthSchema } } },
        503: { description: 'A dependency is down', content: { 'application/json': { schema: HealthSchema } } },
      },
    }),
    async (c) => {
      const results = await Promise.all(
        checks.map(async (h) => {
          try {
            const r = await withTimeout(h.check(), 2000, h.name);
            return [h.name, { ok: r.ok, ...(r.detail !== undefined ? { detail: r.detail } : {}) }] as const;
          } catch (err) {
            return [h.name, { ok: false, error: (err as Error).message }] as const;
          }
        }),
      );
      const ok = results.every(([, r]) => r.ok);
      return c.json({ status: ok ? ('ok' as const) : ('degraded' as const), checks: Object.fromEntries(results) }, ok ? 200 : 503);
    },
  );
}
