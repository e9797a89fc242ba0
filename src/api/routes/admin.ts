/**
 * Operator pages under /admin, behind ADMIN_TOKEN (Bearer, or Basic auth with the token as password
 * so a browser can log in). When ADMIN_TOKEN is not set, /admin/* does not exist (404, like any
 * unknown route).
 *
 * - GET /admin/queues: the bull-board queue dashboard (@bull-board/hono) for every Kassa queue: job
 *   counts, job lists with data and failure reasons, and actions (retry, promote, clean, pause…).
 *   Its assets are served from /admin/queues/static/* and its JSON API lives at /admin/queues/api/*.
 * - GET /admin/queues?format=json: a compact status for scripts: counts per queue and the last
 *   failed jobs with their reason (credentials in URLs masked).
 */
import { createRequire } from 'node:module';
import path from 'node:path';
import type { ServeStaticOptions } from '@hono/node-server/serve-static';
import type { OpenAPIHono } from '@hono/zod-openapi';
import { Hono, type Context, type Env } from 'hono';
import type { Deps } from '../../deps.ts';
import { KassaError } from '../../errors.ts';
import type { AppEnv } from '../env.ts';
import { errorResponse } from '../errors.ts';
import { QUEUE_NAMES, type QueueName } from '../../queues/index.ts';
import { ADMIN_CHALLENGE, adminAuthorized } from '../../metrics/auth.ts';

/** Where the dashboard is mounted; bull-board derives its static and API paths from it. */
export const QUEUE_DASHBOARD_PATH = '/admin/queues';

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

/**
 * bull-board's UI (a prebuilt React app): the HTML view and its static/ folder. Resolved through
 * @bull-board/api (the package that depends on @bull-board/ui), so it works from any cwd and
 * with any node_modules layout.
 */
function uiDir(): string {
  return path.dirname(createRequire(createRequire(import.meta.url).resolve('@bull-board/api')).resolve('@bull-board/ui/package.json'));
}

/**
 * The dashboard's CSP. Everything it loads comes from /admin/queues/static (scripts, CSS,
 * locales via fetch, a web worker for syntax highlighting). It needs 'unsafe-inline' styles (React
 * style attributes, CodeMirror's injected <style>) and data: images (CodeMirror icons); no inline
 * or eval'd script. Its Google Fonts stylesheet is deliberately blocked: an operator console makes
 * no third-party requests, and the UI falls back to the system font.
 */
const DASHBOARD_CSP = [
  "default-src 'self'", "script-src 'self'", "worker-src 'self'", "style-src 'self' 'unsafe-inline'",
  "img-src 'self' data:", "font-src 'self'", "connect-src 'self'", "object-src 'none'", "base-uri 'self'",
  "form-action 'self'", "frame-ancestors 'none'",
].join('; ');

/**
 * Browsers resend Basic credentials on requests that other sites trigger, so a state-changing
 * request (bull-board's PUT/POST/PATCH actions) must come from the dashboard itself: Sec-Fetch-Site
 * same-origin (or none: typed by the user), or, from browsers without Sec-Fetch-Site, an Origin on
 * this host. Clients that send neither (curl, scripts) carry the token explicitly and pass.
 */
function crossSiteWrite(c: Context<AppEnv>): boolean {
  if (['GET', 'HEAD', 'OPTIONS'].includes(c.req.method)) return false;
  const site = c.req.header('sec-fetch-site');
  if (site) return site !== 'same-origin' && site !== 'none';
  const origin = c.req.header('origin');
  if (!origin) return false;
  try {
    return new URL(origin).host !== c.req.header('host');
  } catch {
    return true; // "null" and other opaque origins
  }
}

/**
 * The bull-board app, mounted at QUEUE_DASHBOARD_PATH. bull-board and BullMQ are loaded here, on the
 * first request to the dashboard, not when the API starts (docs/architecture.md §10).
 */
async function queueDashboard(deps: Deps): Promise<Hono> {
  const [{ createBullBoard }, { BullMQAdapter }, { HonoAdapter }, { serveStatic }, queues] = await Promise.all([
    import('@bull-board/api'),
    import('@bull-board/api/bullMQAdapter'),
    import('@bull-board/hono'),
    import('@hono/node-server/serve-static'),
    Promise.all((Object.values(QUEUE_NAMES) as QueueName[]).map((name) => deps.queues[name].queue())),
  ]);
  const UI_DIR = uiDir();
  const STATIC_DIR = path.join(UI_DIR, 'dist', 'static');
  /**
   * HonoAdapter passes serveStatic a root relative to process.cwd() at start-up, which breaks if
   * the cwd changes afterwards; pin it to the absolute folder instead. (serveStatic rejects `..` and
   * encoded paths, so requests cannot leave that folder.)
   */
  const serveBoardStatic = <E extends Env>(opts: ServeStaticOptions<E> = {}) => serveStatic<E>({ ...opts, root: STATIC_DIR });
  const serverAdapter = new HonoAdapter(serveBoardStatic).setBasePath(QUEUE_DASHBOARD_PATH);
  createBullBoard({
    queues: queues.map((q) => new BullMQAdapter(q)),
    serverAdapter,
    options: { uiBasePath: UI_DIR, uiConfig: { boardTitle: 'Kassa queues' } },
  });
  const board = new Hono().route(QUEUE_DASHBOARD_PATH, serverAdapter.registerPlugin());
  board.notFound(() => {
    const res = new Response(null, { status: 404 });
    UNMATCHED.add(res);
    return res;
  });
  board.onError((err) => {
    throw err; // to the API's error handler (app.ts)
  });
  return board;
}

/** bull-board's "no such route" answers: the API's own 404 (route_not_found) is sent instead. */
const UNMATCHED = new WeakSet<Response>();


export function registerAdminRoutes(app: OpenAPIHono<AppEnv>, deps: Deps): void {
  const token = deps.config.adminToken;
  if (!token) return; // no admin pages at all: /admin/* falls through to the 404 handler
  app.use('/admin/*', async (c, next) => {
    if (!adminAuthorized(c.req.header('authorization'), token)) {
      return errorResponse(c, new KassaError('admin_token_required', 'This page needs the ADMIN_TOKEN (Bearer token, or Basic auth with the token as password).', {
        status: 401, type: 'authentication_error', headers: { 'WWW-Authenticate': ADMIN_CHALLENGE },
      }));
    }
    if (crossSiteWrite(c)) {
      return errorResponse(c, new KassaError('cross_site_request', 'Admin actions must be sent from the admin pages themselves.', {
        status: 403, type: 'permission_error',
      }));
    }
    await next();
    c.res.headers.set('Cache-Control', 'no-store');
    c.res.headers.set('Content-Security-Policy', DASHBOARD_CSP);
    c.res.headers.set('X-Frame-Options', 'DENY');
    c.res.headers.set('Referrer-Policy', 'no-referrer');
  });
  app.get(QUEUE_DASHBOARD_PATH, async (c, next) => {
    if (c.req.query('format') !== 'json') return next(); // the dashboard itself
    return c.json({ object: 'queue_status', queues: await queueStatus(deps) });
  });
  // The UI links to its base with a trailing slash; routes are strict, so send that back to the base.
  app.get(`${QUEUE_DASHBOARD_PATH}/`, (c) => c.redirect(QUEUE_DASHBOARD_PATH + new URL(c.req.url).search));
  let board: Promise<Hono> | undefined;
  const dashboard = async (c: Context<AppEnv>, next: () => Promise<void>) => {
    board ??= queueDashboard(deps).catch((err: unknown) => {
      board = undefined; // try again on the next request
      throw err;
    });
    const res = await (await board).fetch(c.req.raw, c.env);
    if (!UNMATCHED.has(res)) return res;
    await next();
  };
  app.all(QUEUE_DASHBOARD_PATH, dashboard);
  app.all(`${QUEUE_DASHBOARD_PATH}/*`, dashboard);
}
