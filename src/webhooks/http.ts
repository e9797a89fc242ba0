/**
 * One webhook HTTP attempt with node:http/https: connects to the address the SSRF check resolved
 * (custom `lookup`, so no second DNS answer is used), never follows redirects, one overall
 * timeout for connect + response, and keeps at most 1 KB of the response body.
 */
import http from 'node:http';
import https from 'node:https';
import type { LookupFunction } from 'node:net';
import type { ResolvedTarget } from './ssrf.ts';

export const USER_AGENT = 'Kassa-Webhooks/1.0';
export const SNIPPET_BYTES = 1024;

export interface HttpAttemptResult {
  /** HTTP status, or null when no response arrived. */
  statusCode: number | null;
  headers: http.IncomingHttpHeaders;
  /** At most SNIPPET_BYTES of the body, as text. */
  snippet: string;
  /** Network error / timeout message, when no response arrived. */
  error: string | null;
  timedOut: boolean;
  durationMs: number;
}

export function pinnedLookup(target: ResolvedTarget): LookupFunction {
  return ((_hostname: string, options: { all?: boolean }, callback: (...args: unknown[]) => void) => {
    if (options && options.all) callback(null, [{ address: target.address, family: target.family }]);
    else callback(null, target.address, target.family);
  }) as unknown as LookupFunction;
}

export function postJson(opts: {
  url: URL;
  target: ResolvedTarget;
  headers: Record<string, string>;
  body: string;
  timeoutMs: number;
}): Promise<HttpAttemptResult> {
  const started = performance.now();
  const mod = opts.url.protocol === 'https:' ? https : http;
  return new Promise((resolve) => {
    let done = false;
    const finish = (r: Omit<HttpAttemptResult, 'durationMs'>) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      resolve({ ...r, durationMs: Math.round(performance.now() - started) });
    };
    const req = mod.request(
      opts.url,
      {
        method: 'POST',
        agent: false,
        lookup: pinnedLookup(opts.target),
        headers: {
          ...opts.headers,
          'content-type': 'application/json',
          'content-length': String(Buffer.byteLength(opts.body)),
          'user-agent': USER_AGENT,
          connection: 'close',
        },
      },
      (res) => {
        const chunks: Buffer[] = [];
        let size = 0;
        const complete = () => {
          finish({
            statusCode: res.statusCode ?? null, headers: res.headers,
            snippet: Buffer.concat(chunks).subarray(0, SNIPPET_BYTES).toString('utf8'), error: null, timedOut: false,
          });
          res.destroy();
          req.destroy();
        };
        res.on('data', (c: Buffer) => {
          if (size < SNIPPET_BYTES) chunks.push(c);
          size += c.length;
          if (size >= SNIPPET_BYTES) complete();
        });
        res.on('end', complete);
        res.on('error', complete);
        res.on('close', complete);
      },
    );
    const timer = setTimeout(() => {
      finish({ statusCode: null, headers: {}, snippet: '', error: `timed out after ${opts.timeoutMs} ms`, timedOut: true });
      req.destroy();
    }, opts.timeoutMs);
    req.on('error', (err: NodeJS.ErrnoException) => {
      finish({ statusCode: null, headers: {}, snippet: '', error: err.code ? `${err.code}: ${err.message}` : err.message, timedOut: false });
    });
    req.end(opts.body);
  });
}
