/**
 * What the checkout's "Pay with <wallet>" button needs about each network of an invoice that a
 * browser wallet can pay on (docs/architecture.md §5): the family's `walletNetwork`
 * (src/chains/family.ts). Built from the chains config; only chains the invoice uses.
 */
import type { ChainConfig } from '../config.ts';
import { chainFamily, type WalletNetwork } from '../chains/families.ts';
import type { PublicInvoice } from './public-invoice.ts';

export type { WalletNetwork };

export function walletNetworks(inv: Pick<PublicInvoice, 'payment_methods'>, chains: Record<string, ChainConfig>): Record<string, WalletNetwork> {
  const out: Record<string, WalletNetwork> = {};
  for (const m of inv.payment_methods) {
    const cfg = chains[m.chain];
    if (!cfg || Object.hasOwn(out, m.chain)) continue;
    const network = chainFamily(cfg).walletNetwork(m.chain);
    if (network) out[m.chain] = network;
  }
  return out;
}
