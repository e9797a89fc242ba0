/**
 * `npm run bench:load`: sustained mixed load on the real processes (test/faults/cluster.ts) for a
 * bounded time: invoice creation at a fixed rate, payments arriving (BTC on the devnet with a block
 * every 2 s, USDC/ETH on hardhat), webhooks delivering to a verifying receiver, checkout pages polled
 * (GET /pay/:id and /v1/public/invoices/:id). Prints throughput, errors, p99 latencies, peak RSS
 * (VmHWM) per process and whether RSS grew between 25% and 100% of the run.
 * Env: BENCH_LOAD_SECONDS (default 120), BENCH_RATE invoices/s (default 10), BENCH_POLL_RATE (default 40).
 */
import type { Hex } from 'viem';
import { startCluster } from '../test/faults/cluster.ts';
import { memoryOf, sleep } from '../test/faults/procs.ts';
import { bitcoinPayer, evmPayer, parseUnits } from '../test/faults/workload.ts';

const SECONDS = Number(process.env.BENCH_LOAD_SECONDS ?? 120);
const RATE = Number(process.env.BENCH_RATE ?? 10);
const POLL_RATE = Number(process.env.BENCH_POLL_RATE ?? 40);

const pct = (xs: number[], p: number) => {
  if (xs.length === 0) return 0;
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.ceil((p / 100) * s.length) - 1)]!;
};

const c = await startCluster({ workers: 2, logLevel: 'warn', say: (l) => console.log(l) });
const btc = bitcoinPayer(c.btc);
const evm = evmPayer(c.evm.url, c.evm.publicClient);
await evm.fund(c.evm.usdc, 400_000_000_000n);

const lat: Record<string, number[]> = { create: [], pay_page: [], public_invoice: [], pay_btc: [], pay_evm: [] };
const errors: Record<string, number> = {};
const err = (k: string) => { errors[k] = (errors[k] ?? 0) + 1; };
const invoices: string[] = [];
const procs = () => [c.api, ...c.workers, c.redis, c.devnet, c.hardhat];
const rssAt: Record<string, Record<string, number>> = {};
const sampleRss = (label: string) => {
  rssAt[label] = {};
  for (const p of procs()) rssAt[label]![p.name] = memoryOf(p.pid)?.rssKb ?? 0;
};

const t0 = Date.now();
const end = t0 + SECONDS * 1000;
let stop = false;
const timed = async (k: string, fn: () => Promise<boolean>) => {
  const s = performance.now();
  try {
    if (!(await fn())) err(k);
  } catch {
    err(k);
  }
  lat[k]!.push(performance.now() - s);
};

const payQueue: { method: string; address: string; due: string }[] = [];
const creator = (async () => {
  let n = 0;
  while (!stop) {
    const due = t0 + (n * 1000) / RATE;
    if (due > Date.now()) await sleep(due - Date.now());
    n++;
    void timed('create', async () => {
      const method = n % 3 === 0 ? 'ETH-ethereum' : n % 3 === 1 ? 'BTC' : 'USDC-ethereum';
      const r = await c.api$('POST', '/v1/invoices', { amount: '12.34', currency: 'USD', speed_policy: 'medium', payment_methods: [method] });
      if (r.status !== 201) return false;
      invoices.push(r.body.id);
      if (n % 10 < 7) payQueue.push({ method, address: r.body.payment_methods[0].address, due: r.body.payment_methods[0].amount_due });
      return true;
    });
  }
})();
const payer = (chain: 'btc' | 'evm') => (async () => {
  while (!stop) {
    const i = payQueue.findIndex((p) => (chain === 'btc') === (p.method === 'BTC'));
    if (i < 0) { await sleep(20); continue; }
    const p = payQueue.splice(i, 1)[0]!;
    await timed(`pay_${chain}`, async () => {
      if (p.method === 'BTC') await btc.send(p.address, parseUnits(p.due, 8));
      else if (p.method === 'ETH-ethereum') await evm.sendNative(p.address as Hex, parseUnits(p.due, 18));
      else await evm.sendToken(c.evm.usdc, p.address as Hex, parseUnits(p.due, 6));
      return true;
    });
  }
})();
const payers = [payer('btc'), payer('evm')];
const miner = (async () => { while (!stop) { await sleep(2000); await btc.mine(1).catch(() => err('mine')); } })();
const poller = (async () => {
  let n = 0;
  while (!stop) {
    const due = t0 + (n * 1000) / POLL_RATE;
    if (due > Date.now()) await sleep(due - Date.now());
    n++;
    if (invoices.length === 0) continue;
    const id = invoices[Math.floor(Math.random() * invoices.length)]!;
    const page = n % 2 === 0;
    void timed(page ? 'pay_page' : 'public_invoice', async () => {
      const res = await fetch(`${c.apiUrl}${page ? `/pay/${id}` : `/v1/public/invoices/${id}`}`, { signal: AbortSignal.timeout(10_000) });
      await res.arrayBuffer();
      return res.status === 200;
    });
  }
})();
let sampled25 = false;
while (Date.now() < end) {
  await sleep(250);
  if (!sampled25 && Date.now() - t0 >= SECONDS * 250) { sampleRss('25%'); sampled25 = true; }
}
sampleRss('100%');
const peak: Record<string, number> = {};
for (const p of procs()) peak[p.name] = memoryOf(p.pid)?.hwmKb ?? 0;
stop = true;
await Promise.all([creator, ...payers, miner, poller].map((p) => p.catch(() => {})));
const elapsed = (Date.now() - t0) / 1000;

// Let the webhooks drain (bounded), then compare events with verified deliveries.
await btc.mine(1).catch(() => {});
let events = 0, delivered = 0;
const drainUntil = Date.now() + 60_000;
while (Date.now() < drainUntil) {
  events = Number((await c.sql<{ n: bigint }[]>`select count(*) as n from events`)[0]!.n);
  delivered = new Set(c.receiver.deliveries.filter((d) => d.valid).map((d) => d.eventId)).size;
  if (delivered >= events) break;
  await sleep(500);
}
const states = await c.sql<{ status: string; n: bigint }[]>`select status, count(*) as n from invoices group by 1 order by 1`;
await c.close();

console.log(`duration_s=${elapsed.toFixed(0)} rate_target=${RATE}/s poll_target=${POLL_RATE}/s`);
for (const [k, xs] of Object.entries(lat)) {
  console.log(`${k}: n=${xs.length} throughput=${(xs.length / elapsed).toFixed(1)}/s p50_ms=${pct(xs, 50).toFixed(1)} p99_ms=${pct(xs, 99).toFixed(1)} errors=${errors[k] ?? 0}`);
}
console.log(`invoices: ${states.map((s) => `${s.status}=${s.n}`).join(' ')}`);
console.log(`webhooks: events=${events} delivered_verified=${delivered} invalid_signatures=${c.receiver.deliveries.filter((d) => !d.valid).length}`);
const totalErrors = Object.values(errors).reduce((a, b) => a + b, 0);
for (const p of procs()) {
  const a = rssAt['25%']![p.name] ?? 0, b = rssAt['100%']![p.name] ?? 0;
  const grew = b > a * 1.2 && b - a > 20_000;
  console.log(`memory ${p.name}: peak_rss_mb=${(peak[p.name]! / 1024).toFixed(0)} rss_25pct_mb=${(a / 1024).toFixed(0)} rss_100pct_mb=${(b / 1024).toFixed(0)} grew=${grew ? 'yes' : 'no'}`);
}
console.log(`load_errors=${totalErrors} create_per_s=${(lat.create!.length / elapsed).toFixed(1)} create_p99_ms=${pct(lat.create!, 99).toFixed(1)} poll_p99_ms=${pct([...lat.pay_page!, ...lat.public_invoice!], 99).toFixed(1)}`);
process.exit(0);
