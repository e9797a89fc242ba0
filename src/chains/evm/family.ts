/** The EVM family's answers about a configured chain (src/chains/family.ts). */
import { getAddress, isAddress } from 'viem';
import type { EvmChainConfig } from '../../config.ts';
import { invalidParam, unprocessable } from '../../errors.ts';
import type { ChainFamilyView, CheckedAddress, WalletNetwork } from '../family.ts';
import { createForwarderAddresses } from './forwarder-address.ts';
import { forwarderDeployment } from './payment-method.ts';
import { evmPreset, presetForChainId } from './presets.ts';

/** The origin of an explorer link template ("https://basescan.org/tx/{txid}" → "https://basescan.org"); null when it is not an http(s) URL. */
function originOf(template: string | undefined): string | null {
  if (!template || !/^https?:\/\//i.test(template)) return null;
  try {
    return new URL(template.replace('{txid}', '0')).origin;
  } catch {
    return null;
  }
}

export function evmFamily(cfg: EvmChainConfig): ChainFamilyView {
  // The forwarder addresses' per-deployment and per-treasury parts, cached for this chain's view
  // (src/chains/families.ts keeps one view per chain config).
  const forwarders = createForwarderAddresses();
  // The chain's `name`, else its preset's name, else the preset with its chain id ("Base" for
  // 8453), else the key and the chain id ("Ethereum (chain 31337)").
  const networkName = (key: string) =>
    cfg.name ?? (cfg.preset ? evmPreset(cfg.preset)?.name : undefined) ?? presetForChainId(cfg.chain_id)?.name
    ?? `${key.charAt(0).toUpperCase()}${key.slice(1)} (chain ${cfg.chain_id})`;
  return {
    // The native coin (18 decimals) and each configured token: "<SYMBOL>-<chain key>".
    paymentMethods: (key) => [
      { method: `${cfg.native_symbol}-${key}`, symbol: cfg.native_symbol, decimals: 18 },
      ...cfg.tokens.map((t) => ({ method: `${t.symbol}-${key}`, symbol: t.symbol, decimals: t.decimals, token: t.address.toLowerCase() as `0x${string}` })),
    ],
    networkName,
    // EIP-681: a token transfer call, or a plain value transfer for the native coin.
    paymentUri: (to, due) =>
      to.token ? `ethereum:${to.token}@${cfg.chain_id}/transfer?address=${to.address}&uint256=${due}` : `ethereum:${to.address}@${cfg.chain_id}?value=${due}`,
    apiFields: () => ({ chain_id: cfg.chain_id }),
    parseAddress: parseEvmAddress,
    // Per chain, from the chains file (a preset's defaults otherwise).
    confirmations: (speed) => cfg.confirmations[speed],
    // The invoice's CREATE2 forwarder, predicted offline from the factory and the merchant's treasury (docs/evm.md).
    depositAddress: (key, invoiceId, settings) => {
      const s = settings.evm.find((e) => e.chain === key);
      if (!s) throw unprocessable('no_payment_methods', `No treasury is set up on ${key}.`);
      const a = forwarders.forInvoice({ ...forwarderDeployment(key, cfg), treasury: s.treasury, invoiceId });
      return { from: 'computed', address: a.address, derivation: a.derivation };
    },
    walletNetwork: (key): WalletNetwork => {
      const explorer = originOf(cfg.explorer_tx_url);
      return {
        chain_id: cfg.chain_id,
        name: networkName(key),
        native_symbol: cfg.native_symbol,
        rpc_urls: cfg.public_rpc_url ? [cfg.public_rpc_url] : [],
        explorer_urls: explorer ? [explorer] : [],
        explorer_tx_url: explorer ? cfg.explorer_tx_url! : null,
      };
    },
  };
}

/**
 * The EIP-55 checksummed form (viem `isAddress` strict: a mixed-case address must carry a valid
 * checksum; all lower- or upper-case has none to check); never the zero address.
 */
function parseEvmAddress(typed: string, param: string): CheckedAddress {
  if (!/^0x[0-9a-fA-F]{40}$/.test(typed)) {
    throw invalidParam(param, 'An address on this network is 0x followed by 40 hexadecimal characters.', 'destination_invalid');
  }
  if (!isAddress(typed, { strict: true })) {
    throw invalidParam(param, 'The capital letters of this address do not match its checksum (EIP-55): it was probably mistyped. Copy it again from your wallet.', 'destination_checksum_invalid');
  }
  if (/^0x0{40}$/.test(typed)) throw invalidParam(param, 'The zero address cannot receive money.', 'destination_invalid');
  return { address: getAddress(typed) };
}
