/** The EVM family's answers about a configured chain (src/chains/family.ts). */
import type { EvmChainConfig } from '../../config.ts';
import type { ChainFamilyView } from '../family.ts';
import { evmPreset, presetForChainId } from './presets.ts';

export function evmFamily(cfg: EvmChainConfig): ChainFamilyView {
  return {
    // The native coin (18 decimals) and each configured token: "<SYMBOL>-<chain key>".
    paymentMethods: (key) => [
      { method: `${cfg.native_symbol}-${key}`, symbol: cfg.native_symbol, decimals: 18 },
      ...cfg.tokens.map((t) => ({ method: `${t.symbol}-${key}`, symbol: t.symbol, decimals: t.decimals, token: t.address.toLowerCase() as `0x${string}` })),
    ],
    // The chain's `name`, else its preset's name, else the preset with its chain id ("Base" for
    // 8453), else the key and the chain id ("Ethereum (chain 31337)").
    networkName: (key) =>
      cfg.name ?? (cfg.preset ? evmPreset(cfg.preset)?.name : undefined) ?? presetForChainId(cfg.chain_id)?.name
      ?? `${key.charAt(0).toUpperCase()}${key.slice(1)} (chain ${cfg.chain_id})`,
    // EIP-681: a token transfer call, or a plain value transfer for the native coin.
    paymentUri: (to, due) =>
      to.token ? `ethereum:${to.token}@${cfg.chain_id}/transfer?address=${to.address}&uint256=${due}` : `ethereum:${to.address}@${cfg.chain_id}?value=${due}`,
    apiFields: () => ({ chain_id: cfg.chain_id }),
  };
}
