/**
 * /metrics after a paid invoice: the payment is fed in as a chain watcher would (recordObservations
 * + advanceCursor + recompute in one transaction, like test/settlement/settlement.test.ts), then the
 * scrape must show the invoice, transition, payment, latency, chain, queue, webhook and HTTP series —
 * and nothing secret.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestContext, req, type TestContext } from '../support/db.ts';
import { createPayableMerchant, writeChainsFile } from '../support/merchant.ts';
import { createApp } from '../../src/api/app.ts';
import { createSettlementService, type Observation } from '../../src/settlement/service.ts';
import { metricsFor } from '../../src/metrics/index.ts';
import { instrumentDeliverer, instrumentWorkers, startMetricsServer } from '../../src/metrics/instrument.ts';
import { reportChainHealth } from '../../src/chains/health.ts';
import { startWorkers } from '../../src/queues/runner.ts';
import { redisConnection } from '../../src/deps.ts';

let ctx: TestContext;
let shop: Awaited<ReturnType<typeof createPayableMerchant>>;
let app: ReturnType<typeof createApp>;
const RPC_PASSWORD = 'rpc-pass-do-not-leak-7731';

beforeAll(async () => {
  ctx = await createTestContext({ KASSA_CONFIG: writeChainsFile({ bitcoinRpc: { url: 'http://127.0.0.1:1', user: 'kassa', password: RPC_PASSWORD } }) });
  shop = await createPayableMerchant(ctx.deps);
  // createDeps does not wire metrics into settlement yet: build the service the way it would.
  ctx.deps.settlement = createSettlementService({
    chains: ctx.config.chains, assets: ctx.deps.assets, logger: ctx.deps.logger, redis: ctx.deps.redis,
    queuePrefix: ctx.config.queuePrefix, publicUrl: ctx.config.publicUrl, metrics: metricsFor(ctx.deps).settlement,
  });
  app = createApp(ctx.deps);
});
afterAll(async () => ctx?.close());

async function mineBlock(chain: string, height: number, obs: Omit<Observation, 'block'>[], time: Date): Promise<void> {
  const block = { hash: `${chain}-${height}`.padEnd(64, '0'), height, time };
  await ctx.deps.sql.begin(async (tx) => {
    const touched = await ctx.deps.settlement.recordObservations(tx, chain, obs.map((o) => ({ ...o, block })));
    await ctx.deps.settlement.advanceCursor(tx, chain, { height, hash: block.hash, prevHash: `${chain}-${height - 1}`.padEnd(64, '0'), time }, 100);
    const waiting = await ctx.deps.settlement.awaitingConfirmations(tx, chain);
    await ctx.deps.settlement.recompute(tx, [...touched, ...waiting]);
  });
}

/** Parses the Prometheus text format into `name{labels}` → value. */
function parse(text: string): Map<string, number> {
  const out = new Map<string, number>();
  for (const line of text.split('\n')) {
    if (!line || line.startsWith('#')) continue;
    const i = line.lastIndexOf(' ');
    out.set(line.slice(0, i), Number(line.slice(i + 1)));
  }
  return out;
}

describe('/metrics', () => {
  let text = '';
  let series: Map<string, number>;
  let invoiceId = '';

  beforeAll(async () => {
    await mineBlock('bitcoin', 100, [], new Date());
    const created = await app.request('/v1/invoices', req(shop.secret, 'POST', { amount: '30.00', currency: 'USD' }));
    expect(created.status).toBe(201);
    const inv = (await created.json()) as { id: string; payment_methods: { method: string; address: string }[] };
    invoiceId = inv.id;
    const address = inv.payment_methods.find((m) => m.method === 'BTC')!.address;
    // Paid in full in a block mined 40 s ago (the default speed policy needs 1 confirmation).
    await mineBlock('bitcoin', 101, [{ txid: 'ab'.repeat(32), outputIndex: 0, address, token: null, amount: 50_000n }], new Date(Date.now() - 40_000));
    expect((await app.request(`/v1/invoices/${invoiceId}`, req(shop.secret, 'GET'))).status).toBe(200);
    expect((await app.request('/v1/invoices/inv_doesnotexist0000', req(shop.secret, 'GET'))).status).toBe(404);
    await app.request('/wp-login.php');

    await reportChainHealth(ctx.deps.redis, ctx.config.queuePrefix, 'bitcoin', {
      state: 'ok', tip_height: 103, lag_blocks: 2, error: null,
    });
    await reportChainHealth(ctx.deps.redis, ctx.config.queuePrefix, 'ethereum', {
      state: 'error', tip_height: null, lag_blocks: null, error: `connect http://kassa:${RPC_PASSWORD}@127.0.0.1:1 refused`,
    });
    await ctx.deps.queues.settlement.add('recompute', { invoiceId }, { delay: 60_000 });

    const res = await app.request('/metrics');
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toMatch(/^text\/plain; version=0\.0\.4/);
    text = await res.text();
    series = parse(text);
  });

  it('counts invoices by status from the database, and the transitions this process made', () => {
    expect(series.get('kassa_invoices{status="settled"}')).toBe(1);
    expect(series.get('kassa_invoices{status="new"}')).toBe(0);
    expect(series.get('kassa_invoice_transitions_total{from="new",to="processing"}')).toBe(1);
    expect(series.get('kassa_invoice_transitions_total{from="processing",to="settled"}')).toBe(1);
  });

  it('counts payments detected per chain/asset and observes detection latency against the block time', () => {
    expect(series.get('kassa_payments_detected_total{chain="bitcoin",asset="BTC",seen_in="block"}')).toBe(1);
    expect(series.get('kassa_payments{chain="bitcoin",asset="BTC",status="confirmed"}')).toBe(1);
    expect(series.get('kassa_payment_detection_latency_seconds_count{chain="bitcoin",asset="BTC"}')).toBe(1);
    const sum = series.get('kassa_payment_detection_latency_seconds_sum{chain="bitcoin",asset="BTC"}')!;
    expect(sum).toBeGreaterThanOrEqual(39);
    expect(sum).toBeLessThan(120);
    expect(series.get('kassa_payment_detection_latency_seconds_bucket{le="30",chain="bitcoin",asset="BTC"}')).toBe(0);
    expect(series.get('kassa_payment_detection_latency_seconds_bucket{le="60",chain="bitcoin",asset="BTC"}')).toBe(1);
  });

  it('reports chain tip lag and watcher state from the chain health in Redis', () => {
    expect(series.get('kassa_chain_tip_lag_blocks{chain="bitcoin"}')).toBe(2);
    expect(series.get('kassa_chain_tip_height{chain="bitcoin"}')).toBe(103);
    expect(series.get('kassa_chain_up{chain="bitcoin"}')).toBe(1);
    expect(series.get('kassa_chain_up{chain="ethereum"}')).toBe(0);
  });

  it('reports queue depths per queue and state, and webhook deliveries by status', () => {
    expect(series.get('kassa_queue_jobs{queue="settlement",state="delayed"}')).toBe(1);
    expect(series.get('kassa_queue_jobs{queue="webhook-delivery",state="failed"}')).toBe(0);
    expect(series.get('kassa_webhook_deliveries{status="delivered"}')).toBe(0);
    expect(series.get('kassa_metrics_source_up{source="postgres"}')).toBe(1);
    expect(series.get('kassa_metrics_source_up{source="redis"}')).toBe(1);
  });

  it('labels HTTP durations by route pattern, never by raw path', () => {
    expect(series.get('kassa_http_request_duration_seconds_count{method="POST",route="/v1/invoices",status="201"}')).toBe(1);
    expect(series.get('kassa_http_request_duration_seconds_count{method="GET",route="/v1/invoices/:id",status="200"}')).toBe(1);
    expect(series.get('kassa_http_request_duration_seconds_count{method="GET",route="/v1/invoices/:id",status="404"}')).toBe(1);
    expect(series.get('kassa_http_request_duration_seconds_count{method="GET",route="unmatched",status="404"}')).toBe(1);
    expect(text).not.toContain(invoiceId);
    expect(text).not.toContain('wp-login');
  });

  it('leaks no secrets: API keys, RPC credentials, chain errors, database URL, secret key', () => {
    expect(text).not.toContain(shop.secret);
    expect(text).not.toContain(RPC_PASSWORD);
    expect(text).not.toContain(ctx.config.databaseUrl);
    expect(text).not.toContain(ctx.config.secretKey.toString('hex'));
    expect(text).not.toContain('kassa_sk_');
    expect(text).not.toMatch(/bcrt1|0x[0-9a-f]{40}/i);
  });

  it('is open without ADMIN_TOKEN and keeps one registry per Deps (a second app does not re-register)', async () => {
    const again = createApp(ctx.deps);
    expect((await again.request('/metrics')).status).toBe(200);
  });
});

describe('worker-side instrumentation', () => {
  it('instrumentWorkers counts completed and failed jobs per queue', async () => {
    const metrics = metricsFor(ctx.deps);
    const connection = redisConnection(ctx.config.redisUrl);
    const runner = startWorkers({
      connection, prefix: ctx.config.queuePrefix, logger: ctx.deps.logger,
      processors: [{ queue: 'email', process: async (p: { emailId: string }) => { if (p.emailId === 'bad') throw new Error('boom'); return 1; } }],
    });
    instrumentWorkers(metrics, runner.workers);
    await ctx.deps.queues.email.add('send', { emailId: 'ok' });
    await ctx.deps.queues.email.add('send', { emailId: 'bad' }, { attempts: 1 });
    const deadline = Date.now() + 10_000;
    const value = async (outcome: string) =>
      (await metrics.queueJobs.get()).values.find((v) => v.labels.queue === 'email' && v.labels.outcome === outcome)?.value ?? 0;
    while (Date.now() < deadline && ((await value('completed')) < 1 || (await value('failed')) < 1)) await new Promise((r) => setTimeout(r, 50));
    await runner.close();
    connection.disconnect();
    expect(await value('completed')).toBe(1);
    expect(await value('failed')).toBe(1);
  });

  it('instrumentDeliverer counts webhook attempts by outcome and times them', async () => {
    const metrics = metricsFor(ctx.deps);
    const outcomes = ['delivered', 'pending', 'failed'] as const;
    let i = 0;
    const wrapped = instrumentDeliverer(metrics, { deliver: async (_id: string) => ({ status: outcomes[i++ % 3]! }) });
    for (let k = 0; k < 3; k++) await wrapped.deliver('del_x');
    const failing = instrumentDeliverer(metrics, { deliver: async (_id: string): Promise<{ status: string }> => { throw new Error('db down'); } });
    await expect(failing.deliver('del_y')).rejects.toThrow('db down');
    const s = parse(await metrics.registry.metrics());
    expect(s.get('kassa_webhook_attempts_total{outcome="delivered"}')).toBe(1);
    expect(s.get('kassa_webhook_attempts_total{outcome="retry"}')).toBe(1);
    expect(s.get('kassa_webhook_attempts_total{outcome="failed"}')).toBe(1);
    expect(s.get('kassa_webhook_attempts_total{outcome="error"}')).toBe(1);
    expect(s.get('kassa_webhook_attempt_duration_seconds_count{outcome="delivered"}')).toBe(1);
  });

  it('startMetricsServer serves the registry for `kassa worker`, behind the admin token when set', async () => {
    const token = 't'.repeat(24);
    const server = await startMetricsServer({ metrics: metricsFor(ctx.deps), host: '127.0.0.1', port: 0, adminToken: token });
    try {
      expect((await fetch(server.url)).status).toBe(401);
      const ok = await fetch(server.url, { headers: { authorization: `Bearer ${token}` } });
      expect(ok.status).toBe(200);
      expect(await ok.text()).toContain('kassa_invoice_transitions_total');
      expect((await fetch(server.url.replace('/metrics', '/other'))).status).toBe(404);
    } finally {
      await server.close();
    }
  });
});
