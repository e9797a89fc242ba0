import type { OpenAPIHono } from '@hono/zod-openapi';
import { createRoute, z } from '@hono/zod-openapi';
import type { Redis } from 'ioredis';
import type { Sql } from '../../db/client.ts';
import { readChainHealth, readSweeperHealth } from '../../chains/health.ts';
import type { AppEnv } from '../env.ts';

export interface HealthCheck {
  name: string;
  /** Resolves with details when healthy; throws (or resolves {ok:false}) when not. */
  check(): Promise<{ ok: boolean; detail?: unknown }>;
  /** Default true. A failing non-critical check makes the status "degraded" but the response stays 200. */
  critical?: boolean;
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

/**
 * `sweeper:<chain>` for each chain with a sweeper key (src/chains/health.ts): not ok when the key's
 * balance is below the chain's `sweep.low_balance`, when the last run failed, or when no run
 * reported for 5 minutes. Not critical: it makes /health "degraded" but keeps it 200 (payments are
 * still detected and credited; only sweeps wait), so a load balancer does not take the API out for it.
 */
export function sweeperHealthChecks(redis: Redis, prefix: string, chains: string[], staleAfterMs = 300_000): HealthCheck[] {
  return chains.map((chain) => ({
    name: `sweeper:${chain}`,
    critical: false,
    async check() {
      const h = await readSweeperHealth(redis, prefix, chain);
      if (!h) return { ok: false, detail: { state: 'unknown', error: 'no sweep run has reported yet (is `kassa worker` running?)' } };
      const stale = Date.now() - Date.parse(h.updated_at) > staleAfterMs;
      const state = stale ? 'stale' : h.error ? 'error' : h.low ? 'low_balance' : 'ok';
      return { ok: state === 'ok', detail: { ...h, state } };
    },
  }));
}

const HealthSchema = z
  .object({
    status: z.enum(['ok', 'degraded']),
    checks: z.record(z.string(), z.object({ ok: z.boolean(), error: z.string().optional(), detail: z.unknown().optional() })),
  })
  .openapi('Health');

/**
 * GET /health: "ok" when every check passes, else "degraded" (with each check's state); 503 when a
 * critical check fails, 200 otherwise.
 */
export function registerHealthRoute(app: OpenAPIHono<AppEnv>, checks: HealthCheck[]): void {
  app.openapi(
    createRoute({
      method: 'get', path: '/health', tags: ['Operations'], summary: 'Health of the API and its dependencies',
      responses: {
        200: { description: 'Healthy, or degraded only by a non-critical check (a sweeper key low on gas)', content: { 'application/json': { schema: HealthSchema } } },
        503: { description: 'A dependency is down', content: { 'application/json': { schema: HealthSchema } } },
      },
    }),
    async (c) => {
      const results = await Promise.all(
        checks.map(async (h) => {
          try {
            const r = await withTimeout(h.check(), 2000, h.name);
            return [h, { ok: r.ok, ...(r.detail !== undefined ? { detail: r.detail } : {}) }] as const;
          } catch (err) {
            return [h, { ok: false, error: (err as Error).message }] as const;
          }
        }),
      );
      const ok = results.every(([, r]) => r.ok);
      const serving = results.every(([h, r]) => r.ok || h.critical === false);
      const checksOut = Object.fromEntries(results.map(([h, r]) => [h.name, r]));
      return c.json({ status: ok ? ('ok' as const) : ('degraded' as const), checks: checksOut }, serving ? 200 : 503);
    },
  );
}
