/**
 * Chain watcher health, shared through Redis so `/health` on any API process sees every watcher.
 * A watcher reports after each pass; /health reads the reports (`chainHealthChecks` in
 * src/api/routes/health.ts), and a report older than its `staleAfterMs` counts as unhealthy.
 */
import type { Redis } from 'ioredis';

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
