/**
 * GET /metrics: Prometheus text format from this process's registry (src/metrics). When
 * ADMIN_TOKEN is set it is required (`Authorization: Bearer <token>` or Basic with the token as
 * password); otherwise the endpoint is open and must be kept off the public network (docs/operations.md).
 */
import type { OpenAPIHono } from '@hono/zod-openapi';
import type { Deps } from '../../deps.ts';
import { KassaError } from '../../errors.ts';
import type { AppEnv } from '../env.ts';
import { errorResponse } from '../errors.ts';
import { registerStateMetrics, type KassaMetrics } from '../../metrics/index.ts';
import { ADMIN_CHALLENGE, adminAuthorized } from '../../metrics/auth.ts';

export function registerMetricsRoute(app: OpenAPIHono<AppEnv>, deps: Deps, metrics: KassaMetrics): void {
  registerStateMetrics(metrics, deps);
  const token = deps.config.adminToken;
  app.get('/metrics', async (c) => {
    if (token && !adminAuthorized(c.req.header('authorization'), token)) {
      return errorResponse(c, new KassaError('admin_token_required', 'This endpoint needs the ADMIN_TOKEN (Authorization: Bearer <token>).', {
        status: 401, type: 'authentication_error', headers: { 'WWW-Authenticate': ADMIN_CHALLENGE },
      }));
    }
    try {
      const body = await metrics.registry.metrics();
      return c.body(body, 200, { 'content-type': metrics.registry.contentType, 'cache-control': 'no-store' });
    } catch (err) {
      c.get('log').error({ err: (err as Error).message }, 'metrics scrape failed');
      throw new KassaError('metrics_unavailable', 'Metrics could not be collected.', { status: 503 });
    }
  });
}
