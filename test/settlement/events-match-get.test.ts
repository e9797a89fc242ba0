/**
 * Issue 14, defect 3: every event's data.object equals what GET /v1/invoices/:id returns right
 * after the transaction that wrote it; a partial payment confirming and a late payment are each
 * an event of their own.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createApp } from '../../src/api/app.ts';
import { createTestContext, req, type TestContext } from '../support/db.ts';
import { createPayableMerchant, writeChainsFile } from '../support/merchant.ts';
import type { Observation } from '../../src/settlement/service.ts';

let ctx: TestContext;
let app: ReturnType<typeof createApp>;
let shop: Awaited<ReturnType<typeof createPayableMerchant>>;
let tip = 700;
let txn = 0;
let lastSeq = 0n;

beforeAll(async () => {
  ctx = await createTestContext({ KASSA_CONFIG: writeChainsFile() });
  app = createApp(ctx.deps);
  shop = await createPayableMerchant(ctx.deps);
  await mine([]);
});
afterAll(async () => ctx?.close());

const hashOf = (h: number) => `btc-e-${h}`.padEnd(64, '0');

async function mine(obs: Omit<Observation, 'block'>[]): Promise<void> {
  const h = ++tip;
  const block = { hash: hashOf(h), height: h, time: new Date() };
  await ctx.deps.sql.begin(async (tx) => {
    const touched = await ctx.deps.settlement.recordObservations(tx, 'bitcoin', obs.map((o) => ({ ...o, block })));
    await ctx.deps.settlement.advanceCursor(tx, 'bitcoin', { height: h, hash: block.hash, prevHash: hashOf(h - 1), time: block.time }, 100);
    await ctx.deps.settlement.recompute(tx, [...touched, ...(await ctx.deps.settlement.awaitingConfirmations(tx, 'bitcoin'))]);
  });
}

async function mempool(obs: Omit<Observation, 'block'>[]): Promise<void> {
  await ctx.deps.sql.begin(async (tx) => {
    const touched = await ctx.deps.settlement.recordObservations(tx, 'bitcoin', obs.map((o) => ({ ...o, block: null })));
    await ctx.deps.settlement.recompute(tx, touched);
  });
}

async function orphanTip(): Promise<void> {
  await ctx.deps.sql.begin(async (tx) => {
    const touched = await ctx.deps.settlement.rollbackTo(tx, 'bitcoin', tip - 1, () => false);
    await ctx.deps.settlement.recompute(tx, touched);
  });
  tip -= 1;
}

/**
 * Runs one transaction (`step`), then checks every event it wrote for `invoiceId` against GET.
 * Returns those events.
 */
async function step(invoiceId: string, run: () => Promise<void>) {
  await run();
  const events = await ctx.deps.sql<{ seq: bigint; type: string; payload: { object: unknown; payment?: { status: string } } }[]>`
    select seq, type, payload from events where invoice_id = ${invoiceId} and seq > ${lastSeq} order by seq`;
  const [max] = await ctx.deps.sql<{ s: bigint }[]>`select coalesce(max(seq), 0) as s from events`;
  lastSeq = BigInt(max!.s);
  const res = await app.request(`/v1/invoices/${invoiceId}`, req(shop.secret, 'GET'));
  expect(res.status).toBe(200);
  const got = await res.json();
  for (const e of events) expect({ type: e.type, object: e.payload.object }).toEqual({ type: e.type, object: got });
  return { types: events.map((e) => e.type), events, invoice: got };
}

async function createInvoice() {
  const merchant = await ctx.deps.merchants.get(ctx.deps.sql, shop.merchant.id);
  const inv = await ctx.deps.invoices.create(merchant, { amount: '30.00', currency: 'USD', payment_methods: ['BTC'] } as never);
  const [max] = await ctx.deps.sql<{ s: bigint }[]>`select coalesce(max(seq), 0) as s from events`;
  lastSeq = BigInt(max!.s);
  return inv;
}
const pay = (inv: Awaited<ReturnType<typeof createInvoice>>, sats: bigint) => ({
  txid: (++txn).toString(16).padStart(64, 'e'), outputIndex: 0, address: inv.payment_methods[0]!.address, token: null, amount: sats,
});

describe('event payloads equal GET right after their transaction', () => {
  it('detected: payment_detected and processing carry the paid invoice', async () => {
    const inv = await createInvoice();
    const s = await step(inv.id, () => mempool([pay(inv, 50_000n)]));
    expect(s.types).toEqual(['invoice.payment_detected', 'invoice.processing']);
    expect(s.invoice).toMatchObject({ status: 'processing', amount_paid: '30.00' });
  });

  it('partial: payment_detected + paid_partial show the partial payment; its confirmation is payment_confirmed', async () => {
    const inv = await createInvoice();
    const p = pay(inv, 25_000n);
    const seen = await step(inv.id, () => mempool([p]));
    expect(seen.types).toEqual(['invoice.payment_detected', 'invoice.paid_partial']);
    expect(seen.invoice).toMatchObject({ status: 'new', exception: 'paid_partial', amount_paid: '15.00', amount_due: '15.00' });
    const confirmed = await step(inv.id, () => mine([p]));
    expect(confirmed.types).toEqual(['invoice.payment_confirmed']);
    expect(confirmed.events[0]!.payload.payment).toMatchObject({ status: 'confirmed', txid: p.txid });
  });

  it('late: payment_detected, payment_confirmed and paid_late carry the paid_late invoice', async () => {
    const inv = await createInvoice();
    await ctx.deps.sql`update invoices set expires_at = now() - interval '1 minute' where id = ${inv.id}`;
    await step(inv.id, () => mine([]));
    await ctx.deps.sql.begin((tx) => ctx.deps.settlement.recompute(tx, [inv.id]));
    const expired = await step(inv.id, async () => {});
    expect(expired.invoice.status).toBe('expired');
    const s = await step(inv.id, () => mine([pay(inv, 50_000n)]));
    expect(s.types).toEqual(['invoice.payment_detected', 'invoice.payment_confirmed', 'invoice.paid_late']);
    expect(s.invoice).toMatchObject({ status: 'expired', exception: 'paid_late', amount_paid: '0.00' });
    expect(s.invoice.payment_methods[0].amount_paid).not.toBe('0.00000000'); // the money is shown per method
  });

  it('reorged: payment_reorged and invalid carry the invoice without the payment', async () => {
    const inv = await createInvoice();
    await step(inv.id, () => mine([pay(inv, 50_000n)]));
    const s = await step(inv.id, () => orphanTip());
    expect(s.types).toEqual(['invoice.payment_reorged', 'invoice.invalid']);
    expect(s.invoice).toMatchObject({ status: 'invalid', amount_paid: '0.00' });
    expect(s.invoice.payment_methods[0].amount_paid).toBe('0.00000000');
  });
});
