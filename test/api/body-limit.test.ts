/**
 * src/api/middleware/body-limit.ts under the real Node adapter (@hono/node-server), where JSON
 * bodies are read from the Node request stream instead of a WHATWG Request.
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Hono } from 'hono';
import { serve, type ServerType } from '@hono/node-server';
import { bodyLimit } from '../../src/api/middleware/body-limit.ts';

const MAX = 1000;
let server: ServerType;
let port: number;

beforeAll(async () => {
  const app = new Hono();
  app.use('*', bodyLimit({ maxSize: MAX, onError: (c) => c.json({ error: 'body_too_large' }, 413) }));
  app.post('/json', async (c) => {
    const incoming = (c.env as { incoming: http.IncomingMessage & { rawBody?: Buffer } }).incoming;
    return c.json({ parsed: await c.req.json(), text: await c.req.text(), fromStream: incoming.rawBody !== undefined });
  });
  // A handler that passes the WHATWG Request on (as the admin board does) still sees the body.
  app.post('/raw', async (c) => c.json({ raw: await c.req.raw.text() }));
  app.post('/form', async (c) => c.json({ form: await c.req.parseBody() }));
  app.get('/get', (c) => c.json({ ok: true }));
  server = serve({ fetch: app.fetch, port: 0, hostname: '127.0.0.1' });
  await new Promise((r) => server.once('listening', r));
  port = (server.address() as AddressInfo).port;
});
afterAll(() => new Promise<void>((r) => server.close(() => r())));

/** One request; `chunks` are written separately (chunked transfer encoding unless `length` is set). */
function send(method: string, path: string, type: string | undefined, chunks: (string | Buffer)[], length?: number): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const headers: Record<string, string | number> = {};
    if (type) headers['content-type'] = type;
    if (length !== undefined) headers['content-length'] = length;
    const req = http.request({ host: '127.0.0.1', port, path, method, headers }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (d) => (body += d));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
    });
    req.on('error', (err) => ((err as NodeJS.ErrnoException).code === 'ECONNRESET' || (err as NodeJS.ErrnoException).code === 'EPIPE' ? undefined : reject(err)));
    for (const c of chunks) req.write(c);
    req.end();
  });
}

describe('bodyLimit (Node adapter)', () => {
  it('reads a JSON body from the Node stream, for json() and text() alike', async () => {
    const text = JSON.stringify({ amount: '25.00', note: 'naïve €' });
    const r = await send('POST', '/json', 'application/json; charset=utf-8', [text], Buffer.byteLength(text));
    expect(r.status).toBe(200);
    expect(JSON.parse(r.body)).toEqual({ parsed: { amount: '25.00', note: 'naïve €' }, text, fromStream: true });
  });

  it('a body in several chunks without Content-Length is read whole', async () => {
    const r = await send('POST', '/json', 'application/json', ['{"a":', '[1,2', ',3]}']);
    expect(JSON.parse(r.body)).toMatchObject({ parsed: { a: [1, 2, 3] }, fromStream: true });
  });

  it('drops a leading byte order mark, as the Fetch API does', async () => {
    const body = Buffer.concat([Buffer.from([0xef, 0xbb, 0xbf]), Buffer.from('{"x":1}')]);
    const r = await send('POST', '/json', 'application/json', [body], body.length);
    expect(JSON.parse(r.body)).toMatchObject({ parsed: { x: 1 }, text: '{"x":1}' });
  });

  it('a handler using the WHATWG Request later still gets the body', async () => {
    const r = await send('POST', '/raw', 'application/json', ['{"y":2}'], 7);
    expect(JSON.parse(r.body)).toEqual({ raw: '{"y":2}' });
  });

  it('over the limit by Content-Length → onError, without reading', async () => {
    const big = JSON.stringify({ s: 'x'.repeat(MAX) });
    const r = await send('POST', '/json', 'application/json', [big], Buffer.byteLength(big));
    expect(r.status).toBe(413);
  });

  it('over the limit while streaming (no Content-Length) → onError', async () => {
    const r = await send('POST', '/json', 'application/json', ['{"s":"', 'x'.repeat(600), 'x'.repeat(600), '"}']);
    expect(r.status).toBe(413);
  });

  it('exactly at the limit is accepted', async () => {
    const body = JSON.stringify({ s: 'x'.repeat(MAX - 8) });
    expect(Buffer.byteLength(body)).toBe(MAX);
    const r = await send('POST', '/json', 'application/json', [body.slice(0, 500), body.slice(500)]);
    expect(r.status).toBe(200);
  });

  it('forms keep Hono\'s path (and its limit)', async () => {
    const r = await send('POST', '/form', 'application/x-www-form-urlencoded', ['a=1&b=two'], 9);
    expect(JSON.parse(r.body)).toEqual({ form: { a: '1', b: 'two' } });
    const big = await send('POST', '/form', 'application/x-www-form-urlencoded', [`a=${'x'.repeat(MAX)}`]);
    expect(big.status).toBe(413);
  });

  it('GET passes through', async () => {
    expect((await send('GET', '/get', undefined, [])).status).toBe(200);
  });
});
