/**
 * Chain watcher health, shared through Redis so `/health` on any API process sees every watcher.
 * A watcher reports after each pass; a report older than `staleAfterMs` counts as unhealthy.
 */
import type { Redis } from 'ioredis';
import type { HealthCheck } from '../api/routes/health.ts';

export interface ChainHealth {
  state: 'ok' | 'error';
  tip_height: number | null;
  /** Blocks between the node's tip and what Kassa has processed. */
  lag_blocks: number | null;
  error: string | null;
  updated_at: string;
}

const key = (prefix: string, chain: string) => `${prefix}:chain-health:${chain}`;

export async function reportChainHealth(redis: Redis, prefix: string, chain: string, h: Omit<ChainHealth, 'updated_at'>): Promise<void> {
  const value: ChainHealth = { ...h, updated_at: new Date().toISOString() };
  await redis.set(key(prefix, chain), JSON.stringify(value), 'EX', 3600);
}

export async function readChainHealth(redis: Redis, prefix: string, chain: string): Promise<ChainHealth | null> {
  const raw = await redis.get(key(prefix, chain));
  return raw ? (JSON.parse(raw) as ChainHealth) : null;
}

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
