import { createRoute, z, type OpenAPIHono } from '@hono/zod-openapi';
import type { Deps } from '../../deps.ts';
import type { AppEnv } from '../env.ts';
import { requireScope } from '../middleware/auth.ts';
import { idempotency } from '../middleware/idempotency.ts';
import { listQueryShape, listSchema, resolvePage } from '../pagination.ts';
import { commonErrors, conflictError, idempotencyHeader, jsonOk, notFoundError } from '../schemas.ts';
import { API_VERSION, EVENT_TYPES } from '../../settlement/events.ts';
import { createWebhookService } from '../../webhooks/service.ts';
import { InvoiceSchema } from './invoices.ts';

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
    data: z.object({ object: InvoiceSchema, payment: EventPaymentSchema.optional() }),
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

export function registerEventRoutes(app: OpenAPIHono<AppEnv>, deps: Deps): void {
  const service = createWebhookService(deps);
  const tags = ['Events'];

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
      return c.json({ object: 'list' as const, data, has_more: hasMore } as never, 200);
    },
  );

  app.openapi(
    createRoute({
      method: 'get', path: '/v1/events/{id}', tags, summary: 'Retrieve an event with its deliveries and attempts',
      middleware: [requireScope('invoices:read')] as const,
      request: { params: IdParam },
      responses: { 200: jsonOk(EventDetailSchema), ...commonErrors, ...notFoundError },
    }),
    async (c) => c.json((await service.getEvent(c.get('auth').merchant.id, c.req.valid('param').id)) as never, 200),
  );

  app.openapi(
    createRoute({
      method: 'post', path: '/v1/events/{id}/redeliver', tags,
      summary: 'Deliver an event again now to every enabled endpoint subscribed to it (also after it failed)',
      middleware: [requireScope('webhooks:write'), idempotency(deps)] as const,
      request: { params: IdParam, headers: idempotencyHeader },
      responses: { 200: jsonOk(EventDetailSchema), ...commonErrors, ...notFoundError, ...conflictError },
    }),
    async (c) => c.json((await service.redeliver(c.get('auth').merchant.id, c.req.valid('param').id)) as never, 200),
  );
}
