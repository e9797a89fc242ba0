/**
 * One error base class for the whole code base (docs/architecture.md §8.2).
 *
 * - `code` is a stable machine-readable snake_case string (shown to API clients).
 * - `status` is the HTTP status the API maps it to (when it reaches the API).
 * - `type` is the error envelope type from docs/architecture.md §4.
 * - `retryable` tells workers whether trying again can help; non-retryable errors fail the job.
 * - `param` names the offending request field, when there is one.
 */
export type ErrorType =
  | 'invalid_request_error'
  | 'authentication_error'
  | 'permission_error'
  | 'idempotency_error'
  | 'rate_limit_error'
  | 'api_error';

export interface KassaErrorOptions {
  status?: number;
  type?: ErrorType;
  param?: string;
  retryable?: boolean;
  cause?: unknown;
  /** Extra response headers (e.g. Retry-After). */
  headers?: Record<string, string>;
}

export class KassaError extends Error {
  readonly code: string;
  readonly status: number;
  readonly type: ErrorType;
  readonly param: string | undefined;
  readonly retryable: boolean;
  readonly headers: Record<string, string> | undefined;

  constructor(code: string, message: string, opts: KassaErrorOptions = {}) {
    super(message, opts.cause === undefined ? undefined : { cause: opts.cause });
    this.name = 'KassaError';
    this.code = code;
    this.status = opts.status ?? 500;
    this.type = opts.type ?? (this.status >= 500 ? 'api_error' : 'invalid_request_error');
    this.param = opts.param;
    this.retryable = opts.retryable ?? this.status >= 500;
    this.headers = opts.headers;
  }
}

/** 400: a request field is missing, malformed or not allowed. */
export function invalidParam(param: string, message: string, code = 'parameter_invalid'): KassaError {
  return new KassaError(code, message, { status: 400, param, retryable: false });
}

export function notFound(what: string, id?: string, param?: string): KassaError {
  const message = id ? `No such ${what}: '${id}'.` : `No such ${what}.`;
  return new KassaError('resource_missing', message, { status: 404, retryable: false, ...(param ? { param } : {}) });
}

export function conflict(code: string, message: string, param?: string): KassaError {
  return new KassaError(code, message, { status: 409, retryable: false, ...(param ? { param } : {}) });
}

export function unprocessable(code: string, message: string, param?: string): KassaError {
  return new KassaError(code, message, { status: 422, retryable: false, ...(param ? { param } : {}) });
}

/** A failure talking to something outside the process (a node, an HTTP API). Retryable by default. */
export class UpstreamError extends KassaError {
  constructor(code: string, message: string, opts: KassaErrorOptions = {}) {
    super(code, message, { status: 502, retryable: true, ...opts });
    this.name = 'UpstreamError';
  }
}

export function isKassaError(err: unknown): err is KassaError {
  return err instanceof KassaError;
}
