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

type Family<T extends ChainConfig['type']> = (chain: string, cfg: Extract<ChainConfig, { type: T }>, deps: AdapterDeps) => ChainAdapter;

const families: { [T in ChainConfig['type']]: Family<T> } = {
  bitcoin: (chain, cfg, deps) => createBitcoinAdapter({ chain, config: cfg, client: createBitcoinNodeClient(cfg, chain), logger: deps.logger }),
  evm: (chain, cfg, deps) => createEvmAdapter({ chain, config: cfg, client: createEvmClient(cfg), sql: deps.sql, logger: deps.logger }),
};

/** The adapter of a configured chain, talking to the node its config names. */
export function createChainAdapter(chain: string, cfg: ChainConfig, deps: AdapterDeps): ChainAdapter {
  return (families[cfg.type] as Family<ChainConfig['type']>)(chain, cfg as never, deps);
}
