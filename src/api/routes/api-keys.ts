import { createRoute, z, type OpenAPIHono } from '@hono/zod-openapi';
import type { Deps } from '../../deps.ts';
import type { ApiKey } from '../../merchants/api-keys.ts';
import { SCOPES, type Scope } from '../../merchants/scopes.ts';
import { KassaError } from '../../errors.ts';
import type { AppEnv } from '../env.ts';
import { requireScope } from '../middleware/auth.ts';
import { idempotency } from '../middleware/idempotency.ts';
import { listQueryShape, listSchema, resolvePage } from '../pagination.ts';
import { commonErrors, conflictError, idempotencyHeader, iso, jsonBody, jsonOk, notFoundError } from '../schemas.ts';

const scopeEnum = z.enum(SCOPES);

export const ApiKeySchema = z
  .object({
    id: z.string().openapi({ example: 'key_9fT…' }),
    object: z.literal('api_key'),
    name: z.string(),
    prefix: z.string().openapi({ description: 'The visible start of the secret, to recognise the key.', example: 'kassa_sk_AbC123xyz789' }),
    scopes: z.array(scopeEnum),
    created_at: z.string(),
    last_used_at: z.string().nullable(),
    revoked_at: z.string().nullable(),
  })
  .openapi('ApiKey');

const CreatedApiKeySchema = ApiKeySchema.extend({
  secret: z.string().openapi({ description: 'The full secret. Shown only in this response: store it now.' }),
}).openapi('CreatedApiKey');

export function apiKeyToApi(k: ApiKey) {
  return {
    id: k.id,
    object: 'api_key' as const,
    name: k.name,
    prefix: k.prefix,
    scopes: k.scopes,
    created_at: k.createdAt.toISOString(),
    last_used_at: iso(k.lastUsedAt),
    revoked_at: iso(k.revokedAt),
  };
}

const CreateSchema = z
  .strictObject({
    name: z.string().max(100).optional(),
    scopes: z.array(scopeEnum).min(1).openapi({ description: 'Scopes of the new key; a subset of the calling key\'s scopes.' }),
  })
  .openapi('ApiKeyCreate');

const IdParam = z.object({ id: z.string().max(100).openapi({ param: { name: 'id', in: 'path' } }) });

export function registerApiKeyRoutes(app: OpenAPIHono<AppEnv>, deps: Deps): void {
  app.openapi(
    createRoute({
      method: 'post', path: '/v1/api_keys', tags: ['API keys'], summary: 'Create an API key (the secret is shown once)',
      middleware: [requireScope('settings:write'), idempotency(deps)] as const,
      request: { headers: idempotencyHeader, body: jsonBody(CreateSchema) },
      responses: { 201: jsonOk(CreatedApiKeySchema, 'Created'), ...commonErrors, ...conflictError },
    }),
    async (c) => {
      const body = c.req.valid('json');
      const auth = c.get('auth');
      const scopes = [...new Set(body.scopes)] as Scope[];
      const beyond = scopes.filter((s) => !auth.key.scopes.includes(s));
      if (beyond.length > 0) {
        throw new KassaError('scope_not_grantable', `A key cannot grant scopes it does not have: ${beyond.join(', ')}.`, {
          status: 403, type: 'permission_error', param: 'scopes',
        });
      }
      const { key, secret } = await deps.apiKeys.create(deps.sql, { merchantId: auth.merchant.id, name: body.name ?? '', scopes });
      return c.json({ ...apiKeyToApi(key), secret }, 201);
    },
  );

  app.openapi(
    createRoute({
      method: 'get', path: '/v1/api_keys', tags: ['API keys'], summary: 'List API keys (never their secrets)',
      middleware: [requireScope('settings:write')] as const,
      request: { query: z.strictObject(listQueryShape) },
      responses: { 200: jsonOk(listSchema(ApiKeySchema, 'ApiKeyList')), ...commonErrors },
    }),
    async (c) => {
      const merchantId = c.get('auth').merchant.id;
      const page = await resolvePage(c.req.valid('query'), (id) => deps.apiKeys.seqOf(deps.sql, merchantId, id));
      const { data, hasMore } = await deps.apiKeys.list(deps.sql, merchantId, page);
      return c.json({ object: 'list' as const, data: data.map(apiKeyToApi), has_more: hasMore }, 200);
    },
  );

  app.openapi(
    createRoute({
      method: 'delete', path: '/v1/api_keys/{id}', tags: ['API keys'], summary: 'Revoke an API key',
      middleware: [requireScope('settings:write')] as const,
      request: { params: IdParam },
      responses: { 200: jsonOk(ApiKeySchema), ...commonErrors, ...notFoundError },
    }),
    async (c) => {
      const key = await deps.apiKeys.revoke(deps.sql, c.get('auth').merchant.id, c.req.valid('param').id);
      return c.json(apiKeyToApi(key), 200);
    },
  );
}
