/**
 * Response headers and per-client-IP rate limiting for the public checkout surface (`/pay/*` and
 * `/v1/public/*`).
 */
import type { Context, MiddlewareHandler } from 'hono';
import type { Redis } from 'ioredis';
import type { AppEnv } from '../api/env.ts';
import { clientIp } from '../api/client-ip.ts';

/** Strict CSP: only same-origin script/style (no inline code at all), images from self or data: URIs. */
export const CHECKOUT_CSP = [
  "default-src 'none'",
  "script-src 'self'",
  "style-src 'self'",
  "img-src 'self' data:",
  "connect-src 'self'",
  "font-src 'none'",
  "frame-ancestors 'none'",
  "form-action 'none'",
  "base-uri 'none'",
].join('; ');

export function securityHeaders(): MiddlewareHandler<AppEnv> {
  return async (c, next) => {
    await next();
    const h = c.res.headers;
    h.set('Content-Security-Policy', CHECKOUT_CSP);
    h.set('X-Content-Type-Options', 'nosniff');
    h.set('Referrer-Policy', 'no-referrer');
    h.set('X-Frame-Options', 'DENY');
    h.set('Cross-Origin-Opener-Policy', 'same-origin');
    h.set('Cross-Origin-Resource-Policy', 'same-origin');
    h.set('Permissions-Policy', 'camera=(), microphone=(), geolocation=(), payment=()');
  };
}

/** The client's IP (TCP peer, or from X-Forwarded-For of a trusted proxy): src/api/client-ip.ts. */
export { clientIp };

export const DEFAULT_PUBLIC_RATE_LIMIT_PER_MINUTE = 120;

/**
 * Redis fixed one-minute window per client IP, shared by every API process. Fails open (and logs)
 * when Redis is unreachable: a customer must still be able to see the payment page.
 */
export function rateLimitPerIp(opts: {
  redis: Redis;
  prefix: string;
  perMinute: number;
  limited: (c: Context<AppEnv>, retryAfter: number) => Response | Promise<Response>;
}): MiddlewareHandler<AppEnv> {
  return async (c, next) => {
    const ip = clientIp(c);
    const now = Date.now();
    const window = Math.floor(now / 60_000);
    const key = `${opts.prefix}:ratelimit:public:${ip}:${window}`;
    let count = 0;
    try {
      const res = await opts.redis.multi().incr(key).expire(key, 120).exec();
      count = Number(res?.[0]?.[1] ?? 0);
    } catch (err) {
      c.get('log')?.warn({ err: (err as Error).message }, 'public rate limiter unavailable; allowing request');
    }
    if (count > opts.perMinute) {
      const retryAfter = Math.max(1, Math.ceil(((window + 1) * 60_000 - now) / 1000));
      const res = await opts.limited(c, retryAfter);
      res.headers.set('Retry-After', String(retryAfter));
      res.headers.set('RateLimit-Limit', String(opts.perMinute));
      res.headers.set('RateLimit-Remaining', '0');
      return res;
    }
    await next();
    c.res.headers.set('RateLimit-Limit', String(opts.perMinute));
    c.res.headers.set('RateLimit-Remaining', String(Math.max(0, opts.perMinute - count)));
  };
}
