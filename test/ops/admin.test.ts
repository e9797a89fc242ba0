/**
 * Operator pages and /metrics behind ADMIN_TOKEN: missing or wrong token → 401, right token (Bearer
 * or Basic) → 200; with ADMIN_TOKEN unset /admin/* does not exist (404) and /metrics is open.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestContext, type TestContext } from '../support/db.ts';
import { createApp } from '../../src/api/app.ts';
import { redisConnection, type Deps } from '../../src/deps.ts';
import { Worker } from 'bullmq';

const TOKEN = 'admin-token-0123456789abcdef';
let ctx: TestContext;
let app: ReturnType<typeof createApp>;

beforeAll(async () => {
  ctx = await createTestContext({ ADMIN_TOKEN: TOKEN });
  app = createApp(ctx.deps);
});
afterAll(async () => ctx?.close());

const bearer = (t: string) => ({ headers: { authorization: `Bearer ${t}` } });
const basic = (user: string, pass: string) => ({ headers: { authorization: `Basic ${Buffer.from(`${user}:${pass}`).toString('base64')}` } });

describe('admin auth: /admin/queues', () => {
  it('no token → 401 with a Basic challenge and the error envelope', async () => {
    const res = await app.request('/admin/queues');
    expect(res.status).toBe(401);
    expect(res.headers.get('www-authenticate')).toMatch(/^Basic realm="kassa-admin"/);
    expect(((await res.json()) as { error: { type: string; code: string } }).error).toMatchObject({ type: 'authentication_error', code: 'admin_token_required' });
  });

  it('wrong token → 401 (bearer, basic, prefix of the real token, an API-key-looking value)', async () => {
    for (const init of [bearer('wrong-token-0123456789abcdef'), bearer(TOKEN.slice(0, -1)), bearer(TOKEN + 'x'), basic('admin', 'nope'), basic(TOKEN, ''), { headers: { authorization: TOKEN } }]) {
      expect((await app.request('/admin/queues', init)).status).toBe(401);
    }
    expect((await app.request('/admin/anything-else')).status).toBe(401);
  });

  it('right token → 200: a read-only HTML page with counts per queue and the last failed jobs', async () => {
    await ctx.deps.queues.email.add('send', { emailId: 'eml_1' });
    await ctx.deps.queues.sweep.add('sweep', { invoiceId: 'inv_1', chain: 'ethereum' }, { attempts: 1 });
    // One failed job (processed by hand) whose reason quotes a URL with credentials and markup.
    const connection = redisConnection(ctx.config.redisUrl);
    const worker = new Worker('sweep', null, { connection, prefix: ctx.config.queuePrefix, autorun: false });
    const job = (await worker.getNextJob('tok'))!;
    await job.moveToFailed(new Error('rpc http://user:s3cret@node:8545 <script>x</script>'), 'tok', false);
    await worker.close();
    connection.disconnect();
    const res = await app.request('/admin/queues', bearer(TOKEN));
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toMatch(/text\/html/);
    expect(res.headers.get('cache-control')).toBe('no-store');
    expect(res.headers.get('content-security-policy')).toContain("default-src 'none'");
    const html = await res.text();
    for (const q of ['settlement', 'maintenance', 'outbox-relay', 'webhook-delivery', 'email', 'reverify', 'sweep']) expect(html).toContain(`<th scope="row">${q}</th>`);
    expect(html).not.toContain('<script>');
    expect(html).not.toContain('s3cret');
    expect(html).toContain('rpc http://***@node:8545 &#60;script&#62;x&#60;/script&#62;');
    expect((await app.request('/admin/queues', basic('anyone', TOKEN))).status).toBe(200);
  });

  it('?format=json returns the same data', async () => {
    const res = await app.request('/admin/queues?format=json', bearer(TOKEN));
    expect(res.status).toBe(200);
    const body = (await res.json()) as { queues: { queue: string; counts: Record<string, number>; failed: { reason: string }[] }[] };
    const email = body.queues.find((q) => q.queue === 'email')!;
    expect(email.counts.waiting).toBe(1);
    const sweep = body.queues.find((q) => q.queue === 'sweep')!;
    expect(sweep.counts.failed).toBe(1);
    expect(sweep.failed[0]!.reason).toBe('rpc http://***@node:8545 <script>x</script>');
  });
});

describe('admin auth: /metrics', () => {
  it('requires the token when ADMIN_TOKEN is set', async () => {
    expect((await app.request('/metrics')).status).toBe(401);
    expect((await app.request('/metrics', bearer('x'.repeat(30)))).status).toBe(401);
    const ok = await app.request('/metrics', bearer(TOKEN));
    expect(ok.status).toBe(200);
    expect(await ok.text()).toContain('kassa_queue_jobs{queue="email",state="waiting"}');
  });
});

describe('ADMIN_TOKEN unset', () => {
  it('/admin/queues is 404 like any unknown route (with or without a token); /metrics is open', async () => {
    const open = createApp({ ...ctx.deps, config: { ...ctx.deps.config, adminToken: undefined } } as Deps);
    const res = await open.request('/admin/queues');
    expect(res.status).toBe(404);
    expect(((await res.json()) as { error: { code: string } }).error.code).toBe('route_not_found');
    expect((await open.request('/admin/queues', bearer(TOKEN))).status).toBe(404);
    expect((await open.request('/metrics')).status).toBe(200);
  });
});
