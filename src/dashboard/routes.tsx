/**
 * The merchant and finance dashboard under /dashboard: server-rendered pages, cookie sessions,
 * CSRF-checked forms. Security in one place each:
 *
 * - sessions: `kassa_dash` cookie (HttpOnly, SameSite=Strict, Path=/dashboard, Secure on https),
 *   server-side state in dashboard_sessions (only a hash of the id), idle + absolute expiry;
 * - CSRF: a synchronizer token per session, checked on EVERY POST by one middleware; sign-in and
 *   setup forms (no session yet) use an HMAC of a pre-session cookie instead;
 * - roles: `requirePermission(permission)` over the table in permissions.ts, on every page and action;
 * - headers: a CSP with no script at all, frame-ancestors 'none', form-action 'self', no-store; the
 *   one exception is an invoice page showing an approved EVM refund, which loads the same-origin
 *   wallet script (script-src 'self', DASHBOARD_WALLET_CSP).
 *
 * Business rules are never re-implemented: marks go through `deps.invoices.mark`, keys through
 * `deps.apiKeys`, settings through `deps.merchants.update`, the report through
 * src/reports/reconciliation.ts (the CSV is byte-for-byte the API's), refunds through the refund
 * service's exported functions (src/refunds/service.ts), as the API does.
 */
import crypto from 'node:crypto';
import { Hono, type Context, type MiddlewareHandler } from 'hono';
import { deleteCookie, getCookie, setCookie } from 'hono/cookie';
import type { OpenAPIHono } from '@hono/zod-openapi';
import type { Deps } from '../deps.ts';
import type { AppEnv } from '../api/env.ts';
import { isKassaError } from '../errors.ts';
import { findHostileInput } from '../api/middleware/hostile-input.ts';
import { clientIp } from '../checkout/security.ts';
import { qrDataUri } from '../checkout/qr.ts';
import { parseAmount } from '../money/amount.ts';
import { SPEED_POLICIES, type SpeedPolicy } from '../merchants/service.ts';
import { isScope, type Scope } from '../merchants/scopes.ts';
import { listPayments, paymentSeq, presentPayment, type PaymentView } from '../invoices/payments.ts';
import { reconciliationCsv, reconciliationReport } from '../reports/reconciliation.ts';
import { getBitcoinPaymentMethod } from '../chains/bitcoin/payment-method.ts';
import { getEvmPaymentMethod, isEvmChain } from '../chains/evm/payment-method.ts';
import { createWebhookService, type WebhookService } from '../webhooks/service.ts';
import { audit, createDashboardAuth, type AuthLimits, type DashboardAuth, type Session } from './auth.ts';
import { can, type Permission } from './permissions.ts';
import { DASHBOARD_ASSET_VERSION, DASHBOARD_CSS, DASHBOARD_WALLET_JS } from './assets.ts';
import { refundServiceFor, type CreateRefundInput } from '../refunds/service.ts';
import { chainFamily } from '../chains/families.ts';
import { refundable, type DashboardRefund, type RefundsView } from './refunds-section.tsx';
import { staticCacheControl } from '../checkout/assets.ts';
import { deliveriesOf, invoiceEvents, overview, refundActors, refundSinglePerson, searchInvoices, type InvoiceSearch } from './data.ts';
import { INVOICE_EXCEPTIONS, INVOICE_STATUSES } from '../invoices/status.ts';
import type { PageCtx } from './layout.tsx';
import {
  AccountPage, AuditPage, ChooseAccountPage, InvoiceDetailPage, InvoicesPage, KeysPage, LoginPage, MessagePage, OverviewPage, PaymentsPage,
  ReauthPage, ReconciliationPage, SecondFactorPage, SettingsPage, SetupPage, UsersPage, type DashboardPayment,
} from './pages.tsx';
import { WebhooksPage } from './webhooks-page.tsx';

export interface DashboardRouteOptions {
  limits?: Partial<AuthLimits>;
}

type DashEnv = { Variables: AppEnv['Variables'] & { session: Session; csp?: string } };
type C = Context<DashEnv>;

export const SESSION_COOKIE = 'kassa_dash';
const PRE_COOKIE = 'kassa_dash_pre';
/** The "choose the shop" step of a sign-in whose password opens accounts in several merchants. */
const CHOICE_COOKIE = 'kassa_dash_choice';
const COOKIE_PATH = '/dashboard';
const DOCTYPE = '<!doctype html>';

/** No script at all; styles and images from this origin (images also data: for the 2FA QR code). */
export const DASHBOARD_CSP = [
  "default-src 'none'",
  "style-src 'self'",
  "img-src 'self' data:",
  "form-action 'self'",
  "frame-ancestors 'none'",
  "base-uri 'none'",
].join('; ');

/** The invoice page with an approved EVM refund: the same, plus the dashboard's own wallet script (no inline script). */
export const DASHBOARD_WALLET_CSP = DASHBOARD_CSP.replace("default-src 'none'", "default-src 'none'; script-src 'self'");

const NOTICES: Record<string, string> = {
  marked: 'The invoice was marked.',
  settings_saved: 'Settings saved.',
  key_revoked: 'The API key was revoked.',
  user_revoked: 'The user was revoked and their sessions ended.',
  role_changed: 'The role was changed.',
  sessions_ended: 'The sessions were ended.',
  redelivered: 'The event will be delivered again now.',
  '2fa_disabled': 'Two-factor authentication is off.',
  '2fa_setting': 'The two-factor setting was saved.',
  webhook_deleted: 'The webhook endpoint was deleted.',
  password_set: 'Your password is set. Sign in.',
  reauthenticated: 'Confirmed. Repeat the action now.',
  refund_created: 'The refund was created. Send the claim link to the customer (it was e-mailed when the invoice has a buyer e-mail).',
  refund_approved: 'The refund was approved: send it from your wallet.',
  refund_cancelled: 'The refund was cancelled.',
  refund_sent: 'Kassa checked the transaction: the refund is sent and completes at the invoice\'s confirmations.',
  refund_setting: 'The refund approval setting was saved.',
  signed_out: 'You are signed out.',
};

async function render(c: Context, node: unknown, status: 200 | 400 | 401 | 403 | 404 | 409 | 422 | 429 | 500 = 200): Promise<Response> {
  const body = DOCTYPE + String(await (node as { toString(): string | Promise<string> }).toString());
  return c.html(body, status);
}

/** Any 4xx of a service (KassaError) as a status a dashboard page answers with. */
type PageStatus = 400 | 404 | 409 | 422;
const pageStatus = (s: number): PageStatus => (s === 404 || s === 409 || s === 422 ? s : 400);

function str(body: Record<string, unknown>, name: string): string {
  const v = body[name];
  const first = Array.isArray(v) ? v[0] : v;
  return typeof first === 'string' ? first : '';
}

/** Dates the dashboard's filters and reports accept (PostgreSQL and Date both handle them, a day added included). */
const DATE_MIN = Date.UTC(1970, 0, 1);
const DATE_MAX = Date.UTC(3000, 0, 1);
const DATE_RANGE_TEXT = 'Enter dates as YYYY-MM-DD between 1970-01-01 and 2999-12-31.';

/** YYYY-MM-DD or an ISO date-time → Date (null when invalid or outside 1970–2999). Same reading as the API's report query. */
function parseDateInput(s: string | undefined): Date | null {
  if (!s) return null;
  if (!/^\d{4}-\d{2}-\d{2}([T ][\d:.]+(Z|[+-]\d{2}:\d{2})?)?$/.test(s)) return null;
  const d = new Date(s);
  const t = d.getTime();
  return Number.isNaN(t) || t < DATE_MIN || t >= DATE_MAX ? null : d;
}

const REPORT_MAX_DAYS = 366;

export function registerDashboardRoutes(app: OpenAPIHono<AppEnv>, deps: Deps, opts: DashboardRouteOptions = {}): DashboardAuth {
  const auth = createDashboardAuth({ sql: deps.sql, config: deps.config, logger: deps.logger, ...(opts.limits ? { limits: opts.limits } : {}) });
  const secure = deps.config.publicUrl.startsWith('https:');
  let webhooks: WebhookService | null = null;
  try {
    webhooks = createWebhookService({ sql: deps.sql, config: deps.config, logger: deps.logger, queues: deps.queues });
  } catch {
    webhooks = null;
  }
  const d = new Hono<DashEnv>();
  const refunds = refundServiceFor(deps);

  const cookieOpts = (maxAge?: number) => ({ path: COOKIE_PATH, httpOnly: true, sameSite: 'Strict' as const, secure, ...(maxAge ? { maxAge } : {}) });
  const preToken = (pre: string) => crypto.createHmac('sha256', deps.config.secretKey).update(`dashboard-pre:${pre}`).digest('base64url');
  const safeEqual = (a: string, b: string) => {
    const x = Buffer.from(a);
    const y = Buffer.from(b);
    return x.length === y.length && crypto.timingSafeEqual(x, y);
  };
  /** The pre-session CSRF token (sign-in and setup forms), setting its cookie when missing. */
  const preCsrf = (c: C) => {
    let pre = getCookie(c, PRE_COOKIE);
    if (!pre || pre.length !== 43) {
      pre = crypto.randomBytes(32).toString('base64url');
      setCookie(c, PRE_COOKIE, pre, cookieOpts());
    }
    return preToken(pre);
  };
  const preCsrfOk = async (c: C) => {
    const pre = getCookie(c, PRE_COOKIE);
    const body = await c.req.parseBody({ all: true });
    return !!pre && safeEqual(str(body, '_csrf'), preToken(pre));
  };

  const forbidden = (c: C, detail = 'Your role does not allow this.') =>
    render(c, <MessagePage title="Not allowed" detail={detail} link={{ href: '/dashboard', label: 'Back to the dashboard' }} />, 403);
  const notFoundPage = (c: C) =>
    render(c, <MessagePage title="Not found" detail="There is nothing here, or it belongs to another merchant." link={{ href: '/dashboard', label: 'Back to the dashboard' }} />, 404);
  const ctxOf = (c: C, extra: Partial<PageCtx> = {}): PageCtx => {
    const done = c.req.query('done');
    return { session: c.get('session'), path: c.req.path.replace(/\/+$/, '') || '/dashboard', notice: done ? NOTICES[done] : undefined, ...extra };
  };
  const actor = (c: C) => `user:${c.get('session').user.id}`;
  const mid = (c: C) => c.get('session').merchant.id;

  /** The one role check: every page and action below goes through it. */
  const requirePermission = (permission: Permission): MiddlewareHandler<DashEnv> => async (c, next) => {
    if (!can(c.get('session').user.role, permission)) {
      c.get('log')?.warn({ user_id: c.get('session').user.id, permission, path: c.req.path }, 'dashboard permission denied');
      return forbidden(c);
    }
    await next();
  };

  /** Where to send the user back after re-authenticating: the page holding the form of `path`. */
  const pageOf = (path: string): string => {
    if (path.startsWith('/dashboard/account')) return '/dashboard/account';
    const inv = /^\/dashboard\/invoices\/(inv_[0-9A-Za-z]{1,64})\//.exec(path);
    if (inv) return `/dashboard/invoices/${inv[1]}`;
    const m = /^\/dashboard\/settings\/(keys|users|webhooks)(\/|$)/.exec(path);
    return m ? `/dashboard/settings/${m[1]}` : '/dashboard/settings';
  };
  const safeNext = (next: string): string => (/^\/dashboard(\/[a-z0-9-]+)*$/.test(next) || /^\/dashboard\/invoices\/inv_[0-9A-Za-z]{1,64}$/.test(next) ? next : '/dashboard');

  /**
   * Sensitive actions (security and money settings) need a sign-in or re-authentication within
   * `limits.reauthMs` (5 min); otherwise the confirmation page asks for the password (and second
   * factor) and nothing is changed.
   */
  const requireRecentAuth: MiddlewareHandler<DashEnv> = async (c, next) => {
    const s = c.get('session');
    if (!auth.recentlyAuthenticated(s)) {
      c.get('log')?.info({ user_id: s.user.id, path: c.req.path }, 'dashboard re-authentication required');
      return render(c, <ReauthPage ctx={ctxOf(c)} next={pageOf(c.req.path)} totp={s.user.totpEnabled} minutes={Math.round(auth.limits.reauthMs / 60_000)} />, 401);
    }
    await next();
  };

  d.onError((err, c) => {
    if (isKassaError(err) && err.status === 404) return notFoundPage(c as C);
    if (isKassaError(err) && err.status < 500) {
      return render(c, <MessagePage title="That did not work" detail={err.message} link={{ href: '/dashboard', label: 'Back to the dashboard' }} />, err.status as 400);
    }
    c.get('log')?.error({ err: (err as Error).message, path: c.req.path }, 'dashboard error');
    return render(c, <MessagePage title="Something went wrong" detail="The error was logged. Try again." />, 500);
  });

  d.use('*', async (c, next) => {
    await next();
    const h = c.res.headers;
    h.set('Content-Security-Policy', c.get('csp') ?? DASHBOARD_CSP);
    h.set('X-Content-Type-Options', 'nosniff');
    h.set('Referrer-Policy', 'no-referrer');
    h.set('X-Frame-Options', 'DENY');
    h.set('Cross-Origin-Opener-Policy', 'same-origin');
    h.set('Cross-Origin-Resource-Policy', 'same-origin');
    h.set('Permissions-Policy', 'camera=(), microphone=(), geolocation=(), payment=()');
    if (!h.has('Cache-Control')) h.set('Cache-Control', 'no-store');
  });

  // NUL bytes and unpaired surrogates (the one check of src/api/middleware/hostile-input.ts): the
  // sign-in form is shown again with the message, any other request gets a page naming the field.
  d.use('*', async (c, next) => {
    const field = await findHostileInput(c);
    if (field === null) return next();
    const message = `The field "${field}" contains a character that is not allowed (a NUL byte or an unpaired UTF-16 surrogate).`;
    if (c.req.path === '/dashboard/login' && c.req.method === 'POST') return render(c, <LoginPage csrf={preCsrf(c)} error={message} />, 400);
    return render(c, <MessagePage title="That did not work" detail={message} link={{ href: '/dashboard', label: 'Back to the dashboard' }} />, 400);
  });

  d.get('/static/dashboard.css', (c) => c.body(DASHBOARD_CSS, 200, { 'Content-Type': 'text/css; charset=utf-8', 'Cache-Control': staticCacheControl(c.req.query('v'), DASHBOARD_ASSET_VERSION) }));
  d.get('/static/refund-wallet.js', (c) => c.body(DASHBOARD_WALLET_JS, 200, { 'Content-Type': 'text/javascript; charset=utf-8', 'Cache-Control': staticCacheControl(c.req.query('v'), DASHBOARD_ASSET_VERSION) }));

  /* ---------- sign-in, second factor, setup (no session yet) ---------- */

  d.get('/login', async (c) => {
    const done = c.req.query('done');
    return render(c, <LoginPage csrf={preCsrf(c)} notice={done ? NOTICES[done] : undefined} />);
  });

  d.post('/login', async (c) => {
    if (!(await preCsrfOk(c))) return forbidden(c, 'The form expired or was not sent from this site. Reload the sign-in page and try again.');
    const body = await c.req.parseBody({ all: true });
    const email = str(body, 'email').slice(0, 254);
    const result = await auth.login(email, str(body, 'password').slice(0, 1024), clientIp(c), c.req.header('user-agent'));
    if (result.kind === 'refused') return render(c, <LoginPage csrf={preCsrf(c)} error={result.message} email={email} />, result.status);
    if (result.kind === 'choose') {
      setCookie(c, CHOICE_COOKIE, result.choiceId, cookieOpts());
      return c.redirect('/dashboard/login/choose', 303);
    }
    setCookie(c, SESSION_COOKIE, result.sessionId, cookieOpts());
    return c.redirect(result.kind === 'mfa' ? '/dashboard/login/2fa' : '/dashboard', 303);
  });

  d.get('/login/choose', async (c) => {
    const choice = await auth.loadChoice(getCookie(c, CHOICE_COOKIE));
    if (!choice) return c.redirect('/dashboard/login', 303);
    return render(c, <ChooseAccountPage choice={choice} />);
  });

  d.post('/login/choose', async (c) => {
    const raw = getCookie(c, CHOICE_COOKIE);
    const choice = await auth.loadChoice(raw);
    if (!raw || !choice) return c.redirect('/dashboard/login', 303);
    const body = await c.req.parseBody({ all: true });
    if (!safeEqual(str(body, '_csrf'), choice.csrf)) return forbidden(c, 'The form expired. Sign in again.');
    const result = await auth.chooseAccount(raw, str(body, 'account').slice(0, 100), clientIp(c), c.req.header('user-agent'));
    if (!result) return render(c, <ChooseAccountPage choice={choice} error="Choose one of the shops listed." />, 400);
    deleteCookie(c, CHOICE_COOKIE, { path: COOKIE_PATH });
    if (result.kind === 'refused') return render(c, <LoginPage csrf={preCsrf(c)} error={result.message} />, result.status);
    setCookie(c, SESSION_COOKIE, result.sessionId, cookieOpts());
    return c.redirect(result.kind === 'mfa' ? '/dashboard/login/2fa' : '/dashboard', 303);
  });

  const pendingSession = async (c: C) => {
    const s = await auth.loadSession(getCookie(c, SESSION_COOKIE));
    return s?.mfaPending ? s : null;
  };

  d.get('/login/2fa', async (c) => {
    const s = await pendingSession(c);
    if (!s) return c.redirect('/dashboard/login', 303);
    return render(c, <SecondFactorPage csrf={s.csrf} />);
  });

  d.post('/login/2fa', async (c) => {
    const s = await pendingSession(c);
    if (!s) return c.redirect('/dashboard/login', 303);
    const body = await c.req.parseBody({ all: true });
    if (!safeEqual(str(body, '_csrf'), s.csrf)) return forbidden(c, 'The form expired. Sign in again.');
    const result = await auth.secondFactor(s, str(body, 'code').slice(0, 40), clientIp(c), c.req.header('user-agent'));
    if (result.kind === 'refused') {
      if (result.status === 429) {
        deleteCookie(c, SESSION_COOKIE, { path: COOKIE_PATH });
        return render(c, <LoginPage csrf={preCsrf(c)} error={result.message} />, 429);
      }
      return render(c, <SecondFactorPage csrf={s.csrf} error={result.message} />, 401);
    }
    setCookie(c, SESSION_COOKIE, result.sessionId, cookieOpts());
    return c.redirect('/dashboard', 303);
  });

  d.get('/setup/:token', async (c) => {
    const user = await auth.setupUser(c.req.param('token'));
    if (!user) return render(c, <MessagePage title="Link not valid" detail="This setup link is invalid, used or expired. Ask an owner of your merchant for a new one." />, 404);
    return render(c, <SetupPage csrf={preCsrf(c)} email={user.email} action={`/dashboard/setup/${c.req.param('token')}`} />);
  });

  d.post('/setup/:token', async (c) => {
    const raw = c.req.param('token');
    const user = await auth.setupUser(raw);
    if (!user) return render(c, <MessagePage title="Link not valid" detail="This setup link is invalid, used or expired. Ask an owner of your merchant for a new one." />, 404);
    if (!(await preCsrfOk(c))) return forbidden(c, 'The form expired. Reload the page and try again.');
    const body = await c.req.parseBody({ all: true });
    const password = str(body, 'password');
    const again = (error: string) => render(c, <SetupPage csrf={preCsrf(c)} email={user.email} action={`/dashboard/setup/${raw}`} error={error} />, 400);
    if (password !== str(body, 'confirm')) return again('The two passwords differ.');
    try {
      await auth.completeSetup(raw, password, clientIp(c));
    } catch (err) {
      if (isKassaError(err) && err.status === 400) return again(err.message);
      throw err;
    }
    return c.redirect('/dashboard/login?done=password_set', 303);
  });

  /* ---------- everything else needs a session ---------- */

  d.use('*', async (c, next) => {
    const session = await auth.loadSession(getCookie(c, SESSION_COOKIE));
    if (!session || session.mfaPending) {
      if (c.req.method === 'GET' || c.req.method === 'HEAD') return c.redirect(session ? '/dashboard/login/2fa' : '/dashboard/login', 303);
      return render(c, <MessagePage title="Signed out" detail="Your session ended. Sign in again." link={{ href: '/dashboard/login', label: 'Sign in' }} />, 401);
    }
    c.set('session', session);
    // CSRF: every state-changing request carries the session's synchronizer token.
    if (c.req.method !== 'GET' && c.req.method !== 'HEAD') {
      const body = await c.req.parseBody({ all: true });
      if (!safeEqual(str(body, '_csrf'), session.csrf)) {
        c.get('log')?.warn({ user_id: session.user.id, path: c.req.path }, 'dashboard CSRF token missing or wrong');
        return forbidden(c, 'The form was not sent from this dashboard (CSRF check failed). Reload the page and try again.');
      }
    }
    // An owner of a merchant that requires 2FA must enrol before anything else.
    const path = c.req.path;
    if (session.user.role === 'owner' && session.merchant.requireOwner2fa && !session.user.totpEnabled
        && !path.startsWith('/dashboard/account') && path !== '/dashboard/logout') {
      return c.redirect('/dashboard/account', 303);
    }
    await next();
  });

  d.post('/reauth', async (c) => {
    const body = await c.req.parseBody({ all: true });
    const s = c.get('session');
    const next = safeNext(str(body, 'next'));
    const r = await auth.reauthenticate(s, str(body, 'password').slice(0, 1024), str(body, 'code').slice(0, 40), clientIp(c));
    if (!r.ok) {
      return render(c, <ReauthPage ctx={ctxOf(c, { error: r.message })} next={next} totp={s.user.totpEnabled} minutes={Math.round(auth.limits.reauthMs / 60_000)} />, r.status);
    }
    return c.redirect(`${next}?done=reauthenticated`, 303);
  });

  d.post('/logout', async (c) => {
    await auth.logout(c.get('session'), clientIp(c));
    deleteCookie(c, SESSION_COOKIE, { path: COOKIE_PATH });
    return c.redirect('/dashboard/login?done=signed_out', 303);
  });

  /* ---------- overview ---------- */

  d.get('/', requirePermission('invoices:read'), async (c) => {
    const days = [7, 30, 90].includes(Number(c.req.query('days'))) ? Number(c.req.query('days')) : 30;
    const ov = await overview(deps.sql, deps.assets, mid(c), days);
    return render(c, <OverviewPage ctx={ctxOf(c)} ov={ov} days={days} />);
  });

  /* ---------- invoices ---------- */

  const explorerUrl = (chain: string, txid: string): string | null => {
    const tpl = deps.config.chains[chain]?.explorer_tx_url;
    if (!tpl || !/^[0-9a-fA-Fx]+$/.test(txid)) return null;
    return tpl.replace('{txid}', encodeURIComponent(txid));
  };
  const decimalsOf = (m: string) => deps.assets.method(m)?.decimals ?? 0;
  const toDashboardPayment = (p: PaymentView): DashboardPayment => ({ ...presentPayment(p, decimalsOf), explorer_url: explorerUrl(p.chain, p.txid) });
  // Every payment method of the deployment, in the chains file's order (the asset registry's list).
  const allMethods = () => deps.assets.methods().map((a) => a.method);

  d.get('/invoices', requirePermission('invoices:read'), async (c) => {
    const q = c.req.query();
    const f: InvoiceSearch & { fromText?: string; toText?: string } = {
      q: q.q?.slice(0, 200) || undefined,
      status: (INVOICE_STATUSES as readonly string[]).includes(q.status ?? '') ? q.status : undefined,
      exception: ['any', 'none', ...INVOICE_EXCEPTIONS].includes(q.exception ?? '') ? q.exception : undefined,
      method: allMethods().includes(q.method ?? '') ? q.method : undefined,
    };
    const from = parseDateInput(q.from);
    const to = parseDateInput(q.to);
    if ((q.from && !from) || (q.to && !to)) {
      return render(c, <InvoicesPage ctx={ctxOf(c, { error: DATE_RANGE_TEXT })} f={f} methods={allMethods()} rows={[]} hasNext={false} hasPrev={false} />, 400);
    }
    if (from) {
      f.from = from;
      f.fromText = q.from!;
    }
    if (to) {
      // A date "to" includes that whole day.
      f.to = /^\d{4}-\d{2}-\d{2}$/.test(q.to!) ? new Date(to.getTime() + 86_400_000) : to;
      f.toText = q.to!;
    }
    const result = await searchInvoices(deps.sql, mid(c), f, { limit: 25, after: q.after, before: q.before });
    return render(c, <InvoicesPage ctx={ctxOf(c)} f={f} methods={allMethods()} rows={result.rows} hasNext={result.hasNext} hasPrev={result.hasPrev} />);
  });

  /** The refunds part of an invoice page (refunds-section.tsx). */
  async function refundsView(merchantId: string, invoiceId: string, payments: PaymentView[]): Promise<RefundsView> {
    const { data } = await refunds.list(merchantId, { invoiceId }, { limit: 100 });
    const actors = await refundActors(deps.sql, merchantId, data.map((r) => r.id));
    const actor = (id: string, action: 'created' | 'approved') => {
      const a = actors.find((x) => x.refund_id === id && x.action === action);
      return a ? { id: a.user_id, email: a.email } : null;
    };
    const list: DashboardRefund[] = [];
    for (const r of data) {
      let wallet: DashboardRefund['wallet'] = null;
      if (r.status === 'awaiting_signature' && r.evm?.transaction) {
        const cfg = deps.config.chains[r.chain];
        const network = cfg ? chainFamily(cfg).walletNetwork(r.chain) : null;
        if (network) wallet = { network, qr: r.evm.link ? await qrDataUri(r.evm.link) : null };
      }
      list.push({ ...r, created_by: actor(r.id, 'created'), approved_by: actor(r.id, 'approved'), explorer_url: r.txid ? explorerUrl(r.chain, r.txid) : null, wallet });
    }
    const paidMethods = [...new Map(payments.filter((p) => p.status === 'confirmed').map((p) => [p.method, { method: p.method, asset: p.asset }])).values()];
    return { refunds: list, paidMethods, singlePerson: await refundSinglePerson(deps.sql, merchantId) };
  }

  async function invoiceDetail(c: C, extra: Partial<PageCtx> = {}, status: 200 | PageStatus = 200) {
    const merchantId = mid(c);
    const inv = await deps.invoices.get(merchantId, c.req.param('id')!); // 404 for another merchant's id
    const { data } = await listPayments(deps.sql, merchantId, { invoiceId: inv.id }, null);
    const events = await invoiceEvents(deps.sql, merchantId, inv.id);
    const deliveries = webhooks ? await deliveriesOf(deps.sql, merchantId, events.map((e) => e.id)) : null;
    const view = await refundsView(merchantId, inv.id, data);
    const res = await render(c, <InvoiceDetailPage ctx={ctxOf(c, extra)} inv={inv} payments={data.reverse().map(toDashboardPayment)} events={events} deliveries={deliveries} refunds={view} />, status);
    // Only this page, and only while it shows the wallet button, loads a script (same origin, no inline code).
    if (view.refunds.some((r) => r.wallet !== null) && can(c.get('session').user.role, 'refunds:sign')) c.set('csp', DASHBOARD_WALLET_CSP);
    return res;
  }

  d.get('/invoices/:id', requirePermission('invoices:read'), (c) => invoiceDetail(c));

  d.post('/invoices/:id/mark', requirePermission('invoices:mark'), async (c) => {
    const body = await c.req.parseBody({ all: true });
    const status = str(body, 'status');
    const reason = str(body, 'reason').trim();
    if (status !== 'settled' && status !== 'invalid') return invoiceDetail(c, { error: 'Choose settled or invalid.' }, 400);
    if (reason.length === 0) return invoiceDetail(c, { error: 'A reason is required to mark an invoice.' }, 400);
    if (reason.length > 500) return invoiceDetail(c, { error: 'The reason is too long (500 characters at most).' }, 400);
    const id = c.req.param('id');
    try {
      // The same service as POST /v1/invoices/:id/mark: state, ledger entries and the event, and
      // the audit row in the same transaction (a repeated identical mark changes nothing and is
      // not audited again).
      await deps.invoices.mark(mid(c), id, status, actor(c), reason, (tx) =>
        audit(tx, { merchantId: mid(c), actor: actor(c), action: 'invoice.marked', target: `invoice:${id}`, details: { status, reason }, ip: clientIp(c) }));
    } catch (err) {
      if (isKassaError(err) && err.status === 409) return invoiceDetail(c, { error: err.message }, 409);
      throw err;
    }
    return c.redirect(`/dashboard/invoices/${id}?done=marked`, 303);
  });

  /* ---------- refunds of an invoice (docs/refunds.md, "In the dashboard") ---------- */

  /** A refund of the invoice in the path, of the session's merchant (404 otherwise). */
  const refundOf = async (c: C) => {
    const r = await refunds.get(mid(c), c.req.param('refundId')!);
    if (r.invoice_id !== c.req.param('id')) return null;
    return r;
  };
  /** Runs a refund action; a refusal of the service (4xx) shows the invoice page with its message and field. */
  const refundAction = async (c: C, run: () => Promise<unknown>, done: string) => {
    try {
      await run();
    } catch (err) {
      if (isKassaError(err) && err.status < 500 && err.status !== 404) {
        return invoiceDetail(c, { error: err.param ? `${err.message} (field: ${err.param})` : err.message }, pageStatus(err.status));
      }
      throw err;
    }
    return c.redirect(`/dashboard/invoices/${c.req.param('id')}?done=${done}#refunds`, 303);
  };

  d.post('/invoices/:id/refunds', requirePermission('refunds:create'), async (c) => {
    const body = await c.req.parseBody({ all: true });
    const kind = str(body, 'amount_kind');
    if (kind !== 'full' && kind !== 'overpaid' && kind !== 'decimal') return invoiceDetail(c, { error: 'Choose the amount: everything received, the overpaid part, or an amount.' }, 400);
    const basis = str(body, 'rate_basis') || 'rate_then';
    if (basis !== 'rate_then' && basis !== 'current' && basis !== 'fixed') return invoiceDetail(c, { error: 'Choose the rate basis.' }, 400);
    const reason = str(body, 'reason').trim();
    if (reason.length > 500) return invoiceDetail(c, { error: 'The reason is too long (500 characters at most).' }, 400);
    const opt = (name: string) => str(body, name).trim() || undefined;
    const input: CreateRefundInput = {
      amount: kind === 'decimal' ? str(body, 'amount').trim() : kind,
      amount_currency: kind === 'decimal' ? opt('amount_currency') : undefined,
      method: opt('method'),
      rate_basis: basis,
      rate: basis === 'fixed' ? str(body, 'rate').trim() : undefined,
      fee: opt('fee'),
      reason: reason || undefined,
    };
    const invoiceId = c.req.param('id');
    return refundAction(c, async () => {
      const r = await refunds.create(mid(c), invoiceId, input);
      await deps.sql`insert into refund_dashboard_actions (refund_id, merchant_id, action, user_id) values (${r.id}, ${mid(c)}, 'created', ${c.get('session').user.id})`;
      await audit(deps.sql, { merchantId: mid(c), actor: actor(c), action: 'refund.created', target: `refund:${r.id}`, details: { invoice_id: invoiceId, method: r.method, amount: r.amount, asset: r.asset, requested: r.requested, rate_basis: r.rate_basis, fee: r.fee }, ip: clientIp(c) });
    }, 'refund_created');
  });

  // Approving is a money action: a recent sign-in or re-authentication, and (unless the merchant
  // allows one person to do both) not the user who created the refund.
  d.post('/invoices/:id/refunds/:refundId/approve', requirePermission('refunds:approve'), requireRecentAuth, async (c) => {
    const r = await refundOf(c);
    if (!r) return notFoundPage(c);
    const me = c.get('session').user.id;
    const [creator] = await deps.sql<{ user_id: string }[]>`select user_id from refund_dashboard_actions where refund_id = ${r.id} and action = 'created'`;
    if (creator?.user_id === me && !(await refundSinglePerson(deps.sql, mid(c)))) {
      return forbidden(c, 'You created this refund, so another owner must approve it. An owner can allow one person to do both in Settings → Refunds.');
    }
    const body = await c.req.parseBody({ all: true });
    const feeRate = str(body, 'fee_rate').trim();
    return refundAction(c, async () => {
      const approved = await refunds.approve(mid(c), r.id, feeRate ? { fee_rate: feeRate } : {});
      await deps.sql`insert into refund_dashboard_actions (refund_id, merchant_id, action, user_id) values (${r.id}, ${mid(c)}, 'approved', ${me}) on conflict do nothing`;
      await audit(deps.sql, { merchantId: mid(c), actor: actor(c), action: 'refund.approved', target: `refund:${r.id}`, details: { invoice_id: r.invoice_id, amount: approved.amount, asset: approved.asset, destination: approved.destination }, ip: clientIp(c) });
    }, 'refund_approved');
  });

  d.post('/invoices/:id/refunds/:refundId/cancel', requirePermission('refunds:create'), async (c) => {
    const r = await refundOf(c);
    if (!r) return notFoundPage(c);
    return refundAction(c, async () => {
      await refunds.cancel(mid(c), r.id);
      await audit(deps.sql, { merchantId: mid(c), actor: actor(c), action: 'refund.cancelled', target: `refund:${r.id}`, details: { invoice_id: r.invoice_id, was: r.status }, ip: clientIp(c) });
    }, 'refund_cancelled');
  });

  // The hash the browser wallet (or any wallet) sent: Kassa checks it on chain before recording it.
  d.post('/invoices/:id/refunds/:refundId/transaction', requirePermission('refunds:sign'), async (c) => {
    const r = await refundOf(c);
    if (!r) return notFoundPage(c);
    const body = await c.req.parseBody({ all: true });
    const txid = str(body, 'txid').trim();
    return refundAction(c, async () => {
      const sent = await refunds.submitTransaction(mid(c), r.id, txid);
      await audit(deps.sql, { merchantId: mid(c), actor: actor(c), action: 'refund.transaction_reported', target: `refund:${r.id}`, details: { invoice_id: r.invoice_id, txid: sent.txid, sender: sent.evm?.sender ?? null }, ip: clientIp(c) });
    }, 'refund_sent');
  });

  // The unsigned PSBT as a binary .psbt file (what Sparrow, Electrum and hardware wallets open).
  d.get('/invoices/:id/refunds/:refundId/psbt', requirePermission('refunds:sign'), async (c) => {
    const r = await refundOf(c);
    if (!r?.bitcoin?.psbt) return notFoundPage(c);
    return c.body(new Uint8Array(Buffer.from(r.bitcoin.psbt, 'base64')), 200, {
      'Content-Type': 'application/octet-stream',
      'Content-Disposition': `attachment; filename="kassa-${r.id}-unsigned.psbt"`,
    });
  });

  // The signed PSBT: a file (binary, or base64 text) or pasted base64.
  d.post('/invoices/:id/refunds/:refundId/signed_psbt', requirePermission('refunds:sign'), async (c) => {
    const r = await refundOf(c);
    if (!r) return notFoundPage(c);
    const body = await c.req.parseBody({ all: true });
    const file = body.psbt_file;
    let psbt = str(body, 'psbt').replace(/\s+/g, '');
    if (file instanceof File && file.size > 0) {
      if (file.size > 300_000) return invoiceDetail(c, { error: 'This file is too large for a PSBT.' }, 400);
      const bytes = Buffer.from(await file.arrayBuffer());
      // A binary PSBT starts with the magic "psbt\xff"; otherwise the file holds the base64 text.
      psbt = bytes.subarray(0, 5).equals(Buffer.from('psbt\xff', 'latin1')) ? bytes.toString('base64') : bytes.toString('utf8').replace(/\s+/g, '');
    }
    if (!psbt) return invoiceDetail(c, { error: 'Choose the signed PSBT file, or paste it.' }, 400);
    return refundAction(c, async () => {
      const sent = await refunds.submitSignedPsbt(mid(c), r.id, psbt);
      await audit(deps.sql, { merchantId: mid(c), actor: actor(c), action: 'refund.psbt_uploaded', target: `refund:${r.id}`, details: { invoice_id: r.invoice_id, txid: sent.txid }, ip: clientIp(c) });
    }, 'refund_sent');
  });

  d.post('/events/:id/redeliver', requirePermission('webhooks:manage'), async (c) => {
    if (!webhooks) return notFoundPage(c);
    const body = await c.req.parseBody({ all: true });
    const id = c.req.param('id');
    await webhooks.redeliver(mid(c), id); // 404 for another merchant's event
    await audit(deps.sql, { merchantId: mid(c), actor: actor(c), action: 'webhook.redelivered', target: `event:${id}`, ip: clientIp(c) });
    const inv = str(body, 'invoice');
    return c.redirect(/^inv_[0-9A-Za-z]{1,64}$/.test(inv) ? `/dashboard/invoices/${inv}?done=redelivered` : '/dashboard?done=redelivered', 303);
  });

  /* ---------- payments ---------- */

  d.get('/payments', requirePermission('invoices:read'), async (c) => {
    const merchantId = mid(c);
    const seqOf = async (id: string | undefined) => (id ? paymentSeq(deps.sql, merchantId, id) : undefined);
    const afterSeq = await seqOf(c.req.query('after'));
    const beforeSeq = afterSeq === undefined ? await seqOf(c.req.query('before')) : undefined;
    const { data, hasMore } = await listPayments(deps.sql, merchantId, {}, {
      limit: 50, ...(afterSeq !== undefined ? { afterSeq } : {}), ...(beforeSeq !== undefined ? { beforeSeq } : {}),
    });
    return render(c, (
      <PaymentsPage ctx={ctxOf(c)} payments={data.map(toDashboardPayment)}
        hasNext={beforeSeq !== undefined ? true : hasMore} hasPrev={beforeSeq !== undefined ? hasMore : afterSeq !== undefined} />
    ));
  });

  /* ---------- reconciliation ---------- */

  function period(c: C): { from: Date; to: Date; fromText: string; toText: string } | { error: string; fromText: string; toText: string } {
    const now = new Date();
    const fromText = c.req.query('from') ?? new Date(Date.UTC(now.getUTCFullYear(), now.getUTCMonth(), 1)).toISOString().slice(0, 10);
    const toText = c.req.query('to') ?? new Date(Date.UTC(now.getUTCFullYear(), now.getUTCMonth() + 1, 1)).toISOString().slice(0, 10);
    const from = parseDateInput(fromText);
    const to = parseDateInput(toText);
    if (!from || !to) return { error: DATE_RANGE_TEXT, fromText, toText };
    if (!(from < to)) return { error: '"To" must be later than "from".', fromText, toText };
    if (to.getTime() - from.getTime() > REPORT_MAX_DAYS * 86_400_000) return { error: `A report covers at most ${REPORT_MAX_DAYS} days.`, fromText, toText };
    return { from, to, fromText, toText };
  }

  d.get('/reconciliation', requirePermission('reports:read'), async (c) => {
    const p = period(c);
    if ('error' in p) return render(c, <ReconciliationPage ctx={ctxOf(c, { error: p.error })} fromText={p.fromText} toText={p.toText} report={null} />, 400);
    const report = await reconciliationReport(deps.sql, deps.assets, mid(c), p.from, p.to);
    return render(c, <ReconciliationPage ctx={ctxOf(c)} fromText={p.fromText} toText={p.toText} report={report} />);
  });

  d.get('/reconciliation.csv', requirePermission('reports:export'), async (c) => {
    const p = period(c);
    if ('error' in p) return render(c, <ReconciliationPage ctx={ctxOf(c, { error: p.error })} fromText={p.fromText} toText={p.toText} report={null} />, 400);
    const report = await reconciliationReport(deps.sql, deps.assets, mid(c), p.from, p.to);
    await audit(deps.sql, { merchantId: mid(c), actor: actor(c), action: 'report.exported', details: { from: report.from, to: report.to, format: 'csv' }, ip: clientIp(c) });
    return c.body(reconciliationCsv(report), 200, {
      'Content-Type': 'text/csv; charset=utf-8',
      'Content-Disposition': `attachment; filename="kassa-reconciliation-${p.fromText.slice(0, 10)}-${p.toText.slice(0, 10)}.csv"`,
    });
  });

  /* ---------- settings ---------- */

  async function settingsPage(c: C, extra: Partial<PageCtx> = {}, status: 200 | 400 = 200) {
    const merchantId = mid(c);
    const merchant = { ...(await deps.merchants.get(deps.sql, merchantId)), requireOwner2fa: c.get('session').merchant.requireOwner2fa };
    const bitcoin = await getBitcoinPaymentMethod(deps.sql, deps.config, merchantId);
    const evmChains = Object.entries(deps.config.chains).filter(([, cfg]) => isEvmChain(cfg)).map(([k]) => k);
    const evm = [];
    for (const chain of evmChains) {
      const m = await getEvmPaymentMethod(deps.sql, merchantId, chain);
      if (m) evm.push({ ...m, network: deps.config.chains[chain]!.network });
    }
    return render(c, <SettingsPage ctx={ctxOf(c, extra)} merchant={merchant} bitcoin={bitcoin} evm={evm} evmChains={evmChains} refundSinglePerson={await refundSinglePerson(deps.sql, merchantId)} />, status);
  }

  d.get('/settings', requirePermission('settings:read'), (c) => settingsPage(c));

  d.post('/settings', requirePermission('settings:write'), requireRecentAuth, async (c) => {
    const body = await c.req.parseBody({ all: true });
    const minutes = Number(str(body, 'expiry_minutes'));
    if (!Number.isInteger(minutes) || minutes < 1 || minutes > 10080) return settingsPage(c, { error: 'Expiry must be a whole number of minutes from 1 to 10080 (7 days).' }, 400);
    let bps: bigint;
    try {
      bps = parseAmount(str(body, 'tolerance_percent').trim(), 2, { param: 'tolerance_percent', unit: '%' });
    } catch {
      return settingsPage(c, { error: 'Tolerance must be a percentage with at most two decimals, e.g. 0.5.' }, 400);
    }
    if (bps < 0n || bps > 5000n) return settingsPage(c, { error: 'Tolerance must be between 0 and 50 %.' }, 400);
    const speed = str(body, 'speed_policy');
    if (!(SPEED_POLICIES as readonly string[]).includes(speed)) return settingsPage(c, { error: 'Choose a speed policy.' }, 400);
    const patch = { defaultExpirySeconds: minutes * 60, paymentToleranceBps: Number(bps), defaultSpeedPolicy: speed as SpeedPolicy };
    await deps.merchants.update(deps.sql, mid(c), patch);
    await audit(deps.sql, { merchantId: mid(c), actor: actor(c), action: 'settings.updated', details: { default_expiry_seconds: patch.defaultExpirySeconds, payment_tolerance_bps: patch.paymentToleranceBps, default_speed_policy: speed }, ip: clientIp(c) });
    return c.redirect('/dashboard/settings?done=settings_saved', 303);
  });

  d.post('/settings/require-2fa', requirePermission('users:manage'), requireRecentAuth, async (c) => {
    const body = await c.req.parseBody({ all: true });
    await auth.setRequireOwner2fa(mid(c), str(body, 'value') === 'on', actor(c), clientIp(c));
    return c.redirect('/dashboard/settings?done=2fa_setting', 303);
  });

  d.post('/settings/refunds', requirePermission('refunds:approve'), requireRecentAuth, async (c) => {
    const body = await c.req.parseBody({ all: true });
    const value = str(body, 'value') === 'on';
    await deps.sql`update merchants set refund_single_person = ${value} where id = ${mid(c)}`;
    await audit(deps.sql, { merchantId: mid(c), actor: actor(c), action: 'settings.refund_single_person', details: { refund_single_person: value }, ip: clientIp(c) });
    return c.redirect('/dashboard/settings?done=refund_setting', 303);
  });

  /* API keys */

  const keysPage = async (c: C, created?: Parameters<typeof KeysPage>[0]['created'], extra: Partial<PageCtx> = {}) => {
    const { data } = await deps.apiKeys.list(deps.sql, mid(c), { limit: 100 });
    return render(c, <KeysPage ctx={ctxOf(c, extra)} keys={data} created={created} />, extra.error ? 400 : 200);
  };

  d.get('/settings/keys', requirePermission('keys:manage'), (c) => keysPage(c));

  d.post('/settings/keys', requirePermission('keys:manage'), requireRecentAuth, async (c) => {
    const body = await c.req.parseBody({ all: true });
    const raw = body.scopes;
    const scopes = (Array.isArray(raw) ? raw : raw === undefined ? [] : [raw]).filter((s): s is string => typeof s === 'string');
    if (scopes.length === 0 || !scopes.every(isScope)) return keysPage(c, undefined, { error: 'Choose at least one scope.' });
    const name = str(body, 'name').trim().slice(0, 100);
    const created = await deps.apiKeys.create(deps.sql, { merchantId: mid(c), name, scopes: [...new Set(scopes)] as Scope[] });
    await audit(deps.sql, { merchantId: mid(c), actor: actor(c), action: 'api_key.created', target: `api_key:${created.key.id}`, details: { name, scopes: created.key.scopes, prefix: created.key.prefix }, ip: clientIp(c) });
    return keysPage(c, created, { notice: 'API key created.' });
  });

  d.post('/settings/keys/:id/revoke', requirePermission('keys:manage'), async (c) => {
    const key = await deps.apiKeys.revoke(deps.sql, mid(c), c.req.param('id')); // 404 for another merchant's key
    await audit(deps.sql, { merchantId: mid(c), actor: actor(c), action: 'api_key.revoked', target: `api_key:${key.id}`, details: { prefix: key.prefix }, ip: clientIp(c) });
    return c.redirect('/dashboard/settings/keys?done=key_revoked', 303);
  });

  /* Webhook endpoints */

  const webhooksPage = async (c: C, created?: { url: string; secret: string }, extra: Partial<PageCtx> = {}) => {
    if (!webhooks) return notFoundPage(c);
    const { data } = await webhooks.listEndpoints(mid(c), { limit: 100 });
    return render(c, <WebhooksPage ctx={ctxOf(c, extra)} endpoints={data} created={created} eventTypes={[...webhooks.eventTypes]} />, extra.error ? 400 : 200);
  };

  d.get('/settings/webhooks', requirePermission('webhooks:manage'), (c) => webhooksPage(c));

  d.post('/settings/webhooks', requirePermission('webhooks:manage'), requireRecentAuth, async (c) => {
    if (!webhooks) return notFoundPage(c);
    const body = await c.req.parseBody({ all: true });
    try {
      const { endpoint, secret } = await webhooks.createEndpoint(mid(c), { url: str(body, 'url').trim(), description: str(body, 'description').trim() || null });
      await audit(deps.sql, { merchantId: mid(c), actor: actor(c), action: 'webhook_endpoint.created', target: `webhook_endpoint:${endpoint.id}`, details: { url: endpoint.url }, ip: clientIp(c) });
      return webhooksPage(c, { url: endpoint.url, secret }, { notice: 'Webhook endpoint created.' });
    } catch (err) {
      if (isKassaError(err) && err.status === 400) return webhooksPage(c, undefined, { error: err.message });
      throw err;
    }
  });

  d.post('/settings/webhooks/:id/delete', requirePermission('webhooks:manage'), async (c) => {
    if (!webhooks) return notFoundPage(c);
    const e = await webhooks.deleteEndpoint(mid(c), c.req.param('id'));
    await audit(deps.sql, { merchantId: mid(c), actor: actor(c), action: 'webhook_endpoint.deleted', target: `webhook_endpoint:${e.id}`, details: { url: e.url }, ip: clientIp(c) });
    return c.redirect('/dashboard/settings/webhooks?done=webhook_deleted', 303);
  });

  /* Users (owners) */

  const usersPage = async (c: C, link?: { email: string; url: string; expiresAt: Date }, extra: Partial<PageCtx> = {}, status: 400 | 409 = 400) =>
    render(c, <UsersPage ctx={ctxOf(c, extra)} users={await auth.listUsers(mid(c))} link={link} />, extra.error ? status : 200);

  d.get('/settings/users', requirePermission('users:manage'), (c) => usersPage(c));

  d.post('/settings/users', requirePermission('users:manage'), requireRecentAuth, async (c) => {
    const body = await c.req.parseBody({ all: true });
    try {
      const r = await auth.createUser(mid(c), { email: str(body, 'email'), role: str(body, 'role'), createdBy: actor(c), ip: clientIp(c) });
      return usersPage(c, { email: r.user.email, url: r.setupUrl, expiresAt: r.expiresAt }, { notice: 'User created.' });
    } catch (err) {
      // 409 user_exists: only when THIS merchant has the e-mail (other merchants' users are never looked at).
      if (isKassaError(err) && (err.status === 400 || err.status === 409)) return usersPage(c, undefined, { error: err.message }, err.status);
      throw err;
    }
  });

  d.post('/settings/users/:id/role', requirePermission('users:manage'), requireRecentAuth, async (c) => {
    const body = await c.req.parseBody({ all: true });
    try {
      await auth.setRole(mid(c), c.req.param('id'), str(body, 'role'), actor(c), clientIp(c));
    } catch (err) {
      if (isKassaError(err) && (err.status === 400 || err.status === 409)) return usersPage(c, undefined, { error: err.message });
      throw err;
    }
    return c.redirect('/dashboard/settings/users?done=role_changed', 303);
  });

  d.post('/settings/users/:id/revoke', requirePermission('users:manage'), async (c) => {
    try {
      await auth.revokeUser(mid(c), c.req.param('id'), actor(c), clientIp(c));
    } catch (err) {
      if (isKassaError(err) && err.status === 409) return usersPage(c, undefined, { error: err.message });
      throw err;
    }
    return c.redirect('/dashboard/settings/users?done=user_revoked', 303);
  });

  d.post('/settings/users/:id/sessions/revoke', requirePermission('users:manage'), async (c) => {
    await auth.revokeSessions(mid(c), c.req.param('id'), actor(c), clientIp(c));
    return c.redirect('/dashboard/settings/users?done=sessions_ended', 303);
  });

  d.post('/settings/users/:id/setup-link', requirePermission('users:manage'), requireRecentAuth, async (c) => {
    const r = await auth.reissueSetupLink(mid(c), c.req.param('id'), actor(c), clientIp(c));
    return usersPage(c, { email: r.user.email, url: r.setupUrl, expiresAt: r.expiresAt }, { notice: 'New setup link created; older unused links no longer work.' });
  });

  /* ---------- own account: two-factor ---------- */

  const accountPage = async (c: C, extra: { enrol?: { secret: string; uri: string } | null; codes?: string[]; error?: string } = {}, status: 200 | 400 = 200) => {
    const s = c.get('session');
    const enrol = extra.enrol ?? (s.user.totpEnabled ? null : await auth.pendingTotp(s.user, s.merchant.name));
    return render(c, (
      <AccountPage
        ctx={ctxOf(c, { error: extra.error })}
        enrol={enrol ? { secret: enrol.secret, qr: await qrDataUri(enrol.uri) } : null}
        codes={extra.codes}
        remaining={s.user.totpEnabled ? await auth.remainingRecoveryCodes(s.user.id) : 0}
        required={s.merchant.requireOwner2fa && s.user.role === 'owner'}
      />
    ), status);
  };

  d.get('/account', (c) => accountPage(c));

  d.post('/account/2fa/start', async (c) => {
    if (c.get('session').user.totpEnabled) return c.redirect('/dashboard/account', 303);
    return accountPage(c, { enrol: await auth.startTotp(c.get('session').user, c.get('session').merchant.name) });
  });

  d.post('/account/2fa/confirm', async (c) => {
    const body = await c.req.parseBody({ all: true });
    const s = c.get('session');
    const codes = await auth.confirmTotp(s.user, str(body, 'code'), clientIp(c));
    if (!codes) return accountPage(c, { error: 'That code is not valid. Check the time on your phone and enter the current code.' }, 400);
    c.set('session', { ...s, user: { ...s.user, totpEnabled: true } });
    return accountPage(c, { codes });
  });

  d.post('/account/2fa/disable', requireRecentAuth, async (c) => {
    const s = c.get('session');
    if (s.user.role === 'owner' && s.merchant.requireOwner2fa) return forbidden(c, 'Owners of this merchant must keep two-factor authentication on.');
    await auth.disableTotp(s.user, actor(c), clientIp(c));
    return c.redirect('/dashboard/account?done=2fa_disabled', 303);
  });

  /* ---------- audit log ---------- */

  d.get('/audit', requirePermission('audit:read'), async (c) => {
    const before = /^\d{1,18}$/.test(c.req.query('before') ?? '') ? BigInt(c.req.query('before')!) : undefined;
    const entries = await auth.auditLog(mid(c), { limit: 100, beforeId: before });
    const last = entries[entries.length - 1];
    return render(c, <AuditPage ctx={ctxOf(c)} entries={entries} nextBefore={entries.length === 100 && last ? String(last.id) : null} />);
  });

  d.all('*', (c) => notFoundPage(c));

  app.route('/dashboard', d as unknown as Hono);
  return auth;
}

