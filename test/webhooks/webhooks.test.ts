/**
 * Webhooks end to end against the real Postgres and Redis and a real HTTP receiver on 127.0.0.1:
 * the outbox relay, signed deliveries (verified with the `standardwebhooks` package), retries,
 * manual redelivery, Redis loss, SSRF refusal, slow endpoints, isolation and secret hygiene.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Webhook } from 'standardwebhooks';
import { createTestContext, createMerchantWithKey, req, type TestContext } from '../support/db.ts';
import { createPayableMerchant, writeChainsFile } from '../support/merchant.ts';
import { createApp } from '../../src/api/app.ts';
import { redisConnection } from '../../src/deps.ts';
import { startWorkers, type WorkerRunner } from '../../src/queues/runner.ts';
import { buildWebhookProcessors, type WebhookWorkers } from '../../workers/webhooks.ts';
import { createWebhookDeliverer } from '../../src/webhooks/delivery.ts';
import { createWebhookService } from '../../src/webhooks/service.ts';
import { EVENT_TYPES } from '../../src/invoices/events.ts';
import { Receiver, chainFeeder, flushQueuePrefix, shapeOf, waitFor } from './support.ts';

const DELAYS = [150, 250, 400, 700, 1000, 1500]; // ≈ 4 s of retries in total
let ctx: TestContext;
let app: ReturnType<typeof createApp>;
let shop: Awaited<ReturnType<typeof createPayableMerchant>>;
let receiver: Receiver;
let workers: WebhookWorkers;
let runner: WorkerRunner;
let connection: ReturnType<typeof redisConnection>;
let feed: ReturnType<typeof chainFeeder>;
const secrets: string[] = [];

async function startPipeline() {
  workers = buildWebhookProcessors(ctx.deps, { relayEveryMs: 150, watchdogMs: 300 });
  runner = startWorkers({ connection, prefix: ctx.config.queuePrefix, logger: ctx.deps.logger, processors: workers.processors });
  await workers.start();
}
async function stopPipeline() {
  await workers.stop();
  await runner.close();
}

beforeAll(async () => {
  receiver = new Receiver();
  await receiver.start();
  ctx = await createTestContext({
    KASSA_CONFIG: writeChainsFile(),
    WEBHOOK_ALLOWED_HOSTS: '127.0.0.1',
    WEBHOOK_RETRY_DELAYS_MS: DELAYS.join(','),
    WEBHOOK_TIMEOUT_MS: '3000',
  });
  app = createApp(ctx.deps);
  shop = await createPayableMerchant(ctx.deps);
  feed = chainFeeder(ctx);
  await feed.mineBlock('bitcoin', []);
  connection = redisConnection(ctx.config.redisUrl);
  await startPipeline();
}, 60_000);

afterAll(async () => {
  await stopPipeline().catch(() => {});
  connection?.disconnect();
  await receiver?.stop();
  await ctx?.close();
});

async function api(method: string, path: string, body?: unknown, secret = shop.secret) {
  const res = await app.request(path, req(secret, method, body));
  return { status: res.status, body: (await res.json()) as any };
}

async function createEndpoint(path: string, events?: string[], secret = shop.secret) {
  const res = await api('POST', '/v1/webhook_endpoints', { url: receiver.url(path), ...(events ? { events } : {}) }, secret);
  expect(res.status).toBe(201);
  secrets.push(res.body.secret);
  return res.body as { id: string; secret: string };
}

async function createInvoice(body: Record<string, unknown> = {}) {
  const merchant = await ctx.deps.merchants.get(ctx.deps.sql, shop.merchant.id);
  return ctx.deps.invoices.create(merchant, { amount: '30.00', currency: 'USD', ...body } as never);
}
type Inv = Awaited<ReturnType<typeof createInvoice>>;
const btc = (inv: Inv, sats: bigint) => ({
  txid: feed.newTxid(), outputIndex: 0, address: inv.payment_methods.find((m) => m.method === 'BTC')!.address, token: null, amount: sats,
});

const bodies = (path: string) => receiver.at(path).map((r) => ({ ...r, json: JSON.parse(r.body) }));
const deliveries = (eventId: string) =>
  ctx.deps.sql<{ id: string; status: string; attempt_count: number; endpoint_id: string }[]>`
    select id, status, attempt_count, endpoint_id from webhook_deliveries where event_id = ${eventId}`;
const eventIds = async (invoiceId: string) =>
  (await ctx.deps.sql<{ id: string; type: string }[]>`select id, type from events where invoice_id = ${invoiceId} order by seq`);

describe('happy path', () => {
  it('a paid invoice produces created, payment_detected, processing and settled at the receiver, each verified with standardwebhooks', async () => {
    const ep = await createEndpoint('/happy');
    const inv = await createInvoice();
    const pay = btc(inv, 50_000n);
    await feed.seeInMempool('bitcoin', [pay]);
    await feed.mineBlock('bitcoin', [pay]);
    const want = ['invoice.created', 'invoice.payment_detected', 'invoice.processing', 'invoice.payment_confirmed', 'invoice.settled'];
    const got = await waitFor('4 events', () => {
      const mine = bodies('/happy').filter((b) => b.json.data.object.id === inv.id);
      return want.every((t) => mine.some((b) => b.json.type === t)) && mine;
    });
    const wh = new Webhook(ep.secret);
    for (const r of got) {
      expect(wh.verify(r.body, r.headers)).toEqual(r.json);
      expect(r.headers['webhook-id']).toBe(r.json.id);
      expect(r.headers['user-agent']).toBe('Kassa-Webhooks/1.0');
      expect(r.headers['content-type']).toBe('application/json');
      expect(r.json.api_version).toMatch(/^\d{4}-\d{2}-\d{2}$/);
      expect(Object.keys(r.json).sort()).toEqual(['api_version', 'created_at', 'data', 'id', 'type']);
    }
    const events = await eventIds(inv.id);
    expect(events.map((e) => e.type)).toEqual(want);
    expect(new Set(got.map((r) => r.json.id))).toEqual(new Set(events.map((e) => e.id)));
    expect(got.find((r) => r.json.type === 'invoice.settled')!.json.data.object.status).toBe('settled');
    expect(got.find((r) => r.json.type === 'invoice.payment_detected')!.json.data.payment.txid).toBe(pay.txid);

    // The event log shows them delivered, with the attempt recorded.
    await waitFor('delivered in the log', async () => (await api('GET', `/v1/events?delivery_status=delivered&limit=100`)).body.data.length >= 5);
    const detail = await api('GET', `/v1/events/${events[4]!.id}`);
    expect(detail.status).toBe(200);
    expect(detail.body).toMatchObject({ id: events[4]!.id, object: 'event', type: 'invoice.settled', delivery_status: 'delivered' });
    expect(detail.body.deliveries[0]).toMatchObject({ endpoint_id: ep.id, status: 'delivered', attempt_count: 1, next_attempt_at: null });
    expect(detail.body.deliveries[0].attempts[0]).toMatchObject({ attempt: 1, status_code: 200, error: null, response_snippet: 'thanks' });
    expect(typeof detail.body.deliveries[0].attempts[0].duration_ms).toBe('number');
    const filtered = await api('GET', `/v1/events?type=invoice.settled`);
    expect(filtered.body.data.every((e: { type: string }) => e.type === 'invoice.settled')).toBe(true);
    await api('DELETE', `/v1/webhook_endpoints/${ep.id}`);
  });

  it('an endpoint gets only the event types it subscribed to', async () => {
    const ep = await createEndpoint('/only-created', ['invoice.created']);
    const inv = await createInvoice();
    await feed.mineBlock('bitcoin', [btc(inv, 50_000n)]);
    await waitFor('settled delivered elsewhere', async () => (await eventIds(inv.id)).length >= 4);
    await waitFor('created', () => bodies('/only-created').some((b) => b.json.data.object.id === inv.id));
    await new Promise((r) => setTimeout(r, 500));
    expect(bodies('/only-created').filter((b) => b.json.data.object.id === inv.id).map((b) => b.json.type)).toEqual(['invoice.created']);
    await api('DELETE', `/v1/webhook_endpoints/${ep.id}`);
  });

  it('after rotate_secret both signatures are sent: the old and the new secret verify', async () => {
    const ep = await createEndpoint('/rotate', ['invoice.created']);
    const rotated = await api('POST', `/v1/webhook_endpoints/${ep.id}/rotate_secret`);
    expect(rotated.status).toBe(200);
    secrets.push(rotated.body.secret);
    expect(rotated.body.secret).toMatch(/^whsec_[A-Za-z0-9+/=]{40,}$/);
    expect(rotated.body.secret).not.toBe(ep.secret);
    expect(rotated.body.previous_secret_expires_at).not.toBeNull();
    const inv = await createInvoice();
    const r = await waitFor('delivery', () => bodies('/rotate').find((b) => b.json.data.object.id === inv.id));
    expect(r.headers['webhook-signature']!.split(' ')).toHaveLength(2);
    expect(new Webhook(ep.secret).verify(r.body, r.headers)).toBeTruthy();
    expect(new Webhook(rotated.body.secret).verify(r.body, r.headers)).toBeTruthy();
    await api('DELETE', `/v1/webhook_endpoints/${ep.id}`);
  });
});

describe('retries and failures', () => {
  it('retries 5xx on the schedule up to failure; a manual redelivery then succeeds with the same webhook-id', async () => {
    receiver.modes.set('/flaky', 'fail');
    const ep = await createEndpoint('/flaky', ['invoice.created']);
    const inv = await createInvoice();
    const [created] = await eventIds(inv.id);
    const started = Date.now();
    await waitFor('failed', async () => (await deliveries(created!.id))[0]?.status === 'failed', 20_000);
    const elapsed = Date.now() - started;
    const [d] = await deliveries(created!.id);
    expect(d!.attempt_count).toBe(DELAYS.length + 1);
    const sum = DELAYS.reduce((a, b) => a + b, 0);
    expect(elapsed).toBeGreaterThanOrEqual(sum * 0.9);
    const hits = bodies('/flaky').filter((b) => b.json.id === created!.id);
    expect(hits).toHaveLength(DELAYS.length + 1);
    // gaps between attempts grow with the schedule (±10 % jitter, plus processing time)
    for (let i = 1; i < hits.length; i++) expect(hits[i]!.at - hits[i - 1]!.at).toBeGreaterThanOrEqual(DELAYS[i - 1]! * 0.85);

    let detail = await api('GET', `/v1/events/${created!.id}`);
    expect(detail.body.delivery_status).toBe('failed');
    const attempts = detail.body.deliveries[0].attempts;
    expect(attempts).toHaveLength(DELAYS.length + 1);
    expect(attempts.every((a: any) => a.status_code === 500 && a.error === 'HTTP 500' && a.response_snippet.length <= 1024)).toBe(true);
    expect(detail.body.deliveries[0].next_attempt_at).toBeNull();
    expect((await api('GET', '/v1/events?delivery_status=failed&limit=100')).body.data.map((e: any) => e.id)).toContain(created!.id);

    receiver.modes.set('/flaky', 'ok');
    const redo = await api('POST', `/v1/events/${created!.id}/redeliver`);
    expect(redo.status).toBe(200);
    await waitFor('redelivered', async () => (await deliveries(created!.id))[0]?.status === 'delivered');
    const all = bodies('/flaky').filter((b) => b.json.id === created!.id);
    expect(new Set(all.map((b) => b.headers['webhook-id']))).toEqual(new Set([created!.id]));
    detail = await api('GET', `/v1/events/${created!.id}`);
    expect(detail.body.delivery_status).toBe('delivered');
    expect(detail.body.deliveries[0].attempts.at(-1)).toMatchObject({ status_code: 200 });
    await api('DELETE', `/v1/webhook_endpoints/${ep.id}`);
  }, 40_000);

  it('a 4xx is recorded and not retried; a 3xx redirect is not followed', async () => {
    receiver.modes.set('/reject', 'bad_request');
    receiver.modes.set('/moved', 'redirect');
    const a = await createEndpoint('/reject', ['invoice.created']);
    const b = await createEndpoint('/moved', ['invoice.created']);
    const inv = await createInvoice();
    const [created] = await eventIds(inv.id);
    await waitFor('both failed', async () => (await deliveries(created!.id)).filter((d) => d.status === 'failed').length === 2);
    await new Promise((r) => setTimeout(r, DELAYS[0]! * 3));
    const ds = await deliveries(created!.id);
    expect(ds.map((d) => d.attempt_count)).toEqual([1, 1]);
    const detail = await api('GET', `/v1/events/${created!.id}`);
    const byEndpoint = Object.fromEntries(detail.body.deliveries.map((d: any) => [d.endpoint_id, d]));
    expect(byEndpoint[a.id].attempts[0]).toMatchObject({ status_code: 400, error: 'HTTP 400' });
    expect(byEndpoint[b.id].attempts[0]).toMatchObject({ status_code: 302, error: 'redirect (302) not followed' });
    expect(receiver.received.filter((r) => r.path === '/elsewhere')).toHaveLength(0);
    await api('DELETE', `/v1/webhook_endpoints/${a.id}`);
    await api('DELETE', `/v1/webhook_endpoints/${b.id}`);
  });

  it('429 is retried no sooner than Retry-After', async () => {
    receiver.modes.set('/busy', 'too_many');
    const ep = await createEndpoint('/busy', ['invoice.created']);
    const inv = await createInvoice();
    const [created] = await eventIds(inv.id);
    await waitFor('second attempt', () => bodies('/busy').filter((b) => b.json.id === created!.id).length >= 2, 10_000);
    const hits = bodies('/busy').filter((b) => b.json.id === created!.id);
    expect(hits[1]!.at - hits[0]!.at).toBeGreaterThanOrEqual(950);
    receiver.modes.set('/busy', 'ok');
    await api('DELETE', `/v1/webhook_endpoints/${ep.id}`);
  });

  it('receiver down then up: every event arrives at least once, none lost, ids stable', async () => {
    const down = new Receiver();
    await down.start();
    const port = down.port;
    await down.stop(); // connection refused from now on
    const res = await api('POST', '/v1/webhook_endpoints', { url: `http://127.0.0.1:${port}/hook` });
    secrets.push(res.body.secret);
    const invoices = [await createInvoice(), await createInvoice(), await createInvoice()];
    await feed.mineBlock('bitcoin', [btc(invoices[0]!, 50_000n)]);
    const expected = (await Promise.all(invoices.map((i) => eventIds(i.id)))).flat();
    await waitFor('attempts failing', async () => {
      const [r] = await ctx.deps.sql`select count(*)::int as n from webhook_attempts a join webhook_deliveries d on d.id = a.delivery_id
        where d.endpoint_id = ${res.body.id} and a.error like 'ECONNREFUSED%'`;
      return r!.n >= expected.length;
    });
    await down.start(port);
    try {
      await waitFor('all delivered', () => {
        const ids = new Set(down.received.map((r) => JSON.parse(r.body).id));
        return expected.every((e) => ids.has(e.id));
      }, 20_000);
      for (const r of down.received) {
        const json = JSON.parse(r.body);
        expect(r.headers['webhook-id']).toBe(json.id);
        expect(new Webhook(res.body.secret).verify(r.body, r.headers)).toBeTruthy();
      }
    } finally {
      await down.stop();
      await api('DELETE', `/v1/webhook_endpoints/${res.body.id}`);
    }
  }, 40_000);

  it('Redis flushed mid-run (this test\'s queue keys deleted): undelivered events are still delivered', async () => {
    receiver.modes.set('/flush', 'fail');
    const ep = await createEndpoint('/flush');
    const invoices = [await createInvoice(), await createInvoice()];
    await feed.mineBlock('bitcoin', [btc(invoices[0]!, 50_000n)]);
    const expected = (await Promise.all(invoices.map((i) => eventIds(i.id)))).flat();
    await waitFor('each tried once', async () => {
      const rows = await ctx.deps.sql<{ n: number }[]>`select count(*)::int as n from webhook_deliveries where endpoint_id = ${ep.id} and attempt_count >= 1`;
      return rows[0]!.n === expected.length;
    });
    // And some events not even relayed yet when Redis loses everything.
    const late = await createInvoice();
    const deleted = await flushQueuePrefix(ctx);
    expect(deleted).toBeGreaterThan(0);
    receiver.modes.set('/flush', 'ok');
    const all = [...expected, ...(await eventIds(late.id))];
    await waitFor('all delivered after the flush', () => {
      const ids = new Set(bodies('/flush').filter((b) => b.status === 200).map((b) => b.json.id));
      return all.every((e) => ids.has(e.id));
    }, 20_000);
    // The receiver sees a request before the deliverer records its outcome: wait for the rows.
    const undelivered = async () => (await ctx.deps.sql<{ event_id: string; status: string; last_error: string | null; attempt_count: number }[]>`
      select event_id, status, last_error, attempt_count from webhook_deliveries where endpoint_id = ${ep.id} and event_id in ${ctx.deps.sql(all.map((e) => e.id))}`)
      .filter((s) => s.status !== 'delivered');
    await waitFor('every delivery recorded as delivered', async () => (await undelivered()).length === 0, 10_000).catch(() => {});
    expect(await undelivered()).toEqual([]);
    await api('DELETE', `/v1/webhook_endpoints/${ep.id}`);
  }, 40_000);

  it('one hanging endpoint does not delay another; its attempt times out', async () => {
    receiver.modes.set('/slow', 'hang');
    const slow = await createEndpoint('/slow', ['invoice.created']);
    const fast = await createEndpoint('/fast', ['invoice.created']);
    const invs = [await createInvoice(), await createInvoice(), await createInvoice()];
    const t0 = Date.now();
    await waitFor('fast gets all', () => invs.every((i) => bodies('/fast').some((b) => b.json.data.object.id === i.id)));
    expect(Date.now() - t0).toBeLessThan(2500); // before the 3 s timeout of the slow one
    const [created] = await eventIds(invs[0]!.id);
    await waitFor('timeout recorded', async () => {
      const d = await api('GET', `/v1/events/${created!.id}`);
      const att = d.body.deliveries.find((x: any) => x.endpoint_id === slow.id)?.attempts[0];
      return att && /timed out/.test(att.error) && att.duration_ms >= 2900 && att.status_code === null;
    });
    await api('DELETE', `/v1/webhook_endpoints/${slow.id}`);
    await api('DELETE', `/v1/webhook_endpoints/${fast.id}`);
  });

  it('an endpoint whose deliveries all failed for 3 days is disabled and says why', async () => {
    receiver.modes.set('/dead', 'fail');
    const ep = await createEndpoint('/dead', ['invoice.created']);
    await ctx.deps.sql`update webhook_endpoints set failing_since = now() - interval '3 days 1 minute' where id = ${ep.id}`;
    await createInvoice();
    const got = await waitFor('disabled', async () => {
      const r = await api('GET', `/v1/webhook_endpoints/${ep.id}`);
      return r.body.enabled === false && r.body;
    });
    expect(got.disabled_reason).toMatch(/3 days/);
    expect(got.disabled_at).not.toBeNull();
    expect(ctx.logs.text()).toContain('endpoint.disabled');
    const re = await api('POST', `/v1/webhook_endpoints/${ep.id}`, { enabled: true });
    expect(re.body).toMatchObject({ enabled: true, disabled_reason: null, disabled_at: null });
    await api('DELETE', `/v1/webhook_endpoints/${ep.id}`);
  });
});

describe('SSRF protection', () => {
  const forbidden = ['http://127.0.0.1:9/x', 'http://10.0.0.1/x', 'http://169.254.169.254/latest/meta-data', 'http://[::1]:9/x', 'http://[::ffff:127.0.0.1]:9/x', 'http://localhost:9/x', 'http://[fe80::1]/x', 'http://100.64.0.1/x', 'http://[64:ff9b::7f00:1]/x'];

  it('refuses private, loopback, link-local and mapped addresses at creation unless allow-listed', async () => {
    const strict = createWebhookService({ ...ctx.deps, config: { ...ctx.config, webhooks: { ...ctx.config.webhooks, allowedHosts: [] } } });
    for (const url of forbidden) {
      await expect(strict.createEndpoint(shop.merchant.id, { url }), url).rejects.toMatchObject({ code: 'url_not_allowed', param: 'url' });
    }
    // The API (allow-list 127.0.0.1) refuses the others too
    const res = await api('POST', '/v1/webhook_endpoints', { url: 'http://169.254.169.254/' });
    expect(res.status).toBe(400);
    expect(res.body.error).toMatchObject({ code: 'url_not_allowed', param: 'url' });
  });

  it('refuses at delivery time: a name resolving to loopback, and literal private addresses; nothing is sent', async () => {
    const strictConfig = { ...ctx.config, webhooks: { ...ctx.config.webhooks, allowedHosts: [] } };
    const deliverer = createWebhookDeliverer({ sql: ctx.deps.sql, config: strictConfig, logger: ctx.deps.logger, queues: ctx.deps.queues });
    // Rows inserted directly (as if the DNS answer changed after creation), bypassing the creation check.
    const inv = await createInvoice();
    await waitFor('relayed', async () => (await ctx.deps.sql`select 1 from events where invoice_id = ${inv.id} and relayed_at is not null`).length > 0);
    const [created] = await eventIds(inv.id);
    const urls = [`http://localhost:${receiver.port}/ssrf`, `http://127.0.0.1:${receiver.port}/ssrf`, `http://[::1]:${receiver.port}/ssrf`, `http://[::ffff:127.0.0.1]:${receiver.port}/ssrf`, 'http://10.0.0.1/ssrf', 'http://169.254.169.254/ssrf'];
    await workers.stop(); // keep the running workers away from these rows
    await runner.close();
    try {
      for (const [i, url] of urls.entries()) {
        const epId = `we_ssrf${i}`;
        await ctx.deps.sql`insert into webhook_endpoints (id, merchant_id, url, secret_box, enabled, events)
          values (${epId}, ${shop.merchant.id}, ${url}, ${'v1:x'}, true, ${['invoice.marked']})`;
        const delId = `del_ssrf${i}`;
        await ctx.deps.sql`insert into webhook_deliveries (id, event_id, endpoint_id, merchant_id, next_attempt_at) values (${delId}, ${created!.id}, ${epId}, ${shop.merchant.id}, now())`;
        // a real secret box so signing works
        const { encryptSecret } = await import('../../src/crypto/secretbox.ts');
        await ctx.deps.sql`update webhook_endpoints set secret_box = ${encryptSecret(ctx.config.secretKey, 'whsec_' + Buffer.alloc(24, 1).toString('base64'), epId)} where id = ${epId}`;
        const out = await deliverer.deliver(delId);
        expect(out.status, url).toBe('pending');
        expect(out.error, url).toMatch(/^refused: /);
        await ctx.deps.sql`update webhook_deliveries set status = 'failed' where id = ${delId}`;
        await ctx.deps.sql`update webhook_endpoints set deleted_at = now(), enabled = false where id = ${epId}`;
      }
      expect(receiver.at('/ssrf')).toHaveLength(0);
    } finally {
      await startPipeline();
    }
  });
});

describe('event log and the shape of events', () => {
  it('pins the envelope and data.object shape of every event type', async () => {
    const ep = await createEndpoint('/shapes');
    // created, payment_detected, processing, settled
    const paid = await createInvoice();
    await feed.seeInMempool('bitcoin', [btc(paid, 50_000n)]);
    const paidBlockHeight = feed.tip('bitcoin') + 1;
    await feed.mineBlock('bitcoin', [{ ...btc(paid, 1n), amount: 50_000n, txid: (await ctx.deps.sql`select txid from payments where invoice_id = ${paid.id}`)[0]!.txid }]);
    // payment_reorged + invalid: the block leaves the chain and the tx is gone
    await feed.rollback('bitcoin', paidBlockHeight - 1);
    // expired
    const exp = await createInvoice();
    await ctx.deps.sql`update invoices set expires_at = now() - interval '1 minute' where id = ${exp.id}`;
    await ctx.deps.invoices.get(shop.merchant.id, exp.id);
    // paid_partial: half the price
    const partial = await createInvoice();
    await feed.seeInMempool('bitcoin', [btc(partial, 25_000n)]);
    // paid_late (+ payment_confirmed): paid in full after expiry
    const late = await createInvoice();
    await ctx.deps.sql`update invoices set expires_at = now() - interval '1 minute' where id = ${late.id}`;
    await feed.mineBlock('bitcoin', [btc(late, 50_000n)]);
    // marked
    const marked = await createInvoice();
    await ctx.deps.invoices.mark(shop.merchant.id, marked.id, 'settled', 'test', 'paid in cash');

    // invoice.payment_mismatch needs a node to disagree with: its shape is pinned in
    // test/settlement/reverify.test.ts against a real devnet; refund.* events carry a refund and
    // are pinned in test/refunds/bitcoin-refund.test.ts.
    const PINNED = EVENT_TYPES.filter((t) => t.startsWith('invoice.') && t !== 'invoice.payment_mismatch');
    const got = await waitFor('all types', () => {
      const byType = new Map(bodies('/shapes').map((b) => [b.json.type as string, b.json]));
      return PINNED.every((t) => byType.has(t)) && byType;
    });
    const invoiceShape = shapeOf(got.get('invoice.created').data.object);
    expect(invoiceShape).toEqual(INVOICE_SHAPE);
    for (const type of PINNED) {
      const e = got.get(type);
      const withPayment = type === 'invoice.payment_detected' || type === 'invoice.payment_reorged' || type === 'invoice.payment_confirmed';
      const envelope = shapeOf({ ...e, data: { ...e.data, object: 'invoice' } }) as any;
      // block_height is null while the payment is unconfirmed
      if (envelope.data.payment?.block_height === 'null') envelope.data.payment.block_height = 'number';
      expect(envelope, type).toEqual({
        api_version: 'string', created_at: 'string', id: 'string', type: 'string',
        data: withPayment ? { object: 'string', payment: PAYMENT_SHAPE } : { object: 'string' },
      });
      const objectShape = shapeOf(e.data.object) as Record<string, unknown>;
      // nullable fields may be null or filled depending on the state: compare keys, and types where set
      expect(Object.keys(objectShape), type).toEqual(Object.keys(INVOICE_SHAPE));
      for (const [k, v] of Object.entries(objectShape)) {
        if (v !== 'null' && !(k in NULLABLE)) expect(v, `${type} ${k}`).toEqual((INVOICE_SHAPE as Record<string, unknown>)[k]);
        if (v !== 'null' && k in NULLABLE) expect(v, `${type} ${k}`).toEqual(NULLABLE[k]);
      }
      expect(e.id).toMatch(/^evt_/);
      expect(e.api_version).toBe('2026-11-01');
    }
    await api('DELETE', `/v1/webhook_endpoints/${ep.id}`);
  }, 30_000);

  it('the OpenAPI document describes the event (one schema with the type enum)', async () => {
    const doc = (await (await app.request('/openapi.json')).json()) as any;
    const schema = doc.components.schemas.WebhookEvent;
    expect(schema.properties.type.enum.sort()).toEqual([...EVENT_TYPES].sort());
    expect(Object.keys(schema.properties).sort()).toEqual(['api_version', 'created_at', 'data', 'id', 'type']);
    expect(doc.paths['/v1/events']).toBeDefined();
    expect(doc.paths['/v1/webhook_endpoints/{id}/rotate_secret']).toBeDefined();
  });

  it('lists events newest first with cursor pagination', async () => {
    const page1 = await api('GET', '/v1/events?limit=2');
    expect(page1.status).toBe(200);
    expect(page1.body).toMatchObject({ object: 'list', has_more: true });
    const page2 = await api('GET', `/v1/events?limit=2&starting_after=${page1.body.data[1].id}`);
    expect(page2.body.data[0].id).not.toBe(page1.body.data[1].id);
    const [a, b] = await ctx.deps.sql<{ seq: bigint }[]>`select seq from events where id in ${ctx.deps.sql([page1.body.data[1].id, page2.body.data[0].id])} order by seq desc`;
    expect(a!.seq > b!.seq).toBe(true);
    expect((await api('GET', '/v1/events?delivery_status=bogus')).status).toBe(400);
  });
});

describe('security', () => {
  it('merchant B cannot see, change or delete A\'s endpoints or events', async () => {
    const ep = await createEndpoint('/iso', ['invoice.created']);
    const inv = await createInvoice();
    const [created] = await eventIds(inv.id);
    const b = await createMerchantWithKey(ctx.deps, { name: 'Other shop' });
    expect((await api('GET', `/v1/webhook_endpoints/${ep.id}`, undefined, b.secret)).status).toBe(404);
    expect((await api('DELETE', `/v1/webhook_endpoints/${ep.id}`, undefined, b.secret)).status).toBe(404);
    expect((await api('POST', `/v1/webhook_endpoints/${ep.id}/rotate_secret`, undefined, b.secret)).status).toBe(404);
    expect((await api('POST', `/v1/webhook_endpoints/${ep.id}`, { enabled: false }, b.secret)).status).toBe(404);
    expect((await api('GET', `/v1/events/${created!.id}`, undefined, b.secret)).status).toBe(404);
    expect((await api('POST', `/v1/events/${created!.id}/redeliver`, undefined, b.secret)).status).toBe(404);
    expect((await api('GET', '/v1/webhook_endpoints', undefined, b.secret)).body.data).toEqual([]);
    expect((await api('GET', '/v1/events', undefined, b.secret)).body.data).toEqual([]);
    expect((await api('GET', `/v1/webhook_endpoints/${ep.id}`)).status).toBe(200);
    await api('DELETE', `/v1/webhook_endpoints/${ep.id}`);
  });

  it('scopes: endpoints need webhooks:write, the event log invoices:read', async () => {
    const readOnly = await ctx.deps.apiKeys.create(ctx.deps.sql, { merchantId: shop.merchant.id, scopes: ['invoices:read'] });
    expect((await api('GET', '/v1/webhook_endpoints', undefined, readOnly.secret)).status).toBe(403);
    expect((await api('POST', '/v1/webhook_endpoints', { url: receiver.url('/x') }, readOnly.secret)).status).toBe(403);
    expect((await api('GET', '/v1/events', undefined, readOnly.secret)).status).toBe(200);
    const someEvent = (await api('GET', '/v1/events?limit=1')).body.data[0].id;
    expect((await api('POST', `/v1/events/${someEvent}/redeliver`, undefined, readOnly.secret)).status).toBe(403);
  });

  it('validates url and events', async () => {
    expect((await api('POST', '/v1/webhook_endpoints', { url: 'ftp://x.example/' })).body.error.param).toBe('url');
    expect((await api('POST', '/v1/webhook_endpoints', { url: 'https://x.example/', events: ['invoice.nope'] })).body.error.param).toMatch(/^events/);
    expect((await api('POST', '/v1/webhook_endpoints', { url: 'https://x.example/', extra: 1 })).status).toBe(400);
    const strict = createWebhookService({ ...ctx.deps, config: { ...ctx.config, webhooks: { ...ctx.config.webhooks, allowHttp: false } } });
    await expect(strict.createEndpoint(shop.merchant.id, { url: 'http://x.example/' })).rejects.toMatchObject({ code: 'url_insecure' });
  });

  it('secrets are returned once: never in GET/list responses, never in logs, stored encrypted', async () => {
    const ep = await createEndpoint('/secret');
    expect(ep.secret).toMatch(/^whsec_/);
    expect(Buffer.from(ep.secret.slice(6), 'base64').length).toBeGreaterThanOrEqual(24);
    const one = await api('GET', `/v1/webhook_endpoints/${ep.id}`);
    const list = await api('GET', '/v1/webhook_endpoints?limit=100');
    for (const text of [JSON.stringify(one.body), JSON.stringify(list.body)]) {
      expect(text).not.toContain('whsec_');
      expect(text).not.toContain('secret_box');
    }
    expect(secrets.length).toBeGreaterThan(5);
    const logs = ctx.logs.text();
    const [row] = await ctx.deps.sql<{ secret_box: string }[]>`select secret_box from webhook_endpoints where id = ${ep.id}`;
    expect(row!.secret_box.startsWith('v1:')).toBe(true);
    for (const s of secrets) {
      expect(logs).not.toContain(s);
      expect(logs).not.toContain(s.slice(6));
      expect(row!.secret_box).not.toContain(s.slice(6));
    }
    await api('DELETE', `/v1/webhook_endpoints/${ep.id}`);
    expect((await api('GET', `/v1/webhook_endpoints/${ep.id}`)).status).toBe(404);
  });
});

const PAYMENT_SHAPE = { block_height: 'number', chain: 'string', id: 'string', method: 'string', output_index: 'number', status: 'string', txid: 'string' };
/** Fields that are null in some states and this type when set. */
const NULLABLE: Record<string, unknown> = {
  exception: 'string', order_id: 'string', description: 'string', buyer_email: 'string', redirect_url: 'string',
  settled_at: 'string', cancelled_at: 'string', marked: { at: 'string', by: 'string', reason: 'string' },
};
/** The invoice object of invoice.created (keys sorted). Changing it is an API change: bump api_version. */
const INVOICE_SHAPE = {
  amount: 'string', amount_due: 'string', amount_paid: 'string', buyer_email: 'null', cancelled_at: 'null', checkout_url: 'string',
  created_at: 'string', currency: 'string', description: 'null', exception: 'null', expires_at: 'string', id: 'string', locale: 'string',
  marked: 'null', metadata: {}, monitoring_until: 'string', object: 'string', order_id: 'null', payment_methods: [{
    address: 'string', amount: 'string', amount_due: 'string', amount_paid: 'string', asset: 'string', chain: 'string',
    confirmations_required: 'number', method: 'string', network: 'string', network_name: 'string', payment_uri: 'string', rate: 'string',
  }],
  payment_tolerance_percent: 'string', redirect_url: 'null', settled_at: 'null', speed_policy: 'string', status: 'string',
};
