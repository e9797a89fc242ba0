import { createRoute, z, type OpenAPIHono } from '@hono/zod-openapi';
import type { Deps } from '../../deps.ts';
import type { AppEnv } from '../env.ts';
import { requireScope } from '../middleware/auth.ts';
import { idempotency } from '../middleware/idempotency.ts';
import { listQueryShape, listSchema, resolvePage } from '../pagination.ts';
import { commonErrors, conflictError, idempotencyHeader, jsonBody, jsonOk, notFoundError } from '../schemas.ts';
import { EVENT_TYPES } from '../../invoices/events.ts';
import { createWebhookService } from '../../webhooks/service.ts';

const eventTypeOrAll = z.enum([...EVENT_TYPES, '*']);

export const WebhookEndpointSchema = z
  .object({
    id: z.string().openapi({ example: 'we_7Hq…' }),
    object: z.literal('webhook_endpoint'),
    url: z.string().openapi({ example: 'https://shop.example/kassa/webhooks' }),
    description: z.string().nullable(),
    events: z.array(eventTypeOrAll).openapi({ description: 'Subscribed event types; ["*"] = all.' }),
    enabled: z.boolean(),
    disabled_reason: z.string().nullable().openapi({ description: 'Why Kassa disabled the endpoint (every delivery failed for 3 days).' }),
    disabled_at: z.string().nullable(),
    previous_secret_expires_at: z.string().nullable().openapi({ description: 'After a rotation: until when the previous secret also signs (both signatures are sent).' }),
    created_at: z.string(),
    updated_at: z.string(),
  })
  .openapi('WebhookEndpoint');

const WithSecretSchema = WebhookEndpointSchema.extend({
  secret: z.string().openapi({ description: 'The signing secret (`whsec_…`). Shown only in this response: store it now.', example: 'whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw' }),
}).openapi('WebhookEndpointWithSecret');

const DeletedSchema = WebhookEndpointSchema.extend({ deleted: z.literal(true) }).openapi('DeletedWebhookEndpoint');

const urlField = z.string().min(1).max(2000).openapi({ description: 'Where events are POSTed. https required (http only where the deployment allows it).' });
const eventsField = z.array(eventTypeOrAll).min(1).max(EVENT_TYPES.length).openapi({ description: 'Event types to receive; omit or ["*"] for all.' });

const CreateSchema = z
  .strictObject({
    url: urlField,
    events: eventsField.optional(),
    enabled: z.boolean().optional(),
    description: z.string().max(500).optional(),
  })
  .openapi('WebhookEndpointCreate');

const UpdateSchema = z
  .strictObject({
    url: urlField.optional(),
    events: eventsField.optional(),
    enabled: z.boolean().optional().openapi({ description: 'true re-enables an endpoint Kassa disabled.' }),
    description: z.string().max(500).nullable().optional(),
  })
  .openapi('WebhookEndpointUpdate');

const IdParam = z.object({ id: z.string().max(100).openapi({ param: { name: 'id', in: 'path' }, example: 'we_7Hq…' }) });

export function registerWebhookEndpointRoutes(app: OpenAPIHono<AppEnv>, deps: Deps): void {
  const service = createWebhookService(deps);
  const tags = ['Webhook endpoints'];

  app.openapi(
    createRoute({
      method: 'post', path: '/v1/webhook_endpoints', tags, summary: 'Create a webhook endpoint (the signing secret is shown once)',
      middleware: [requireScope('webhooks:write'), idempotency(deps)] as const,
      request: { headers: idempotencyHeader, body: jsonBody(CreateSchema) },
      responses: { 201: jsonOk(WithSecretSchema, 'Created'), ...commonErrors, ...conflictError },
    }),
    async (c) => {
      const { endpoint, secret } = await service.createEndpoint(c.get('auth').merchant.id, c.req.valid('json'));
      return c.json({ ...endpoint, secret }, 201);
    },
  );

  app.openapi(
    createRoute({
      method: 'get', path: '/v1/webhook_endpoints', tags, summary: 'List webhook endpoints (never their secrets)',
      middleware: [requireScope('webhooks:write')] as const,
      request: { query: z.strictObject(listQueryShape) },
      responses: { 200: jsonOk(listSchema(WebhookEndpointSchema, 'WebhookEndpointList')), ...commonErrors },
    }),
    async (c) => {
      const merchantId = c.get('auth').merchant.id;
      const page = await resolvePage(c.req.valid('query'), (id) => service.endpointSeq(merchantId, id));
      const { data, hasMore } = await service.listEndpoints(merchantId, page);
      return c.json({ object: 'list' as const, data, has_more: hasMore }, 200);
    },
  );

  app.openapi(
    createRoute({
      method: 'get', path: '/v1/webhook_endpoints/{id}', tags, summary: 'Retrieve a webhook endpoint',
      middleware: [requireScope('webhooks:write')] as const,
      request: { params: IdParam },
      responses: { 200: jsonOk(WebhookEndpointSchema), ...commonErrors, ...notFoundError },
    }),
    async (c) => c.json(await service.getEndpoint(c.get('auth').merchant.id, c.req.valid('param').id), 200),
  );

  app.openapi(
    createRoute({
      method: 'post', path: '/v1/webhook_endpoints/{id}', tags, summary: 'Update a webhook endpoint (url, events, enabled)',
      middleware: [requireScope('webhooks:write'), idempotency(deps)] as const,
      request: { params: IdParam, headers: idempotencyHeader, body: jsonBody(UpdateSchema) },
      responses: { 200: jsonOk(WebhookEndpointSchema), ...commonErrors, ...notFoundError, ...conflictError },
    }),
    async (c) => c.json(await service.updateEndpoint(c.get('auth').merchant.id, c.req.valid('param').id, c.req.valid('json')), 200),
  );

  app.openapi(
    createRoute({
      method: 'delete', path: '/v1/webhook_endpoints/{id}', tags, summary: 'Delete a webhook endpoint',
      middleware: [requireScope('webhooks:write')] as const,
      request: { params: IdParam },
      responses: { 200: jsonOk(DeletedSchema), ...commonErrors, ...notFoundError },
    }),
    async (c) => c.json(await service.deleteEndpoint(c.get('auth').merchant.id, c.req.valid('param').id), 200),
  );

  app.openapi(
    createRoute({
      method: 'post', path: '/v1/webhook_endpoints/{id}/rotate_secret', tags,
      summary: 'Rotate the signing secret (new secret shown once; the old one also signs for 24 h)',
      middleware: [requireScope('webhooks:write'), idempotency(deps)] as const,
      request: { params: IdParam, headers: idempotencyHeader },
      responses: { 200: jsonOk(WithSecretSchema), ...commonErrors, ...notFoundError, ...conflictError },
    }),
    async (c) => {
      const { endpoint, secret } = await service.rotateSecret(c.get('auth').merchant.id, c.req.valid('param').id);
      return c.json({ ...endpoint, secret }, 200);
    },
  );
}
