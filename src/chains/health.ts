/**
 * Chain watcher health, shared through Redis so `/health` on any API process sees every watcher.
 * A watcher reports after each pass; /health reads the reports (`chainHealthChecks` in
 * src/api/routes/health.ts), and a report older than its `staleAfterMs` counts as unhealthy.
 */
import type { Redis } from 'ioredis';
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


/** The EVM chains with a sweeper key configured (the ones the worker sweeps). */
export function sweeperChains(chains: Record<string, ChainConfig>): string[] {
  return Object.entries(chains).filter(([, c]) => c.type === 'evm' && Boolean(c.sweeper_private_key)).map(([k]) => k);
}
