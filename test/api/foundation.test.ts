import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createApp } from '../../src/api/app.ts';
import { createMerchantWithKey, createTestContext, req, type TestContext } from '../support/db.ts';

let ctx: TestContext;
let app: ReturnType<typeof createApp>;
let shop: Awaited<ReturnType<typeof createMerchantWithKey>>;

beforeAll(async () => {
  ctx = await createTestContext();
  app = createApp(ctx.deps);
  shop = await createMerchantWithKey(ctx.deps, { name: 'Shop A' });
});
afterAll(async () => ctx?.close());

async function call(secret: string | undefined, method: string, path: string, body?: unknown, headers?: Record<string, string>) {
  const res = await app.request(path, req(secret, method, body, headers));
  const text = await res.text();
  return { res, status: res.status, json: text ? JSON.parse(text) : undefined };
}

describe('happy path', () => {
  it('GET /v1/merchant returns the key\'s merchant', async () => {
    const { status, json, res } = await call(shop.secret, 'GET', '/v1/merchant');
    expect(status).toBe(200);
    expect(json).toMatchObject({ id: shop.merchant.id, object: 'merchant', name: 'Shop A', default_speed_policy: 'medium', payment_tolerance_percent: '0.00' });
    expect(res.headers.get('request-id')).toMatch(/^req_/);
  });

  it('PATCH /v1/merchant updates settings', async () => {
    const { status, json } = await call(shop.secret, 'PATCH', '/v1/merchant', {
      default_expiry_seconds: 1800, payment_tolerance_percent: '1.5', default_speed_policy: 'low',
    });
    expect(status).toBe(200);
    expect(json).toMatchObject({ default_expiry_seconds: 1800, payment_tolerance_percent: '1.50', default_speed_policy: 'low' });
    expect((await call(shop.secret, 'GET', '/v1/merchant')).json.payment_tolerance_percent).toBe('1.50');
  });

  it('creates, lists (paginated) and revokes API keys; the secret is shown once', async () => {
    const created = [];
    for (let i = 0; i < 3; i++) {
      const r = await call(shop.secret, 'POST', '/v1/api_keys', { name: `k${i}`, scopes: ['invoices:read'] });
      expect(r.status).toBe(201);
      expect(r.json.secret).toMatch(/^kassa_sk_[0-9A-Za-z]{44}$/);
      expect(r.json.prefix).toBe(r.json.secret.slice(0, 21));
      created.push(r.json);
    }
    const page1 = await call(shop.secret, 'GET', '/v1/api_keys?limit=2');
    expect(page1.status).toBe(200);
    expect(page1.json.data.map((k: { id: string }) => k.id)).toEqual([created[2].id, created[1].id]);
    expect(page1.json.has_more).toBe(true);
    expect(JSON.stringify(page1.json)).not.toContain(created[2].secret);
    const page2 = await call(shop.secret, 'GET', `/v1/api_keys?limit=2&starting_after=${created[1].id}`);
    expect(page2.json.data.map((k: { id: string }) => k.id)).toEqual([created[0].id, shop.key.id]);
    expect(page2.json.has_more).toBe(false);
    const back = await call(shop.secret, 'GET', `/v1/api_keys?limit=2&ending_before=${created[0].id}`);
    expect(back.json.data.map((k: { id: string }) => k.id)).toEqual([created[2].id, created[1].id]);

    const readKey = created[0];
    expect((await call(readKey.secret, 'GET', '/v1/merchant')).status).toBe(200);
    const revoked = await call(shop.secret, 'DELETE', `/v1/api_keys/${readKey.id}`);
    expect(revoked.status).toBe(200);
    expect(revoked.json.revoked_at).not.toBeNull();
  });

  it('serves the OpenAPI 3.1 document and the docs page', async () => {
    const { status, json } = await call(undefined, 'GET', '/openapi.json');
    expect(status).toBe(200);
    expect(json.openapi).toBe('3.1.0');
    expect(Object.keys(json.paths)).toEqual(expect.arrayContaining(['/v1/merchant', '/v1/api_keys', '/v1/api_keys/{id}', '/health']));
    expect(json.components.schemas.Error).toBeDefined();
    const docs = await app.request('/docs');
    expect(docs.status).toBe(200);
    expect(await docs.text()).toContain('Kassa API reference');
  });

  it('/health reports Postgres and Redis', async () => {
    const { status, json } = await call(undefined, 'GET', '/health');
    expect(status).toBe(200);
    expect(json).toEqual({ status: 'ok', checks: { postgres: { ok: true }, redis: { ok: true } } });
  });
});

describe('errors', () => {
  it.each([
    ['no key', undefined, 'api_key_missing'],
    ['a malformed key', 'nope', 'api_key_invalid'],
    ['a wrong key of the right shape', 'kassa_sk_' + 'A'.repeat(44), 'api_key_invalid'],
  ])('%s → 401 envelope', async (_, secret, code) => {
    const { status, json } = await call(secret, 'GET', '/v1/merchant');
    expect(status).toBe(401);
    expect(json.error).toMatchObject({ type: 'authentication_error', code });
    expect(json.error.request_id).toMatch(/^req_/);
  });

  it('a revoked key → 401 api_key_revoked', async () => {
    const k = await ctx.deps.apiKeys.create(ctx.deps.sql, { merchantId: shop.merchant.id, scopes: ['invoices:read'] });
    await ctx.deps.apiKeys.revoke(ctx.deps.sql, shop.merchant.id, k.key.id);
    const { status, json } = await call(k.secret, 'GET', '/v1/merchant');
    expect(status).toBe(401);
    expect(json.error.code).toBe('api_key_revoked');
  });

  it('a read-only key → 403 on PATCH /v1/merchant and on key management', async () => {
    const ro = await ctx.deps.apiKeys.create(ctx.deps.sql, { merchantId: shop.merchant.id, scopes: ['invoices:read', 'reports:read'] });
    const patch = await call(ro.secret, 'PATCH', '/v1/merchant', { name: 'x' });
    expect(patch.status).toBe(403);
    expect(patch.json.error).toMatchObject({ type: 'permission_error', code: 'scope_missing' });
    expect((await call(ro.secret, 'GET', '/v1/api_keys')).status).toBe(403);
    expect((await call(ro.secret, 'POST', '/v1/api_keys', { scopes: ['invoices:read'] })).status).toBe(403);
  });

  it('a key cannot grant scopes it lacks', async () => {
    const k = await ctx.deps.apiKeys.create(ctx.deps.sql, { merchantId: shop.merchant.id, scopes: ['settings:write'] });
    const r = await call(k.secret, 'POST', '/v1/api_keys', { scopes: ['settings:write', 'invoices:write'] });
    expect(r.status).toBe(403);
    expect(r.json.error).toMatchObject({ code: 'scope_not_grantable', param: 'scopes' });
  });

  it('unknown route → 404 envelope', async () => {
    const { status, json } = await call(shop.secret, 'GET', '/v1/nothing-here');
    expect(status).toBe(404);
    expect(json.error).toMatchObject({ type: 'invalid_request_error', code: 'route_not_found' });
  });

  it.each([
    ['malformed JSON', '{bad', 'invalid_json', 'body'],
    ['an unknown field', { nme: 'x' }, 'parameter_unknown', 'nme'],
    ['a wrong type', { default_expiry_seconds: '900' }, 'parameter_invalid', 'default_expiry_seconds'],
    ['an out-of-range number', { default_expiry_seconds: 5 }, 'parameter_invalid', 'default_expiry_seconds'],
    ['a bad enum', { default_speed_policy: 'turbo' }, 'parameter_invalid', 'default_speed_policy'],
    ['a percent with a sign', { payment_tolerance_percent: '-1' }, 'amount_invalid', 'payment_tolerance_percent'],
    ['a percent as a JSON number', { payment_tolerance_percent: 1 }, 'parameter_invalid', 'payment_tolerance_percent'],
    ['a percent over 50', { payment_tolerance_percent: '51' }, 'parameter_invalid', 'payment_tolerance_percent'],
    ['an array body', [1], 'invalid_json', 'body'],
  ])('%s → 400 naming the field', async (_, body, code, param) => {
    const before = (await call(shop.secret, 'GET', '/v1/merchant')).json;
    const { status, json } = await call(shop.secret, 'PATCH', '/v1/merchant', body);
    expect(status).toBe(400);
    expect(json.error).toMatchObject({ type: 'invalid_request_error', code, param });
    // Nothing was half-written.
    expect((await call(shop.secret, 'GET', '/v1/merchant')).json).toEqual(before);
  });

  it('missing required field → 400 parameter_missing', async () => {
    const { status, json } = await call(shop.secret, 'POST', '/v1/api_keys', { name: 'x' });
    expect(status).toBe(400);
    expect(json.error).toMatchObject({ code: 'parameter_missing', param: 'scopes' });
  });

  it('a bad pagination cursor or limit → 400', async () => {
    expect((await call(shop.secret, 'GET', '/v1/api_keys?limit=0')).json.error).toMatchObject({ param: 'limit' });
    expect((await call(shop.secret, 'GET', '/v1/api_keys?limit=101')).json.error).toMatchObject({ param: 'limit' });
    expect((await call(shop.secret, 'GET', '/v1/api_keys?starting_after=key_nope')).json.error).toMatchObject({ code: 'cursor_invalid', param: 'starting_after' });
    expect((await call(shop.secret, 'GET', '/v1/api_keys?bogus=1')).json.error).toMatchObject({ code: 'parameter_unknown', param: 'bogus' });
  });

  it('a body over 1 MB → 413 envelope', async () => {
    const { status, json } = await call(shop.secret, 'PATCH', '/v1/merchant', JSON.stringify({ name: 'x'.repeat(1024 * 1024 + 10) }));
    expect(status).toBe(413);
    expect(json.error.code).toBe('body_too_large');
  });

  it('an unexpected exception → 500 envelope without internals', async () => {
    const broken = createApp({ ...ctx.deps, merchants: { ...ctx.deps.merchants, get: async () => { throw new Error('db exploded: secret detail'); } } });
    const res = await broken.request('/v1/merchant', req(shop.secret, 'GET'));
    expect(res.status).toBe(500);
    const json = await res.json();
    expect(json.error).toMatchObject({ type: 'api_error', code: 'internal_error' });
    expect(JSON.stringify(json)).not.toContain('exploded');
  });
});

describe('rate limit', () => {
  it('429 with Retry-After once a key exceeds its per-second limit', async () => {
    const limited = await createTestContext({ RATE_LIMIT_PER_SECOND: '5' });
    try {
      const limitedApp = createApp(limited.deps);
      const k = await createMerchantWithKey(limited.deps);
      // Align with the start of a one-second window so all 12 requests fall into the same one.
      await new Promise((r) => setTimeout(r, 1000 - (Date.now() % 1000)));
      const results = await Promise.all(Array.from({ length: 12 }, () => limitedApp.request('/v1/merchant', req(k.secret, 'GET'))));
      const limitedRes = results.filter((r) => r.status === 429);
      expect(results.filter((r) => r.status === 200)).toHaveLength(5);
      expect(limitedRes).toHaveLength(7);
      expect(limitedRes[0]!.headers.get('retry-after')).toBe('1');
      expect((await limitedRes[0]!.json()).error).toMatchObject({ type: 'rate_limit_error', code: 'rate_limited' });
    } finally {
      await limited.close();
    }
  });
});
