/**
 * Builds the `BitcoinNodeClient` for a configured Bitcoin chain: Bitcoin Core JSON-RPC when `rpc`
 * is configured (the reference backend), otherwise Esplora REST. Credentials stay inside the
 * client: its `name` and every error message show the chain name and the URL without them.
 */
import type { BitcoinChainConfig } from '../../config.ts';
import { KassaError } from '../../errors.ts';
import { createEsploraClient } from './esplora.ts';
import { createBitcoinRpcClient } from './rpc.ts';
import type { BitcoinNodeClient } from './types.ts';

export interface BitcoinNodeClientOptions {
  /** Per-attempt timeout in ms (default 10 000). */
  timeoutMs?: number;
  /** Extra attempts after a transport failure (default 2). */
  retries?: number;
  retryDelayMs?: number;
  fetch?: typeof fetch;
}

/** RPC when `cfg.rpc` is set, else Esplora; `name` is the chain key (e.g. "bitcoin"), used in logs and errors. */
export function createBitcoinNodeClient(cfg: BitcoinChainConfig, name: string, opts: BitcoinNodeClientOptions = {}): BitcoinNodeClient {
  const common = {
    name,
    ...(opts.timeoutMs !== undefined ? { timeoutMs: opts.timeoutMs } : {}),
    ...(opts.retries !== undefined ? { retries: opts.retries } : {}),
    ...(opts.retryDelayMs !== undefined ? { retryDelayMs: opts.retryDelayMs } : {}),
    ...(opts.fetch !== undefined ? { fetch: opts.fetch } : {}),
  };
  if (cfg.rpc) {
    return createBitcoinRpcClient({
      ...common,
      url: cfg.rpc.url,
      ...(cfg.rpc.user !== undefined ? { user: cfg.rpc.user } : {}),
      ...(cfg.rpc.password !== undefined ? { password: cfg.rpc.password } : {}),
    });
  }
  if (cfg.esplora) return createEsploraClient({ ...common, url: cfg.esplora.url });
  throw new KassaError('chain_not_configured', `Bitcoin chain "${name}" has neither rpc nor esplora configured: set chains.${name}.rpc.url or chains.${name}.esplora.url.`, {
    status: 500,
    retryable: false,
  });
}
