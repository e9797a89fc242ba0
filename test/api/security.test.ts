import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import crypto from 'node:crypto';
import { createApp } from '../../src/api/app.ts';
import { createMerchantWithKey, createTestContext, req, type TestContext } from '../support/db.ts';

let ctx: TestContext;
let app: ReturnType<typeof createApp>;
let a: Awaited<ReturnType<typeof createMerchantWithKey>>;
let b: Awaited<ReturnType<typeof createMerchantWithKey>>;

beforeAll(async () => {
  ctx = await createTestContext();
  app = createApp(ctx.deps);
  a = await createMerchantWithKey(ctx.deps, { name: 'Merchant A' });
  b = await createMerchantWithKey(ctx.deps, { name: 'Merchant B' });
});
afterAll(async () => ctx?.close());

describe('merchant isolation', () => {
  it('a key of merchant A reads only merchant A', async () => {
    const res = await app.request('/v1/merchant', req(a.secret, 'GET'));
    expect((await res.json()).id).toBe(a.merchant.id);
  });

  it('A cannot list, revoke or page through B\'s API keys', async () => {
    const list = await (await app.request('/v1/api_keys?limit=100', req(a.secret, 'GET'))).json();
    expect(list.data.map((k: { id: string }) => k.id)).not.toContain(b.key.id);
    const revoke = await app.request(`/v1/api_keys/${b.key.id}`, req(a.secret, 'DELETE'));
    expect(revoke.status).toBe(404);
    const cursor = await app.request(`/v1/api_keys?starting_after=${b.key.id}`, req(a.secret, 'GET'));
    expect(cursor.status).toBe(400);
    // B's key still works.
    expect((await app.request('/v1/merchant', req(b.secret, 'GET'))).status).toBe(200);
  });

  it('A\'s PATCH changes only A', async () => {
    await app.request('/v1/merchant', req(a.secret, 'PATCH', { name: 'A renamed' }));
    const bNow = await (await app.request('/v1/merchant', req(b.secret, 'GET'))).json();
    expect(bNow.name).toBe('Merchant B');
  });
});

describe('secrets', () => {
  it('only a SHA-256 hash of the key is stored, never the secret', async () => {
    const rows = await ctx.deps.sql`select * from api_keys where id = ${a.key.id}`;
    const dump = JSON.stringify(rows, (_, v) => (typeof v === 'bigint' ? v.toString() : v));
    expect(dump).not.toContain(a.secret);
    expect(Buffer.from(rows[0]!.secret_hash).equals(crypto.createHash('sha256').update(a.secret).digest())).toBe(true);
  });

  it('API key comparison uses crypto.timingSafeEqual, also for unknown lookups', async () => {
    const spy = vi.spyOn(crypto, 'timingSafeEqual');
    await app.request('/v1/merchant', req(a.secret, 'GET'));
    await app.request('/v1/merchant', req('kassa_sk_' + 'Z'.repeat(44), 'GET'));
    expect(spy).toHaveBeenCalledTimes(2);
    spy.mockRestore();
  });

  it('secrets never appear in logs or in later responses', async () => {
    const created = await (await app.request('/v1/api_keys', req(a.secret, 'POST', { scopes: ['invoices:read'] }))).json();
    await app.request('/v1/merchant', req(created.secret, 'GET'));
    await app.request('/v1/merchant', req(created.secret.slice(0, -1) + 'x', 'GET'));
    const listed = await (await app.request('/v1/api_keys?limit=100', req(a.secret, 'GET'))).text();
    expect(listed).not.toContain(created.secret);
    const logs = ctx.logs.text();
    expect(logs).toContain('"path":"/v1/merchant"');
    expect(logs).not.toContain(created.secret);
    expect(logs).not.toContain(a.secret);
    expect(logs).not.toContain(created.secret.slice(21));
  });
});
