/**
 * The RPC client for one EVM chain: a viem PublicClient over HTTP with JSON-RPC batching (calls
 * issued in the same tick travel in one HTTP request), a per-request timeout and a few retries,
 * plus counters of what was sent (HTTP round trips and JSON-RPC calls by method) so tests and
 * metrics can assert that a watcher's cost per block stays constant.
 */
import { createPublicClient, defineChain, http, type PublicClient } from 'viem';
import type { EvmChainConfig } from '../../config.ts';

export interface RpcCounts {
  /** HTTP requests sent to the node (a JSON-RPC batch is one request). */
  http: number;
  /** JSON-RPC calls (each element of a batch counts). */
  calls: number;
  /** JSON-RPC calls by method name. */
  byMethod: Record<string, number>;
}

export interface EvmClient {
  public: PublicClient;
  /** A snapshot of the counters since creation (or the last reset). */
  counts(): RpcCounts;
  resetCounts(): void;
}

export interface EvmClientOptions {
  /** Per HTTP request timeout. Default 10 s. */
  timeoutMs?: number;
  /** Retries of a failed request by viem (exponential backoff from retryDelay). Default 2. */
  retryCount?: number;
  retryDelayMs?: number;
  /** JSON-RPC batch size cap. Default 100. */
  batchSize?: number;
  /** Replaces global fetch (tests inject failures). */
  fetchFn?: typeof fetch;
}

/**
 * Builds the client for `cfg.rpc_url`. No RPC is made here.
 * Example: `const c = createEvmClient(chains.ethereum); await c.public.getBlockNumber();`
 */
export function createEvmClient(cfg: Pick<EvmChainConfig, 'rpc_url' | 'chain_id' | 'network' | 'native_symbol'>, opts: EvmClientOptions = {}): EvmClient {
  let counts: RpcCounts = { http: 0, calls: 0, byMethod: {} };
  const baseFetch = opts.fetchFn ?? fetch;
  const countingFetch = async (input: string | URL | Request, init?: RequestInit): Promise<Response> => {
    counts.http++;
    if (typeof init?.body === 'string') {
      try {
        const parsed = JSON.parse(init.body) as { method?: string } | { method?: string }[];
        for (const call of Array.isArray(parsed) ? parsed : [parsed]) {
          counts.calls++;
          const m = call.method ?? 'unknown';
          counts.byMethod[m] = (counts.byMethod[m] ?? 0) + 1;
        }
      } catch {
        counts.calls++;
      }
    }
    return baseFetch(input, init);
  };
  const chain = defineChain({
    id: cfg.chain_id,
    name: cfg.network,
    nativeCurrency: { name: cfg.native_symbol, symbol: cfg.native_symbol, decimals: 18 },
    rpcUrls: { default: { http: [cfg.rpc_url] } },
  });
  const transport = http(cfg.rpc_url, {
    batch: { batchSize: opts.batchSize ?? 100, wait: 0 },
    timeout: opts.timeoutMs ?? 10_000,
    retryCount: opts.retryCount ?? 2,
    retryDelay: opts.retryDelayMs ?? 150,
    fetchFn: countingFetch,
  });
  const publicClient = createPublicClient({ chain, transport, pollingInterval: 250, cacheTime: 0 }) as PublicClient;
  return {
    public: publicClient,
    counts: () => ({ http: counts.http, calls: counts.calls, byMethod: { ...counts.byMethod } }),
    resetCounts() {
      counts = { http: 0, calls: 0, byMethod: {} };
    },
  };
}
