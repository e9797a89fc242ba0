/**
 * Issue 14, defect 2: one definition of "counted" (src/settlement/state-machine.ts
 * `countsTowardPrice`) for the state machine, the report and the ledger; every total of the
 * reconciliation report is a SUM over the report's own counted rows; rows that are not counted say
 * so and carry no value a spreadsheet would add.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createApp } from '../../src/api/app.ts';
import { createTestContext, req, type TestContext } from '../support/db.ts';
import { createPayableMerchant, writeChainsFile } from '../support/merchant.ts';
import { CSV_COLUMNS } from '../../src/reports/reconciliation.ts';
import { parseAmount } from '../../src/money/amount.ts';
import type { Observation } from '../../src/settlement/service.ts';
import { parseCsv } from '../support/csv.ts';

let ctx: TestContext;
let app: ReturnType<typeof createApp>;
let shop: Awaited<ReturnType<typeof createPayableMerchant>>;
const tips: Record<string, number> = { bitcoin: 500, ethereum: 500 };
let txn = 0;
const USDC = '0x5fbdb2315678afecb367f032d93f642f64180aa3';

beforeAll(async () => {
  ctx = await createTestContext({ KASSA_CONFIG: writeChainsFile() });
  app = createApp(ctx.deps);
  shop = await createPayableMerchant(ctx.deps);
  await mine('bitcoin', []);
  await mine('ethereum', []);
});
afterAll(async () => ctx?.close());

const hashOf = (chain: string, h: number) => `${chain}-r-${h}`.padEnd(64, '0');

async function mine(chain: string, obs: Omit<Observation, 'block'>[]): Promise<void> {
  const h = ++tips[chain]!;
  const block = { hash: hashOf(chain, h), height: h, time: new Date() };
  await ctx.deps.sql.begin(async (tx) => {
    const touched = await ctx.deps.settlement.recordObservations(tx, chain, obs.map((o) => ({ ...o, block })));
    await ctx.deps.settlement.advanceCursor(tx, chain, { height: h, hash: block.hash, prevHash: hashOf(chain, h - 1), time: block.time }, 100);
    await ctx.deps.settlement.recompute(tx, [...touched, ...(await ctx.deps.settlement.awaitingConfirmations(tx, chain))]);
  });
}

/** The block at the tip leaves the chain (its payments are not in the mempool: reorged). */
async function orphanTip(chain: string): Promise<void> {
  await ctx.deps.sql.begin(async (tx) => {
    const touched = await ctx.deps.settlement.rollbackTo(tx, chain, tips[chain]! - 1, () => false);
    await ctx.deps.settlement.recompute(tx, touched);
  });
  tips[chain]! -= 1;
}

async function dbNow(): Promise<Date> {
  const [row] = await ctx.deps.sql<{ now: Date }[]>`select clock_timestamp() as now`;
  await new Promise((r) => setTimeout(r, 5));
  return row!.now;
}

const signed = (v: string) => (v.startsWith('-') ? -parseAmount(v.slice(1), 2, { allowZero: true }) : parseAmount(v, 2, { allowZero: true }));


describe('the reconciliation report adds up', () => {
  it('SUM over the CSV counted rows equals every total, with reorged, late, partial, over, not-offered and marked payments', async () => {
    const merchant = await ctx.deps.merchants.get(ctx.deps.sql, shop.merchant.id);
    const create = (body: Record<string, unknown>) => ctx.deps.invoices.create(merchant, { amount: '30.00', currency: 'USD', ...body } as never);
    const addr = (inv: Awaited<ReturnType<typeof create>>, m: string) => inv.payment_methods.find((x) => x.method === m)!.address;
    const btc = (inv: Awaited<ReturnType<typeof create>>, sats: bigint) => ({ txid: (++txn).toString(16).padStart(64, '0'), outputIndex: 0, address: addr(inv, 'BTC'), token: null, amount: sats });
    const from = await dbNow();

    const paid = await create({}); // 30.00 = 50,000 sats at the sandbox rate 60,000
    await mine('bitcoin', [btc(paid, 50_000n)]);
    const reorged = await create({}); // 25.00 then its block leaves the chain
    await mine('bitcoin', [btc(reorged, 25_000n)]);
    await orphanTip('bitcoin');
    await mine('bitcoin', []);
    const late = await create({}); // expired, then paid in full: paid_late
    await ctx.deps.sql`update invoices set expires_at = now() - interval '1 minute' where id = ${late.id}`;
    await mine('bitcoin', [btc(late, 50_000n)]);
    const partial = await create({}); // half, expires: paid_partial
    await mine('bitcoin', [btc(partial, 25_000n)]);
    const over = await create({}); // 36.00: paid_over
    await mine('bitcoin', [btc(over, 60_000n)]);
    const mixed = await create({ payment_methods: ['BTC'] }); // on time partial + a late top-up + an asset not offered
    await mine('bitcoin', [btc(mixed, 20_000n)]);
    await new Promise((r) => setTimeout(r, 20));
    await ctx.deps.sql`update invoices set expires_at = clock_timestamp() where id = ${mixed.id}`;
    await new Promise((r) => setTimeout(r, 20));
    await mine('bitcoin', [btc(mixed, 30_000n)]);
    const other = await create({ payment_methods: ['USDC-ethereum'] });
    const markedSettled = await create({ payment_methods: ['BTC', 'USDC-ethereum'] }); // short, marked settled
    await mine('bitcoin', [btc(markedSettled, 10_000n)]);
    await ctx.deps.invoices.mark(shop.merchant.id, markedSettled.id, 'settled', 'test', 'customer paid the rest by card');
    const markedInvalid = await create({}); // paid, then marked invalid: owed back
    await mine('bitcoin', [btc(markedInvalid, 50_000n)]);
    await ctx.deps.invoices.mark(shop.merchant.id, markedInvalid.id, 'invalid', 'test', 'order cancelled');
    // USDC sent to the forwarder of a BTC-only invoice on that chain: not offered
    const usdcAddr = addr(other, 'USDC-ethereum').toLowerCase();
    await ctx.deps.sql`insert into deposit_addresses (chain, address, invoice_id, merchant_id) values ('ethereum', ${'0x' + 'ab'.repeat(20)}, ${mixed.id}, ${shop.merchant.id}) on conflict do nothing`;
    await mine('ethereum', [{ txid: '0x' + (++txn).toString(16).padStart(64, '0'), outputIndex: 1, address: '0x' + 'ab'.repeat(20), token: USDC, amount: 5_000_000n }]);
    await mine('ethereum', [{ txid: '0x' + (++txn).toString(16).padStart(64, '0'), outputIndex: 2, address: usdcAddr, token: USDC, amount: 30_000_000n }]);
    const to = await dbNow();

    const q = `/v1/reports/reconciliation?from=${from.toISOString()}&to=${to.toISOString()}`;
    const json = await (await app.request(q, req(shop.secret, 'GET'))).json();
    const csvText = await (await app.request(q + '&format=csv', req(shop.secret, 'GET'))).text();
    expect(csvText.split('\r\n')[0]).toBe(CSV_COLUMNS.join(','));
    const rows = parseCsv(csvText);
    expect(rows.length).toBeGreaterThan(8);

    // Rows not counted say so and carry no value.
    for (const r of rows.filter((r) => r.payment_id)) {
      expect(['true', 'false']).toContain(r.counted);
      if (r.counted === 'false') expect(r.value).toBe('');
      else expect(r.value).not.toBe('');
    }
    // Totals per currency = SUM(value) over counted rows.
    for (const c of json.totals.per_currency) {
      const sum = rows.filter((r) => r.invoice_currency === c.currency && r.counted === 'true').reduce((a, r) => a + parseAmount(r.value!, 2, { allowZero: true }), 0n);
      expect(parseAmount(c.received, 2, { allowZero: true })).toBe(sum);
      const expected = [...new Map(rows.filter((r) => r.invoice_currency === c.currency).map((r) => [r.invoice_id, r.invoice_expected])).values()]
        .reduce((a, v) => a + parseAmount(v!, 2), 0n);
      expect(parseAmount(c.expected, 2)).toBe(expected);
      expect(signed(c.difference)).toBe(sum - expected);
    }
    // Totals per asset = SUM(amount) over live rows / counted rows.
    for (const a of json.totals.per_asset) {
      const d = a.method === 'BTC' ? 8 : 6;
      const mine = rows.filter((r) => r.method === a.method);
      const live = mine.filter((r) => r.payment_status === 'pending' || r.payment_status === 'confirmed');
      const sum = (rs: typeof rows) => rs.reduce((x, r) => x + parseAmount(r.amount!, d), 0n);
      expect(parseAmount(a.received, d, { allowZero: true })).toBe(sum(live));
      expect(parseAmount(a.counted, d, { allowZero: true })).toBe(sum(live.filter((r) => r.counted === 'true')));
      expect(a.payments).toBe(live.length);
    }
    // Per invoice: received = SUM(value) of its counted rows; the JSON says the same as the CSV.
    for (const inv of json.invoices) {
      const mine = rows.filter((r) => r.invoice_id === inv.invoice_id);
      expect(mine[0]!.invoice_received).toBe(inv.received);
      const sum = mine.filter((r) => r.counted === 'true').reduce((a, r) => a + parseAmount(r.value!, 2), 0n);
      expect(parseAmount(inv.received, 2, { allowZero: true })).toBe(sum);
    }

    const row = (id: string) => json.invoices.find((i: { invoice_id: string }) => i.invoice_id === id);
    // The expired paid_late invoice: nothing counted, the difference is the whole price, the late money is shown.
    expect(row(late.id)).toMatchObject({ status: 'expired', exception: 'paid_late', received: '0.00', difference: '-30.00', not_counted: '30.00' });
    expect(row(late.id).payments[0]).toMatchObject({ counted: false, value: null, late: true });
    expect(row(reorged.id)).toMatchObject({ received: '0.00', difference: '-30.00', not_counted: '0.00' });
    expect(row(reorged.id).payments[0]).toMatchObject({ status: 'reorged', counted: false, value: null });
    expect(row(partial.id)).toMatchObject({ exception: 'paid_partial', received: '15.00', difference: '-15.00' });
    expect(row(over.id)).toMatchObject({ exception: 'paid_over', received: '36.00', difference: '6.00' });
    expect(row(mixed.id)).toMatchObject({ status: 'expired', exception: 'paid_late', received: '12.00', difference: '-18.00', not_counted: '18.00' });
    expect(row(markedSettled.id)).toMatchObject({ status: 'settled', exception: 'marked', received: '6.00', difference: '-24.00' });
    expect(row(markedInvalid.id)).toMatchObject({ status: 'invalid', exception: 'marked', received: '0.00', not_counted: '30.00' });
    const reasons = Object.fromEntries(json.unmatched.map((u: { invoice_id: string; reason: string }) => [u.invoice_id + u.reason, u.reason]));
    expect(reasons).toMatchObject({ [late.id + 'late']: 'late', [reorged.id + 'reorged']: 'reorged', [mixed.id + 'asset_not_offered']: 'asset_not_offered', [markedInvalid.id + 'marked_invalid']: 'marked_invalid' });
    expect(json.unmatched).toHaveLength(5); // late, reorged, mixed's late top-up, mixed's USDC, marked invalid

    // The state machine agrees: the invoices' on-time amounts are the report's received.
    for (const inv of [paid, partial, over]) {
      const api = await ctx.deps.invoices.get(shop.merchant.id, inv.id);
      expect(row(inv.id).received).toBe(api.amount_paid);
    }
  });
});
