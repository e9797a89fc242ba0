/**
 * Issue 15 finding 10: live-status streams (`/v1/public/invoices/:id/stream`) are capped per client
 * IP and per process (429 `too_many_streams` with Retry-After, so the checkout page polls), and end
 * after an idle period without invoice events or after a maximum duration.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readFileSync } from 'node:fs';
import { createApp } from '../../src/api/app.ts';
import { createTestContext, type TestContext } from '../support/db.ts';
import { createPayableMerchant, writeChainsFile } from '../support/merchant.ts';
import { closeInvoiceUpdates, invoiceUpdatesFor } from '../../src/checkout/updates.ts';

const fromIp = (ip: string) => ({ incoming: { socket: { remoteAddress: ip, remotePort: 40000, remoteFamily: 'IPv4' } } });

async function setup(env: Record<string, string>) {
  const ctx = await createTestContext({ KASSA_CONFIG: writeChainsFile(), ...env });
  const app = createApp(ctx.deps);
  const shop = await createPayableMerchant(ctx.deps);
  const merchant = await ctx.deps.merchants.get(ctx.deps.sql, shop.merchant.id);
  const inv = await ctx.deps.invoices.create(merchant, { amount: '25.00', currency: 'USD' } as never);
  const open = async (ip: string) => {
    const abort = new AbortController();
    const res = await app.request(`/v1/public/invoices/${inv.id}/stream`, { signal: abort.signal }, fromIp(ip));
    return { res, close: async () => { abort.abort(); await res.body?.cancel().catch(() => {}); } };
  };
  return { ctx, open, app, inv };
}

/** Reads until the server ends the stream; returns how long that took. */
async function untilEnd(res: Response): Promise<number> {
  const t0 = Date.now();
  const reader = res.body!.getReader();
  for (;;) {
    const { done } = await reader.read();
    if (done) return Date.now() - t0;
  }
}

describe('stream caps', () => {
  let s: Awaited<ReturnType<typeof setup>>;
  beforeAll(async () => {
    s = await setup({ PUBLIC_STREAMS_PER_IP: '2', PUBLIC_STREAMS_MAX: '3' });
  }, 60_000);
  afterAll(async () => {
    if (s?.ctx) await closeInvoiceUpdates(s.ctx.deps);
    await s?.ctx.close();
  });

  it('a third stream from one IP gets 429 too_many_streams with Retry-After; the overall cap holds across IPs; closing frees a slot', async () => {
    const a1 = await s.open('198.51.100.1');
    const a2 = await s.open('198.51.100.1');
    expect([a1.res.status, a2.res.status]).toEqual([200, 200]);
    const a3 = await s.open('198.51.100.1');
    expect(a3.res.status).toBe(429);
    expect(a3.res.headers.get('retry-after')).toBe('60');
    expect((await a3.res.json()).error).toMatchObject({ code: 'too_many_streams', type: 'rate_limit_error' });

    const b1 = await s.open('198.51.100.2');
    expect(b1.res.status).toBe(200);
    const c1 = await s.open('198.51.100.3'); // 3 open in total: the process cap
    expect(c1.res.status).toBe(429);
    expect(invoiceUpdatesFor(s.ctx.deps).listeners()).toBe(3);

    await a1.close();
    await expect.poll(() => invoiceUpdatesFor(s.ctx.deps).listeners(), { timeout: 5000 }).toBe(2);
    const c2 = await s.open('198.51.100.3');
    expect(c2.res.status).toBe(200);
    // The JSON endpoint the page polls keeps answering for a capped client.
    expect((await s.app.request(`/v1/public/invoices/${s.inv.id}`, {}, fromIp('198.51.100.1'))).status).toBe(200);
    for (const x of [a2, b1, c2]) await x.close();
  });
});

describe('stream timeouts', () => {
  it('a stream with no invoice event ends after the idle timeout', async () => {
    const s = await setup({ PUBLIC_STREAM_IDLE_SECONDS: '2', PUBLIC_STREAM_MAX_SECONDS: '600' });
    try {
      const x = await s.open('198.51.100.9');
      expect(x.res.status).toBe(200);
      const took = await untilEnd(x.res);
      expect(took).toBeGreaterThanOrEqual(1500);
      expect(took).toBeLessThan(10_000);
      await expect.poll(() => invoiceUpdatesFor(s.ctx.deps).listeners(), { timeout: 5000 }).toBe(0);
    } finally {
      await closeInvoiceUpdates(s.ctx.deps);
      await s.ctx.close();
    }
  }, 60_000);

  it('a stream ends after the maximum duration', async () => {
    const s = await setup({ PUBLIC_STREAM_IDLE_SECONDS: '600', PUBLIC_STREAM_MAX_SECONDS: '2' });
    try {
      const x = await s.open('198.51.100.10');
      expect(x.res.status).toBe(200);
      const took = await untilEnd(x.res);
      expect(took).toBeGreaterThanOrEqual(1500);
      expect(took).toBeLessThan(10_000);
    } finally {
      await closeInvoiceUpdates(s.ctx.deps);
      await s.ctx.close();
    }
  }, 60_000);
});

describe('checkout page fallback', () => {
  it('the checkout script switches to polling when the stream fails or is refused (EventSource error → startPolling)', () => {
    const js = readFileSync(new URL('../../src/checkout/checkout.client.js', import.meta.url), 'utf8');
    const onerror = /source\.onerror = function \(\) \{([\s\S]*?)\};/.exec(js)?.[1] ?? '';
    expect(onerror).toContain('startPolling()');
    expect(js).toMatch(/function startPolling\(\) \{[\s\S]*?setInterval\(fetchOnce, POLL_MS\)/);
  });
});
