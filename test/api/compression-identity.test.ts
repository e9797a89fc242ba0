/**
 * src/api/compression.ts for a client that accepts no compression: the response is passed on as it
 * is (not read and rebuilt), with `Vary: Accept-Encoding`; a response whose headers cannot be changed
 * is still answered, rebuilt. Clients that accept gzip/br still get it compressed.
 */
import { Hono } from 'hono';
import { gunzipSync } from 'node:zlib';
import { describe, expect, it } from 'vitest';
import { compression } from '../../src/api/compression.ts';

const big = JSON.stringify({ data: 'x'.repeat(4000) });

function app() {
  const a = new Hono();
  a.use('*', compression());
  a.get('/json', (c) => c.body(big, 200, { 'Content-Type': 'application/json' }));
  // A fetched response has immutable headers.
  a.get('/fetched', async () => fetch(`data:application/json,${encodeURIComponent(big)}`));
  return a;
}

describe('compression without an accepted encoding', () => {
  it('passes the response through unchanged, marked Vary: Accept-Encoding', async () => {
    const a = app();
    for (const headers of [{}, { 'accept-encoding': 'identity' }, { 'accept-encoding': 'gzip;q=0, br;q=0' }] as Record<string, string>[]) {
      const res = await a.request('/json', { headers });
      expect(res.headers.get('content-encoding')).toBeNull();
      expect(res.headers.get('vary')).toBe('Accept-Encoding');
      expect(await res.text()).toBe(big);
    }
  });

  it('answers a response with immutable headers too (rebuilt, with Vary)', async () => {
    const res = await app().request('/fetched');
    expect(res.status).toBe(200);
    expect(res.headers.get('vary')).toBe('Accept-Encoding');
    expect(await res.text()).toBe(big);
  });

  it('still compresses for a client that accepts gzip', async () => {
    const res = await app().request('/json', { headers: { 'accept-encoding': 'gzip' } });
    expect(res.headers.get('content-encoding')).toBe('gzip');
    expect(res.headers.get('vary')).toBe('Accept-Encoding');
    expect(gunzipSync(Buffer.from(await res.arrayBuffer())).toString()).toBe(big);
  });
});
