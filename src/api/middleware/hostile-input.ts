/**
 * The one check for strings no field may hold: a NUL byte (PostgreSQL text cannot store it) or an
 * unpaired UTF-16 surrogate (not valid Unicode; jsonb refuses it, and UTF-8 cannot encode it).
 * It runs before routing reaches any handler, over everything a request carries as strings: path
 * segments (also a percent-encoding that is not UTF-8), query names and values, JSON bodies (keys and values, at any depth) and form fields.
 * The API answers 400 `parameter_invalid` naming the field; the dashboard uses
 * `findHostileInput` to show the form again with a message.
 */
import type { Context, MiddlewareHandler } from 'hono';
import { KassaError } from '../../errors.ts';

/** True when `s` holds a NUL byte or an unpaired surrogate. */
export function isHostileString(s: string): boolean {
  return s.includes('\u0000') || !(s as string & { isWellFormed(): boolean }).isWellFormed();
}

/** The field of the first hostile string in a parsed JSON value ('' for the value itself), or null. */
function findInValue(v: unknown, path: string, depth = 0): string | null {
  if (typeof v === 'string') return isHostileString(v) ? path : null;
  if (v === null || typeof v !== 'object' || depth > 64) return null;
  if (Array.isArray(v)) {
    for (let i = 0; i < v.length; i++) {
      const f = findInValue(v[i], path ? `${path}.${i}` : String(i), depth + 1);
      if (f !== null) return f;
    }
    return null;
  }
  for (const [k, x] of Object.entries(v)) {
    // A hostile key is named by its object (the key itself cannot be shown).
    if (isHostileString(k)) return path || 'body';
    const f = findInValue(x, path ? `${path}.${k}` : k, depth + 1);
    if (f !== null) return f;
  }
  return null;
}

/** A path segment decoded; null when its percent-encoding is not UTF-8 (e.g. an encoded lone surrogate). */
function decode(segment: string): string | null {
  try {
    return decodeURIComponent(segment);
  } catch {
    return null;
  }
}

/** The name of the path parameter at segment `index` of the matched route, else "path". */
function pathParamName(c: Context, index: number): string {
  let routes: { path: string }[] = [];
  try {
    routes = c.req.matchedRoutes as { path: string }[];
  } catch {
    return 'path';
  }
  for (let i = routes.length - 1; i >= 0; i--) {
    const seg = routes[i]!.path.split('/')[index];
    if (seg?.startsWith(':')) return seg.slice(1).replace(/\{.*$/, '');
  }
  return 'path';
}

/**
 * The field holding a hostile string in this request (path parameter, query name, JSON field path,
 * form field), or null. Reads the body (JSON or form) once; Hono caches it for the handler.
 */
export async function findHostileInput(c: Context): Promise<string | null> {
  const segments = c.req.path.split('/');
  for (let i = 0; i < segments.length; i++) {
    const decoded = decode(segments[i]!);
    if (decoded === null || isHostileString(decoded)) return pathParamName(c, i);
  }
  const url = new URL(c.req.url);
  for (const [k, v] of url.searchParams) {
    if (isHostileString(k) || isHostileString(v)) return isHostileString(k) ? 'query' : k;
  }
  if (c.req.method === 'GET' || c.req.method === 'HEAD') return null;
  const type = (c.req.header('content-type') ?? '').split(';')[0]!.trim().toLowerCase();
  if (type === 'application/json' || type.endsWith('+json')) {
    let body: unknown;
    try {
      body = JSON.parse(await c.req.text());
    } catch {
      return null; // not JSON: the route's validator answers invalid_json
    }
    return findInValue(body, '');
  }
  if (type === 'application/x-www-form-urlencoded' || type === 'multipart/form-data') {
    let form: Record<string, unknown>;
    try {
      form = await c.req.parseBody({ all: true });
    } catch {
      return 'body';
    }
    for (const [k, v] of Object.entries(form)) {
      if (isHostileString(k)) return 'body';
      for (const x of Array.isArray(v) ? v : [v]) if (typeof x === 'string' && isHostileString(x)) return k;
    }
  }
  return null;
}

export function hostileInputError(field: string): KassaError {
  return new KassaError(
    'parameter_invalid',
    `${field} contains a character that is not allowed (a NUL byte or an unpaired UTF-16 surrogate).`,
    { status: 400, param: field, retryable: false },
  );
}

/** 400 for a hostile string anywhere in the request (paths under `skipPrefix` check it themselves). */
export function rejectHostileInput(opts: { skipPrefix?: string } = {}): MiddlewareHandler {
  return async (c, next) => {
    if (opts.skipPrefix && (c.req.path === opts.skipPrefix || c.req.path.startsWith(`${opts.skipPrefix}/`))) return next();
    const field = await findHostileInput(c);
    if (field !== null) throw hostileInputError(field);
    await next();
  };
}
