/** Shared OpenAPI schemas. */
import { z } from '@hono/zod-openapi';
import type { Context, TypedResponse } from 'hono';
import type { ContentfulStatusCode } from 'hono/utils/http-status';
import type { JSONParsed } from 'hono/utils/types';
import type { JsonText } from '../json-text.ts';

export type { JsonText };

export const ErrorSchema = z
  .object({
    error: z.object({
      type: z.enum(['invalid_request_error', 'authentication_error', 'permission_error', 'idempotency_error', 'rate_limit_error', 'api_error']),
      code: z.string().openapi({ example: 'parameter_invalid' }),
      message: z.string(),
      param: z.string().optional(),
      request_id: z.string().openapi({ example: 'req_4Xf…' }),
    }),
  })
  .openapi('Error');

/** The error envelope every error answer carries (docs/architecture.md §4), as JSON (no undefined members). */
export type ErrorBody = JSONParsed<z.infer<typeof ErrorSchema>>;

const err = (description: string) => ({ description, content: { 'application/json': { schema: ErrorSchema } } });

/**
 * The error responses every authenticated route can give. Not `as const`: spread into a route's
 * `responses`, an `as const` object made @hono/zod-openapi type those statuses as `never`, so a
 * handler could not answer them typed (the Idempotency-Key replay of POST /v1/invoices does).
 */
export const commonErrors = {
  400: err('Invalid request: `param` names the field.'),
  401: err('Missing, invalid or revoked API key.'),
  403: err('The API key lacks a scope.'),
  429: err('Rate limited; see Retry-After.'),
  500: err('Unexpected error (no internals are exposed).'),
};

export const notFoundError = { 404: err('No such object (or it belongs to another merchant).') };
export const conflictError = { 409: err('Conflict, e.g. an Idempotency-Key reused with a different request.') };
export const unprocessableError = { 422: err('The request is well-formed but cannot be carried out.') };

export const idempotencyHeader = z.object({
  'idempotency-key': z.string().optional().openapi({
    description: 'Makes retries safe: the first response is stored for 24 h and replayed.',
  }),
});

export const jsonBody = <T extends z.ZodTypeAny>(schema: T) => ({
  required: true,
  content: { 'application/json': { schema } },
});

export const jsonOk = <T extends z.ZodTypeAny>(schema: T, description = 'OK') => ({
  description,
  content: { 'application/json': { schema } },
});

export const iso = (d: Date | null): string | null => (d ? d.toISOString() : null);

/** Times a query may name: 1970-01-01 up to (not including) 3000-01-01, which PostgreSQL and Date both hold. */
export const TIME_MIN = Date.UTC(1970, 0, 1);
export const TIME_MAX = Date.UTC(3000, 0, 1);
export const inTimeRange = (s: string): boolean => {
  const t = new Date(s).getTime();
  return !Number.isNaN(t) && t >= TIME_MIN && t < TIME_MAX;
};
const RANGE_MESSAGE = 'must be between 1970-01-01 and 2999-12-31';
/** An ISO-8601 date-time with offset, within TIME_MIN..TIME_MAX. */
export const isoTime = () => z.iso.datetime({ offset: true }).refine(inTimeRange, { message: RANGE_MESSAGE });
/** An ISO-8601 date-time with offset or a date, within TIME_MIN..TIME_MAX. */
export const isoTimeOrDate = () => z.iso.datetime({ offset: true }).or(z.iso.date()).refine(inTimeRange, { message: RANGE_MESSAGE });

/**
 * Answers JSON text as is, typed as the `T` it encodes: an invoice's create answer is the exact
 * text that was stored for Idempotency-Key replays and written to the outbox event. Hono types only
 * `c.json(object)`, so this is the one place the text is declared to be a `T` (docs/architecture.md §8).
 */
export function jsonText<T, S extends ContentfulStatusCode>(c: Context, text: JsonText<T>, status: S): JsonTextResponse<T, S> {
  // c.body answers text as is; its type (a plain Response) cannot carry T, which JsonText<T> vouches for.
  return c.body(text, status, { 'Content-Type': 'application/json' }) as unknown as JsonTextResponse<T, S>;
}

/** One typed response per status of `S` (a union of statuses gives a union of responses, as a route's declared responses are). */
export type JsonTextResponse<T, S extends ContentfulStatusCode> = S extends ContentfulStatusCode ? TypedResponse<T, S, 'json'> : never;
