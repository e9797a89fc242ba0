/**
 * GET /v1/events/stream (one merchant's event log as SSE, resumable) and `kassa listen`, run as the
 * real CLI against a real server, forwarding to a local receiver that verifies the signatures.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { serve, type ServerType } from '@hono/node-server';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createApp } from '../../src/api/app.ts';
import { parseSse } from '../../packages/client/src/sse.ts';
import { verifyWebhook } from '../../src/webhooks/verify.ts';
import { createMerchantWithKey, createTestContext, req, type TestContext } from '../support/db.ts';
import { createPayableMerchant, writeChainsFile } from '../support/merchant.ts';

let ctx: TestContext;
let app: ReturnType<typeof createApp>;
let server: ServerType;
let port: number;
let url: string;
let shopA: Awaited<ReturnType<typeof createPayableMerchant>>;
let shopB: Awaited<ReturnType<typeof createPayableMerchant>>;

function listenOn(p: number): Promise<ServerType> {
  return new Promise((resolve) => {
    const s = serve({ fetch: app.fetch, hostname: '127.0.0.1', port: p }, (info: AddressInfo) => {
      port = info.port;
      resolve(s);
    });
  });
}

beforeAll(async () => {
  ctx = await createTestContext({ KASSA_CONFIG: writeChainsFile() });
  app = createApp(ctx.deps);
  server = await listenOn(0);
  url = `http://127.0.0.1:${port}`;
  shopA = await createPayableMerchant(ctx.deps, { name: 'Shop A', seedByte: 3 });
  shopB = await createPayableMerchant(ctx.deps, { name: 'Shop B', seedByte: 4 });
});
afterAll(async () => {
  (server as import('node:http').Server | undefined)?.closeAllConnections();
  server?.close();
  await ctx?.close();
});

async function createInvoice(secret: string, orderId: string): Promise<string> {
  const res = await app.request('/v1/invoices', req(secret, 'POST', { amount: '10.00', currency: 'USD', payment_methods: ['BTC'], order_id: orderId }));
  expect(res.status, await res.clone().text()).toBe(201);
  return ((await res.json()) as { id: string }).id;
}

/** Reads SSE events until `n` arrived or `ms` passed. */
async function collect(res: Response, n: number, ms: number): Promise<{ id?: string; event?: string; data?: string }[]> {
  const got: { id?: string; event?: string; data?: string }[] = [];
  const it = parseSse(res.body!)[Symbol.asyncIterator]();
  const deadline = Date.now() + ms;
  while (got.length < n && Date.now() < deadline) {
    const next = await Promise.race([it.next(), new Promise<null>((r) => setTimeout(() => r(null), Math.max(1, deadline - Date.now())))]);
    if (!next || next.done) break;
    got.push(next.value);
  }
  await res.body!.cancel().catch(() => {});
  return got;
}

const stream = (secret: string, headers: Record<string, string> = {}, query = '') =>
  fetch(`${url}/v1/events/stream${query}`, { headers: { authorization: `Bearer ${secret}`, ...headers } });

describe('GET /v1/events/stream', () => {
  it('sends only this merchant\'s new events, with the webhook body, and resumes after Last-Event-ID', async () => {
    await createInvoice(shopA.secret, 'before-connect'); // not sent: the stream starts at "now"
    const res = await stream(shopA.secret);
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toContain('text/event-stream');
    expect(res.headers.get('x-accel-buffering')).toBe('no');
    const pending = collect(res, 2, 15_000);
    await new Promise((r) => setTimeout(r, 300));
    const invB = await createInvoice(shopB.secret, 'b-1');
    const inv1 = await createInvoice(shopA.secret, 'a-1');
    const inv2 = await createInvoice(shopA.secret, 'a-2');
    const got = await pending;
    expect(got.map((e) => e.event)).toEqual(['invoice.created', 'invoice.created']);
    const bodies = got.map((e) => JSON.parse(e.data!));
    expect(bodies.map((b) => b.data.object.id)).toEqual([inv1, inv2]);
    expect(got.map((e) => e.id)).toEqual(bodies.map((b) => b.id));
    expect(JSON.stringify(bodies)).not.toContain(invB);
    // The data is exactly the event as the API shows it (the webhook body).
    const listed = await (await app.request(`/v1/events/${got[0]!.id}`, req(shopA.secret, 'GET'))).json();
    expect(bodies[0]).toEqual({ id: listed.id, type: listed.type, created_at: listed.created_at, api_version: listed.api_version, data: listed.data });

    // Resume after the first: the second comes again, then a new one; the header and ?after= agree.
    const inv3 = await createInvoice(shopA.secret, 'a-3');
    for (const resumed of [await stream(shopA.secret, { 'last-event-id': got[0]!.id! }), await stream(shopA.secret, {}, `?after=${got[0]!.id}`)]) {
      const again = await collect(resumed, 2, 15_000);
      expect(again.map((e) => JSON.parse(e.data!).data.object.id)).toEqual([inv2, inv3]);
    }
  });

  it('refuses another merchant\'s event id as a cursor, and a key without invoices:read', async () => {
    const resB = await app.request('/v1/events?limit=1', req(shopB.secret, 'GET'));
    const bEvent = ((await resB.json()) as { data: { id: string }[] }).data[0]!.id;
    const res = await stream(shopA.secret, { 'last-event-id': bEvent });
    expect(res.status).toBe(400);
    expect((await res.json()).error).toMatchObject({ code: 'cursor_invalid', param: 'after' });
    const { secret } = await createMerchantWithKey(ctx.deps, { scopes: ['reports:read'] });
    const denied = await stream(secret);
    expect(denied.status).toBe(403);
    expect(await stream('kassa_sk_nope')).toHaveProperty('status', 401);
  });
});

describe('kassa listen', () => {
  const BIN = path.resolve('bin/kassa.js');
  const SECRET = 'whsec_' + Buffer.alloc(32, 5).toString('base64');
  let receiver: Server;
  let receiverUrl: string;
  const received: { id: string; type: string; invoice: string }[] = [];
  const rejected: string[] = [];
  let child: ChildProcess | undefined;
  let stdout = '';

  beforeAll(async () => {
    receiver = createServer((rq, rs) => {
      const chunks: Buffer[] = [];
      rq.on('data', (c: Buffer) => chunks.push(c));
      rq.on('end', () => {
        const body = Buffer.concat(chunks).toString('utf8');
        try {
          const ev = verifyWebhook(SECRET, rq.headers as Record<string, string>, body) as { id: string; type: string; data: { object: { id: string } } };
          expect(rq.headers['webhook-id']).toBe(ev.id);
          received.push({ id: ev.id, type: ev.type, invoice: ev.data.object.id });
          rs.writeHead(204).end();
        } catch (err) {
          rejected.push((err as Error).message);
          rs.writeHead(400).end();
        }
      });
    });
    await new Promise<void>((r) => receiver.listen(0, '127.0.0.1', () => r()));
    receiverUrl = `http://127.0.0.1:${(receiver.address() as AddressInfo).port}/hooks`;
  });
  afterAll(() => {
    child?.kill('SIGTERM');
    receiver?.close();
  });

  async function waitFor(cond: () => boolean, ms: number, what: string): Promise<void> {
    const deadline = Date.now() + ms;
    while (!cond()) {
      if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}; listen printed:\n${stdout}`);
      await new Promise((r) => setTimeout(r, 100));
    }
  }

  it('forwards signed events, prints one line each, filters by type and resumes after the server comes back', async () => {
    child = spawn(process.execPath, [BIN, 'listen', '--forward-to', receiverUrl, '--url', url, '--secret', SECRET, '--events', 'invoice.created'], {
      env: { ...process.env, KASSA_API_KEY: shopA.secret },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    child.stdout!.on('data', (d: Buffer) => { stdout += d.toString(); });
    child.stderr!.on('data', (d: Buffer) => { stdout += d.toString(); });
    await waitFor(() => /connected to/.test(stdout), 60_000, 'the first connection');
    expect(stdout).toContain(`Webhook signing secret: ${SECRET}`);

    const inv1 = await createInvoice(shopA.secret, 'listen-1');
    await createInvoice(shopB.secret, 'listen-other-merchant');
    // Marking emits invoice.marked (and more), which --events filters out.
    const mark = await app.request(`/v1/invoices/${inv1}/mark`, req(shopA.secret, 'POST', { status: 'invalid' }));
    expect(mark.status).toBe(200);
    const inv2 = await createInvoice(shopA.secret, 'listen-2');
    await waitFor(() => received.length >= 2, 30_000, 'two deliveries');
    expect(received.map((r) => r.invoice)).toEqual([inv1, inv2]);
    expect(received.every((r) => r.type === 'invoice.created')).toBe(true);
    const line = new RegExp(`^\\d{4}-\\d\\d-\\d\\dT[\\d:.]+Z\\s+invoice\\.created\\s+${received[0]!.id}\\s+-> 204\\s+\\d+ ms$`, 'm');
    expect(stdout).toMatch(line);

    // The server goes away; an event is created meanwhile; listen reconnects and forwards it once.
    (server as import('node:http').Server).closeAllConnections();
    await new Promise<void>((r) => server.close(() => r()));
    await waitFor(() => /connection lost|cannot connect/.test(stdout), 20_000, 'the lost connection');
    const inv3 = await createInvoice(shopA.secret, 'listen-3');
    server = await listenOn(port);
    await waitFor(() => received.length >= 3, 40_000, 'the delivery after reconnecting');
    await new Promise((r) => setTimeout(r, 2500)); // would a duplicate follow?
    expect(received.map((r) => r.invoice)).toEqual([inv1, inv2, inv3]);
    expect(new Set(received.map((r) => r.id)).size).toBe(3);
    expect(stdout).toMatch(/resuming after evt_/);
    expect(rejected).toEqual([]);
  }, 150_000);
});
