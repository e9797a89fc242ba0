/**
 * The customer checkout page: `GET /pay/:id` (HTML), `GET /pay/:id/qr?method=` (SVG QR of the
 * method's current wallet URI) and its static script and stylesheet. Public, found by the
 * unguessable invoice id; strict CSP; rate limited per client IP; unknown ids get a friendly
 * HTML 404 page.
 */
import type { OpenAPIHono } from '@hono/zod-openapi';
import type { Context } from 'hono';
import type { Deps } from '../deps.ts';
import type { AppEnv } from '../api/env.ts';
import { isKassaError } from '../errors.ts';
import { MESSAGES, pickLocale, type Locale } from './i18n.ts';
import { loadPublicInvoice, type PublicInvoice } from './public-invoice.ts';
import { CheckoutPage, MessagePage } from './page.tsx';
import { qrDataUri, qrSvg } from './qr.ts';
import { walletNetworks } from './wallet.ts';
import { ASSET_VERSION, CHECKOUT_CSS, CHECKOUT_JS, staticCacheControl } from './assets.ts';
import { DEFAULT_PUBLIC_RATE_LIMIT_PER_MINUTE, rateLimitPerIp, securityHeaders } from './security.ts';

export interface CheckoutRouteOptions {
  /** Requests per client IP per minute over /pay/* and /v1/public/* together (default 120). */
  perMinute?: number;
}

const DOCTYPE = '<!doctype html>';

function localeFor(c: Context, inv?: PublicInvoice): Locale {
  return pickLocale({ query: c.req.query('lang'), invoiceLocale: inv?.locale, acceptLanguage: c.req.header('accept-language') });
}

async function html(c: Context, node: unknown, status: 200 | 404 | 429): Promise<Response> {
  const body = DOCTYPE + String(await (node as { toString(): string | Promise<string> }).toString());
  return c.html(body, status, { 'Cache-Control': 'no-store' });
}

function messagePage(c: Context, kind: 'not_found' | 'rate_limited', status: 404 | 429): Promise<Response> {
  const locale = localeFor(c);
  const t = MESSAGES[locale];
  const title = kind === 'not_found' ? t.not_found_title : t.rate_limited_title;
  const detail = kind === 'not_found' ? t.not_found_detail : t.rate_limited_detail;
  return html(c, <MessagePage locale={locale} t={t} title={title} detail={detail} />, status);
}

async function loadOrNull(deps: Deps, id: string): Promise<PublicInvoice | null> {
  try {
    return await loadPublicInvoice(deps, id);
  } catch (err) {
    if (isKassaError(err) && err.status === 404) return null;
    throw err;
  }
}

export function registerCheckoutRoutes(app: OpenAPIHono<AppEnv>, deps: Deps, opts: CheckoutRouteOptions = {}): void {
  app.use('/pay/*', securityHeaders());
  app.use(
    '/pay/*',
    rateLimitPerIp({
      redis: deps.redis,
      prefix: deps.config.queuePrefix,
      perMinute: opts.perMinute ?? DEFAULT_PUBLIC_RATE_LIMIT_PER_MINUTE,
      limited: (c) => messagePage(c, 'rate_limited', 429),
    }),
  );

  // The page links the assets with ?v=<content hash>: that exact version never changes, so it is
  // cached for a year without revalidation; any other URL (no or an old ?v=) is revalidated.
  const cacheFor = (c: Context) => ({ 'Cache-Control': staticCacheControl(c.req.query('v'), ASSET_VERSION) });
  app.get('/pay/static/checkout.js', (c) => c.body(CHECKOUT_JS, 200, { 'Content-Type': 'text/javascript; charset=utf-8', ...cacheFor(c) }));
  app.get('/pay/static/checkout.css', (c) => c.body(CHECKOUT_CSS, 200, { 'Content-Type': 'text/css; charset=utf-8', ...cacheFor(c) }));

  app.get('/pay/:id', async (c) => {
    const inv = await loadOrNull(deps, c.req.param('id'));
    if (!inv) return messagePage(c, 'not_found', 404);
    const locale = localeFor(c, inv);
    const t = MESSAGES[locale];
    const wanted = c.req.query('method');
    const method = inv.payment_methods.find((m) => m.method === wanted) ?? inv.payment_methods[0];
    const qr = method ? await qrDataUri(method.payment_uri) : null;
    const res = await html(c, <CheckoutPage inv={inv} locale={locale} t={t} method={method} qr={qr} now={new Date(inv.server_time)} networks={walletNetworks(inv, deps.config.chains)} />, 200);
    res.headers.set('Content-Language', locale);
    res.headers.set('Vary', 'Accept-Language');
    return res;
  });

  app.get('/pay/:id/qr', async (c) => {
    const inv = await loadOrNull(deps, c.req.param('id'));
    const method = inv?.payment_methods.find((m) => m.method === c.req.query('method')) ?? inv?.payment_methods[0];
    if (!inv || !method) return messagePage(c, 'not_found', 404);
    return c.body(await qrSvg(method.payment_uri), 200, { 'Content-Type': 'image/svg+xml; charset=utf-8', 'Cache-Control': 'no-cache' });
  });
}
