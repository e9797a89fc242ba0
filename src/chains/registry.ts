/**
 * The chain families Kassa knows, by the `type` of a chain in the chains config
 * (docs/architecture.md §5). Code outside src/chains/<family>/ asks this registry for a chain's
 * `ChainAdapter` instead of branching on the type.
 */
import type { ChainConfig } from '../config.ts';
import type { Sql } from '../db/client.ts';
import type { Logger } from '../logger.ts';
import type { ChainAdapter } from './sync/adapter.ts';
import { createBitcoinAdapter } from './bitcoin/adapter.ts';
import { createBitcoinNodeClient } from './bitcoin/client.ts';
import { createEvmAdapter } from './evm/adapter.ts';
import { createEvmClient } from './evm/client.ts';

export interface AdapterDeps {
  sql: Sql;
  logger: Logger;
}

/**
 * The adapter of a configured chain, talking to the node its config names. The one place that maps
 * a chain's `type` to its family; the switch lets the compiler check that each family gets its own
 * config type, and that every type has a family (a missing case leaves a path without a return).
 */
export function createChainAdapter(chain: string, cfg: ChainConfig, deps: AdapterDeps): ChainAdapter {
  switch (cfg.type) {
    case 'bitcoin':
      return createBitcoinAdapter({ chain, config: cfg, client: createBitcoinNodeClient(cfg, chain), logger: deps.logger });
    case 'evm':
      return createEvmAdapter({ chain, config: cfg, client: createEvmClient(cfg), sql: deps.sql, logger: deps.logger });
  }
}
