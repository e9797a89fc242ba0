/**
 * GET /admin/queues: a read-only, server-rendered BullMQ status page for operators (job counts per
 * queue and the last failed jobs with their reason); `?format=json` returns the same data as JSON.
 *
 * Behind ADMIN_TOKEN (Bearer, or Basic auth with the token as password so a browser can log in).
 * When ADMIN_TOKEN is not set, /admin/* does not exist (404, like any unknown route).
 * (@bull-board/hono is not a dependency; this page needs nothing beyond BullMQ.)
 */
import type { OpenAPIHono } from '@hono/zod-openapi';
import type { Deps } from '../../deps.ts';
import { KassaError } from '../../errors.ts';
import type { AppEnv } from '../env.ts';
import { errorResponse } from '../errors.ts';
import { QUEUE_NAMES, type QueueName } from '../../queues/index.ts';
import { ADMIN_CHALLENGE, adminAuthorized } from '../../metrics/auth.ts';

const STATES = ['waiting', 'active', 'delayed', 'prioritized', 'paused', 'failed', 'completed'] as const;
const FAILED_SHOWN = 10;

export interface QueueStatus {
  queue: string;
  counts: Record<(typeof STATES)[number], number>;
  failed: { id: string | null; name: string; attempts: number; reason: string; data: unknown; failed_at: string | null }[];
}

/** Removes credentials from URLs in free text (error messages may quote an RPC URL). */
const scrub = (s: string) => s.replace(/(\w+:\/\/)[^/\s@]*@/g, '$1***@').slice(0, 500);

export async function queueStatus(deps: Pick<Deps, 'queues'>): Promise<QueueStatus[]> {
  return Promise.all(
    (Object.values(QUEUE_NAMES) as QueueName[]).map(async (name) => {
      const q = deps.queues[name];
      const [counts, failed] = await Promise.all([q.getJobCounts(...STATES), q.getFailed(0, FAILED_SHOWN - 1)]);
      return {
        queue: name,
        counts: Object.fromEntries(STATES.map((s) => [s, counts[s] ?? 0])) as QueueStatus['counts'],
        failed: failed.filter(Boolean).map((j) => ({
          id: j.id ?? null,
          name: j.name,
          attempts: j.attemptsMade,
          reason: scrub(j.failedReason ?? ''),
          data: j.data,
          failed_at: j.finishedOn ? new Date(j.finishedOn).toISOString() : null,
        })),
      };
    }),
  );
}

const esc = (s: string) => s.replace(/[&<>"']/g, (ch) => `&#${ch.charCodeAt(0)};`);

function renderPage(queues: QueueStatus[], at: Date): string {
  const head = STATES.map((s) => `<th>${s}</th>`).join('');
  const rows = queues
    .map((q) => `<tr><th scope="row">${esc(q.queue)}</th>${STATES.map((s) => `<td class="${s === 'failed' && q.counts[s] > 0 ? 'bad' : ''}">${q.counts[s]}</td>`).join('')}</tr>`)
    .join('');
  const failed = queues.flatMap((q) => q.failed.map((f) => ({ ...f, queue: q.queue })));
  const failedRows = failed.length === 0
    ? '<p>No failed jobs retained.</p>'
    : `<table><thead><tr><th>queue</th><th>job</th><th>id</th><th>attempts</th><th>failed at</th><th>reason</th><th>data</th></tr></thead><tbody>${failed
        .map((f) => `<tr><td>${esc(f.queue)}</td><td>${esc(f.name)}</td><td>${esc(f.id ?? '')}</td><td>${f.attempts}</td><td>${esc(f.failed_at ?? '')}</td><td>${esc(f.reason)}</td><td><code>${esc(JSON.stringify(f.data) ?? '')}</code></td></tr>`)
        .join('')}</tbody></table>`;
  return `<!doctype html><html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width,initial-scale=1">
<title>Kassa queues</title><meta http-equiv="refresh" content="10">
<style>body{font:14px system-ui,sans-serif;margin:2rem;color:#111}table{border-collapse:collapse;margin:1rem 0}th,td{border:1px solid #ccc;padding:.3rem .6rem;text-align:right}
td:nth-child(n+6),th[scope=row]{text-align:left}.bad{background:#fdd;font-weight:600}code{font-size:12px}small{color:#666}</style></head>
<body><h1>Kassa queues</h1><small>Read-only. Generated ${esc(at.toISOString())}; refreshes every 10 s. <a href="?format=json">JSON</a></small>
<table><thead><tr><th>queue</th>${head}</tr></thead><tbody>${rows}</tbody></table>
<h2>Last failed jobs (up to ${FAILED_SHOWN} per queue)</h2>${failedRows}</body></html>`;
}

export function registerAdminRoutes(app: OpenAPIHono<AppEnv>, deps: Deps): void {
  const token = deps.config.adminToken;
  if (!token) return; // no admin pages at all: /admin/* falls through to the 404 handler
  app.use('/admin/*', async (c, next) => {
    if (!adminAuthorized(c.req.header('authorization'), token)) {
      return errorResponse(c, new KassaError('admin_token_required', 'This page needs the ADMIN_TOKEN (Bearer token, or Basic auth with the token as password).', {
        status: 401, type: 'authentication_error', headers: { 'WWW-Authenticate': ADMIN_CHALLENGE },
      }));
    }
    await next();
    c.res.headers.set('Cache-Control', 'no-store');
  });
  app.get('/admin/queues', async (c) => {
    const queues = await queueStatus(deps);
    if (c.req.query('format') === 'json') return c.json({ object: 'queue_status', queues });
    return c.html(renderPage(queues, new Date()), 200, {
      'Content-Security-Policy': "default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'none'",
      'X-Frame-Options': 'DENY',
    });
  });
}
