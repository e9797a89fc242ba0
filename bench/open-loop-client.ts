/**
 * Open-loop load for bench/invoices.ts: POST requests at a FIXED rate whatever the server's
 * latency (request i is due at start + i/rate, sent then on a new or idle keep-alive connection;
 * nothing waits for earlier answers). Each latency is measured from the request's due time, so a
 * slow server or a late generator shows up in the figures (no coordinated omission). Runs as its
 * own process; prints one JSON line.
 * Usage: tsx bench/open-loop-client.ts <url> <seconds> <rate> [bearer]
 */
import { randomUUID } from 'node:crypto';
import http from 'node:http';

const [url, seconds = '10', rateArg = '200', bearer] = process.argv.slice(2);
if (!url) throw new Error('usage: open-loop-client.ts <url> <seconds> <rate> [bearer]');
const rate = Number(rateArg);
const total = Math.round(Number(seconds) * rate);
const agent = new http.Agent({ keepAlive: true, maxSockets: Infinity });
const target = new URL(url);

function post(): Promise<number> {
  const id = randomUUID();
  const body = JSON.stringify({ amount: '25.00', currency: 'USD', order_id: id, payment_methods: ['BTC', 'USDC-ethereum'] });
  return new Promise((resolve, reject) => {
    const req = http.request(
      { agent, host: target.hostname, port: target.port, path: target.pathname, method: 'POST', timeout: 30_000,
        headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body), 'idempotency-key': id, ...(bearer ? { authorization: `Bearer ${bearer}` } : {}) } },
      (res) => {
        res.resume();
        res.on('end', () => resolve(res.statusCode ?? 0));
      },
    );
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.on('error', reject);
    req.end(body);
  });
}

const latencies: number[] = [];
// OPEN_LOOP_TRACE=file: each request's due time (epoch ms) and latency, to line stalls up with the server's.
const trace: [number, number][] | null = process.env.OPEN_LOOP_TRACE ? [] : null;
let non2xx = 0;
let errors = 0;
let maxLagMs = 0;
const start = performance.now() + 50;
const pending: Promise<void>[] = [];
for (let i = 0; i < total; i++) {
  const due = start + (i * 1000) / rate;
  const wait = due - performance.now();
  if (wait > 1) await new Promise((r) => setTimeout(r, wait));
  maxLagMs = Math.max(maxLagMs, performance.now() - due);
  pending.push(
    post().then(
      (status) => {
        latencies.push(performance.now() - due);
        trace?.push([performance.timeOrigin + due, performance.now() - due]);
        if (status < 200 || status >= 300) non2xx++;
      },
      () => {
        errors++;
      },
    ),
  );
}
await Promise.all(pending);
const elapsed = (performance.now() - start) / 1000;
latencies.sort((a, b) => a - b);
const pct = (p: number) => (latencies.length ? latencies[Math.min(latencies.length - 1, Math.ceil((p / 100) * latencies.length) - 1)]! : NaN);
process.stdout.write(JSON.stringify({
  rate, sent: total, completed: latencies.length, achieved_rps: latencies.length / elapsed,
  p50_ms: Math.round(pct(50) * 10) / 10, p99_ms: Math.round(pct(99) * 10) / 10, max_ms: Math.round(pct(100) * 10) / 10,
  non2xx, errors, generator_max_lag_ms: Math.round(maxLagMs * 10) / 10,
}) + '\n');
agent.destroy();
if (trace) (await import('node:fs')).writeFileSync(process.env.OPEN_LOOP_TRACE!, JSON.stringify(trace));
