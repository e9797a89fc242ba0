/**
 * The public (no API key) invoice endpoints used by the checkout page:
 * `GET /v1/public/invoices/:id` — the customer-facing view (src/checkout/public-invoice.ts), and
 * `GET /v1/public/invoices/:id/stream` — Server-Sent Events: an `invoice` event with that JSON on
 * connect and after every change (Redis pub/sub fan-out, src/checkout/updates.ts), a heartbeat
 * comment every 15 s. Rate limited per client IP; errors use the API error envelope.
 *
 * Open streams are capped per client IP and per process (429 `too_many_streams` with Retry-After:
 * the checkout page then polls `GET /v1/public/invoices/:id` instead), and each stream ends after
 * `idleMs` without an invoice event or after `maxMs` in total (the browser reconnects, and is
 * counted against the caps again).
 */
import type { OpenAPIHono } from '@hono/zod-openapi';
import { streamSSE } from 'hono/streaming';
import type { Deps } from '../../deps.ts';
import type { AppEnv } from '../env.ts';
import { KassaError } from '../../errors.ts';
import { errorResponse } from '../errors.ts';
import { loadPublicInvoice, type PublicInvoice } from '../../checkout/public-invoice.ts';
import { invoiceUpdatesFor } from '../../checkout/updates.ts';
import { DEFAULT_PUBLIC_RATE_LIMIT_PER_MINUTE, clientIp, rateLimitPerIp } from '../../checkout/security.ts';

export interface PublicRouteOptions {
  /** Requests per client IP per minute (default 120; shared with /pay/*). */
  perMinute?: number;
  /** SSE heartbeat interval (default 15 s). */
  heartbeatMs?: number;
  /** Open live-status streams: per client IP, in total, idle and maximum duration (defaults from the config). */
  streams?: { perIp: number; max: number; idleMs: number; maxMs: number };
}

/** Open streams of this process, in total and per client IP. */
function streamSlots(limits: { perIp: number; max: number }) {
  const byIp = new Map<string, number>();
  let total = 0;
  return {
    /** Takes a slot, or returns null when a cap is reached; the returned function frees it (once). */
    take(ip: string): (() => void) | null {
      const mine = byIp.get(ip) ?? 0;
      if (total >= limits.max || mine >= limits.perIp) return null;
      total++;
      byIp.set(ip, mine + 1);
      let freed = false;
      return () => {
        if (freed) return;
        freed = true;
        total--;
        const n = (byIp.get(ip) ?? 1) - 1;
        if (n <= 0) byIp.delete(ip);
        else byIp.set(ip, n);
      };
    },
    open: () => total,
  };
}

export function registerPublicRoutes(app: OpenAPIHono<AppEnv>, deps: Deps, opts: PublicRouteOptions = {}): void {
  const perMinute = opts.perMinute ?? DEFAULT_PUBLIC_RATE_LIMIT_PER_MINUTE;
  const heartbeatMs = opts.heartbeatMs ?? 15_000;
  const streamLimits = opts.streams ?? deps.config.publicStreams;
  const slots = streamSlots(streamLimits);
  app.use('/v1/public/*', async (c, next) => {
    await next();
    c.res.headers.set('Referrer-Policy', 'no-referrer');
    c.res.headers.set('Cache-Control', 'no-store');
  });
  app.use(
    '/v1/public/*',
    rateLimitPerIp({
      redis: deps.redis,
      prefix: deps.config.queuePrefix,
      perMinute,
      limited: (c, retryAfter) =>
        errorResponse(c, new KassaError('rate_limited', `Too many requests from this address (limit ${perMinute} per minute). Retry after ${retryAfter} s.`, {
          status: 429, type: 'rate_limit_error',
        })),
    }),
  );

  app.get('/v1/public/invoices/:id', async (c) => c.json(await loadPublicInvoice(deps, c.req.param('id'))));

  app.get('/v1/public/invoices/:id/stream', async (c) => {
    const id = c.req.param('id');
    await loadPublicInvoice(deps, id); // 404 (JSON) before any stream starts
    const ip = clientIp(c);
    const release = slots.take(ip);
    if (!release) {
      c.get('log').warn({ open_streams: slots.open() }, 'checkout stream refused: too many open streams');
      c.header('Retry-After', '60');
      return errorResponse(c, new KassaError('too_many_streams', 'Too many open live-status streams. Poll GET /v1/public/invoices/:id instead, or retry later.', {
        status: 429, type: 'rate_limit_error',
      }));
    }
    const updates = invoiceUpdatesFor(deps);
    c.header('X-Accel-Buffering', 'no');
    return streamSSE(c, async (stream) => {
      let closed = false;
      let lastEvent = Date.now();
      const started = Date.now();
      let busy = false;
      let again = false;
      let last = '';
      const send = async (): Promise<void> => {
        if (busy) {
          again = true;
          return;
        }
        busy = true;
        try {
          do {
            again = false;
            let inv: PublicInvoice;
            try {
              inv = await loadPublicInvoice(deps, id);
            } catch (err) {
              c.get('log').warn({ err: (err as Error).message, invoice_id: id }, 'checkout stream reload failed');
              return;
            }
            const { server_time: _t, ...comparable } = inv;
            const key = JSON.stringify(comparable);
            if (closed || key === last) continue;
            last = key;
            lastEvent = Date.now();
            await stream.writeSSE({ event: 'invoice', data: JSON.stringify(inv), id: String(Date.now()) });
          } while (again && !closed);
        } finally {
          busy = false;
        }
      };
      const unsubscribe = updates.subscribe(id, () => void send());
      let heartbeat: NodeJS.Timeout | undefined;
      let timeouts: NodeJS.Timeout | undefined;
      let finish: () => void = () => {};
      const done = new Promise<void>((resolve) => {
        finish = () => {
          closed = true;
          clearInterval(heartbeat);
          clearInterval(timeouts);
          unsubscribe();
          release();
          resolve();
        };
        stream.onAbort(finish);
      });
      heartbeat = setInterval(() => {
        if (!closed) void stream.write(': heartbeat\n\n').catch(finish);
      }, heartbeatMs);
      // Idle (no invoice event) and maximum-duration timeouts end the stream.
      timeouts = setInterval(() => {
        const now = Date.now();
        if (now - lastEvent >= streamLimits.idleMs || now - started >= streamLimits.maxMs) finish();
      }, Math.max(50, Math.min(1000, streamLimits.idleMs / 4, streamLimits.maxMs / 4)));
      try {
        await stream.write('retry: 3000\n\n');
        await updates.ready();
        await send();
        await done;
      } finally {
        finish();
      }
    });
  });
}
