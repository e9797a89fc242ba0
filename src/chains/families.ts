/**
 * The chain family of a configured chain, by its `type` (docs/architecture.md §5): what the API,
 * the checkout and the asset registry ask of a chain (src/chains/family.ts). Like
 * src/chains/registry.ts for the adapters, this is where a chain's type is looked at, so the code
 * that shows invoices and prices methods does not branch on it.
 */
import { ConfigError, type ChainConfig } from '../config.ts';
import { bitcoinFamily } from './bitcoin/family.ts';
import { evmFamily } from './evm/family.ts';
import type { ChainFamilyView } from './family.ts';

export type { ChainFamilyView, DepositAddressSource, PaymentMethodSpec, PaymentTarget, WalletNetwork } from './family.ts';

/** One view per chain config object: a view may keep caches (the EVM family's forwarder addresses). */
const views = new WeakMap<ChainConfig, ChainFamilyView>();

/** The family's answers about `cfg` (the switch lets the compiler check every type has its family; an unknown type is a ConfigError). */
export function chainFamily(cfg: ChainConfig): ChainFamilyView {
  let view = views.get(cfg);
  if (!view) {
    view = familyOf(cfg);
    views.set(cfg, view);
  }
  return view;
}

function familyOf(cfg: ChainConfig): ChainFamilyView {
  switch (cfg.type) {
    case 'bitcoin':
      return bitcoinFamily(cfg);
    case 'evm':
      return evmFamily(cfg);
    default: {
      const unknown: never = cfg; // every type has its case (a compile error otherwise)
      throw new ConfigError(`a chain config has type ${JSON.stringify((unknown as { type?: unknown }).type)}, which is not a chain family Kassa knows (bitcoin, evm).`);
    }
  }
}

/**
 * The network's real name, as the checkout and the API show it (the family's rule: "Bitcoin
 * testnet", "Base", "Ethereum (chain 31337)"); the key itself for a chain no longer configured.
 */
export function networkName(key: string, cfg: ChainConfig | undefined): string {
  return cfg ? chainFamily(cfg).networkName(key) : key;
}
