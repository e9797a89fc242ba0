/**
 * The chain-sync engine (src/chains/sync/engine.ts) on a Bitcoin or EVM adapter, built the way
 * the worker builds it but with the test's client and options (workers/processors.ts uses the
 * chain registry and the configured node).
 */
import type { Redis } from 'ioredis';
import type { BitcoinChainConfig, EvmChainConfig } from '../../src/config.ts';
import type { Sql } from '../../src/db/client.ts';
import type { Logger } from '../../src/logger.ts';
import type { SettlementService } from '../../src/settlement/service.ts';
import type { BitcoinNodeClient } from '../../src/chains/bitcoin/types.ts';
import type { EvmClient } from '../../src/chains/evm/client.ts';
import { createBitcoinAdapter } from '../../src/chains/bitcoin/adapter.ts';
import { createEvmAdapter } from '../../src/chains/evm/adapter.ts';
import { createChainSync, type ChainSync, type ChainSyncDeps, type SyncPassResult } from '../../src/chains/sync/engine.ts';

type EngineOptions = Omit<ChainSyncDeps, 'startHeight'>;

export interface BitcoinWatcherOptions extends EngineOptions {
  chain: string;
  config: BitcoinChainConfig;
  client: BitcoinNodeClient;
  redis?: Redis;
  startHeight?: number;
  maxMempoolTxsPerPass?: number;
}
export type BitcoinWatcher = ChainSync;

export function createBitcoinWatcher(o: BitcoinWatcherOptions): BitcoinWatcher {
  const adapter = createBitcoinAdapter({
    chain: o.chain, config: o.config, client: o.client, logger: o.logger,
    ...(o.maxMempoolTxsPerPass !== undefined ? { maxMempoolTxsPerPass: o.maxMempoolTxsPerPass } : {}),
  });
  return createChainSync(adapter, o);
}

export interface EvmWatcherOptions extends EngineOptions {
  chain: string;
  config: EvmChainConfig;
  client: EvmClient;
  sql: Sql;
  settlement: SettlementService;
  logger: Logger;
  startBlock?: number;
  catchupRange?: number;
  balanceChunk?: number;
  balanceCheckPerBlock?: number;
}

export interface EvmPassResult extends SyncPassResult {
  /** JSON-RPC calls made in this pass (each element of a batch counts). */
  rpcCalls: number;
  /** HTTP round trips to the node in this pass. */
  httpRequests: number;
  /** JSON-RPC calls by method. */
  byMethod: Record<string, number>;
}

export interface EvmWatcher {
  runOnce(): Promise<EvmPassResult>;
  run(signal: AbortSignal): Promise<void>;
}

/** The engine on the EVM adapter; `runOnce` also reports the pass's RPC calls (the client counts them). */
export function createEvmWatcher(o: EvmWatcherOptions): EvmWatcher {
  const adapter = createEvmAdapter({
    chain: o.chain, config: o.config, client: o.client, sql: o.sql, logger: o.logger,
    ...(o.catchupRange !== undefined ? { catchupRange: o.catchupRange } : {}),
    ...(o.balanceChunk !== undefined ? { balanceChunk: o.balanceChunk } : {}),
    ...(o.balanceCheckPerBlock !== undefined ? { balanceCheckPerBlock: o.balanceCheckPerBlock } : {}),
  });
  const sync = createChainSync(adapter, { ...o, ...(o.startBlock !== undefined ? { startHeight: o.startBlock } : {}) });
  return {
    async runOnce() {
      const before = o.client.counts();
      const r = await sync.runOnce();
      const after = o.client.counts();
      const byMethod: Record<string, number> = {};
      for (const [m, n] of Object.entries(after.byMethod)) {
        const d = n - (before.byMethod[m] ?? 0);
        if (d > 0) byMethod[m] = d;
      }
      return { ...r, rpcCalls: after.calls - before.calls, httpRequests: after.http - before.http, byMethod };
    },
    run: (signal) => sync.run(signal),
  };
}
