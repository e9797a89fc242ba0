/** The Bitcoin family's answers about a configured chain (src/chains/family.ts). */
import * as bitcoin from 'bitcoinjs-lib';
import type { BitcoinChainConfig } from '../../config.ts';
import { invalidParam } from '../../errors.ts';
import { formatAmount } from '../../money/amount.ts';
import type { SpeedPolicy } from '../../merchants/service.ts';
import type { ChainFamilyView, CheckedAddress, PaymentTarget } from '../family.ts';
import { ensureEcc } from './ecc.ts';
import { bitcoinNetwork } from './networks.ts';

/** Confirmations per speed policy on Bitcoin (docs/architecture.md §4). */
export const BITCOIN_CONFIRMATIONS: Record<SpeedPolicy, number> = { high: 0, medium: 1, low_medium: 2, low: 6 };

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
    parseAddress: (typed, param) => parseBitcoinAddress(cfg, typed, param),
    confirmations: (speed) => BITCOIN_CONFIRMATIONS[speed],
    // The merchant's next pre-derived address (src/chains/bitcoin/address-pool.ts), which the
    // statement that writes the invoice takes from the pool (docs/architecture.md §8.4).
    depositAddress: () => ({ from: 'pool' }),
    // Browser wallets (EIP-1193) do not pay Bitcoin: the checkout offers the address and QR code.
    walletNetwork: () => null,
  };
}

/**
 * bech32/bech32m lowercase or base58 as typed; the checksum and the network's prefix are checked by
 * bitcoinjs-lib `address.toOutputScript`.
 */
function parseBitcoinAddress(cfg: BitcoinChainConfig, typed: string, param: string): CheckedAddress {
  ensureEcc(); // taproot (bech32m) outputs need the secp256k1 backend
  const network = bitcoinNetwork(cfg.network);
  // bech32 may be written in upper case (QR codes); its canonical form is lower case.
  const address = /^[A-Z0-9]+$/.test(typed) && typed.toLowerCase().startsWith(network.bech32) ? typed.toLowerCase() : typed;
  try {
    return { address, script: bitcoin.address.toOutputScript(address, network) };
  } catch {
    throw invalidParam(param, `This is not a valid Bitcoin address for ${cfg.network}: check for a typing mistake, and that it is an address of the same network.`, 'destination_invalid');
  }
}
