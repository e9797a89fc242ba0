/**
 * Issue 15 finding 3: secret path segments (the one-time setup link) and secret query values are
 * redacted in every log line: the request log, error logs, and any field or message.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createApp } from '../../src/api/app.ts';
import { redactSecrets } from '../../src/redact.ts';
import { createMerchantWithKey, createTestContext, type TestContext } from '../support/db.ts';
import { createDashboardAuth } from '../../src/dashboard/auth.ts';
import { DashboardClient, signedInOwner } from './dashboard-session.ts';

let ctx: TestContext;
let app: ReturnType<typeof createApp>;
let shop: Awaited<ReturnType<typeof createMerchantWithKey>>;

beforeAll(async () => {
  ctx = await createTestContext();
  app = createApp(ctx.deps);
  shop = await createMerchantWithKey(ctx.deps);
});
afterAll(async () => ctx?.close());

describe('log redaction', () => {
  it('the setup token never appears in the request log (GET and POST, used and unused links)', async () => {
    const { token, setupPath } = await signedInOwner(app, ctx.deps, shop.merchant.id, 'redact-owner@example.com');
    // A second, unused link: visited, posted with mismatched passwords, with a query string.
    const auth = createDashboardAuth({ sql: ctx.deps.sql, config: ctx.deps.config, logger: ctx.deps.logger });
    const { setupUrl } = await auth.createUser(shop.merchant.id, { email: 'redact-dev@example.com', role: 'developer', createdBy: 'test' });
    const path2 = new URL(setupUrl).pathname;
    const token2 = path2.split('/').pop()!;
    const client = new DashboardClient(app);
    await client.get(`${path2}?from=mail`);
    await client.post(path2, { password: 'a'.repeat(12), confirm: 'b'.repeat(12) });
    await client.get(`${setupPath}/`); // a used link, trailing slash

    const logs = ctx.logs.text();
    const lines = logs.split('\n').filter(Boolean).map((l) => JSON.parse(l));
    const setupLines = lines.filter((l) => l.msg === 'request' && String(l.path).startsWith('/dashboard/setup/'));
    expect(setupLines.length).toBeGreaterThanOrEqual(5);
    expect(setupLines.every((l) => l.path.startsWith('/dashboard/setup/[redacted]'))).toBe(true);
    expect(logs).not.toContain(token);
    expect(logs).not.toContain(token2);
  });

  it('error logs, messages and URL fields are redacted too', async () => {
    const token = 'T0pSecretSetupToken_abcdefghijklmnopqrstuvw';
    ctx.deps.logger.error({ err: new Error(`failed on /dashboard/setup/${token}`), path: `/dashboard/setup/${token}` }, 'dashboard error');
    ctx.deps.logger.warn(`webhook to https://shop.example/hook?token=${token}&order=5 failed`);
    ctx.deps.logger.child({ url: `https://shop.example/cb?api_key=${token}` }).info({ nested: { list: [`?secret=${token}`] } }, 'x');
    const logs = ctx.logs.text();
    expect(logs).not.toContain(token);
    expect(logs).toContain('order=5');
  });

  it('redactSecrets: secret path segments and secret query values, nothing else', () => {
    expect(redactSecrets('/dashboard/setup/abc_DEF-123')).toBe('/dashboard/setup/[redacted]');
    expect(redactSecrets('https://k.example/dashboard/setup/abc?x=1')).toBe('https://k.example/dashboard/setup/[redacted]?x=1');
    expect(redactSecrets('/hook?token=abc&order_id=7&Signature=zz&code=123456')).toBe('/hook?token=[redacted]&order_id=7&Signature=[redacted]&code=[redacted]');
    expect(redactSecrets('/v1/invoices?order_id=A-1&limit=5')).toBe('/v1/invoices?order_id=A-1&limit=5');
    expect(redactSecrets('/pay/inv_123')).toBe('/pay/inv_123');
  });
});
