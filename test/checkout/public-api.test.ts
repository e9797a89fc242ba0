/**
 * The public checkout surface at the HTTP level (in-process app): what the public JSON exposes,
 * the HTML 404 page, security headers, per-IP rate limiting, escaping of hostile merchant strings
 * and the SSE stream fed by Redis pub/sub.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createApp } from '../../src/api/app.ts';
import { createTestContext, type TestContext } from '../support/db.ts';
import { createPayableMerchant, writeChainsFile } from '../support/merchant.ts';
import { closeInvoiceUpdates, invoiceUpdatesFor } from '../../src/checkout/updates.ts';
import { fromAcceptLanguage, pickLocale } from '../../src/checkout/i18n.ts';

let ctx: TestContext;
let app: ReturnType<typeof createApp>;
let shop: Awaited<ReturnType<typeof createPayableMerchant>>;

const HOSTILE = '<script>alert(1)</script><img src=x onerror=alert(1)>';
const HOSTILE_NAME = 'Evil "shop" <svg onload=alert(2)> & Co';

beforeAll(async () => {
  ctx = await createTestContext({ KASSA_CONFIG: writeChainsFile() });
  app = createApp(ctx.deps);
  shop = await createPayableMerchant(ctx.deps, { name: HOSTILE_NAME });
});
afterAll(async () => {
  if (ctx) await closeInvoiceUpdates(ctx.deps);
  await ctx?.close();
});

let ipCounter = 0;
/** Each test gets its own client IP so the per-IP limit of one test never affects another. */
function fromIp(ip = `198.51.100.${++ipCounter}`) {
  return { incoming: { socket: { remoteAddress: ip, remotePort: 40000, remoteFamily: 'IPv4' } } };
}

async function invoice(extra: Record<string, unknown> = {}) {
  const merchant = await ctx.deps.merchants.get(ctx.deps.sql, shop.merchant.id);
  return ctx.deps.invoices.create(merchant, {
    amount: '25.00', currency: 'USD', order_id: 'ORDER-SECRET-77', metadata: { internal_note: 'vip-customer-xyz' },
    buyer_email: 'buyer@example.com', description: 'Two coffees', ...extra,
  } as never);
}

describe('GET /v1/public/invoices/:id (happy)', () => {
  it('returns what the customer needs, with the merchant name and a BIP21 label', async () => {
    const inv = await invoice();
    const res = await app.request(`/v1/public/invoices/${inv.id}`, {}, fromIp());
    expect(res.status).toBe(200);
    const json = await res.json();
    expect(json).toMatchObject({
      id: inv.id, object: 'public_invoice', status: 'new', exception: null, merchant_name: HOSTILE_NAME, description: 'Two coffees',
      amount: '25.00', currency: 'USD', amount_paid: '0.00', amount_due: '25.00', payments: [],
    });
    const btc = json.payment_methods.find((m: { method: string }) => m.method === 'BTC');
    const apiBtc = inv.payment_methods.find((m) => m.method === 'BTC')!;
    expect(btc.payment_uri).toBe(`${apiBtc.payment_uri}&label=${encodeURIComponent(HOSTILE_NAME)}`);
    const usdc = json.payment_methods.find((m: { method: string }) => m.method === 'USDC-ethereum');
    expect(usdc.payment_uri).toBe(inv.payment_methods.find((m) => m.method === 'USDC-ethereum')!.payment_uri);
    expect(res.headers.get('cache-control')).toBe('no-store');
  });
});

describe('GET /v1/public/invoices/:id (security)', () => {
  it('never exposes metadata, order id, buyer e-mail, merchant id, rates or staff marks', async () => {
    const inv = await invoice();
    const res = await app.request(`/v1/public/invoices/${inv.id}`, {}, fromIp());
    const text = await res.text();
    for (const secret of ['ORDER-SECRET-77', 'vip-customer-xyz', 'internal_note', 'buyer@example.com', shop.merchant.id, 'metadata', 'buyer_email', 'order_id', 'merchant_id', '"rate"', 'marked', 'tolerance']) {
      expect(text, secret).not.toContain(secret);
    }
  });

  it('answers an unknown or malformed id with a JSON 404 without touching other invoices', async () => {
    for (const id of ['inv_0000000000000000000000', 'nope', 'inv_%27%20or%201=1']) {
      const res = await app.request(`/v1/public/invoices/${id}`, {}, fromIp());
      expect(res.status).toBe(404);
      expect((await res.json()).error).toMatchObject({ type: 'invalid_request_error', code: 'resource_missing' });
    }
  });

  it('needs no API key, and an API key is not what it uses (no 401)', async () => {
    const inv = await invoice();
    const res = await app.request(`/v1/public/invoices/${inv.id}`, { headers: { authorization: 'Bearer garbage' } }, fromIp());
    expect(res.status).toBe(200);
  });

  it('rate limits per client IP with a 429 error envelope; other IPs are unaffected', async () => {
    const inv = await invoice();
    const ip = fromIp();
    let last: Response | undefined;
    for (let i = 0; i < 121; i++) last = await app.request(`/v1/public/invoices/${inv.id}`, {}, ip);
    expect(last!.status).toBe(429);
    expect(Number(last!.headers.get('retry-after'))).toBeGreaterThan(0);
    expect((await last!.json()).error).toMatchObject({ type: 'rate_limit_error', code: 'rate_limited' });
    // The page shares the same per-IP budget and answers with an HTML page.
    const page = await app.request(`/pay/${inv.id}`, {}, ip);
    expect(page.status).toBe(429);
    expect(page.headers.get('content-type')).toMatch(/text\/html/);
    expect(await page.text()).toContain('Too many requests');
    expect((await app.request(`/v1/public/invoices/${inv.id}`, {}, fromIp())).status).toBe(200);
  });
});

describe('GET /pay/:id (happy)', () => {
  it('renders the page with price, methods, amount, address, network, wallet link, QR and countdown', async () => {
    const inv = await invoice();
    const btc = inv.payment_methods.find((m) => m.method === 'BTC')!;
    const res = await app.request(`/pay/${inv.id}`, {}, fromIp());
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toMatch(/text\/html/);
    const html = await res.text();
    expect(html).toMatch(/^<!doctype html><html lang="en">/);
    expect(html).toContain('25.00 USD');
    expect(html).toContain(`<code id="amount" tabindex="-1">${btc.amount_due}</code>`);
    expect(html).toContain(`<code id="address" class="value address">${btc.address}</code>`);
    expect(html).toContain('Bitcoin · regtest');
    expect(html).toContain('<span class="asset">USDC</span> <span class="chain">Ethereum (chain 31337)</span>');
    expect(html).toContain('href="?method=USDC-ethereum&amp;lang=en"');
    expect(html).toContain('aria-live="polite"');
    expect(html).toMatch(/<img id="qr" src="data:image\/svg\+xml;base64,/);
    expect(html).toMatch(/<time id="countdown" datetime="[^"]+">1[45]:\d\d<\/time>/);
  });

  it('shows the chosen method without JavaScript (?method=USDC-ethereum)', async () => {
    const inv = await invoice();
    const usdc = inv.payment_methods.find((m) => m.method === 'USDC-ethereum')!;
    const html = await (await app.request(`/pay/${inv.id}?method=USDC-ethereum`, {}, fromIp())).text();
    expect(html).toContain(`<code id="amount" tabindex="-1">25.00</code> <span id="asset">USDC</span>`);
    expect(html).toContain(`<dd id="network">Ethereum (chain 31337)</dd>`);
    expect(html).toContain(`href="${usdc.payment_uri.replace(/&/g, '&amp;')}"`);
  });

  it('picks Chinese from ?lang, from the invoice locale, or from Accept-Language', async () => {
    const en = await invoice();
    const zhInvoice = await invoice({ locale: 'zh-CN' });
    const byQuery = await (await app.request(`/pay/${en.id}?lang=zh-CN`, {}, fromIp())).text();
    expect(byQuery).toContain('<html lang="zh-CN">');
    expect(byQuery).toContain('等待付款');
    const byInvoice = await (await app.request(`/pay/${zhInvoice.id}`, {}, fromIp())).text();
    expect(byInvoice).toContain('<html lang="zh-CN">');
    const byHeader = await (await app.request(`/pay/${en.id}`, { headers: { 'accept-language': 'zh-CN,zh;q=0.9,en;q=0.5' } }, fromIp())).text();
    expect(byHeader).toContain('比特币 · regtest');
    const back = await (await app.request(`/pay/${zhInvoice.id}?lang=en`, {}, fromIp())).text();
    expect(back).toContain('Waiting for your payment');
    expect(fromAcceptLanguage('fr-FR, en;q=0.3')).toBe('en');
    expect(pickLocale({ acceptLanguage: 'de' })).toBe('en');
  });

  it('serves the QR of a method as SVG and the static script and stylesheet', async () => {
    const inv = await invoice();
    const qr = await app.request(`/pay/${inv.id}/qr?method=ETH-ethereum`, {}, fromIp());
    expect(qr.status).toBe(200);
    expect(qr.headers.get('content-type')).toMatch(/^image\/svg\+xml/);
    expect(await qr.text()).toMatch(/^<svg /);
    const js = await app.request('/pay/static/checkout.js', {}, fromIp());
    expect(js.headers.get('content-type')).toMatch(/javascript/);
    expect(await js.text()).toContain('EventSource');
    const css = await app.request('/pay/static/checkout.css', {}, fromIp());
    expect(css.headers.get('content-type')).toMatch(/text\/css/);
  });
});

describe('GET /pay/:id (security)', () => {
  it('sets a strict CSP, nosniff, no-referrer and frame denial', async () => {
    const inv = await invoice();
    for (const path of [`/pay/${inv.id}`, '/pay/inv_0000000000000000000000']) {
      const res = await app.request(path, {}, fromIp());
      const csp = res.headers.get('content-security-policy')!;
      for (const d of ["default-src 'none'", "script-src 'self'", "style-src 'self'", "img-src 'self' data:", "connect-src 'self'", "frame-ancestors 'none'", "form-action 'none'", "base-uri 'none'"]) {
        expect(csp).toContain(d);
      }
      expect(csp).not.toContain('unsafe');
      expect(res.headers.get('x-content-type-options')).toBe('nosniff');
      expect(res.headers.get('referrer-policy')).toBe('no-referrer');
      expect(res.headers.get('x-frame-options')).toBe('DENY');
    }
  });

  it('has no inline script or style (the CSP would block them) and loads nothing third-party', async () => {
    const inv = await invoice();
    const html = await (await app.request(`/pay/${inv.id}`, {}, fromIp())).text();
    expect(html).not.toMatch(/<script(?![^>]*\bsrc="\/pay\/static\/)/);
    // Attribute values blanked (they contain the escaped hostile merchant name), then: no style/handlers.
    const tags = html.replace(/"[^"]*"/g, '""').match(/<[^>]+>/g)!;
    for (const tag of tags) expect(tag).not.toMatch(/^<style|\sstyle=|\son[a-z]+=/i);
    expect(html).not.toMatch(/(src|href)="(https?:)?\/\//);
  });

  it('answers an unknown invoice with a friendly HTML 404 page, not JSON', async () => {
    for (const id of ['inv_0000000000000000000000', 'whatever']) {
      const res = await app.request(`/pay/${id}`, {}, fromIp());
      expect(res.status).toBe(404);
      expect(res.headers.get('content-type')).toMatch(/text\/html/);
      const html = await res.text();
      expect(html).toContain('Payment page not found');
      expect(html).not.toContain('"error"');
    }
    const zh = await app.request('/pay/whatever?lang=zh-CN', {}, fromIp());
    expect(await zh.text()).toContain('找不到付款页面');
  });

  it('escapes a hostile description and merchant name everywhere (text, attributes, data)', async () => {
    const inv = await invoice({ description: HOSTILE });
    const html = await (await app.request(`/pay/${inv.id}`, {}, fromIp())).text();
    expect(html).not.toContain('<script>alert');
    expect(html).not.toContain('<img src=x');
    expect(html).not.toContain('<svg onload');
    expect(html).toContain('&lt;script&gt;alert(1)&lt;/script&gt;&lt;img src=x onerror=alert(1)&gt;');
    expect(html).toContain('Evil &quot;shop&quot; &lt;svg onload=alert(2)&gt; &amp; Co');
    // Only the page's own script tag exists.
    expect(html.match(/<script/g)).toHaveLength(1);
  });

  it('does not leak order id, metadata or buyer e-mail into the page', async () => {
    const inv = await invoice();
    const html = await (await app.request(`/pay/${inv.id}`, {}, fromIp())).text();
    for (const secret of ['ORDER-SECRET-77', 'vip-customer-xyz', 'buyer@example.com', shop.merchant.id]) expect(html).not.toContain(secret);
  });
});

describe('GET /v1/public/invoices/:id/stream (SSE)', () => {
  const decoder = new TextDecoder();
  async function nextEvent(reader: ReadableStreamDefaultReader<Uint8Array>, buf: { s: string }): Promise<{ event: string; data: string }> {
    for (;;) {
      const frames = buf.s.split('\n\n');
      while (frames.length > 1) {
        const frame = frames.shift()!;
        buf.s = frames.join('\n\n');
        const event = /^event: (.*)$/m.exec(frame)?.[1];
        const data = /^data: (.*)$/m.exec(frame)?.[1];
        if (event && data) return { event, data };
      }
      const { value, done } = await reader.read();
      if (done) throw new Error('stream ended');
      buf.s += decoder.decode(value, { stream: true });
    }
  }

  it('sends the invoice on connect and again after a published change, then closes cleanly', async () => {
    const inv = await invoice();
    const btc = inv.payment_methods.find((m) => m.method === 'BTC')!;
    const abort = new AbortController();
    const res = await app.request(`/v1/public/invoices/${inv.id}/stream`, { signal: abort.signal }, fromIp());
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toMatch(/^text\/event-stream/);
    const reader = res.body!.getReader();
    const buf = { s: '' };
    const first = await nextEvent(reader, buf);
    expect(first.event).toBe('invoice');
    expect(JSON.parse(first.data)).toMatchObject({ id: inv.id, status: 'new' });
    expect(invoiceUpdatesFor(ctx.deps).listeners()).toBe(1);

    // A watcher sees the payment in the mempool and publishes the change after its commit.
    const changed = await ctx.deps.sql.begin(async (tx) => {
      const touched = await ctx.deps.settlement.recordObservations(tx, 'bitcoin', [
        { txid: 'ab'.repeat(32), outputIndex: 0, address: btc.address, token: null, amount: 41_667n, block: null },
      ]);
      return ctx.deps.settlement.recompute(tx, touched);
    });
    await ctx.deps.settlement.publishChanges(changed);
    const second = await nextEvent(reader, buf);
    expect(JSON.parse(second.data)).toMatchObject({
      id: inv.id, status: 'processing', payments: [{ method: 'BTC', asset: 'BTC', amount: '0.00041667', status: 'pending', confirmations: 0 }],
    });

    abort.abort();
    await reader.cancel().catch(() => {});
    await expect.poll(() => invoiceUpdatesFor(ctx.deps).listeners(), { timeout: 5000 }).toBe(0);
  });

  it('answers an unknown invoice with a JSON 404 instead of a stream', async () => {
    const res = await app.request('/v1/public/invoices/inv_0000000000000000000000/stream', {}, fromIp());
    expect(res.status).toBe(404);
    expect(res.headers.get('content-type')).toMatch(/json/);
  });
});
