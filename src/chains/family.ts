/**
 * What the API, the checkout and the asset registry need to know of a chain family, about one
 * configured chain: its payment methods, the name a payer sees, the wallet link and the API's extra
 * fields. Pure functions of the chain's config: no node client (those are the adapters,
 * src/chains/registry.ts). Each family implements it beside its chain code
 * (src/chains/<family>/family.ts); src/chains/families.ts picks the one of a chain.
 */

import type { SpeedPolicy } from '../merchants/service.ts';

/** A payment method a chain offers (src/money/assets.ts turns it into a CryptoAsset). */
export interface PaymentMethodSpec {
  /** Payment method id: "BTC", "ETH-ethereum", "USDC-base" (docs/architecture.md §4). */
  method: string;
  /** Symbol as priced and shown: BTC, ETH, USDC. */
  symbol: string;
  decimals: number;
  /** ERC-20 contract address (lowercase); undefined for a chain's native coin. */
  token?: `0x${string}`;
}

/** Where a payment goes: a method's deposit address, its token and decimals. */
export interface PaymentTarget {
  address: string;
  token: string | null;
  decimals: number;
}

export interface ChainFamilyView {
  /** The payment methods of this chain, keyed by the chain's key in the chains file. */
  paymentMethods(key: string): PaymentMethodSpec[];
  /** The network's real name as the checkout and the API show it ("Bitcoin testnet", "Base"). */
  networkName(key: string): string;
  /** The wallet link for paying `due` base units to `to` (BIP 21, EIP-681). */
  paymentUri(to: PaymentTarget, due: bigint, label?: string): string;
  /** Fields a payment method on this chain adds to the API's invoice object (EVM: `chain_id`). */
  apiFields(): { chain_id?: number };
  /**
   * An address someone typed (trimmed, not empty), checked for this chain and network and returned
   * in its canonical form; 400 naming `param` otherwise (src/refunds/destination.ts has the rules).
   */
  parseAddress(typed: string, param: string): CheckedAddress;
  /** The confirmations a speed policy requires on this chain (docs/architecture.md §6). */
  confirmations(speed: SpeedPolicy): number;
}

export interface CheckedAddress {
  address: string;
  /** Bitcoin only: the output script that pays it. */
  script?: Uint8Array;
}
