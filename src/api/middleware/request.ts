import type { MiddlewareHandler } from 'hono';
import { newId } from '../../ids.ts';
import type { Logger } from '../../logger.ts';
import type { AppEnv } from '../env.ts';

/** Assigns a request id (echoed as `Request-Id`), a child logger, and logs one line per request. */
export function requestContext(logger: Logger): MiddlewareHandler<AppEnv> {
  return async (c, next) => {
    const requestId = newId('req');
    const log = logger.child({ request_id: requestId });
    c.set('requestId', requestId);
    c.set('log', log);
    const started = performance.now();
    await next();
    c.res.headers.set('Request-Id', requestId);
    const auth = c.get('auth');
    log.info(
      {
        method: c.req.method,
        path: c.req.path,
        status: c.res.status,
        duration_ms: Math.round((performance.now() - started) * 10) / 10,
        ...(auth ? { merchant_id: auth.merchant.id, api_key_id: auth.key.id } : {}),
      },
      'request',
    );
  };
}
