/**
 * Issue 15 finding 2: a stored Idempotency-Key response is replayed only to the API key that made
 * the request, and the route's scope check runs before any replay (also on the one-statement
 * invoice-creation path).
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
  const { refillAddressPools } = await import('../../src/chains/bitcoin/address-pool.ts');
  await refillAddressPools(ctx.deps.sql, { minFree: 20, batch: 20 });
});
afterAll(async () => ctx?.close());

async function keyWith(scopes: string[]): Promise<string> {
  const res = await app.request('/v1/api_keys', req(shop.secret, 'POST', { name: scopes.join(' '), scopes }));
  expect(res.status).toBe(201);
  return (await res.json()).secret;
}
const keyCount = async () => (await ctx.deps.sql<{ n: number }[]>`select count(*)::int as n from api_keys where merchant_id = ${shop.merchant.id}`)[0]!.n;

describe('Idempotency-Key replay is bound to the API key', () => {
  it('a settings:write-only key replaying a full-scope key\'s POST /v1/api_keys gets a 409, not the secret', async () => {
    const narrow = await keyWith(['settings:write']);
    const body = { name: 'full', scopes: ['invoices:read', 'invoices:write', 'reports:read', 'webhooks:write', 'settings:write'] };
    const first = await app.request('/v1/api_keys', req(shop.secret, 'POST', body, { 'Idempotency-Key': 'escalate-1' }));
    expect(first.status).toBe(201);
    const created = await first.json();
    const before = await keyCount();

    const attack = await app.request('/v1/api_keys', req(narrow, 'POST', body, { 'Idempotency-Key': 'escalate-1' }));
    const text = await attack.text();
    expect(attack.status).toBe(409);
    expect(attack.headers.get('idempotent-replayed')).toBeNull();
    expect(text).not.toContain(created.secret);
    expect(JSON.parse(text).error).toMatchObject({ type: 'idempotency_error', code: 'idempotency_key_in_use_by_other_key', param: 'Idempotency-Key' });
    expect(await keyCount()).toBe(before);

    // The key that made the request still gets its replay.
    const again = await app.request('/v1/api_keys', req(shop.secret, 'POST', body, { 'Idempotency-Key': 'escalate-1' }));
    expect(again.headers.get('idempotent-replayed')).toBe('true');
    expect((await again.json()).secret).toBe(created.secret);
  });

  it('a key without the route\'s scope gets 403 before any replay', async () => {
    const readOnly = await keyWith(['invoices:read']);
    const body = { scopes: ['invoices:read'] };
    expect((await app.request('/v1/api_keys', req(shop.secret, 'POST', body, { 'Idempotency-Key': 'scope-first' }))).status).toBe(201);
    const res = await app.request('/v1/api_keys', req(readOnly, 'POST', body, { 'Idempotency-Key': 'scope-first' }));
    expect(res.status).toBe(403);
    expect((await res.json()).error.code).toBe('scope_missing');
  });

  it('POST /v1/invoices (one-statement path): another key gets a 409, a key without invoices:write a 403', async () => {
    const writer = await keyWith(['invoices:write']);
    const reader = await keyWith(['invoices:read']);
    const body = { amount: '10.00', currency: 'USD', order_id: 'IDEM-SCOPE-1', payment_methods: ['BTC'] };
    const first = await app.request('/v1/invoices', req(shop.secret, 'POST', body, { 'Idempotency-Key': 'inv-bound-1' }));
    expect(first.status).toBe(201);
    const [row] = await ctx.deps.sql<{ api_key_id: string | null; response_plain: string | null }[]>`
      select api_key_id, response_plain from idempotency_keys where merchant_id = ${shop.merchant.id} and key = 'inv-bound-1'`;
    expect(row!.response_plain).not.toBeNull(); // written by the one-statement path
    expect(row!.api_key_id).toBe(shop.key.id);

    const other = await app.request('/v1/invoices', req(writer, 'POST', body, { 'Idempotency-Key': 'inv-bound-1' }));
    expect(other.status).toBe(409);
    expect((await other.json()).error.code).toBe('idempotency_key_in_use_by_other_key');
    const noScope = await app.request('/v1/invoices', req(reader, 'POST', body, { 'Idempotency-Key': 'inv-bound-1' }));
    expect(noScope.status).toBe(403);

    const own = await app.request('/v1/invoices', req(shop.secret, 'POST', body, { 'Idempotency-Key': 'inv-bound-1' }));
    expect(own.status).toBe(201);
    expect(own.headers.get('idempotent-replayed')).toBe('true');
  });

  it('another key\'s in-flight or stored 4xx answer is not replayed either (the handler path)', async () => {
    const writer = await keyWith(['invoices:write']);
    const bad = { amount: 'x', currency: 'USD' };
    expect((await app.request('/v1/invoices', req(shop.secret, 'POST', bad, { 'Idempotency-Key': 'inv-bound-2' }))).status).toBe(400);
    const res = await app.request('/v1/invoices', req(writer, 'POST', bad, { 'Idempotency-Key': 'inv-bound-2' }));
    expect(res.status).toBe(409);
    expect((await res.json()).error.code).toBe('idempotency_key_in_use_by_other_key');
  });
});
