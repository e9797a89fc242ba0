/**
 * The public (no API key) invoice endpoints used by the checkout page:
 * `GET /v1/public/invoices/:id` — the customer-facing view (src/checkout/public-invoice.ts), and
 * `GET /v1/public/invoices/:id/stream` — Server-Sent Events: an `invoice` event with that JSON on
 * connect and after every change (Redis pub/sub fan-out, src/checkout/updates.ts), a heartbeat
 * comment every 15 s. Rate limited per client IP; errors use the API error envelope.
 */
import type { OpenAPIHono } from '@hono/zod-openapi';
import { streamSSE } from 'hono/streaming';
import type { Deps } from '../../deps.ts';
import type { AppEnv } from '../env.ts';
import { KassaError } from '../../errors.ts';
import { errorResponse } from '../errors.ts';
import { loadPublicInvoice, type PublicInvoice } from '../../checkout/public-invoice.ts';
import { invoiceUpdatesFor } from '../../checkout/updates.ts';
import { DEFAULT_PUBLIC_RATE_LIMIT_PER_MINUTE, rateLimitPerIp } from '../../checkout/security.ts';

export interface PublicRouteOptions {
  /** Requests per client IP per minute (default 120; shared with /pay/*). */
  perMinute?: number;
  /** SSE heartbeat interval (default 15 s). */
  heartbeatMs?: number;
}

export function registerPublicRoutes(app: OpenAPIHono<AppEnv>, deps: Deps, opts: PublicRouteOptions = {}): void {
  const perMinute = opts.perMinute ?? DEFAULT_PUBLIC_RATE_LIMIT_PER_MINUTE;
  const heartbeatMs = opts.heartbeatMs ?? 15_000;
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
    const updates = invoiceUpdatesFor(deps);
    c.header('X-Accel-Buffering', 'no');
    return streamSSE(c, async (stream) => {
      let closed = false;
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
            await stream.writeSSE({ event: 'invoice', data: JSON.stringify(inv), id: String(Date.now()) });
          } while (again && !closed);
        } finally {
          busy = false;
        }
      };
      const unsubscribe = updates.subscribe(id, () => void send());
      const heartbeat = setInterval(() => {
        if (!closed) void stream.write(': heartbeat\n\n').catch(() => {});
      }, heartbeatMs);
      const done = new Promise<void>((resolve) => {
        stream.onAbort(() => {
          closed = true;
          clearInterval(heartbeat);
          unsubscribe();
          resolve();
        });
      });
      try {
        await stream.write('retry: 3000\n\n');
        await updates.ready();
        await send();
        await done;
      } finally {
        closed = true;
        clearInterval(heartbeat);
        unsubscribe();
      }
    });
  });
}
