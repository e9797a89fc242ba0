/**
 * Fixes from the checkout's accessibility and performance audit, in real headless Chromium against
 * a real server, Postgres and Redis: language links keep the payment method, focus management when
 * the payment arrives and after a method switch, the phone layout, readable rounded amounts that
 * settle when paid exactly, the transaction shown with an explorer link, compression and caching,
 * and axe-core over every checkout state, size and language. Payments are fed to the real
 * settlement service the way the watchers do.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import { createTestContext, type TestContext } from '../support/db.ts';
import { createPayableMerchant, writeChainsFile } from '../support/merchant.ts';
import { launchBrowser, startTestServer, type TestServer } from '../support/browser.ts';
import { axeViolations } from '../support/axe.ts';
import { closeInvoiceUpdates } from '../../src/checkout/updates.ts';
import { ASSET_VERSION } from '../../src/checkout/assets.ts';
import type { Observation } from '../../src/settlement/service.ts';
import type { InvoiceObject } from '../../src/invoices/present.ts';
import type { PublicInvoice } from '../../src/checkout/public-invoice.ts';

const BTC_EXPLORER = 'https://mempool.example/tx/{txid}';
const EVM_EXPLORER = 'https://etherscan.example/tx/{txid}';

let ctx: TestContext;
let server: TestServer;
let browser: Browser;
let shop: Awaited<ReturnType<typeof createPayableMerchant>>;
const tips: Record<string, number> = { bitcoin: 100, ethereum: 100 };
let txCounter = 0;

function chainsFileWithExplorers(): string {
  const file = writeChainsFile();
  const json = JSON.parse(readFileSync(file, 'utf8'));
  json.chains.bitcoin.explorer_tx_url = BTC_EXPLORER;
  json.chains.ethereum.explorer_tx_url = EVM_EXPLORER;
  writeFileSync(file, JSON.stringify(json));
  return file;
}

/** One block on `chain` holding `obs` (null: seen in the mempool only), then recompute and publish. */
async function observe(chain: string, obs: Omit<Observation, 'block'>[], inMempool = false): Promise<void> {
  const changed = await ctx.deps.sql.begin(async (tx) => {
    if (inMempool) {
      const touched = await ctx.deps.settlement.recordObservations(tx, chain, obs.map((o) => ({ ...o, block: null })));
      return ctx.deps.settlement.recompute(tx, touched);
    }
    const h = ++tips[chain]!;
    const time = new Date();
    const block = { hash: `${chain}-${h}`.padEnd(64, '0'), height: h, time };
    const touched = await ctx.deps.settlement.recordObservations(tx, chain, obs.map((o) => ({ ...o, block })));
    await ctx.deps.settlement.advanceCursor(tx, chain, { height: h, hash: block.hash, prevHash: `${chain}-${h - 1}`.padEnd(64, '0'), time }, 100);
    const waiting = await ctx.deps.settlement.awaitingConfirmations(tx, chain);
    return ctx.deps.settlement.recompute(tx, [...touched, ...waiting]);
  });
  await ctx.deps.settlement.publishChanges(changed);
}

async function payBtc(inv: InvoiceObject, sats: bigint, inMempool = false): Promise<string> {
  const txid = (++txCounter).toString(16).padStart(64, 'b');
  const address = inv.payment_methods.find((m) => m.method === 'BTC')!.address;
  await observe('bitcoin', [{ txid, outputIndex: 0, address, token: null, amount: sats }], inMempool);
  return txid;
}

async function payEth(inv: InvoiceObject, wei: bigint): Promise<string> {
  const txid = `0x${(++txCounter).toString(16).padStart(64, 'e')}`;
  const address = inv.payment_methods.find((m) => m.method === 'ETH-ethereum')!.address.toLowerCase();
  await observe('ethereum', [{ txid, outputIndex: -1, address, token: null, amount: wei }]);
  return txid;
}

async function invoice(extra: Record<string, unknown> = {}): Promise<InvoiceObject> {
  const merchant = await ctx.deps.merchants.get(ctx.deps.sql, shop.merchant.id);
  return ctx.deps.invoices.create(merchant, { amount: '25.00', currency: 'USD', description: 'Two flat whites', ...extra } as never);
}

async function publicInvoice(id: string): Promise<PublicInvoice> {
  return (await fetch(`${server.url}/v1/public/invoices/${id}`)).json() as Promise<PublicInvoice>;
}

async function openPage(path: string, opts: { width?: number; height?: number; bypassCSP?: boolean } = {}): Promise<{ page: Page; context: BrowserContext; errors: string[] }> {
  const context = await browser.newContext({ viewport: { width: opts.width ?? 1280, height: opts.height ?? 900 }, locale: 'en-US', bypassCSP: opts.bypassCSP ?? false });
  const page = await context.newPage();
  const errors: string[] = [];
  page.on('pageerror', (e) => errors.push(e.message));
  page.on('console', (m) => {
    if (m.type() === 'error') errors.push(m.text());
  });
  await page.goto(`${server.url}${path}`);
  return { page, context, errors };
}

const text = (page: Page, sel: string) => page.locator(sel).innerText();
const activeId = (page: Page) => page.evaluate('document.activeElement ? (document.activeElement.id || document.activeElement.tagName) : ""');

beforeAll(async () => {
  browser = await launchBrowser();
  ctx = await createTestContext({ KASSA_CONFIG: chainsFileWithExplorers() });
  shop = await createPayableMerchant(ctx.deps, { name: 'Corner Café' });
  await observe('bitcoin', []);
  await observe('ethereum', []);
  server = await startTestServer(ctx.deps);
}, 120_000);

afterAll(async () => {
  await browser?.close();
  await server?.close();
  if (ctx) await closeInvoiceUpdates(ctx.deps);
  await ctx?.close();
});

describe('checkout: language and focus', () => {
  it('language links keep the chosen payment method, also after switching the method in place', async () => {
    const inv = await invoice();
    const eth = inv.payment_methods.find((m) => m.method === 'ETH-ethereum')!;
    // Server-rendered with ?method=.
    const direct = await openPage(`/pay/${inv.id}?method=ETH-ethereum`);
    expect(await direct.page.locator('nav.lang a[lang="zh-CN"]').getAttribute('href')).toBe('?method=ETH-ethereum&lang=zh-CN');
    await direct.context.close();

    const { page, context, errors } = await openPage(`/pay/${inv.id}`);
    expect(await page.locator('nav.lang a[lang="zh-CN"]').getAttribute('href')).toBe('?method=BTC&lang=zh-CN');
    await page.locator('a[data-method="ETH-ethereum"]').click();
    await expect.poll(() => text(page, '#address')).toBe(eth.address);
    expect(await page.locator('nav.lang a[lang="zh-CN"]').getAttribute('href')).toBe('?method=ETH-ethereum&lang=zh-CN');
    expect(await page.locator('nav.lang a[lang="en"]').getAttribute('href')).toBe('?method=ETH-ethereum&lang=en');
    await page.locator('nav.lang a[lang="zh-CN"]').click();
    await page.waitForURL(/lang=zh-CN/);
    expect(await page.getAttribute('html', 'lang')).toBe('zh-CN');
    expect(await text(page, '#address')).toBe(eth.address); // still ETH, not moved back to BTC
    expect(await text(page, '#network')).toBe('Ethereum (chain 31337)');
    expect(errors).toEqual([]);
    await context.close();
  });

  it('language links are at least 44 px tall and wide', async () => {
    const inv = await invoice();
    for (const width of [360, 1280]) {
      const { page, context } = await openPage(`/pay/${inv.id}`, { width, height: 740 });
      for (const l of ['en', 'zh-CN']) {
        const box = (await page.locator(`nav.lang a[lang="${l}"]`).boundingBox())!;
        expect(box.height, `${l} at ${width}px`).toBeGreaterThanOrEqual(44);
        expect(box.width, `${l} at ${width}px`).toBeGreaterThanOrEqual(44);
      }
      await context.close();
    }
  });

  it('when the payment arrives, focus moves from the (now hidden) copy button to the status heading, not <body>', async () => {
    const inv = await invoice();
    const { page, context, errors } = await openPage(`/pay/${inv.id}`);
    await expect.poll(() => page.locator('button[data-copy="address"]').isVisible()).toBe(true);
    await page.locator('button[data-copy="address"]').focus();
    expect(await activeId(page)).toBe('BUTTON');
    await payBtc(inv, 41_667n);
    await expect.poll(() => text(page, '#status-title'), { timeout: 10_000 }).toBe('Paid. Thank you!');
    await expect.poll(() => activeId(page)).toBe('status-title');
    expect(await page.locator('#status-title').getAttribute('tabindex')).toBe('-1');
    expect(errors).toEqual([]);
    await context.close();
  });

  it('after a method switch, focus moves to the new amount and a live region says that amount and address changed', async () => {
    const inv = await invoice();
    const { page, context, errors } = await openPage(`/pay/${inv.id}`);
    await page.locator('a[data-method="USDC-ethereum"]').focus();
    await page.keyboard.press('Enter');
    await expect.poll(() => text(page, '#network')).toBe('Ethereum (chain 31337)');
    expect(await activeId(page)).toBe('amount');
    expect(await page.locator('#method-status').getAttribute('aria-live')).toBe('polite');
    await expect.poll(() => page.locator('#method-status').textContent())
      .toBe('Now paying with USDC on Ethereum (chain 31337): the amount (25.00 USDC) and the address changed.');
    expect(errors).toEqual([]);
    await context.close();
  });
});

describe('checkout: phone layout', () => {
  it('on a 360×740 phone the amount, address, wallet button and time left are on the first screen, the QR below them', async () => {
    const inv = await invoice();
    for (const path of [`/pay/${inv.id}`, `/pay/${inv.id}?method=USDC-ethereum`, `/pay/${inv.id}?lang=zh-CN`]) {
      const { page, context } = await openPage(path, { width: 360, height: 740 });
      const top = async (sel: string) => (await page.locator(sel).boundingBox())!;
      const amount = await top('#amount');
      const address = await top('#address');
      const wallet = await top('#wallet-link');
      const countdown = await top('#countdown');
      const qr = await top('#qr');
      for (const [name, b] of [['amount', amount], ['address', address], ['countdown', countdown]] as const) {
        expect(b.y, `${name} top on ${path}`).toBeLessThan(740);
      }
      expect(wallet.y + wallet.height, `wallet button bottom on ${path}`).toBeLessThanOrEqual(740);
      expect(qr.y).toBeGreaterThan(wallet.y);
      expect(await page.evaluate('document.documentElement.scrollWidth')).toBeLessThanOrEqual(360);
      await context.close();
    }
  });
});

describe('checkout: amounts', () => {
  it('fiat-priced amounts are rounded up (ETH to 6 decimals, USDC to 2) and paying exactly the amount shown settles with no exception', async () => {
    const inv = await invoice({ amount: '10.01' });
    const eth = inv.payment_methods.find((m) => m.method === 'ETH-ethereum')!;
    // 10.01 / 3000 = 0.0033366… ETH → 0.003337 (rounded up to 6 decimals)
    expect(eth.amount_due).toBe('0.003337000000000000');
    expect(eth.payment_uri).toBe(`ethereum:${eth.address}@31337?value=3337000000000000`);
    expect(inv.payment_methods.find((m) => m.method === 'USDC-ethereum')!.amount_due).toBe('10.010000');
    expect(inv.payment_methods.find((m) => m.method === 'BTC')!.amount_due).toBe('0.00016684'); // 8 decimals: BTC's own
    const pub = await publicInvoice(inv.id);
    expect(pub.payment_methods.find((m) => m.method === 'ETH-ethereum')!.amount_due).toBe('0.003337');
    expect(pub.payment_methods.find((m) => m.method === 'USDC-ethereum')!.amount_due).toBe('10.01');

    const { page, context } = await openPage(`/pay/${inv.id}?method=ETH-ethereum`, { width: 360, height: 740 });
    expect(await text(page, '#amount')).toBe('0.003337');
    await payEth(inv, 3_337_000_000_000_000n);
    await expect.poll(() => text(page, '#status-title'), { timeout: 10_000 }).toBe('Paid. Thank you!');
    const after = await ctx.deps.invoices.get(shop.merchant.id, inv.id);
    expect(after).toMatchObject({ status: 'settled', exception: null, amount_paid: '10.01' });
    await context.close();
  });
});

describe('checkout: the transaction', () => {
  it('once a payment is detected, shows its txid (Bitcoin) and hash (EVM) with an explorer link', async () => {
    const inv = await invoice();
    const { page, context, errors } = await openPage(`/pay/${inv.id}`);
    const txid = await payBtc(inv, 20_000n, true);
    await expect.poll(() => page.locator('#payment-list li').count(), { timeout: 10_000 }).toBe(1);
    const link = page.locator(`#payment-list a[href="https://mempool.example/tx/${txid}"]`);
    await expect.poll(() => link.count()).toBe(1);
    expect(await link.innerText()).toBe(txid);
    expect(await link.getAttribute('aria-label')).toBe(`View transaction ${txid} on a block explorer`);
    expect(await text(page, '#payment-list .pline')).toBe('0.0002 BTC: 0 of 1 confirmations');

    const hash = await payEth(inv, 1_000_000_000_000_000n);
    await expect.poll(() => page.locator(`#payment-list a[href="https://etherscan.example/tx/${hash}"]`).count(), { timeout: 10_000 }).toBe(1);
    const pub = await publicInvoice(inv.id);
    expect(pub.payments.map((p) => [p.txid, p.explorer_url])).toEqual(expect.arrayContaining([
      [txid, `https://mempool.example/tx/${txid}`],
      [hash, `https://etherscan.example/tx/${hash}`],
    ]));
    // Server-rendered the same way on a reload.
    await page.reload();
    expect(await page.locator(`#payment-list a[href="https://mempool.example/tx/${txid}"]`).count()).toBe(1);
    expect(await page.locator(`#payment-list a[href="https://etherscan.example/tx/${hash}"]`).count()).toBe(1);
    expect(errors).toEqual([]);
    await context.close();
  });
});

describe('checkout: transfer size and caching', () => {
  it('compresses the page and script (brotli or gzip), not the event stream; versioned static files are immutable', async () => {
    const inv = await invoice();
    const plain = await fetch(`${server.url}/pay/${inv.id}`, { headers: { 'accept-encoding': 'identity' } });
    expect(plain.headers.get('content-encoding')).toBeNull();
    const plainLength = (await plain.arrayBuffer()).byteLength;
    for (const enc of ['br', 'gzip'] as const) {
      const r = await fetch(`${server.url}/pay/${inv.id}`, { headers: { 'accept-encoding': enc } });
      expect(r.headers.get('content-encoding')).toBe(enc);
      expect(r.headers.get('vary')).toMatch(/Accept-Encoding/);
      expect((await r.text()).length).toBeGreaterThan(1000);
      const js = await fetch(`${server.url}/pay/static/checkout.js?v=${ASSET_VERSION}`, { headers: { 'accept-encoding': enc } });
      expect(js.headers.get('content-encoding')).toBe(enc);
      expect(js.headers.get('cache-control')).toBe('public, max-age=31536000, immutable');
    }
    // The compressed size, on the wire (undici decodes the body; count with a raw request).
    const { request } = await import('node:http');
    const wire = await new Promise<number>((resolve, reject) => {
      const req = request(`${server.url}/pay/${inv.id}`, { headers: { 'accept-encoding': 'br' } }, (res) => {
        let n = 0;
        res.on('data', (b: Buffer) => (n += b.length));
        res.on('end', () => resolve(n));
      });
      req.on('error', reject);
      req.end();
    });
    expect(wire).toBeLessThan(plainLength / 2);

    const css = await fetch(`${server.url}/pay/static/checkout.css?v=${ASSET_VERSION}`);
    expect(css.headers.get('cache-control')).toBe('public, max-age=31536000, immutable');
    const unversioned = await fetch(`${server.url}/pay/static/checkout.css?v=old`);
    expect(unversioned.headers.get('cache-control')).toBe('no-cache');

    // The SSE stream stays uncompressed (each event must reach the page when it is written).
    const ac = new AbortController();
    const sse = await fetch(`${server.url}/v1/public/invoices/${inv.id}/stream`, { headers: { 'accept-encoding': 'br, gzip' }, signal: ac.signal });
    expect(sse.headers.get('content-type')).toMatch(/^text\/event-stream/);
    expect(sse.headers.get('content-encoding')).toBeNull();
    const reader = sse.body!.getReader();
    let received = '';
    while (!received.includes('event: invoice')) {
      const { value, done } = await reader.read();
      if (done) break;
      received += new TextDecoder().decode(value);
    }
    expect(received).toContain('event: invoice');
    ac.abort();
  });
});

describe('checkout: axe-core', () => {
  it('0 violations in every state (waiting, partial, paid, expired), in en and zh-CN, at 360 px and on a desktop', async () => {
    const waiting = await invoice();
    const partial = await invoice();
    await payBtc(partial, 20_000n);
    const paid = await invoice();
    await payBtc(paid, 41_667n);
    const expired = await invoice();
    await ctx.deps.sql`update invoices set expires_at = now() - interval '1 second' where id = ${expired.id}`;
    const found: string[] = [];
    for (const [state, inv] of [['waiting', waiting], ['partial', partial], ['paid', paid], ['expired', expired]] as const) {
      for (const lang of ['en', 'zh-CN']) {
        for (const [width, height] of [[360, 740], [1280, 900]] as const) {
          const { page, context } = await openPage(`/pay/${inv.id}?lang=${lang}`, { width, height, bypassCSP: true });
          expect(await page.locator('#checkout').getAttribute('data-view')).toBe(state === 'expired' ? 'expired' : state === 'paid' ? 'paid' : state === 'partial' ? 'partial' : 'waiting');
          for (const v of await axeViolations(page)) found.push(`${state} ${lang} ${width}px: ${v}`);
          await context.close();
        }
      }
    }
    expect(found).toEqual([]);
  }, 120_000);
});
