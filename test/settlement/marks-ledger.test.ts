/**
 * Issue 14, defect 5: repeated manual marks never double-book the ledger. After any sequence of
 * marks the invoice's mark postings are exactly what its final state implies
 * (src/settlement/ledger.ts `syncMarkPostings`).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createApp } from '../../src/api/app.ts';
import { createTestContext, req, type TestContext } from '../support/db.ts';
import { createPayableMerchant, writeChainsFile } from '../support/merchant.ts';
import { expectLedgerBalancedIn } from '../support/ledger.ts';

let ctx: TestContext;
let app: ReturnType<typeof createApp>;
let shop: Awaited<ReturnType<typeof createPayableMerchant>>;
let tip = 900;
let txn = 0;

beforeAll(async () => {
  ctx = await createTestContext({ KASSA_CONFIG: writeChainsFile() });
  app = createApp(ctx.deps);
  shop = await createPayableMerchant(ctx.deps);
});
afterAll(async () => ctx?.close());

async function call(method: string, path: string, body?: unknown) {
  const res = await app.request(path, req(shop.secret, method, body));
  return { status: res.status, json: await res.json() };
}

/** The invoice's balances on the mark accounts, in its currency (base units). */
async function markBalances(invoiceId: string, currency: string) {
  const rows = await ctx.deps.sql<{ account: string; s: bigint }[]>`
    select account, sum(amount) as s from ledger_entries where invoice_id = ${invoiceId} and asset = ${currency} group by account`;
  const by = new Map(rows.map((r) => [r.account.split(':').pop()!, BigInt(r.s)]));
  return { written_off: by.get('written_off') ?? 0n, refund_due: by.get('refund_due') ?? 0n, invoiced: by.get('invoiced') ?? 0n };
}

async function pay(address: string, sats: bigint): Promise<void> {
  const h = ++tip;
  const block = { hash: `mk-${h}`.padEnd(64, '0'), height: h, time: new Date() };
  await ctx.deps.sql.begin(async (tx) => {
    const touched = await ctx.deps.settlement.recordObservations(tx, 'bitcoin', [
      { txid: (++txn).toString(16).padStart(64, 'c'), outputIndex: 0, address, token: null, amount: sats, block },
    ]);
    await ctx.deps.settlement.advanceCursor(tx, 'bitcoin', { height: h, hash: block.hash, prevHash: `mk-${h - 1}`.padEnd(64, '0'), time: block.time }, 100);
    await ctx.deps.settlement.recompute(tx, touched);
  });
}

describe('manual marks in the ledger', () => {
  it('settled → invalid → settled → invalid → settled on an unpaid 10.00 EUR invoice books 10.00 written off once', async () => {
    const inv = (await call('POST', '/v1/invoices', { amount: '10.00', currency: 'EUR', payment_methods: ['BTC'] })).json;
    const settled = { written_off: 1000n, refund_due: 0n, invoiced: -1000n };
    const invalid = { written_off: 0n, refund_due: 0n, invoiced: 0n }; // nothing received: nothing owed back
    for (const [status, want] of [['settled', settled], ['invalid', invalid], ['settled', settled], ['invalid', invalid], ['settled', settled]] as const) {
      const m = await call('POST', `/v1/invoices/${inv.id}/mark`, { status, reason: `to ${status}` });
      expect(m.status).toBe(200);
      expect(m.json).toMatchObject({ status, exception: 'marked' });
      expect(await markBalances(inv.id, 'EUR')).toEqual(want);
    }
    await expectLedgerBalancedIn(ctx.deps.sql);
  });

  it('a half-paid invoice: settled writes off the rest, invalid owes back what arrived, any sequence ends as the last mark implies', async () => {
    const inv = (await call('POST', '/v1/invoices', { amount: '30.00', currency: 'USD', payment_methods: ['BTC'] })).json;
    await pay(inv.payment_methods[0].address, 25_000n); // 15.00 USD
    const settled = { written_off: 1500n, refund_due: 0n, invoiced: -1500n };
    const invalid = { written_off: 0n, refund_due: 1500n, invoiced: -1500n };
    for (const [status, want] of [['invalid', invalid], ['settled', settled], ['settled', settled], ['invalid', invalid], ['settled', settled], ['invalid', invalid]] as const) {
      expect((await call('POST', `/v1/invoices/${inv.id}/mark`, { status })).status).toBe(200);
      expect(await markBalances(inv.id, 'USD')).toEqual(want);
    }
    await expectLedgerBalancedIn(ctx.deps.sql);
  });

  it('money that arrives after a mark changes what it implies: the postings follow', async () => {
    const inv = (await call('POST', '/v1/invoices', { amount: '30.00', currency: 'USD', payment_methods: ['BTC'] })).json;
    await call('POST', `/v1/invoices/${inv.id}/mark`, { status: 'settled', reason: 'trusted customer' });
    expect(await markBalances(inv.id, 'USD')).toEqual({ written_off: 3000n, refund_due: 0n, invoiced: -3000n });
    await pay(inv.payment_methods[0].address, 50_000n); // the full 30.00 arrives after all
    expect((await call('GET', `/v1/invoices/${inv.id}`)).json).toMatchObject({ status: 'settled', exception: 'marked', amount_paid: '30.00' });
    expect(await markBalances(inv.id, 'USD')).toEqual({ written_off: 0n, refund_due: 0n, invoiced: 0n });
    await expectLedgerBalancedIn(ctx.deps.sql);
  });
});
