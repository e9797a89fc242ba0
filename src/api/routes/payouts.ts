/**
 * Payouts API (docs/refunds.md, "Payouts"): create, list/get, cancel, approve (Kassa prepares the
 * transfer), upload the signed PSBT, or report the transaction the wallet sent.
 */
import { createRoute, z, type OpenAPIHono } from '@hono/zod-openapi';
import type { Deps } from '../../deps.ts';
import type { AppEnv } from '../env.ts';
import { requireScope } from '../middleware/auth.ts';
import { idempotency } from '../middleware/idempotency.ts';
import { listQueryShape, listSchema, resolvePage } from '../pagination.ts';
import { commonErrors, conflictError, idempotencyHeader, jsonBody, jsonOk, notFoundError, unprocessableError } from '../schemas.ts';
import { payoutServiceFor, type PayoutService } from '../../payouts/service.ts';
import { PAYOUT_STATUSES } from '../../payouts/state-machine.ts';
import { ApproveSchema, SignedSchema, TransferBitcoinSchema, TransferEvmSchema, TransactionSchema } from './refunds.ts';

export const PayoutSchema = z
  .object({
    id: z.string().openapi({ example: 'po_4Hs…' }),
    object: z.literal('payout'),
    status: z.enum(PAYOUT_STATUSES),
    chain: z.string().openapi({ example: 'ethereum' }),
    asset: z.string().openapi({ example: 'USDC' }),
    method: z.string().openapi({ description: 'The payment method id of the asset on the chain.', example: 'USDC-ethereum' }),
    amount: z.string().openapi({ description: 'What the destination receives, in the asset.', example: '250.00' }),
    destination: z.string().openapi({ description: 'The address paid, in its canonical form (EIP-55, lowercase bech32).', example: '0x52908400098527886E0F7030069857D2E4169EE7' }),
    reference: z.string().nullable().openapi({ example: 'INV-2026-0117' }),
    description: z.string().nullable().openapi({ example: 'Packaging, November' }),
    confirmations_required: z.number().int().openapi({ description: 'Completed at this many confirmations (your default speed policy on the chain, at least 1).', example: 1 }),
    bitcoin: TransferBitcoinSchema,
    evm: TransferEvmSchema,
    txid: z.string().nullable(),
    failure_reason: z.string().nullable(),
    created_at: z.string(),
    approved_at: z.string().nullable(),
    broadcast_at: z.string().nullable(),
    completed_at: z.string().nullable(),
    cancelled_at: z.string().nullable(),
  })
  .openapi('Payout');

const CreateSchema = z
  .strictObject({
    chain: z.string().max(60).openapi({ description: 'The chain key of the chains file.', example: 'ethereum' }),
    asset: z.string().max(10).openapi({ description: 'The asset\'s symbol on that chain.', example: 'USDC' }),
    amount: z.unknown().openapi({ type: 'string', description: 'A decimal string in the asset (never a JSON number).', example: '250.00' }),
    destination: z.string().max(200).openapi({ description: 'The address to pay, checked for the chain and network (Bitcoin checksums and prefix, EIP-55).', example: '0x52908400098527886E0F7030069857D2E4169EE7' }),
    reference: z.string().max(200).optional().openapi({ description: 'Your reference (a supplier invoice number).', example: 'INV-2026-0117' }),
    description: z.string().max(500).optional(),
  })
  .openapi('PayoutCreate');

const IdParam = z.object({ id: z.string().max(100).openapi({ param: { name: 'id', in: 'path' }, example: 'po_4Hs…' }) });
const ListQuery = z.strictObject({
  ...listQueryShape,
  status: z.enum(PAYOUT_STATUSES).optional(),
  chain: z.string().max(60).optional(),
});

const example = {
  id: 'po_4HsQm2…', object: 'payout', status: 'awaiting_signature', chain: 'ethereum', asset: 'USDC', method: 'USDC-ethereum',
  amount: '250.00', destination: '0x52908400098527886E0F7030069857D2E4169EE7', reference: 'INV-2026-0117', description: 'Packaging, November',
  confirmations_required: 1, bitcoin: null,
  evm: {
    transaction: { chain_id: 1, from: '0x8Ba1f109551bD432803012645Ac136ddd64DBA72', to: '0xA0b86991c6218b36c1d19D4a2e9Eb0cE3606eB48', value: '0', data: '0xa9059cbb…' },
    link: 'ethereum:0xA0b86991c6218b36c1d19D4a2e9Eb0cE3606eB48@1/transfer?address=0x52908400098527886E0F7030069857D2E4169EE7&uint256=250000000',
    sender: null, block_number: null,
  },
  txid: null, failure_reason: null, created_at: '2026-12-03T08:00:00.000Z', approved_at: '2026-12-03T08:01:00.000Z',
  broadcast_at: null, completed_at: null, cancelled_at: null,
};
const payoutOk = (description = 'OK') => ({ description, content: { 'application/json': { schema: PayoutSchema, example } } });

export function registerPayoutRoutes(app: OpenAPIHono<AppEnv>, deps: Deps): PayoutService {
  const payouts = payoutServiceFor(deps);

  app.openapi(
    createRoute({
      method: 'post', path: '/v1/payouts', tags: ['Payouts'], summary: 'Create a payout',
      description: 'Pays `amount` of `asset` on `chain` to `destination` from your own funds: Bitcoin from the outputs your invoices received, EVM from your treasury. The payout starts `awaiting_approval`; approving it prepares the transaction your wallet signs.',
      middleware: [requireScope('payouts:write'), idempotency(deps)] as const,
      request: { headers: idempotencyHeader, body: jsonBody(CreateSchema) },
      responses: { 201: payoutOk('Created'), ...commonErrors, ...unprocessableError },
    }),
    async (c) => c.json(await payouts.create(c.get('auth').merchant.id, c.req.valid('json')), 201),
  );

  app.openapi(
    createRoute({
      method: 'get', path: '/v1/payouts', tags: ['Payouts'], summary: 'List payouts, newest first',
      middleware: [requireScope('payouts:read')] as const,
      request: { query: ListQuery },
      responses: { 200: jsonOk(listSchema(PayoutSchema, 'PayoutList')), ...commonErrors },
    }),
    async (c) => {
      const merchantId = c.get('auth').merchant.id;
      const q = c.req.valid('query');
      const page = await resolvePage(q, (id) => payouts.seqOf(merchantId, id));
      const { data, hasMore } = await payouts.list(merchantId, { status: q.status, chain: q.chain }, page);
      return c.json({ object: 'list' as const, data, has_more: hasMore }, 200);
    },
  );

  app.openapi(
    createRoute({
      method: 'get', path: '/v1/payouts/{id}', tags: ['Payouts'], summary: 'Retrieve a payout',
      middleware: [requireScope('payouts:read')] as const,
      request: { params: IdParam },
      responses: { 200: payoutOk(), ...commonErrors, ...notFoundError },
    }),
    async (c) => c.json(await payouts.get(c.get('auth').merchant.id, c.req.valid('param').id), 200),
  );

  app.openapi(
    createRoute({
      method: 'post', path: '/v1/payouts/{id}/cancel', tags: ['Payouts'], summary: 'Cancel a payout that was not broadcast',
      middleware: [requireScope('payouts:write'), idempotency(deps)] as const,
      request: { params: IdParam, headers: idempotencyHeader },
      responses: { 200: payoutOk(), ...commonErrors, ...notFoundError, ...conflictError },
    }),
    async (c) => c.json(await payouts.cancel(c.get('auth').merchant.id, c.req.valid('param').id), 200),
  );

  app.openapi(
    createRoute({
      method: 'post', path: '/v1/payouts/{id}/approve', tags: ['Payouts'], summary: 'Approve a payout: Kassa prepares the transaction for your wallet',
      description: 'Moves the payout to `awaiting_signature`. Bitcoin: `bitcoin.psbt` is an unsigned PSBT spending your own unspent received outputs (largest first), the change to your next receive address: sign it and upload it to /signed_psbt (or broadcast it from your wallet and report its txid). EVM: `evm.transaction` (and `evm.link`) is the transaction to send from your treasury: report its hash to /transaction.',
      middleware: [requireScope('payouts:write'), idempotency(deps)] as const,
      request: { params: IdParam, headers: idempotencyHeader, body: { required: false, content: { 'application/json': { schema: ApproveSchema } } } },
      responses: { 200: payoutOk(), ...commonErrors, ...notFoundError, ...conflictError, ...unprocessableError },
    }),
    async (c) => c.json(await payouts.approve(c.get('auth').merchant.id, c.req.valid('param').id, c.req.valid('json') ?? {}), 200),
  );

  app.openapi(
    createRoute({
      method: 'post', path: '/v1/payouts/{id}/signed_psbt', tags: ['Payouts'], summary: 'Upload the signed PSBT: Kassa checks, finalizes and broadcasts it',
      description: 'The PSBT must be the payout\'s own (same inputs and outputs: it spends only the outputs Kassa chose and pays the destination the amount), every input signed. Uploading it again re-broadcasts the recorded transaction.',
      middleware: [requireScope('payouts:write'), idempotency(deps)] as const,
      request: { params: IdParam, headers: idempotencyHeader, body: jsonBody(SignedSchema) },
      responses: { 200: payoutOk(), ...commonErrors, ...notFoundError, ...conflictError, ...unprocessableError },
    }),
    async (c) => c.json(await payouts.submitSignedPsbt(c.get('auth').merchant.id, c.req.valid('param').id, c.req.valid('json').psbt), 200),
  );

  app.openapi(
    createRoute({
      method: 'post', path: '/v1/payouts/{id}/transaction', tags: ['Payouts'], summary: 'Report the transaction your wallet sent for a payout',
      description: 'Kassa reads the transaction from the payout\'s chain and accepts it only when it pays exactly the payout\'s amount of its asset to its destination; otherwise a 422 names `txid` and nothing changes. Bitcoin: a txid (64 hex digits); EVM: a hash (0x + 64 hex digits). The payout becomes `broadcast`, then `completed` at `confirmations_required`.',
      middleware: [requireScope('payouts:write'), idempotency(deps)] as const,
      request: { params: IdParam, headers: idempotencyHeader, body: jsonBody(TransactionSchema) },
      responses: { 200: payoutOk(), ...commonErrors, ...notFoundError, ...conflictError, ...unprocessableError },
    }),
    async (c) => c.json(await payouts.submitTransaction(c.get('auth').merchant.id, c.req.valid('param').id, c.req.valid('json').txid), 200),
  );

  return payouts;
}
