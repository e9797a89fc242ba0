/**
 * Response compression (brotli or gzip, whichever the client prefers; brotli on a tie) for text
 * bodies of at least 1 KiB. Never compressed: the SSE stream (`text/event-stream`, it must flush
 * event by event), bodies already encoded, HEAD/204/304, and everything under /dashboard — its pages
 * carry a CSRF token next to text reflected from the request, the setting in which compressed sizes
 * leak secrets (BREACH).
 */
import { promisify } from 'node:util';
import { brotliCompress, constants as zlibConstants, gzip } from 'node:zlib';
import type { MiddlewareHandler } from 'hono';

const brotliAsync = promisify(brotliCompress);
const gzipAsync = promisify(gzip);

/** Compressible content types. */
const COMPRESSIBLE = /^(text\/(html|css|javascript|plain|csv|xml)|application\/(json|javascript|xml|problem\+json)|image\/svg\+xml)\b/i;
export const COMPRESSION_THRESHOLD_BYTES = 1024;

/** `br`, `gzip` or null from an Accept-Encoding header (q=0 refuses; highest q wins, br on a tie). */
export function pickEncoding(header: string | undefined | null): 'br' | 'gzip' | null {
  if (!header) return null;
  const q: Record<string, number> = {};
  for (const part of header.split(',')) {
    const [name, ...params] = part.trim().toLowerCase().split(';');
    if (!name) continue;
    const qp = params.map((p) => p.trim()).find((p) => p.startsWith('q='));
    const v = qp ? Number(qp.slice(2)) : 1;
    q[name] = Number.isFinite(v) ? v : 0;
  }
  const of = (n: string) => q[n] ?? (q['*'] !== undefined ? q['*'] : 0);
  const br = of('br');
  const gz = of('gzip');
  if (br <= 0 && gz <= 0) return null;
  return br >= gz ? 'br' : 'gzip';
}

function addVary(headers: Headers, value: string): void {
  const cur = headers.get('Vary');
  if (!cur) headers.set('Vary', value);
  else if (!cur.split(',').some((v) => v.trim().toLowerCase() === value.toLowerCase() || v.trim() === '*')) headers.set('Vary', `${cur}, ${value}`);
}

export function compression(): MiddlewareHandler {
  return async (c, next) => {
    await next();
    // Only the public pages and the API (the dashboard's headers are set by its own router).
    if (c.req.path === '/dashboard' || c.req.path.startsWith('/dashboard/')) return;
    const res = c.res;
    if (c.req.method === 'HEAD' || res.status === 204 || res.status === 304) return;
    if (res.headers.has('Content-Encoding')) return;
    const type = res.headers.get('Content-Type') ?? '';
    if (!COMPRESSIBLE.test(type)) return;
    const encoding = pickEncoding(c.req.header('Accept-Encoding'));
    if (!encoding) {
      // Nothing to compress for this client: the response stays as it is, only marked as varying.
      // Reading it (even asking for `res.body`) turns the Node server's light response into a full
      // WHATWG one (a stream, a copy), which showed in the POST /v1/invoices profile.
      try {
        addVary(res.headers, 'Accept-Encoding');
        return;
      } catch {
        // immutable headers: rebuilt below
      }
    }
    if (!res.body) return;
    const headers = new Headers(res.headers);
    addVary(headers, 'Accept-Encoding');
    const body = Buffer.from(await res.arrayBuffer());
    let out: Buffer = body;
    if (encoding && body.length >= COMPRESSION_THRESHOLD_BYTES) {
      out = encoding === 'br'
        ? await brotliAsync(body, { params: { [zlibConstants.BROTLI_PARAM_QUALITY]: 5, [zlibConstants.BROTLI_PARAM_SIZE_HINT]: body.length } })
        : await gzipAsync(body, { level: 6 });
      headers.set('Content-Encoding', encoding);
    }
    headers.delete('Content-Length');
    c.res = undefined;
    c.res = new Response(new Uint8Array(out), { status: res.status, statusText: res.statusText, headers });
  };
}
