/**
 * GET /v1/payments and /v1/invoices/{id}/payments page by payment id (`starting_after`,
 * `ending_before`): the cursor is the payment's list position, looked up for the caller's merchant
 * only (src/invoices/payments.ts paymentSeq).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createApp } from '../../src/api/app.ts';
import { createTestContext, req, type TestContext } from '../support/db.ts';
import { createPayableMerchant, writeChainsFile } from '../support/merchant.ts';

let ctx: TestContext;
let app: ReturnType<typeof createApp>;
let shop: Awaited<ReturnType<typeof createPayableMerchant>>;
let other: Awaited<ReturnType<typeof createPayableMerchant>>;

beforeAll(async () => {
  ctx = await createTestContext({ KASSA_CONFIG: writeChainsFile() });
  app = createApp(ctx.deps);
  shop = await createPayableMerchant(ctx.deps);
  other = await createPayableMerchant(ctx.deps, { name: 'Other shop', seedByte: 0x5a });
});
afterAll(async () => ctx?.close());

async function call(secret: string, path: string, body?: unknown) {
  const res = await app.request(path, req(secret, body === undefined ? 'GET' : 'POST', body));
  return { status: res.status, json: await res.json() };
}

/** One block on the Bitcoin chain paying `amounts` (sats) to `address`, one output each. */
let height = 0;
async function pay(address: string, amounts: bigint[]) {
  height += 1;
  const block = { hash: `c${height}`.padEnd(64, '0'), height, time: new Date() };
  await ctx.deps.sql.begin(async (tx) => {
    const touched = await ctx.deps.settlement.recordObservations(tx, 'bitcoin', amounts.map((amount, i) => ({
      txid: height.toString(16).padStart(64, '0'), outputIndex: i, address, token: null, amount, block,
    })));
    await ctx.deps.settlement.advanceCursor(tx, 'bitcoin', { ...block, prevHash: `c${height - 1}`.padEnd(64, '0') }, 100);
    await ctx.deps.settlement.recompute(tx, touched);
  });
}

const btcAddress = (inv: { payment_methods: { method: string; address: string }[] }) => inv.payment_methods.find((m) => m.method === 'BTC')!.address;

describe('payment lists page by payment id', () => {
  it('starting_after and ending_before walk the list; another merchant\'s payment id is not a cursor', async () => {
    const created = await call(shop.secret, '/v1/invoices', { amount: '100.00', currency: 'USD', payment_methods: ['BTC'] });
    expect(created.status, JSON.stringify(created.json)).toBe(201);
    const inv = created.json;
    await pay(btcAddress(inv), [1_000n, 2_000n, 3_000n]);
    const theirsRes = await call(other.secret, '/v1/invoices', { amount: '100.00', currency: 'USD', payment_methods: ['BTC'] });
    expect(theirsRes.status, JSON.stringify(theirsRes.json)).toBe(201);
    const theirs = theirsRes.json;
    await pay(btcAddress(theirs), [4_000n]);

    const all = await call(shop.secret, `/v1/invoices/${inv.id}/payments`);
    expect(all.status).toBe(200);
    const ids = all.json.data.map((p: { id: string }) => p.id);
    expect(all.json.data.map((p: { amount: string }) => p.amount)).toEqual(['0.00003000', '0.00002000', '0.00001000']); // newest first

    const after = await call(shop.secret, `/v1/payments?limit=1&starting_after=${ids[0]}`);
    expect(after.status).toBe(200);
    expect(after.json.data.map((p: { id: string }) => p.id)).toEqual([ids[1]]);
    expect(after.json.has_more).toBe(true);

    const before = await call(shop.secret, `/v1/invoices/${inv.id}/payments?ending_before=${ids[2]}`);
    expect(before.json.data.map((p: { id: string }) => p.id)).toEqual([ids[0], ids[1]]);

    const [their] = (await call(other.secret, '/v1/payments')).json.data;
    expect(their.invoice_id).toBe(theirs.id);
    const foreign = await call(shop.secret, `/v1/payments?starting_after=${their.id}`);
    expect(foreign.status).toBe(400);
    expect(foreign.json.error.param).toBe('starting_after');
  });
});
