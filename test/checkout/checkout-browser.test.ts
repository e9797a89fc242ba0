/**
 * The checkout page in real headless Chromium against a real server, Postgres, Redis, the Bitcoin
 * regtest devnet and the real Bitcoin watcher: the customer sees the amount and address, the QR
 * decodes to the wallet URI, and paying moves the page live (SSE) to "detected" and "paid" with no
 * reload. A missing Chromium fails these tests (test/support/browser.ts), it never skips them.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import type { BitcoinChainConfig } from '../../src/config.ts';
import { createBitcoinNodeClient } from '../../src/chains/bitcoin/client.ts';
import { createBitcoinWatcher, type BitcoinWatcher } from '../support/watchers.ts';
import { closeInvoiceUpdates } from '../../src/checkout/updates.ts';
import type { PublicInvoice } from '../../src/checkout/public-invoice.ts';
import { createTestContext, type TestContext } from '../support/db.ts';
import { createPayableMerchant, writeChainsFile } from '../support/merchant.ts';
import { startDevnetProcess, type DevnetProcess } from '../support/devnet.ts';
import { decodeQrIn, launchBrowser, startTestServer, waitForImage, type TestServer } from '../support/browser.ts';

let dn: DevnetProcess;
let ctx: TestContext;
let server: TestServer;
let browser: Browser;
let watcher: BitcoinWatcher;
let shop: Awaited<ReturnType<typeof createPayableMerchant>>;

beforeAll(async () => {
  browser = await launchBrowser();
  dn = await startDevnetProcess();
  ctx = await createTestContext({ KASSA_CONFIG: writeChainsFile({ bitcoinRpc: { url: dn.rpcUrl, user: dn.rpcUser, password: dn.rpcPassword } }) });
  shop = await createPayableMerchant(ctx.deps, { name: 'Corner Café' });
  const cfg = ctx.config.chains.bitcoin as BitcoinChainConfig;
  watcher = createBitcoinWatcher({
    chain: 'bitcoin', config: cfg, client: createBitcoinNodeClient(cfg, 'bitcoin', { retries: 0 }), sql: ctx.deps.sql,
    settlement: ctx.deps.settlement, redis: ctx.deps.redis, queuePrefix: ctx.config.queuePrefix, logger: ctx.deps.logger,
  });
  await watcher.runOnce(); // the cursor starts at the devnet's tip
  server = await startTestServer(ctx.deps);
}, 120_000);

afterAll(async () => {
  await browser?.close();
  await server?.close();
  if (ctx) await closeInvoiceUpdates(ctx.deps);
  await ctx?.close();
  await dn?.stop();
});

async function invoice(extra: Record<string, unknown> = {}) {
  const merchant = await ctx.deps.merchants.get(ctx.deps.sql, shop.merchant.id);
  return ctx.deps.invoices.create(merchant, { amount: '25.00', currency: 'USD', description: 'Two flat whites', ...extra } as never);
}

async function publicInvoice(id: string): Promise<PublicInvoice> {
  return (await fetch(`${server.url}/v1/public/invoices/${id}`)).json() as Promise<PublicInvoice>;
}

async function openPage(path: string, opts: { width?: number; height?: number; locale?: string } = {}): Promise<{ page: Page; context: BrowserContext; errors: string[] }> {
  const context = await browser.newContext({ viewport: { width: opts.width ?? 1280, height: opts.height ?? 900 }, locale: opts.locale ?? 'en-US' });
  const page = await context.newPage();
  const errors: string[] = [];
  page.on('pageerror', (e) => errors.push(e.message));
  page.on('console', (m) => {
    if (m.type() === 'error') errors.push(m.text());
  });
  page.on('dialog', (d) => {
    errors.push(`dialog: ${d.message()}`);
    void d.dismiss();
  });
  // No third-party requests: every request stays on our server.
  page.on('request', (r) => {
    if (!r.url().startsWith(server.url) && !r.url().startsWith('data:')) errors.push(`third-party request: ${r.url()}`);
  });
  await page.goto(`${server.url}${path}`);
  return { page, context, errors };
}

const text = (page: Page, sel: string) => page.locator(sel).innerText();

describe('checkout page in Chromium', () => {
  it('shows amount, address and a QR that decodes to the wallet URI; paying turns it live to detected, then paid, without a reload', async () => {
    const inv = await invoice();
    const { page, context, errors } = await openPage(`/pay/${inv.id}`);
    const pub = await publicInvoice(inv.id);
    const btc = pub.payment_methods.find((m) => m.method === 'BTC')!;
    expect(btc.payment_uri).toBe(`bitcoin:${btc.address}?amount=0.00041667&label=Corner%20Caf%C3%A9`);

    expect(await text(page, '#merchant-name')).toBe('Corner Café');
    expect(await text(page, '#price')).toBe('25.00 USD');
    expect(await text(page, '#address')).toBe(btc.address);
    expect(await text(page, '#amount')).toBe('0.00041667');
    expect(await text(page, '#network')).toBe('Bitcoin · regtest');
    expect(await page.locator('#wallet-link').getAttribute('href')).toBe(btc.payment_uri);
    expect(await text(page, '#status-title')).toBe('Waiting for your payment');
    expect(await text(page, '#countdown')).toMatch(/^1[45]:\d\d$/);
    await waitForImage(page, '#qr');
    expect(await decodeQrIn(page, '#qr')).toBe(btc.payment_uri);
    // Copy buttons appear with the script.
    await expect.poll(() => page.locator('button[data-copy="address"]').isVisible()).toBe(true);

    await page.evaluate('window.__kassaMarker = "still-the-same-page"');
    let navigations = 0;
    page.on('framenavigated', (f) => {
      if (f === page.mainFrame()) navigations++;
    });

    // Pay on the devnet; the watcher sees the tx in the mempool (0 of 1 confirmations).
    await dn.wallet.sendToAddress(btc.address, btc.amount_due);
    await watcher.runOnce();
    await expect.poll(() => text(page, '#status-title'), { timeout: 10_000 }).toBe('Payment detected');
    expect(await text(page, '#status-detail')).toContain('0 of 1');
    expect(await text(page, '#payment-list .pline')).toBe('0.00041667 BTC: 0 of 1 confirmations');
    expect(await page.locator('#pay').isHidden()).toBe(true);

    // One block: settled.
    await dn.wallet.mine(1);
    await watcher.runOnce();
    await expect.poll(() => text(page, '#status-title'), { timeout: 10_000 }).toBe('Paid. Thank you!');
    expect(await text(page, '#status-detail')).toBe('Your payment of 25.00 USD is confirmed.');
    expect(await text(page, '#payment-list .pline')).toBe('0.00041667 BTC: confirmed');

    expect(await page.evaluate('window.__kassaMarker')).toBe('still-the-same-page');
    expect(navigations).toBe(0);
    // Live updates came over SSE: the polling fallback never switched on.
    expect(await page.locator('#live-status').isHidden()).toBe(true);
    expect(errors).toEqual([]);
    await context.close();
  });

  it('falls back to polling when the event stream is unavailable', async () => {
    const inv = await invoice();
    const btc = inv.payment_methods.find((m) => m.method === 'BTC')!;
    const context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
    const page = await context.newPage();
    await page.route('**/stream', (route) => route.fulfill({ status: 503, contentType: 'text/plain', body: 'down' }));
    await page.goto(`${server.url}/pay/${inv.id}`);
    await page.evaluate('window.__kassaMarker = 2');
    await expect.poll(() => page.locator('#live-status').isVisible(), { timeout: 5000 }).toBe(true);
    await dn.wallet.sendToAddress(btc.address, btc.amount_due);
    await dn.wallet.mine(1);
    await watcher.runOnce();
    await expect.poll(() => text(page, '#status-title'), { timeout: 15_000 }).toBe('Paid. Thank you!');
    expect(await page.evaluate('window.__kassaMarker')).toBe(2);
    await context.close();
  });

  it('after settlement shows a link back to the shop and redirects to redirect_url after a short delay', async () => {
    const target = `${server.url}/pay/static/checkout.css?thanks`;
    const inv = await invoice({ redirect_url: target });
    const btc = inv.payment_methods.find((m) => m.method === 'BTC')!;
    const { page, context } = await openPage(`/pay/${inv.id}`);
    await dn.wallet.sendToAddress(btc.address, btc.amount_due);
    await dn.wallet.mine(1);
    await watcher.runOnce();
    await expect.poll(() => page.locator('#redirect-link').isVisible(), { timeout: 10_000 }).toBe(true);
    expect(await page.locator('#redirect-link').getAttribute('href')).toBe(target);
    expect(await text(page, '#redirect-link')).toBe('Return to Corner Café');
    expect(page.url()).toContain(`/pay/${inv.id}`); // not immediately
    await page.waitForURL(target, { timeout: 10_000 });
    await context.close();
  });

  it('a partial payment shows what was received, what is still due, and a new QR for the rest', async () => {
    const inv = await invoice();
    const btc0 = inv.payment_methods.find((m) => m.method === 'BTC')!;
    const { page, context, errors } = await openPage(`/pay/${inv.id}`);
    await waitForImage(page, '#qr');
    await dn.wallet.sendToAddress(btc0.address, '0.0002'); // 12.00 USD of 25.00
    await dn.wallet.mine(1);
    await watcher.runOnce();
    await expect.poll(() => text(page, '#status-title'), { timeout: 10_000 }).toBe('Partial payment received');
    expect(await text(page, '#status-detail')).toContain('Received 12.00 USD. Still due: 13.00 USD.');
    const pub = await publicInvoice(inv.id);
    const btc = pub.payment_methods.find((m) => m.method === 'BTC')!;
    expect(btc.amount_due).toBe('0.00021667');
    expect(await text(page, '#amount')).toBe('0.00021667');
    expect(btc.payment_uri).toBe(`bitcoin:${btc.address}?amount=0.00021667&label=Corner%20Caf%C3%A9`);
    await expect.poll(() => page.locator('#qr').getAttribute('data-uri')).toBe(btc.payment_uri);
    await waitForImage(page, '#qr');
    await expect.poll(() => decodeQrIn(page, '#qr'), { timeout: 5000 }).toBe(btc.payment_uri);
    expect(await page.locator('#wallet-link').getAttribute('href')).toBe(btc.payment_uri);
    expect(await page.locator('#pay').isVisible()).toBe(true);
    expect(errors).toEqual([]);
    await context.close();
  });

  it('switching the method with the script updates address, amount, network and QR in place', async () => {
    const inv = await invoice();
    const { page, context, errors } = await openPage(`/pay/${inv.id}`);
    await page.evaluate('window.__kassaMarker = 1');
    await page.locator('a[data-method="USDC-ethereum"]').click();
    const usdc = (await publicInvoice(inv.id)).payment_methods.find((m) => m.method === 'USDC-ethereum')!;
    await expect.poll(() => text(page, '#network')).toBe('Ethereum (chain 31337)');
    expect(await text(page, '#amount')).toBe('25.00');
    expect(await text(page, '#address')).toBe(usdc.address);
    expect(page.url()).toContain('method=USDC-ethereum');
    await expect.poll(async () => {
      await waitForImage(page, '#qr');
      return decodeQrIn(page, '#qr');
    }, { timeout: 5000 }).toBe(usdc.payment_uri);
    expect(await page.evaluate('window.__kassaMarker')).toBe(1);
    expect(errors).toEqual([]);
    await context.close();
  });

  it('an expired invoice shows the expired state and what to do', async () => {
    const inv = await invoice();
    await ctx.deps.sql`update invoices set expires_at = now() - interval '1 second' where id = ${inv.id}`;
    const { page, context, errors } = await openPage(`/pay/${inv.id}`);
    expect(await text(page, '#status-title')).toBe('This invoice has expired');
    expect(await text(page, '#status-detail')).toContain('contact Corner Café');
    expect(await text(page, '#status-detail')).toContain('payments still arriving are recorded');
    expect(await page.locator('#pay').isHidden()).toBe(true);
    expect(errors).toEqual([]);
    await context.close();
  });

  it('renders in Simplified Chinese (?lang=zh-CN)', async () => {
    const inv = await invoice();
    const { page, context, errors } = await openPage(`/pay/${inv.id}?lang=zh-CN`);
    expect(await page.getAttribute('html', 'lang')).toBe('zh-CN');
    expect(await text(page, '#status-title')).toBe('等待付款');
    expect(await text(page, '#network')).toBe('比特币 · regtest');
    expect(await text(page, '#wallet-link')).toBe('在钱包中打开');
    expect(errors).toEqual([]);
    await context.close();
  });

  it('fits a 360 px phone screen without horizontal scrolling', async () => {
    const inv = await invoice({ description: 'A rather long description with a very-long-unbroken-token-abcdefghijklmnopqrstuvwxyz0123456789abcdefghij' });
    for (const path of [`/pay/${inv.id}`, `/pay/${inv.id}?method=USDC-ethereum`, `/pay/${inv.id}?lang=zh-CN`]) {
      const { page, context, errors } = await openPage(path, { width: 360, height: 740 });
      expect(await page.evaluate('document.documentElement.scrollWidth')).toBeLessThanOrEqual(360);
      await waitForImage(page, '#qr');
      const box = (await page.locator('#qr').boundingBox())!;
      expect(box.x).toBeGreaterThanOrEqual(0);
      expect(box.x + box.width).toBeLessThanOrEqual(360);
      expect(errors).toEqual([]);
      await context.close();
    }
  });

  it('shows hostile merchant strings as text and runs none of them', async () => {
    const evil = await createPayableMerchant(ctx.deps, { name: '<img src=x onerror=alert(3)>Evil', seedByte: 9 });
    const merchant = await ctx.deps.merchants.get(ctx.deps.sql, evil.merchant.id);
    const inv = await ctx.deps.invoices.create(merchant, { amount: '5.00', currency: 'USD', description: '<script>alert(1)</script><img src=x onerror=alert(1)>' });
    const { page, context, errors } = await openPage(`/pay/${inv.id}`);
    expect(await text(page, '#description')).toBe('<script>alert(1)</script><img src=x onerror=alert(1)>');
    expect(await text(page, '#merchant-name')).toBe('<img src=x onerror=alert(3)>Evil');
    expect(await page.locator('img[src="x"]').count()).toBe(0);
    await page.waitForTimeout(300);
    expect(errors).toEqual([]); // no dialog, no CSP violation, no third-party request
    await context.close();
  });

  it('keyboard users reach the method links, copy buttons and wallet link with a visible focus', async () => {
    const inv = await invoice();
    const { page, context } = await openPage(`/pay/${inv.id}`);
    await expect.poll(() => page.locator('button[data-copy="amount"]').isVisible()).toBe(true);
    const reached: string[] = [];
    for (let i = 0; i < 12; i++) {
      await page.keyboard.press('Tab');
      reached.push(String(await page.evaluate('(document.activeElement && (document.activeElement.id || document.activeElement.getAttribute("data-method") || document.activeElement.getAttribute("data-copy") || document.activeElement.textContent)) || ""')));
    }
    expect(reached).toEqual(expect.arrayContaining(['BTC', 'USDC-ethereum', 'amount', 'address', 'wallet-link']));
    await page.locator('#wallet-link').focus();
    await page.keyboard.press('Shift+Tab');
    await page.keyboard.press('Tab'); // keyboard-initiated focus → :focus-visible
    expect(await page.evaluate('getComputedStyle(document.activeElement).outlineStyle')).toBe('solid');
    expect(await page.evaluate('getComputedStyle(document.activeElement).outlineWidth')).toBe('3px');
    await context.close();
  });
});
