/**
 * The only module that reads `process.env` (docs/architecture.md §8.7). Every setting has a default that makes
 * the local sandbox work with no environment at all; a bad value stops start-up with one readable
 * line naming the variable (ConfigError).
 */
import { readFileSync, existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import path from 'node:path';
import { isIP } from 'node:net';
import { z } from 'zod';
import { applyEvmPreset } from './chains/evm/presets.ts';

export class ConfigError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ConfigError';
  }
}

const logLevel = z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']);

const urlWith = (protocols: string[]) =>
  z.string().refine((v) => {
    try {
      return protocols.includes(new URL(v).protocol);
    } catch {
      return false;
    }
  }, `must be a URL starting with ${protocols.map((p) => p + '//').join(' or ')}`);

const positiveInt = z.coerce.number().int().positive();

/** `10.0.0.1`, `10.0.0.0/8`, `::1`, `fd00::/8` → address, prefix and family; null when malformed. */
export function parseTrustedProxy(entry: string): { address: string; prefix: number; family: 'ipv4' | 'ipv6' } | null {
  const [address = '', bits, extra] = entry.split('/');
  if (extra !== undefined) return null;
  const family = isIP(address) === 4 ? 'ipv4' : isIP(address) === 6 ? 'ipv6' : null;
  if (!family) return null;
  const max = family === 'ipv4' ? 32 : 128;
  if (bits === undefined) return { address, prefix: max, family };
  if (!/^\d{1,3}$/.test(bits) || Number(bits) > max) return null;
  return { address, prefix: Number(bits), family };
}

const envSchema = z.object({
  KASSA_ENV: z.enum(['development', 'production', 'test']).default('development'),
  DATABASE_URL: urlWith(['postgres:', 'postgresql:']).default('postgres://postgres@127.0.0.1:5432/kassa'),
  REDIS_URL: urlWith(['redis:', 'rediss:']).default('redis://127.0.0.1:6379'),
  HOST: z.string().min(1).default('127.0.0.1'),
  PORT: z.coerce.number().int().min(0).max(65535).default(3000),
  PUBLIC_URL: urlWith(['http:', 'https:']).optional(),
  LOG_LEVEL: logLevel.default('info'),
  KASSA_SECRET_KEY: z.string().optional(),
  KASSA_DATA_DIR: z.string().min(1).default('.kassa'),
  KASSA_CONFIG: z.string().min(1).optional(),
  KASSA_QUEUE_PREFIX: z.string().min(1).default('{kassa}'),
  RATE_LIMIT_PER_SECOND: positiveInt.default(100),
  PUBLIC_RATE_LIMIT_PER_MINUTE: positiveInt.default(120),
  DB_POOL_SIZE: positiveInt.default(10),
  ADMIN_TOKEN: z.string().min(16).optional(),
  TRUSTED_PROXIES: z
    .string()
    .refine((v) => v.split(',').every((x) => parseTrustedProxy(x.trim()) !== null), 'must be a comma-separated list of IP addresses or CIDR ranges, e.g. 10.0.0.0/8,::1')
    .optional(),
  METRICS_PORT: z.coerce.number().int().min(0).max(65535).optional(),
  SMTP_URL: urlWith(['smtp:', 'smtps:']).optional(),
  SMTP_FROM: z.string().min(3).default('Kassa <no-reply@localhost>'),
  WEBHOOK_ALLOW_HTTP: z.enum(['true', 'false', '1', '0']).optional(),
  WEBHOOK_ALLOWED_HOSTS: z.string().optional(),
  WEBHOOK_RETRY_DELAYS_MS: z
    .string()
    .regex(/^\d+(,\d+)*$/, 'must be a comma-separated list of milliseconds, e.g. 100,200,400')
    .optional(),
  WEBHOOK_TIMEOUT_MS: positiveInt.default(10_000),
  KASSA_ALLOW_INSECURE_PUBLIC_URL: z.enum(['1', 'true', '0', 'false']).optional(),
  PUBLIC_STREAMS_PER_IP: positiveInt.default(10),
  PUBLIC_STREAMS_MAX: positiveInt.default(2000),
  PUBLIC_STREAM_IDLE_SECONDS: positiveInt.default(600),
  PUBLIC_STREAM_MAX_SECONDS: positiveInt.default(1800),
  EMAILS_PER_MERCHANT_PER_HOUR: positiveInt.default(200),
});

const LOOPBACK_HOST = /^(localhost|127(\.\d{1,3}){3}|\[::1\])$/i;

/**
 * Production needs an https:// PUBLIC_URL: the dashboard session cookie is marked Secure only on
 * https. Loopback hosts (localhost, 127.0.0.0/8, [::1]) never leave the machine and are accepted;
 * anything else over http:// needs KASSA_ALLOW_INSECURE_PUBLIC_URL=1, which accepts that session
 * cookies and checkout pages travel unencrypted.
 */
function checkPublicUrl(env: string, publicUrl: string, allowInsecure: string | undefined): void {
  if (env !== 'production') return;
  const url = new URL(publicUrl);
  if (url.protocol === 'https:' || LOOPBACK_HOST.test(url.hostname)) return;
  if (allowInsecure === '1' || allowInsecure === 'true') return;
  throw new ConfigError(
    `PUBLIC_URL is insecure (${JSON.stringify(publicUrl)}): production needs an https:// URL, otherwise dashboard session cookies and checkout pages travel unencrypted. ` +
      'Put TLS in front of Kassa and set PUBLIC_URL to the https:// address, or set KASSA_ALLOW_INSECURE_PUBLIC_URL=1 to accept that risk.',
  );
}

/** Default webhook retry delays: 10 s, 1 min, 10 min, 1 h, 6 h, then every 12 h up to ~3 days. */
export const DEFAULT_WEBHOOK_RETRY_DELAYS_MS: readonly number[] = [
  10_000, 60_000, 600_000, 3_600_000, 21_600_000, 43_200_000, 43_200_000, 43_200_000, 43_200_000, 43_200_000,
];

/** Chains file (KASSA_CONFIG): chain and token definitions. Later issues extend it. */
const bitcoinChainSchema = z.strictObject({
  type: z.literal('bitcoin'),
  network: z.enum(['mainnet', 'testnet', 'signet', 'regtest']),
  rpc: z
    .strictObject({ url: urlWith(['http:', 'https:']), user: z.string().optional(), password: z.string().optional() })
    .optional(),
  esplora: z.strictObject({ url: urlWith(['http:', 'https:']) }).optional(),
  poll_interval_ms: positiveInt.default(1000),
  reorg_window: positiveInt.default(100),
  // First pass without a cursor: scan back at most this many blocks to cover open invoices
  // (src/chains/start-height.ts; default 1,008, about a week).
  first_scan_lookback_blocks: positiveInt.optional(),
  explorer_tx_url: z.string().optional(),
});

const evmTokenSchema = z.strictObject({
  symbol: z.string().regex(/^[A-Z0-9]{2,10}$/),
  address: z.string().regex(/^0x[0-9a-fA-F]{40}$/),
  decimals: z.number().int().min(0).max(36),
});

const confirmationsSchema = z.strictObject({
  high: z.number().int().min(0),
  medium: z.number().int().min(0),
  low_medium: z.number().int().min(0),
  low: z.number().int().min(0),
});

const baseUnits = z.string().regex(/^(0|[1-9][0-9]{0,77})$/, 'a whole number of base units, as a decimal string');

// The sweeper's policy (docs/evm.md, "Sweep policy"); a preset fills in its defaults.
const sweepPolicySchema = z.strictObject({
  // Native coin is worth sweeping when the forwarder's balance is at least this many times the
  // sweep's gas cost at the current gas price.
  min_gas_multiple: z.number().int().min(0).max(1000).default(3),
  // Per token symbol: the smallest balance (base units) worth a sweep. Unlisted tokens: any balance.
  token_minimums: z.record(z.string().regex(/^[A-Z0-9]{2,10}$/), baseUnits).default({}),
  // Deployed forwarders flushed per transaction (ForwarderFactory.flushMany).
  batch_size: z.number().int().min(1).max(100).default(20),
  // The sweeper key's native balance (base units) below which /health and /metrics warn.
  low_balance: baseUnits.default('10000000000000000'),
  // A forwarder skipped as dust is looked at again after this long (or after a new payment).
  recheck_minutes: z.number().int().min(1).max(10_080).default(10),
});

export type SweepPolicyConfig = z.infer<typeof sweepPolicySchema>;
/** The sweep policy of an EVM chain without preset and without a `sweep` entry. */
export const DEFAULT_SWEEP_POLICY: SweepPolicyConfig = sweepPolicySchema.parse({});

const evmChainSchema = z.strictObject({
  type: z.literal('evm'),
  // Built-in preset this entry starts from (src/chains/evm/presets.ts; `kassa chains presets`).
  preset: z.string().optional(),
  // The network's name shown to customers and in the API ("Base"); default: the preset's name.
  name: z.string().min(1).max(40).optional(),
  network: z.string().min(1),
  chain_id: z.number().int().positive(),
  rpc_url: urlWith(['http:', 'https:']),
  ws_url: urlWith(['ws:', 'wss:']).optional(),
  native_symbol: z.string().regex(/^[A-Z0-9]{2,10}$/).default('ETH'),
  factory: z.string().regex(/^0x[0-9a-fA-F]{40}$/).optional(),
  implementation: z.string().regex(/^0x[0-9a-fA-F]{40}$/).optional(),
  confirmations: confirmationsSchema.default({ high: 0, medium: 1, low_medium: 3, low: 12 }),
  use_finalized_tag: z.boolean().default(false),
  tokens: z.array(evmTokenSchema).default([]),
  poll_interval_ms: positiveInt.default(1000),
  max_log_range: positiveInt.default(2000),
  reorg_window: positiveInt.default(128),
  // First pass without a cursor: scan back at most this many blocks to cover open invoices
  // (src/chains/start-height.ts; default 10,000).
  first_scan_lookback_blocks: positiveInt.optional(),
  // The balance check (native coin sent by contracts) reads at most this many open addresses per
  // block, round-robin (src/chains/evm/balance-rotation.ts; docs/evm.md). Default 10,000.
  balance_check_per_block: positiveInt.optional(),
  sweeper_private_key: z.string().regex(/^0x[0-9a-fA-F]{64}$/).optional(),
  // Absent: DEFAULT_SWEEP_POLICY (a preset always fills it in).
  sweep: sweepPolicySchema.optional(),
  explorer_tx_url: z.string().optional(),
  // A public RPC endpoint a customer's wallet may add (wallet_addEthereumChain on the checkout);
  // never the private rpc_url. Default: the preset's public endpoint.
  public_rpc_url: urlWith(['https:', 'http:']).optional(),
});

const chainsFileSchema = z.strictObject({
  chains: z.record(z.string().regex(/^[a-z][a-z0-9_-]{0,31}$/), z.discriminatedUnion('type', [bitcoinChainSchema, evmChainSchema])).default({}),
  rates: z
    .strictObject({
      providers: z.array(z.enum(['fixed', 'coinbase', 'kraken'])).default(['fixed']),
      fixed: z.record(z.string(), z.string()).default({}),
      cache_seconds: positiveInt.default(60),
      timeout_ms: positiveInt.default(5000),
    })
    .default({ providers: ['fixed'], fixed: {}, cache_seconds: 60, timeout_ms: 5000 }),
}).superRefine((file, ctx) => {
  // One Bitcoin chain per deployment: its payment method id is plain "BTC" (src/money/assets.ts).
  const bitcoin = Object.entries(file.chains).filter(([, c]) => c.type === 'bitcoin').map(([key]) => key);
  if (bitcoin.length > 1) {
    ctx.addIssue({
      code: 'custom',
      path: ['chains', bitcoin[1]!],
      message: `only one chain of type "bitcoin" is supported per deployment, but ${bitcoin.map((k) => `"${k}"`).join(' and ')} both are. Remove all but one (run a separate Kassa for another Bitcoin network).`,
    });
  }
});

export type BitcoinChainConfig = z.infer<typeof bitcoinChainSchema>;
export type EvmChainConfig = z.infer<typeof evmChainSchema>;
export type ChainConfig = BitcoinChainConfig | EvmChainConfig;
export type ChainsFile = z.infer<typeof chainsFileSchema>;

export interface Config {
  env: 'development' | 'production' | 'test';
  databaseUrl: string;
  redisUrl: string;
  host: string;
  port: number;
  publicUrl: string;
  logLevel: z.infer<typeof logLevel>;
  /** 32 bytes used for AES-256-GCM of recoverable secrets (webhook secrets, SMTP passwords). */
  secretKey: Buffer;
  dataDir: string;
  queuePrefix: string;
  rateLimitPerSecond: number;
  /** Checkout pages and the public invoice API: requests per minute per client IP. */
  publicRateLimitPerMinute: number;
  /** Live-status streams (/v1/public/invoices/:id/stream) per API process: caps and timeouts. */
  publicStreams: { perIp: number; max: number; idleMs: number; maxMs: number };
  dbPoolSize: number;
  adminToken: string | undefined;
  /** Reverse proxies whose X-Forwarded-For is believed (IPs / CIDR ranges); empty: the TCP peer is the client. */
  trustedProxies: string[];
  /** Port of the worker process's own /metrics listener (unset: no listener). */
  metricsPort: number | undefined;
  /** SMTP server for customer e-mails (smtp:// or smtps://); e-mails are off when unset. */
  smtpUrl: string | undefined;
  smtpFrom: string;
  /** Customer e-mails a merchant's invoices may cause per rolling hour; more are not sent. */
  emailsPerMerchantPerHour: number;
  webhooks: {
    /** Accept http:// endpoint URLs (default: true outside production). */
    allowHttp: boolean;
    /** Hosts (URL host names or IP literals, lowercase) exempt from the SSRF block list. */
    allowedHosts: string[];
    /** Delay before each retry; the number of attempts is `retryDelaysMs.length + 1`. */
    retryDelaysMs: number[];
    /** Per-attempt timeout (connect + response). */
    timeoutMs: number;
  };
  chains: ChainsFile['chains'];
  rates: ChainsFile['rates'];
}

function formatIssue(name: string, issue: z.core.$ZodIssue, value: unknown): string {
  const shown = value === undefined ? 'is missing' : `is invalid (${JSON.stringify(value)})`;
  return `${name} ${shown}: ${issue.message}`;
}

/** Decodes KASSA_SECRET_KEY: 64 hex characters or base64 of exactly 32 bytes. */
function decodeSecretKey(raw: string): Buffer {
  const key = /^[0-9a-fA-F]{64}$/.test(raw) ? Buffer.from(raw, 'hex') : Buffer.from(raw, 'base64');
  if (key.length !== 32) {
    throw new ConfigError(
      'KASSA_SECRET_KEY is invalid: it must be 32 random bytes as 64 hex characters or base64 (generate one with: openssl rand -hex 32)',
    );
  }
  return key;
}

/**
 * Outside production, a missing KASSA_SECRET_KEY is generated once into the data folder so the
 * sandbox needs no setup and encrypted secrets survive restarts. Production must set it.
 */
function localSecretKey(dataDir: string): Buffer {
  const file = path.join(dataDir, 'secret.key');
  if (existsSync(file)) return decodeSecretKey(readFileSync(file, 'utf8').trim());
  mkdirSync(dataDir, { recursive: true });
  const hex = randomBytes(32).toString('hex');
  writeFileSync(file, hex + '\n', { mode: 0o600 });
  return Buffer.from(hex, 'hex');
}

export function loadChainsFile(file: string | undefined, envName = 'KASSA_CONFIG'): ChainsFile {
  if (!file) return chainsFileSchema.parse({});
  let raw: unknown;
  try {
    raw = JSON.parse(readFileSync(file, 'utf8'));
  } catch (err) {
    throw new ConfigError(`${envName} (${file}) cannot be read as JSON: ${(err as Error).message}`);
  }
  return parseChainsFile(raw, `${envName} (${file})`);
}

/** Fills in `"preset": "<key>"` entries (the entry's own fields win); errors name the entry's path. */
function withPresets(raw: unknown, where: string): unknown {
  if (typeof raw !== 'object' || raw === null) return raw;
  const chains = (raw as { chains?: unknown }).chains;
  if (typeof chains !== 'object' || chains === null || Array.isArray(chains)) return raw;
  const out: Record<string, unknown> = {};
  for (const [key, entry] of Object.entries(chains)) {
    if (typeof entry !== 'object' || entry === null || !('preset' in entry)) {
      out[key] = entry;
      continue;
    }
    if ((entry as { type?: unknown }).type !== undefined && (entry as { type?: unknown }).type !== 'evm') {
      throw new ConfigError(`${where} is invalid at chains.${key}.preset: presets are EVM chains; remove "preset" or "type"`);
    }
    const applied = applyEvmPreset(entry as Record<string, unknown>);
    if (!applied.ok) throw new ConfigError(`${where} is invalid at chains.${key}.${applied.path.join('.')}: ${applied.message}`);
    out[key] = applied.value;
  }
  return { ...raw, chains: out };
}

export function parseChainsFile(raw: unknown, where = 'chains config'): ChainsFile {
  const result = chainsFileSchema.safeParse(withPresets(raw, where));
  if (!result.success) {
    const issue = result.error.issues[0]!;
    const at = issue.path.join('.') || '(top level)';
    throw new ConfigError(`${where} is invalid at ${at}: ${issue.message}`);
  }
  return result.data;
}

/** Reads and validates the environment. Throws ConfigError with one readable line. */
export function loadConfig(env: Record<string, string | undefined> = process.env): Config {
  const cleaned: Record<string, string> = {};
  for (const key of Object.keys(envSchema.shape)) {
    const value = env[key];
    if (value !== undefined && value !== '') cleaned[key] = value;
  }
  const parsed = envSchema.safeParse(cleaned);
  if (!parsed.success) {
    const issue = parsed.error.issues[0]!;
    const name = String(issue.path[0] ?? 'environment');
    throw new ConfigError(formatIssue(name, issue, cleaned[name]));
  }
  const e = parsed.data;
  let secretKey: Buffer;
  if (e.KASSA_SECRET_KEY) secretKey = decodeSecretKey(e.KASSA_SECRET_KEY);
  else if (e.KASSA_ENV === 'production') {
    throw new ConfigError('KASSA_SECRET_KEY is missing: production needs a fixed 32-byte key (generate one with: openssl rand -hex 32)');
  } else secretKey = localSecretKey(e.KASSA_DATA_DIR);

  const publicUrl = (e.PUBLIC_URL ?? `http://localhost:${e.PORT}`).replace(/\/+$/, '');
  checkPublicUrl(e.KASSA_ENV, publicUrl, e.KASSA_ALLOW_INSECURE_PUBLIC_URL);
  const chainsFile = loadChainsFile(e.KASSA_CONFIG);
  return {
    env: e.KASSA_ENV,
    databaseUrl: e.DATABASE_URL,
    redisUrl: e.REDIS_URL,
    host: e.HOST,
    port: e.PORT,
    publicUrl,
    logLevel: e.LOG_LEVEL,
    secretKey,
    dataDir: e.KASSA_DATA_DIR,
    queuePrefix: e.KASSA_QUEUE_PREFIX,
    rateLimitPerSecond: e.RATE_LIMIT_PER_SECOND,
    publicRateLimitPerMinute: e.PUBLIC_RATE_LIMIT_PER_MINUTE,
    publicStreams: {
      perIp: e.PUBLIC_STREAMS_PER_IP,
      max: e.PUBLIC_STREAMS_MAX,
      idleMs: e.PUBLIC_STREAM_IDLE_SECONDS * 1000,
      maxMs: e.PUBLIC_STREAM_MAX_SECONDS * 1000,
    },
    dbPoolSize: e.DB_POOL_SIZE,
    adminToken: e.ADMIN_TOKEN,
    trustedProxies: e.TRUSTED_PROXIES ? e.TRUSTED_PROXIES.split(',').map((x) => x.trim()) : [],
    metricsPort: e.METRICS_PORT,
    smtpUrl: e.SMTP_URL,
    smtpFrom: e.SMTP_FROM,
    emailsPerMerchantPerHour: e.EMAILS_PER_MERCHANT_PER_HOUR,
    webhooks: {
      allowHttp: e.WEBHOOK_ALLOW_HTTP === undefined ? e.KASSA_ENV !== 'production' : e.WEBHOOK_ALLOW_HTTP === 'true' || e.WEBHOOK_ALLOW_HTTP === '1',
      allowedHosts: (e.WEBHOOK_ALLOWED_HOSTS ?? (e.KASSA_ENV === 'development' ? 'localhost,127.0.0.1,::1' : ''))
        .split(',')
        .map((h) => h.trim().toLowerCase().replace(/^\[(.*)\]$/, '$1'))
        .filter((h) => h !== ''),
      retryDelaysMs: e.WEBHOOK_RETRY_DELAYS_MS ? e.WEBHOOK_RETRY_DELAYS_MS.split(',').map(Number) : [...DEFAULT_WEBHOOK_RETRY_DELAYS_MS],
      timeoutMs: e.WEBHOOK_TIMEOUT_MS,
    },
    chains: chainsFile.chains,
    rates: chainsFile.rates,
  };
}
