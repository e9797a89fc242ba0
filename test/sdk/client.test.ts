/**
 * @kassa/client against a real Kassa server: typed calls, idempotent retries through a faulty
 * proxy, pagination, typed errors, the event stream, webhook verification, and generated types
 * that match the current OpenAPI document.
 */
import { createServer, request as httpRequest, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { readFileSync } from 'node:fs';
import { serve, type ServerType } from '@hono/node-server';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createApp } from '../../src/api/app.ts';
import { signatureHeaders } from '../../src/webhooks/signing.ts';
import { KassaApiError, KassaClient, KassaConnectionError, verifyWebhook, WebhookVerificationError } from '../../packages/client/src/index.ts';
import { generateTypes, TYPES_FILE } from '../../packages/client/scripts/generate.ts';
import { createTestContext, type TestContext } from '../support/db.ts';
import { createPayableMerchant, writeChainsFile } from '../support/merchant.ts';

let ctx: TestContext;
let app: ReturnType<typeof createApp>;
let server: ServerType;
let url: string;
let shop: Awaited<ReturnType<typeof createPayableMerchant>>;
let kassa: KassaClient;

beforeAll(async () => {
  ctx = await createTestContext({ KASSA_CONFIG: writeChainsFile() });
  app = createApp(ctx.deps);
  server = await new Promise<ServerType>((resolve) => {
    const s = serve({ fetch: app.fetch, hostname: '127.0.0.1', port: 0 }, (info: AddressInfo) => {
      url = `http://127.0.0.1:${info.port}`;
      resolve(s);
    });
  });
  shop = await createPayableMerchant(ctx.deps, { name: 'SDK shop', seedByte: 11 });
  kassa = new KassaClient({ baseUrl: url, apiKey: shop.secret, retryBaseMs: 20 });
});
afterAll(async () => {
  (server as import('node:http').Server | undefined)?.closeAllConnections();
  server?.close();
  await ctx?.close();
});

/**
 * A proxy in front of Kassa. `plan` says what to do with each request, in order:
 * 'pass' forwards; 'lose' forwards but answers 502 (Kassa did the work, the answer was lost);
 * 'reset' destroys the connection without forwarding; '429' answers 429 with Retry-After: 0.
 */
async function faultyProxy(plan: ('pass' | 'lose' | 'reset' | '429')[]): Promise<{ url: string; seen: { method: string; key?: string }[]; close(): void }> {
  const seen: { method: string; key?: string }[] = [];
  const target = new URL(url);
  const proxy: Server = createServer((rq, rs) => {
    const action = plan.shift() ?? 'pass';
    seen.push({ method: rq.method!, ...(rq.headers['idempotency-key'] ? { key: String(rq.headers['idempotency-key']) } : {}) });
    if (action === 'reset') return void rq.socket.destroy();
    if (action === '429') return void rs.writeHead(429, { 'retry-after': '0', 'content-type': 'application/json' }).end('{"error":{"type":"rate_limit_error","code":"rate_limited","message":"slow down","request_id":"req_x"}}');
    const up = httpRequest({ host: target.hostname, port: target.port, path: rq.url, method: rq.method, headers: rq.headers }, (ur) => {
      if (action === 'lose') {
        ur.resume();
        ur.on('end', () => rs.writeHead(502).end('bad gateway'));
        return;
      }
      rs.writeHead(ur.statusCode!, ur.headers);
      ur.pipe(rs);
    });
    rq.pipe(up);
  });
  await new Promise<void>((r) => proxy.listen(0, '127.0.0.1', () => r()));
  return { url: `http://127.0.0.1:${(proxy.address() as AddressInfo).port}`, seen, close: () => proxy.close() };
}

async function invoicesWithOrder(orderId: string): Promise<number> {
  const [r] = await ctx.deps.sql<{ n: number }[]>`select count(*)::int as n from invoices where order_id = ${orderId}`;
  return r!.n;
}

describe('@kassa/client', () => {
  it('creates and reads an invoice with typed calls', async () => {
    const inv = await kassa.post('/v1/invoices', { body: { amount: '12.50', currency: 'USD', payment_methods: ['BTC'], order_id: 'sdk-1' } });
    expect(inv).toMatchObject({ object: 'invoice', amount: '12.50', currency: 'USD', status: 'new', order_id: 'sdk-1' });
    const again = await kassa.get('/v1/invoices/{id}', { params: { path: { id: inv.id } } });
    expect(again.id).toBe(inv.id);
    expect(again.payment_methods[0]!.method).toBe('BTC');
  });

  it('a POST whose answer is lost is retried with the same Idempotency-Key: one invoice, the same answer', async () => {
    const proxy = await faultyProxy(['lose', 'reset', 'pass']);
    try {
      const client = new KassaClient({ baseUrl: proxy.url, apiKey: shop.secret, retryBaseMs: 20 });
      const inv = await client.post('/v1/invoices', { body: { amount: '5.00', currency: 'USD', payment_methods: ['BTC'], order_id: 'sdk-retry' } });
      expect(proxy.seen).toHaveLength(3);
      expect(proxy.seen.every((s) => s.method === 'POST' && s.key === proxy.seen[0]!.key)).toBe(true);
      expect(proxy.seen[0]!.key).toMatch(/^[0-9a-f-]{36}$/);
      expect(await invoicesWithOrder('sdk-retry')).toBe(1);
      expect(inv.order_id).toBe('sdk-retry');
    } finally {
      proxy.close();
    }
  });

  it('retries a 429 (Retry-After) and gives up after maxRetries with KassaConnectionError', async () => {
    const proxy = await faultyProxy(['429', 'pass']);
    const client = new KassaClient({ baseUrl: proxy.url, apiKey: shop.secret, retryBaseMs: 20 });
    expect((await client.get('/v1/merchant')).id).toBe(shop.merchant.id);
    expect(proxy.seen).toHaveLength(2);
    proxy.close();

    const dead = await faultyProxy(['reset', 'reset', 'reset']);
    const impatient = new KassaClient({ baseUrl: dead.url, apiKey: shop.secret, retryBaseMs: 10, maxRetries: 2 });
    await expect(impatient.get('/v1/merchant')).rejects.toBeInstanceOf(KassaConnectionError);
    expect(dead.seen).toHaveLength(3);
    dead.close();
  });

  it('iterates over every page of a list', async () => {
    const made: string[] = [];
    for (let i = 0; i < 5; i++) {
      made.push((await kassa.post('/v1/invoices', { body: { amount: '1.00', currency: 'USD', payment_methods: ['BTC'], order_id: `page-${i}` } })).id);
    }
    const seen: string[] = [];
    for await (const inv of kassa.list('/v1/invoices', { params: { query: { limit: 2 } } })) seen.push(inv.id);
    expect(new Set(seen).size).toBe(seen.length);
    expect(seen.slice(0, 5)).toEqual([...made].reverse());
    const total = await ctx.deps.sql<{ n: number }[]>`select count(*)::int as n from invoices where merchant_id = ${shop.merchant.id}`;
    expect(seen).toHaveLength(total[0]!.n);
  });

  it('throws KassaApiError with status, code, type and param', async () => {
    const missing = await kassa.get('/v1/invoices/{id}', { params: { path: { id: 'inv_nothere' } } }).catch((e: unknown) => e);
    expect(missing).toBeInstanceOf(KassaApiError);
    expect(missing).toMatchObject({ status: 404, type: 'invalid_request_error' });
    const bad = await kassa.post('/v1/invoices', { body: { amount: 'ten', currency: 'USD' } }).catch((e: unknown) => e);
    expect(bad).toBeInstanceOf(KassaApiError);
    expect(bad).toMatchObject({ status: 400, param: 'amount' });
    expect((bad as KassaApiError).requestId).toMatch(/^req_/);
    const unauth = new KassaClient({ baseUrl: url, apiKey: 'kassa_sk_wrong' });
    await expect(unauth.get('/v1/merchant')).rejects.toMatchObject({ status: 401, type: 'authentication_error' });
  });

  it('follows the event stream', async () => {
    const ac = new AbortController();
    const it = kassa.events.stream({ signal: ac.signal })[Symbol.asyncIterator]();
    const first = it.next();
    await new Promise((r) => setTimeout(r, 300));
    const inv = await kassa.post('/v1/invoices', { body: { amount: '2.00', currency: 'USD', payment_methods: ['BTC'] } });
    const ev = await first;
    expect(ev.value).toMatchObject({ type: 'invoice.created', data: { object: { id: inv.id } } });
    ac.abort();
    await it.return?.(undefined);
  });

  it('verifies webhook signatures', () => {
    const secret = 'whsec_' + Buffer.alloc(32, 9).toString('base64');
    const body = JSON.stringify({ id: 'evt_1', type: 'invoice.settled', created_at: '2026-01-01T00:00:00.000Z', api_version: 'x', data: { object: {} } });
    const now = Math.floor(Date.now() / 1000);
    const headers = signatureHeaders(['whsec_' + Buffer.alloc(32, 1).toString('base64'), secret], 'evt_1', now, body);
    expect(verifyWebhook(secret, headers, body).type).toBe('invoice.settled');
    expect(() => verifyWebhook(secret, headers, body.replace('settled', 'expired'))).toThrow(WebhookVerificationError);
    expect(() => verifyWebhook(secret, headers, body, now + 301)).toThrow(WebhookVerificationError);
    expect(() => verifyWebhook('whsec_' + Buffer.alloc(32, 2).toString('base64'), headers, body)).toThrow(WebhookVerificationError);
  });

  it('the committed types match the current OpenAPI document (regenerate with npm run generate -w @kassa/client)', async () => {
    const spec = await (await app.request('/openapi.json')).json();
    expect(await generateTypes(spec)).toBe(readFileSync(TYPES_FILE, 'utf8'));
  });
});
