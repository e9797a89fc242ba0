/**
 * Dashboard accessibility fixes in real headless Chromium against a real server, Postgres and
 * Redis: scrollable tables reachable by keyboard, a skip link, chart labels legible on a phone, no
 * "Mark settled" on a settled invoice, unpaid amounts without a row of zeros, and axe-core over the
 * main pages at 360 px and on a desktop. Payments are fed to the settlement service the way the
 * watchers do.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import { createTestContext, type TestContext } from '../support/db.ts';
import { createPayableMerchant, writeChainsFile } from '../support/merchant.ts';
import { launchBrowser, startTestServer, type TestServer } from '../support/browser.ts';
import { axeViolations } from '../support/axe.ts';
import { closeInvoiceUpdates } from '../../src/checkout/updates.ts';
import { createDashboardAuth, type DashboardAuth } from '../../src/dashboard/auth.ts';
import { DASHBOARD_ASSET_VERSION } from '../../src/dashboard/assets.ts';
import type { Observation } from '../../src/settlement/service.ts';
import type { InvoiceObject } from '../../src/invoices/present.ts';

const PASSWORD = 'correct horse battery staple';
let ctx: TestContext;
let server: TestServer;
let browser: Browser;
let auth: DashboardAuth;
let shop: Awaited<ReturnType<typeof createPayableMerchant>>;
let settled: InvoiceObject;
let open: InvoiceObject;
let tip = 100;

async function mineBtc(obs: Omit<Observation, 'block'>[]): Promise<void> {
  const h = ++tip;
  const time = new Date();
  const block = { hash: `bitcoin-${h}`.padEnd(64, '0'), height: h, time };
  const changed = await ctx.deps.sql.begin(async (tx) => {
    const touched = await ctx.deps.settlement.recordObservations(tx, 'bitcoin', obs.map((o) => ({ ...o, block })));
    await ctx.deps.settlement.advanceCursor(tx, 'bitcoin', { height: h, hash: block.hash, prevHash: `bitcoin-${h - 1}`.padEnd(64, '0'), time }, 100);
    const waiting = await ctx.deps.settlement.awaitingConfirmations(tx, 'bitcoin');
    return ctx.deps.settlement.recompute(tx, [...touched, ...waiting]);
  });
  await ctx.deps.settlement.publishChanges(changed);
}

async function invoice(): Promise<InvoiceObject> {
  const merchant = await ctx.deps.merchants.get(ctx.deps.sql, shop.merchant.id);
  return ctx.deps.invoices.create(merchant, { amount: '25.00', currency: 'USD', description: 'A11y test' } as never);
}

async function login(width: number, height: number): Promise<{ page: Page; context: BrowserContext }> {
  const context = await browser.newContext({ viewport: { width, height }, bypassCSP: true });
  const page = await context.newPage();
  await page.goto(`${server.url}/dashboard/login`);
  await page.fill('#email', 'owner@a11y.test');
  await page.fill('#password', PASSWORD);
  await page.click('#sign-in');
  await page.waitForURL(/\/dashboard\/?$/);
  return { page, context };
}

beforeAll(async () => {
  browser = await launchBrowser();
  ctx = await createTestContext({ KASSA_CONFIG: writeChainsFile() });
  auth = createDashboardAuth({ sql: ctx.deps.sql, config: ctx.config, logger: ctx.deps.logger });
  shop = await createPayableMerchant(ctx.deps, { name: 'A11y shop' });
  const r = await auth.createUser(shop.merchant.id, { email: 'owner@a11y.test', role: 'owner', createdBy: 'test' });
  await auth.completeSetup(r.setupUrl.split('/').pop()!, PASSWORD, '127.0.0.1');
  await mineBtc([]);
  settled = await invoice();
  await mineBtc([{ txid: 'a1'.repeat(32), outputIndex: 0, address: settled.payment_methods.find((m) => m.method === 'BTC')!.address, token: null, amount: 41_667n }]);
  open = await invoice();
  server = await startTestServer(ctx.deps);
}, 120_000);

afterAll(async () => {
  await browser?.close();
  await server?.close();
  if (ctx) await closeInvoiceUpdates(ctx.deps);
  await ctx?.close();
});

describe('dashboard accessibility', () => {
  it('a skip link is the first Tab stop and moves focus to the content', async () => {
    const { page, context } = await login(1280, 900);
    await page.keyboard.press('Tab');
    expect(await page.evaluate('document.activeElement.className + " " + document.activeElement.getAttribute("href")')).toBe('skip #main');
    expect((await page.locator('a.skip').boundingBox())!.y).toBeGreaterThanOrEqual(0); // shown when focused
    await page.keyboard.press('Enter');
    expect(await page.evaluate('document.activeElement.id')).toBe('main');
    await context.close();
  });

  it('scrollable tables are regions with a name that the keyboard reaches (invoice detail at 360 px)', async () => {
    const { page, context } = await login(360, 740);
    await page.goto(`${server.url}/dashboard/invoices/${settled.id}`);
    const regions = page.locator('section.table-wrap');
    expect(await regions.count()).toBeGreaterThan(0);
    for (const r of await regions.all()) {
      expect(await r.getAttribute('tabindex')).toBe('0');
      expect(await r.getAttribute('role')).toBe('region');
      expect(await r.getAttribute('aria-label')).toBeTruthy();
    }
    const methods = page.locator('section.table-wrap[aria-label="Payment methods"]');
    expect(await methods.evaluate((el) => el.scrollWidth > el.clientWidth)).toBe(true); // it does scroll here
    let reached = false;
    for (let i = 0; i < 40 && !reached; i++) {
      await page.keyboard.press('Tab');
      reached = (await page.evaluate('document.activeElement && document.activeElement.getAttribute("aria-label")')) === 'Payment methods';
    }
    expect(reached).toBe(true);
    await context.close();
  });

  it('chart labels stay legible on a 360 px phone', async () => {
    const { page, context } = await login(360, 740);
    const heights = await page.locator('#chart-invoices text').evaluateAll((els) =>
      els.filter((e) => (globalThis as unknown as { getComputedStyle(e: unknown): { display: string } }).getComputedStyle(e).display !== 'none').map((e) => e.getBoundingClientRect().height));
    expect(heights.length).toBeGreaterThan(0);
    expect(Math.min(...heights)).toBeGreaterThanOrEqual(10);
    // Visible date labels do not overlap.
    const boxes = await page.locator('#chart-invoices text.day').evaluateAll((els) =>
      els.filter((e) => (globalThis as unknown as { getComputedStyle(e: unknown): { display: string } }).getComputedStyle(e).display !== 'none').map((e) => { const b = e.getBoundingClientRect(); return [b.left, b.right]; }));
    boxes.sort((a, b) => a[0]! - b[0]!);
    for (let i = 1; i < boxes.length; i++) expect(boxes[i]![0]).toBeGreaterThanOrEqual(boxes[i - 1]![1]!);
    await context.close();
  });

  it('offers "Mark settled" only on an invoice that is not settled; unpaid amounts read 0, not a row of zeros', async () => {
    const { page, context } = await login(1280, 900);
    await page.goto(`${server.url}/dashboard/invoices/${settled.id}`);
    expect(await page.locator('#invoice-status').innerText()).toBe('settled');
    expect(await page.locator('#mark-settled').count()).toBe(0);
    expect(await page.locator('#mark-invalid').count()).toBe(1);
    await page.goto(`${server.url}/dashboard/invoices/${open.id}`);
    expect(await page.locator('#mark-settled').count()).toBe(1);
    const ethRow = page.locator('section[aria-label="Payment methods"] tbody tr', { hasText: 'ETH-ethereum' });
    expect(await ethRow.locator('td').nth(1).innerText()).toBe('0.008334 ETH');
    expect(await ethRow.locator('td').nth(2).innerText()).toBe('0');
    await context.close();
  });

  it('the stylesheet is cached as immutable for its versioned URL; the dashboard is never compressed (BREACH)', async () => {
    const css = await fetch(`${server.url}/dashboard/static/dashboard.css?v=${DASHBOARD_ASSET_VERSION}`, { headers: { 'accept-encoding': 'br' } });
    expect(css.headers.get('cache-control')).toBe('public, max-age=31536000, immutable');
    const login = await fetch(`${server.url}/dashboard/login`, { headers: { 'accept-encoding': 'br, gzip' } });
    expect(login.headers.get('content-type')).toMatch(/text\/html/);
    expect(login.headers.get('content-encoding')).toBeNull();
  });

  it('axe-core: 0 violations on the main pages at 360 px and on a desktop', async () => {
    const found: string[] = [];
    for (const [width, height] of [[360, 740], [1280, 900]] as const) {
      const { page, context } = await login(width, height);
      for (const path of ['/dashboard', '/dashboard/invoices', `/dashboard/invoices/${settled.id}`, `/dashboard/invoices/${open.id}`, '/dashboard/payments', '/dashboard/reconciliation', '/dashboard/settings', '/dashboard/audit']) {
        await page.goto(`${server.url}${path}`);
        for (const v of await axeViolations(page)) found.push(`${path} ${width}px: ${v}`);
      }
      await context.close();
    }
    expect(found).toEqual([]);
  }, 120_000);

  it('axe-core: 0 violations on the "choose the shop" step (one e-mail and password, accounts in two merchants)', async () => {
    const other = await createPayableMerchant(ctx.deps, { name: 'Second a11y shop', seedByte: 9 });
    for (const m of [shop, other]) {
      const r = await auth.createUser(m.merchant.id, { email: 'two-shops@a11y.test', role: 'viewer', createdBy: 'test' });
      await auth.completeSetup(r.setupUrl.split('/').pop()!, PASSWORD, '127.0.0.1');
    }
    const found: string[] = [];
    for (const [width, height] of [[360, 740], [1280, 900]] as const) {
      const context = await browser.newContext({ viewport: { width, height }, bypassCSP: true });
      const page = await context.newPage();
      await page.goto(`${server.url}/dashboard/login`);
      await page.fill('#email', 'two-shops@a11y.test');
      await page.fill('#password', PASSWORD);
      await page.click('#sign-in');
      await page.waitForURL(/\/dashboard\/login\/choose$/);
      expect(await page.locator('#shops button').allInnerTexts()).toEqual(['A11y shop (viewer)', 'Second a11y shop (viewer)']);
      for (const v of await axeViolations(page)) found.push(`choose ${width}px: ${v}`);
      await page.click('#shops button >> nth=1');
      await page.waitForURL(/\/dashboard\/?$/);
      expect(await page.locator('#merchant-name').innerText()).toBe('Second a11y shop');
      await context.close();
    }
    expect(found).toEqual([]);
  }, 180_000);
});
