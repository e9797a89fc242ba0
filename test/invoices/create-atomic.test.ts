/**
 * POST /v1/invoices writes the invoice, its deposit addresses, payment methods, the outbox event
 * and the claimed Idempotency-Key with its stored response in one statement (src/invoices/service.ts
 * createInvoice, src/api/middleware/idempotency.ts atomicIdempotency). These tests pin the behaviour
 * that used to come from the separate claim/store statements, and the cases that need more than the
 * one statement: an empty Bitcoin pool, a key that is taken.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createApp } from '../../src/api/app.ts';
import { createTestContext, req, type TestContext } from '../support/db.ts';
import { createPayableMerchant, writeChainsFile } from '../support/merchant.ts';

let ctx: TestContext;
let app: ReturnType<typeof createApp>;
let shop: Awaited<ReturnType<typeof createPayableMerchant>>;

beforeAll(async () => {
  ctx = await createTestContext({ KASSA_CONFIG: writeChainsFile() });
  app = createApp(ctx.deps);
  shop = await createPayableMerchant(ctx.deps);
  // Plenty of pre-derived Bitcoin addresses, so the atomic path is taken (tests that need an empty pool empty it).
  const { refillAddressPools } = await import('../../src/chains/bitcoin/address-pool.ts');
  await refillAddressPools(ctx.deps.sql, { minFree: 200, batch: 200 });
});
afterAll(async () => ctx?.close());

async function post(body: unknown, headers: Record<string, string> = {}, secret = shop.secret) {
  const res = await app.request('/v1/invoices', req(secret, 'POST', body, headers));
  return { status: res.status, text: await res.text(), res };
}

const count = async (table: 'invoices' | 'events' | 'deposit_addresses' | 'invoice_payment_methods', merchantId = shop.merchant.id) =>
  (await ctx.deps.sql.unsafe<{ n: number }[]>(
    table === 'invoice_payment_methods'
      ? 'select count(*)::int as n from invoice_payment_methods m join invoices i on i.id = m.invoice_id where i.merchant_id = $1'
      : `select count(*)::int as n from ${table} where merchant_id = $1`,
    [merchantId],
  ))[0]!.n;
const allocated = async () => (await ctx.deps.sql<{ n: number }[]>`select count(*)::int as n from bitcoin_address_pool where allocated_at is not null`)[0]!.n;
const idemRow = async (key: string) =>
  (await ctx.deps.sql<{ status_code: number | null; response_body: string | null; response_plain: string | null }[]>`
    select status_code, response_body, response_plain from idempotency_keys where merchant_id = ${shop.merchant.id} and key = ${key}`)[0];

describe('POST /v1/invoices: one statement', () => {
  it('answers exactly what it stored: the outbox event, the stored response and GET agree', async () => {
    const { status, text, res } = await post({ amount: '12.34', currency: 'USD', order_id: 'ATOM-1', metadata: { a: 'b' }, payment_methods: ['BTC', 'USDC-ethereum'] }, { 'Idempotency-Key': 'atom-1' });
    expect(status).toBe(201);
    expect(res.headers.get('content-type')).toMatch(/^application\/json/);
    const json = JSON.parse(text);
    expect(json.created_at).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/);
    expect(Date.parse(json.expires_at) - Date.parse(json.created_at)).toBe(900_000);
    const btc = json.payment_methods.find((m: { method: string }) => m.method === 'BTC');
    expect(btc.address).toMatch(/^bcrt1q/);
    expect(btc.payment_uri).toBe(`bitcoin:${btc.address}?amount=0.00020567`);
    expect(text).not.toMatch(/kassa[0-9A-Za-z]{24}[ACEM]/); // no placeholder left

    const [event] = await ctx.deps.sql<{ payload: { object: unknown } }[]>`select payload from events where invoice_id = ${json.id} and type = 'invoice.created'`;
    expect(event!.payload.object).toEqual(json);
    const row = await idemRow('atom-1');
    expect(row).toMatchObject({ status_code: 201, response_body: null, response_plain: text });
    const got = await app.request(`/v1/invoices/${json.id}`, req(shop.secret, 'GET'));
    expect(await got.json()).toEqual(json);
    const addresses = await ctx.deps.sql<{ chain: string; address: string; script: Buffer | null; derivation: Record<string, unknown> }[]>`
      select chain, address, script, derivation from deposit_addresses where invoice_id = ${json.id} order by chain`;
    expect(addresses.map((a) => [a.chain, a.address])).toEqual([
      ['bitcoin', btc.address],
      ['ethereum', json.payment_methods.find((m: { method: string }) => m.method === 'USDC-ethereum').address.toLowerCase()],
    ]);
    expect(addresses[0]!.script).toBeInstanceOf(Buffer);
    expect(addresses[0]!.derivation).toMatchObject({ source_id: expect.any(Number), index: expect.any(Number), descriptor: expect.stringContaining('wpkh(') });
    // The forwarder address is the one the standard EVM provider computes for this invoice.
    const { evmDepositAddress } = await import('../../src/chains/evm/payment-method.ts');
    const cfg = ctx.config.chains.ethereum!;
    if (cfg.type !== 'evm') throw new Error('ethereum is an EVM chain');
    const expected = await evmDepositAddress(ctx.deps.sql, { merchantId: shop.merchant.id, chain: 'ethereum', invoiceId: json.id, cfg });
    expect(json.payment_methods.find((m: { method: string }) => m.method === 'USDC-ethereum').address).toBe(expected!.address);
    expect(addresses[1]!.derivation).toEqual(expected!.derivation);
  });

  it('replays the stored response byte for byte for the same key and body, writing nothing', async () => {
    const body = { amount: '5.00', currency: 'USD', order_id: 'ATOM-2' };
    const first = await post(body, { 'Idempotency-Key': 'atom-2' });
    const before = { invoices: await count('invoices'), events: await count('events'), allocated: await allocated() };
    const again = await post(body, { 'Idempotency-Key': 'atom-2' });
    expect(again.status).toBe(201);
    expect(again.res.headers.get('idempotent-replayed')).toBe('true');
    expect(again.text).toBe(first.text);
    expect({ invoices: await count('invoices'), events: await count('events'), allocated: await allocated() }).toEqual(before);
  });

  it('the same key with a different body → 409 idempotency_key_reused, valid or not', async () => {
    await post({ amount: '5.00', currency: 'USD' }, { 'Idempotency-Key': 'atom-3' });
    const before = await count('invoices');
    for (const body of [{ amount: '6.00', currency: 'USD' }, { amount: 'nope', currency: 'USD' }]) {
      const res = await post(body, { 'Idempotency-Key': 'atom-3' });
      expect(res.status).toBe(409);
      expect(JSON.parse(res.text).error).toMatchObject({ type: 'idempotency_error', code: 'idempotency_key_reused', param: 'Idempotency-Key' });
    }
    expect(await count('invoices')).toBe(before);
  });

  it('stores a 4xx answer for its key: the retry gets it back, a different body gets 409', async () => {
    const bad = await post({ amount: '5.00', currency: 'USD', payment_methods: ['DOGE'] }, { 'Idempotency-Key': 'atom-4' });
    expect(bad.status).toBe(400);
    const again = await post({ amount: '5.00', currency: 'USD', payment_methods: ['DOGE'] }, { 'Idempotency-Key': 'atom-4' });
    expect(again.status).toBe(400);
    expect(again.res.headers.get('idempotent-replayed')).toBe('true');
    expect(JSON.parse(again.text).error.code).toBe(JSON.parse(bad.text).error.code);
    const other = await post({ amount: '5.00', currency: 'USD' }, { 'Idempotency-Key': 'atom-4' });
    expect(other.status).toBe(409);
    // A validation error (before the handler) is stored the same way.
    const invalid = await post({ amount: '5.00', currency: 'USD', bogus: 1 }, { 'Idempotency-Key': 'atom-4b' });
    expect(invalid.status).toBe(400);
    expect((await idemRow('atom-4b'))?.status_code).toBe(400);
  });

  it('concurrent requests with one key create one invoice, one event, one Bitcoin address and one stored response', async () => {
    const before = { invoices: await count('invoices'), events: await count('events'), allocated: await allocated() };
    const results = await Promise.all(Array.from({ length: 30 }, () => post({ amount: '7.00', currency: 'USD', order_id: 'ATOM-5' }, { 'Idempotency-Key': 'atom-5' })));
    expect(results.map((r) => r.status)).toEqual(results.map(() => 201));
    expect(new Set(results.map((r) => r.text)).size).toBe(1);
    expect(results.filter((r) => r.res.headers.get('idempotent-replayed') === null)).toHaveLength(1);
    expect(await count('invoices')).toBe(before.invoices + 1);
    expect(await count('events')).toBe(before.events + 1);
    expect(await allocated()).toBe(before.allocated + 1);
    expect((await idemRow('atom-5'))?.response_plain).toBe(results[0]!.text);
  });

  it('without a key: one invoice per request, each with its own addresses', async () => {
    const before = await count('invoices');
    const results = await Promise.all(Array.from({ length: 20 }, (_, i) => post({ amount: '3.00', currency: 'USD', order_id: `ATOM-6-${i}` })));
    expect(results.map((r) => r.status)).toEqual(results.map(() => 201));
    expect(await count('invoices')).toBe(before + 20);
    const btc = results.map((r) => JSON.parse(r.text).payment_methods.find((m: { method: string }) => m.method === 'BTC').address);
    expect(new Set(btc).size).toBe(20);
  });

  it('a key older than 24 h is forgotten, but the invoice it created stays the answer for it', async () => {
    const first = JSON.parse((await post({ amount: '8.00', currency: 'USD' }, { 'Idempotency-Key': 'atom-7' })).text);
    await ctx.deps.sql`update idempotency_keys set created_at = now() - interval '25 hours' where key = 'atom-7'`;
    const before = await count('invoices');
    const res = await post({ amount: '9.00', currency: 'USD' }, { 'Idempotency-Key': 'atom-7' });
    expect(res.status).toBe(201);
    expect(res.res.headers.get('idempotent-replayed')).toBeNull();
    expect(JSON.parse(res.text).id).toBe(first.id); // as before: the invoice row's own key still dedupes
    expect(await count('invoices')).toBe(before);
    expect((await idemRow('atom-7'))?.status_code).toBe(201);
  });

  it('a failure inside the statement writes nothing (no invoice, event, address or key)', async () => {
    // Make the next pool address collide with an existing deposit address: the statement fails.
    const [next] = await ctx.deps.sql<{ address: string }[]>`
      select p.address from bitcoin_address_pool p join bitcoin_key_sources s on s.id = p.source_id
      where s.merchant_id = ${shop.merchant.id} and s.active and p.allocated_at is null order by p.derivation_index limit 1`;
    const [some] = await ctx.deps.sql<{ id: string }[]>`select id from invoices where merchant_id = ${shop.merchant.id} limit 1`;
    await ctx.deps.sql`insert into deposit_addresses (chain, address, invoice_id, merchant_id) values ('bitcoin', ${next!.address}, ${some!.id}, ${shop.merchant.id})`;
    try {
      const before = { invoices: await count('invoices'), events: await count('events'), addresses: await count('deposit_addresses'), methods: await count('invoice_payment_methods'), allocated: await allocated() };
      for (const headers of [{}, { 'Idempotency-Key': 'atom-8' }] as Record<string, string>[]) {
        const res = await post({ amount: '4.00', currency: 'USD', order_id: 'ATOM-8' }, headers);
        // a deposit address collision is a 409 with its own code, never a 500 (issue 14 defect 6)
        expect(res.status).toBe(409);
        expect(JSON.parse(res.text).error.code).toBe('deposit_address_in_use');
      }
      expect({ invoices: await count('invoices'), events: await count('events'), addresses: await count('deposit_addresses'), methods: await count('invoice_payment_methods'), allocated: await allocated() }).toEqual(before);
      expect((await idemRow('atom-8'))?.status_code).toBe(409); // a 4xx answer is stored for its key, like any other
    } finally {
      await ctx.deps.sql`delete from deposit_addresses where address = ${next!.address} and invoice_id = ${some!.id}`;
    }
    const retry = await post({ amount: '4.00', currency: 'USD', order_id: 'ATOM-8' }, { 'Idempotency-Key': 'atom-8b' });
    expect(retry.status).toBe(201);
  });

  it('with an empty Bitcoin pool the address is derived inline and the same statement writes the invoice and its key', async () => {
    const lone = await createPayableMerchant(ctx.deps, { name: 'Empty pool', seedByte: 11 });
    await ctx.deps.sql`
      update bitcoin_address_pool set allocated_at = now()
      where source_id = (select id from bitcoin_key_sources where merchant_id = ${lone.merchant.id} and active) and allocated_at is null`;
    const body = { amount: '10.00', currency: 'USD', order_id: 'POOL-EMPTY' };
    const first = await post(body, { 'Idempotency-Key': 'pool-empty' }, lone.secret);
    expect(first.status).toBe(201);
    const json = JSON.parse(first.text);
    expect(json.payment_methods.find((m: { method: string }) => m.method === 'BTC').address).toMatch(/^bcrt1q/);
    const [row] = await ctx.deps.sql<{ response_body: string | null; response_plain: string | null }[]>`
      select response_body, response_plain from idempotency_keys where merchant_id = ${lone.merchant.id} and key = 'pool-empty'`;
    // One path: the key was claimed and its answer stored by the statement that wrote the invoice.
    expect(row).toMatchObject({ response_body: null, response_plain: first.text });
    const [event] = await ctx.deps.sql<{ payload: { object: unknown } }[]>`select payload from events where invoice_id = ${json.id} and type = 'invoice.created'`;
    expect(event!.payload.object).toEqual(json);
    const [da] = await ctx.deps.sql<{ address: string; script: Buffer | null; derivation: Record<string, unknown> }[]>`
      select address, script, derivation from deposit_addresses where invoice_id = ${json.id} and chain = 'bitcoin'`;
    expect(da!.address).toBe(json.payment_methods.find((m: { method: string }) => m.method === 'BTC').address);
    expect(da!.script).toBeInstanceOf(Buffer);
    expect(da!.derivation).toMatchObject({ source_id: expect.any(Number), index: expect.any(Number), descriptor: expect.stringContaining('wpkh(') });
    const again = await post(body, { 'Idempotency-Key': 'pool-empty' }, lone.secret);
    expect(again.res.headers.get('idempotent-replayed')).toBe('true');
    expect(JSON.parse(again.text)).toEqual(json);
    expect(await count('invoices', lone.merchant.id)).toBe(1);
    expect(await count('events', lone.merchant.id)).toBe(1);
    // Without a key too.
    expect((await post({ amount: '10.00', currency: 'USD' }, {}, lone.secret)).status).toBe(201);
  });

  it('uses the payment settings read with the API key: a treasury change applies to the next invoice', async () => {
    const { setEvmPaymentMethod } = await import('../../src/chains/evm/payment-method.ts');
    const a = JSON.parse((await post({ amount: '2.00', currency: 'USD', payment_methods: ['ETH-ethereum'] })).text);
    await setEvmPaymentMethod(ctx.deps.sql, shop.merchant.id, 'ethereum', { treasury: '0x3C44CdDdB6a900fa2b585dd299e03d12FA4293BC', assets: ['ETH'] });
    try {
      const b = await post({ amount: '2.00', currency: 'USD' });
      const json = JSON.parse(b.text);
      expect(json.payment_methods.map((m: { method: string }) => m.method)).toEqual(['BTC', 'ETH-ethereum']);
      const [d] = await ctx.deps.sql<{ derivation: { treasury: string } }[]>`select derivation from deposit_addresses where invoice_id = ${json.id} and chain = 'ethereum'`;
      expect(d!.derivation.treasury).toBe('0x3C44CdDdB6a900fa2b585dd299e03d12FA4293BC');
      expect(json.payment_methods[1].address).not.toBe(a.payment_methods[0].address);
      const usdc = await post({ amount: '2.00', currency: 'USD', payment_methods: ['USDC-ethereum'] });
      expect(usdc.status).toBe(400);
      expect(JSON.parse(usdc.text).error.code).toBe('payment_method_not_enabled');
    } finally {
      await setEvmPaymentMethod(ctx.deps.sql, shop.merchant.id, 'ethereum', { treasury: '0x70997970C51812dc3A010C7d01b50e0d17dc79C8', assets: ['ETH', 'USDC', 'USDT'] });
    }
  });

  it('records each deposit address\'s chain cursor and transaction id, with or without the statement filling them in', async () => {
    await ctx.deps.sql`insert into chain_state (chain, tip_height, tip_hash) values ('bitcoin', 1234, 'aa'), ('ethereum', 5678, 'bb')
                       on conflict (chain) do update set tip_height = excluded.tip_height`;
    try {
      const { status, text } = await post({ amount: '5.00', currency: 'USD', payment_methods: ['BTC', 'USDC-ethereum'] });
      expect(status).toBe(201);
      const { id } = JSON.parse(text);
      const rows = await ctx.deps.sql<{ chain: string; chain_height: bigint | null; same_xact: boolean }[]>`
        select chain, chain_height, xid(change_xid) = (select xmin from invoices where id = ${id}) as same_xact
        from deposit_addresses where invoice_id = ${id} order by chain`;
      expect(rows.map((r) => [r.chain, Number(r.chain_height), r.same_xact])).toEqual([['bitcoin', 1234, true], ['ethereum', 5678, true]]);
      // Another writer that leaves chain_height out, or copies an old change_xid, still gets both from the triggers.
      const [old] = await ctx.deps.sql<{ change_xid: string }[]>`select change_xid::text from deposit_addresses where invoice_id = ${id} limit 1`;
      const [row] = await ctx.deps.sql<{ chain_height: bigint | null; restamped: boolean }[]>`
        insert into deposit_addresses (chain, address, invoice_id, merchant_id, change_xid)
        values ('ethereum', ${'0x' + 'cd'.repeat(20)}, ${id}, ${shop.merchant.id}, ${old!.change_xid}::xid8)
        returning chain_height, change_xid = pg_current_xact_id() as restamped`;
      expect(Number(row!.chain_height)).toBe(5678);
      expect(row!.restamped).toBe(true);
    } finally {
      await ctx.deps.sql`delete from chain_state where chain in ('bitcoin', 'ethereum')`;
    }
  });
});
