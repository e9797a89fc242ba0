/**
 * The request body size limit, and the JSON body read straight from Node's request stream.
 *
 * Under `@hono/node-server` a request's WHATWG `Request` (and its web stream) is built only when
 * something asks for it; Hono's own `bodyLimit` asks for it on every request (`c.req.raw.body`),
 * and reading the body through it costs more CPU than the rest of an invoice's HTTP handling
 * (measured with `npm run bench:invoices`, bench/RESULTS.md). For a JSON body this middleware reads
 * the Node `IncomingMessage` into one Buffer instead, enforcing the limit as it reads, and gives
 * the text to Hono's body cache (`c.req.json()`/`text()` answer from it, as they would after the
 * first read). The Buffer is also left as `incoming.rawBody`, which the adapter uses as the body if
 * a WHATWG `Request` is built later after all (a handler passing `c.req.raw` on).
 * Any other body (forms, uploads) and requests not served by the Node adapter (`app.request` in
 * tests) go through Hono's `bodyLimit` as before.
 */
import type { IncomingMessage } from 'node:http';
import type { Context, MiddlewareHandler } from 'hono';
import { bodyLimit as honoBodyLimit } from 'hono/body-limit';

const isJson = (type: string | undefined) => {
  const t = (type ?? '').split(';')[0]!.trim().toLowerCase();
  return t === 'application/json' || t.endsWith('+json');
};

/** Reads `incoming` whole; null when it holds more than `maxSize` bytes (reading stops there). */
async function readAtMost(incoming: IncomingMessage, maxSize: number): Promise<Buffer | null> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of incoming as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > maxSize) return null;
    chunks.push(chunk);
  }
  return chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks, size);
}

/** UTF-8 text as the Fetch API's `text()` decodes it (a leading byte order mark dropped). */
function utf8Text(buf: Buffer): string {
  const bom = buf.length >= 3 && buf[0] === 0xef && buf[1] === 0xbb && buf[2] === 0xbf;
  return buf.toString('utf8', bom ? 3 : 0);
}

export function bodyLimit(options: { maxSize: number; onError: (c: Context) => Response | Promise<Response> }): MiddlewareHandler {
  const fallback = honoBodyLimit(options);
  return async (c, next) => {
    const method = c.req.method;
    if (method === 'GET' || method === 'HEAD') return next(); // no body (Hono's bodyLimit: `raw.body` is null)
    const incoming = (c.env as { incoming?: IncomingMessage } | undefined)?.incoming;
    if (!incoming || typeof incoming.on !== 'function' || !isJson(incoming.headers['content-type']) || 'rawBody' in incoming) {
      return fallback(c, next);
    }
    const declared = incoming.headers['content-length'];
    if (declared !== undefined && !incoming.headers['transfer-encoding'] && Number(declared) > options.maxSize) return options.onError(c);
    const body = await readAtMost(incoming, options.maxSize);
    if (body === null) return options.onError(c);
    (incoming as IncomingMessage & { rawBody?: Buffer }).rawBody = body;
    // Hono's HonoRequest keeps read bodies in `bodyCache` (json() parses the cached text).
    (c.req as unknown as { bodyCache: Record<string, Promise<unknown>> }).bodyCache.text = Promise.resolve(utf8Text(body));
    return next();
  };
}
