/**
 * Issue 15 finding 6: when a delivery is refused by the SSRF check, the merchant sees a generic
 * reason (delivery attempt, last error, API); the detail (what the host resolved to) is only in
 * the server log.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createApp } from '../../src/api/app.ts';
import { createWebhookDeliverer, WEBHOOK_REFUSED_REASON } from '../../src/webhooks/delivery.ts';
import { encryptSecret } from '../../src/crypto/secretbox.ts';
import { newId } from '../../src/ids.ts';
import { createMerchantWithKey, createTestContext, req, type TestContext } from '../support/db.ts';

let ctx: TestContext;
let shop: Awaited<ReturnType<typeof createMerchantWithKey>>;

beforeAll(async () => {
  ctx = await createTestContext();
  shop = await createMerchantWithKey(ctx.deps);
});
afterAll(async () => ctx?.close());

describe('webhook refusal reason', () => {
  it('merchants see a generic reason; the operator log has the resolved address', async () => {
    const strict = { ...ctx.config, webhooks: { ...ctx.config.webhooks, allowedHosts: [] } };
    const deliverer = createWebhookDeliverer({
      sql: ctx.deps.sql, config: strict, logger: ctx.deps.logger, queues: ctx.deps.queues,
      resolver: async (host) => (host === 'vm' ? [{ address: '10.11.12.13', family: 4 }] : []),
    });
    const eventId = newId('evt');
    await ctx.deps.sql`insert into events (id, merchant_id, type, api_version, payload)
      values (${eventId}, ${shop.merchant.id}, 'invoice.created', '2026-01-01', ${ctx.deps.sql.json({ object: { id: 'inv_x' } })})`;
    const epId = 'we_refusal1';
    await ctx.deps.sql`insert into webhook_endpoints (id, merchant_id, url, secret_box, enabled, events)
      values (${epId}, ${shop.merchant.id}, 'https://vm/hook', ${encryptSecret(ctx.config.secretKey, 'whsec_' + Buffer.alloc(24, 1).toString('base64'), epId)}, true, ${['*']})`;
    await ctx.deps.sql`insert into webhook_deliveries (id, event_id, endpoint_id, merchant_id, next_attempt_at)
      values ('del_refusal1', ${eventId}, ${epId}, ${shop.merchant.id}, now())`;

    const out = await deliverer.deliver('del_refusal1');
    expect(out.error).toBe(`refused: ${WEBHOOK_REFUSED_REASON}`);
    const [attempt] = await ctx.deps.sql<{ error: string }[]>`select error from webhook_attempts where delivery_id = 'del_refusal1'`;
    const [delivery] = await ctx.deps.sql<{ last_error: string }[]>`select last_error from webhook_deliveries where id = 'del_refusal1'`;
    expect(attempt!.error).toBe(`refused: ${WEBHOOK_REFUSED_REASON}`);
    expect(delivery!.last_error).toBe(`refused: ${WEBHOOK_REFUSED_REASON}`);

    // What the merchant can read through the API carries no resolved address.
    const app = createApp(ctx.deps);
    const res = await app.request(`/v1/events/${eventId}`, req(shop.secret, 'GET'));
    expect(res.status).toBe(200);
    const text = await res.text();
    expect(text).not.toContain('10.11.12.13');

    // The operator's log has the detail.
    const refusal = ctx.logs.lines.map((l) => JSON.parse(l)).find((l) => l.msg === 'webhook target refused');
    expect(refusal).toMatchObject({ endpoint_id: epId, delivery_id: 'del_refusal1' });
    expect(refusal.reason).toContain('resolves to 10.11.12.13');
  });
});
