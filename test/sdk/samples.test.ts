/**
 * docs/samples: the plain-JavaScript webhook verifier receives a real event signed the way Kassa
 * signs deliveries, and the curl sample creates an invoice on a real server.
 */
import { execFile, spawn } from 'node:child_process';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { promisify } from 'node:util';
import { serve, type ServerType } from '@hono/node-server';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createApp } from '../../src/api/app.ts';
import { signatureHeaders } from '../../src/webhooks/signing.ts';
import { createTestContext, req, type TestContext } from '../support/db.ts';
import { createPayableMerchant, writeChainsFile } from '../support/merchant.ts';

const run = promisify(execFile);
let ctx: TestContext;
let app: ReturnType<typeof createApp>;
let server: ServerType;
let url: string;
let shop: Awaited<ReturnType<typeof createPayableMerchant>>;

beforeAll(async () => {
  ctx = await createTestContext({ KASSA_CONFIG: writeChainsFile() });
  app = createApp(ctx.deps);
  server = await new Promise<ServerType>((resolve) => {
    const s = serve({ fetch: app.fetch, hostname: '127.0.0.1', port: 0 }, (info: AddressInfo) => {
      url = `http://127.0.0.1:${info.port}`;
      resolve(s);
    });
  });
  shop = await createPayableMerchant(ctx.deps, { name: 'Samples shop', seedByte: 12 });
});
afterAll(async () => {
  server?.close();
  await ctx?.close();
});

describe('docs/samples', () => {
  it('create-invoice.sh (curl) creates an invoice', async () => {
    const { stdout } = await run('sh', [path.resolve('docs/samples/create-invoice.sh')], {
      env: { ...process.env, KASSA_URL: url, KASSA_API_KEY: shop.secret, IDEMPOTENCY_KEY: 'sample-1' },
    });
    const inv = JSON.parse(stdout);
    expect(inv).toMatchObject({ object: 'invoice', amount: '25.00', currency: 'USD', order_id: 'order-1042' });
    const got = await app.request(`/v1/invoices/${inv.id}`, req(shop.secret, 'GET'));
    expect(got.status).toBe(200);
  });

  it('verify-webhook.mjs accepts a delivery signed like Kassa\'s and rejects a tampered one', async () => {
    const secret = 'whsec_' + Buffer.alloc(32, 21).toString('base64');
    const child = spawn(process.execPath, [path.resolve('docs/samples/verify-webhook.mjs')], {
      env: { ...process.env, PORT: '0', KASSA_WEBHOOK_SECRET: secret }, stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    child.stdout.on('data', (d: Buffer) => { out += d.toString(); });
    child.stderr.on('data', (d: Buffer) => { out += d.toString(); });
    try {
      const deadline = Date.now() + 15_000;
      while (!/listening on \d+/.test(out) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
      const port = /listening on (\d+)/.exec(out)![1];
      // A real event of this merchant, as Kassa delivers it (the API's event minus the list fields).
      const list = await (await app.request('/v1/events?limit=1', req(shop.secret, 'GET'))).json();
      const { object: _o, delivery_status: _d, ...event } = list.data[0];
      const body = JSON.stringify(event);
      const headers = signatureHeaders([secret], event.id, Math.floor(Date.now() / 1000), body);
      const ok = await fetch(`http://127.0.0.1:${port}/`, { method: 'POST', headers: { ...headers, 'content-type': 'application/json' }, body });
      expect(ok.status).toBe(204);
      const tampered = await fetch(`http://127.0.0.1:${port}/`, { method: 'POST', headers, body: body.replace('"new"', '"settled"') });
      expect(tampered.status).toBe(400);
      const unsigned = await fetch(`http://127.0.0.1:${port}/`, { method: 'POST', body });
      expect(unsigned.status).toBe(400);
      await new Promise((r) => setTimeout(r, 200));
      expect(out).toContain(`verified ${event.id} invoice.created ${event.data.object.id} new`);
      expect(out.match(/rejected: /g)).toHaveLength(2);
    } finally {
      child.kill();
    }
  });
});
