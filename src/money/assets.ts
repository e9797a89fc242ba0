/**
 * The asset registry: fiat currencies (ISO 4217 minor units) and crypto assets per chain.
 * Crypto assets come from the chains config: each chain's family lists its payment methods
 * (src/chains/families.ts; Bitcoin: BTC, EVM: the native coin and the configured tokens).
 */
import { ConfigError, type ChainConfig } from '../config.ts';
import { invalidParam } from '../errors.ts';
import { chainFamily } from '../chains/families.ts';

export interface FiatCurrency {
  kind: 'fiat';
  code: string;
  decimals: number;
}

export interface CryptoAsset {
  kind: 'crypto';
  /** Symbol as priced and shown: BTC, ETH, USDC. */
  symbol: string;
  decimals: number;
  /** The chain key from the chains config ("bitcoin", "ethereum", "base"). */
  chain: string;
  /** ERC-20 contract address; undefined for a chain's native coin. */
  token?: `0x${string}`;
  /** Payment method id: "BTC", "ETH-ethereum", "USDC-base" (docs/architecture.md §4). */
  method: string;
}

/** ISO 4217 minor units of the fiat currencies Kassa prices in. */
export const FIAT_CURRENCIES: Readonly<Record<string, number>> = {
  USD: 2, EUR: 2, GBP: 2, CHF: 2, CAD: 2, AUD: 2, NZD: 2, CNY: 2, HKD: 2, SGD: 2, SEK: 2, NOK: 2,
  DKK: 2, PLN: 2, CZK: 2, MXN: 2, BRL: 2, INR: 2, ZAR: 2, TRY: 2, ILS: 2, AED: 2, THB: 2, TWD: 2,
  JPY: 0, KRW: 0, VND: 0, CLP: 0, ISK: 0, HUF: 2, BHD: 3, KWD: 3, OMR: 3, JOD: 3,
};

/** Decimals of crypto assets by symbol when priced as an invoice currency. */
export const CRYPTO_DECIMALS: Readonly<Record<string, number>> = { BTC: 8, ETH: 18, USDC: 6, USDT: 6, DAI: 18 };

export interface AssetRegistry {
  /** Every payment method the deployment supports (merchants enable a subset). */
  methods(): CryptoAsset[];
  method(id: string): CryptoAsset | undefined;
  /** An invoice currency: a fiat code or a crypto symbol. Throws 400 naming `param` when unknown. */
  currency(code: unknown, param?: string): FiatCurrency | { kind: 'crypto'; code: string; decimals: number };
}

export function createAssetRegistry(chains: Record<string, ChainConfig>): AssetRegistry {
  const byMethod = new Map<string, CryptoAsset>();
  for (const [chain, cfg] of Object.entries(chains)) {
    for (const m of chainFamily(cfg).paymentMethods(chain)) {
      // A method id names one chain. Only "BTC" can be offered by two chains (one Bitcoin chain per
      // deployment: the chains file schema refuses a second one; this guards configs built in code,
      // so "BTC" can never point at a chain other than the one the watcher and the payment method use).
      const other = byMethod.get(m.method);
      if (other && other.chain !== chain) {
        throw new ConfigError(`only one chain of type "${cfg.type}" is supported per deployment, but "${other.chain}" and "${chain}" both are. Remove all but one (run a separate Kassa for another network).`);
      }
      byMethod.set(m.method, { kind: 'crypto', symbol: m.symbol, decimals: m.decimals, chain, ...(m.token ? { token: m.token } : {}), method: m.method });
    }
  }
  const cryptoDecimals = new Map<string, number>(Object.entries(CRYPTO_DECIMALS));
  for (const a of byMethod.values()) if (!cryptoDecimals.has(a.symbol)) cryptoDecimals.set(a.symbol, a.decimals);

  return {
    methods: () => [...byMethod.values()],
    method: (id) => byMethod.get(id),
    currency(code, param = 'currency') {
      if (typeof code !== 'string' || !/^[A-Za-z0-9]{2,10}$/.test(code)) {
        throw invalidParam(param, `${param} must be a currency code such as "USD" or "BTC".`, 'currency_invalid');
      }
      const upper = code.toUpperCase();
      const fiat = FIAT_CURRENCIES[upper];
      if (fiat !== undefined) return { kind: 'fiat', code: upper, decimals: fiat };
      const crypto = cryptoDecimals.get(upper);
      if (crypto !== undefined) return { kind: 'crypto', code: upper, decimals: crypto };
      throw invalidParam(param, `${param} "${code}" is not supported. Use a fiat code such as USD or EUR, or an asset such as BTC.`, 'currency_unsupported');
    },
  };
}
