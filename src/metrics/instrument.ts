/**
 * Instrumentation helpers: an HTTP-duration middleware for createApp, listeners for BullMQ workers,
 * a wrapper for the webhook deliverer, and a small /metrics listener for `kassa worker`.
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { MiddlewareHandler } from 'hono';
import { matchedRoutes } from 'hono/route';
import type { Job, Worker } from 'bullmq';
import type { Logger } from '../logger.ts';
import type { KassaMetrics } from './index.ts';
import { ADMIN_CHALLENGE, adminAuthorized } from './auth.ts';

/**
 * Observes every request in `kassa_http_request_duration_seconds{method,route,status}`. `route` is
 * the pattern of the handler that matched (`/v1/invoices/:id`), never the raw path; requests no
 * handler matched are `unmatched`, so scanners cannot blow up the label set.
 */
export function httpMetrics(metrics: KassaMetrics): MiddlewareHandler {
  const methods = new Set(['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS']);
  return async (c, next) => {
    const started = performance.now();
    try {
      await next();
    } finally {
      // Middlewares are registered as method ALL; the last non-ALL match is the handler's pattern.
      const handlers = matchedRoutes(c).filter((r) => r.method !== 'ALL');
      const route = handlers.length > 0 ? handlers[handlers.length - 1]!.path : 'unmatched';
      const method = methods.has(c.req.method) ? c.req.method : 'OTHER';
      metrics.httpDuration.observe({ method, route, status: String(c.res.status) }, (performance.now() - started) / 1000);
    }
  };
}

/** Counts finished jobs and their processing time per queue (`kassa_queue_jobs_processed_total`). */
export function instrumentWorkers(metrics: KassaMetrics, workers: Worker[]): void {
  for (const w of workers) {
    const observe = (job: Job | undefined, outcome: 'completed' | 'failed') => {
      metrics.queueJobs.inc({ queue: w.name, outcome });
      if (job?.processedOn && job.finishedOn) {
        metrics.queueJobDuration.observe({ queue: w.name, outcome }, Math.max(0, job.finishedOn - job.processedOn) / 1000);
      }
    };
    w.on('completed', (job) => observe(job, 'completed'));
    w.on('failed', (job) => observe(job, 'failed'));
  }
}

/**
 * Wraps a webhook deliverer (src/webhooks/delivery.ts) so each attempt is counted by outcome and
 * timed: delivered, retry (still pending: the schedule will try again), failed, skipped (claimed
 * elsewhere or not due), error (threw).
 */
export function instrumentDeliverer<D extends { deliver(id: string): Promise<{ status: string }> }>(metrics: KassaMetrics, deliverer: D): D {
  return {
    ...deliverer,
    async deliver(id: string) {
      const started = performance.now();
      let outcome = 'error';
      try {
        const result = await deliverer.deliver(id);
        outcome = result.status === 'pending' ? 'retry' : result.status;
        return result;
      } finally {
        metrics.webhookAttempts.inc({ outcome });
        if (outcome !== 'skipped') metrics.webhookAttemptDuration.observe({ outcome }, (performance.now() - started) / 1000);
      }
    },
  } as D;
}

/**
 * A minimal HTTP listener serving `GET /metrics` from `metrics.registry` — for processes without
 * the API (`kassa worker`). Requires the admin token when one is configured.
 */
export async function startMetricsServer(opts: {
  metrics: KassaMetrics;
  host: string;
  port: number;
  adminToken?: string | undefined;
  logger?: Logger;
}): Promise<{ url: string; port: number; server: Server; close(): Promise<void> }> {
  const server = createServer((req, res) => {
    const path = (req.url ?? '/').split('?')[0];
    if (req.method !== 'GET' || path !== '/metrics') {
      res.writeHead(404, { 'content-type': 'text/plain' }).end('not found\n');
      return;
    }
    if (opts.adminToken && !adminAuthorized(req.headers.authorization, opts.adminToken)) {
      res.writeHead(401, { 'content-type': 'text/plain', 'www-authenticate': ADMIN_CHALLENGE }).end('unauthorized\n');
      return;
    }
    opts.metrics.registry.metrics().then(
      (body) => res.writeHead(200, { 'content-type': opts.metrics.registry.contentType, 'cache-control': 'no-store' }).end(body),
      (err: Error) => {
        opts.logger?.error({ err: err.message }, 'metrics scrape failed');
        res.writeHead(500, { 'content-type': 'text/plain' }).end('metrics unavailable\n');
      },
    );
  });
  await new Promise<void>((resolve) => server.listen(opts.port, opts.host, resolve));
  const port = (server.address() as AddressInfo).port;
  const url = `http://${opts.host.includes(':') ? `[${opts.host}]` : opts.host}:${port}/metrics`;
  opts.logger?.info({ url }, 'metrics listening');
  return { url, port, server, close: () => new Promise<void>((resolve) => server.close(() => resolve())) };
}
