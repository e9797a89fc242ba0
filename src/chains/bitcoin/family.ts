/** The Bitcoin family's answers about a configured chain (src/chains/family.ts). */
import type { BitcoinChainConfig } from '../../config.ts';
import type { SpeedPolicy } from '../../merchants/service.ts';
import { formatAmount } from '../../money/amount.ts';
import type { ChainFamilyView, PaymentTarget } from '../family.ts';

/** Confirmations per speed policy on Bitcoin (docs/architecture.md §6). */
const BITCOIN_CONFIRMATIONS: Record<SpeedPolicy, number> = { high: 0, medium: 1, low_medium: 2, low: 6 };

const NETWORK_NAMES: Record<BitcoinChainConfig['network'], string> = {
  mainnet: 'Bitcoin', testnet: 'Bitcoin testnet', signet: 'Bitcoin signet', regtest: 'Bitcoin regtest',
};

/** A BIP 21 URI: `bitcoin:<address>?amount=<BTC>&label=<label>` (amount left out when nothing is due). */
export function bitcoinUri(to: PaymentTarget, due: bigint, label?: string): string {
  const params = new URLSearchParams();
  if (due > 0n) params.set('amount', formatAmount(due, to.decimals, { trim: true }));
  if (label) params.set('label', label);
  const q = params.toString().replace(/\+/g, '%20');
  return `bitcoin:${to.address}${q ? '?' + q : ''}`;
}

export function bitcoinFamily(cfg: BitcoinChainConfig): ChainFamilyView {
  return {
    // One Bitcoin chain per deployment (the chains file refuses a second): its method id is plain "BTC".
    paymentMethods: () => [{ method: 'BTC', symbol: 'BTC', decimals: 8 }],
    networkName: () => NETWORK_NAMES[cfg.network],
    paymentUri: bitcoinUri,
    apiFields: () => ({}),
    confirmations: (speed) => BITCOIN_CONFIRMATIONS[speed],
    // The merchant's next pre-derived address (src/chains/bitcoin/address-pool.ts), which the
    // statement that writes the invoice takes from the pool (docs/architecture.md §8.4).
    depositAddress: () => ({ from: 'pool' }),
    // Browser wallets (EIP-1193) do not pay Bitcoin: the checkout offers the address and QR code.
    walletNetwork: () => null,
  };
}
