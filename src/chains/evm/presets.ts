/**
 * Built-in EVM chain presets (docs/configuration.md, "Chain presets"; docs/architecture.md §8.7).
 * A chains-file entry `{ "preset": "base", "rpc_url": "…" }` starts from one of these and may
 * override any field. Data only: no imports, so `kassa chains presets` and the config loader read
 * it without loading viem or the database.
 *
 * Sources (checked 2026-12-02):
 * - Chain ids, native symbols, explorers: each chain's own documentation — ethereum.org
 *   (networks), docs.base.org (network information), docs.arbitrum.io (RPC endpoints and
 *   providers), docs.optimism.io (network information), docs.polygon.technology (PoS, Amoy).
 * - USDC: Circle, https://developers.circle.com/stablecoins/usdc-contract-addresses (native,
 *   Circle-issued USDC; never the bridged USDC.e). Cross-checked against Circle's CCTP chain list
 *   and independent integrator listings (Gelato, Coinflow, Interlace, Orderly); all agree.
 * - USDT: only where Tether itself issues it on the chain (Ethereum,
 *   https://tether.to/en/supported-protocols). USDT on the L2s is a bridged token or USDT0 (a
 *   LayerZero OFT); its address could not be confirmed from Tether's own pages, so it is left out:
 *   add it with a `tokens` entry if you accept it.
 * - Block times: the chains' documentation (Ethereum 12 s slots, OP Stack 2 s, Polygon PoS ~2 s,
 *   Arbitrum ~0.25 s).
 *
 * Confirmations per speed policy (high / medium / low_medium / low) are Kassa's defaults, chosen as
 * wall-clock waits: about 0 s / 25–30 s / 1 min / 2–5 min. `use_finalized_tag` is on for all: a
 * payment in a block at or below the node's `finalized` block counts as confirmed whatever the
 * count (docs/evm.md); it can only shorten a wait, never lengthen it.
 * `max_log_range` 2,000 blocks per `eth_getLogs` fits the common providers' limits.
 */

export interface PresetToken {
  symbol: string;
  address: `0x${string}`;
  decimals: number;
  /** Where the address was checked. */
  source: string;
}

export interface EvmPreset {
  /** Display name: what the checkout and the API call the network. */
  name: string;
  testnet: boolean;
  chain_id: number;
  /** Short network tag (the `network` field of a chains-file entry). */
  network: string;
  native_symbol: string;
  /** Typical time between blocks, milliseconds. */
  block_time_ms: number;
  confirmations: { high: number; medium: number; low_medium: number; low: number };
  use_finalized_tag: boolean;
  max_log_range: number;
  poll_interval_ms: number;
  reorg_window: number;
  /** The chain's public RPC endpoint (rate-limited): offered to customers' wallets, never used by Kassa itself. */
  public_rpc_url?: string;
  explorer_url: string;
  explorer_tx_url: string;
  tokens: PresetToken[];
  /**
   * Sweep policy defaults (docs/evm.md, "Sweep policy"; the costs behind them are in the table
   * there): the smallest token balance worth a sweep (base units) and the sweeper key's native
   * balance below which /health and /metrics warn (base units).
   */
  sweep: { token_minimums: Record<string, string>; low_balance: string };
}

const CIRCLE = 'https://developers.circle.com/stablecoins/usdc-contract-addresses';
const usdc = (address: `0x${string}`): PresetToken => ({ symbol: 'USDC', address, decimals: 6, source: CIRCLE });

// Confirmations by block time (see the header): 12 s blocks, 2 s blocks, 0.25 s blocks.
const SLOW = { high: 0, medium: 2, low_medium: 5, low: 12 };
const TWO_SECONDS = { high: 0, medium: 15, low_medium: 30, low: 90 };
const QUARTER_SECOND = { high: 0, medium: 120, low_medium: 240, low: 960 };

// Sweep defaults (docs/evm.md, "What a sweep costs"). Ethereum: a first sweep (~120k gas) at 3–10
// gwei costs 0.00036–0.0012 ETH (~$1–4), so a stablecoin balance under $5 waits for more and the key
// warns below 0.05 ETH (~40 sweeps at 10 gwei). The
// L2s and Polygon: a sweep costs well under a cent, so anything from $0.10 is swept; the key warns
// below 0.002 ETH / 5 POL (thousands of sweeps at typical prices).
const ETHEREUM_SWEEP = { token_minimums: { USDC: '5000000', USDT: '5000000' }, low_balance: '50000000000000000' };
const L2_SWEEP = { token_minimums: { USDC: '100000' }, low_balance: '2000000000000000' };
const POLYGON_SWEEP = { token_minimums: { USDC: '100000' }, low_balance: '5000000000000000000' };

export const EVM_PRESETS = {
  ethereum: {
    name: 'Ethereum', testnet: false, chain_id: 1, network: 'mainnet', native_symbol: 'ETH', block_time_ms: 12_000,
    confirmations: SLOW, use_finalized_tag: true, max_log_range: 2000, poll_interval_ms: 4000, reorg_window: 128,
    explorer_url: 'https://etherscan.io', explorer_tx_url: 'https://etherscan.io/tx/{txid}',
    tokens: [
      usdc('0xA0b86991c6218b36c1d19D4a2e9Eb0cE3606eB48'),
      // Tether's own ERC-20 USDT (6 decimals): https://tether.to/en/supported-protocols
      { symbol: 'USDT', address: '0xdAC17F958D2ee523a2206206994597C13D831ec7', decimals: 6, source: 'https://tether.to/en/supported-protocols' },
    ],
    sweep: ETHEREUM_SWEEP,
  },
  base: {
    name: 'Base', testnet: false, chain_id: 8453, network: 'mainnet', native_symbol: 'ETH', block_time_ms: 2000,
    confirmations: TWO_SECONDS, use_finalized_tag: true, max_log_range: 2000, poll_interval_ms: 2000, reorg_window: 256,
    public_rpc_url: 'https://mainnet.base.org',
    explorer_url: 'https://basescan.org', explorer_tx_url: 'https://basescan.org/tx/{txid}',
    tokens: [usdc('0x833589fCD6eDb6E08f4c7C32D4f71b54bdA02913')],
    sweep: L2_SWEEP,
  },
  arbitrum: {
    name: 'Arbitrum One', testnet: false, chain_id: 42161, network: 'mainnet', native_symbol: 'ETH', block_time_ms: 250,
    confirmations: QUARTER_SECOND, use_finalized_tag: true, max_log_range: 2000, poll_interval_ms: 1000, reorg_window: 2048,
    public_rpc_url: 'https://arb1.arbitrum.io/rpc',
    explorer_url: 'https://arbiscan.io', explorer_tx_url: 'https://arbiscan.io/tx/{txid}',
    tokens: [usdc('0xaf88d065e77c8cC2239327C5EDb3A432268e5831')],
    sweep: L2_SWEEP,
  },
  optimism: {
    name: 'OP Mainnet', testnet: false, chain_id: 10, network: 'mainnet', native_symbol: 'ETH', block_time_ms: 2000,
    confirmations: TWO_SECONDS, use_finalized_tag: true, max_log_range: 2000, poll_interval_ms: 2000, reorg_window: 256,
    public_rpc_url: 'https://mainnet.optimism.io',
    explorer_url: 'https://optimistic.etherscan.io', explorer_tx_url: 'https://optimistic.etherscan.io/tx/{txid}',
    tokens: [usdc('0x0b2C639c533813f4Aa9D7837CAf62653d097Ff85')],
    sweep: L2_SWEEP,
  },
  polygon: {
    name: 'Polygon PoS', testnet: false, chain_id: 137, network: 'mainnet', native_symbol: 'POL', block_time_ms: 2000,
    confirmations: TWO_SECONDS, use_finalized_tag: true, max_log_range: 2000, poll_interval_ms: 2000, reorg_window: 256,
    public_rpc_url: 'https://polygon-rpc.com',
    explorer_url: 'https://polygonscan.com', explorer_tx_url: 'https://polygonscan.com/tx/{txid}',
    tokens: [usdc('0x3c499c542cEF5E3811e1192ce70d8cC03d5c3359')],
    sweep: POLYGON_SWEEP,
  },
  sepolia: {
    name: 'Sepolia', testnet: true, chain_id: 11155111, network: 'sepolia', native_symbol: 'ETH', block_time_ms: 12_000,
    confirmations: SLOW, use_finalized_tag: true, max_log_range: 2000, poll_interval_ms: 4000, reorg_window: 128,
    explorer_url: 'https://sepolia.etherscan.io', explorer_tx_url: 'https://sepolia.etherscan.io/tx/{txid}',
    tokens: [usdc('0x1c7D4B196Cb0C7B01d743Fbc6116a902379C7238')],
    sweep: ETHEREUM_SWEEP,
  },
  'base-sepolia': {
    name: 'Base Sepolia', testnet: true, chain_id: 84532, network: 'sepolia', native_symbol: 'ETH', block_time_ms: 2000,
    confirmations: TWO_SECONDS, use_finalized_tag: true, max_log_range: 2000, poll_interval_ms: 2000, reorg_window: 256,
    public_rpc_url: 'https://sepolia.base.org',
    explorer_url: 'https://sepolia.basescan.org', explorer_tx_url: 'https://sepolia.basescan.org/tx/{txid}',
    tokens: [usdc('0x036CbD53842c5426634e7929541eC2318f3dCF7e')],
    sweep: L2_SWEEP,
  },
  'arbitrum-sepolia': {
    name: 'Arbitrum Sepolia', testnet: true, chain_id: 421614, network: 'sepolia', native_symbol: 'ETH', block_time_ms: 250,
    confirmations: QUARTER_SECOND, use_finalized_tag: true, max_log_range: 2000, poll_interval_ms: 1000, reorg_window: 2048,
    public_rpc_url: 'https://sepolia-rollup.arbitrum.io/rpc',
    explorer_url: 'https://sepolia.arbiscan.io', explorer_tx_url: 'https://sepolia.arbiscan.io/tx/{txid}',
    tokens: [usdc('0x75faf114eafb1BDbe2F0316DF893fd58CE46AA4d')],
    sweep: L2_SWEEP,
  },
  'optimism-sepolia': {
    name: 'OP Sepolia', testnet: true, chain_id: 11155420, network: 'sepolia', native_symbol: 'ETH', block_time_ms: 2000,
    confirmations: TWO_SECONDS, use_finalized_tag: true, max_log_range: 2000, poll_interval_ms: 2000, reorg_window: 256,
    public_rpc_url: 'https://sepolia.optimism.io',
    explorer_url: 'https://sepolia-optimism.etherscan.io', explorer_tx_url: 'https://sepolia-optimism.etherscan.io/tx/{txid}',
    tokens: [usdc('0x5fd84259d66Cd46123540766Be93DFE6D43130D7')],
    sweep: L2_SWEEP,
  },
  'polygon-amoy': {
    name: 'Polygon Amoy', testnet: true, chain_id: 80002, network: 'amoy', native_symbol: 'POL', block_time_ms: 2000,
    confirmations: TWO_SECONDS, use_finalized_tag: true, max_log_range: 2000, poll_interval_ms: 2000, reorg_window: 256,
    public_rpc_url: 'https://rpc-amoy.polygon.technology',
    explorer_url: 'https://amoy.polygonscan.com', explorer_tx_url: 'https://amoy.polygonscan.com/tx/{txid}',
    tokens: [usdc('0x41E94Eb019C0762f9Bfcf9Fb1E58725BfB0e7582')],
    sweep: POLYGON_SWEEP,
  },
} satisfies Record<string, EvmPreset>;

export type EvmPresetKey = keyof typeof EVM_PRESETS;
export const EVM_PRESET_KEYS = Object.keys(EVM_PRESETS) as EvmPresetKey[];

export function evmPreset(key: string): EvmPreset | undefined {
  return Object.hasOwn(EVM_PRESETS, key) ? (EVM_PRESETS as Record<string, EvmPreset>)[key] : undefined;
}

/** The preset whose chain id this is (a chain configured without `preset` is still named by it). */
export function presetForChainId(chainId: number): EvmPreset | undefined {
  return Object.values(EVM_PRESETS as Record<string, EvmPreset>).find((p) => p.chain_id === chainId);
}

/**
 * A chains-file entry with `"preset": "<key>"` → the entry with the preset's fields filled in
 * (the entry's own fields win). `tokens` may name preset tokens by symbol (`["USDC"]`); objects
 * are taken as they are. Returns an error message (for the config loader to place) or the entry.
 */
export function applyEvmPreset(entry: Record<string, unknown>): { ok: true; value: Record<string, unknown> } | { ok: false; path: string[]; message: string } {
  const key = entry.preset;
  if (typeof key !== 'string') return { ok: false, path: ['preset'], message: 'preset must be a string such as "base"' };
  const p = evmPreset(key);
  if (!p) return { ok: false, path: ['preset'], message: `unknown preset "${key}"; known presets: ${EVM_PRESET_KEYS.join(', ')} (kassa chains presets)` };
  const tokens = entry.tokens === undefined ? p.tokens.map((t) => t.symbol) : entry.tokens;
  const sweep = sweepWithPreset(p, entry.sweep);
  if (!Array.isArray(tokens)) return { ok: true, value: { ...presetFields(key, p), ...entry, sweep } };
  const resolved: unknown[] = [];
  for (const [i, t] of tokens.entries()) {
    if (typeof t !== 'string') {
      resolved.push(t);
      continue;
    }
    const known = p.tokens.find((x) => x.symbol === t);
    if (!known) {
      return { ok: false, path: ['tokens', String(i)], message: `preset "${key}" has no token "${t}" (it has: ${p.tokens.map((x) => x.symbol).join(', ') || 'none'}); give { "symbol", "address", "decimals" } instead` };
    }
    resolved.push({ symbol: known.symbol, address: known.address, decimals: known.decimals });
  }
  return { ok: true, value: { ...presetFields(key, p), ...entry, tokens: resolved, sweep } };
}

/** The entry's `sweep` over the preset's (field by field; `token_minimums` symbol by symbol). */
function sweepWithPreset(p: EvmPreset, own: unknown): unknown {
  if (own !== undefined && (typeof own !== 'object' || own === null || Array.isArray(own))) return own; // the schema reports it
  const o = (own ?? {}) as Record<string, unknown>;
  const mins = o.token_minimums;
  const token_minimums = mins === undefined ? p.sweep.token_minimums
    : typeof mins === 'object' && mins !== null && !Array.isArray(mins) ? { ...p.sweep.token_minimums, ...mins } : mins;
  return { low_balance: p.sweep.low_balance, ...o, token_minimums };
}

function presetFields(key: string, p: EvmPreset): Record<string, unknown> {
  return {
    type: 'evm', preset: key, name: p.name, network: p.network, chain_id: p.chain_id, native_symbol: p.native_symbol,
    confirmations: p.confirmations, use_finalized_tag: p.use_finalized_tag, max_log_range: p.max_log_range,
    poll_interval_ms: p.poll_interval_ms, reorg_window: p.reorg_window, explorer_tx_url: p.explorer_tx_url,
    ...(p.public_rpc_url ? { public_rpc_url: p.public_rpc_url } : {}),
  };
}
