import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { createApp } from '../../src/api/app.ts';
import { createTestContext, req, type TestContext } from '../support/db.ts';
import { createPayableMerchant, writeChainsFile } from '../support/merchant.ts';
import { CSV_COLUMNS, csvField } from '../../src/reports/reconciliation.ts';
import { parseAmount } from '../../src/money/amount.ts';

let ctx: TestContext;
let app: ReturnType<typeof createApp>;
let shop: Awaited<ReturnType<typeof createPayableMerchant>>;
let tip = 0;
let txn = 0;

beforeAll(async () => {
  ctx = await createTestContext({ KASSA_CONFIG: writeChainsFile() });
  app = createApp(ctx.deps);
  shop = await createPayableMerchant(ctx.deps);
});
afterAll(async () => ctx?.close());

async function dbNow(): Promise<Date> {
  const [row] = await ctx.deps.sql<{ now: Date }[]>`select clock_timestamp() as now`;
  await new Promise((r) => setTimeout(r, 2));
  return row!.now;
}

async function mine(obs: { address: string; amount: bigint; token?: string | null; chain?: string }[]) {
  tip += 1;
  const block = { hash: `b${tip}`.padEnd(64, '0'), height: tip, time: new Date() };
  for (const chain of ['bitcoin', 'ethereum']) {
    await ctx.deps.sql.begin(async (tx) => {
      const mine = obs.filter((o) => (o.chain ?? 'bitcoin') === chain);
      const touched = await ctx.deps.settlement.recordObservations(tx, chain, mine.map((o) => ({
        txid: (++txn).toString(16).padStart(64, '0'), outputIndex: 0, address: o.address, token: o.token ?? null, amount: o.amount, block,
      })));
      await ctx.deps.settlement.advanceCursor(tx, chain, { ...block, prevHash: `b${tip - 1}`.padEnd(64, '0') }, 100);
      await ctx.deps.settlement.recompute(tx, [...touched, ...(await ctx.deps.settlement.awaitingConfirmations(tx, chain))]);
    });
  }
}

describe('reconciliation report', () => {
  it('totals equal the sum of payments in a randomized scenario (property test)', async () => {
    const merchant = await ctx.deps.merchants.get(ctx.deps.sql, shop.merchant.id);
    await fc.assert(
      fc.asyncProperty(
        fc.array(fc.record({ price: fc.integer({ min: 100, max: 100_000 }), pays: fc.array(fc.integer({ min: 1_000, max: 400_000 }), { maxLength: 3 }), usdc: fc.integer({ min: 0, max: 50_000_000 }) }), { minLength: 1, maxLength: 4 }),
        async (specs) => {
          const from = await dbNow();
          let sats = 0n;
          let usdcSum = 0n;
          const ids: string[] = [];
          for (const s of specs) {
            const inv = await ctx.deps.invoices.create(merchant, { amount: (s.price / 100).toFixed(2), currency: 'USD', payment_methods: ['BTC', 'USDC-ethereum'] } as never);
            ids.push(inv.id);
            const btcAddr = inv.payment_methods.find((m) => m.method === 'BTC')!.address;
            const usdcAddr = inv.payment_methods.find((m) => m.method === 'USDC-ethereum')!.address.toLowerCase();
            const obs = s.pays.map((a) => ({ address: btcAddr, amount: BigInt(a) }));
            if (s.usdc > 0) obs.push({ address: usdcAddr, amount: BigInt(s.usdc), token: '0x5fbdb2315678afecb367f032d93f642f64180aa3', chain: 'ethereum' } as never);
            await mine(obs);
            sats += s.pays.reduce((a, b) => a + BigInt(b), 0n);
            usdcSum += BigInt(s.usdc);
          }
          const to = await dbNow();
          const res = await app.request(`/v1/reports/reconciliation?from=${from.toISOString()}&to=${to.toISOString()}`, req(shop.secret, 'GET'));
          expect(res.status).toBe(200);
          const r = await res.json();
          expect(r.invoices.map((i: { invoice_id: string }) => i.invoice_id)).toEqual(ids);
          const btc = r.totals.per_asset.find((a: { method: string }) => a.method === 'BTC');
          expect(parseAmount(btc?.received ?? '0', 8, { allowZero: true })).toBe(sats);
          const usdc = r.totals.per_asset.find((a: { method: string }) => a.method === 'USDC-ethereum');
          expect(parseAmount(usdc?.received ?? '0', 6, { allowZero: true })).toBe(usdcSum);
          // Per-invoice received equals the sum of its payment values; currency totals equal the invoice sums.
          let received = 0n;
          for (const inv of r.invoices) {
            const values = inv.payments.reduce((a: bigint, p: { value: string }) => a + parseAmount(p.value, 2, { allowZero: true }), 0n);
            expect(parseAmount(inv.received, 2, { allowZero: true })).toBe(values);
            received += values;
          }
          expect(parseAmount(r.totals.per_currency[0].received, 2, { allowZero: true })).toBe(received);
        },
      ),
      { numRuns: 8 },
    );
  });

  it('CSV: stable snake_case headers, one row per payment, RFC 4180 quoting; lists late payments as unmatched', async () => {
    const merchant = await ctx.deps.merchants.get(ctx.deps.sql, shop.merchant.id);
    const from = await dbNow();
    const inv = await ctx.deps.invoices.create(merchant, { amount: '10.00', currency: 'USD', order_id: 'He said "hi", then\nleft', payment_methods: ['BTC'] } as never);
    await ctx.deps.invoices.cancel(shop.merchant.id, inv.id);
    await mine([{ address: inv.payment_methods[0]!.address, amount: 20_000n }]);
    const to = await dbNow();
    const res = await app.request(`/v1/reports/reconciliation?from=${from.toISOString()}&to=${to.toISOString()}&format=csv`, req(shop.secret, 'GET'));
    expect(res.headers.get('content-type')).toContain('text/csv');
    const text = await res.text();
    const [header, ...rest] = text.split('\r\n');
    expect(header).toBe(CSV_COLUMNS.join(','));
    expect(rest.join('\r\n')).toContain('"He said ""hi"", then\nleft"');
    const json = await (await app.request(`/v1/reports/reconciliation?from=${from.toISOString()}&to=${to.toISOString()}`, req(shop.secret, 'GET'))).json();
    expect(json.unmatched).toEqual([expect.objectContaining({ invoice_id: inv.id, reason: 'late', amount: '0.00020000' })]);
  });

  it('csvField quotes what RFC 4180 requires and defuses spreadsheet formulas', () => {
    expect(csvField('plain')).toBe('plain');
    expect(csvField('a,b')).toBe('"a,b"');
    expect(csvField('=HYPERLINK("x")')).toBe(`"'=HYPERLINK(""x"")"`);
    expect(csvField('-0.50')).toBe("'-0.50"); // a text cell; number columns are written by csvCell(v, 'number') (test/api/csv-injection.test.ts)
    expect(csvField(null)).toBe('');
  });

  it('errors: a read-only invoices key gets 403; bad periods get 400', async () => {
    const k = await ctx.deps.apiKeys.create(ctx.deps.sql, { merchantId: shop.merchant.id, scopes: ['invoices:read'] });
    expect((await app.request('/v1/reports/reconciliation?from=2026-01-01&to=2026-02-01', req(k.secret, 'GET'))).status).toBe(403);
    const bad = await app.request('/v1/reports/reconciliation?from=2026-02-01&to=2026-01-01', req(shop.secret, 'GET'));
    expect(bad.status).toBe(400);
    expect((await bad.json()).error.param).toBe('to');
    expect((await app.request('/v1/reports/reconciliation?from=yesterday&to=2026-01-01', req(shop.secret, 'GET'))).status).toBe(400);
  });
});
