/**
 * Operator pages and /metrics behind ADMIN_TOKEN: missing or wrong token → 401, right token (Bearer
 * or Basic) → 200; with ADMIN_TOKEN unset /admin/* does not exist (404) and /metrics is open.
 * /admin/queues is the bull-board dashboard (HTML, static assets, JSON API) on the real Redis
 * queues; /admin/queues?format=json is the compact status for scripts.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestContext, type TestContext } from '../support/db.ts';
import { createApp } from '../../src/api/app.ts';
import { redisConnection, type Deps } from '../../src/deps.ts';
import { Worker } from 'bullmq';

const TOKEN = 'admin-token-0123456789abcdef';
const ALL_QUEUES = ['settlement', 'maintenance', 'outbox-relay', 'webhook-delivery', 'email', 'reverify', 'sweep'];
let ctx: TestContext;
let app: ReturnType<typeof createApp>;

beforeAll(async () => {
  ctx = await createTestContext({ ADMIN_TOKEN: TOKEN });
  app = createApp(ctx.deps);
  await ctx.deps.queues.email.add('send', { emailId: 'eml_1' });
  await ctx.deps.queues.sweep.add('sweep', { invoiceId: 'inv_1', chain: 'ethereum' }, { attempts: 1 });
  await failNextSweepJob();
});
afterAll(async () => ctx?.close());

const bearer = (t: string) => ({ headers: { authorization: `Bearer ${t}` } });
const basic = (user: string, pass: string) => ({ headers: { authorization: `Basic ${Buffer.from(`${user}:${pass}`).toString('base64')}` } });

/** The dashboard page and the first script it loads. */
async function dashboard(): Promise<{ html: string; script: string }> {
  const html = await (await app.request('/admin/queues', bearer(TOKEN))).text();
  const script = /<script[^>]+src="(static\/js\/[^"]+\.js)"/.exec(html)?.[1];
  expect(script).toBeDefined();
  return { html, script: `/admin/queues/${script}` };
}

interface BoardQueue { name: string; counts: Record<string, number>; jobs: { id: string; name: string; data: unknown }[] }

/** Fails the next waiting sweep job by hand, with a reason quoting a URL with credentials and markup. */
async function failNextSweepJob(): Promise<void> {
  const connection = redisConnection(ctx.config.redisUrl);
  const worker = new Worker('sweep', null, { connection, prefix: ctx.config.queuePrefix, autorun: false });
  const job = (await worker.getNextJob('tok'))!;
  await job.moveToFailed(new Error('rpc http://user:s3cret@node:8545 <script>x</script>'), 'tok', false);
  await worker.close();
  connection.disconnect();
}

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

  it("the dashboard's assets, API and actions need the token too", async () => {
    const { script } = await dashboard();
    for (const path of [script, '/admin/queues/static/images/logo.svg', '/admin/queues/api/queues', '/admin/queues/queue/email', '/admin/queues?format=json']) {
      const res = await app.request(path);
      expect(res.status, path).toBe(401);
      expect(await res.text(), path).toContain('admin_token_required');
      expect((await app.request(path, bearer('wrong-token-0123456789abcdef'))).status, path).toBe(401);
    }
    const retry = await app.request('/admin/queues/api/queues/sweep/retry/failed', { method: 'PUT' });
    expect(retry.status).toBe(401);
    expect((await ctx.deps.queues.sweep.getJobCounts('failed')).failed).toBe(1);
  });
});

describe('queue dashboard (bull-board) at /admin/queues', () => {
  it('right token → 200: the bull-board page, with a CSP that allows only its own assets', async () => {
    const res = await app.request('/admin/queues', bearer(TOKEN));
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toMatch(/text\/html/);
    expect(res.headers.get('cache-control')).toBe('no-store');
    expect(res.headers.get('x-frame-options')).toBe('DENY');
    const csp = res.headers.get('content-security-policy')!;
    expect(csp).toContain("default-src 'self'");
    expect(csp).toContain("script-src 'self'");
    expect(csp).not.toMatch(/script-src[^;]*'unsafe-(inline|eval)'/);
    expect(csp).toContain("frame-ancestors 'none'");
    const html = await res.text();
    expect(html).toContain('<base href="/admin/queues/" />');
    expect(html).toContain('<title>Kassa queues</title>');
    expect(html).toContain('<div id="root">');
    expect(html).toMatch(/<script defer src="static\/js\/main\.[0-9a-f]+\.js"><\/script>/);
    // Basic auth (what a browser sends) works as well, and deep links render the same page.
    expect((await app.request('/admin/queues', basic('anyone', TOKEN))).status).toBe(200);
    const deep = await app.request('/admin/queues/queue/sweep', basic('anyone', TOKEN));
    expect(deep.status).toBe(200);
    expect(await deep.text()).toContain('<base href="/admin/queues/" />');
    // The UI's own link to "/admin/queues/" (trailing slash) leads back to the dashboard.
    const slash = await app.request('/admin/queues/?x=1', bearer(TOKEN));
    expect(slash.status).toBe(302);
    expect(slash.headers.get('location')).toBe('/admin/queues?x=1');
  });

  it('serves its static assets (JS, CSS, images) with the right content types; unknown or escaping paths are 404', async () => {
    const { html, script } = await dashboard();
    const js = await app.request(script, bearer(TOKEN));
    expect(js.status).toBe(200);
    expect(js.headers.get('content-type')).toMatch(/javascript/);
    expect((await js.text()).length).toBeGreaterThan(1000);
    const cssPath = /<link href="(static\/css\/[^"]+\.css)"/.exec(html)![1]!;
    const css = await app.request(`/admin/queues/${cssPath}`, bearer(TOKEN));
    expect(css.status).toBe(200);
    expect(css.headers.get('content-type')).toMatch(/text\/css/);
    expect((await app.request('/admin/queues/static/images/logo.svg', bearer(TOKEN))).headers.get('content-type')).toMatch(/image\/svg\+xml/);
    for (const path of ['/admin/queues/static/js/nope.js', '/admin/queues/static/%2e%2e/%2e%2e/package.json', '/admin/queues/static/..%2f..%2fpackage.json']) {
      const res = await app.request(path, bearer(TOKEN));
      expect(res.status, path).toBe(404);
      expect(await res.text(), path).toContain('route_not_found');
    }
  });

  it('assets are found whatever the working directory (the app is built or used after a chdir)', async () => {
    const { script } = await dashboard();
    const cwd = process.cwd();
    try {
      process.chdir('/');
      expect((await app.request(script, bearer(TOKEN))).status).toBe(200);
      const other = createApp(ctx.deps);
      process.chdir(cwd);
      expect((await other.request(script, bearer(TOKEN))).status).toBe(200);
    } finally {
      process.chdir(cwd);
    }
  });

  it("its API lists Kassa's queues with their real jobs from Redis", async () => {
    const res = await app.request('/admin/queues/api/queues?activeQueue=email&status=waiting&page=1', bearer(TOKEN));
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toMatch(/application\/json/);
    const { queues } = (await res.json()) as { queues: BoardQueue[] };
    expect(queues.map((q) => q.name).sort()).toEqual([...ALL_QUEUES].sort());
    const email = queues.find((q) => q.name === 'email')!;
    expect(email.counts.waiting).toBe(1);
    expect(email.jobs).toEqual([expect.objectContaining({ name: 'send', data: { emailId: 'eml_1' } })]);
    expect(queues.find((q) => q.name === 'sweep')!.counts.failed).toBe(1);
    const job = await app.request(`/admin/queues/api/queues/email/${email.jobs[0]!.id}`, bearer(TOKEN));
    expect(job.status).toBe(200);
    expect(((await job.json()) as { job: { data: unknown } }).job.data).toEqual({ emailId: 'eml_1' });
  });

  it('actions work from the dashboard itself and are refused when another site triggers them (CSRF)', async () => {
    const put = (headers: Record<string, string>) =>
      app.request('/admin/queues/api/queues/sweep/retry/failed', { method: 'PUT', headers: { authorization: `Bearer ${TOKEN}`, ...headers } });
    const crossSite: Record<string, string>[] = [{ 'sec-fetch-site': 'cross-site' }, { 'sec-fetch-site': 'same-site' }, { origin: 'https://evil.example', host: 'kassa.example' }, { origin: 'null', host: 'kassa.example' }];
    for (const headers of crossSite) {
      const res = await put(headers);
      expect(res.status, JSON.stringify(headers)).toBe(403);
      expect(((await res.json()) as { error: { type: string; code: string } }).error).toMatchObject({ type: 'permission_error', code: 'cross_site_request' });
    }
    const add = await app.request('/admin/queues/api/queues/email/add', {
      method: 'POST', headers: { authorization: `Bearer ${TOKEN}`, 'sec-fetch-site': 'cross-site', 'content-type': 'text/plain' }, body: '{"name":"x","data":{}}',
    });
    expect(add.status).toBe(403);
    expect((await ctx.deps.queues.email.getJobCounts('waiting')).waiting).toBe(1);
    expect((await ctx.deps.queues.sweep.getJobCounts('failed')).failed).toBe(1);
    // The dashboard's own request (same origin) retries the failed sweep job.
    const ok = await put({ 'sec-fetch-site': 'same-origin', origin: 'http://kassa.example', host: 'kassa.example' });
    expect(ok.status).toBe(200);
    expect(await ctx.deps.queues.sweep.getJobCounts('failed', 'waiting')).toMatchObject({ failed: 0, waiting: 1 });
  });
});

describe('admin auth: /admin/queues?format=json', () => {
  it('returns counts per queue and the last failed jobs, credentials masked', async () => {
    // A second failed sweep job (the first one was retried by the CSRF test above).
    await ctx.deps.queues.sweep.add('sweep', { invoiceId: 'inv_2', chain: 'ethereum' }, { attempts: 1 });
    await failNextSweepJob();
    const res = await app.request('/admin/queues?format=json', bearer(TOKEN));
    expect(res.status).toBe(200);
    expect(res.headers.get('cache-control')).toBe('no-store');
    const body = (await res.json()) as { object: string; queues: { queue: string; counts: Record<string, number>; failed: { reason: string }[] }[] };
    expect(body.object).toBe('queue_status');
    expect(body.queues.map((q) => q.queue)).toEqual(ALL_QUEUES);
    const email = body.queues.find((q) => q.queue === 'email')!;
    expect(email.counts.waiting).toBe(1);
    const sweep = body.queues.find((q) => q.queue === 'sweep')!;
    expect(sweep.counts.failed).toBe(1);
    expect(sweep.failed[0]!.reason).toBe('rpc http://***@node:8545 <script>x</script>');
    expect(JSON.stringify(body)).not.toContain('s3cret');
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
  it('/admin/queues (page, assets, API) is 404 like any unknown route (with or without a token); /metrics is open', async () => {
    const open = createApp({ ...ctx.deps, config: { ...ctx.deps.config, adminToken: undefined } } as Deps);
    const res = await open.request('/admin/queues');
    expect(res.status).toBe(404);
    expect(((await res.json()) as { error: { code: string } }).error.code).toBe('route_not_found');
    const { script } = await dashboard();
    for (const path of ['/admin/queues', '/admin/queues?format=json', script, '/admin/queues/api/queues']) {
      expect((await open.request(path)).status, path).toBe(404);
      expect((await open.request(path, bearer(TOKEN))).status, path).toBe(404);
    }
    expect((await open.request('/admin/queues/api/queues/sweep/retry/failed', { method: 'PUT', ...bearer(TOKEN) })).status).toBe(404);
    expect((await open.request('/metrics')).status).toBe(200);
  });
});
