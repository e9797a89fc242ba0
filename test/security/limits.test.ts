/**
 * Issue 15 finding 12: a documented maximum invoice amount (400 `amount_too_large` above it), the
 * IANA special-purpose address ranges on the webhook SSRF block list, and an https PUBLIC_URL in
 * production unless KASSA_ALLOW_INSECURE_PUBLIC_URL names the risk.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createApp } from '../../src/api/app.ts';
import { loadConfig } from '../../src/config.ts';
import { blockedReason } from '../../src/webhooks/ssrf.ts';
import { createTestContext, req, type TestContext } from '../support/db.ts';
import { createPayableMerchant, writeChainsFile } from '../support/merchant.ts';

describe('maximum invoice amount', () => {
  let ctx: TestContext;
  let app: ReturnType<typeof createApp>;
  let shop: Awaited<ReturnType<typeof createPayableMerchant>>;
  beforeAll(async () => {
    ctx = await createTestContext({ KASSA_CONFIG: writeChainsFile() });
    app = createApp(ctx.deps);
    shop = await createPayableMerchant(ctx.deps);
  }, 60_000);
  afterAll(async () => ctx?.close());

  const post = async (amount: string) => {
    const res = await app.request('/v1/invoices', req(shop.secret, 'POST', { amount, currency: 'USD' }));
    return { status: res.status, body: await res.json() };
  };
  const invoices = async () => (await ctx.deps.sql<{ n: number }[]>`select count(*)::int as n from invoices`)[0]!.n;

  it('refuses 10^15 USD and a ~1e73 USD invoice with 400 amount_too_large naming `amount`; nothing is written', async () => {
    for (const amount of ['1000000000000000', '1000000000000000.00', '9'.repeat(73) + '.99']) {
      const r = await post(amount);
      expect(r.status).toBe(400);
      expect(r.body.error).toMatchObject({ code: 'amount_too_large', param: 'amount' });
      expect(r.body.error.message).toContain('at most 15 digits before the decimal point');
    }
    expect(await invoices()).toBe(0);
  });

  it('accepts the largest allowed amount, 999999999999999.99 USD', async () => {
    const r = await post('999999999999999.99');
    expect(r.status).toBe(201);
    expect(r.body.amount).toBe('999999999999999.99');
  });
});

describe('SSRF block list: IANA special-purpose ranges', () => {
  it.each([
    ['2001:10::1', 'ORCHID'], ['2001:1f:ffff::1', 'ORCHID'], ['2001:20::1', 'ORCHIDv2'], ['2001:2f::1', 'ORCHIDv2'],
    ['2001:db8::1', 'documentation'], ['3fff::1', 'documentation'], ['2001:2::1', 'IETF protocol assignment'],
    ['2001:3::1', 'IETF protocol assignment'], ['2001:4:112::1', 'IETF protocol assignment'], ['2001:30::1', 'IETF protocol assignment'],
    ['2001:1::1', 'IETF protocol assignment'], ['2001::1', 'Teredo'], ['100::1', 'discard-only'], ['100:0:0:1::1', 'dummy prefix'],
    ['64:ff9b::8.8.8.8', 'NAT64'], ['64:ff9b:1::1', 'NAT64'], ['5f00::1', 'SRv6 SID'], ['2620:4f:8000::1', 'AS112 anycast'],
    ['4000::1', 'not global unicast'], ['::2', 'IPv4-compatible IPv6'], ['200::1', 'not global unicast'],
    ['100.64.0.1', 'carrier-grade NAT'], ['100.127.255.254', 'carrier-grade NAT'], ['192.0.0.8', 'IETF protocol assignments'],
    ['198.18.0.1', 'benchmarking'], ['198.19.255.255', 'benchmarking'], ['240.0.0.1', 'reserved/broadcast'],
    ['192.31.196.1', 'AS112 anycast'], ['192.52.193.1', 'AMT anycast'], ['192.175.48.1', 'AS112 anycast'],
  ])('refuses %s (%s)', (ip, why) => expect(blockedReason(ip)).toBe(why));

  it.each(['2001:200::1', '2001:4860:4860::8888', '2a00:1450:4001:80b::200e', '2606:4700:4700::1111', '3ffe::1', '8.8.8.8', '198.20.0.1'])(
    'still allows the public address %s', (ip) => expect(blockedReason(ip)).toBeNull());
});

describe('PUBLIC_URL in production', () => {
  const base = { KASSA_ENV: 'production', KASSA_SECRET_KEY: '22'.repeat(32) };
  it('refuses an http:// PUBLIC_URL and names the risk and the override', () => {
    expect(() => loadConfig({ ...base, PUBLIC_URL: 'http://pay.example.com' })).toThrowError(
      /PUBLIC_URL is insecure.*session cookies.*KASSA_ALLOW_INSECURE_PUBLIC_URL=1/,
    );
  });
  it('accepts https://, loopback http:// and an explicit override', () => {
    expect(loadConfig({ ...base, PUBLIC_URL: 'https://pay.example.com' }).publicUrl).toBe('https://pay.example.com');
    expect(loadConfig({ ...base, PUBLIC_URL: 'http://localhost:3000' }).publicUrl).toBe('http://localhost:3000');
    expect(loadConfig({ ...base }).publicUrl).toBe('http://localhost:3000');
    expect(loadConfig({ ...base, PUBLIC_URL: 'http://pay.example.com', KASSA_ALLOW_INSECURE_PUBLIC_URL: '1' }).publicUrl).toBe('http://pay.example.com');
  });
  it('outside production http:// stays allowed (sandbox, tests)', () => {
    expect(loadConfig({ KASSA_ENV: 'development', KASSA_SECRET_KEY: '22'.repeat(32), PUBLIC_URL: 'http://kassa.test' }).publicUrl).toBe('http://kassa.test');
  });
});
