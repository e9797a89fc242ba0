/**
 * The merchant and finance dashboard in real headless Chromium against a real server, Postgres and
 * Redis: sign-in (password, TOTP, recovery codes, lockout), finding an invoice and its payments,
 * marking an exception with a reason (service + ledger + event + audit log), the reconciliation
 * CSV (byte-for-byte the API's), role checks (hidden buttons AND refused forged requests), CSRF,
 * and merchant isolation. Payments are fed to the settlement service the way the watchers do.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import * as OTPAuth from 'otpauth';
import { createTestContext, type TestContext } from '../support/db.ts';
import { createPayableMerchant, writeChainsFile } from '../support/merchant.ts';
import { launchBrowser, startTestServer, type TestServer } from '../support/browser.ts';
import { closeInvoiceUpdates } from '../../src/checkout/updates.ts';
import { createDashboardAuth, type DashboardAuth } from '../../src/dashboard/auth.ts';
import type { Observation } from '../../src/settlement/service.ts';
import type { InvoiceObject } from '../../src/invoices/present.ts';

const PASSWORD = 'correct horse battery staple';
const EXPLORER = 'https://explorer.example/tx/{txid}';

let ctx: TestContext;
let server: TestServer;
let browser: Browser;
let auth: DashboardAuth;
let shopA: Awaited<ReturnType<typeof createPayableMerchant>>;
let shopB: Awaited<ReturnType<typeof createPayableMerchant>>;
const tips: Record<string, number> = { bitcoin: 100, ethereum: 100 };
let txCounter = 0;

/** A chains file with an explorer link template on Bitcoin. */
function chainsFileWithExplorer(): string {
  const file = writeChainsFile();
  const json = JSON.parse(readFileSync(file, 'utf8'));
  json.chains.bitcoin.explorer_tx_url = EXPLORER;
  writeFileSync(file, JSON.stringify(json));
  return file;
}

async function mineBlock(chain: string, obs: Omit<Observation, 'block'>[]): Promise<void> {
  const h = ++tips[chain]!;
  const time = new Date();
  const block = { hash: `${chain}-${h}`.padEnd(64, '0'), height: h, time };
  const changed = await ctx.deps.sql.begin(async (tx) => {
    const touched = await ctx.deps.settlement.recordObservations(tx, chain, obs.map((o) => ({ ...o, block })));
    await ctx.deps.settlement.advanceCursor(tx, chain, { height: h, hash: block.hash, prevHash: `${chain}-${h - 1}`.padEnd(64, '0'), time }, 100);
    const waiting = await ctx.deps.settlement.awaitingConfirmations(tx, chain);
    return ctx.deps.settlement.recompute(tx, [...touched, ...waiting]);
  });
  await ctx.deps.settlement.publishChanges(changed);
}

async function payBtc(inv: InvoiceObject, sats: bigint): Promise<string> {
  const txid = (++txCounter).toString(16).padStart(64, 'c');
  const address = inv.payment_methods.find((m) => m.method === 'BTC')!.address;
  await mineBlock('bitcoin', [{ txid, outputIndex: 0, address, token: null, amount: sats }]);
  return txid;
}

async function invoiceFor(shop: typeof shopA, extra: Record<string, unknown> = {}): Promise<InvoiceObject> {
  const merchant = await ctx.deps.merchants.get(ctx.deps.sql, shop.merchant.id);
  return ctx.deps.invoices.create(merchant, { amount: '30.00', currency: 'USD', description: 'Dashboard test', ...extra } as never);
}

/** A user with a password set (through the one-time setup link, like the CLI's link). */
async function user(shop: typeof shopA, email: string, role: string): Promise<string> {
  const r = await auth.createUser(shop.merchant.id, { email, role, createdBy: 'test' });
  await auth.completeSetup(r.setupUrl.split('/').pop()!, PASSWORD, '127.0.0.1');
  return r.user.id;
}

async function newPage(): Promise<{ page: Page; context: BrowserContext; errors: string[] }> {
  const context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
  const page = await context.newPage();
  const errors: string[] = [];
  page.on('pageerror', (e) => errors.push(e.message));
  page.on('console', (m) => {
    if (m.type() === 'error' && !/status of 40[0134]|status of 429/.test(m.text())) errors.push(m.text());
  });
  return { page, context, errors };
}

async function login(email: string, password = PASSWORD, code?: () => string): Promise<{ page: Page; context: BrowserContext; errors: string[] }> {
  const p = await newPage();
  await p.page.goto(`${server.url}/dashboard/login`);
  await p.page.fill('#email', email);
  await p.page.fill('#password', password);
  await p.page.click('#sign-in');
  if (code) {
    await p.page.waitForURL(/\/dashboard\/login\/2fa$/);
    await p.page.fill('#code', code());
    await p.page.click('#verify');
  }
  return p;
}

/** The CSRF token of the signed-in page (every layout has the sign-out form). */
const csrfOf = (page: Page) => page.locator('form[action="/dashboard/logout"] input[name="_csrf"]').inputValue();

const auditRows = (merchantId: string, action: string) =>
  ctx.deps.sql<{ actor: string; action: string; target: string | null; details: Record<string, unknown>; ip: string | null }[]>`
    select actor, action, target, details, ip from audit_log where merchant_id = ${merchantId} and action = ${action} order by id`;

beforeAll(async () => {
  browser = await launchBrowser();
  ctx = await createTestContext({ KASSA_CONFIG: chainsFileWithExplorer() });
  auth = createDashboardAuth({ sql: ctx.deps.sql, config: ctx.config, logger: ctx.deps.logger });
  shopA = await createPayableMerchant(ctx.deps, { name: 'Shop A' });
  shopB = await createPayableMerchant(ctx.deps, { name: 'Shop B', seedByte: 9 });
  await mineBlock('bitcoin', []);
  server = await startTestServer(ctx.deps);
}, 120_000);

afterAll(async () => {
  await browser?.close();
  await server?.close();
  if (ctx) await closeInvoiceUpdates(ctx.deps);
  await ctx?.close();
});

describe('dashboard: sign-in', () => {
  it('a setup link lets the user set a password once; then they sign in with an HttpOnly, SameSite=Strict session cookie', async () => {
    const r = await auth.createUser(shopA.merchant.id, { email: 'Owner@Shop-a.test', role: 'owner', createdBy: 'cli' });
    expect(r.setupUrl).toMatch(/^http:\/\/kassa\.test\/dashboard\/setup\/[A-Za-z0-9_-]{43}$/);
    expect(r.expiresAt.getTime() - Date.now()).toBeGreaterThan(23.9 * 3600_000);
    const path = new URL(r.setupUrl).pathname;
    const stored = await ctx.deps.sql`select encode(token_hash, 'hex') as h from dashboard_setup_tokens where user_id = ${r.user.id}`;
    expect(stored[0]!.h).not.toContain(path.split('/').pop());

    const { page, context, errors } = await newPage();
    await page.goto(`${server.url}${path}`);
    expect(await page.locator('#setup-email').innerText()).toBe('owner@shop-a.test');
    await page.fill('#password', 'aaaaaaaaaaaaaa');
    await page.fill('#confirm', 'aaaaaaaaaaaaaa');
    await page.click('#set-password');
    expect(await page.locator('#error').innerText()).toContain('repeated character');
    await page.fill('#password', PASSWORD);
    await page.fill('#confirm', PASSWORD + '!');
    await page.click('#set-password');
    expect(await page.locator('#error').innerText()).toContain('differ');
    await page.fill('#password', PASSWORD);
    await page.fill('#confirm', PASSWORD);
    await page.click('#set-password');
    await page.waitForURL(/\/dashboard\/login/);
    const [row] = await ctx.deps.sql<{ password_hash: string }[]>`select password_hash from dashboard_users where id = ${r.user.id}`;
    expect(row!.password_hash).toMatch(/^scrypt\$32768\$8\$3\$[A-Za-z0-9_-]{22}\$[A-Za-z0-9_-]{43}$/);
    // The link works once.
    expect((await fetch(`${server.url}${path}`)).status).toBe(404);

    await page.fill('#email', 'owner@shop-a.test');
    await page.fill('#password', PASSWORD);
    await page.click('#sign-in');
    await page.waitForURL(`${server.url}/dashboard`);
    expect(await page.locator('#merchant-name').innerText()).toBe('Shop A');
    const cookie = (await context.cookies()).find((c) => c.name === 'kassa_dash')!;
    expect(cookie).toMatchObject({ httpOnly: true, sameSite: 'Strict', path: '/dashboard', secure: false });
    const [session] = await ctx.deps.sql`select encode(id_hash, 'hex') as h from dashboard_sessions where user_id = ${r.user.id} and revoked_at is null`;
    expect(session!.h).not.toBe(cookie.value);
    const res = await context.request.get(`${server.url}/dashboard`);
    expect(res.headers()['content-security-policy']).toContain("default-src 'none'");
    expect(res.headers()['content-security-policy']).toContain("frame-ancestors 'none'");
    expect(res.headers()['cache-control']).toBe('no-store');
    expect((await auditRows(shopA.merchant.id, 'login.succeeded')).at(-1)).toMatchObject({ actor: `user:${r.user.id}`, ip: '127.0.0.1' });

    // Sign out revokes the session server-side: the old cookie no longer works.
    await page.click('#logout');
    await page.waitForURL(/\/dashboard\/login/);
    const replay = await fetch(`${server.url}/dashboard`, { headers: { cookie: `kassa_dash=${cookie.value}` }, redirect: 'manual' });
    expect(replay.status).toBe(303);
    expect(replay.headers.get('location')).toBe('/dashboard/login');
    expect(errors).toEqual([]);
    await context.close();
  });

  it('locks the account after 5 wrong passwords: the right password is refused for 15 minutes', async () => {
    // A fresh address per attempt: a retry must not trip over the first attempt's user and lockout.
    const email = `locked-${Date.now()}@shop-a.test`;
    await user(shopA, email, 'viewer');
    for (let i = 0; i < 5; i++) {
      const { page, context } = await login(email, 'wrong password ' + i);
      expect(await page.locator('#error').innerText()).toMatch(i < 4 ? /e-mail address or password is wrong/ : /locked for 15 minutes/);
      await context.close();
    }
    const { page, context } = await login(email);
    expect(page.url()).toBe(`${server.url}/dashboard/login`);
    expect(await page.locator('#error').innerText()).toContain('locked for 15 minutes');
    await context.close();
    const attempts = await ctx.deps.sql<{ result: string }[]>`select result from dashboard_login_attempts where email = ${email} order by id`;
    expect(attempts.map((a) => a.result)).toEqual(['bad_password', 'bad_password', 'bad_password', 'bad_password', 'bad_password', 'locked']);
    expect((await auditRows(shopA.merchant.id, 'login.failed')).filter((r) => r.details.email === email)).toHaveLength(5);
    // An unknown e-mail gets the same answers (no account enumeration).
    const unknown = await login('nobody@shop-a.test', 'whatever it is');
    expect(await unknown.page.locator('#error').innerText()).toMatch(/e-mail address or password is wrong/);
    await unknown.context.close();
    // After the window the account opens again.
    await ctx.deps.sql`update dashboard_login_attempts set created_at = created_at - interval '16 minutes' where email = ${email}`;
    const again = await login(email);
    await again.page.waitForURL(`${server.url}/dashboard`);
    await again.context.close();
  }, 120_000); // nine browser sign-ins, each a deliberate scrypt check: slow on a loaded 2-core machine

  it('TOTP: enrol with the QR page and a code, get 10 recovery codes once; sign-in then needs a code or a recovery code', async () => {
    const id = await user(shopA, 'twofa@shop-a.test', 'finance');
    const { page, context } = await login('twofa@shop-a.test');
    await page.goto(`${server.url}/dashboard/account`);
    await page.click('#totp-start');
    expect(await page.locator('#totp-qr').getAttribute('src')).toMatch(/^data:image\/svg\+xml;base64,/);
    const secret = await page.locator('#totp-secret').innerText();
    const totp = new OTPAuth.TOTP({ secret: OTPAuth.Secret.fromBase32(secret), digits: 6, period: 30, algorithm: 'SHA1' });
    await page.fill('#totp-code', '000000' === totp.generate() ? '111111' : '000000');
    await page.click('#totp-confirm');
    expect(await page.locator('#error').innerText()).toContain('not valid');
    await page.fill('#totp-code', totp.generate());
    await page.click('#totp-confirm');
    const codes = await page.locator('#recovery-codes li').allInnerTexts();
    expect(codes).toHaveLength(10);
    expect(new Set(codes).size).toBe(10);
    const [row] = await ctx.deps.sql`select totp_secret_box from dashboard_users where id = ${id}`;
    expect(row!.totp_secret_box).toMatch(/^v1:/);
    expect(row!.totp_secret_box).not.toContain(secret);
    await context.close();

    // Password alone is not enough.
    const half = await login('twofa@shop-a.test');
    await half.page.waitForURL(/\/dashboard\/login\/2fa$/);
    expect((await half.context.request.get(`${server.url}/dashboard/invoices`, { maxRedirects: 0 })).headers().location).toBe('/dashboard/login/2fa');
    await half.page.fill('#code', '123456' === totp.generate() ? '654321' : '123456');
    await half.page.click('#verify');
    expect(await half.page.locator('#error').innerText()).toContain('not valid');
    // The next time step's code (the current one was used to enrol and is never accepted twice).
    await half.page.fill('#code', totp.generate({ timestamp: Date.now() + 30_000 }));
    await half.page.click('#verify');
    await half.page.waitForURL(`${server.url}/dashboard`);
    await half.context.close();

    // A recovery code works once.
    const rc = await login('twofa@shop-a.test', PASSWORD, () => codes[3]!);
    await rc.page.waitForURL(`${server.url}/dashboard`);
    await rc.context.close();
    const reuse = await login('twofa@shop-a.test', PASSWORD, () => codes[3]!);
    expect(await reuse.page.locator('#error').innerText()).toContain('not valid');
    await reuse.context.close();
    const second = (await auditRows(shopA.merchant.id, 'login.succeeded')).filter((r) => r.actor === `user:${id}`).map((r) => r.details.second_factor ?? null);
    expect(second).toEqual([null, 'totp', 'recovery_code']);
  });

  it('owners must enrol first when the merchant requires 2FA for owners', async () => {
    await user(shopB, 'owner@shop-b.test', 'owner');
    await ctx.deps.sql`update merchants set require_owner_2fa = true where id = ${shopB.merchant.id}`;
    const { page, context } = await login('owner@shop-b.test');
    await page.waitForURL(`${server.url}/dashboard/account`);
    expect(await page.locator('#twofa-required').isVisible()).toBe(true);
    await page.goto(`${server.url}/dashboard/invoices`);
    expect(page.url()).toBe(`${server.url}/dashboard/account`);
    await context.close();
    await ctx.deps.sql`update merchants set require_owner_2fa = false where id = ${shopB.merchant.id}`;
  });
});

describe('dashboard: invoices, marks and reconciliation', () => {
  let partial: InvoiceObject;
  let partialTxid: string;
  let bInvoice: InvoiceObject;
  let bTxid: string;

  beforeAll(async () => {
    await user(shopA, 'finance@shop-a.test', 'finance');
    await user(shopA, 'viewer@shop-a.test', 'viewer');
    const paid = await invoiceFor(shopA, { order_id: 'order-1001' });
    await payBtc(paid, 50_000n);
    partial = await invoiceFor(shopA, { order_id: 'order-1002' });
    partialTxid = await payBtc(partial, 25_000n); // 15.00 of 30.00 USD
    await mineBlock('bitcoin', []); // a second confirmation
    await invoiceFor(shopA, { order_id: 'order-1003' });
    bInvoice = await invoiceFor(shopB, { order_id: 'order-b-1' });
    bTxid = await payBtc(bInvoice, 50_000n);
  });

  it('finance finds an invoice by order id, sees its payments, and marks the partial payment settled with a reason', async () => {
    const { page, context, errors } = await login('finance@shop-a.test');
    await page.click('nav.nav a[href="/dashboard/invoices"]');
    await page.fill('#q', 'order-1002');
    await page.click('#search');
    const rows = page.locator('#invoices tbody tr');
    expect(await rows.count()).toBe(1);
    expect(await rows.first().getAttribute('data-invoice')).toBe(partial.id);
    expect(await rows.first().innerText()).toContain('paid_partial');
    // Also found by txid and by deposit address.
    await page.goto(`${server.url}/dashboard/invoices?q=${partialTxid}`);
    expect(await page.locator('#invoices tbody tr').getAttribute('data-invoice')).toBe(partial.id);
    await page.goto(`${server.url}/dashboard/invoices?q=${partial.payment_methods.find((m) => m.method === 'BTC')!.address}`);
    expect(await page.locator('#invoices tbody tr').getAttribute('data-invoice')).toBe(partial.id);
    // Filters.
    await page.goto(`${server.url}/dashboard/invoices?exception=paid_partial&status=new`);
    expect(await page.locator('#invoices tbody tr').count()).toBe(1);

    await page.click(`a[href="/dashboard/invoices/${partial.id}"]`);
    expect(await page.locator('#invoice-status').innerText()).toBe('new');
    expect(await page.locator('#invoice-exception').innerText()).toBe('paid_partial');
    const payment = page.locator('#payments-section tbody tr');
    expect(await payment.count()).toBe(1);
    expect(await payment.innerText()).toContain('0.00025000 BTC');
    expect(await payment.locator('.confirmations').innerText()).toBe('3'); // its block and two more
    expect(await payment.locator(`a[href="https://explorer.example/tx/${partialTxid}"]`).count()).toBe(1);
    expect(await page.locator('#timeline').innerText()).toContain('invoice.payment_detected');

    // The reason is required.
    await page.click('#mark-settled');
    expect(await page.locator('#invoice-status').innerText()).toBe('new'); // the browser refused the empty textarea
    await page.fill('#reason', 'Customer paid the rest by bank transfer (ref 42)');
    await page.click('#mark-settled');
    await page.waitForURL(/done=marked/);
    expect(await page.locator('#notice').innerText()).toBe('The invoice was marked.');
    expect(await page.locator('#invoice-status').innerText()).toBe('settled');
    expect(await page.locator('#invoice-exception').innerText()).toBe('marked');
    expect(await page.locator('#invoice-marked').innerText()).toContain('Customer paid the rest by bank transfer (ref 42)');
    expect(await page.locator('#timeline').innerText()).toContain('invoice.marked');

    const financeId = (await ctx.deps.sql`select id from dashboard_users where email = 'finance@shop-a.test'`)[0]!.id as string;
    // The same service as the API: invoice fields, ledger entries, event.
    const inv = await ctx.deps.invoices.get(shopA.merchant.id, partial.id);
    expect(inv.marked).toMatchObject({ by: `user:${financeId}`, reason: 'Customer paid the rest by bank transfer (ref 42)' });
    const ledger = await ctx.deps.sql`select kind from ledger_entries where invoice_id = ${partial.id} and kind = 'mark_settled'`;
    expect(ledger.length).toBe(2);
    expect(await auditRows(shopA.merchant.id, 'invoice.marked')).toEqual([
      { actor: `user:${financeId}`, action: 'invoice.marked', target: `invoice:${partial.id}`, details: { status: 'settled', reason: 'Customer paid the rest by bank transfer (ref 42)' }, ip: '127.0.0.1' },
    ]);
    expect(errors).toEqual([]);
    await context.close();
  });

  it('the reconciliation CSV export is byte-for-byte the API CSV for the same period', async () => {
    const { page, context } = await login('finance@shop-a.test');
    const today = new Date().toISOString().slice(0, 10);
    const tomorrow = new Date(Date.now() + 86_400_000).toISOString().slice(0, 10);
    await page.goto(`${server.url}/dashboard/reconciliation?from=${today}&to=${tomorrow}`);
    expect(await page.locator('#per-currency').innerText()).toContain('USD');
    expect(await page.locator('#rec-invoices tbody tr').count()).toBe(3);
    const [download] = await Promise.all([page.waitForEvent('download'), page.click('#csv')]);
    const fromDashboard = readFileSync((await download.path())!);
    const api = await fetch(`${server.url}/v1/reports/reconciliation?from=${today}&to=${tomorrow}&format=csv`, { headers: { authorization: `Bearer ${shopA.secret}` } });
    expect(api.status).toBe(200);
    const fromApi = Buffer.from(await api.arrayBuffer());
    expect(fromDashboard.equals(fromApi)).toBe(true);
    expect(fromDashboard.toString()).toContain(partial.id);
    expect(fromDashboard.toString()).not.toContain(bInvoice.id);
    expect(download.suggestedFilename()).toBe(`kassa-reconciliation-${today}-${tomorrow}.csv`);
    await context.close();
  });

  it('a viewer sees no mark button, and a forged mark POST with a valid CSRF token is refused with 403', async () => {
    const { page, context } = await login('viewer@shop-a.test');
    const other = await invoiceFor(shopA, { order_id: 'order-1004' });
    await page.goto(`${server.url}/dashboard/invoices/${other.id}`);
    expect(await page.locator('#invoice-status').innerText()).toBe('new');
    expect(await page.locator('#mark-form').count()).toBe(0);
    expect(await page.locator('#mark-settled').count()).toBe(0);
    const res = await context.request.post(`${server.url}/dashboard/invoices/${other.id}/mark`, {
      form: { _csrf: await csrfOf(page), status: 'settled', reason: 'forged' }, maxRedirects: 0,
    });
    expect(res.status()).toBe(403);
    expect((await ctx.deps.invoices.get(shopA.merchant.id, other.id)).status).toBe('new');
    // Viewers read reports but do not export.
    expect((await context.request.get(`${server.url}/dashboard/reconciliation`)).status()).toBe(200);
    expect((await context.request.get(`${server.url}/dashboard/reconciliation.csv`)).status()).toBe(403);
    await context.close();
  });

  it('finance cannot manage API keys (403 on the page and on a forged create)', async () => {
    const { page, context } = await login('finance@shop-a.test');
    await page.goto(`${server.url}/dashboard/settings`);
    expect(await page.locator('a[href="/dashboard/settings/keys"]').count()).toBe(0);
    expect((await context.request.get(`${server.url}/dashboard/settings/keys`)).status()).toBe(403);
    const res = await context.request.post(`${server.url}/dashboard/settings/keys`, {
      form: { _csrf: await csrfOf(page), name: 'sneaky', scopes: 'invoices:write' }, maxRedirects: 0,
    });
    expect(res.status()).toBe(403);
    const keys = await ctx.deps.sql`select 1 from api_keys where name = 'sneaky'`;
    expect(keys.length).toBe(0);
    expect((await context.request.get(`${server.url}/dashboard/settings/users`)).status()).toBe(403);
    expect((await context.request.get(`${server.url}/dashboard/audit`)).status()).toBe(403);
    await context.close();
  });

  it("a session of merchant A never shows merchant B's data, also when editing URLs to B's ids (404)", async () => {
    const { page, context } = await login('finance@shop-a.test');
    const res = await page.goto(`${server.url}/dashboard/invoices/${bInvoice.id}`);
    expect(res!.status()).toBe(404);
    expect(await page.content()).not.toContain('order-b-1');
    await page.goto(`${server.url}/dashboard/invoices?q=order-b-1`);
    expect(await page.locator('#invoices tbody tr').count()).toBe(0);
    await page.goto(`${server.url}/dashboard/invoices?q=${bTxid}`);
    expect(await page.locator('#invoices tbody tr').count()).toBe(0);
    await page.goto(`${server.url}/dashboard/payments`);
    expect(await page.content()).not.toContain(bTxid);
    await page.goto(`${server.url}/dashboard/invoices?after=${bInvoice.id}`);
    expect(await page.content()).not.toContain(bInvoice.id);
    const mark = await context.request.post(`${server.url}/dashboard/invoices/${bInvoice.id}/mark`, {
      form: { _csrf: await csrfOf(page), status: 'invalid', reason: 'cross-merchant' }, maxRedirects: 0,
    });
    expect(mark.status()).toBe(404);
    expect((await ctx.deps.invoices.get(shopB.merchant.id, bInvoice.id)).status).toBe('settled');
    await context.close();
  });

  it('a POST without the CSRF token (or with a wrong one) is refused with 403', async () => {
    const { page, context } = await login('finance@shop-a.test');
    const inv = await invoiceFor(shopA, { order_id: 'order-1005' });
    await page.goto(`${server.url}/dashboard/invoices/${inv.id}`);
    const missing = await context.request.post(`${server.url}/dashboard/invoices/${inv.id}/mark`, { form: { status: 'invalid', reason: 'no token' }, maxRedirects: 0 });
    expect(missing.status()).toBe(403);
    const wrong = await context.request.post(`${server.url}/dashboard/invoices/${inv.id}/mark`, { form: { _csrf: 'x'.repeat(43), status: 'invalid', reason: 'bad token' }, maxRedirects: 0 });
    expect(wrong.status()).toBe(403);
    expect((await ctx.deps.invoices.get(shopA.merchant.id, inv.id)).status).toBe('new');
    // The sign-in form is protected too.
    const signIn = await fetch(`${server.url}/dashboard/login`, { method: 'POST', body: new URLSearchParams({ email: 'finance@shop-a.test', password: PASSWORD }), redirect: 'manual' });
    expect(signIn.status).toBe(403);
    await context.close();
  });
});

describe('dashboard: owners manage keys and users', () => {
  it('an owner creates and revokes an API key (audit logged) and revokes a user, which ends their session', async () => {
    await user(shopA, 'boss@shop-a.test', 'owner');
    const victimId = await user(shopA, 'leaver@shop-a.test', 'developer');
    const leaver = await login('leaver@shop-a.test');
    await leaver.page.waitForURL(`${server.url}/dashboard`);

    const { page, context, errors } = await login('boss@shop-a.test');
    await page.goto(`${server.url}/dashboard/settings/keys`);
    await page.fill('#key-name', 'shop backend');
    await page.click('#create-key');
    const secret = await page.locator('#new-secret').innerText();
    expect(secret).toMatch(/^kassa_sk_/);
    expect((await fetch(`${server.url}/v1/invoices`, { headers: { authorization: `Bearer ${secret}` } })).status).toBe(200);
    const keyId = (await ctx.deps.sql`select id from api_keys where name = 'shop backend'`)[0]!.id as string;
    await page.locator(`tr[data-key="${keyId}"] button`).click();
    await page.waitForURL(/done=key_revoked/);
    expect((await fetch(`${server.url}/v1/invoices`, { headers: { authorization: `Bearer ${secret}` } })).status).toBe(401);
    expect((await auditRows(shopA.merchant.id, 'api_key.created')).map((r) => r.target)).toEqual([`api_key:${keyId}`]);
    expect((await auditRows(shopA.merchant.id, 'api_key.revoked')).map((r) => r.target)).toEqual([`api_key:${keyId}`]);
    expect(ctx.logs.text()).not.toContain(secret);

    await page.goto(`${server.url}/dashboard/settings/users`);
    await page.locator(`tr[data-user="${victimId}"] button.danger`).click();
    await page.waitForURL(/done=user_revoked/);
    const after = await leaver.context.request.get(`${server.url}/dashboard`, { maxRedirects: 0 });
    expect(after.status()).toBe(303);
    expect((await auditRows(shopA.merchant.id, 'user.revoked')).map((r) => r.target)).toEqual([`user:${victimId}`]);

    await page.goto(`${server.url}/dashboard/audit`);
    expect(await page.locator('#audit tr[data-action="invoice.marked"]').count()).toBe(1);
    expect(await page.locator('#audit tr[data-action="login.failed"]').count()).toBeGreaterThan(0);
    expect(errors).toEqual([]);
    await leaver.context.close();
    await context.close();
    // Nothing secret in the logs.
    expect(ctx.logs.text()).not.toContain(PASSWORD);
  });
});
