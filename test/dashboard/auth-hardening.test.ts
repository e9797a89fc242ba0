/**
 * Dashboard sign-in hardening over real HTTP (a real server socket, Postgres, Redis; no browser):
 * the lockout holds under concurrency (password and second factor) and re-authentication for
 * sensitive actions. (No cross-merchant e-mail enumeration: test/dashboard/cross-merchant-users.test.ts.)
 */
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import * as OTPAuth from 'otpauth';
import { createTestContext, type TestContext } from '../support/db.ts';
import { createPayableMerchant, writeChainsFile } from '../support/merchant.ts';
import { startTestServer, type TestServer } from '../support/browser.ts';
import { closeInvoiceUpdates } from '../../src/checkout/updates.ts';
import { createDashboardAuth, type DashboardAuth } from '../../src/dashboard/auth.ts';

const PASSWORD = 'correct horse battery staple';

let ctx: TestContext;
let server: TestServer;
let auth: DashboardAuth;
let shopA: Awaited<ReturnType<typeof createPayableMerchant>>;
let shopB: Awaited<ReturnType<typeof createPayableMerchant>>;

/** A tiny cookie-jar HTTP client for the dashboard forms. */
class Client {
  cookies = new Map<string, string>();
  private header(): string {
    return [...this.cookies].map(([k, v]) => `${k}=${v}`).join('; ');
  }
  private keep(res: Response): void {
    for (const c of res.headers.getSetCookie()) {
      const [pair] = c.split(';');
      const i = pair!.indexOf('=');
      const name = pair!.slice(0, i);
      const value = pair!.slice(i + 1);
      if (/max-age=0/i.test(c) || value === '') this.cookies.delete(name);
      else this.cookies.set(name, value);
    }
  }
  async get(path: string): Promise<{ status: number; text: string; location: string | null }> {
    const res = await fetch(`${server.url}${path}`, { headers: { cookie: this.header() }, redirect: 'manual' });
    this.keep(res);
    return { status: res.status, text: await res.text(), location: res.headers.get('location') };
  }
  async post(path: string, form: Record<string, string | string[]>): Promise<{ status: number; text: string; location: string | null }> {
    const body = new URLSearchParams();
    for (const [k, v] of Object.entries(form)) for (const x of Array.isArray(v) ? v : [v]) body.append(k, x);
    const res = await fetch(`${server.url}${path}`, { method: 'POST', body, headers: { cookie: this.header() }, redirect: 'manual' });
    this.keep(res);
    return { status: res.status, text: await res.text(), location: res.headers.get('location') };
  }
}

const csrfIn = (html: string) => /name="_csrf" value="([^"]+)"/.exec(html)![1]!;

/** A fresh client holding the sign-in form's CSRF token. */
async function signInForm(): Promise<{ client: Client; csrf: string }> {
  const client = new Client();
  const page = await client.get('/dashboard/login');
  return { client, csrf: csrfIn(page.text) };
}

async function signIn(email: string, password = PASSWORD, code?: () => string): Promise<Client> {
  const { client, csrf } = await signInForm();
  const r = await client.post('/dashboard/login', { _csrf: csrf, email, password });
  expect(r.status).toBe(303);
  if (code) {
    expect(r.location).toBe('/dashboard/login/2fa');
    const page = await client.get('/dashboard/login/2fa');
    const v = await client.post('/dashboard/login/2fa', { _csrf: csrfIn(page.text), code: code() });
    expect(v.status).toBe(303);
  }
  expect((await client.get('/dashboard')).status).toBe(200);
  return client;
}

async function user(shop: typeof shopA, email: string, role: string): Promise<string> {
  const r = await auth.createUser(shop.merchant.id, { email, role, createdBy: 'test' });
  await auth.completeSetup(r.setupUrl.split('/').pop()!, PASSWORD, '127.0.0.1');
  return r.user.id;
}

/** Enrols TOTP for a user directly through the service; returns a code generator for future steps. */
const recoveryCodes = new Map<string, string[]>();
async function enrolTotp(email: string): Promise<(offsetSteps: number) => string> {
  const u = await auth.getUser((await ctx.deps.sql`select merchant_id from dashboard_users where email = ${email}`)[0]!.merchant_id as string,
    (await ctx.deps.sql`select id from dashboard_users where email = ${email}`)[0]!.id as string);
  const { secret } = await auth.startTotp(u);
  const totp = new OTPAuth.TOTP({ secret: OTPAuth.Secret.fromBase32(secret), digits: 6, period: 30, algorithm: 'SHA1' });
  const codes = await auth.confirmTotp(u, totp.generate(), '127.0.0.1');
  expect(codes).toHaveLength(10);
  recoveryCodes.set(email, codes!);
  return (offset) => totp.generate({ timestamp: Date.now() + offset * 30_000 });
}

const results = (email: string) =>
  ctx.deps.sql<{ result: string }[]>`select result from dashboard_login_attempts where email = ${email} order by id`.then((r) => r.map((x) => x.result));

beforeAll(async () => {
  ctx = await createTestContext({ KASSA_CONFIG: writeChainsFile() });
  auth = createDashboardAuth({ sql: ctx.deps.sql, config: ctx.config, logger: ctx.deps.logger });
  shopA = await createPayableMerchant(ctx.deps, { name: 'Shop A' });
  shopB = await createPayableMerchant(ctx.deps, { name: 'Shop B', seedByte: 9 });
  server = await startTestServer(ctx.deps);
}, 120_000);

afterAll(async () => {
  await server?.close();
  if (ctx) await closeInvoiceUpdates(ctx.deps);
  await ctx?.close();
});

// Every test signs in from 127.0.0.1; start each with a clean per-IP failure count.
beforeEach(async () => {
  await ctx.deps.sql`delete from dashboard_login_attempts`;
});

describe('lockout under concurrency', () => {
  it('40 parallel wrong passwords: at most 5 are verified; the right password is then refused', async () => {
    await user(shopA, 'race@shop-a.test', 'viewer');
    const forms = await Promise.all(Array.from({ length: 40 }, () => signInForm()));
    const answers = await Promise.all(forms.map(({ client, csrf }, i) =>
      client.post('/dashboard/login', { _csrf: csrf, email: 'race@shop-a.test', password: `wrong password ${i}` })));
    const tried = (await results('race@shop-a.test')).filter((r) => r === 'bad_password');
    expect(tried.length).toBeLessThanOrEqual(5);
    expect(answers.filter((a) => a.status === 429).length).toBeGreaterThanOrEqual(35);
    expect(answers.every((a) => a.status === 401 || a.status === 429)).toBe(true);
    const { client, csrf } = await signInForm();
    const right = await client.post('/dashboard/login', { _csrf: csrf, email: 'race@shop-a.test', password: PASSWORD });
    expect(right.status).toBe(429);
    expect(right.text).toContain('locked for 15 minutes');
    expect(client.cookies.has('kassa_dash')).toBe(false);
  }, 120_000);

  it('39 wrong passwords and the right one at #35, all in parallel: at most 5 passwords are checked', async () => {
    await user(shopA, 'race2@shop-a.test', 'viewer');
    const forms = await Promise.all(Array.from({ length: 40 }, () => signInForm()));
    const answers = await Promise.all(forms.map(({ client, csrf }, i) =>
      client.post('/dashboard/login', { _csrf: csrf, email: 'race2@shop-a.test', password: i === 34 ? PASSWORD : `wrong password ${i}` })));
    const rows = await results('race2@shop-a.test');
    const checked = rows.filter((r) => r === 'bad_password' || r === 'ok');
    expect(checked.length).toBeLessThanOrEqual(5);
    expect(rows.filter((r) => r === 'locked').length).toBeGreaterThanOrEqual(35);
    // The right password signed in only if it was one of the (at most 5) attempts that were checked.
    expect(answers[34]!.status === 303).toBe(rows.includes('ok'));
  }, 120_000);

  it('100 parallel second-factor codes: at most 5 are verified, then the pending session is gone', async () => {
    await user(shopA, 'race-totp@shop-a.test', 'viewer');
    const code = await enrolTotp('race-totp@shop-a.test');
    const { client, csrf } = await signInForm();
    expect((await client.post('/dashboard/login', { _csrf: csrf, email: 'race-totp@shop-a.test', password: PASSWORD })).location).toBe('/dashboard/login/2fa');
    const page = await client.get('/dashboard/login/2fa');
    const token = csrfIn(page.text);
    const good = new Set([code(-1), code(0), code(1), code(2)]);
    const wrong = Array.from({ length: 100 }, (_, i) => String(100000 + i * 7919 % 900000).padStart(6, '0')).filter((c) => !good.has(c));
    const answers = await Promise.all(wrong.map((c) => client.post('/dashboard/login/2fa', { _csrf: token, code: c })));
    const rows = await results('race-totp@shop-a.test');
    expect(rows.filter((r) => r === 'bad_totp').length).toBeLessThanOrEqual(5);
    // The rest are refused: locked (429), or sent back to sign in once the lock ended the pending session (303).
    expect(answers.filter((a) => a.status === 401).length).toBeLessThanOrEqual(5);
    expect(answers.every((a) => a.status === 401 || a.status === 429 || (a.status === 303 && a.location === '/dashboard/login'))).toBe(true);
    expect(answers.some((a) => a.status === 429)).toBe(true);
    // Locked: even the right code no longer works on that session, nor on a new sign-in.
    const late = await client.post('/dashboard/login/2fa', { _csrf: token, code: code(1) });
    expect(late.status).toBe(303);
    expect(late.location).toBe('/dashboard/login');
    const again = await signInForm();
    expect((await again.client.post('/dashboard/login', { _csrf: again.csrf, email: 'race-totp@shop-a.test', password: PASSWORD })).status).toBe(429);
  }, 120_000);
});

describe('re-authentication for sensitive actions', () => {
  const ageReauth = (userId: string) => ctx.deps.sql`update dashboard_sessions set reauth_at = now() - interval '6 minutes' where user_id = ${userId}`;

  it('a fresh sign-in may act at once; after 5 minutes disabling 2FA, adding users or API keys and saving settings ask for password + TOTP again', async () => {
    const id = await user(shopA, 'reauth-owner@shop-a.test', 'owner');
    const code = await enrolTotp('reauth-owner@shop-a.test');
    const client = await signIn('reauth-owner@shop-a.test', PASSWORD, () => code(1));
    const csrf = csrfIn((await client.get('/dashboard/account')).text);

    // Right after signing in: allowed.
    const fresh = await client.post('/dashboard/settings/keys', { _csrf: csrf, name: 'fresh key', scopes: 'invoices:read' });
    expect(fresh.status).toBe(200);
    expect((await ctx.deps.sql`select 1 from api_keys where name = 'fresh key'`).length).toBe(1);

    await ageReauth(id);
    const attempts = [
      ['/dashboard/account/2fa/disable', {}],
      ['/dashboard/settings/keys', { name: 'late key', scopes: 'invoices:read' }],
      ['/dashboard/settings/users', { email: 'late-user@shop-a.test', role: 'viewer' }],
      ['/dashboard/settings', { expiry_minutes: '5', tolerance_percent: '1', speed_policy: 'high' }],
      ['/dashboard/settings/require-2fa', { value: 'on' }],
    ] as const;
    for (const [path, form] of attempts) {
      const r = await client.post(path, { _csrf: csrf, ...form });
      expect(r.status, path).toBe(401);
      expect(r.text).toContain('Confirm it is you');
      expect(r.text).toContain('name="code"');
    }
    expect((await ctx.deps.sql`select totp_enabled_at from dashboard_users where id = ${id}`)[0]!.totp_enabled_at).not.toBeNull();
    expect((await ctx.deps.sql`select 1 from api_keys where name = 'late key'`).length).toBe(0);
    expect((await ctx.deps.sql`select 1 from dashboard_users where email = 'late-user@shop-a.test'`).length).toBe(0);
    expect((await ctx.deps.merchants.get(ctx.deps.sql, shopA.merchant.id)).defaultExpirySeconds).not.toBe(300);

    // The confirmation form keeps CSRF, and needs the password AND the second factor.
    expect((await client.post('/dashboard/reauth', { password: PASSWORD, code: code(2), next: '/dashboard/account' })).status).toBe(403);
    const wrongPw = await client.post('/dashboard/reauth', { _csrf: csrf, password: 'not the password', code: code(2), next: '/dashboard/account' });
    expect(wrongPw.status).toBe(401);
    expect(wrongPw.text).toContain('The password is wrong.');
    const noCode = await client.post('/dashboard/reauth', { _csrf: csrf, password: PASSWORD, code: '', next: '/dashboard/account' });
    expect(noCode.status).toBe(401);
    expect(noCode.text).toContain('code is not valid');
    expect((await client.post('/dashboard/account/2fa/disable', { _csrf: csrf })).status).toBe(401);
    // (The sign-in used the next TOTP step already, and a step is never accepted twice: a recovery code.)
    const ok = await client.post('/dashboard/reauth', { _csrf: csrf, password: PASSWORD, code: recoveryCodes.get('reauth-owner@shop-a.test')![0]!, next: '/dashboard/account' });
    expect(ok.status).toBe(303);
    expect(ok.location).toBe('/dashboard/account?done=reauthenticated');
    const off = await client.post('/dashboard/account/2fa/disable', { _csrf: csrf });
    expect(off.status).toBe(303);
    expect((await ctx.deps.sql`select totp_enabled_at from dashboard_users where id = ${id}`)[0]!.totp_enabled_at).toBeNull();
    const audit = await ctx.deps.sql<{ action: string }[]>`select action from audit_log where target = ${'user:' + id} and action like 'reauth.%' order by id`;
    expect(audit.map((a) => a.action)).toEqual(['reauth.failed', 'reauth.failed', 'reauth.succeeded']);
    // An open redirect through `next` is not possible.
    const evil = await client.post('/dashboard/reauth', { _csrf: csrf, password: PASSWORD, next: '//evil.example/x' });
    expect(evil.location).toBe('/dashboard?done=reauthenticated');
  }, 60_000);

  it('re-authentication failures count towards the account lockout', async () => {
    const id = await user(shopA, 'reauth-lock@shop-a.test', 'owner');
    const client = await signIn('reauth-lock@shop-a.test');
    await ageReauth(id);
    const csrf = csrfIn((await client.get('/dashboard/account')).text);
    const answers = await Promise.all(Array.from({ length: 12 }, (_, i) =>
      client.post('/dashboard/reauth', { _csrf: csrf, password: `wrong ${i}`, next: '/dashboard/settings' })));
    expect(answers.filter((a) => a.status === 401).length).toBeLessThanOrEqual(5);
    expect(answers.filter((a) => a.status === 429).length).toBeGreaterThanOrEqual(7);
    const right = await client.post('/dashboard/reauth', { _csrf: csrf, password: PASSWORD, next: '/dashboard/settings' });
    expect(right.status).toBe(429);
  }, 60_000);
});

export { shopB };
