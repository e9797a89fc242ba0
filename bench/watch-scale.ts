/**
 * The chain-sync engine at scale (docs/architecture.md §5; issue "One chain-sync engine"):
 * N open invoices seeded by bulk insert (each with a Bitcoin and an EVM deposit address), then real
 * passes of the engine (`createChainSync` on the Bitcoin and the EVM adapter) against the local
 * nodes: the Bitcoin devnet with a mainnet-size mempool (150,000 transactions, 10 new per second:
 * `devnet_backgroundmempool`) and a hardhat node with Kassa's contracts and two test tokens.
 *
 *   npm run bench:watch-scale                                  N = 10,000 and 100,000
 *   BENCH_OPEN=1000000 npm run bench:watch-scale               one size
 *
 * Per (N, chain), after a first pass (the full load of the watched set), on Bitcoin the passes
 * that drain the mempool found at start (at most 5,000 transactions fetched per pass), and
 * BENCH_WARMUP_PASSES (5) more passes, not measured (JIT warm-up, the collection that follows the
 * full load; all of these are printed as warmup_passes):
 * BENCH_PASSES (60) steady-state passes, one every BENCH_INTERVAL_MS (1,000 ms, the default poll
 * interval). Before each pass BENCH_NEW_PER_PASS (10) new invoices are committed; on EVM a block
 * with BENCH_EVM_TXS (20) transfers is mined before every pass, on Bitcoin a block every
 * BENCH_BTC_BLOCK_EVERY (10) passes. Printed:
 *
 *   open=<N> chain=<c> pass_p50_ms pass_p99_ms rpc_ms new_invoice_visible_ms heap_mb
 *     pass = the pass's wall time minus the time a node request was in flight (Kassa's own work,
 *            PostgreSQL included); rpc_ms = p50 per pass of that node time (bench/rpc-meter.ts);
 *     new_invoice_visible_ms = p99, commit of a new invoice → its address handed to the adapter
 *            (the pass right after the commit; a running watcher adds up to its poll interval);
 *     heap_mb = V8 heap + array buffers after a full GC, engine alive (whole bench process).
 *   a detail line: wall and RPC p99, the process's CPU time per pass (cpu_*: user + system of the
 *   whole process, its helper threads included, reading the node's responses included; less
 *   sensitive to a loaded machine than wall time), HTTP round trips per pass (and per block), Kassa's own time per
 *   phase of the pass (p50/p99), the balance check's node time on EVM, the load average; then
 *   this process's garbage-collection pauses inside a pass (p50/p99) and the three slowest passes
 *   with their phases, to tell a slow step from a collection.
 *   Each chain family runs in its own process (its own database and node), so heap_mb is one engine's
 *   process; BENCH_CHAINS=bitcoin or =evm runs one.
 *   BENCH_CPU_PROFILE=<dir> writes a CPU profile of the steady-state passes per (N, chain).
 *   on Bitcoin, first: open=<N> mode=full_reload … what every pass cost before the incremental
 *   watched set (load every open address, rebuild the script set). BENCH_FULL_RELOAD=0 skips it.
 */
import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdirSync, writeFileSync } from 'node:fs';
import { Session } from 'node:inspector/promises';
import os from 'node:os';
import { PerformanceObserver } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import postgres from 'postgres';
import { encodeFunctionData, erc20Abi, type Address, type Hex } from 'viem';
import { createSql, type Sql } from '../src/db/client.ts';
import { migrate } from '../src/db/migrate.ts';
import { parseChainsFile, type BitcoinChainConfig, type EvmChainConfig } from '../src/config.ts';
import { createLogger, type Logger } from '../src/logger.ts';
import { createAssetRegistry } from '../src/money/assets.ts';
import { createSettlementService, type SettlementService } from '../src/settlement/service.ts';
import { createBitcoinRpcClient } from '../src/chains/bitcoin/rpc.ts';
import { createBitcoinAdapter } from '../src/chains/bitcoin/adapter.ts';
import { WatchedScripts } from '../src/chains/bitcoin/watched.ts';
import { createEvmClient } from '../src/chains/evm/client.ts';
import { createEvmAdapter } from '../src/chains/evm/adapter.ts';
import { createChainSync } from '../src/chains/sync/engine.ts';
import type { ChainAdapter } from '../src/chains/sync/adapter.ts';
import type { WatchedSetDelta } from '../src/chains/watched-set.ts';
import { randomBase62 } from '../src/ids.ts';
import { startDevnetProcess, type DevnetProcess } from '../test/support/devnet.ts';
import { evmChainsConfig, EVM_CHAIN } from '../test/support/evm.ts';
import { setupContractsFixture, type ContractsFixture } from '../test/contracts/fixture.ts';
import { createRpcMeter, type RpcMeter } from './rpc-meter.ts';

const PG = process.env.BENCH_PG ?? 'postgres://postgres@127.0.0.1:5432';
const SIZES = (process.env.BENCH_OPEN ?? '10000,100000').split(',').map(Number);
const CHAINS = (process.env.BENCH_CHAINS ?? 'bitcoin,evm').split(',') as ('bitcoin' | 'evm')[];
const PASSES = Number(process.env.BENCH_PASSES ?? 60);
const WARMUP = Number(process.env.BENCH_WARMUP_PASSES ?? 5);
const INTERVAL_MS = Number(process.env.BENCH_INTERVAL_MS ?? 1000);
const NEW_PER_PASS = Number(process.env.BENCH_NEW_PER_PASS ?? 10);
const MEMPOOL = Number(process.env.BENCH_MEMPOOL ?? 150_000);
const MEMPOOL_RATE = Number(process.env.BENCH_MEMPOOL_RATE ?? 10);
const BTC_BLOCK_EVERY = Number(process.env.BENCH_BTC_BLOCK_EVERY ?? 10);
const EVM_TXS = Number(process.env.BENCH_EVM_TXS ?? 20);
const FULL_RELOAD = process.env.BENCH_FULL_RELOAD !== '0';
const BTC_CHAIN = 'bitcoin';
/** A directory: a CPU profile of the steady-state passes of each (N, chain) is written there. */
const PROFILE_DIR = process.env.BENCH_CPU_PROFILE;

const pct = (xs: number[], p: number): number => {
  if (xs.length === 0) return NaN;
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.ceil((p / 100) * s.length) - 1)]!;
};
const f1 = (x: number) => x.toFixed(1);
const memMb = () => {
  globalThis.gc?.();
  globalThis.gc?.();
  const m = process.memoryUsage();
  return { heap: Math.round((m.heapUsed + m.arrayBuffers) / 1e6), rss: Math.round(m.rss / 1e6) };
};
const load = () => os.loadavg().map((x) => x.toFixed(2)).join(' ');
const now = () => performance.now();
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const say = (s: string) => console.error(`[${new Date().toISOString().slice(11, 19)}] ${s}`);

// One process per chain family: heap_mb is the whole process, and a second engine in the same
// process would carry the first one's watched set (postgres.js caches the stack trace of a query
// template's first call, with the closures on it, for the life of the process).
if (CHAINS.length > 1) {
  for (const chain of CHAINS) {
    const child = spawnSync(process.execPath, [...process.execArgv, fileURLToPath(import.meta.url)], { stdio: 'inherit', env: { ...process.env, BENCH_CHAINS: chain } });
    if (child.status !== 0) process.exit(child.status ?? 1);
  }
  process.exit(0);
}

if (!globalThis.gc) say('warning: run with node --expose-gc (npm run bench:watch-scale does) for heap figures after a full GC');

/**
 * Per-phase timing of a pass: each adapter call's wall time and the node time inside it; `refresh`
 * is the gap before `watch` (the watched-set refresh in PostgreSQL); `settle` the settlement
 * service's calls (`timedSettlement`); `other` the rest.
 */
class Phases {
  own = new Map<string, number>();
  private lastReturn = 0;
  constructor(private readonly meter: RpcMeter) {}
  reset(): void {
    this.own = new Map();
    this.lastReturn = now();
  }
  add(name: string, ms: number): void {
    this.own.set(name, (this.own.get(name) ?? 0) + ms);
  }
  mark(): void {
    this.lastReturn = now();
  }
  since(): number {
    return now() - this.lastReturn;
  }
  wrap<A extends unknown[], R>(name: string, fn: (...a: A) => Promise<R>): (...a: A) => Promise<R> {
    return async (...a: A) => {
      const t = now();
      const r0 = this.meter.snapshot().busyMs;
      try {
        return await fn(...a);
      } finally {
        this.add(name, now() - t - (this.meter.snapshot().busyMs - r0));
        this.mark();
      }
    };
  }
}

/** The adapter with its calls timed, and `onWatch` told of every change handed to it. */
function instrument(inner: ChainAdapter, phases: Phases, onWatch: (d: WatchedSetDelta) => void): ChainAdapter {
  const a = Object.create(inner) as ChainAdapter & Record<string, unknown>;
  a.head = phases.wrap('head', inner.head.bind(inner));
  a.scanRange = phases.wrap('blocks', inner.scanRange.bind(inner));
  if (inner.prepare) a.prepare = phases.wrap('prepare', inner.prepare.bind(inner));
  if (inner.finalizedHeight) a.finalizedHeight = phases.wrap('finalized', inner.finalizedHeight.bind(inner));
  if (inner.mempool) {
    a.mempool = { list: phases.wrap('mempool_list', inner.mempool.list), scan: phases.wrap('mempool_scan', inner.mempool.scan) };
  }
  a.watch = (d, size) => {
    phases.add('refresh', phases.since());
    const t = now();
    inner.watch(d, size);
    onWatch(d);
    phases.add('watch', now() - t);
    phases.mark();
  };
  return a;
}

/**
 * The settlement service with each call timed as the phase `settle` (the engine's reads of the
 * cursor and pending payments, and the commits of blocks and mempool changes: PostgreSQL and the
 * events published to Redis). The BEGIN/COMMIT round trips around a commit stay in `other`.
 */
function timedSettlement(inner: SettlementService, phases: Phases): SettlementService {
  return new Proxy(inner, {
    get(target, key, receiver) {
      const v = Reflect.get(target, key, receiver) as unknown;
      return typeof v === 'function' ? phases.wrap('settle', (...a: unknown[]) => Promise.resolve((v as (...x: unknown[]) => unknown).apply(target, a))) : v;
    },
  });
}

const dbName = `kassa_bench_${randomBase62(8).toLowerCase()}`;
const admin = postgres(`${PG}/postgres`, { max: 1, onnotice: () => {} });
await admin.unsafe(`create database ${dbName}`);
const sql: Sql = createSql(`${PG}/${dbName}`, { max: 4 });
const logger: Logger = createLogger({ level: (process.env.BENCH_LOG_LEVEL as 'warn' | undefined) ?? 'warn' });
let devnet: DevnetProcess | null = null;
let evm: ContractsFixture | null = null;

try {
  say(`load average ${load()} (1, 5, 15 min); ${os.cpus().length} cores`);
  await migrate(sql);
  const [m] = await sql<{ id: string }[]>`insert into merchants (id, name) values ('mer_bench', 'Bench') returning id`;
  const merchantId = m!.id;

  // The nodes.
  const needBtc = CHAINS.includes('bitcoin');
  const needEvm = CHAINS.includes('evm');
  if (needBtc) {
    devnet = await startDevnetProcess({ args: ['--premine', '1'] });
    const t = now();
    // Building 150,000 transactions takes the devnet seconds (more on a loaded machine): its own timeout.
    const setup = createBitcoinRpcClient({ url: devnet.rpcUrl, user: 'kassa', password: 'kassa', name: 'devnet', retries: 0, timeoutMs: 120_000 });
    await setup.call('devnet_backgroundmempool', [MEMPOOL, MEMPOOL_RATE]);
    say(`bitcoin devnet: mempool of ${MEMPOOL} transactions (+${MEMPOOL_RATE}/s) in ${Math.round(now() - t)} ms`);
  }
  if (needEvm) {
    evm = await setupContractsFixture();
    await evmRpc('evm_setAutomine', [false]); // blocks are mined by the bench, one before each pass
    say(`hardhat node with the forwarder factory and two tokens at ${evm.node.url}`);
  }
  const btcCfg = needBtc
    ? (parseChainsFile({ chains: { [BTC_CHAIN]: { type: 'bitcoin', network: 'regtest', rpc: { url: devnet!.rpcUrl, user: 'kassa', password: 'kassa' }, poll_interval_ms: INTERVAL_MS, reorg_window: 20 } } })
        .chains[BTC_CHAIN] as BitcoinChainConfig)
    : null;
  const evmCfg = needEvm
    ? (evmChainsConfig(evm!.node.url, { factory: evm!.contracts.factory, implementation: evm!.contracts.implementation, usdc: evm!.contracts.testUsdc, usdt: evm!.contracts.testUsdt }, { poll_interval_ms: INTERVAL_MS })[EVM_CHAIN] as EvmChainConfig)
    : null;
  const chains = { ...(btcCfg ? { [BTC_CHAIN]: btcCfg } : {}), ...(evmCfg ? { [EVM_CHAIN]: evmCfg } : {}) };
  const settlement: SettlementService = createSettlementService({ chains, assets: createAssetRegistry(chains), logger, queuePrefix: 'bench', publicUrl: 'http://kassa.bench' });

  let seq = 0;
  /** Inserts invoices from..to-1 (each with a Bitcoin and an EVM deposit address) in bulk; returns the addresses when asked. */
  async function seed(n: number, returning = false): Promise<{ bitcoin: string[]; evm: string[] }> {
    const from = seq;
    seq += n;
    const out = { bitcoin: [] as string[], evm: [] as string[] };
    for (let lo = from; lo < seq; lo += 250_000) {
      const hi = Math.min(seq, lo + 250_000) - 1;
      await sql.begin(async (tx) => {
        await tx`
          insert into invoices (id, merchant_id, amount, currency, currency_decimals, speed_policy, tolerance_bps, expires_at, monitoring_until)
          select 'inv_w' || g, ${merchantId}, 100, 'USD', 2, 'medium', 0, now() + interval '15 minutes', now() + interval '1 day'
          from generate_series(${lo}::bigint, ${hi}::bigint) g`;
        const rows = await tx<{ chain: string; address: string }[]>`
          insert into deposit_addresses (chain, address, invoice_id, merchant_id, script)
          select ${BTC_CHAIN}, 'bcrt1qbench' || g, 'inv_w' || g, ${merchantId}, '\\x0014'::bytea || substring(sha256(g::text::bytea) from 1 for 20)
          from generate_series(${lo}::bigint, ${hi}::bigint) g
          union all
          select ${EVM_CHAIN}, '0x' || encode(substring(sha256(('evm' || g)::bytea) from 1 for 20), 'hex'), 'inv_w' || g, ${merchantId}, null
          from generate_series(${lo}::bigint, ${hi}::bigint) g
          ${returning ? tx`returning chain, address` : tx``}`;
        if (returning) for (const r of rows) (r.chain === BTC_CHAIN ? out.bitcoin : out.evm).push(r.address);
      });
    }
    return out;
  }

  /** Bitcoin before the incremental watched set: every pass reloaded all open addresses and rebuilt the script set. */
  async function fullReload(n: number): Promise<void> {
    const full: number[] = [];
    const passes = Math.max(3, Math.min(10, Math.ceil(2_000_000 / n)));
    let heap = 0;
    for (let i = 0; i < passes; i++) {
      const t = now();
      const rows = await sql<{ address: string; script: Buffer | null; invoice_id: string }[]>`
        select d.address, d.script, d.invoice_id from deposit_addresses d join invoices i on i.id = d.invoice_id
        where d.chain = ${BTC_CHAIN} and i.monitoring_until > now()`;
      const scripts = new WatchedScripts(rows.length);
      for (const r of rows) scripts.add(new Uint8Array(r.script!));
      full.push(now() - t);
      if (i === 0) heap = memMb().heap;
    }
    console.log(`open=${n} chain=${BTC_CHAIN} mode=full_reload pass_p50_ms=${f1(pct(full, 50))} pass_p99_ms=${f1(pct(full, 99))} heap_mb=${heap} (load ${load()})`);
  }

  async function evmRpc(method: string, params: unknown[] = []): Promise<unknown> {
    const res = await fetch(evm!.node.url, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ jsonrpc: '2.0', id: 1, method, params }) });
    const body = (await res.json()) as { result?: unknown; error?: { message: string } };
    if (body.error) throw new Error(`${method}: ${body.error.message}`);
    return body.result;
  }
  /** One EVM block with `EVM_TXS` transfers (every tenth an ERC-20 transfer), mined on demand. */
  async function evmBlock(): Promise<void> {
    const from = evm!.node.accounts[0]!.address;
    for (let i = 0; i < EVM_TXS; i++) {
      const to = `0x${randomBytes(20).toString('hex')}` as Address;
      const tx = i % 10 === 9
        ? { from, to: evm!.contracts.testUsdc, data: encodeFunctionData({ abi: erc20Abi, functionName: 'transfer', args: [to, 1n] }) as Hex }
        : { from, to, value: '0x1' };
      await evmRpc('eth_sendTransaction', [tx]);
    }
    await evmRpc('evm_mine');
  }

  /** Passes of one engine at N open invoices. */
  async function measure(chain: 'bitcoin' | 'evm', n: number): Promise<void> {
    const loadBefore = load();
    const base = memMb();
    const meter = createRpcMeter();
    const phases = new Phases(meter);
    let inner: ChainAdapter & { mempoolState?: { scanned: number; backlog: number } };
    let tip: number;
    if (chain === 'bitcoin') {
      const client = createBitcoinRpcClient({ url: devnet!.rpcUrl, user: 'kassa', password: 'kassa', name: 'devnet', retries: 0, timeoutMs: 60_000, fetch: meter.fetch(fetch) });
      inner = createBitcoinAdapter({ chain: BTC_CHAIN, config: btcCfg!, client, logger });
      tip = await devnet!.rpc.getBlockCount();
    } else {
      const client = createEvmClient(evmCfg!, { retryCount: 0, timeoutMs: 60_000, fetchFn: meter.fetch(fetch) });
      inner = createEvmAdapter({ chain: EVM_CHAIN, config: evmCfg!, client, sql, logger });
      tip = Number(await evmRpc('eth_blockNumber'));
    }
    let waiting: { addresses: Set<string>; committedAt: number; seenAt: number | null } | null = null;
    const adapter = instrument(inner, phases, (d) => {
      if (!waiting) return;
      for (const r of d.added) waiting.addresses.delete(r.address);
      if (d.full) waiting.addresses.clear();
      if (waiting.addresses.size === 0 && waiting.seenAt === null) waiting.seenAt = now();
    });
    const sync = createChainSync(adapter, { sql, settlement: timedSettlement(settlement, phases), logger, queuePrefix: 'bench', startHeight: tip + 1 });

    // First pass: the full load of the watched set (and, on Bitcoin, the first 5,000 mempool transactions).
    let t = now();
    await sync.runOnce();
    const initialMs = now() - t;
    // Bitcoin: drain the mempool found at start (at most 5,000 fetched per pass, arrivals first).
    t = now();
    let warmup = 0;
    while (inner.mempoolState && inner.mempoolState.backlog > 0) {
      await sync.runOnce();
      warmup++;
    }
    // Then a few passes more (JIT warm-up, the collection that follows the full load): steady state.
    for (let i = 0; i < WARMUP; i++, warmup++) {
      if (chain === 'evm') await evmBlock();
      await sync.runOnce();
      await sleep(INTERVAL_MS);
    }
    const warmupMs = now() - t;
    say(`${chain} ${n}: first pass ${Math.round(initialMs)} ms; ${warmup} passes (${Math.round(warmupMs)} ms) to drain the mempool found at start and warm up`);

    // Garbage-collection pauses of this process inside each pass (performance timeline entries).
    const gcPauses: { start: number; ms: number }[] = [];
    const gcObserver = new PerformanceObserver((list) => {
      for (const e of list.getEntries()) gcPauses.push({ start: e.startTime, ms: e.duration });
    });
    gcObserver.observe({ entryTypes: ['gc'] });
    const gcIn: number[] = [];
    const passDetail: { i: number; own: number; gc: number; phases: Map<string, number> }[] = [];
    const own: number[] = [], cpu: number[] = [], rpc: number[] = [], wall: number[] = [], visible: number[] = [], http: number[] = [], blockHttp: number[] = [];
    const phaseOwn = new Map<string, number[]>();
    const balanceBefore = [...meter.kinds].filter(([k]) => k.startsWith('eth_call')).reduce((a, [, v]) => a + v.ms, 0);
    let blocks = 0;
    let mempoolScanned = 0;
    const profiler = PROFILE_DIR ? new Session() : null;
    if (profiler) {
      profiler.connect();
      await profiler.post('Profiler.enable');
      await profiler.post('Profiler.start');
    }
    for (let i = 0; i < PASSES; i++) {
      const start = now();
      if (chain === 'evm') await evmBlock();
      else if ((i + 1) % BTC_BLOCK_EVERY === 0) await devnet!.wallet.mine(1);
      const fresh = await seed(NEW_PER_PASS, true);
      waiting = { addresses: new Set(fresh[chain]), committedAt: now(), seenAt: null };
      const m0 = meter.snapshot();
      phases.reset();
      t = now();
      const c0 = process.cpuUsage();
      const r = await sync.runOnce();
      const w = now() - t;
      const c1 = process.cpuUsage(c0);
      cpu.push((c1.user + c1.system) / 1000);
      const m1 = meter.snapshot();
      if (waiting.seenAt === null) throw new Error(`${chain} pass ${i}: ${waiting.addresses.size} new deposit addresses were not handed to the adapter`);
      const rpcMs = m1.busyMs - m0.busyMs;
      wall.push(w);
      rpc.push(rpcMs);
      own.push(w - rpcMs);
      visible.push(waiting.seenAt - waiting.committedAt);
      http.push(m1.requests - m0.requests);
      if (r.blocks > 0) blockHttp.push((m1.requests - m0.requests) / r.blocks);
      blocks += r.blocks;
      mempoolScanned += r.mempoolScanned;
      const sum = [...phases.own.values()].reduce((a, b) => a + b, 0);
      phases.add('other', w - rpcMs - sum);
      for (const [k, v] of phases.own) phaseOwn.set(k, [...(phaseOwn.get(k) ?? []), v]);
      await new Promise<void>((resolve) => setImmediate(resolve)); // the observer's entries of this pass arrive
      const gc = gcPauses.filter((g) => g.start >= t && g.start < t + w).reduce((a, g) => a + g.ms, 0);
      gcIn.push(gc);
      passDetail.push({ i, own: w - rpcMs, gc, phases: phases.own });
      const rest = INTERVAL_MS - (now() - start);
      if (rest > 0) await sleep(rest);
    }
    if (profiler) {
      const { profile } = await profiler.post('Profiler.stop');
      const file = `${PROFILE_DIR}/watch-scale-${chain}-${n}.cpuprofile`;
      mkdirSync(PROFILE_DIR!, { recursive: true });
      writeFileSync(file, JSON.stringify(profile));
      profiler.disconnect();
      say(`CPU profile of the steady-state passes (and the bench's own work between them): ${file}`);
    }
    const mem = memMb();
    const balanceMs = [...meter.kinds].filter(([k]) => k.startsWith('eth_call')).reduce((a, [, v]) => a + v.ms, 0) - balanceBefore;
    console.log(
      `open=${n} chain=${chain} pass_p50_ms=${f1(pct(own, 50))} pass_p99_ms=${f1(pct(own, 99))} rpc_ms=${f1(pct(rpc, 50))} ` +
        `new_invoice_visible_ms=${f1(pct(visible, 99))} heap_mb=${mem.heap}`,
    );
    const phaseLine = [...phaseOwn].map(([k, v]) => `${k}=${f1(pct(v, 50))}/${f1(pct(v, 99))}`).join(' ');
    console.log(
      `  detail open=${n} chain=${chain}: passes=${PASSES} blocks=${blocks} wall_p50_ms=${f1(pct(wall, 50))} wall_p99_ms=${f1(pct(wall, 99))} rpc_p99_ms=${f1(pct(rpc, 99))} ` +
        `cpu_p50_ms=${f1(pct(cpu, 50))} cpu_p99_ms=${f1(pct(cpu, 99))} ` +
        `http_per_pass_p50=${pct(http, 50)} http_per_block=${blockHttp.length ? `${Math.min(...blockHttp)}..${Math.max(...blockHttp)}` : '-'} ` +
        `mempool_scanned=${mempoolScanned} initial_pass_ms=${Math.round(initialMs)} warmup_passes=${warmup} engine_heap_mb=${mem.heap - base.heap} rss_mb=${mem.rss} ` +
        (chain === 'evm' ? `balance_check=${Math.min(n + NEW_PER_PASS * PASSES, evmCfg!.balance_check_per_block ?? 10_000)}_addresses/block balance_check_rpc_ms_per_block=${f1(balanceMs / Math.max(1, blocks))} ` : '') +
        `visible_p50_ms=${f1(pct(visible, 50))} load=${loadBefore}→${load()}`,
    );
    console.log(`  own time per phase p50/p99 ms: ${phaseLine}`);
    gcObserver.disconnect();
    const slowest = [...passDetail].sort((a, b) => b.own - a.own).slice(0, 3);
    console.log(
      `  gc pauses inside a pass p50/p99 ms: ${f1(pct(gcIn, 50))}/${f1(pct(gcIn, 99))}; slowest passes: ` +
        slowest.map((d) => `#${d.i} own=${f1(d.own)} gc=${f1(d.gc)} (${[...d.phases].filter(([, v]) => v >= 1).map(([k, v]) => `${k}=${f1(v)}`).join(' ')})`).join('; '),
    );
    console.log(`  node requests: ${[...meter.kinds].sort((a, b) => b[1].ms - a[1].ms).slice(0, 6).map(([k, v]) => `${k.slice(0, 40)} n=${v.requests} avg=${f1(v.ms / v.requests)}ms`).join('; ')}`);
    void sync; // alive until here: the heap figure includes the engine and its watched set
  }

  let seeded = 0;
  for (const n of SIZES) {
    if (n > seeded) {
      const t = now();
      await seed(n - seeded);
      seeded = n;
      await sql`analyze invoices`;
      await sql`analyze deposit_addresses`;
      say(`seeded ${n} open invoices (${2 * n} deposit addresses) in ${Math.round(now() - t)} ms; load ${load()}`);
    }
    for (const chain of CHAINS) {
      if (chain === 'bitcoin' && FULL_RELOAD) await fullReload(seq);
      await measure(chain, n);
      seeded = seq;
    }
  }
} finally {
  await devnet?.stop().catch(() => {});
  await evm?.node.stop().catch(() => {});
  await sql.end();
  await admin.unsafe(`drop database if exists ${dbName} with (force)`);
  await admin.end();
}
