/**
 * Pruning the tip records (src/settlement/tip-records.ts; docs/reconciliation.md, "When a payment is
 * on time"), against the real database: every on-time decision — of the pure rule for any deadline
 * that can still be judged, and of settlement's recompute for every invoice — is the same before and
 * after, and the records no decision can use are gone.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestContext, type TestContext } from '../support/db.ts';
import { createPayableMerchant, writeChainsFile } from '../support/merchant.ts';
import { recordedHeightAt } from '../../src/settlement/service.ts';
import { sentOnTime } from '../../src/settlement/state-machine.ts';
import { pruneTipObservations } from '../../src/settlement/tip-records.ts';
import { buildProcessors } from '../../workers/processors.ts';
import { QUEUE_NAMES } from '../../src/queues/index.ts';
import type { Job } from 'bullmq';

let ctx: TestContext;
let shop: Awaited<ReturnType<typeof createPayableMerchant>>;

beforeAll(async () => {
  ctx = await createTestContext({ KASSA_CONFIG: writeChainsFile() });
  shop = await createPayableMerchant(ctx.deps);
});
afterAll(async () => ctx?.close());

const MIN = 60_000;
// Ten days ago: the old records are far behind the one-day margin.
const base = new Date(Date.now() - 10 * 24 * 3600_000);
const at = (minutes: number) => new Date(base.getTime() + minutes * MIN);
let txCounter = 0;
const newTxid = () => (++txCounter).toString(16).padStart(64, 'a');

async function invoice(expiresMin: number, monitoringUntil: Date) {
  const merchant = await ctx.deps.merchants.get(ctx.deps.sql, shop.merchant.id);
  const inv = await ctx.deps.invoices.create(merchant, { amount: '30.00', currency: 'USD' } as never);
  await ctx.deps.sql`update invoices set expires_at = ${at(expiresMin)}, monitoring_until = ${monitoringUntil} where id = ${inv.id}`;
  return { id: inv.id, address: inv.payment_methods.find((m) => m.method === 'BTC')!.address, expiresAt: at(expiresMin) };
}

/** A confirmed Bitcoin payment in the block at `height`, first seen by Kassa at `seenMin`. */
async function pay(inv: { id: string; address: string }, height: number, seenMin: number, sats = 50_000n) {
  const txid = newTxid();
  await ctx.deps.sql.begin((tx) => ctx.deps.settlement.recordObservations(tx, 'bitcoin', [{
    txid, outputIndex: 0, address: inv.address, token: null, amount: sats,
    block: { hash: `blk-${height}`.padEnd(64, '0'), height, time: at(seenMin) },
  }]));
  await ctx.deps.sql`update payments set first_seen_at = ${at(seenMin)} where chain = 'bitcoin' and txid = ${txid}`;
}

async function record(chain: string, height: number, observedAt: Date) {
  await ctx.deps.sql`insert into chain_tip_observations (chain, height, hash, observed_at) values (${chain}, ${height}, ${`${chain}-${height}`.padEnd(64, '0')}, ${observedAt})`;
}
async function keptBlocks(chain: string, from: number, to: number) {
  for (let h = from; h <= to; h++) {
    await ctx.deps.sql`insert into chain_blocks (chain, height, hash, prev_hash, block_time) values (${chain}, ${h}, ${`${chain}-${h}`.padEnd(64, '0')}, ${`${chain}-${h - 1}`.padEnd(64, '0')}, now())`;
  }
}

/** Every on-time decision settlement makes: the payments' `late`, the invoices' state. */
async function decisions() {
  const ids = (await ctx.deps.sql<{ id: string }[]>`select id from invoices order by id`).map((r) => r.id);
  await ctx.deps.sql.begin((tx) => ctx.deps.settlement.recompute(tx, ids));
  const payments = await ctx.deps.sql`select id, late from payments order by id`;
  const invoices = await ctx.deps.sql`select id, status, exception, amount_paid from invoices order by id`;
  // The pure rule, for every payment, against the records as they stand.
  const pure: Record<string, boolean> = {};
  const rows = await ctx.deps.sql<{ id: string; first_seen_at: Date; status: 'confirmed'; block_height: bigint | null; expires_at: Date }[]>`
    select p.id, p.first_seen_at, p.status, p.block_height, i.expires_at from payments p join invoices i on i.id = p.invoice_id`;
  for (const r of rows) {
    pure[r.id] = sentOnTime({
      firstSeenAt: r.first_seen_at, status: r.status, blockHeight: r.block_height === null ? null : Number(r.block_height),
      heightAtDeadline: await recordedHeightAt(ctx.deps.sql, 'bitcoin', r.expires_at),
    }, r.expires_at);
  }
  return { payments, invoices, pure };
}

describe('pruning the tip records', () => {
  it('keeps every on-time decision and deletes the records no decision can use', async () => {
    // Bitcoin: a tip record per block, one a minute from ten days ago (heights 1..200), one
    // irregular record (height 120 recorded late, as a fold or a slow watcher can leave), then
    // heights 201..260 in the last hour; the kept block window is 240..260.
    for (let h = 1; h <= 200; h++) if (h !== 120) await record('bitcoin', h, at(h));
    await record('bitcoin', 120, at(170.5));
    for (let h = 201; h <= 260; h++) await record('bitcoin', h, new Date(Date.now() - (261 - h) * MIN));
    await keptBlocks('bitcoin', 240, 260);
    await ctx.deps.sql`insert into chain_state (chain, tip_height, tip_hash, updated_at) values ('bitcoin', 260, ${'bitcoin-260'.padEnd(64, '0')}, now())`;
    // Ethereum: records all older than T0, the kept block window 150..200 (those must stay).
    for (let h = 1; h <= 200; h++) await record('ethereum', h, at(h - 300));
    await keptBlocks('ethereum', 150, 200);
    // A chain with no kept blocks (not followed yet / any more): left alone.
    for (let h = 1; h <= 20; h++) await record('litecoin', h, at(h));

    const future = new Date(Date.now() + 3600_000);
    // Still monitored, expired 10 days ago (T0 = its expires_at, minute 100.5): a payment first
    // seen after expiry in block 90 (on time by the record of height 100) and one in block 150 (late).
    const open = await invoice(100.5, future);
    await pay(open, 90, 300, 20_000n);
    await pay(open, 150, 300, 20_000n);
    // Monitoring ended long ago: a payment first seen after expiry in block 25, on time only by the
    // record of height 30 (its witness); one first seen after expiry in block 55, late; one seen in time.
    const witnessed = await invoice(30.5, at(60));
    await pay(witnessed, 25, 80);
    const late = await invoice(50.5, at(70));
    await pay(late, 55, 90);
    const seenInTime = await invoice(40.5, at(70));
    await pay(seenInTime, 45, 40);
    // Still open, expiring in the future.
    await invoice(24 * 60 * 11, future);

    const before = await decisions();
    expect(Object.values(before.pure).filter(Boolean).length).toBe(3); // blocks 90, 25 and the one seen in time
    expect(before.pure).toEqual(Object.fromEntries(before.payments.map((p) => [p.id, !p.late])));
    // Deadlines that can still be judged: every record time after T0, and a millisecond either side.
    const probes = (await ctx.deps.sql<{ observed_at: Date }[]>`select observed_at from chain_tip_observations where chain = 'bitcoin' and observed_at >= ${at(100.5)}`)
      .flatMap((r) => [-1, 0, 1].map((d) => new Date(r.observed_at.getTime() + d)));
    probes.push(at(100.5), new Date(), future);
    const heightsBefore = await Promise.all(probes.map((p) => recordedHeightAt(ctx.deps.sql, 'bitcoin', p)));

    const pruned = await pruneTipObservations(ctx.deps.sql);

    // Every decision is the same.
    const after = await decisions();
    expect(after).toEqual(before);
    expect(await Promise.all(probes.map((p) => recordedHeightAt(ctx.deps.sql, 'bitcoin', p)))).toEqual(heightsBefore);


    // The records gone: old, below the window, not T0's highest, not a witness.
    const left = async (chain: string) => (await ctx.deps.sql<{ height: bigint }[]>`select height from chain_tip_observations where chain = ${chain} order by height`).map((r) => Number(r.height));
    const btcLeft = await left('bitcoin');
    const range = (from: number, to: number) => Array.from({ length: to - from + 1 }, (_, i) => from + i);
    // Kept: the witnesses of the two old invoices with payments first seen after expiry (30, 50),
    // the highest record at or before T0 (100), everything recorded after T0 (101..260).
    expect(btcLeft).toEqual([30, 50, ...range(100, 260)]);
    expect(pruned['bitcoin']).toBe(97);
    expect(await left('ethereum')).toEqual(range(150, 200));
    expect(pruned['ethereum']).toBe(149);
    expect(await left('litecoin')).toHaveLength(20);
    expect(pruned['litecoin']).toBe(0);

    // Pruning again deletes nothing more.
    expect(await pruneTipObservations(ctx.deps.sql)).toEqual({ bitcoin: 0, ethereum: 0, litecoin: 0 });
  });

  it('runs with the periodic re-verification job (reverify-payments)', async () => {
    // Old records below the window again; no payment is due for re-verification (no node is asked).
    for (let h = 5; h <= 9; h++) await record('bitcoin', h, at(h));
    await ctx.deps.sql`update payments set verified_at = now()`;
    const set = buildProcessors(ctx.deps, { watchers: false });
    const maintenance = set.processors.find((p) => p.queue === QUEUE_NAMES.maintenance)!;
    const result = await maintenance.process({}, { name: 'reverify-payments' } as Job, ctx.deps.logger) as { pruned_tip_records: Record<string, number> };
    expect(result.pruned_tip_records).toEqual({ bitcoin: 5, ethereum: 0, litecoin: 0 });
    expect((await ctx.deps.sql`select 1 from chain_tip_observations where chain = 'bitcoin' and height between 5 and 9`).length).toBe(0);
  });
});
