import { createRoute, z, type OpenAPIHono } from '@hono/zod-openapi';
import { streamSSE } from 'hono/streaming';
import { invalidParam } from '../../errors.ts';
import { eventEnvelope, type EventRow } from '../../webhooks/envelope.ts';
import type { Deps } from '../../deps.ts';
import type { AppEnv } from '../env.ts';
import { requireScope } from '../middleware/auth.ts';
import { idempotency } from '../middleware/idempotency.ts';
import { listQueryShape, listSchema, resolvePage } from '../pagination.ts';
import { commonErrors, conflictError, idempotencyHeader, jsonOk, notFoundError } from '../schemas.ts';
import { API_VERSION, EVENT_TYPES } from '../../invoices/events.ts';
import { createWebhookService } from '../../webhooks/service.ts';
import { InvoiceSchema } from './invoices.ts';
import { RefundSchema } from './refunds.ts';
import { PayoutSchema } from './payouts.ts';

const deliveryStatus = z.enum(['pending', 'delivered', 'failed']);

export const EventPaymentSchema = z
  .object({
    id: z.string().openapi({ example: 'pay_2Jd…' }),
    chain: z.string(),
    txid: z.string(),
    output_index: z.number().int(),
    method: z.string(),
    status: z.enum(['pending', 'confirmed', 'reorged', 'replaced']),
    block_height: z.number().int().nullable(),
  })
  .openapi('EventPayment');

/**
 * The event as POSTed to webhook endpoints (Standard Webhooks; the `webhook-id` header is `id`).
 * `data.payment` is present on `invoice.payment_detected` and `invoice.payment_reorged`.
 */
export const WebhookEventSchema = z
  .object({
    id: z.string().openapi({ example: 'evt_5Rk…' }),
    type: z.enum(EVENT_TYPES),
    created_at: z.string(),
    api_version: z.string().openapi({ example: API_VERSION }),
    data: z.object({ object: z.union([InvoiceSchema, RefundSchema, PayoutSchema]).openapi({ description: 'The invoice (invoice.*), the refund (refund.*) or the payout (payout.*) as it stands after the change.' }), payment: EventPaymentSchema.optional() }),
  })
  .openapi('WebhookEvent');

export const EventSchema = WebhookEventSchema.extend({
  object: z.literal('event'),
  delivery_status: deliveryStatus.nullable().openapi({ description: 'pending while any delivery is pending; failed if any failed; delivered when all were; null without endpoints.' }),
}).openapi('Event');

const AttemptSchema = z
  .object({
    attempt: z.number().int(),
    started_at: z.string(),
    status_code: z.number().int().nullable(),
    duration_ms: z.number().int(),
    error: z.string().nullable(),
    response_snippet: z.string().nullable().openapi({ description: 'At most 1 KB of the response body.' }),
  })
  .openapi('WebhookAttempt');

const DeliverySchema = z
  .object({
    id: z.string().openapi({ example: 'del_8Uf…' }),
    object: z.literal('webhook_delivery'),
    endpoint_id: z.string(),
    url: z.string(),
    status: deliveryStatus,
    attempt_count: z.number().int(),
    next_attempt_at: z.string().nullable(),
    last_status_code: z.number().int().nullable(),
    last_error: z.string().nullable(),
    delivered_at: z.string().nullable(),
    created_at: z.string(),
    attempts: z.array(AttemptSchema),
  })
  .openapi('WebhookDelivery');

const EventDetailSchema = EventSchema.extend({ deliveries: z.array(DeliverySchema) }).openapi('EventWithDeliveries');

const IdParam = z.object({ id: z.string().max(100).openapi({ param: { name: 'id', in: 'path' }, example: 'evt_5Rk…' }) });

const ListQuery = z.strictObject({
  ...listQueryShape,
  type: z.enum(EVENT_TYPES).optional(),
  delivery_status: deliveryStatus.optional(),
});

const StreamQuery = z.strictObject({
  after: z.string().max(100).optional().openapi({
    description: 'Resume after this event id (same as the Last-Event-ID header, which wins). Without either, only events created from now on are sent.',
    example: 'evt_5Rk…',
  }),
});

export interface EventStreamOptions {
  /** How often the event log is read (default 1 s). */
  pollMs?: number;
  /** Heartbeat comment interval (default 15 s). */
  heartbeatMs?: number;
}

/** Events committed this long after a later one was sent are still picked up (sequence numbers are taken before commit). */
const LATE_COMMIT_WINDOW_MS = 60_000;

export function registerEventRoutes(app: OpenAPIHono<AppEnv>, deps: Deps, opts: EventStreamOptions = {}): void {
  const service = createWebhookService(deps);
  const tags = ['Events'];
  const pollMs = opts.pollMs ?? 1000;
  const heartbeatMs = opts.heartbeatMs ?? 15_000;
  const { sql } = deps;

  // Registered before /v1/events/{id} so "stream" is not read as an event id.
  app.openapi(
    createRoute({
      method: 'get', path: '/v1/events/stream', tags,
      summary: 'Follow the event log as Server-Sent Events (what `kassa listen` uses)',
      description:
        'Each event of this merchant is sent once, oldest first, as `id: <event id>`, `event: <type>` and `data: <the webhook body>` ' +
        '(the same JSON Kassa POSTs to webhook endpoints). Reconnect with the `Last-Event-ID` header (browsers and `kassa listen` do) or `?after=` ' +
        'to receive every event created after that one. A `: heartbeat` comment is sent every 15 s; the stream ends if the API key is revoked. ' +
        'A reverse proxy must not buffer this response.',
      middleware: [requireScope('invoices:read')] as const,
      request: {
        query: StreamQuery,
        headers: z.object({ 'last-event-id': z.string().max(100).optional().openapi({ description: 'The id of the last event received.' }) }),
      },
      responses: {
        200: {
          description: 'An event stream',
          content: {
            'text/event-stream': {
              schema: { type: 'string' },
              example: 'retry: 3000\n\nid: evt_5Rk…\nevent: invoice.settled\ndata: {"id":"evt_5Rk…","type":"invoice.settled","created_at":"2026-01-15T10:04:12.000Z","api_version":"2026-01-01","data":{"object":{…}}}\n\n: heartbeat\n\n',
            },
          },
        },
        ...commonErrors,
      },
    }),
    async (c) => {
      const { merchant, key } = c.get('auth');
      const resumeId = c.req.header('last-event-id')?.trim() || c.req.valid('query').after;
      let floor: bigint;
      if (resumeId) {
        const seq = await service.eventSeq(merchant.id, resumeId);
        if (seq === undefined) throw invalidParam('after', `"${resumeId}" is not an event of this merchant.`, 'cursor_invalid');
        floor = seq;
      } else {
        const [r] = await sql<{ seq: bigint | null }[]>`select max(seq) as seq from events where merchant_id = ${merchant.id}`;
        floor = r?.seq ?? 0n;
      }
      c.header('X-Accel-Buffering', 'no');
      c.header('Cache-Control', 'no-store');
      return streamSSE(c, async (stream) => {
        let closed = false;
        stream.onAbort(() => { closed = true; });
        let last = floor;
        const sent = new Map<string, number>();
        const heartbeat = setInterval(() => {
          if (!closed) void stream.write(': heartbeat\n\n').catch(() => {});
        }, heartbeatMs);
        try {
          await stream.write('retry: 3000\n\n');
          while (!closed) {
            const [k] = await sql<{ revoked_at: Date | null }[]>`select revoked_at from api_keys where id = ${key.id}`;
            if (!k || k.revoked_at) {
              await stream.writeSSE({ event: 'error', data: JSON.stringify({ error: { code: 'api_key_revoked', message: 'This API key has been revoked.' } }) });
              break;
            }
            // New events, and any that committed late with a number below the last one sent.
            const sentIds = [...sent.keys()];
            const late = await sql<(EventRow & { seq: bigint })[]>`
              select id, seq, type, created_at, api_version, payload from events
              where merchant_id = ${merchant.id} and seq > ${floor} and seq < ${last}
                and created_at > now() - ${`${LATE_COMMIT_WINDOW_MS / 1000} seconds`}::interval
                and id <> all(${sentIds}::text[])
              order by seq asc`;
            const fresh = await sql<(EventRow & { seq: bigint })[]>`
              select id, seq, type, created_at, api_version, payload from events
              where merchant_id = ${merchant.id} and seq > ${last}
              order by seq asc limit 500`;
            const rows = [...late, ...fresh];
            for (const row of rows) {
              if (closed) break;
              if (sent.has(row.id)) continue;
              await stream.writeSSE({ id: row.id, event: row.type, data: JSON.stringify(eventEnvelope(row)) });
              sent.set(row.id, Date.now());
              if (row.seq > last) last = row.seq;
            }
            const cutoff = Date.now() - 2 * LATE_COMMIT_WINDOW_MS;
            for (const [id, at] of sent) if (at < cutoff) sent.delete(id);
            if (fresh.length < 500) await stream.sleep(pollMs);
          }
        } finally {
          closed = true;
          clearInterval(heartbeat);
        }
      });
    },
  );

  app.openapi(
    createRoute({
      method: 'get', path: '/v1/events', tags, summary: 'List events (the event log), newest first',
      middleware: [requireScope('invoices:read')] as const,
      request: { query: ListQuery },
      responses: { 200: jsonOk(listSchema(EventSchema, 'EventList')), ...commonErrors },
    }),
    async (c) => {
      const merchantId = c.get('auth').merchant.id;
      const q = c.req.valid('query');
      const page = await resolvePage(q, (id) => service.eventSeq(merchantId, id));
      const { data, hasMore } = await service.listEvents(merchantId, { type: q.type, deliveryStatus: q.delivery_status }, page);
      return c.json({ object: 'list' as const, data, has_more: hasMore }, 200);
    },
  );

  app.openapi(
    createRoute({
      method: 'get', path: '/v1/events/{id}', tags, summary: 'Retrieve an event with its deliveries and attempts',
      middleware: [requireScope('invoices:read')] as const,
      request: { params: IdParam },
      responses: { 200: jsonOk(EventDetailSchema), ...commonErrors, ...notFoundError },
    }),
    async (c) => c.json(await service.getEvent(c.get('auth').merchant.id, c.req.valid('param').id), 200),
  );

  app.openapi(
    createRoute({
      method: 'post', path: '/v1/events/{id}/redeliver', tags,
      summary: 'Deliver an event again now to every enabled endpoint subscribed to it (also after it failed)',
      middleware: [requireScope('webhooks:write'), idempotency(deps)] as const,
      request: { params: IdParam, headers: idempotencyHeader },
      responses: { 200: jsonOk(EventDetailSchema), ...commonErrors, ...notFoundError, ...conflictError },
    }),
    async (c) => c.json(await service.redeliver(c.get('auth').merchant.id, c.req.valid('param').id), 200),
  );
}
