/**
 * Invoice creation throughput (docs/architecture.md §10): POST /v1/invoices through the real API (auth,
 * validation, rate limit, Idempotency-Key, two payment methods with deposit addresses, the outbox
 * event) against a bare Hono endpoint doing one INSERT with the same driver, in the same run, both
 * loaded by autocannon (50 connections) from a separate process.
 *
 *   npm run bench:invoices            (BENCH_SECONDS=10 by default)
 *
 * Then an open-loop run (bench/open-loop-client.ts): POST /v1/invoices at a fixed rate
 * (BENCH_RATE, 200/s by default; 0 skips it) for BENCH_SECONDS, latency measured from each
 * request's due time.
 *
 * Before the runs, 100 invoices are created one at a time and the PostgreSQL statements / round
 * trips and Redis commands per invoice printed (bench/round-trips.ts): figures that do not depend on
 * the machine's load. BENCH_WIRE=1 also counts them during the Kassa run.
 *
 * BENCH_TRACE=1 explains open-loop tail latency: the server process's GC pauses (over 10 ms) and
 * event-loop delay during the open loop, the requests over 50 ms grouped by 100 ms window of their
 * due time (the 12 worst windows), and when autovacuum/autoanalyze last ran on the bench database's
 * tables, all in seconds from the open loop's start.
 *
 * Last line: invoices_rps=<n> baseline_rps=<n> ratio=<r> p99_ms=<n> errors=<n> open_rate=<n> open_p99_ms=<n> open_errors=<n>
 * (ratio: the saturation ratio, Kassa's closed-loop req/s over the bare INSERT endpoint's.)
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Hono } from 'hono';
import { serve } from '@hono/node-server';
import type { AddressInfo } from 'node:net';
import { BIP32Factory } from 'bip32';
import * as ecc from '@bitcoinerlab/secp256k1';
import * as bitcoin from 'bitcoinjs-lib';
import postgres from 'postgres';
import { loadConfig } from '../src/config.ts';
import { createSql } from '../src/db/client.ts';
import { createDeps } from '../src/deps.ts';
import { createLogger } from '../src/logger.ts';
import { startApiServer } from '../src/server.ts';
import { SCOPES } from '../src/merchants/scopes.ts';
import { parseBitcoinKeySource } from '../src/chains/bitcoin/descriptor.ts';
import { setBitcoinKeySource, refillAddressPools } from '../src/chains/bitcoin/address-pool.ts';
import { setEvmPaymentMethod } from '../src/chains/evm/payment-method.ts';
import { randomBase62 } from '../src/ids.ts';
import { countWire } from './round-trips.ts';

const SECONDS = Number(process.env.BENCH_SECONDS ?? 10);
const RATE = Number(process.env.BENCH_RATE ?? 200);
const CONNECTIONS = 50;
const PG = process.env.BENCH_PG ?? 'postgres://postgres@127.0.0.1:5432';
const here = path.dirname(fileURLToPath(import.meta.url));

function load(url: string, bearer?: string): Promise<{ rps: number; total: number; p99_ms: number; non2xx: number; errors: number; timeouts: number }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--import', 'tsx', path.join(here, 'load-client.ts'), url, String(SECONDS), String(CONNECTIONS), ...(bearer ? [bearer] : [])], { stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    child.stdout.on('data', (d) => (out += d));
    child.on('exit', (code) => (code === 0 ? resolve(JSON.parse(out.trim().split('\n').pop()!)) : reject(new Error(`load client exited ${code}`))));
  });
}

function openLoop(url: string, bearer: string): Promise<{ rate: number; completed: number; achieved_rps: number; p50_ms: number; p99_ms: number; max_ms: number; non2xx: number; errors: number; generator_max_lag_ms: number }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--import', 'tsx', path.join(here, 'open-loop-client.ts'), url, String(SECONDS), String(RATE), bearer], { stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    child.stdout.on('data', (d) => (out += d));
    child.on('exit', (code) => (code === 0 ? resolve(JSON.parse(out.trim().split('\n').pop()!)) : reject(new Error(`open-loop client exited ${code}`))));
  });
}

const dbName = `kassa_bench_${randomBase62(8).toLowerCase()}`;
const admin = postgres(`${PG}/postgres`, { max: 1, onnotice: () => {} });
await admin.unsafe(`create database ${dbName}`);
const dir = mkdtempSync(path.join(tmpdir(), 'kassa-bench-'));
const chainsFile = path.join(dir, 'chains.json');
writeFileSync(chainsFile, JSON.stringify({
  chains: {
    bitcoin: { type: 'bitcoin', network: 'regtest', rpc: { url: 'http://127.0.0.1:1' } },
    ethereum: {
      type: 'evm', network: 'local', chain_id: 31337, rpc_url: 'http://127.0.0.1:1',
      factory: '0x9fE46736679d2D9a65F0992F2272dE9f3c7fa6e0', implementation: '0xCf7Ed3AccA5a467e9e704C703E8D87F634fB0Fc9',
      tokens: [{ symbol: 'USDC', address: '0x5FbDB2315678afecb367f032d93F642f64180aa3', decimals: 6 }],
    },
  },
  rates: { providers: ['fixed'], fixed: { 'BTC-USD': '60000.00', 'USDC-USD': '1' } },
}));
const config = loadConfig({
  DATABASE_URL: `${PG}/${dbName}`, KASSA_CONFIG: chainsFile, KASSA_SECRET_KEY: '22'.repeat(32), PORT: '0', LOG_LEVEL: 'silent',
  RATE_LIMIT_PER_SECOND: '1000000', KASSA_QUEUE_PREFIX: `{kassa-bench-${randomBase62(6)}}`, DB_POOL_SIZE: '10',
});

const api = await startApiServer(config, { deps: createDeps(config, { logger: createLogger({ level: 'silent' }) }) });
const deps = api.deps;
const merchant = await deps.merchants.create(deps.sql, { name: 'Bench shop' });
const { secret } = await deps.apiKeys.create(deps.sql, { merchantId: merchant.id, scopes: [...SCOPES] });
const account = BIP32Factory(ecc).fromSeed(Buffer.alloc(32, 3), bitcoin.networks.testnet).derivePath("m/84'/1'/0'").neutered();
await deps.sql.begin((tx) => setBitcoinKeySource(tx, merchant.id, 'bitcoin', parseBitcoinKeySource({ xpub: account.toBase58() }, 'regtest')));
await setEvmPaymentMethod(deps.sql, merchant.id, 'ethereum', { treasury: '0x70997970C51812dc3A010C7d01b50e0d17dc79C8', assets: ['USDC'] });
// Derive addresses ahead of time, as the refill job does in production.
const poolSize = Number(process.env.BENCH_POOL ?? 40_000);
const t0 = performance.now();
await refillAddressPools(deps.sql, { minFree: poolSize, batch: poolSize });
console.log(`address pool: ${poolSize} addresses derived in ${((performance.now() - t0) / 1000).toFixed(1)} s`);

// Baseline: a bare Hono endpoint doing one INSERT with the same driver and pool size.
const bareSql = createSql(config.databaseUrl, { max: 10 });
await bareSql`create table bench_bare (id text primary key, body jsonb not null, created_at timestamptz not null default now())`;
const bare = new Hono();
bare.post('/bare', async (c) => {
  const body = await c.req.json();
  const id = `inv_${randomBase62(22)}`;
  await bareSql`insert into bench_bare (id, body) values (${id}, ${bareSql.json(body)})`;
  return c.json({ id }, 201);
});
const bareServer = serve({ fetch: bare.fetch, port: 0, hostname: '127.0.0.1' });
await new Promise((r) => bareServer.once('listening', r));
const barePort = (bareServer.address() as AddressInfo).port;

console.log(`machine: ${(await import('node:os')).cpus().length} cores, node ${process.version}; ${SECONDS}s per run, ${CONNECTIONS} connections`);
// CPU time of this process (both servers live here; the load client and the databases do not) per
// request: less sensitive than req/s to other work sharing the machine.
const cpuMs = (since: NodeJS.CpuUsage) => { const u = process.cpuUsage(since); return (u.user + u.system) / 1000; };
// The same for the Postgres backends serving this database (Linux /proc; Postgres on this machine).
async function dbCpuMs(): Promise<number> {
  const pids = await admin<{ pid: number }[]>`select pid from pg_stat_activity where datname = ${dbName}`;
  let ticks = 0;
  for (const { pid } of pids) {
    try {
      const f = readFileSync(`/proc/${pid}/stat`, 'utf8');
      const fields = f.slice(f.lastIndexOf(')') + 2).split(' ');
      ticks += Number(fields[11]) + Number(fields[12]); // utime, stime
    } catch { /* gone, or not on this machine */ }
  }
  return ticks * 10; // USER_HZ = 100
}
// Statements and round trips per invoice, one request at a time (load-independent): what the
// PostgreSQL and Redis sockets of this process carry while 100 invoices are created in a row.
{
  const post = () => fetch(`${api.url}/v1/invoices`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${secret}`, 'idempotency-key': randomBase62(20) },
    body: JSON.stringify({ amount: '25.00', currency: 'USD', order_id: randomBase62(12), payment_methods: ['BTC', 'USDC-ethereum'] }),
  }).then(async (r) => { if (r.status !== 201) throw new Error(`POST /v1/invoices answered ${r.status}: ${await r.text()}`); });
  for (let i = 0; i < 20; i++) await post(); // warm-up: connections open, statements prepared
  const N = 100;
  const wire = countWire(Number(new URL(config.databaseUrl).port || 5432), Number(new URL(config.redisUrl).port || 6379));
  for (let i = 0; i < N; i++) await post();
  const w = wire.stop();
  const per = (x: number) => (x / N).toFixed(2);
  console.log(`per invoice, sequential (${N} requests): postgres statements=${per(w.pgStatements)} round_trips=${per(w.pgRoundTrips)}; redis commands=${per(w.redisCommands)}`);
}

let cpu0 = process.cpuUsage();
let db0 = await dbCpuMs();
const baseline = await load(`http://127.0.0.1:${barePort}/bare`);
const baselineCpu = cpuMs(cpu0) / baseline.total;
const baselineDb = (await dbCpuMs() - db0) / baseline.total;
console.log(`baseline: ${JSON.stringify(baseline)}`);
// BENCH_PROFILE=file.cpuprofile records a CPU profile of this process during the Kassa run only.
const profile = process.env.BENCH_PROFILE;
let session: import('node:inspector').Session | undefined;
if (profile) {
  const inspector = await import('node:inspector');
  session = new inspector.Session();
  session.connect();
  await new Promise((r) => session!.post('Profiler.enable', () => session!.post('Profiler.start', r)));
}
cpu0 = process.cpuUsage();
db0 = await dbCpuMs();
// BENCH_WIRE=1 also counts the socket writes of the Kassa run (costs a little CPU while measured).
const kassaWire = process.env.BENCH_WIRE === '1' ? countWire(Number(new URL(config.databaseUrl).port || 5432), Number(new URL(config.redisUrl).port || 6379)) : null;
const kassa = await load(`${api.url}/v1/invoices`, secret);
const kw = kassaWire?.stop();
const kassaCpu = cpuMs(cpu0) / kassa.total;
const kassaDb = (await dbCpuMs() - db0) / kassa.total;
if (session && profile) {
  await new Promise<void>((resolve) => session!.post('Profiler.stop', (_err, res) => {
    writeFileSync(profile, JSON.stringify((res as { profile: unknown }).profile));
    resolve();
  }));
}
console.log(`kassa:    ${JSON.stringify(kassa)}`);
if (kw) {
  const per = (x: number) => (x / kassa.total).toFixed(2);
  console.log(`per invoice, under load (socket writes coalesce): postgres statements=${per(kw.pgStatements)} round_trips=${per(kw.pgRoundTrips)} writes=${per(kw.pgWrites)}; redis commands=${per(kw.redisCommands)} writes=${per(kw.redisWrites)}`);
}
// BENCH_TRACE=1: during the open loop, record this process's GC pauses and event-loop delay and the
// client's per-request latencies, and print the slow windows next to them (and autovacuum times).
const traceFile = process.env.BENCH_TRACE === '1' ? path.join(dir, 'open-loop-trace.json') : undefined;
const gcs: { at: number; ms: number; kind: number }[] = [];
let gcObserver: import('node:perf_hooks').PerformanceObserver | undefined;
let eld: import('node:perf_hooks').IntervalHistogram | undefined;
if (traceFile) {
  const ph = await import('node:perf_hooks');
  process.env.OPEN_LOOP_TRACE = traceFile;
  gcObserver = new ph.PerformanceObserver((list) => {
    for (const e of list.getEntries()) gcs.push({ at: performance.timeOrigin + e.startTime, ms: e.duration, kind: (e as unknown as { detail: { kind: number } }).detail.kind });
  });
  gcObserver.observe({ entryTypes: ['gc'] });
  eld = ph.monitorEventLoopDelay({ resolution: 5 });
  eld.enable();
}
const openStart = Date.now();
const open = RATE > 0 ? await openLoop(`${api.url}/v1/invoices`, secret) : null;
if (open) console.log(`open loop at ${RATE}/s: ${JSON.stringify(open)}`);
if (traceFile && open) {
  gcObserver!.disconnect();
  eld!.disable();
  const rel = (t: number) => ((t - openStart) / 1000).toFixed(3);
  console.log(`trace: event-loop delay p50=${(eld!.percentile(50) / 1e6).toFixed(1)} p99=${(eld!.percentile(99) / 1e6).toFixed(1)} max=${(eld!.max / 1e6).toFixed(1)} ms`);
  const gcTotal = gcs.reduce((a, g) => a + g.ms, 0);
  console.log(`trace: ${gcs.length} GC pauses, ${gcTotal.toFixed(0)} ms in all; over 10 ms: ${gcs.filter((g) => g.ms > 10).map((g) => `${rel(g.at)}s ${g.ms.toFixed(0)}ms kind=${g.kind}`).join(', ') || 'none'}`);
  const reqs = JSON.parse(readFileSync(traceFile, 'utf8')) as [number, number][];
  reqs.sort((a, b) => a[0] - b[0]);
  const slow = reqs.filter(([, ms]) => ms > 50);
  const windows = Object.entries(slow.reduce<Record<string, [number, number]>>((acc, [due, ms]) => {
    const k = rel(Math.floor(due / 100) * 100);
    const v = acc[k] ?? [0, 0];
    acc[k] = [v[0] + 1, Math.max(v[1], ms)];
    return acc;
  }, {}));
  const worst = windows.sort((a, b) => b[1][1] - a[1][1]).slice(0, 12).sort((a, b) => Number(a[0]) - Number(b[0]));
  console.log(`trace: ${slow.length} requests over 50 ms in ${windows.length} windows of 100 ms; worst windows (s from start: requests over 50 ms, worst ms): ` +
    worst.map(([k, [n, w]]) => `${k}: ${n}, ${w.toFixed(0)}`).join('; '));
  const av = await deps.sql<{ relname: string; last_autovacuum: Date | null; last_autoanalyze: Date | null }[]>`
    select relname, last_autovacuum, last_autoanalyze from pg_stat_user_tables where last_autovacuum is not null or last_autoanalyze is not null order by relname`;
  console.log(`trace: autovacuum/analyze (s from open-loop start): ${av.map((r) => `${r.relname} v=${r.last_autovacuum ? rel(r.last_autovacuum.getTime()) : '-'} a=${r.last_autoanalyze ? rel(r.last_autoanalyze.getTime()) : '-'}`).join('; ')}`);
}
const [{ n }] = (await deps.sql<{ n: number }[]>`select count(*)::int as n from invoices`) as unknown as [{ n: number }];
const [{ e }] = (await deps.sql<{ e: number }[]>`select count(*)::int as e from events where type = 'invoice.created'`) as unknown as [{ e: number }];
console.log(`invoices written: ${n}, invoice.created events: ${e}`);
console.log(`cpu per request: server baseline_ms=${baselineCpu.toFixed(2)} kassa_ms=${kassaCpu.toFixed(2)}${profile ? ' (kassa profiled)' : ''}; postgres baseline_ms=${baselineDb.toFixed(2)} kassa_ms=${kassaDb.toFixed(2)}`);

await new Promise<void>((r) => bareServer.close(() => r()));
await bareSql.end();
await api.close();
await deps.close();
await admin.unsafe(`drop database ${dbName} with (force)`);
await admin.end();
const errors = kassa.non2xx + kassa.errors + kassa.timeouts;
console.log(
  `invoices_rps=${Math.round(kassa.rps)} baseline_rps=${Math.round(baseline.rps)} ratio=${(kassa.rps / baseline.rps).toFixed(2)} p99_ms=${kassa.p99_ms} errors=${errors}` +
    (open ? ` open_rate=${RATE} open_p99_ms=${open.p99_ms} open_errors=${open.non2xx + open.errors}` : ''),
);
process.exit(0);
