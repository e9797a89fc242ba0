import { createRoute, z, type OpenAPIHono } from '@hono/zod-openapi';
import type { Deps } from '../../deps.ts';
import { listPayments, paymentSeq, presentPayment } from '../../invoices/payments.ts';
import { loadInvoice } from '../../invoices/present.ts';
import type { AppEnv } from '../env.ts';
import { requireScope } from '../middleware/auth.ts';
import { listQueryShape, listSchema, resolvePage } from '../pagination.ts';
import { commonErrors, jsonOk, notFoundError } from '../schemas.ts';

export const PaymentSchema = z
  .object({
    id: z.string().openapi({ example: 'pay_…' }),
    object: z.literal('payment'),
    invoice_id: z.string(),
    method: z.string(),
    chain: z.string(),
    asset: z.string(),
    txid: z.string(),
    output_index: z.number().int().openapi({ description: 'Bitcoin vout; ERC-20 log index; -1 native EVM transfer; -2 found by balance check' }),
    address: z.string(),
    amount: z.string(),
    status: z.enum(['pending', 'confirmed', 'reorged', 'replaced']),
    confirmations: z.number().int(),
    block_height: z.number().int().nullable(),
    block_hash: z.string().nullable(),
    block_time: z.string().nullable(),
    first_seen_at: z.string(),
    late: z.boolean(),
    rate: z.string().nullable(),
    value: z.string().nullable().openapi({ description: 'Value in the invoice currency at the locked rate' }),
    currency: z.string(),
  })
  .openapi('Payment');

const ListQuery = z.strictObject({ ...listQueryShape });
const IdParam = z.object({ id: z.string().max(100).openapi({ param: { name: 'id', in: 'path' } }) });

export function registerPaymentRoutes(app: OpenAPIHono<AppEnv>, deps: Deps): void {
  const decimalsOf = (method: string) => deps.assets.method(method)?.decimals ?? 0;
  const seqOf = (merchantId: string, id: string) => paymentSeq(deps.sql, merchantId, id);

  app.openapi(
    createRoute({
      method: 'get', path: '/v1/payments', tags: ['Payments'], summary: 'List on-chain payments, newest first',
      middleware: [requireScope('invoices:read')] as const,
      request: { query: ListQuery },
      responses: { 200: jsonOk(listSchema(PaymentSchema, 'PaymentList')), ...commonErrors },
    }),
    async (c) => {
      const merchantId = c.get('auth').merchant.id;
      const page = await resolvePage(c.req.valid('query'), (id) => seqOf(merchantId, id));
      const { data, hasMore } = await listPayments(deps.sql, merchantId, {}, page);
      return c.json({ object: 'list' as const, data: data.map((p) => presentPayment(p, decimalsOf)), has_more: hasMore }, 200);
    },
  );

  app.openapi(
    createRoute({
      method: 'get', path: '/v1/invoices/{id}/payments', tags: ['Payments'], summary: 'Payments of one invoice',
      middleware: [requireScope('invoices:read')] as const,
      request: { params: IdParam, query: ListQuery },
      responses: { 200: jsonOk(listSchema(PaymentSchema, 'PaymentList')), ...commonErrors, ...notFoundError },
    }),
    async (c) => {
      const merchantId = c.get('auth').merchant.id;
      const invoiceId = c.req.valid('param').id;
      await loadInvoice(deps.sql, invoiceId, merchantId);
      const page = await resolvePage(c.req.valid('query'), (id) => seqOf(merchantId, id));
      const { data, hasMore } = await listPayments(deps.sql, merchantId, { invoiceId }, page);
      return c.json({ object: 'list' as const, data: data.map((p) => presentPayment(p, decimalsOf)), has_more: hasMore }, 200);
    },
  );
}
