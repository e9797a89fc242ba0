/**
 * Exchange rates. A provider answers "how much `quote` is one `base`" as a decimal string. The
 * service tries providers in configured order with a timeout each, caches answers, and fails with
 * 503 `rate_unavailable` when none answers: an invoice is never created with a guessed amount.
 */
import { KassaError } from '../errors.ts';
import type { Logger } from '../logger.ts';

export interface RateQuote {
  rate: string;
  source: string;
}

export interface RateProvider {
  name: string;
  /** Resolves with the rate or undefined when the provider does not know the pair; throws on failure. */
  fetch(base: string, quote: string, signal: AbortSignal): Promise<string | undefined>;
}

const DECIMAL = /^(0|[1-9][0-9]*)(\.[0-9]+)?$/;

/** Normalises a provider's number-as-string ("60000.1", "6.0E4" is rejected) to a positive decimal. */
export function normaliseRate(raw: unknown): string | undefined {
  if (typeof raw !== 'string' && typeof raw !== 'number') return undefined;
  const s = String(raw).trim();
  if (!DECIMAL.test(s) || /^0(\.0*)?$/.test(s)) return undefined;
  return s;
}

/** Rates from configuration, e.g. {"BTC-USD": "60000.00"}; used by the sandbox and tests. */
export function fixedProvider(rates: Record<string, string>): RateProvider {
  return {
    name: 'fixed',
    async fetch(base, quote) {
      return normaliseRate(rates[`${base}-${quote}`]);
    },
  };
}

async function getJson(url: string, signal: AbortSignal): Promise<unknown> {
  const res = await fetch(url, { signal, headers: { accept: 'application/json', 'user-agent': 'Kassa (rates)' }, redirect: 'error' });
  if (res.status === 404) return undefined;
  if (!res.ok) throw new Error(`HTTP ${res.status}`);
  return res.json();
}

/** Coinbase spot price: GET /v2/prices/{base}-{quote}/spot → {"data":{"amount":"…"}}. */
export function coinbaseProvider(baseUrl = 'https://api.coinbase.com'): RateProvider {
  return {
    name: 'coinbase',
    async fetch(base, quote, signal) {
      const body = (await getJson(`${baseUrl}/v2/prices/${base}-${quote}/spot`, signal)) as { data?: { amount?: string } } | undefined;
      return normaliseRate(body?.data?.amount);
    },
  };
}

const KRAKEN_ASSET: Record<string, string> = { BTC: 'XBT' };

/** Kraken ticker: GET /0/public/Ticker?pair={base}{quote} → result.<pair>.c[0] (last trade price). */
export function krakenProvider(baseUrl = 'https://api.kraken.com'): RateProvider {
  return {
    name: 'kraken',
    async fetch(base, quote, signal) {
      const pair = `${KRAKEN_ASSET[base] ?? base}${KRAKEN_ASSET[quote] ?? quote}`;
      const body = (await getJson(`${baseUrl}/0/public/Ticker?pair=${pair}`, signal)) as
        | { error?: string[]; result?: Record<string, { c?: [string, string] }> }
        | undefined;
      if (!body) return undefined;
      if (body.error && body.error.length > 0) {
        if (body.error.some((e) => e.includes('Unknown asset pair'))) return undefined;
        throw new Error(body.error.join('; '));
      }
      const first = Object.values(body.result ?? {})[0];
      return normaliseRate(first?.c?.[0]);
    },
  };
}

export interface RateService {
  /** Price of one `base` in `quote`. Same asset → "1". Throws 503 rate_unavailable. */
  rate(base: string, quote: string): Promise<RateQuote>;
}

export function createRateService(opts: {
  providers: RateProvider[];
  cacheSeconds: number;
  timeoutMs: number;
  logger?: Logger;
  now?: () => number;
}): RateService {
  const cache = new Map<string, { quote: RateQuote; at: number }>();
  const inflight = new Map<string, Promise<RateQuote>>();
  const now = opts.now ?? Date.now;

  async function lookup(base: string, quote: string): Promise<RateQuote> {
    const failures: string[] = [];
    for (const p of opts.providers) {
      try {
        const rate = await p.fetch(base, quote, AbortSignal.timeout(opts.timeoutMs));
        if (rate) return { rate, source: p.name };
        failures.push(`${p.name}: no rate for ${base}-${quote}`);
      } catch (err) {
        const msg = (err as Error).name === 'TimeoutError' ? `timed out after ${opts.timeoutMs} ms` : (err as Error).message;
        failures.push(`${p.name}: ${msg}`);
        opts.logger?.warn({ provider: p.name, pair: `${base}-${quote}`, err: msg }, 'rate provider failed; trying the next');
      }
    }
    throw new KassaError('rate_unavailable', `No exchange rate is available for ${base} in ${quote} right now. Retry in a moment.`, {
      status: 503, retryable: true, cause: new Error(failures.join('; ')),
    });
  }

  return {
    async rate(base, quote) {
      if (base === quote) return { rate: '1', source: 'identity' };
      const key = `${base}-${quote}`;
      const hit = cache.get(key);
      if (hit && now() - hit.at < opts.cacheSeconds * 1000) return hit.quote;
      let p = inflight.get(key);
      if (!p) {
        p = lookup(base, quote).finally(() => inflight.delete(key));
        inflight.set(key, p);
      }
      const quoteValue = await p;
      cache.set(key, { quote: quoteValue, at: now() });
      return quoteValue;
    },
  };
}

export function ratesFromConfig(cfg: { providers: ('fixed' | 'coinbase' | 'kraken')[]; fixed: Record<string, string>; cache_seconds: number; timeout_ms: number }, logger?: Logger, urls: { coinbase?: string; kraken?: string } = {}): RateService {
  const providers = cfg.providers.map((name) =>
    name === 'fixed' ? fixedProvider(cfg.fixed) : name === 'coinbase' ? coinbaseProvider(urls.coinbase) : krakenProvider(urls.kraken),
  );
  return createRateService({ providers, cacheSeconds: cfg.cache_seconds, timeoutMs: cfg.timeout_ms, ...(logger ? { logger } : {}) });
}
