/**
 * The error envelope of docs/architecture.md §4: {"error": {type, code, message, param?, request_id}}.
 * Every failure reaching the client goes through here, including validation, 404 routes,
 * oversized bodies and unexpected exceptions (500 without internals).
 */
import type { Context } from 'hono';
import { HTTPException } from 'hono/http-exception';
import type { ZodError } from 'zod';
import { KassaError, isKassaError } from '../errors.ts';
import { isConnectionLost } from '../process-guards.ts';
import type { AppEnv } from './env.ts';

export interface ErrorBody {
  error: { type: string; code: string; message: string; param?: string; request_id: string };
}

export function errorResponse(c: Context<AppEnv>, err: KassaError): Response {
  const body: ErrorBody = {
    error: {
      type: err.type,
      code: err.code,
      message: err.message,
      ...(err.param ? { param: err.param } : {}),
      request_id: c.get('requestId') ?? 'unknown',
    },
  };
  const res = c.json(body, err.status as 400);
  if (err.headers) for (const [k, v] of Object.entries(err.headers)) res.headers.set(k, v);
  return res;
}

/** Turns the first zod issue into a 400 naming the offending field. */
export function zodToKassaError(error: ZodError, target: string): KassaError {
  const issue = error.issues[0];
  if (!issue) return new KassaError('parameter_invalid', 'The request is invalid.', { status: 400 });
  const path = issue.path.map(String).join('.');
  if (issue.code === 'unrecognized_keys') {
    const key = issue.keys[0]!;
    const param = path ? `${path}.${key}` : key;
    return new KassaError('parameter_unknown', `Unknown field "${param}". Check the API reference for the allowed fields.`, {
      status: 400, param, retryable: false,
    });
  }
  const param = path || (target === 'json' ? 'body' : target);
  if (issue.code === 'invalid_type' && /received undefined/.test(issue.message)) {
    return new KassaError('parameter_missing', `${param} is required.`, { status: 400, param, retryable: false });
  }
  if (path === '' && target === 'json' && issue.code === 'invalid_type') {
    return new KassaError('invalid_json', 'The request body must be a JSON object.', { status: 400, param: 'body', retryable: false });
  }
  const detail = issue.message.replace(/^Invalid input: /, '');
  return new KassaError('parameter_invalid', `${param} is invalid: ${detail}.`, { status: 400, param, retryable: false });
}

export function handleError(err: unknown, c: Context<AppEnv>): Response {
  if (isKassaError(err)) {
    if (err.status >= 500) c.get('log')?.error({ code: err.code, err: err.message }, 'request failed');
    return errorResponse(c, err);
  }
  if (err instanceof HTTPException) {
    const status = err.status;
    if (status === 413) {
      return errorResponse(c, new KassaError('body_too_large', 'The request body is larger than 1 MB.', { status: 413 }));
    }
    if (status === 400) {
      return errorResponse(c, new KassaError('invalid_json', 'The request body is not valid JSON.', { status: 400, param: 'body' }));
    }
    return errorResponse(c, new KassaError('http_error', err.message || 'Request failed.', { status }));
  }
  if (isConnectionLost(err)) {
    // PostgreSQL ended the connection under this request (a restart, a fail-over, pg_terminate_backend):
    // the request can be sent again (a write with its Idempotency-Key); not a 500 (docs/operations.md).
    c.get('log')?.warn({ err: (err as Error).message, code: (err as { code: string }).code }, 'database connection lost during the request');
    return errorResponse(c, new KassaError('database_unavailable', 'The database connection was lost while handling this request. Send it again in a moment (a write with the same Idempotency-Key).', { status: 503, retryable: true, headers: { 'Retry-After': '1' } }));
  }
  c.get('log')?.error({ err: err instanceof Error ? { message: err.message, stack: err.stack } : String(err) }, 'unexpected error');
  return errorResponse(c, new KassaError('internal_error', 'Something went wrong on our side. Retry later; if it persists, contact the operator with the request id.', { status: 500 }));
}
