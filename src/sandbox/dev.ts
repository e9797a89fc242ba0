/**
 * `npm run dev` (`kassa dev`): the whole of Kassa on one machine, in one process tree.
 *
 *   [bitcoin]  the regtest devnet (child: `kassa devnet bitcoin`, in memory, premined)
 *   [ethereum] `hardhat node` (child, in memory) with the factory and test tokens deployed
 *   [api]      `kassa serve` (child)        [worker] `kassa worker` (child)
 *   [webhooks] the built-in receiver (in this process), verifying every delivery's signature
 *
 * On every start: writes `.kassa/sandbox/chains.json` (deployed addresses, fixed rates), resets
 * the cursors of the `bitcoin`/`ethereum` chains (the chains restart empty, so chain data does
 * not survive a restart; the demo merchant, its key and webhook endpoint do), ensures the demo
 * merchant, then prints the API URL, the docs URL, the demo API key and a curl to create an invoice.
 * Ctrl-C / SIGTERM stops the children and exits 0.
 */
import { mkdirSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Redis } from 'ioredis';
import { loadChainsFile, type Config } from '../config.ts';
import { createDeps } from '../deps.ts';
import { databaseName, ensureDatabase, redactUrl } from '../db/client.ts';
import { createLogger } from '../logger.ts';
import { prepareDatabase } from '../db/prepare.ts';
import { writeEvmSnapshots, writePrivateJson, type SandboxState } from './files.ts';
import { sandboxPaths, type SandboxRuntime } from '../cli/sandbox-runtime.ts';
import { HARDHAT_ACCOUNTS, SANDBOX_CHAIN_ID, startSandboxEvm, takeEvmSnapshot } from './hardhat.ts';
import { ensureDemoMerchant, ensureWebhookEndpoint, resetChainCursors } from './merchant.ts';
import { portOrFree, say, spawnManaged, type ManagedChild } from './procs.ts';
import { startWebhookReceiver, type WebhookReceiver } from './receiver.ts';

const REPO_ROOT = fileURLToPath(new URL('../..', import.meta.url));
const KASSA_BIN = path.join(REPO_ROOT, 'bin', 'kassa.js');

export const SANDBOX_RATES: Record<string, string> = {
  'BTC-USD': '60000.00', 'ETH-USD': '3000.00', 'USDC-USD': '1', 'USDT-USD': '1',
  'BTC-EUR': '55000.00', 'ETH-EUR': '2750.00', 'USDC-EUR': '0.92', 'USDT-EUR': '0.92',
};

const BTC_RPC_USER = 'kassa';
const BTC_RPC_PASSWORD = 'kassa';

export interface DevOptions {
  /** Preferred ports (a busy one is replaced by a free one); 0 = any free port. */
  bitcoinPort?: number;
  evmPort?: number;
  webhookPort?: number;
  /** Environment passed to the children (PATH, DATABASE_URL, …); the sandbox adds KASSA_CONFIG. */
  env: NodeJS.ProcessEnv;
}

/** Exit code 3: a required local service is not running. */
class MissingService extends Error {}

async function checkPostgres(config: Config): Promise<void> {
  try {
    if (await ensureDatabase(config.databaseUrl)) say('sandbox', `created database ${databaseName(config.databaseUrl)}`);
  } catch (err) {
    const e = err as { code?: string; message: string };
    const url = new URL(config.databaseUrl);
    throw new MissingService(
      `PostgreSQL is not reachable at ${url.hostname}:${url.port || 5432} (${e.code ?? e.message}). Start it, e.g.:\n` +
        `  pg_isready -h 127.0.0.1 -p 5432 || pg_ctlcluster --skip-systemctl-redirect $(ls /etc/postgresql) main start\n` +
        `(or set DATABASE_URL; now ${redactUrl(config.databaseUrl)})`,
    );
  }
}

async function checkRedis(config: Config): Promise<void> {
  const redis = new Redis(config.redisUrl, { lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null, connectTimeout: 3_000, enableOfflineQueue: false });
  redis.on('error', () => {});
  try {
    await redis.connect();
    await redis.ping();
  } catch (err) {
    throw new MissingService(
      `Redis is not reachable at ${redactUrl(config.redisUrl)} (${(err as Error).message}). Start it, e.g.:\n` +
        `  redis-cli -h 127.0.0.1 ping || redis-server --daemonize yes --bind 127.0.0.1 -::1 --port 6379 --save "" --appendonly no --dir /var/lib/redis --logfile /var/log/redis/ci.log`,
    );
  } finally {
    redis.disconnect();
  }
}

async function waitFor<T>(what: string, timeoutMs: number, fn: () => Promise<T | null>, isDead?: () => boolean): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (isDead?.()) throw new Error(`${what}: the process exited`);
    const v = await fn().catch(() => null);
    if (v !== null) return v;
    await new Promise((r) => setTimeout(r, 250));
  }
  throw new Error(`${what} did not happen within ${timeoutMs / 1000} s`);
}

function startBitcoin(port: number, env: NodeJS.ProcessEnv): { proc: ManagedChild; info: Promise<SandboxRuntime['bitcoin']> } {
  let resolveInfo!: (v: SandboxRuntime['bitcoin']) => void;
  const info = new Promise<SandboxRuntime['bitcoin']>((r) => (resolveInfo = r));
  const proc = spawnManaged('bitcoin', process.execPath, [KASSA_BIN, 'devnet', 'bitcoin', '--port', String(port), '--rpcuser', BTC_RPC_USER, '--rpcpassword', BTC_RPC_PASSWORD], {
    cwd: REPO_ROOT,
    env,
    onLine: (line) => {
      if (!line.startsWith('{')) return;
      try {
        const o = JSON.parse(line) as { rpc_url: string; esplora_url: string; rpc_user: string; rpc_password: string };
        if (o.rpc_url) resolveInfo(o);
      } catch {
        /* not the start line */
      }
    },
    filter: (line) => !line.startsWith('{"rpc_url"'),
  });
  return { proc, info };
}

function banner(o: { apiUrl: string; publicUrl: string; state: SandboxState; runtime: SandboxRuntime; webhooks: string; paths: ReturnType<typeof sandboxPaths>; created: boolean }): string {
  const curl =
    `curl -s -X POST ${o.apiUrl}/v1/invoices \\\n` +
    `    -H "Authorization: Bearer ${o.state.api_key}" -H "Content-Type: application/json" \\\n` +
    `    -d '{"amount": "25.00", "currency": "USD", "order_id": "order-1"}'`;
  return [
    '',
    'Kassa sandbox is running',
    `  API        ${o.apiUrl}${o.publicUrl !== o.apiUrl ? `   (public URL ${o.publicUrl})` : ''}`,
    `  Docs       ${o.apiUrl}/docs`,
    `  API key    ${o.state.api_key}   (demo merchant ${o.state.merchant_id}${o.created ? ', just created' : ''}; kept in ${path.relative(process.cwd(), o.paths.state) || o.paths.state})`,
    `  Bitcoin    ${o.runtime.bitcoin.rpc_url} (regtest devnet, RPC user/password kassa/kassa)`,
    `  Ethereum   ${o.runtime.ethereum.rpc_url} (hardhat, chain id ${SANDBOX_CHAIN_ID}; USDC ${o.runtime.ethereum.usdc}, USDT ${o.runtime.ethereum.usdt})`,
    `  Webhooks   ${o.webhooks}`,
    '',
    'Create an invoice:',
    `  ${curl}`,
    'Then pay it and mine a block:',
    '  npx kassa sandbox pay <invoice_id> [--method BTC|ETH-ethereum|USDC-ethereum|USDT-ethereum] [--partial 50 | --over 10 | --amount 0.001]',
    '  npx kassa sandbox mine [--chain bitcoin|ethereum] [--blocks 1]',
    'Or run a whole scenario: npx kassa sandbox scenario paid   (partial-then-topup, overpaid, expired, late, reorg, overpaid-refund, partial-refund)',
    'Reorg a chain: npx kassa sandbox reorg --chain bitcoin|ethereum --depth 2',
    '',
    'Chain data lives in memory and is gone after a restart; the demo merchant and its key are kept.',
    'Press Ctrl-C to stop.',
    '',
  ].join('\n');
}

/** Runs the sandbox until SIGINT/SIGTERM (resolves with the exit code) or a child dies (code 1). */
export async function runSandbox(baseConfig: Config, opts: DevOptions): Promise<number> {
  const paths = sandboxPaths(baseConfig.dataDir);
  mkdirSync(paths.dir, { recursive: true });
  const dataDir = path.resolve(baseConfig.dataDir);
  const children: ManagedChild[] = [];
  let receiver: WebhookReceiver | null = null;
  let stopping = false;
  let resolveDone!: (code: number) => void;
  const done = new Promise<number>((r) => (resolveDone = r));

  const stopAll = async (code: number, reason: string): Promise<void> => {
    if (stopping) return;
    stopping = true;
    if (children.length > 0) say('sandbox', `stopping (${reason})…`);
    // API and workers first (so the watchers do not complain about vanished chains), then the chains.
    const services = children.filter((c) => c.name === 'api' || c.name === 'worker');
    await Promise.all(services.map((c) => c.stop()));
    await Promise.all(children.filter((c) => !services.includes(c)).map((c) => c.stop()));
    await receiver?.close();
    resolveDone(code);
  };
  const onSignal = (signal: string) => {
    if (stopping) {
      for (const c of children) c.child.kill('SIGKILL');
      process.exit(1);
    }
    void stopAll(0, signal);
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  const watch = (c: ManagedChild) => {
    children.push(c);
    void c.exited.then((code) => {
      // A terminal Ctrl-C signals the whole group; give our own handler a moment to run first.
      setTimeout(() => {
        if (!stopping) void stopAll(1, `${c.name} exited with code ${code}`);
      }, 300);
    });
  };

  try {
    await checkPostgres(baseConfig);
    await checkRedis(baseConfig);

    const [bitcoinPort, evmPort, apiPort] = await Promise.all([
      portOrFree(opts.bitcoinPort ?? 18443),
      portOrFree(opts.evmPort ?? 8545),
      portOrFree(baseConfig.port),
    ]);
    if (baseConfig.port !== 0 && apiPort !== baseConfig.port) say('sandbox', `port ${baseConfig.port} is busy: the API uses ${apiPort}`);

    const childEnv: NodeJS.ProcessEnv = { ...opts.env, KASSA_DATA_DIR: dataDir, KASSA_CONFIG: paths.chains, PORT: String(apiPort) };
    const btc = startBitcoin(bitcoinPort, childEnv);
    watch(btc.proc);
    const evmPromise = startSandboxEvm(evmPort, childEnv);
    const [bitcoin, evm] = await Promise.all([
      Promise.race([btc.info, btc.proc.exited.then(() => Promise.reject(new Error('the bitcoin devnet exited during start-up')))]),
      evmPromise,
    ]);
    watch(evm.proc);
    say('bitcoin', `regtest devnet listening: RPC ${bitcoin.rpc_url}, Esplora ${bitcoin.esplora_url} (in memory, 101 premined blocks)`);
    say('ethereum', `factory ${evm.factory}, TestUSDC ${evm.usdc}, TestUSDT ${evm.usdt} deployed by ${HARDHAT_ACCOUNTS[0]!.address}`);

    writePrivateJson(paths.chains, {
      chains: {
        bitcoin: {
          type: 'bitcoin', network: 'regtest',
          rpc: { url: bitcoin.rpc_url, user: BTC_RPC_USER, password: BTC_RPC_PASSWORD },
          poll_interval_ms: 500,
        },
        ethereum: {
          type: 'evm', network: 'local', chain_id: SANDBOX_CHAIN_ID, rpc_url: evm.url,
          factory: evm.factory, implementation: evm.implementation,
          confirmations: { high: 0, medium: 1, low_medium: 2, low: 3 },
          tokens: [{ symbol: 'USDC', address: evm.usdc, decimals: 6 }, { symbol: 'USDT', address: evm.usdt, decimals: 6 }],
          poll_interval_ms: 500,
        },
      },
      rates: { providers: ['fixed'], fixed: SANDBOX_RATES },
    });
    const chainsFile = loadChainsFile(paths.chains);
    // The API child computes its public URL from its own PORT when PUBLIC_URL is not set.
    const publicUrl = childEnv.PUBLIC_URL ? baseConfig.publicUrl : `http://localhost:${apiPort}`;
    const config: Config = { ...baseConfig, dataDir, port: apiPort, publicUrl, chains: chainsFile.chains, rates: chainsFile.rates };

    // Database: created if missing, migrated; cursors reset; the demo merchant ensured.
    const quiet = createLogger({ level: 'warn', destination: process.stderr });
    await prepareDatabase(config, quiet);
    const deps = createDeps(config, { logger: quiet });
    let state: SandboxState;
    let created: boolean;
    try {
      await resetChainCursors(deps, ['bitcoin', 'ethereum']);
      ({ state, created } = await ensureDemoMerchant(deps, paths));
    } finally {
      await deps.close();
    }
    say('sandbox', `database ${databaseName(config.databaseUrl)}: chain cursors reset, demo merchant ${state.merchant_id}${created ? ' created' : ' reused'}`);

    receiver = await startWebhookReceiver({ port: opts.webhookPort ?? 0, logFile: paths.webhooksLog, secret: state.webhook_secret });

    const api = spawnManaged('api', process.execPath, [KASSA_BIN, 'serve'], { cwd: REPO_ROOT, env: childEnv });
    watch(api);
    watch(spawnManaged('worker', process.execPath, [KASSA_BIN, 'worker'], { cwd: REPO_ROOT, env: childEnv }));
    const apiUrl = `http://127.0.0.1:${apiPort}`;
    await waitFor('the API answering', 60_000, async () => ((await fetch(`${apiUrl}/health`)).status > 0 ? true : null), () => stopping);

    const wh = await ensureWebhookEndpoint(apiUrl, state, receiver.url, paths);
    state = wh.state;
    receiver.setSecret(state.webhook_secret);
    const webhooks =
      wh.status === 'unavailable'
        ? `receiver ${receiver.url} (NOT registered: this build has no /v1/webhook_endpoints)`
        : `${receiver.url} (endpoint ${state.webhook_endpoint_id}, signatures verified) → ${path.relative(process.cwd(), paths.webhooksLog) || paths.webhooksLog}`;

    const runtime: SandboxRuntime = {
      pid: process.pid,
      started_at: new Date().toISOString(),
      api_url: apiUrl,
      public_url: config.publicUrl,
      database_url: config.databaseUrl,
      redis_url: config.redisUrl,
      bitcoin,
      ethereum: {
        rpc_url: evm.url, chain_id: SANDBOX_CHAIN_ID, factory: evm.factory, implementation: evm.implementation, usdc: evm.usdc, usdt: evm.usdt,
        deployer_private_key: HARDHAT_ACCOUNTS[0]!.privateKey, payer_private_key: HARDHAT_ACCOUNTS[2]!.privateKey,
      },
      webhooks_url: wh.status === 'unavailable' ? null : receiver.url,
    };
    writePrivateJson(paths.runtime, runtime);
    // The first EVM snapshot (after the deployment): see src/sandbox/actions.ts on EVM reorgs.
    writeEvmSnapshots(dataDir, runtime, [await takeEvmSnapshot(evm.url, 'start')]);

    // Healthy = PostgreSQL, Redis and both chain watchers (they write the chain cursors).
    await waitFor('GET /health answering 200', 90_000, async () => ((await fetch(`${apiUrl}/health`)).status === 200 ? true : null), () => stopping);
    if (!stopping) process.stdout.write(banner({ apiUrl, publicUrl: config.publicUrl, state, runtime, webhooks, paths, created }) + '\n');
  } catch (err) {
    if (!stopping) {
      const message = err instanceof MissingService ? err.message : `start-up failed: ${(err as Error).message}`;
      process.stderr.write(`${message}\n`);
      await stopAll(err instanceof MissingService ? 3 : 1, 'start-up failed');
    }
  }
  const code = await done;
  process.off('SIGINT', onSignal);
  process.off('SIGTERM', onSignal);
  // runtime.json stays: it names a dead pid, which `kassa sandbox …` reports clearly.
  return code;
}
