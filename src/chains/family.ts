/**
 * What the API, the checkout, invoice creation and the asset registry need to know of a chain
 * family, about one configured chain: its payment methods, the name a payer sees, the wallet link,
 * the API's extra fields, the confirmations a speed policy asks for, where an invoice's deposit
 * address comes from and what a browser wallet needs. Functions of the chain's config (and of the
 * merchant's settings handed in): no node client (those are the adapters, src/chains/registry.ts).
 * Each family implements it beside its chain code (src/chains/<family>/family.ts);
 * src/chains/families.ts picks the one of a chain, so code outside src/chains/<family>/ never
 * branches on a chain's type (docs/architecture.md §3, checked by `npm run check:imports`).
 */
import type { MerchantPaymentSettings, SpeedPolicy } from '../merchants/service.ts';


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
  /** Confirmations an invoice with this speed policy waits for (docs/architecture.md §6). */
  confirmations(speed: SpeedPolicy): number;
  /**
   * Where invoice `invoiceId`'s deposit address on chain `key` comes from: the merchant's pool of
   * pre-derived addresses, taken by the statement that writes the invoice (Bitcoin), or an address
   * computed here from the merchant's settings (EVM: the CREATE2 forwarder of the treasury). Throws
   * the 422 the API answers when the merchant or the chain is not set up for it.
   */
  depositAddress(key: string, invoiceId: string, settings: MerchantPaymentSettings): DepositAddressSource;
  /** What the checkout's "Pay with <wallet>" button needs about this network; null when browser wallets cannot pay on it (Bitcoin). */
  walletNetwork(key: string): WalletNetwork | null;
}

export interface CheckedAddress {
  address: string;
  /** Bitcoin only: the output script that pays it. */
  script?: Uint8Array;
}

export type DepositAddressSource =
  | { from: 'pool' }
  | { from: 'computed'; /** Checksummed where the family has a checksum. */ address: string; /** What `deposit_addresses.derivation` records. */ derivation: object };

/**
 * A network as an EIP-1193 browser wallet is asked to use it (wallet_switchEthereumChain /
 * wallet_addEthereumChain): chain id, name and native symbol, the PUBLIC RPC endpoint a wallet may
 * add (never the operator's own rpc_url) and the explorer.
 */
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
