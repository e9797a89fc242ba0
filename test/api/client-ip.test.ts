/**
 * TRUSTED_PROXIES: the per-IP limit of the public surface (and the audit log's IP) uses the TCP
 * peer, or, when the peer is a trusted proxy, the nearest untrusted X-Forwarded-For hop. Real
 * HTTP server, real Redis; PUBLIC_RATE_LIMIT_PER_MINUTE=2 so the third request from one client is
 * limited.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { serve, type ServerType } from '@hono/node-server';
import type { AddressInfo } from 'node:net';
import { createApp } from '../../src/api/app.ts';
import { loadConfig, ConfigError } from '../../src/config.ts';
import { createTestContext, type TestContext } from '../support/db.ts';

async function startServer(ctx: TestContext): Promise<{ url: string; server: ServerType }> {
  const app = createApp(ctx.deps);
  return new Promise((resolve) => {
    const server = serve({ fetch: app.fetch, hostname: '127.0.0.1', port: 0 }, (info: AddressInfo) =>
      resolve({ url: `http://127.0.0.1:${info.port}`, server }));
  });
}

/** Status codes of GET /v1/public/invoices/inv_unknown (404 until limited, then 429). */
async function hits(url: string, n: number, xff?: string): Promise<number[]> {
  const out: number[] = [];
  for (let i = 0; i < n; i++) {
    const res = await fetch(`${url}/v1/public/invoices/inv_unknown0000000000000`, { headers: xff ? { 'x-forwarded-for': xff } : {} });
    out.push(res.status);
  }
  return out;
}

describe('client IP behind a trusted proxy', () => {
  let ctx: TestContext;
  let url: string;
  let server: ServerType;
  beforeAll(async () => {
    ctx = await createTestContext({ TRUSTED_PROXIES: '127.0.0.0/8, ::1', PUBLIC_RATE_LIMIT_PER_MINUTE: '2' });
    ({ url, server } = await startServer(ctx));
  });
  afterAll(async () => {
    server?.close();
    await ctx?.close();
  });

  it('customers behind the proxy are limited separately', async () => {
    expect(await hits(url, 3, '203.0.113.1')).toEqual([404, 404, 429]);
    expect(await hits(url, 2, '203.0.113.2')).toEqual([404, 404]);
  });

  it('an address a client wrote itself (left of the proxy-appended hop) does not dodge the limit', async () => {
    expect(await hits(url, 2, '198.51.100.7')).toEqual([404, 404]);
    // The client claims to be someone else; the proxy appends the real address on the right.
    expect(await hits(url, 1, '192.0.2.99, 198.51.100.7')).toEqual([429]);
    expect(await hits(url, 1, 'not-an-ip, 198.51.100.7')).toEqual([429]);
  });

  it('chained trusted proxies are skipped; no header means the proxy itself', async () => {
    expect(await hits(url, 3, '198.51.100.20, 127.0.0.5')).toEqual([404, 404, 429]);
    expect(await hits(url, 3)).toEqual([404, 404, 429]); // all requests without XFF share 127.0.0.1
  });
});

describe('client IP without TRUSTED_PROXIES', () => {
  let ctx: TestContext;
  let url: string;
  let server: ServerType;
  beforeAll(async () => {
    ctx = await createTestContext({ PUBLIC_RATE_LIMIT_PER_MINUTE: '2' });
    ({ url, server } = await startServer(ctx));
  });
  afterAll(async () => {
    server?.close();
    await ctx?.close();
  });

  it('X-Forwarded-For is ignored: every request counts for the TCP peer', async () => {
    expect(await hits(url, 1, '203.0.113.1')).toEqual([404]);
    expect(await hits(url, 1, '203.0.113.2')).toEqual([404]);
    expect(await hits(url, 1, '203.0.113.3')).toEqual([429]);
  });
});

describe('TRUSTED_PROXIES validation', () => {
  it('a malformed entry stops start-up with a line naming the variable', () => {
    for (const bad of ['10.0.0.0/33', 'proxy.local', '10.0.0.1/8/1', '::1/129']) {
      expect(() => loadConfig({ TRUSTED_PROXIES: bad })).toThrow(ConfigError);
      expect(() => loadConfig({ TRUSTED_PROXIES: bad })).toThrow(/TRUSTED_PROXIES/);
    }
    expect(loadConfig({ TRUSTED_PROXIES: '10.0.0.0/8, fd00::/8,192.168.1.10' }).trustedProxies).toEqual(['10.0.0.0/8', 'fd00::/8', '192.168.1.10']);
  });
});
