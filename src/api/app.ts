/**
 * createApp(deps): the HTTP API (Hono). Tests call `app.request()`; `kassa serve` wraps it in a
 * Node server. Middleware order: request id + log line → body limit → hostile-string check → API key auth (for /v1/*
 * except /v1/public/*) → per-key rate limit → route validation → handler.
 */
import { OpenAPIHono } from '@hono/zod-openapi';
import type { Deps } from '../deps.ts';
import { KassaError } from '../errors.ts';
import type { AppEnv } from './env.ts';
import { errorResponse, handleError, zodToKassaError } from './errors.ts';
import { requestContext } from './middleware/request.ts';
import { bodyLimit } from './middleware/body-limit.ts';
import { clientIpMiddleware } from './client-ip.ts';
import { requireApiKey } from './middleware/auth.ts';
import { rejectHostileInput } from './middleware/hostile-input.ts';
import { rateLimitPerKey } from './middleware/rate-limit.ts';
import { registerMerchantRoutes } from './routes/merchant.ts';
import { registerApiKeyRoutes } from './routes/api-keys.ts';
import { registerBitcoinPaymentMethodRoutes, registerEvmPaymentMethodRoutes } from './routes/payment-methods.ts';
import { registerInvoiceRoutes } from './routes/invoices.ts';
import { registerPaymentRoutes } from './routes/payments.ts';
import { registerRefundRoutes } from './routes/refunds.ts';
import { registerPayoutRoutes } from './routes/payouts.ts';
import { registerReportRoutes } from './routes/reports.ts';
import { registerWebhookEndpointRoutes } from './routes/webhook-endpoints.ts';
import { registerEventRoutes } from './routes/events.ts';
import { chainHealthChecks, coreHealthChecks, registerHealthRoute, sweeperHealthChecks, type HealthCheck } from './routes/health.ts';
import { DOCS_HTML, DOCS_JS } from './docs-page.ts';
import { registerPublicRoutes } from './routes/public.ts';
import { registerCheckoutRoutes } from '../checkout/routes.tsx';
import { sweeperChains } from '../chains/health.ts';
import { registerDashboardRoutes } from '../dashboard/routes.tsx';
import { metricsFor } from '../metrics/index.ts';
import { httpMetrics } from '../metrics/instrument.ts';
import { registerMetricsRoute } from './routes/metrics.ts';
import { registerAdminRoutes } from './routes/admin.ts';
import { registerOpenApiDocument, trackRouteScopes } from './openapi.ts';
import { compression } from './compression.ts';

export const MAX_BODY_BYTES = 1024 * 1024;

export interface AppOptions {
  /** Extra /health checks (chain watchers add theirs). */
  healthChecks?: HealthCheck[];
}

export function createApp(deps: Deps, opts: AppOptions = {}): OpenAPIHono<AppEnv> {
  const app = new OpenAPIHono<AppEnv>({
    defaultHook: (result) => {
      if (!result.success) throw zodToKassaError(result.error, result.target);
    },
  });
  trackRouteScopes(app);

  app.use('*', compression());
  app.use('*', clientIpMiddleware(deps.config.trustedProxies));
  app.use('*', requestContext(deps.logger));
  app.use('*', httpMetrics(metricsFor(deps)));
  app.use('*', async (c, next) => {
    await next();
    c.res.headers.set('X-Content-Type-Options', 'nosniff');
  });
  app.use(
    '*',
    bodyLimit({
      maxSize: MAX_BODY_BYTES,
      onError: (c) => errorResponse(c, new KassaError('body_too_large', 'The request body is larger than 1 MB.', { status: 413 })),
    }),
  );

  // NUL bytes and unpaired surrogates in any string input → 400 naming the field (the dashboard
  // shows its forms again with a message instead: src/dashboard/routes.tsx).
  app.use('*', rejectHostileInput({ skipPrefix: '/dashboard' }));

  const auth = requireApiKey(deps);
  const limit = rateLimitPerKey({ redis: deps.redis, prefix: deps.config.queuePrefix, perSecond: deps.config.rateLimitPerSecond });
  app.use('/v1/*', async (c, next) => {
    if (c.req.path.startsWith('/v1/public/')) return next();
    return auth(c, async () => {
      await limit(c, next);
    });
  });

  registerMerchantRoutes(app, deps);
  registerApiKeyRoutes(app, deps);
  registerEvmPaymentMethodRoutes(app, deps);
  registerInvoiceRoutes(app, deps);
  registerPaymentRoutes(app, deps);
  registerRefundRoutes(app, deps, { perMinute: deps.config.publicRateLimitPerMinute });
  registerPayoutRoutes(app, deps);
  registerReportRoutes(app, deps);
  registerBitcoinPaymentMethodRoutes(app, deps);
  registerWebhookEndpointRoutes(app, deps);
  registerEventRoutes(app, deps);
  registerPublicRoutes(app, deps, { perMinute: deps.config.publicRateLimitPerMinute });
  registerCheckoutRoutes(app, deps, { perMinute: deps.config.publicRateLimitPerMinute });
  registerDashboardRoutes(app, deps);
  registerHealthRoute(app, [
    ...coreHealthChecks(deps),
    ...chainHealthChecks(deps.redis, deps.config.queuePrefix, Object.keys(deps.config.chains)),
    ...sweeperHealthChecks(deps.redis, deps.config.queuePrefix, sweeperChains(deps.config.chains)),
    ...(opts.healthChecks ?? []),
  ]);
  registerMetricsRoute(app, deps, metricsFor(deps));
  registerAdminRoutes(app, deps);

  registerOpenApiDocument(app, deps);
  app.get('/docs', (c) => c.html(DOCS_HTML));
  app.get('/docs/app.js', (c) => c.body(DOCS_JS, 200, { 'content-type': 'text/javascript; charset=utf-8' }));

  app.notFound((c) =>
    errorResponse(c, new KassaError('route_not_found', `No route ${c.req.method} ${c.req.path}. See /docs for the API reference.`, { status: 404 })),
  );
  app.onError(handleError);
  return app;
}
