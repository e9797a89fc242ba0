import { createRoute, z, type OpenAPIHono } from '@hono/zod-openapi';
import type { Deps } from '../../deps.ts';
import { SPEED_POLICIES } from '../../merchants/service.ts';
import { invalidParam, isKassaError } from '../../errors.ts';
import type { AppEnv } from '../env.ts';
import { reauthenticate, requireScope } from '../middleware/auth.ts';
import { atomicIdempotency, atomicIdempotencyOf, claimOrStored, idempotency, REPLAY_HEADERS, type StoredAnswer } from '../middleware/idempotency.ts';
import { IdempotencyClaimNeeded, PreconditionFailed, type CreateInvoiceOptions } from '../../invoices/service.ts';
import type { Authenticated } from '../../merchants/api-keys.ts';
import type { Scope } from '../../merchants/scopes.ts';
import type { Db } from '../../db/client.ts';
import { INVOICE_EXCEPTIONS, INVOICE_STATUSES } from '../../invoices/status.ts';
import { listQueryShape, listSchema, resolvePage } from '../pagination.ts';
import { commonErrors, conflictError, idempotencyHeader, isoTime, jsonBody, jsonOk, jsonText, notFoundError, unprocessableError, type ErrorBody, type JsonText } from '../schemas.ts';
import type { InvoiceObject } from '../../invoices/present.ts';

const PaymentMethodSchema = z
  .object({
    method: z.string().openapi({ example: 'BTC' }),
    chain: z.string().openapi({ example: 'bitcoin' }),
    network: z.string().openapi({ example: 'regtest' }),
    network_name: z.string().openapi({ example: 'Bitcoin regtest', description: 'The network\'s name to show a payer: "Base", "Arbitrum One", "Bitcoin" (docs/configuration.md, chain presets).' }),
    chain_id: z.number().int().optional(),
    asset: z.string().openapi({ example: 'BTC' }),
    token: z.string().optional().openapi({ description: 'ERC-20 contract address' }),
    address: z.string().openapi({ description: 'Deposit address for this invoice and method' }),
    amount: z.string().openapi({ description: 'The full price in this asset at the locked rate', example: '0.00041667' }),
    amount_due: z.string().openapi({ description: 'What is still due in this asset', example: '0.00041667' }),
    amount_paid: z.string().openapi({ example: '0.00000000' }),
    rate: z.string().openapi({ description: 'Locked price of one unit of the asset in the invoice currency', example: '60000.00' }),
    confirmations_required: z.number().int(),
    payment_uri: z.string().openapi({ example: 'bitcoin:bcrt1q…?amount=0.00041667' }),
  })
  .openapi('InvoicePaymentMethod');

export const InvoiceSchema = z
  .object({
    id: z.string().openapi({ example: 'inv_3kT…' }),
    object: z.literal('invoice'),
    status: z.enum(INVOICE_STATUSES),
    exception: z.enum(INVOICE_EXCEPTIONS).nullable(),
    amount: z.string().openapi({ example: '25.00' }),
    currency: z.string().openapi({ example: 'USD' }),
    amount_paid: z.string(),
    amount_due: z.string(),
    order_id: z.string().nullable(),
    description: z.string().nullable(),
    metadata: z.record(z.string(), z.string()),
    buyer_email: z.string().nullable(),
    locale: z.string(),
    redirect_url: z.string().nullable(),
    speed_policy: z.string(),
    payment_tolerance_percent: z.string(),
    checkout_url: z.string(),
    created_at: z.string(),
    expires_at: z.string(),
    monitoring_until: z.string(),
    settled_at: z.string().nullable(),
    cancelled_at: z.string().nullable(),
    marked: z.object({ at: z.string(), by: z.string().nullable(), reason: z.string().nullable() }).nullable(),
    payment_methods: z.array(PaymentMethodSchema),
  })
  .openapi('Invoice');

const metadataSchema = z
  .record(z.string().min(1).max(40), z.string().max(500))
  .refine((m) => Object.keys(m).length <= 50, { message: 'at most 50 keys' })
  .openapi({ description: 'Up to 50 keys (≤ 40 characters) with string values (≤ 500 characters).' });

const CreateSchema = z
  .strictObject({
    amount: z.unknown().openapi({ type: 'string', description: 'Price as a decimal string in `currency` units.', example: '25.00' }),
    currency: z.string().openapi({ description: 'Fiat code (USD, EUR, JPY…) or an asset (BTC, ETH, USDC).', example: 'USD' }),
    payment_methods: z.array(z.string()).min(1).max(20).optional().openapi({ description: 'Subset of the merchant\'s enabled methods; default all.', example: ['BTC', 'USDC-ethereum'] }),
    order_id: z.string().max(200).optional(),
    description: z.string().max(1000).optional(),
    metadata: metadataSchema.optional(),
    expires_in: z.number().int().min(60).max(604800).optional().openapi({ description: 'Seconds until the invoice expires (default: merchant setting).' }),
    buyer_email: z.email().max(254).optional(),
    locale: z.enum(['en', 'zh-CN']).optional(),
    redirect_url: z.url({ protocol: /^https?$/ }).max(2000).optional(),
    speed_policy: z.enum(SPEED_POLICIES).optional().openapi({ description: 'high = 0 confirmations, medium = 1, low_medium = 2, low = 6 (Bitcoin).' }),
  })
  .openapi('InvoiceCreate');

const IdParam = z.object({ id: z.string().max(100).openapi({ param: { name: 'id', in: 'path' }, example: 'inv_3kT…' }) });

const ListQuery = z.strictObject({
  ...listQueryShape,
  status: z.enum(INVOICE_STATUSES).optional(),
  order_id: z.string().max(200).optional(),
  'created[gte]': isoTime().optional().openapi({ description: 'ISO-8601 time, inclusive' }),
  'created[lt]': isoTime().optional().openapi({ description: 'ISO-8601 time, exclusive' }),
});

const MarkSchema = z
  .strictObject({
    status: z.enum(['settled', 'invalid']),
    reason: z.string().max(500).optional().openapi({ description: 'Why staff decided this; kept with the invoice.' }),
  })
  .openapi('InvoiceMark');

const CREATE_SCOPES: readonly Scope[] = ['invoices:write'];

/**
 * The statuses POST /v1/invoices stores under an Idempotency-Key besides its 201: the 4xx errors it
 * declares (5xx answers are never stored, docs/architecture.md §4).
 */
const STORED_ERROR_STATUSES = [400, 401, 403, 409, 422, 429] as const;
type StoredErrorStatus = (typeof STORED_ERROR_STATUSES)[number];
const isStoredErrorStatus = (s: number): s is StoredErrorStatus => (STORED_ERROR_STATUSES as readonly number[]).includes(s);

/**
 * A stored answer of POST /v1/invoices typed as what the route answers with its status: the first
 * request's exact text, which this route wrote (an invoice object with 201, the error envelope
 * otherwise), so the text is that type's JSON (src/json-text.ts).
 */
function createReplay(a: StoredAnswer): { status: 201; json: JsonText<InvoiceObject> } | { status: StoredErrorStatus; json: JsonText<ErrorBody> } {
  if (a.status === 201) return { status: 201, json: a.text as JsonText<InvoiceObject> };
  if (isStoredErrorStatus(a.status)) return { status: a.status, json: a.text as JsonText<ErrorBody> };
  throw new Error(`POST /v1/invoices: an Idempotency-Key holds a stored answer with status ${a.status}, which this route never stores`);
}

export function registerInvoiceRoutes(app: OpenAPIHono<AppEnv>, deps: Deps): void {
  app.openapi(
    createRoute({
      method: 'post', path: '/v1/invoices', tags: ['Invoices'], summary: 'Create an invoice',
      middleware: [requireScope(...CREATE_SCOPES), atomicIdempotency(deps)] as const,
      request: { headers: idempotencyHeader, body: jsonBody(CreateSchema) },
      responses: {
        201: jsonOk(InvoiceSchema, 'Created'), ...commonErrors, ...conflictError, ...unprocessableError,
        503: { description: 'No exchange rate available (rate_unavailable); retry later.', content: { 'application/json': { schema: z.object({}) } } },
      },
    }),
    async (c) => {
      const body = c.req.valid('json');
      // The invoice as JSON text: exactly what was stored for an Idempotency-Key replay.
      const created = (json: JsonText<InvoiceObject>) => jsonText(c, json, 201);
      const idem = atomicIdempotencyOf(c);
      // The API key may have been authenticated from the process's cache (src/api/middleware/auth.ts):
      // then the statement that creates the invoice first checks that the key is still unrevoked and
      // its merchant's settings unchanged (it writes nothing otherwise), and a refusal made from the
      // cached settings (4xx) stands only if they are still the database's. Otherwise the key is read
      // again and the invoice planned anew from what the database says now.
      const create = async (opts: Omit<CreateInvoiceOptions, 'paymentSettings' | 'precondition'>) => {
        const auth = c.get('auth');
        const { merchant, paymentSettings } = auth;
        if (!auth.fromCache) return deps.invoices.createJson(merchant, body, { ...opts, paymentSettings });
        try {
          return await deps.invoices.createJson(merchant, body, { ...opts, paymentSettings, precondition: (db: Db) => deps.apiKeys.stillCurrent(db, auth) });
        } catch (err) {
          // Thrown only after the check passed in the statement: the decision was made on current data.
          if (err instanceof IdempotencyClaimNeeded) throw err;
          if (!(err instanceof PreconditionFailed) && !(isKassaError(err) && err.status < 500)) throw err;
          let fresh: Authenticated;
          try {
            fresh = await reauthenticate(c, CREATE_SCOPES);
          } catch (authErr) {
            // Revoked (401) or no longer allowed (403): answered as the authentication would have
            // been, without storing the answer under the Idempotency-Key.
            if (idem) idem.outcome = 'done';
            throw authErr;
          }
          if (!(err instanceof PreconditionFailed) && fresh.fingerprint === auth.fingerprint) throw err;
        }
        const fresh = c.get('auth');
        return deps.invoices.createJson(fresh.merchant, body, { ...opts, paymentSettings: fresh.paymentSettings });
      };
      if (!idem) return created(await create({}));
      // The usual case: the key is claimed and the response stored by the statement that writes the invoice.
      try {
        const json = await create({ idempotency: idem.request });
        idem.outcome = 'done';
        return created(json);
      } catch (err) {
        if (!(err instanceof IdempotencyClaimNeeded)) throw err;
      }
      // The key is taken (a retry, a concurrent request): replay its answer, or claim it and create.
      const stored = await claimOrStored(deps, idem.request);
      if (stored) {
        idem.outcome = 'done';
        // The stored answer replayed as is: the first request's status and body (a 201 invoice or a 4xx error).
        for (const [name, value] of Object.entries(REPLAY_HEADERS)) c.header(name, value);
        const replay = createReplay(stored);
        return replay.status === 201 ? jsonText(c, replay.json, 201) : jsonText(c, replay.json, replay.status);
      }
      idem.outcome = 'claimed';
      return created(await create({ idempotencyKey: idem.request.key }));
    },
  );

  app.openapi(
    createRoute({
      method: 'get', path: '/v1/invoices/{id}', tags: ['Invoices'], summary: 'Retrieve an invoice',
      middleware: [requireScope('invoices:read')] as const,
      request: { params: IdParam },
      responses: { 200: jsonOk(InvoiceSchema), ...commonErrors, ...notFoundError },
    }),
    async (c) => c.json(await deps.invoices.get(c.get('auth').merchant.id, c.req.valid('param').id), 200),
  );

  app.openapi(
    createRoute({
      method: 'get', path: '/v1/invoices', tags: ['Invoices'], summary: 'List invoices, newest first',
      middleware: [requireScope('invoices:read')] as const,
      request: { query: ListQuery },
      responses: { 200: jsonOk(listSchema(InvoiceSchema, 'InvoiceList')), ...commonErrors },
    }),
    async (c) => {
      const merchantId = c.get('auth').merchant.id;
      const q = c.req.valid('query');
      const gte = q['created[gte]'] ? new Date(q['created[gte]']) : undefined;
      const lt = q['created[lt]'] ? new Date(q['created[lt]']) : undefined;
      if (gte && lt && gte >= lt) throw invalidParam('created[lt]', 'created[lt] must be later than created[gte].');
      const page = await resolvePage(q, (id) => deps.invoices.seqOf(merchantId, id));
      const { data, hasMore } = await deps.invoices.list(merchantId, { status: q.status, orderId: q.order_id, createdGte: gte, createdLt: lt }, page);
      return c.json({ object: 'list' as const, data, has_more: hasMore }, 200);
    },
  );

  app.openapi(
    createRoute({
      method: 'post', path: '/v1/invoices/{id}/cancel', tags: ['Invoices'], summary: 'Cancel an unpaid invoice',
      middleware: [requireScope('invoices:write'), idempotency(deps)] as const,
      request: { params: IdParam, headers: idempotencyHeader },
      responses: { 200: jsonOk(InvoiceSchema), ...commonErrors, ...notFoundError, ...conflictError },
    }),
    async (c) => c.json(await deps.invoices.cancel(c.get('auth').merchant.id, c.req.valid('param').id), 200),
  );

  app.openapi(
    createRoute({
      method: 'post', path: '/v1/invoices/{id}/mark', tags: ['Invoices'], summary: 'Mark an invoice settled or invalid by hand',
      middleware: [requireScope('invoices:write'), idempotency(deps)] as const,
      request: { params: IdParam, headers: idempotencyHeader, body: jsonBody(MarkSchema) },
      responses: { 200: jsonOk(InvoiceSchema), ...commonErrors, ...notFoundError, ...conflictError },
    }),
    async (c) => {
      const auth = c.get('auth');
      const body = c.req.valid('json');
      return c.json(await deps.invoices.mark(auth.merchant.id, c.req.valid('param').id, body.status, `api_key:${auth.key.id}`, body.reason), 200);
    },
  );
}
