/**
 * The chain families Kassa knows, by the `type` of a chain in the chains config
 * (docs/architecture.md §5). Code outside src/chains/<family>/ asks this registry for a chain's
 * `ChainAdapter` (and sweeper) instead of branching on the type; what the API asks of a family
 * (payment methods, wallet links, network names) is in src/chains/families.ts, without node clients.
 */
import type { ChainConfig } from '../config.ts';
import type { Sql } from '../db/client.ts';
import type { Logger } from '../logger.ts';
import type { ChainAdapter } from './sync/adapter.ts';
import { createBitcoinAdapter } from './bitcoin/adapter.ts';
import { createBitcoinNodeClient } from './bitcoin/client.ts';
import { createEvmAdapter } from './evm/adapter.ts';
import { createEvmClient } from './evm/client.ts';
import { createSweeper, type Sweeper } from './evm/sweeper.ts';
import { createWalletClient, http, type Hex } from 'viem';
import { privateKeyToAccount } from 'viem/accounts';

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

/**
 * The sweeper of a chain, or null when its family has none (Bitcoin) or its config gives it no key:
 * EVM chains with a gas-only `sweeper_private_key` flush settled forwarders to the treasury.
 */
export function createChainSweeper(chain: string, cfg: ChainConfig, deps: AdapterDeps): Sweeper | null {
  switch (cfg.type) {
    case 'bitcoin':
      return null;
    case 'evm': {
      if (!cfg.sweeper_private_key) return null;
      const client = createEvmClient(cfg);
      return createSweeper({
        chain, cfg,
        walletClient: createWalletClient({ account: privateKeyToAccount(cfg.sweeper_private_key as Hex), chain: client.public.chain, transport: http(cfg.rpc_url) }),
        publicClient: client.public, sql: deps.sql, logger: deps.logger.child({ chain, component: 'sweeper' }),
      });
    }
  }
}
