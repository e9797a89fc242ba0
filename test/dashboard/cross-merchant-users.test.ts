/**
 * Issue 15 finding 7: no answer reveals another merchant's dashboard users. An e-mail address is
 * unique per merchant only (migration 0016); the same person can hold an account in two merchants,
 * each with its own password and second factor. Sign-in checks the password against every account
 * with the e-mail and lets the accounts that accept it decide (several: "choose the shop").
 * Real Postgres, the real app (`app.request`), no mocks.
 */
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import * as OTPAuth from 'otpauth';
import { createApp } from '../../src/api/app.ts';
import { createDashboardAuth, type DashboardAuth } from '../../src/dashboard/auth.ts';
import { createMerchantWithKey, createTestContext, type TestContext } from '../support/db.ts';
import { DashboardClient, signedInOwner } from '../api/dashboard-session.ts';

let ctx: TestContext;
let app: ReturnType<typeof createApp>;
let auth: DashboardAuth;
type Shop = Awaited<ReturnType<typeof createMerchantWithKey>>;
let shopA: Shop;
let shopB: Shop;
let shopC: Shop;
let ownerA: DashboardClient;

const PASSWORD_A = 'password of the shop A account';
const PASSWORD_B = 'password of the shop B account';

/** Creates an account in `shop` and sets its password through the setup link; returns its id. */
async function account(shop: Shop, email: string, password: string, role = 'viewer'): Promise<string> {
  const r = await auth.createUser(shop.merchant.id, { email, role, createdBy: 'test' });
  await auth.completeSetup(r.setupUrl.split('/').pop()!, password, '127.0.0.1');
  return r.user.id;
}

/** Submits the sign-in form from a fresh client. */
async function signIn(email: string, password: string): Promise<{ client: DashboardClient; status: number; location: string | null; text: string }> {
  const client = new DashboardClient(app);
  await client.get('/dashboard/login');
  const r = await client.post('/dashboard/login', { email, password });
  return { client, status: r.res.status, location: r.res.headers.get('location'), text: r.text };
}

/** The merchant name in the signed-in dashboard's header. */
async function merchantShown(client: DashboardClient): Promise<string> {
  const page = await client.get('/dashboard');
  expect(page.res.status).toBe(200);
  return /id="merchant-name">([^<]*)</.exec(page.text)![1]!;
}

const auditOf = (shop: Shop, action: string) =>
  ctx.deps.sql<{ target: string; details: { email?: string } }[]>`
    select target, details from audit_log where merchant_id = ${shop.merchant.id} and action = ${action} order by id`;

beforeAll(async () => {
  ctx = await createTestContext();
  app = createApp(ctx.deps);
  auth = createDashboardAuth({ sql: ctx.deps.sql, config: ctx.deps.config, logger: ctx.deps.logger });
  shopA = await createMerchantWithKey(ctx.deps, { name: 'Shop A' });
  shopB = await createMerchantWithKey(ctx.deps, { name: 'Shop B' });
  shopC = await createMerchantWithKey(ctx.deps, { name: 'Shop C' });
  ({ client: ownerA } = await signedInOwner(app, ctx.deps, shopA.merchant.id, 'owner@shop-a.test'));
  // Shop B's users, which shop A must learn nothing about.
  await account(shopB, 'taken@shop-b.test', PASSWORD_B);
}, 120_000);
afterAll(async () => ctx?.close());

// Every sign-in comes from the same address: start each test with clean limits.
beforeEach(async () => {
  await ctx.deps.sql`delete from dashboard_login_attempts`;
});

describe('adding a user', () => {
  it("merchant A's owner adds an e-mail that is a user of merchant B: created like any other, no 'already exists'", async () => {
    await ownerA.get('/dashboard/settings/users');
    const taken = await ownerA.post('/dashboard/settings/users', { email: 'Taken@Shop-B.test', role: 'viewer' });
    await ownerA.get('/dashboard/settings/users');
    const fresh = await ownerA.post('/dashboard/settings/users', { email: 'nobody-yet@shop-b.test', role: 'viewer' });

    for (const r of [taken, fresh]) {
      expect(r.res.status).toBe(200);
      expect(r.text).toContain('User created.');
      expect(r.text).toContain('id="setup-url"');
      expect(r.text).not.toMatch(/already/i);
    }
    // The two answers differ only by the e-mail address and the setup link.
    const shape = (html: string, email: string) => html.replaceAll(email, 'E').replace(/\/dashboard\/setup\/[\w-]+/g, 'LINK')
      .replace(/name="_csrf" value="[^"]+"/g, '').replace(/<time[^>]*>[^<]*<\/time>/g, '').replace(/data-user="[^"]+"|\/users\/usr_[^/]+\//g, '')
      .replace(/<tr[^]*?<\/tr>/g, '');
    expect(shape(taken.text, 'taken@shop-b.test')).toBe(shape(fresh.text, 'nobody-yet@shop-b.test'));

    const rows = await ctx.deps.sql<{ merchant_id: string }[]>`select merchant_id from dashboard_users where email = 'taken@shop-b.test' order by seq`;
    expect(rows.map((r) => r.merchant_id)).toEqual([shopB.merchant.id, shopA.merchant.id]);
    // Shop A's user list and audit log show its own users only.
    const users = await ownerA.get('/dashboard/settings/users');
    const ids = async (shop: Shop) => (await ctx.deps.sql<{ id: string }[]>`select id from dashboard_users where merchant_id = ${shop.merchant.id} order by seq`).map((r) => r.id);
    const listed = [...users.text.matchAll(/<tr data-user="([^"]+)"/g)].map((m) => m[1]);
    expect(listed).toEqual(await ids(shopA));
    const [bId] = await ids(shopB);
    expect(users.text).not.toContain(bId!);
    const log = await ownerA.get('/dashboard/audit');
    expect(log.text).not.toContain(bId!);
    expect(log.text).not.toContain(shopB.merchant.id);
  }, 120_000);

  it('the same e-mail twice in the same merchant: 409 user_exists', async () => {
    await auth.createUser(shopC.merchant.id, { email: 'twice@shop-c.test', role: 'viewer', createdBy: 'test' });
    await expect(auth.createUser(shopC.merchant.id, { email: ' TWICE@shop-c.test', role: 'owner', createdBy: 'test' }))
      .rejects.toMatchObject({ code: 'user_exists', status: 409, param: 'email' });
    await ownerA.get('/dashboard/settings/users');
    await ownerA.post('/dashboard/settings/users', { email: 'twice@shop-a.test', role: 'viewer' });
    await ownerA.get('/dashboard/settings/users');
    const again = await ownerA.post('/dashboard/settings/users', { email: 'twice@shop-a.test', role: 'finance' });
    expect(again.res.status).toBe(409);
    expect(again.text).toContain('This merchant already has a user with this e-mail address.');
    expect((await ctx.deps.sql`select 1 from dashboard_users where email = 'twice@shop-a.test'`).length).toBe(1);
  }, 120_000);
});

describe('signing in with an e-mail that has accounts in several merchants', () => {
  it('each account with its own password lands in its own merchant', async () => {
    const aId = await account(shopA, 'two-shops@example.test', PASSWORD_A);
    const bId = await account(shopB, 'two-shops@example.test', PASSWORD_B);

    const a = await signIn('two-shops@example.test', PASSWORD_A);
    expect(a.status).toBe(303);
    expect(a.location).toBe('/dashboard');
    expect(await merchantShown(a.client)).toBe('Shop A');
    const b = await signIn('Two-Shops@example.test', PASSWORD_B);
    expect(b.location).toBe('/dashboard');
    expect(await merchantShown(b.client)).toBe('Shop B');

    // Sessions and the audit log are per account.
    const sessions = await ctx.deps.sql<{ user_id: string; merchant_id: string }[]>`
      select s.user_id, s.merchant_id from dashboard_sessions s join dashboard_users u on u.id = s.user_id
      where u.email = 'two-shops@example.test' order by s.created_at`;
    expect(sessions).toEqual([{ user_id: aId, merchant_id: shopA.merchant.id }, { user_id: bId, merchant_id: shopB.merchant.id }]);
    expect((await auditOf(shopA, 'login.succeeded')).filter((e) => e.target === `user:${aId}`)).toHaveLength(1);
    expect((await auditOf(shopB, 'login.succeeded')).filter((e) => e.target === `user:${bId}`)).toHaveLength(1);
    // Signing in to one account writes nothing about it into the other merchant's log.
    expect((await auditOf(shopA, 'login.failed')).filter((e) => e.target === `user:${aId}`)).toHaveLength(0);
    expect((await auditOf(shopB, 'login.failed')).filter((e) => e.target === `user:${bId}`)).toHaveLength(0);
  }, 120_000);

  it('the same password in several merchants: "choose the shop" lists exactly those accounts, then that account (and its second factor)', async () => {
    const SAME = 'one password for two shops';
    await account(shopA, 'same@example.test', SAME);
    const bId = await account(shopB, 'same@example.test', SAME, 'finance');
    await account(shopC, 'same@example.test', 'a different password for shop C'); // not listed: its password differs

    const first = await signIn('same@example.test', SAME);
    expect(first.status).toBe(303);
    expect(first.location).toBe('/dashboard/login/choose');
    expect(first.client.cookies.has('kassa_dash')).toBe(false);
    const page = await first.client.get('/dashboard/login/choose');
    expect(page.res.status).toBe(200);
    const listed = [...page.text.matchAll(/name="account" value="(usr_[^"]+)"[^>]*>([^<]+)</g)].map((m) => [m[1], m[2]!.trim()]);
    expect(listed.map(([, name]) => name)).toEqual(['Shop A', 'Shop B']);
    expect(page.text).not.toContain('Shop C');
    // Nothing signed in yet: the dashboard still sends the user to sign in.
    expect((await first.client.get('/dashboard')).res.headers.get('location')).toBe('/dashboard/login');

    // A pick that is not on the list (shop C's account, which did not accept the password) is refused.
    const [cId] = (await ctx.deps.sql<{ id: string }[]>`select id from dashboard_users where email = 'same@example.test' and merchant_id = ${shopC.merchant.id}`).map((r) => r.id);
    const forged = await first.client.post('/dashboard/login/choose', { account: cId! });
    expect(forged.res.status).toBe(400);
    expect(forged.text).toContain('Choose one of the shops listed.');
    expect(first.client.cookies.has('kassa_dash')).toBe(false);
    // Without the form's token: refused.
    expect((await first.client.post('/dashboard/login/choose', { _csrf: 'x', account: bId })).res.status).toBe(403);

    const picked = await first.client.post('/dashboard/login/choose', { account: bId });
    expect(picked.res.status).toBe(303);
    expect(picked.res.headers.get('location')).toBe('/dashboard');
    expect(await merchantShown(first.client)).toBe('Shop B');
    // The choice works once.
    expect((await first.client.get('/dashboard/login/choose')).res.headers.get('location')).toBe('/dashboard/login');

    // Shop A's account turns on 2FA: picking it leads to that account's second factor.
    const aUser = (await auth.listUsers(shopA.merchant.id)).find((u) => u.email === 'same@example.test')!;
    const { secret, uri } = await auth.startTotp(aUser, 'Shop A');
    expect(uri).toContain('Kassa:same%40example.test%20(Shop%20A)'); // two entries in the authenticator app, told apart
    const totp = new OTPAuth.TOTP({ secret: OTPAuth.Secret.fromBase32(secret), digits: 6, period: 30, algorithm: 'SHA1' });
    expect(await auth.confirmTotp(aUser, totp.generate(), '127.0.0.1')).toHaveLength(10);
    const second = await signIn('same@example.test', SAME);
    expect(second.location).toBe('/dashboard/login/choose');
    await second.client.get('/dashboard/login/choose');
    const toA = await second.client.post('/dashboard/login/choose', { account: aUser.id });
    expect(toA.res.headers.get('location')).toBe('/dashboard/login/2fa');
    await second.client.get('/dashboard/login/2fa');
    expect((await second.client.post('/dashboard/login/2fa', { code: '000000' })).res.status).toBe(401);
    const ok = await second.client.post('/dashboard/login/2fa', { code: totp.generate({ timestamp: Date.now() + 30_000 }) });
    expect(ok.res.status).toBe(303);
    expect(await merchantShown(second.client)).toBe('Shop A');
  }, 120_000);

  it('a wrong password answers exactly like an unknown e-mail', async () => {
    await account(shopA, 'known@example.test', PASSWORD_A);
    await account(shopB, 'known@example.test', PASSWORD_B);
    const wrong = await signIn('known@example.test', 'not any of the passwords');
    const unknown = await signIn('unknown@example.test', 'not any of the passwords');
    expect(wrong.status).toBe(401);
    expect(unknown.status).toBe(401);
    const shape = (html: string, email: string) => html.replaceAll(email, 'E').replace(/name="_csrf" value="[^"]+"/g, '');
    expect(shape(wrong.text, 'known@example.test')).toBe(shape(unknown.text, 'unknown@example.test'));
    expect(wrong.text).toContain('The e-mail address or password is wrong.');
    // Each merchant's log records the failure for its own account only.
    expect((await auditOf(shopA, 'login.failed')).filter((e) => e.details.email === 'known@example.test')).toHaveLength(1);
    expect((await auditOf(shopB, 'login.failed')).filter((e) => e.details.email === 'known@example.test')).toHaveLength(1);
  }, 120_000);

  it("another merchant's successful sign-in does not reset the lockout count someone else is building", async () => {
    await account(shopA, 'lock@example.test', PASSWORD_A);
    await account(shopB, 'lock@example.test', PASSWORD_B);
    // Shop A's side (who knows only shop A's password) fails 4 times from its address...
    for (let i = 0; i < 4; i++) expect((await auth.login('lock@example.test', `wrong ${i}`, '10.0.0.1')).kind).toBe('refused');
    // ...the shop B account signs in from elsewhere...
    expect((await auth.login('lock@example.test', PASSWORD_B, '10.0.0.2')).kind).toBe('ok');
    // ...and shop A's side cannot tell: the fifth failure locks as it would have anyway.
    const fifth = await auth.login('lock@example.test', 'wrong 5', '10.0.0.1');
    expect(fifth).toMatchObject({ kind: 'refused', status: 429 });
  }, 120_000);

  it('a success clears the failures from its own address (typos before a correct password)', async () => {
    await account(shopA, 'typos@example.test', PASSWORD_A);
    for (let i = 0; i < 4; i++) await auth.login('typos@example.test', `typo ${i}`, '10.0.0.3');
    expect((await auth.login('typos@example.test', PASSWORD_A, '10.0.0.3')).kind).toBe('ok');
    expect(await auth.login('typos@example.test', 'typo again', '10.0.0.3')).toMatchObject({ kind: 'refused', status: 401 });
  }, 120_000);
});
