/**
 * POST /v1/invoices may authenticate its API key from the process's cache (src/merchants/api-keys.ts,
 * src/api/middleware/auth.ts). These tests change the key or the merchant behind the cache's back
 * (as another API process, the CLI or the dashboard would) and check that the next invoice acts on
 * what the database says: a revoked key is refused at once with nothing written, a method enabled
 * elsewhere is accepted, a changed setting applies and the refused attempt takes no pool address.
 * Each test first shows that the cache really holds the stale answer, so the path under test is the
 * cached one.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createApp } from '../../src/api/app.ts';
import { createApiKeyService } from '../../src/merchants/api-keys.ts';
import { setEvmPaymentMethod } from '../../src/chains/evm/payment-method.ts';
import { createTestContext, req, type TestContext } from '../support/db.ts';
import { createPayableMerchant, TEST_TREASURY, writeChainsFile } from '../support/merchant.ts';

let ctx: TestContext;
let app: ReturnType<typeof createApp>;

beforeAll(async () => {
  ctx = await createTestContext({ KASSA_CONFIG: writeChainsFile() });
  app = createApp(ctx.deps);
});
afterAll(async () => ctx?.close());

async function refill() {
  const { refillAddressPools } = await import('../../src/chains/bitcoin/address-pool.ts');
  await refillAddressPools(ctx.deps.sql, { minFree: 20, batch: 20 });
}

async function post(secret: string, body: unknown, headers: Record<string, string> = {}) {
  const res = await app.request('/v1/invoices', req(secret, 'POST', body, headers));
  return { status: res.status, json: JSON.parse(await res.text()) };
}

const countOf = async (merchantId: string) => {
  const [r] = await ctx.deps.sql<{ invoices: number; events: number; addresses: number; keys: number }[]>`
    select (select count(*)::int from invoices where merchant_id = ${merchantId}) as invoices,
           (select count(*)::int from events where merchant_id = ${merchantId}) as events,
           (select count(*)::int from deposit_addresses where merchant_id = ${merchantId}) as addresses,
           (select count(*)::int from idempotency_keys where merchant_id = ${merchantId}) as keys`;
  return r!;
};
const allocated = async (merchantId: string) =>
  (await ctx.deps.sql<{ n: number }[]>`
    select count(*)::int as n from bitcoin_address_pool p join bitcoin_key_sources s on s.id = p.source_id
    where s.merchant_id = ${merchantId} and p.allocated_at is not null`)[0]!.n;

describe('POST /v1/invoices with a cached API-key authentication', () => {
  it('a key revoked by another process creates nothing: 401 at once, no invoice, address or stored answer', async () => {
    const shop = await createPayableMerchant(ctx.deps, { seedByte: 31 });
    await refill();
    expect((await post(shop.secret, { amount: '5.00', currency: 'USD' })).status).toBe(201);
    const before = await countOf(shop.merchant.id);
    const allocatedBefore = await allocated(shop.merchant.id);

    await createApiKeyService().revoke(ctx.deps.sql, shop.merchant.id, shop.key.id); // another process's service
    const cached = await ctx.deps.apiKeys.authenticate(ctx.deps.sql, shop.secret, { fromCache: true });
    expect(cached.fromCache).toBe(true); // this process still holds the key as valid

    const res = await post(shop.secret, { amount: '5.00', currency: 'USD' }, { 'Idempotency-Key': 'after-revoke' });
    expect(res.status).toBe(401);
    expect(res.json.error.code).toBe('api_key_revoked');
    expect(await countOf(shop.merchant.id)).toEqual(before);
    expect(await allocated(shop.merchant.id)).toBe(allocatedBefore);
    // The cache learnt it: the next attempt is refused by the lookup itself.
    await expect(ctx.deps.apiKeys.authenticate(ctx.deps.sql, shop.secret, { fromCache: true })).rejects.toMatchObject({ code: 'api_key_revoked' });
    // Other routes never use the cache.
    expect((await app.request('/v1/merchant', req(shop.secret, 'GET'))).status).toBe(401);
  });

  it('a payment method enabled elsewhere is accepted on the next invoice (the cached settings do not refuse it)', async () => {
    const shop = await createPayableMerchant(ctx.deps, { seedByte: 32, evmAssets: ['ETH'] });
    await refill();
    expect((await post(shop.secret, { amount: '5.00', currency: 'USD', payment_methods: ['ETH-ethereum'] })).status).toBe(201);

    await setEvmPaymentMethod(ctx.deps.sql, shop.merchant.id, 'ethereum', { treasury: TEST_TREASURY, assets: ['ETH', 'USDC'] });
    const cached = await ctx.deps.apiKeys.authenticate(ctx.deps.sql, shop.secret, { fromCache: true });
    expect(cached.fromCache).toBe(true);
    expect(cached.paymentSettings.evm[0]!.assets).toEqual(['ETH']); // stale on purpose

    const res = await post(shop.secret, { amount: '5.00', currency: 'USD', payment_methods: ['USDC-ethereum'] }, { 'Idempotency-Key': 'usdc-now' });
    expect(res.status).toBe(201);
    expect(res.json.payment_methods.map((m: { method: string }) => m.method)).toEqual(['USDC-ethereum']);
    // A refusal that the database confirms still stands (and is what the key stores).
    const refused = await post(shop.secret, { amount: '5.00', currency: 'USD', payment_methods: ['USDT-ethereum'] });
    expect(refused.status).toBe(400);
    expect(refused.json.error.code).toBe('payment_method_not_enabled');
  });

  it('a merchant setting changed elsewhere applies to the next invoice, and the refused first try takes no pool address', async () => {
    const shop = await createPayableMerchant(ctx.deps, { seedByte: 33 });
    await refill();
    const first = await post(shop.secret, { amount: '5.00', currency: 'USD', payment_methods: ['BTC'] });
    expect(first.json.payment_methods[0].confirmations_required).toBe(1); // medium by default

    await ctx.deps.sql`update merchants set default_speed_policy = 'low', updated_at = now() where id = ${shop.merchant.id}`;
    const cached = await ctx.deps.apiKeys.authenticate(ctx.deps.sql, shop.secret, { fromCache: true });
    expect(cached.fromCache).toBe(true);
    expect(cached.merchant.defaultSpeedPolicy).toBe('medium'); // stale on purpose
    const allocatedBefore = await allocated(shop.merchant.id);

    const second = await post(shop.secret, { amount: '5.00', currency: 'USD', payment_methods: ['BTC'] });
    expect(second.status).toBe(201);
    expect(second.json.speed_policy).toBe('low');
    expect(second.json.payment_methods[0].confirmations_required).toBe(6);
    expect(await allocated(shop.merchant.id)).toBe(allocatedBefore + 1);
    const [row] = await ctx.deps.sql<{ speed_policy: string }[]>`select speed_policy from invoices where id = ${second.json.id}`;
    expect(row!.speed_policy).toBe('low');
  });

  it('a wrong secret with a cached key\'s lookup is refused (the cache compares the whole secret)', async () => {
    const shop = await createPayableMerchant(ctx.deps, { seedByte: 34 });
    await refill();
    expect((await post(shop.secret, { amount: '5.00', currency: 'USD' })).status).toBe(201);
    const wrong = shop.secret.slice(0, -4) + (shop.secret.endsWith('AAAA') ? 'BBBB' : 'AAAA');
    const res = await post(wrong, { amount: '5.00', currency: 'USD' });
    expect(res.status).toBe(401);
    expect(res.json.error.code).toBe('api_key_invalid');
  });
});
