/**
 * A whole Kassa deployment as separate processes, for the fault harness and the benches:
 * redis-server (own port), a fresh Postgres database (created + dropped), the Bitcoin devnet
 * (`kassa devnet bitcoin`), a hardhat node with Kassa's contracts and test tokens deployed,
 * `kassa serve` and N × `kassa worker`, a chains file with fixed rates, a payable merchant and a
 * webhook endpoint pointing at a receiver in this process that verifies every signature.
 */
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import postgres from 'postgres';
import { Redis } from 'ioredis';
import { createPublicClient, createWalletClient, http, type Hex, type PublicClient } from 'viem';
import { privateKeyToAccount } from 'viem/accounts';
import { hardhat } from 'viem/chains';
import { loadConfig, type Config } from '../../src/config.ts';
import { createDeps, type Deps } from '../../src/deps.ts';
import { createLogger } from '../../src/logger.ts';
import { createSql, type Sql } from '../../src/db/client.ts';
import { migrate } from '../../src/db/migrate.ts';
import { randomBase62 } from '../../src/ids.ts';
import { deployDevContracts } from '../../src/sandbox/test-tokens.ts';
import { createBitcoinRpcClient, type BitcoinRpcClient } from '../../src/chains/bitcoin/rpc.ts';
import { PG_SERVER } from '../support/db.ts';
import { createPayableMerchant, type testWallet } from '../support/merchant.ts';
import { HARDHAT_ACCOUNTS } from '../support/hardhat.ts';
import { freePort, HARDHAT_BIN, HARDHAT_CONFIG, KASSA_BIN, sleep, spawnProc, waitFor, type Proc } from './procs.ts';
import { startReceiver, type Receiver } from './receiver.ts';

/** How long a process may take to come up (KASSA_FAULTS_START_MS; 2 cores shared with other jobs can need minutes). */
const START_MS = Number(process.env.KASSA_FAULTS_START_MS ?? 180_000);

export const RATES: Record<string, string> = { 'BTC-USD': '60000.00', 'ETH-USD': '3000.00', 'USDC-USD': '1', 'USDT-USD': '1' };

export interface ClusterOptions {
  workers?: number;
  /** Webhook retry delays (ms), passed as WEBHOOK_RETRY_DELAYS_MS. */
  retryDelaysMs?: number[];
  logLevel?: string;
  pollIntervalMs?: number;
  /** Print progress lines. */
  say?: (line: string) => void;
}

export interface Cluster {
  dir: string;
  dbName: string;
  dbUrl: string;
  /** Harness-side SQL (max 2 connections). */
  sql: Sql;
  config: Config;
  redisPort: number;
  redis: Proc;
  devnet: Proc;
  hardhat: Proc;
  api: Proc;
  workers: Proc[];
  apiUrl: string;
  btc: BitcoinRpcClient;
  evm: { url: string; publicClient: PublicClient; factory: Hex; implementation: Hex; usdc: Hex; usdt: Hex };
  /** The merchant, with its Bitcoin wallet (the account key Kassa got the tpub of: the harness signs refund PSBTs with it). */
  merchant: { id: string; secret: string; wallet: ReturnType<typeof testWallet> };
  receiver: Receiver;
  webhookSecret: string;
  /** Heights at which the watchers started (chain truth is scanned from there). */
  start: { bitcoin: number; ethereum: number };
  /** Authenticated API call (extra headers, e.g. Idempotency-Key); returns status and parsed body. */
  api$(method: string, p: string, body?: unknown, headers?: Record<string, string>): Promise<{ status: number; body: any }>;
  restartRedis(flush: boolean, downMs: number): Promise<void>;
  close(): Promise<void>;
}

async function startRedis(port: number, env: NodeJS.ProcessEnv, logDir: string): Promise<Proc> {
  const p = spawnProc('redis', 'redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--daemonize', 'no'], { env, logDir });
  await waitRedis(port);
  return p;
}

async function waitRedis(port: number): Promise<void> {
  await waitFor('redis ping', 10_000, async () => {
    const r = new Redis({ port, host: '127.0.0.1', lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null, enableOfflineQueue: false });
    r.on('error', () => {});
    try {
      await r.connect();
      return (await r.ping()) === 'PONG';
    } finally {
      r.disconnect();
    }
  });
}

async function rpcUp(url: string): Promise<boolean> {
  const res = await fetch(url, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'eth_chainId', params: [] }), signal: AbortSignal.timeout(1000) });
  return res.ok;
}

export async function startCluster(o: ClusterOptions = {}): Promise<Cluster> {
  const say = o.say ?? (() => {});
  const dir = mkdtempSync(path.join(tmpdir(), 'kassa-faults-'));
  const baseEnv: NodeJS.ProcessEnv = { PATH: process.env.PATH ?? '/usr/bin:/bin', HOME: process.env.HOME ?? dir, NO_COLOR: '1' };
  const cleanups: (() => Promise<void>)[] = [];
  const procs: Proc[] = [];
  try {
    // Database
    const dbName = `kassa_faults_${randomBase62(10).toLowerCase()}`;
    const admin = postgres(`${PG_SERVER}/postgres`, { max: 1, onnotice: () => {} });
    await admin.unsafe(`create database ${dbName}`);
    await admin.end();
    cleanups.push(async () => {
      const a = postgres(`${PG_SERVER}/postgres`, { max: 1, onnotice: () => {} });
      await a.unsafe(`drop database if exists ${dbName} with (force)`).catch(() => {});
      await a.end();
    });
    const dbUrl = `${PG_SERVER}/${dbName}`;
    {
      const m = createSql(dbUrl, { max: 1 });
      await migrate(m);
      await m.end();
    }

    const [redisPort, btcPort, evmPort, apiPort] = await Promise.all([freePort(), freePort(), freePort(), freePort()]);
    const redis = await startRedis(redisPort, baseEnv, dir);
    procs.push(redis);

    // Bitcoin devnet
    let btcInfo: { rpc_url: string } | null = null;
    const devnet = spawnProc('devnet', process.execPath, [KASSA_BIN, 'devnet', 'bitcoin', '--port', String(btcPort), '--rpcuser', 'kassa', '--rpcpassword', 'kassa'], {
      env: baseEnv, logDir: dir,
      onLine: (l) => {
        if (l.startsWith('{') && !btcInfo) {
          try { btcInfo = JSON.parse(l); } catch { /* not it */ }
        }
      },
    });
    procs.push(devnet);
    // Hardhat
    const hh = spawnProc('hardhat', process.execPath, [HARDHAT_BIN, '--config', HARDHAT_CONFIG, 'node', '--hostname', '127.0.0.1', '--port', String(evmPort)], {
      env: { ...baseEnv, HARDHAT_DISABLE_TELEMETRY_PROMPT: 'true', DO_NOT_TRACK: '1', CI: 'true' }, logDir: dir,
    });
    procs.push(hh);
    const evmUrl = `http://127.0.0.1:${evmPort}`;
    await waitFor('bitcoin devnet start line', START_MS, async () => btcInfo);
    await waitFor('hardhat node', START_MS, () => rpcUp(evmUrl));
    const chain = { ...hardhat, rpcUrls: { default: { http: [evmUrl] } } };
    const publicClient = createPublicClient({ chain, transport: http(evmUrl) }) as PublicClient;
    const deployer = createWalletClient({ account: privateKeyToAccount(HARDHAT_ACCOUNTS[0]!.privateKey), chain, transport: http(evmUrl) });
    const c = await deployDevContracts({ walletClient: deployer, publicClient });
    say(`hardhat ${evmUrl}: factory ${c.factory}, USDC ${c.testUsdc}, USDT ${c.testUsdt}`);
    const btcRpcUrl = btcInfo!.rpc_url;
    say(`bitcoin devnet ${btcRpcUrl}`);

    const poll = o.pollIntervalMs ?? 100;
    const chainsFile = path.join(dir, 'chains.json');
    writeFileSync(chainsFile, JSON.stringify({
      chains: {
        bitcoin: { type: 'bitcoin', network: 'regtest', rpc: { url: btcRpcUrl, user: 'kassa', password: 'kassa' }, poll_interval_ms: poll },
        ethereum: {
          type: 'evm', network: 'local', chain_id: 31337, rpc_url: evmUrl, factory: c.factory, implementation: c.implementation,
          confirmations: { high: 0, medium: 1, low_medium: 2, low: 3 },
          tokens: [{ symbol: 'USDC', address: c.testUsdc, decimals: 6 }, { symbol: 'USDT', address: c.testUsdt, decimals: 6 }],
          poll_interval_ms: poll,
        },
      },
      rates: { providers: ['fixed'], fixed: RATES },
    }));

    const env: Record<string, string> = {
      KASSA_ENV: 'test',
      DATABASE_URL: dbUrl,
      REDIS_URL: `redis://127.0.0.1:${redisPort}`,
      HOST: '127.0.0.1',
      PORT: String(apiPort),
      PUBLIC_URL: `http://127.0.0.1:${apiPort}`,
      LOG_LEVEL: o.logLevel ?? 'info',
      KASSA_SECRET_KEY: '22'.repeat(32),
      KASSA_DATA_DIR: path.join(dir, 'data'),
      KASSA_CONFIG: chainsFile,
      KASSA_QUEUE_PREFIX: '{kassa-faults}',
      RATE_LIMIT_PER_SECOND: '100000',
      // The load bench polls checkout pages from one address (127.0.0.1).
      PUBLIC_RATE_LIMIT_PER_MINUTE: '1000000',
      DB_POOL_SIZE: '8',
      WEBHOOK_ALLOW_HTTP: 'true',
      WEBHOOK_ALLOWED_HOSTS: '127.0.0.1',
      WEBHOOK_RETRY_DELAYS_MS: (o.retryDelaysMs ?? [200, 500, 1000, 2000, 3000, 3000, 3000, 3000, 3000, 3000, 3000, 3000]).join(','),
      WEBHOOK_TIMEOUT_MS: '3000',
    };
    const config = loadConfig(env);
    const childEnv = { ...baseEnv, ...env };

    // Merchant (BTC + ETH/USDC/USDT), directly in the database like the test helpers do.
    const quiet = createLogger({ level: 'warn', destination: process.stderr as never });
    const deps: Deps = createDeps(config, { logger: quiet });
    let shop: Awaited<ReturnType<typeof createPayableMerchant>>;
    try {
      shop = await createPayableMerchant(deps, { name: 'Faults shop' });
    } finally {
      await deps.close();
    }

    const api = spawnProc('api', process.execPath, [KASSA_BIN, 'serve'], { env: childEnv, logDir: dir });
    procs.push(api);
    const workers: Proc[] = [];
    for (let i = 0; i < (o.workers ?? 2); i++) {
      const w = spawnProc(`worker${i + 1}`, process.execPath, [KASSA_BIN, 'worker'], { env: childEnv, logDir: dir });
      workers.push(w);
      procs.push(w);
    }
    const apiUrl = `http://127.0.0.1:${apiPort}`;
    await waitFor('API /health', START_MS, async () => (await fetch(`${apiUrl}/health`, { signal: AbortSignal.timeout(2000) })).status > 0);

    const api$ = async (method: string, p: string, body?: unknown, headers: Record<string, string> = {}) => {
      const res = await fetch(apiUrl + p, {
        method,
        headers: { authorization: `Bearer ${shop.secret}`, ...(body !== undefined ? { 'content-type': 'application/json' } : {}), ...headers },
        ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
        signal: AbortSignal.timeout(15_000),
      });
      const text = await res.text();
      let parsed: unknown = text;
      try { parsed = JSON.parse(text); } catch { /* not json */ }
      return { status: res.status, body: parsed as any };
    };

    const receiver = await startReceiver();
    cleanups.push(() => receiver.close());
    const ep = await api$('POST', '/v1/webhook_endpoints', { url: receiver.url, events: ['*'] });
    if (ep.status !== 201) throw new Error(`webhook endpoint: ${ep.status} ${JSON.stringify(ep.body)}`);
    receiver.setSecret(ep.body.secret);

    const sql = createSql(dbUrl, { max: 2 });
    const btc = createBitcoinRpcClient({ url: btcRpcUrl, user: 'kassa', password: 'kassa', name: 'devnet', timeoutMs: 15_000, retries: 0 });

    // The watchers start at the tips they first see: wait for both cursors.
    const start = await waitFor('both watchers to take their starting block', START_MS + 30_000, async () => {
      const rows = await sql<{ chain: string; tip_height: bigint | null }[]>`select chain, tip_height from chain_state`;
      const b = rows.find((r) => r.chain === 'bitcoin')?.tip_height;
      const e = rows.find((r) => r.chain === 'ethereum')?.tip_height;
      return b != null && e != null ? { bitcoin: Number(b), ethereum: Number(e) } : null;
    });
    say(`watchers started at bitcoin ${start.bitcoin}, ethereum ${start.ethereum}; logs in ${dir}`);

    let redisProc = redis;
    const cluster: Cluster = {
      dir, dbName, dbUrl, sql, config, redisPort,
      get redis() { return redisProc; },
      devnet, hardhat: hh, api, workers, apiUrl, btc,
      evm: { url: evmUrl, publicClient, factory: c.factory, implementation: c.implementation, usdc: c.testUsdc, usdt: c.testUsdt },
      merchant: { id: shop.merchant.id, secret: shop.secret, wallet: shop.wallet },
      receiver, webhookSecret: ep.body.secret, start, api$,
      async restartRedis(flush, downMs) {
        if (flush) {
          const r = new Redis({ port: redisPort, host: '127.0.0.1', maxRetriesPerRequest: 1, lazyConnect: true });
          r.on('error', () => {});
          await r.connect().then(() => r.flushall()).catch(() => {});
          r.disconnect();
        }
        await redisProc.stop(3000);
        await sleep(downMs);
        await redisProc.restart();
        await waitRedis(redisPort);
      },
      async close() {
        await sql.end({ timeout: 2 }).catch(() => {});
        for (const p of [...procs].reverse()) {
          p.resume();
          await p.stop(3000);
        }
        for (const f of cleanups.reverse()) await f().catch(() => {});
      },
    };
    return cluster;
  } catch (err) {
    for (const p of [...procs].reverse()) await p.stop(2000).catch(() => {});
    for (const f of cleanups.reverse()) await f().catch(() => {});
    (err as Error).message += ` (logs in ${dir})`;
    throw err;
  }
}
