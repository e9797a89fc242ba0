/**
 * What the checkout's "Pay with <wallet>" button needs about each EVM network of an invoice
 * (docs/architecture.md §5): chain id, name and native symbol (wallet_switchEthereumChain /
 * wallet_addEthereumChain), the PUBLIC RPC endpoint a wallet may add (never the operator's own
 * rpc_url) and the explorer. Built from the chains config; only chains the invoice uses.
 */
import type { ChainConfig } from '../config.ts';
import { networkName } from '../chains/families.ts';
import type { PublicInvoice } from './public-invoice.ts';

export interface WalletNetwork {
  chain_id: number;
  name: string;
  native_symbol: string;
  /** For wallet_addEthereumChain; empty when the chain has no public endpoint (then only a switch is tried). */
  rpc_urls: string[];
  explorer_urls: string[];
  /** `explorer_tx_url` (`{txid}` placeholder) or null. */
  explorer_tx_url: string | null;
}

function originOf(template: string | undefined): string | null {
  if (!template || !/^https?:\/\//i.test(template)) return null;
  try {
    return new URL(template.replace('{txid}', '0')).origin;
  } catch {
    return null;
  }
}

export function walletNetworks(inv: Pick<PublicInvoice, 'payment_methods'>, chains: Record<string, ChainConfig>): Record<string, WalletNetwork> {
  const out: Record<string, WalletNetwork> = {};
  for (const m of inv.payment_methods) {
    const cfg = chains[m.chain];
    if (cfg?.type !== 'evm' || out[m.chain]) continue;
    const explorer = originOf(cfg.explorer_tx_url);
    out[m.chain] = {
      chain_id: cfg.chain_id,
      name: networkName(m.chain, cfg),
      native_symbol: cfg.native_symbol,
      rpc_urls: cfg.public_rpc_url ? [cfg.public_rpc_url] : [],
      explorer_urls: explorer ? [explorer] : [],
      explorer_tx_url: explorer ? cfg.explorer_tx_url! : null,
    };
  }
  return out;
}
