/**
 * The worker process end to end: a real devnet, the real Bitcoin watcher loop started by
 * buildProcessors, the deadline scheduler and settlement queue — an invoice gets paid and settles,
 * another expires by the repeatable job without anybody reading it, and /health shows the chain.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestContext, type TestContext } from '../support/db.ts';
import { createPayableMerchant, writeChainsFile } from '../support/merchant.ts';
import { startDevnetProcess } from '../support/devnet.ts';
import { startWorkers, type WorkerRunner } from '../../src/queues/runner.ts';
import { redisConnection } from '../../src/deps.ts';
import { buildProcessors, type ProcessorSet } from '../../workers/processors.ts';
import { createApp } from '../../src/api/app.ts';

let devnet: Awaited<ReturnType<typeof startDevnetProcess>>;
let ctx: TestContext;
let set: ProcessorSet;
let runner: WorkerRunner;
let conn: ReturnType<typeof redisConnection>;

beforeAll(async () => {
  devnet = await startDevnetProcess();
  ctx = await createTestContext({ KASSA_CONFIG: writeChainsFile({ bitcoinRpc: { url: devnet.rpcUrl, user: devnet.rpcUser, password: devnet.rpcPassword } }) });
  conn = redisConnection(ctx.config.redisUrl);
  set = buildProcessors(ctx.deps, { deadlineEverySeconds: 1 });
  runner = startWorkers({ connection: conn, prefix: ctx.config.queuePrefix, logger: ctx.deps.logger, processors: set.processors });
  await set.start();
});
afterAll(async () => {
  await set?.stop();
  await runner?.close();
  conn?.disconnect();
  await ctx?.close();
  await devnet?.stop();
});

async function until<T>(fn: () => Promise<T>, ok: (v: T) => boolean, ms = 15_000): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    const v = await fn();
    if (ok(v) || Date.now() > deadline) return v;
    await new Promise((r) => setTimeout(r, 100));
  }
}

describe('kassa worker', () => {
  it('pays and settles a Bitcoin invoice through the running watcher; expires another by the scheduled job', async () => {
    const shop = await createPayableMerchant(ctx.deps, { evmAssets: null });
    const merchant = await ctx.deps.merchants.get(ctx.deps.sql, shop.merchant.id);
    const inv = await ctx.deps.invoices.create(merchant, { amount: '30.00', currency: 'USD' } as never);
    const expiring = await ctx.deps.invoices.create(merchant, { amount: '30.00', currency: 'USD', expires_in: 60 } as never);
    await ctx.deps.sql`update invoices set expires_at = now() + interval '1 second' where id = ${expiring.id}`;

    const btc = inv.payment_methods[0]!;
    // Let the watcher take its starting point at the current tip before paying.
    await until(() => ctx.deps.settlement.cursor(ctx.deps.sql, 'bitcoin'), (c) => c !== null);
    await devnet.wallet.sendToAddress(btc.address, btc.amount_due);
    const seen = await until(() => ctx.deps.sql`select status from invoices where id = ${inv.id}`, (r) => r[0]!.status === 'processing');
    expect(seen[0]!.status).toBe('processing');
    await devnet.wallet.mine(1);
    const settled = await until(() => ctx.deps.sql`select status from invoices where id = ${inv.id}`, (r) => r[0]!.status === 'settled');
    expect(settled[0]!.status).toBe('settled');

    const expired = await until(() => ctx.deps.sql`select status from invoices where id = ${expiring.id}`, (r) => r[0]!.status === 'expired');
    expect(expired[0]!.status).toBe('expired');

    const health = await (await createApp(ctx.deps).request('/health')).json();
    expect(health.checks['chain:bitcoin']).toMatchObject({ ok: true });
    expect(health.checks['chain:ethereum']).toMatchObject({ ok: false });
  });
});
