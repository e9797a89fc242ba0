/**
 * `npm run bench:latency`: end-to-end latency on the local chains with the real processes
 * (test/faults/cluster.ts: API, 2 workers, devnet, hardhat, own Redis and database):
 * from a payment's broadcast to (a) the `invoice.payment_detected` webhook and (b) `invoice.settled`
 * after the confirming block (Bitcoin 'medium' = 1 confirmation: the block is mined right after
 * detection and settle is measured from the mining call; hardhat automines, so the broadcast is the
 * confirming block). Env: BENCH_SAMPLES (default 30 per chain); BENCH_OPEN_INVOICES (default 0): that
 * many other open invoices, each with a Bitcoin and an EVM deposit address, are bulk-inserted before
 * the first sample, so the watchers follow the chains with a watched set of that size.
 * Last lines: `detect_p99_ms=<n> settle_p99_ms=<n> chain=<name>`.
 */
import type { Hex } from 'viem';
import { startCluster } from '../test/faults/cluster.ts';
import { bitcoinPayer, evmPayer, parseUnits } from '../test/faults/workload.ts';
import type { Delivery } from '../test/faults/receiver.ts';

const SAMPLES = Number(process.env.BENCH_SAMPLES ?? 30);
const OPEN = Number(process.env.BENCH_OPEN_INVOICES ?? 0);

const pct = (xs: number[], p: number) => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.ceil((p / 100) * s.length) - 1)]!;
};

const c = await startCluster({ workers: 2, logLevel: (process.env.BENCH_LOG_LEVEL as 'warn' | undefined) ?? 'warn', say: (l) => console.log(l) });
const waiters = new Map<string, (at: number) => void>();
c.receiver.onDelivery = (d: Delivery) => {
  const k = `${d.invoiceId}:${d.type}`;
  const w = waiters.get(k);
  if (w) { waiters.delete(k); w(d.at); }
};
const webhook = (invoiceId: string, type: string, timeoutMs = 30_000) =>
  new Promise<number>((resolve, reject) => {
    const t = setTimeout(() => { waiters.delete(`${invoiceId}:${type}`); reject(new Error(`${type} for ${invoiceId} not within ${timeoutMs} ms`)); }, timeoutMs);
    waiters.set(`${invoiceId}:${type}`, (at) => { clearTimeout(t); resolve(at); });
  });

/** A missing webhook: says where it stopped (invoice state, payments, events, deliveries, receiver). */
async function diagnose(e: Error, invoiceId: string, what: string): Promise<never> {
  const now = await c.api$('GET', `/v1/invoices/${invoiceId}`);
  const pays = await c.api$('GET', `/v1/invoices/${invoiceId}/payments`);
  const events = await c.sql`
    select e.id, e.type, e.created_at, e.relayed_at, d.id as delivery, d.status, d.attempt_count, d.next_attempt_at, d.locked_until, d.last_status_code
    from events e left join webhook_deliveries d on d.event_id = e.id where e.invoice_id = ${invoiceId} order by e.seq`;
  const received = c.receiver.deliveries.filter((d) => d.invoiceId === invoiceId || !d.valid);
  throw new Error(
    `${what}: ${e.message}; invoice now ${now.body.status}/${now.body.exception}; payments ${JSON.stringify(pays.body.data)}\n` +
      `events+deliveries ${JSON.stringify(events)}\nreceiver saw ${JSON.stringify(received)}`,
  );
}

if (OPEN > 0) {
  const t = Date.now();
  const merchantId = c.merchant.id;
  for (let from = 0; from < OPEN; from += 50_000) {
    const to = Math.min(OPEN, from + 50_000) - 1;
    await c.sql`
      insert into invoices (id, merchant_id, amount, currency, currency_decimals, speed_policy, tolerance_bps, expires_at, monitoring_until)
      select 'inv_open' || g, ${merchantId}, 100, 'USD', 2, 'medium', 0, now() + interval '1 hour', now() + interval '1 day'
      from generate_series(${from}::bigint, ${to}::bigint) g`;
    // Addresses nobody pays: random P2WPKH scripts on Bitcoin, random 20-byte addresses on the EVM chain.
    await c.sql`
      insert into deposit_addresses (chain, address, invoice_id, merchant_id, script)
      select 'bitcoin', 'bcrt1qopen' || g, 'inv_open' || g, ${merchantId}, '\\x0014'::bytea || substring(sha256(g::text::bytea) from 1 for 20)
      from generate_series(${from}::bigint, ${to}::bigint) g`;
    await c.sql`
      insert into deposit_addresses (chain, address, invoice_id, merchant_id)
      select 'ethereum', '0x' || encode(substring(sha256(('evm' || g)::bytea) from 1 for 20), 'hex'), 'inv_open' || g, ${merchantId}
      from generate_series(${from}::bigint, ${to}::bigint) g`;
  }
  console.log(`seeded ${OPEN} open invoices (one Bitcoin and one EVM deposit address each) in ${Date.now() - t} ms`);
}

const btc = bitcoinPayer(c.btc);
const evm = evmPayer(c.evm.url, c.evm.publicClient);
await evm.fund(c.evm.usdc, 100_000_000_000n);
const results: Record<string, { detect: number[]; settle: number[] }> = { bitcoin: { detect: [], settle: [] }, ethereum: { detect: [], settle: [] } };
try {
  for (let i = 0; i < SAMPLES; i++) {
    for (const chain of ['bitcoin', 'ethereum'] as const) {
      const method = chain === 'bitcoin' ? 'BTC' : i % 2 ? 'USDC-ethereum' : 'ETH-ethereum';
      const inv = await c.api$('POST', '/v1/invoices', { amount: '20.00', currency: 'USD', speed_policy: 'medium', payment_methods: [method] });
      if (inv.status !== 201) throw new Error(`create: ${inv.status} ${JSON.stringify(inv.body)}`);
      const m = inv.body.payment_methods[0];
      const detected = webhook(inv.body.id, 'invoice.payment_detected');
      const settled = webhook(inv.body.id, 'invoice.settled');
      // Both promises exist before either is awaited: keep a late rejection from being unhandled.
      detected.catch(() => {});
      settled.catch(() => {});
      const t0 = Date.now();
      if (chain === 'bitcoin') await btc.send(m.address, parseUnits(m.amount_due, 8));
      else if (method === 'ETH-ethereum') await evm.sendNative(m.address as Hex, parseUnits(m.amount_due, 18));
      else await evm.sendToken(c.evm.usdc, m.address as Hex, parseUnits(m.amount_due, 6));
      const td = await detected.catch((e: Error) => diagnose(e, inv.body.id, `${chain} ${method} sample ${i}`));
      results[chain]!.detect.push(td - t0);
      let t1 = t0;
      if (chain === 'bitcoin') { t1 = Date.now(); await btc.mine(1); }
      const ts = await settled.catch((e: Error) => diagnose(e, inv.body.id, `${chain} ${method} sample ${i}`));
      results[chain]!.settle.push(ts - t1);
    }
    if ((i + 1) % 10 === 0) console.log(`${i + 1}/${SAMPLES} samples per chain`);
  }
} finally {
  await c.close();
}
for (const [chain, r] of Object.entries(results)) {
  console.log(`chain=${chain} samples=${r.detect.length} detect_median_ms=${pct(r.detect, 50)} settle_median_ms=${pct(r.settle, 50)} detect_max_ms=${Math.max(...r.detect)} settle_max_ms=${Math.max(...r.settle)}`);
}
for (const [chain, r] of Object.entries(results)) console.log(`detect_p99_ms=${pct(r.detect, 99)} settle_p99_ms=${pct(r.settle, 99)} chain=${chain} open_invoices=${OPEN}`);
process.exit(0);
