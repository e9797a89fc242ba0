/**
 * Start-up cost of the `kassa` command (issue 19 targets), as medians of several runs, each also as
 * a ratio to `node -e 0` measured in the same run:
 *
 *   help_ms              `kassa help` until exit                               target ≤ 300 ms
 *   merchants_create_ms  `kassa merchants create --name … --json` until exit   target ≤ 1000 ms
 *                        (a database command; the database exists and is migrated)
 *   serve_ready_ms       `kassa serve` until GET /health answers               target ≤ 1500 ms
 *   serve_idle_rss_mb    resident memory of that server 2 s after it answered  target ≤ 150 MB
 *
 * Also `serve_ready_cpu_ms`: the CPU time (user + system, /proc) that server had used when /health
 * first answered. It counts the work, not the waiting, so it varies far less than the wall-clock
 * figures when other processes load the machine.
 *
 * Also `help_source_ms`: `kassa help` with KASSA_FROM_SOURCE=1 (the TypeScript through tsx, what
 * runs when dist/ is stale), for comparison. Builds dist/ first when it does not match the sources.
 *
 *   npm run bench:startup [-- --runs 7]
 *
 * Uses PostgreSQL (DATABASE_URL's server, default 127.0.0.1:5432) with its own database, dropped at
 * the end, and Redis (REDIS_URL). Wall-clock times: the machine's load (printed) matters.
 */
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import postgres from 'postgres';
import { sourceHash } from '../bin/source-hash.js';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const BIN = path.join(ROOT, 'bin/kassa.js');
const runsArg = process.argv.indexOf('--runs');
const RUNS = runsArg > 0 ? Number(process.argv[runsArg + 1]) : 7;

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  const m = Math.floor(s.length / 2);
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
};

function timed(args: string[], env: NodeJS.ProcessEnv): number {
  const t = performance.now();
  const r = spawnSync(process.execPath, args, { env, cwd: ROOT, encoding: 'utf8' });
  const ms = performance.now() - t;
  if (r.status !== 0) throw new Error(`node ${args.join(' ')} exited ${r.status}: ${r.stderr}`);
  return ms;
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => resolve(port));
    });
  });
}

/** CPU time (user + system) a process has used so far, in ms. */
function cpuMs(pid: number): number {
  const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
  return ((Number(fields[11]) + Number(fields[12])) * 1000) / 100; // utime, stime in clock ticks (USER_HZ = 100 on Linux)
}

function rssMb(pid: number): number {
  const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  if (!m) throw new Error(`no VmRSS for ${pid}`);
  return Number(m[1]) / 1024;
}

async function serveOnce(env: NodeJS.ProcessEnv): Promise<{ readyMs: number; cpuMs: number; rssMb: number; status: number }> {
  const port = await freePort();
  const t = performance.now();
  const child = spawn(process.execPath, [BIN, 'serve'], { env: { ...env, PORT: String(port) }, cwd: ROOT, stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr.on('data', (d) => (stderr += d));
  try {
    let status = 0;
    for (;;) {
      if (child.exitCode !== null) throw new Error(`kassa serve exited ${child.exitCode}: ${stderr}`);
      try {
        status = (await fetch(`http://127.0.0.1:${port}/health`)).status;
        break;
      } catch {
        await new Promise((r) => setTimeout(r, 5));
      }
      if (performance.now() - t > 60_000) throw new Error('kassa serve did not answer within 60 s');
    }
    const readyMs = performance.now() - t;
    const readyCpuMs = cpuMs(child.pid!);
    await new Promise((r) => setTimeout(r, 2_000));
    return { readyMs, cpuMs: readyCpuMs, rssMb: rssMb(child.pid!), status };
  } finally {
    child.kill('SIGTERM');
    await new Promise((r) => child.once('exit', r));
  }
}

async function main(): Promise<void> {
  let built: string | null = null;
  try {
    built = JSON.parse(readFileSync(path.join(ROOT, 'dist/BUILD.json'), 'utf8')).source_hash;
  } catch {
    /* no build */
  }
  if (built !== sourceHash(ROOT)) {
    process.stderr.write('dist/ is missing or stale: building it first (npm run build)\n');
    const b = spawnSync(process.execPath, [path.join(ROOT, 'scripts/build.mjs')], { stdio: 'inherit' });
    if (b.status !== 0) throw new Error('build failed');
  }

  const base = new URL(process.env.DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/kassa');
  const dbName = `kassa_bench_startup_${process.pid}`;
  const dbUrl = new URL(base.href);
  dbUrl.pathname = `/${dbName}`;
  const dataDir = mkdtempSync(path.join(os.tmpdir(), 'kassa-bench-startup-'));
  const env: NodeJS.ProcessEnv = { ...process.env, DATABASE_URL: dbUrl.href, KASSA_DATA_DIR: dataDir, LOG_LEVEL: 'warn', KASSA_QUEUE_PREFIX: `{bench-startup-${process.pid}}` };
  delete env.KASSA_FROM_SOURCE;
  const admin = postgres({ ...pgOptions(base), database: 'postgres', max: 1, onnotice: () => {} });
  try {
    // The database exists and is migrated before anything is timed.
    timed([BIN, 'migrate'], env);
    const r = { node: [] as number[], nodeRss: [] as number[], help: [] as number[], helpSource: [] as number[], create: [] as number[], ready: [] as number[], readyCpu: [] as number[], rss: [] as number[] };
    let healthStatus = 0;
    for (let i = 0; i < RUNS; i++) {
      r.node.push(timed(['-e', '0'], env));
      r.nodeRss.push(Number(spawnSync(process.execPath, ['-e', 'process.stdout.write(String(process.memoryUsage().rss))'], { encoding: 'utf8' }).stdout) / 1024 / 1024);
      r.help.push(timed([BIN, 'help'], env));
      if (i < 3) r.helpSource.push(timed([BIN, 'help'], { ...env, KASSA_FROM_SOURCE: '1' }));
      r.create.push(timed([BIN, 'merchants', 'create', '--name', `bench ${i}`, '--json'], env));
      const s = await serveOnce(env);
      r.ready.push(s.readyMs);
      r.readyCpu.push(s.cpuMs);
      r.rss.push(s.rssMb);
      healthStatus = s.status;
    }
    const node = median(r.node);
    const nodeRss = median(r.nodeRss);
    const line = (name: string, v: number, unit: string, baseV: number, target?: number) =>
      `${name.padEnd(20)} ${v.toFixed(unit === 'MB' ? 1 : 0).padStart(7)} ${unit}   ${(v / baseV).toFixed(1).padStart(5)}× node -e 0` +
      (target === undefined ? '' : `   target ≤ ${target} ${unit}: ${v <= target ? 'met' : `NOT met (+${(v - target).toFixed(0)} ${unit})`}`);
    const out = [
      `kassa start-up, median of ${RUNS} runs (help_source_ms: 3), node ${process.version}, ${os.cpus().length} CPUs, load average ${os.loadavg().map((l) => l.toFixed(2)).join(' ')}`,
      `node_e0_ms           ${node.toFixed(0).padStart(7)} ms   (node -e 0; rss ${nodeRss.toFixed(1)} MB)`,
      line('help_ms', median(r.help), 'ms', node, 300),
      line('help_source_ms', median(r.helpSource), 'ms', node),
      line('merchants_create_ms', median(r.create), 'ms', node, 1000),
      line('serve_ready_ms', median(r.ready), 'ms', node, 1500) + `   (/health answered ${healthStatus})`,
      `serve_ready_cpu_ms   ${median(r.readyCpu).toFixed(0).padStart(7)} ms   (CPU time of kassa serve until /health answered)`,
      line('serve_idle_rss_mb', median(r.rss), 'MB', nodeRss, 150),
      `runs (ms): help ${r.help.map((x) => x.toFixed(0)).join(' ')}; merchants create ${r.create.map((x) => x.toFixed(0)).join(' ')}; serve ready ${r.ready.map((x) => x.toFixed(0)).join(' ')}`,
    ];
    process.stdout.write(out.join('\n') + '\n');
  } finally {
    await admin.unsafe(`drop database if exists "${dbName}" with (force)`).catch(() => {});
    await admin.end();
    rmSync(dataDir, { recursive: true, force: true });
  }
}

function pgOptions(url: URL) {
  return { host: url.hostname, port: Number(url.port || 5432), username: decodeURIComponent(url.username || 'postgres'), password: decodeURIComponent(url.password) || undefined };
}

await main();
