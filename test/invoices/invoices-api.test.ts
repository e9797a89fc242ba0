import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createApp } from '../../src/api/app.ts';
import { createMerchantWithKey, createTestContext, req, type TestContext } from '../support/db.ts';
import { createPayableMerchant, writeChainsFile } from '../support/merchant.ts';

let ctx: TestContext;
let app: ReturnType<typeof createApp>;
let shop: Awaited<ReturnType<typeof createPayableMerchant>>;

beforeAll(async () => {
  ctx = await createTestContext({ KASSA_CONFIG: writeChainsFile() });
  app = createApp(ctx.deps);
  shop = await createPayableMerchant(ctx.deps);
});
afterAll(async () => ctx?.close());

async function call(secret: string, method: string, path: string, body?: unknown, headers?: Record<string, string>) {
  const res = await app.request(path, req(secret, method, body, headers));
  return { status: res.status, json: await res.json(), res };
}

describe('POST /v1/invoices (happy)', () => {
  it('creates a USD invoice with one deposit address per method and locked rates', async () => {
    const { status, json } = await call(shop.secret, 'POST', '/v1/invoices', { amount: '25.00', currency: 'USD', order_id: 'A-1001', metadata: { cart: '42' } });
    expect(status).toBe(201);
    expect(json).toMatchObject({
      object: 'invoice', status: 'new', exception: null, amount: '25.00', currency: 'USD', amount_paid: '0.00', amount_due: '25.00',
      order_id: 'A-1001', metadata: { cart: '42' }, checkout_url: `http://kassa.test/pay/${json.id}`,
    });
    expect(json.id).toMatch(/^inv_[0-9A-Za-z]{22}$/);
    const byMethod = Object.fromEntries(json.payment_methods.map((m: { method: string }) => [m.method, m]));
    expect(Object.keys(byMethod).sort()).toEqual(['BTC', 'ETH-ethereum', 'USDC-ethereum', 'USDT-ethereum']);
    // 25 / 60000 = 0.000416666… → rounded UP to 0.00041667
    expect(byMethod.BTC).toMatchObject({ chain: 'bitcoin', network: 'regtest', asset: 'BTC', amount_due: '0.00041667', rate: '60000.00', confirmations_required: 1 });
    expect(byMethod.BTC.address).toMatch(/^bcrt1q/);
    expect(byMethod.BTC.payment_uri).toBe(`bitcoin:${byMethod.BTC.address}?amount=0.00041667`);
    expect(byMethod['USDC-ethereum']).toMatchObject({ chain_id: 31337, amount_due: '25.000000', token: '0x5fbdb2315678afecb367f032d93f642f64180aa3' });
    expect(byMethod['USDC-ethereum'].payment_uri).toBe(`ethereum:0x5fbdb2315678afecb367f032d93f642f64180aa3@31337/transfer?address=${byMethod['USDC-ethereum'].address}&uint256=25000000`);
    // 25 / 3000 ETH = 0.008333… → rounded up to 6 decimals: 0.008334 (8334000000000000 wei)
    expect(byMethod['ETH-ethereum'].amount_due).toBe('0.008334000000000000');
    expect(byMethod['ETH-ethereum'].payment_uri).toBe(`ethereum:${byMethod['ETH-ethereum'].address}@31337?value=8334000000000000`);
    // One forwarder per invoice and chain serves ETH and both tokens.
    expect(byMethod['ETH-ethereum'].address).toBe(byMethod['USDC-ethereum'].address);
    const events = await ctx.deps.sql`select type from events where invoice_id = ${json.id}`;
    expect(events.map((e) => e.type)).toEqual(['invoice.created']);
  });

  it('honours payment_methods, expires_in, speed_policy and crypto-priced invoices', async () => {
    const { status, json } = await call(shop.secret, 'POST', '/v1/invoices', {
      amount: '0.001', currency: 'BTC', payment_methods: ['BTC'], expires_in: 600, speed_policy: 'low',
    });
    expect(status).toBe(201);
    expect(json.payment_methods).toHaveLength(1);
    expect(json.payment_methods[0]).toMatchObject({ method: 'BTC', amount_due: '0.00100000', rate: '1', confirmations_required: 6 });
    const ttl = Date.parse(json.expires_at) - Date.parse(json.created_at);
    expect(ttl).toBeGreaterThan(599_000);
    expect(ttl).toBeLessThan(601_000);
    expect(Date.parse(json.monitoring_until) - Date.parse(json.expires_at)).toBe(86_400_000);
  });

  it('reads, lists with filters and pages, and replays with an Idempotency-Key', async () => {
    const a = await call(shop.secret, 'POST', '/v1/invoices', { amount: '1.00', currency: 'USD', order_id: 'LIST-1' }, { 'Idempotency-Key': 'inv-1' });
    const again = await call(shop.secret, 'POST', '/v1/invoices', { amount: '1.00', currency: 'USD', order_id: 'LIST-1' }, { 'Idempotency-Key': 'inv-1' });
    expect(again.json.id).toBe(a.json.id);
    const got = await call(shop.secret, 'GET', `/v1/invoices/${a.json.id}`);
    expect(got.json).toEqual(a.json);
    const byOrder = await call(shop.secret, 'GET', '/v1/invoices?order_id=LIST-1');
    expect(byOrder.json.data.map((i: { id: string }) => i.id)).toEqual([a.json.id]);
    const page = await call(shop.secret, 'GET', '/v1/invoices?limit=1');
    expect(page.json.has_more).toBe(true);
    const next = await call(shop.secret, 'GET', `/v1/invoices?limit=1&starting_after=${page.json.data[0].id}`);
    expect(next.json.data[0].id).not.toBe(page.json.data[0].id);
    const future = await call(shop.secret, 'GET', `/v1/invoices?created[gte]=${encodeURIComponent(new Date(Date.now() + 60_000).toISOString())}`);
    expect(future.json.data).toEqual([]);
  });

  it('cancels an unpaid invoice (then it is expired and cancelled); a repeat is a no-op', async () => {
    const inv = (await call(shop.secret, 'POST', '/v1/invoices', { amount: '5.00', currency: 'USD' })).json;
    const c1 = await call(shop.secret, 'POST', `/v1/invoices/${inv.id}/cancel`);
    expect(c1.status).toBe(200);
    expect(c1.json.status).toBe('expired');
    expect(c1.json.cancelled_at).not.toBeNull();
    const c2 = await call(shop.secret, 'POST', `/v1/invoices/${inv.id}/cancel`);
    expect(c2.status).toBe(200);
    expect(c2.json.cancelled_at).toBe(c1.json.cancelled_at);
  });

  it('marks an invoice settled by hand with who and why, and books the write-off', async () => {
    const inv = (await call(shop.secret, 'POST', '/v1/invoices', { amount: '5.00', currency: 'USD' })).json;
    const m = await call(shop.secret, 'POST', `/v1/invoices/${inv.id}/mark`, { status: 'settled', reason: 'paid by bank transfer' });
    expect(m.status).toBe(200);
    expect(m.json).toMatchObject({ status: 'settled', exception: 'marked', marked: { by: `api_key:${shop.key.id}`, reason: 'paid by bank transfer' } });
    const ledger = await ctx.deps.sql`select account, asset, amount from ledger_entries where invoice_id = ${inv.id} order by amount`;
    expect(ledger.map((l) => [l.account, l.asset, l.amount])).toEqual([
      [`merchant:${shop.merchant.id}:invoiced`, 'USD', -500n],
      [`merchant:${shop.merchant.id}:written_off`, 'USD', 500n],
    ]);
    const events = await ctx.deps.sql`select type from events where invoice_id = ${inv.id} order by seq`;
    expect(events.map((e) => e.type)).toEqual(['invoice.created', 'invoice.marked']);
  });

  it('a mark whose companion write fails (the dashboard audit row) changes nothing: one transaction', async () => {
    const inv = (await call(shop.secret, 'POST', '/v1/invoices', { amount: '5.00', currency: 'USD' })).json;
    await expect(
      ctx.deps.invoices.mark(shop.merchant.id, inv.id, 'settled', 'user:test', 'bank transfer', async (tx) => {
        await tx`insert into audit_log (merchant_id, actor, action) values (${shop.merchant.id}, 'user:test', 'invoice.marked')`;
        throw new Error('audit write failed');
      }),
    ).rejects.toThrow('audit write failed');
    expect((await call(shop.secret, 'GET', `/v1/invoices/${inv.id}`)).json).toMatchObject({ status: 'new', exception: null, marked: null });
    expect(await ctx.deps.sql`select 1 from ledger_entries where invoice_id = ${inv.id}`).toHaveLength(0);
    expect((await ctx.deps.sql`select type from events where invoice_id = ${inv.id}`).map((e) => e.type)).toEqual(['invoice.created']);
    expect(await ctx.deps.sql`select 1 from audit_log where merchant_id = ${shop.merchant.id}`).toHaveLength(0);
    // The same mark with a working companion write commits both.
    await ctx.deps.invoices.mark(shop.merchant.id, inv.id, 'settled', 'user:test', 'bank transfer', async (tx) => {
      await tx`insert into audit_log (merchant_id, actor, action) values (${shop.merchant.id}, 'user:test', 'invoice.marked')`;
    });
    expect((await call(shop.secret, 'GET', `/v1/invoices/${inv.id}`)).json.status).toBe('settled');
    expect(await ctx.deps.sql`select 1 from audit_log where merchant_id = ${shop.merchant.id}`).toHaveLength(1);
  });

  it('expires at read time when the deadline passed even before the job runs', async () => {
    const inv = (await call(shop.secret, 'POST', '/v1/invoices', { amount: '5.00', currency: 'USD' })).json;
    await ctx.deps.sql`update invoices set expires_at = now() - interval '1 second' where id = ${inv.id}`;
    const got = await call(shop.secret, 'GET', `/v1/invoices/${inv.id}`);
    expect(got.json.status).toBe('expired');
    expect(got.json.amount_due).toBe('0.00');
  });
});

describe('POST /v1/invoices (errors)', () => {
  it.each([
    [{ currency: 'USD' }, 'parameter_missing', 'amount'],
    [{ amount: 25, currency: 'USD' }, 'amount_invalid', 'amount'],
    [{ amount: '25.001', currency: 'USD' }, 'amount_invalid', 'amount'],
    [{ amount: '-5', currency: 'USD' }, 'amount_invalid', 'amount'],
    [{ amount: '0', currency: 'USD' }, 'amount_invalid', 'amount'],
    [{ amount: '1e3', currency: 'USD' }, 'amount_invalid', 'amount'],
    [{ amount: '1.5', currency: 'JPY' }, 'amount_invalid', 'amount'],
    [{ amount: '5', currency: 'XYZ' }, 'currency_unsupported', 'currency'],
    [{ amount: '5', currency: 'USD', payment_methods: ['DOGE'] }, 'payment_method_not_enabled', 'payment_methods.0'],
    [{ amount: '5', currency: 'USD', expires_in: 10 }, 'parameter_invalid', 'expires_in'],
    [{ amount: '5', currency: 'USD', buyer_email: 'not-an-email' }, 'parameter_invalid', 'buyer_email'],
    [{ amount: '5', currency: 'USD', redirect_url: 'javascript:alert(1)' }, 'parameter_invalid', 'redirect_url'],
    [{ amount: '5', currency: 'USD', locale: 'fr' }, 'parameter_invalid', 'locale'],
    [{ amount: '5', currency: 'USD', colour: 'red' }, 'parameter_unknown', 'colour'],
    [{ amount: '5', currency: 'USD', metadata: { k: 1 } }, 'parameter_invalid', 'metadata.k'],
    [{ amount: '5', currency: 'USD', metadata: Object.fromEntries(Array.from({ length: 51 }, (_, i) => [`k${i}`, 'v'])) }, 'parameter_invalid', 'metadata'],
    [{ amount: '5', currency: 'USD', metadata: { ['k'.repeat(41)]: 'v' } }, 'parameter_invalid', `metadata.${'k'.repeat(41)}`],
    [{ amount: '0.10', currency: 'USD', payment_methods: ['BTC'] }, 'amount_too_small', 'amount'],
  ])('%j → 400 %s (%s)', async (body, code, param) => {
    const before = await ctx.deps.sql`select count(*)::int as n from invoices`;
    const { status, json } = await call(shop.secret, 'POST', '/v1/invoices', body);
    expect(status).toBe(400);
    expect(json.error).toMatchObject({ code, param });
    const after = await ctx.deps.sql`select count(*)::int as n from invoices`;
    expect(after[0]!.n).toBe(before[0]!.n);
  });

  it('a merchant with no payment method → 422 no_payment_methods', async () => {
    const bare = await createMerchantWithKey(ctx.deps);
    const { status, json } = await call(bare.secret, 'POST', '/v1/invoices', { amount: '5', currency: 'USD' });
    expect(status).toBe(422);
    expect(json.error.code).toBe('no_payment_methods');
  });

  it('no rate → 503 rate_unavailable and nothing is written', async () => {
    const { status, json } = await call(shop.secret, 'POST', '/v1/invoices', { amount: '5', currency: 'GBP' });
    expect(status).toBe(503);
    expect(json.error).toMatchObject({ type: 'api_error', code: 'rate_unavailable' });
  });

  it('cannot cancel a paid invoice; unknown ids → 404', async () => {
    const inv = (await call(shop.secret, 'POST', '/v1/invoices', { amount: '5.00', currency: 'USD' })).json;
    await call(shop.secret, 'POST', `/v1/invoices/${inv.id}/mark`, { status: 'settled' });
    const c = await call(shop.secret, 'POST', `/v1/invoices/${inv.id}/cancel`);
    expect(c.status).toBe(409);
    expect(c.json.error.code).toBe('invoice_not_cancellable');
    expect((await call(shop.secret, 'GET', '/v1/invoices/inv_doesnotexist')).status).toBe(404);
  });

  it('a read-only key cannot create, cancel or mark', async () => {
    const ro = await ctx.deps.apiKeys.create(ctx.deps.sql, { merchantId: shop.merchant.id, scopes: ['invoices:read'] });
    expect((await call(ro.secret, 'POST', '/v1/invoices', { amount: '5', currency: 'USD' })).status).toBe(403);
    const inv = (await call(shop.secret, 'POST', '/v1/invoices', { amount: '5.00', currency: 'USD' })).json;
    expect((await call(ro.secret, 'POST', `/v1/invoices/${inv.id}/cancel`)).status).toBe(403);
    expect((await call(ro.secret, 'POST', `/v1/invoices/${inv.id}/mark`, { status: 'invalid' })).status).toBe(403);
    expect((await call(ro.secret, 'GET', `/v1/invoices/${inv.id}`)).status).toBe(200);
  });
});

describe('concurrency and isolation', () => {
  it('50 concurrent POSTs with one Idempotency-Key create one invoice with one address', async () => {
    const results = await Promise.all(Array.from({ length: 50 }, () =>
      call(shop.secret, 'POST', '/v1/invoices', { amount: '7.00', currency: 'USD', order_id: 'IDEM-50' }, { 'Idempotency-Key': 'idem-50' })));
    expect(results.every((r) => r.status === 201)).toBe(true);
    expect(new Set(results.map((r) => r.json.id)).size).toBe(1);
    const rows = await ctx.deps.sql`select id from invoices where order_id = 'IDEM-50'`;
    expect(rows).toHaveLength(1);
    const addrs = await ctx.deps.sql`select count(*)::int as n from deposit_addresses where invoice_id = ${rows[0]!.id}`;
    expect(addrs[0]!.n).toBe(2); // one Bitcoin address + one forwarder on ethereum
  });

  it('200 concurrent invoices never share an address', async () => {
    const results = await Promise.all(Array.from({ length: 200 }, (_, i) =>
      call(shop.secret, 'POST', '/v1/invoices', { amount: '3.00', currency: 'USD', order_id: `C-${i}` })));
    expect(results.map((r) => r.status).filter((s) => s !== 201)).toEqual([]);
    const all = results.flatMap((r) => r.json.payment_methods.filter((m: { method: string }) => m.method === 'BTC' || m.method === 'ETH-ethereum').map((m: { address: string }) => m.address));
    expect(new Set(all).size).toBe(400);
    const dup = await ctx.deps.sql`select address from deposit_addresses group by chain, address having count(*) > 1`;
    expect(dup).toEqual([]);
  });

  it('merchant B can never read, list, cancel or mark merchant A\'s invoices', async () => {
    const b = await createPayableMerchant(ctx.deps, { name: 'B', seedByte: 9 });
    const inv = (await call(shop.secret, 'POST', '/v1/invoices', { amount: '5.00', currency: 'USD', order_id: 'SECRET-A' })).json;
    expect((await call(b.secret, 'GET', `/v1/invoices/${inv.id}`)).status).toBe(404);
    expect((await call(b.secret, 'GET', `/v1/invoices/${inv.id}/payments`)).status).toBe(404);
    expect((await call(b.secret, 'POST', `/v1/invoices/${inv.id}/cancel`)).status).toBe(404);
    expect((await call(b.secret, 'POST', `/v1/invoices/${inv.id}/mark`, { status: 'settled' })).status).toBe(404);
    expect((await call(b.secret, 'GET', '/v1/invoices?order_id=SECRET-A')).json.data).toEqual([]);
    expect((await call(b.secret, 'GET', `/v1/invoices?starting_after=${inv.id}`)).status).toBe(400);
    expect((await call(shop.secret, 'GET', `/v1/invoices/${inv.id}`)).json.status).toBe('new');
  });
});
