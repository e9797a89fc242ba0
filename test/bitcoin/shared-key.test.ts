/**
 * Issue 14 defect 6: two merchants with the same Bitcoin key were handed the same deposit
 * addresses, and the second invoice failed with HTTP 500 (deposit_addresses_pkey).
 * - PUT /v1/merchant/payment_methods/bitcoin refuses a key another merchant uses (409
 *   bitcoin_key_in_use, param names the field), in any notation of that key.
 * - Invoice creation never answers 500 on a deposit address collision left by older data: 409
 *   deposit_address_in_use, nothing written, whether the address comes from the pool or, with an empty pool, is derived inline.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createApp } from '../../src/api/app.ts';
import { addDescriptorChecksum } from '../../src/chains/bitcoin/descriptor.ts';
import { base58CheckDecode, base58CheckEncode } from '../../src/chains/bitcoin/base58.ts';
import { createMerchantWithKey, createTestContext, req, type TestContext } from '../support/db.ts';
import { randomBytes } from 'node:crypto';
import { bip32 } from '../../src/chains/bitcoin/ecc.ts';
import { bitcoinNetwork } from '../../src/chains/bitcoin/networks.ts';
import { createPayableMerchant, writeChainsFile } from '../support/merchant.ts';

/** A fresh regtest account key (random, so a retried test never meets its own earlier keys). */
const testWallet = (_label?: number) => ({ tpub: bip32().fromSeed(randomBytes(32), bitcoinNetwork('testnet')).derivePath("m/84'/1'/0'").neutered().toBase58() });

let ctx: TestContext;
let app: ReturnType<typeof createApp>;

beforeAll(async () => {
  ctx = await createTestContext({ KASSA_CONFIG: writeChainsFile() });
  app = createApp(ctx.deps);
});
afterAll(async () => ctx?.close());

function asVpub(tpub: string): string {
  const d = base58CheckDecode(tpub);
  if (!d.ok) throw new Error('bad test key');
  const p = new Uint8Array(d.payload);
  new DataView(p.buffer).setUint32(0, 0x045f1cf6);
  return base58CheckEncode(p);
}

async function put(secret: string, body: unknown) {
  const res = await app.request('/v1/merchant/payment_methods/bitcoin', req(secret, 'PUT', body));
  return { status: res.status, body: (await res.json()) as Record<string, any> };
}

async function postInvoice(secret: string, headers: Record<string, string> = {}) {
  const res = await app.request('/v1/invoices', req(secret, 'POST', { amount: '10.00', currency: 'USD', payment_methods: ['BTC'] }, headers));
  return { status: res.status, body: (await res.json()) as Record<string, any> };
}

describe('PUT bitcoin payment method: a key of another merchant', () => {
  it('is refused with 409 bitcoin_key_in_use in every notation; the merchant keeps its own key', async () => {
    const wallet = testWallet(21);
    const a = await createMerchantWithKey(ctx.deps, { name: 'A' });
    const b = await createMerchantWithKey(ctx.deps, { name: 'B' });
    expect((await put(a.secret, { xpub: wallet.tpub })).status).toBe(200);
    // A setting its own key again is fine
    expect((await put(a.secret, { xpub: wallet.tpub })).status).toBe(200);

    const own = testWallet(22);
    expect((await put(b.secret, { xpub: own.tpub })).status).toBe(200);
    const before = await ctx.deps.sql`select id, descriptor, active from bitcoin_key_sources where merchant_id = ${b.merchant.id} order by id`;

    const cases: [unknown, string][] = [
      [{ xpub: wallet.tpub }, 'xpub'],
      [{ xpub: asVpub(wallet.tpub) }, 'xpub'],
      [{ descriptor: addDescriptorChecksum(`wpkh([0badc0de/84h/1h/0h]${wallet.tpub}/0/*)`) }, 'descriptor'],
    ];
    for (const [body, param] of cases) {
      const r = await put(b.secret, body);
      expect(r.status, JSON.stringify(r.body)).toBe(409);
      expect(r.body.error).toMatchObject({ code: 'bitcoin_key_in_use', param });
      expect(r.body.error.message).not.toContain(a.merchant.id);
    }
    // nothing changed for B
    expect(await ctx.deps.sql`select id, descriptor, active from bitcoin_key_sources where merchant_id = ${b.merchant.id} order by id`).toEqual(before);
    // the same key with another address type derives other addresses: allowed
    expect((await put(b.secret, { xpub: wallet.tpub, address_type: 'p2tr' })).status).toBe(200);
    // a key A replaced still counts (its addresses may be on invoices)
    expect((await put(a.secret, { xpub: testWallet(23).tpub })).status).toBe(200);
    expect((await put(b.secret, { xpub: wallet.tpub })).status).toBe(409);
  }, 120_000);

  it('two merchants setting one key at the same time: exactly one succeeds', async () => {
    const wallet = testWallet(31);
    const a = await createMerchantWithKey(ctx.deps, { name: 'A2' });
    const b = await createMerchantWithKey(ctx.deps, { name: 'B2' });
    const results = await Promise.all([put(a.secret, { xpub: wallet.tpub }), put(b.secret, { xpub: wallet.tpub })]);
    expect(results.map((r) => r.status).sort()).toEqual([200, 409]);
  }, 120_000);
});

describe('invoice creation on a key two merchants share (older data)', () => {
  it('answers 409 deposit_address_in_use, never 500, and writes nothing', async () => {
    // Both set up with the same wallet directly (as before the PUT check existed).
    const seedByte = 40 + Math.floor(Math.random() * 200); // both merchants share this wallet
    const one = await createPayableMerchant(ctx.deps, { name: 'one', seedByte, evmAssets: null });
    const two = await createPayableMerchant(ctx.deps, { name: 'two', seedByte, evmAssets: null });
    const first = await postInvoice(one.secret);
    expect(first.status).toBe(201);

    const count = async () => (await ctx.deps.sql<{ n: number }[]>`select count(*)::int as n from invoices where merchant_id = ${two.merchant.id}`)[0]!.n;
    const plain = await postInvoice(two.secret);
    expect(plain.status, JSON.stringify(plain.body)).toBe(409);
    expect(plain.body.error).toMatchObject({ code: 'deposit_address_in_use', param: 'payment_methods' });

    const withKey = await postInvoice(two.secret, { 'Idempotency-Key': 'shared-key-1' });
    expect(withKey.status, JSON.stringify(withKey.body)).toBe(409);
    expect(withKey.body.error.code).toBe('deposit_address_in_use');

    // An empty pool: the address is derived inline (index 0 again).
    await ctx.deps.sql`delete from bitcoin_address_pool p using bitcoin_key_sources s
                       where s.id = p.source_id and s.merchant_id = ${two.merchant.id} and p.allocated_at is null`;
    await ctx.deps.sql`update bitcoin_key_sources set next_index = 0 where merchant_id = ${two.merchant.id}`;
    const inline = await postInvoice(two.secret);
    expect(inline.status, JSON.stringify(inline.body)).toBe(409);
    expect(inline.body.error.code).toBe('deposit_address_in_use');

    expect(await count()).toBe(0);
    const [events] = await ctx.deps.sql<{ n: number }[]>`select count(*)::int as n from events where merchant_id = ${two.merchant.id}`;
    expect(events!.n).toBe(0);
  }, 120_000);
});
