import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createApp } from '../../src/api/app.ts';
import { createMerchantWithKey, createTestContext, req, type TestContext } from '../support/db.ts';

let ctx: TestContext;
let app: ReturnType<typeof createApp>;
let shop: Awaited<ReturnType<typeof createMerchantWithKey>>;

beforeAll(async () => {
  ctx = await createTestContext();
  app = createApp(ctx.deps);
  shop = await createMerchantWithKey(ctx.deps);
});
afterAll(async () => ctx?.close());

const countKeys = async () => (await ctx.deps.sql<{ n: bigint }[]>`select count(*)::int8 as n from api_keys where merchant_id = ${shop.merchant.id}`)[0]!.n;

describe('Idempotency-Key', () => {
  it('replays the first response for the same key and body', async () => {
    const before = await countKeys();
    const first = await app.request('/v1/api_keys', req(shop.secret, 'POST', { name: 'idem', scopes: ['invoices:read'] }, { 'Idempotency-Key': 'k-1' }));
    const second = await app.request('/v1/api_keys', req(shop.secret, 'POST', { name: 'idem', scopes: ['invoices:read'] }, { 'Idempotency-Key': 'k-1' }));
    expect(first.status).toBe(201);
    expect(second.status).toBe(201);
    expect(second.headers.get('idempotent-replayed')).toBe('true');
    expect(await second.json()).toEqual(await first.json());
    expect(await countKeys()).toBe(before + 1n);
  });

  it('the same key with a different body → 409 idempotency_error', async () => {
    await app.request('/v1/api_keys', req(shop.secret, 'POST', { scopes: ['invoices:read'] }, { 'Idempotency-Key': 'k-2' }));
    const res = await app.request('/v1/api_keys', req(shop.secret, 'POST', { scopes: ['reports:read'] }, { 'Idempotency-Key': 'k-2' }));
    expect(res.status).toBe(409);
    expect((await res.json()).error).toMatchObject({ type: 'idempotency_error', code: 'idempotency_key_reused', param: 'Idempotency-Key' });
  });

  it('concurrent requests with one key create one object', async () => {
    const before = await countKeys();
    const results = await Promise.all(
      Array.from({ length: 20 }, () => app.request('/v1/api_keys', req(shop.secret, 'POST', { scopes: ['invoices:read'] }, { 'Idempotency-Key': 'k-concurrent' }))),
    );
    const bodies = await Promise.all(results.map((r) => r.json()));
    expect(results.every((r) => r.status === 201)).toBe(true);
    expect(new Set(bodies.map((b) => b.id)).size).toBe(1);
    expect(await countKeys()).toBe(before + 1n);
  });

  it('stores 4xx responses too (a retry gets the same answer), keys are per merchant', async () => {
    const bad = await app.request('/v1/api_keys', req(shop.secret, 'POST', { scopes: ['nope'] }, { 'Idempotency-Key': 'k-3' }));
    expect(bad.status).toBe(400);
    const again = await app.request('/v1/api_keys', req(shop.secret, 'POST', { scopes: ['nope'] }, { 'Idempotency-Key': 'k-3' }));
    expect(again.headers.get('idempotent-replayed')).toBe('true');
    expect(again.status).toBe(400);

    const other = await createMerchantWithKey(ctx.deps, { name: 'Other' });
    const res = await app.request('/v1/api_keys', req(other.secret, 'POST', { scopes: ['invoices:read'] }, { 'Idempotency-Key': 'k-1' }));
    expect(res.status).toBe(201);
    expect(res.headers.get('idempotent-replayed')).toBeNull();
  });

  it('a key older than 24 h is forgotten', async () => {
    await app.request('/v1/api_keys', req(shop.secret, 'POST', { scopes: ['invoices:read'] }, { 'Idempotency-Key': 'k-old' }));
    await ctx.deps.sql`update idempotency_keys set created_at = now() - interval '25 hours' where key = 'k-old'`;
    const res = await app.request('/v1/api_keys', req(shop.secret, 'POST', { scopes: ['reports:read'] }, { 'Idempotency-Key': 'k-old' }));
    expect(res.status).toBe(201);
    expect(res.headers.get('idempotent-replayed')).toBeNull();
  });

  it('rejects an invalid key header', async () => {
    const res = await app.request('/v1/api_keys', req(shop.secret, 'POST', { scopes: ['invoices:read'] }, { 'Idempotency-Key': 'x'.repeat(300) }));
    expect(res.status).toBe(400);
    expect((await res.json()).error).toMatchObject({ code: 'idempotency_key_invalid', param: 'Idempotency-Key' });
  });
});

describe('Idempotency-Key storage', () => {
  it('stores replayable responses encrypted: a new key\'s secret is never in the table in the clear', async () => {
    const res = await app.request('/v1/api_keys', req(shop.secret, 'POST', { scopes: ['invoices:read'] }, { 'Idempotency-Key': 'k-secret' }));
    const created = await res.json();
    const [row] = await ctx.deps.sql<{ response_body: string }[]>`select response_body from idempotency_keys where key = 'k-secret'`;
    expect(row!.response_body.startsWith('v1:')).toBe(true);
    expect(row!.response_body).not.toContain(created.secret);
    const again = await app.request('/v1/api_keys', req(shop.secret, 'POST', { scopes: ['invoices:read'] }, { 'Idempotency-Key': 'k-secret' }));
    expect((await again.json()).secret).toBe(created.secret);
  });
});
