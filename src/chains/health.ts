/**
 * Chain watcher health, shared through Redis so `/health` on any API process sees every watcher.
 * A watcher reports after each pass; a report older than `staleAfterMs` counts as unhealthy.
 */
import type { Redis } from 'ioredis';
import type { HealthCheck } from '../api/routes/health.ts';
import type { ChainConfig } from '../config.ts';

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

/**
 * The sweeper key's state (the account paying the sweeps' gas), reported by the worker after each
 * sweep run (every minute) and read by `/health` and `/metrics`. Amounts are decimal strings of base
 * units; `low` is `balance < low_balance`, compared as bigints by the worker.
 */
export interface SweeperHealth {
  address: string;
  balance: string;
  low_balance: string;
  low: boolean;
  /** Forwarders left alone as dust (worth less than their sweep) until their recheck. */
  dust_forwarders: number;
  error: string | null;
  updated_at: string;
}

const sweeperKey = (prefix: string, chain: string) => `${prefix}:sweeper-health:${chain}`;

export async function reportSweeperHealth(redis: Redis, prefix: string, chain: string, h: Omit<SweeperHealth, 'updated_at'>): Promise<void> {
  const value: SweeperHealth = { ...h, updated_at: new Date().toISOString() };
  await redis.set(sweeperKey(prefix, chain), JSON.stringify(value), 'EX', 3600);
}

export async function readSweeperHealth(redis: Redis, prefix: string, chain: string): Promise<SweeperHealth | null> {
  const raw = await redis.get(sweeperKey(prefix, chain));
  return raw ? (JSON.parse(raw) as SweeperHealth) : null;
}

/**
 * `sweeper:<chain>` for each chain with a sweeper key: not ok when the key's balance is below the
 * chain's `sweep.low_balance`, when the last run failed, or when no run reported for 5 minutes.
 * Not critical: it makes /health "degraded" but keeps it 200 (payments are still detected and
 * credited; only sweeps wait), so a load balancer does not take the API out for it.
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

/** The EVM chains with a sweeper key configured (the ones the worker sweeps). */
export function sweeperChains(chains: Record<string, ChainConfig>): string[] {
  return Object.entries(chains).filter(([, c]) => c.type === 'evm' && Boolean(c.sweeper_private_key)).map(([k]) => k);
}
