/**
 * The OpenAPI document: required fields, unauthenticated routes, each operation's scopes (checked
 * against what the API actually enforces), and examples that conform to the route schemas.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { z } from '@hono/zod-openapi';
import { createApp } from '../../src/api/app.ts';
import { SCOPES } from '../../src/merchants/scopes.ts';
import { writeChainsFile } from '../support/merchant.ts';
import { createMerchantWithKey, createTestContext, req, type TestContext } from '../support/db.ts';

let ctx: TestContext;
let app: ReturnType<typeof createApp>;
type Op = Record<string, any>;
let spec: { paths: Record<string, Record<string, Op>>; components: { schemas: Record<string, any> } };

beforeAll(async () => {
  ctx = await createTestContext({ KASSA_CONFIG: writeChainsFile() });
  app = createApp(ctx.deps);
  const res = await app.request('/openapi.json');
  expect(res.status).toBe(200);
  spec = await res.json();
});
afterAll(async () => ctx?.close());

const ops = () => Object.entries(spec.paths).flatMap(([path, item]) => Object.entries(item).map(([method, op]) => ({ path, method, op })));
const authenticated = (path: string) => path.startsWith('/v1/') && !path.startsWith('/v1/public/');

describe('OpenAPI document', () => {
  it('marks amount (and currency) required on invoice creation', () => {
    expect(spec.components.schemas.InvoiceCreate.required).toEqual(expect.arrayContaining(['amount', 'currency']));
  });

  it('/health and /v1/public/* need no API key; everything else under /v1 does', () => {
    expect(spec.paths['/health']!.get!.security).toEqual([]);
    expect(Object.keys(spec.paths)).toEqual(expect.arrayContaining(['/v1/public/invoices/{id}', '/v1/public/invoices/{id}/stream']));
    expect(spec.paths['/v1/public/invoices/{id}']!.get!.security).toEqual([]);
    expect(spec.paths['/v1/public/invoices/{id}']!.get!.responses['200'].content['application/json'].schema.$ref).toBe('#/components/schemas/PublicInvoice');
    for (const { path, op } of ops()) {
      if (authenticated(path)) expect(op.security, path).toBeUndefined();
      else expect(op.security, path).toEqual([]);
    }
  });

  it('every operation states its scopes, in x-kassa-scopes and in its description', () => {
    for (const { path, method, op } of ops()) {
      const where = `${method} ${path}`;
      expect(Array.isArray(op['x-kassa-scopes']), where).toBe(true);
      if (authenticated(path)) {
        if (op['x-kassa-scopes'].length === 0) expect(op.description, where).toContain('Requires an API key (any scope).');
        for (const s of op['x-kassa-scopes']) {
          expect(SCOPES as readonly string[], where).toContain(s);
          expect(op.description, where).toContain(`\`${s}\``);
        }
      } else {
        expect(op.description, where).toContain('No API key needed.');
      }
    }
  });

  it('the stated scopes are the ones the API enforces: a key lacking them gets 403 naming them', async () => {
    const checked: string[] = [];
    for (const { path, method, op } of ops()) {
      if (!authenticated(path)) continue;
      const needed: string[] = op['x-kassa-scopes'];
      if (needed.length === 0) {
        // Any key will do: one with a single unrelated scope passes the scope check.
        const { secret } = await createMerchantWithKey(ctx.deps, { scopes: ['reports:read'] });
        const url = path.replace(/\{(\w+)\}/g, 'x_1');
        expect(await (await app.request(url, req(secret, method.toUpperCase()))).text(), `${method} ${path}`).not.toContain('scope_missing');
        continue;
      }
      const others = SCOPES.filter((s) => !needed.includes(s));
      const { secret } = await createMerchantWithKey(ctx.deps, { scopes: others.length ? others : ['reports:read'] });
      const url = path.replace(/\{(\w+)\}/g, (_m, n) => (n === 'chain' ? 'ethereum' : 'x_1'));
      const body = op.requestBody?.content?.['application/json']?.example;
      const res = await app.request(url, req(secret, method.toUpperCase(), body));
      const json = await res.json();
      expect(res.status, `${method} ${path}: ${JSON.stringify(json)}`).toBe(403);
      expect(json.error.code).toBe('scope_missing');
      for (const s of needed) expect(json.error.message).toContain(s);
      // ... and with exactly the needed scopes the scope check passes.
      const { secret: enough } = await createMerchantWithKey(ctx.deps, { scopes: needed as never });
      const ok = await app.request(url, req(enough, method.toUpperCase(), body));
      const text = ok.headers.get('content-type')?.includes('text/event-stream') ? (await ok.body?.cancel(), String(ok.status)) : await ok.text();
      expect(text, `${method} ${path} with ${needed.join(',')}`).not.toContain('scope_missing');
      checked.push(`${method} ${path}`);
    }
    expect(checked.length).toBeGreaterThanOrEqual(20);
  });

  it('every operation has an example response, request bodies have examples, and they match the route schemas', () => {
    const routes = app.openAPIRegistry.definitions.filter((d) => d.type === 'route').map((d) => (d as { route: any }).route);
    for (const { path, method, op } of ops()) {
      const where = `${method} ${path}`;
      const reqMedia = op.requestBody?.content?.['application/json'];
      if (reqMedia) expect(reqMedia.example, where).toBeDefined();
      const ok = Object.entries(op.responses as Record<string, any>).find(([code]) => code.startsWith('2'));
      expect(ok, where).toBeDefined();
      const media = Object.values(ok![1].content as Record<string, any>)[0];
      expect(media.example, where).toBeDefined();
      const route = routes.find((r) => r.method === method && r.path === path);
      const resSchema = route?.responses?.[ok![0]]?.content?.['application/json']?.schema as z.ZodTypeAny | undefined;
      if (resSchema && typeof resSchema.safeParse === 'function') {
        const r = resSchema.safeParse(media.example);
        expect(r.success, `${where} response example: ${JSON.stringify(r.error?.issues)}`).toBe(true);
      }
      const reqSchema = route?.request?.body?.content?.['application/json']?.schema as z.ZodTypeAny | undefined;
      if (reqSchema) {
        const r = reqSchema.safeParse(reqMedia.example);
        expect(r.success, `${where} request example: ${JSON.stringify(r.error?.issues)}`).toBe(true);
      }
    }
  });

  it('every operation has curl, Node (SDK) and Python samples; /docs renders them', async () => {
    for (const { path, method, op } of ops()) {
      const samples = op['x-codeSamples'] as { label: string; source: string }[];
      expect(samples.map((s) => s.label), `${method} ${path}`).toEqual(['curl', 'Node (@kassa/client)', 'Python (standard library)']);
      expect(samples[0]!.source).toContain('curl');
      if (authenticated(path)) expect(samples[1]!.source).toContain("from '@kassa/client'");
      else expect(samples[1]!.source).toMatch(/from '@kassa\/client'|fetch\(/);
      expect(samples[2]!.source).toContain('urllib.request');
      if (authenticated(path)) expect(samples[0]!.source).toContain('Authorization: Bearer $KASSA_API_KEY');
    }
    const create = spec.paths['/v1/invoices']!.post!['x-codeSamples'];
    expect(create[0].source).toContain(`-d '{"amount":"25.00","currency":"USD"`);
    expect(create[0].source).toContain('Idempotency-Key');
    const js = await (await app.request('/docs/app.js')).text();
    expect(js).toContain("op['x-codeSamples']");
  });

  it('the example Bitcoin descriptor is accepted by the API', async () => {
    // A database of its own: a key is refused when another merchant already uses it
    // (bitcoin_key_in_use), and the scope test above sends this example as another merchant.
    const own = await createTestContext({ KASSA_CONFIG: writeChainsFile() });
    try {
      const { secret } = await createMerchantWithKey(own.deps);
      const body = spec.paths['/v1/merchant/payment_methods/bitcoin']!.put!.requestBody.content['application/json'].example;
      const res = await createApp(own.deps).request('/v1/merchant/payment_methods/bitcoin', req(secret, 'PUT', body));
      expect(res.status, await res.clone().text()).toBe(200);
    } finally {
      await own.close();
    }
  });
});
