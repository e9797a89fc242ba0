/**
 * Refunds API (docs/refunds.md): create on an invoice, list/get, cancel, approve (unsigned PSBT),
 * upload the signed PSBT; and the customer's claim (public, by the claim token, rate limited per
 * client address like the checkout). The claim page itself is src/refunds/claim-page.tsx.
 */
import { createRoute, z, type OpenAPIHono } from '@hono/zod-openapi';
import type { Deps } from '../../deps.ts';
import type { AppEnv } from '../env.ts';
import { requireScope } from '../middleware/auth.ts';
import { idempotency } from '../middleware/idempotency.ts';
import { listQueryShape, listSchema, resolvePage } from '../pagination.ts';
import { commonErrors, conflictError, ErrorSchema, idempotencyHeader, jsonBody, jsonOk, notFoundError, unprocessableError } from '../schemas.ts';
import { refundServiceFor, type RefundService } from '../../refunds/service.ts';
import { REFUND_STATUSES } from '../../refunds/state-machine.ts';
import { registerClaimPage } from '../../refunds/claim-page.tsx';
import { DEFAULT_PUBLIC_RATE_LIMIT_PER_MINUTE, rateLimitPerIp } from '../../checkout/security.ts';
import { errorResponse } from '../errors.ts';
import { KassaError } from '../../errors.ts';

/** The Bitcoin part of a refund or payout (null on other chains). */
export const TransferBitcoinSchema = z.object({
  psbt: z.string().nullable().openapi({ description: 'The unsigned PSBT (base64) while awaiting a signature.' }),
  fee_rate: z.string().nullable().openapi({ description: 'sat/vB', example: '2' }),
  network_fee: z.string().nullable().openapi({ description: 'BTC, paid from the outputs spent (change)', example: '0.00000282' }),
}).nullable();

/** The EVM part of a refund or payout (null on other chains). */
export const TransferEvmSchema = z.object({
  transaction: z.object({
    chain_id: z.number().int().openapi({ example: 1 }),
    from: z.string().nullable().openapi({ description: 'Your treasury on this chain, when set: the wallet expected to send it. Kassa checks what the transaction pays, not who sends it.' }),
    to: z.string().openapi({ description: 'The destination (native coin) or the token contract (ERC-20).' }),
    value: z.string().openapi({ description: 'Wei, decimal string ("0" for a token).', example: '0' }),
    data: z.string().openapi({ description: '"0x" (native coin) or the ERC-20 transfer(destination, amount) call.', example: '0xa9059cbb…' }),
  }).nullable().openapi({ description: 'The exact transaction to send from your wallet (eth_sendTransaction), once approved.' }),
  link: z.string().nullable().openapi({ description: 'The same transaction as an EIP-681 link (amount in base units).', example: 'ethereum:0xA0b8…@1/transfer?address=0x…&uint256=5000000' }),
  sender: z.string().nullable().openapi({ description: 'The account that sent the reported transaction.' }),
  block_number: z.number().int().nullable().openapi({ description: 'The block holding it, as last seen.' }),
}).nullable();

export const RefundSchema = z
  .object({
    id: z.string().openapi({ example: 'ref_8Pq…' }),
    object: z.literal('refund'),
    invoice_id: z.string().openapi({ example: 'inv_3kT…' }),
    status: z.enum(REFUND_STATUSES),
    method: z.string().openapi({ example: 'BTC' }),
    chain: z.string().openapi({ example: 'bitcoin' }),
    asset: z.string().openapi({ example: 'BTC' }),
    amount: z.string().openapi({ description: 'What the customer receives, in the asset (gross − fee). Locked when the customer claims.', example: '0.00020000' }),
    fee: z.string().openapi({ description: 'Deducted from the refund, in the asset.', example: '0.00000000' }),
    requested: z.object({
      kind: z.enum(['full', 'overpaid', 'decimal']),
      amount: z.string().nullable().openapi({ example: null }),
      currency: z.string().nullable().openapi({ example: null }),
    }),
    rate_basis: z.enum(['rate_then', 'current', 'fixed']),
    rate: z.string().nullable().openapi({ description: 'Price of one unit of the asset in the invoice currency used for the amount.', example: '60000.00' }),
    rate_locked_at: z.string().nullable(),
    reason: z.string().nullable(),
    claim_url: z.string().nullable().openapi({ description: 'Send this to the customer: they enter their address there. Null once claimed.', example: 'https://pay.example/refund/Xk2…' }),
    destination: z.string().nullable().openapi({ description: 'The address the customer entered.', example: 'bcrt1q…' }),
    bitcoin: TransferBitcoinSchema,
    evm: TransferEvmSchema,
    txid: z.string().nullable(),
    failure_reason: z.string().nullable(),
    created_at: z.string(),
    claimed_at: z.string().nullable(),
    approved_at: z.string().nullable(),
    broadcast_at: z.string().nullable(),
    completed_at: z.string().nullable(),
    cancelled_at: z.string().nullable(),
  })
  .openapi('Refund');

const CreateSchema = z
  .strictObject({
    amount: z.unknown().openapi({
      type: 'string',
      description: '"full" (everything received in the asset, less other refunds), "overpaid" (the part above the price), or a decimal string in `amount_currency`.',
      example: 'overpaid',
    }),
    amount_currency: z.string().max(10).optional().openapi({ description: 'For a decimal amount: the invoice currency (default) or the asset.' }),
    method: z.string().max(60).optional().openapi({ description: 'Payment method refunded (BTC, ETH-ethereum, USDC-base). Default: the one the customer paid with.', example: 'BTC' }),
    rate_basis: z.enum(['rate_then', 'current', 'fixed']).optional().openapi({ description: 'How an amount in the invoice currency becomes the asset: the invoice\'s locked rate (default), the rate when the customer claims, or `rate`.' }),
    rate: z.string().max(60).optional().openapi({ description: 'With rate_basis "fixed": price of one unit of the asset in the invoice currency.' }),
    fee: z.string().max(60).optional().openapi({ description: 'Deducted from the refund, in the asset (decimal string).' }),
    reason: z.string().max(500).optional(),
  })
  .openapi('RefundCreate');

export const ApproveSchema = z
  .strictObject({
    fee_rate: z.string().max(20).optional().openapi({ description: 'Bitcoin only: network fee rate in sat/vB; default: the node\'s estimatesmartfee for 6 blocks.', example: '2' }),
  })
  .openapi('TransferApprove');

export const SignedSchema = z.strictObject({ psbt: z.string().max(400_000).openapi({ description: 'The signed PSBT, base64.' }) }).openapi('TransferSignedPsbt');
export const TransactionSchema = z.strictObject({ txid: z.string().max(100).openapi({ description: 'The hash of the transaction your wallet sent.', example: '0x5c50…' }) }).openapi('TransferTransaction');
const ClaimSchema = z.strictObject({ destination: z.string().max(200).openapi({ description: 'The customer\'s own address on the refund\'s chain and network.', example: 'bcrt1q…' }) }).openapi('RefundClaim');

const IdParam = z.object({ id: z.string().max(100).openapi({ param: { name: 'id', in: 'path' }, example: 'ref_8Pq…' }) });
const InvoiceIdParam = z.object({ id: z.string().max(100).openapi({ param: { name: 'id', in: 'path' }, example: 'inv_3kT…' }) });
const TokenParam = z.object({ token: z.string().max(100).openapi({ param: { name: 'token', in: 'path' }, example: 'Xk2…' }) });
const ListQuery = z.strictObject({
  ...listQueryShape,
  invoice_id: z.string().max(100).optional(),
  status: z.enum(REFUND_STATUSES).optional(),
});
const InvoiceListQuery = z.strictObject({ ...listQueryShape });

const ClaimViewSchema = z
  .object({
    object: z.literal('refund_claim'),
    status: z.enum(REFUND_STATUSES),
    merchant_name: z.string(),
    asset: z.string().openapi({ example: 'BTC' }),
    chain: z.string().openapi({ example: 'bitcoin' }),
    network: z.string().openapi({ example: 'regtest' }),
    amount: z.string().openapi({ example: '0.00020000' }),
    destination: z.string().nullable(),
  })
  .openapi('RefundClaimView');

export function registerRefundRoutes(app: OpenAPIHono<AppEnv>, deps: Deps, opts: { perMinute?: number } = {}): RefundService {
  const refunds = refundServiceFor(deps);
  const perIp = rateLimitPerIp({
    redis: deps.redis, prefix: deps.config.queuePrefix, perMinute: opts.perMinute ?? DEFAULT_PUBLIC_RATE_LIMIT_PER_MINUTE,
    limited: (c, retryAfter) => errorResponse(c, new KassaError('rate_limited', `Too many requests from this address. Retry after ${retryAfter} seconds.`, { status: 429, type: 'rate_limit_error' })),
  });

  app.openapi(
    createRoute({
      method: 'post', path: '/v1/invoices/{id}/refunds', tags: ['Refunds'], summary: 'Create a refund of an invoice',
      description: 'The refund starts `awaiting_destination`: send its `claim_url` to the customer. Refunds of one invoice and asset never add up to more than it received (docs/refunds.md).',
      middleware: [requireScope('refunds:write'), idempotency(deps)] as const,
      request: { params: InvoiceIdParam, headers: idempotencyHeader, body: jsonBody(CreateSchema) },
      responses: { 201: jsonOk(RefundSchema, 'Created'), ...commonErrors, ...notFoundError, ...conflictError, ...unprocessableError },
    }),
    async (c) => c.json(await refunds.create(c.get('auth').merchant.id, c.req.valid('param').id, c.req.valid('json')), 201),
  );

  app.openapi(
    createRoute({
      method: 'get', path: '/v1/invoices/{id}/refunds', tags: ['Refunds'], summary: 'List the refunds of an invoice, newest first',
      middleware: [requireScope('refunds:read')] as const,
      request: { params: InvoiceIdParam, query: InvoiceListQuery },
      responses: { 200: jsonOk(listSchema(RefundSchema, 'RefundList')), ...commonErrors, ...notFoundError },
    }),
    async (c) => {
      const merchantId = c.get('auth').merchant.id;
      const invoiceId = c.req.valid('param').id;
      await deps.invoices.get(merchantId, invoiceId); // 404 for another merchant's invoice
      const page = await resolvePage(c.req.valid('query'), (id) => refunds.seqOf(merchantId, id));
      const { data, hasMore } = await refunds.list(merchantId, { invoiceId }, page);
      return c.json({ object: 'list' as const, data, has_more: hasMore }, 200);
    },
  );

  app.openapi(
    createRoute({
      method: 'get', path: '/v1/refunds', tags: ['Refunds'], summary: 'List refunds, newest first',
      middleware: [requireScope('refunds:read')] as const,
      request: { query: ListQuery },
      responses: { 200: jsonOk(listSchema(RefundSchema, 'RefundList')), ...commonErrors },
    }),
    async (c) => {
      const merchantId = c.get('auth').merchant.id;
      const q = c.req.valid('query');
      const page = await resolvePage(q, (id) => refunds.seqOf(merchantId, id));
      const { data, hasMore } = await refunds.list(merchantId, { invoiceId: q.invoice_id, status: q.status }, page);
      return c.json({ object: 'list' as const, data, has_more: hasMore }, 200);
    },
  );

  app.openapi(
    createRoute({
      method: 'get', path: '/v1/refunds/{id}', tags: ['Refunds'], summary: 'Retrieve a refund',
      middleware: [requireScope('refunds:read')] as const,
      request: { params: IdParam },
      responses: { 200: jsonOk(RefundSchema), ...commonErrors, ...notFoundError },
    }),
    async (c) => c.json(await refunds.get(c.get('auth').merchant.id, c.req.valid('param').id), 200),
  );

  app.openapi(
    createRoute({
      method: 'post', path: '/v1/refunds/{id}/cancel', tags: ['Refunds'], summary: 'Cancel a refund that was not broadcast',
      middleware: [requireScope('refunds:write'), idempotency(deps)] as const,
      request: { params: IdParam, headers: idempotencyHeader },
      responses: { 200: jsonOk(RefundSchema), ...commonErrors, ...notFoundError, ...conflictError },
    }),
    async (c) => c.json(await refunds.cancel(c.get('auth').merchant.id, c.req.valid('param').id), 200),
  );

  app.openapi(
    createRoute({
      method: 'post', path: '/v1/refunds/{id}/approve', tags: ['Refunds'], summary: 'Approve a claimed refund: Kassa prepares the transaction for your wallet',
      description: 'Moves the refund to `awaiting_signature`. Bitcoin: with `bitcoin.psbt`, the unsigned PSBT: sign it in your wallet and upload it to /signed_psbt. EVM: with `evm.transaction` (and `evm.link`): send it from your wallet and report its hash to /transaction. At most one refund per invoice awaits a signature.',
      middleware: [requireScope('refunds:write'), idempotency(deps)] as const,
      request: { params: IdParam, headers: idempotencyHeader, body: { required: false, content: { 'application/json': { schema: ApproveSchema } } } },
      responses: { 200: jsonOk(RefundSchema), ...commonErrors, ...notFoundError, ...conflictError, ...unprocessableError },
    }),
    async (c) => {
      return c.json(await refunds.approve(c.get('auth').merchant.id, c.req.valid('param').id, c.req.valid('json') ?? {}), 200);
    },
  );

  app.openapi(
    createRoute({
      method: 'post', path: '/v1/refunds/{id}/signed_psbt', tags: ['Refunds'], summary: 'Upload the signed PSBT: Kassa checks, finalizes and broadcasts it',
      description: 'The PSBT must be the refund\'s own (same inputs and outputs), every input signed. Uploading it again re-broadcasts the recorded transaction.',
      middleware: [requireScope('refunds:write'), idempotency(deps)] as const,
      request: { params: IdParam, headers: idempotencyHeader, body: jsonBody(SignedSchema) },
      responses: { 200: jsonOk(RefundSchema), ...commonErrors, ...notFoundError, ...conflictError, ...unprocessableError },
    }),
    async (c) => c.json(await refunds.submitSignedPsbt(c.get('auth').merchant.id, c.req.valid('param').id, c.req.valid('json').psbt), 200),
  );

  app.openapi(
    createRoute({
      method: 'post', path: '/v1/refunds/{id}/transaction', tags: ['Refunds'], summary: 'Report the transaction your wallet sent for a refund',
      description: 'EVM: the hash of the prepared transaction your wallet sent. Bitcoin: instead of uploading the signed PSBT, the txid of a transaction you broadcast yourself (the PSBT\'s, or one paying the customer from any of your wallets). Kassa reads the transaction from the refund\'s chain and accepts it only when it pays exactly the refund\'s amount of the refund\'s asset to the customer\'s address on that chain; otherwise a 422 names `txid` and nothing changes. The refund becomes `broadcast`, then `completed` at the invoice\'s confirmation policy. Reporting the same hash again changes nothing; on EVM another hash is accepted only as a replacement (same sender and nonce) of one not mined yet, on Bitcoin never.',
      middleware: [requireScope('refunds:write'), idempotency(deps)] as const,
      request: { params: IdParam, headers: idempotencyHeader, body: jsonBody(TransactionSchema) },
      responses: { 200: jsonOk(RefundSchema), ...commonErrors, ...notFoundError, ...conflictError, ...unprocessableError },
    }),
    async (c) => c.json(await refunds.submitTransaction(c.get('auth').merchant.id, c.req.valid('param').id, c.req.valid('json').txid), 200),
  );

  // The customer's side: no API key, found by the unguessable claim token, rate limited per client address.
  app.use('/v1/public/refund_claims/*', perIp);
  const claimErrors = {
    404: { description: 'No such claim link.', content: { 'application/json': { schema: ErrorSchema } } },
    429: { description: 'Too many requests from this client address; see Retry-After.', content: { 'application/json': { schema: ErrorSchema } } },
  };
  const claimView = async (token: string) => {
    const v = await refunds.byToken(token);
    if (!v) throw new KassaError('resource_missing', 'No such refund claim link.', { status: 404, param: 'token' });
    return { object: 'refund_claim' as const, status: v.status, merchant_name: v.merchant_name, asset: v.asset, chain: v.chain, network: v.network, amount: v.amount, destination: v.destination };
  };
  app.openapi(
    createRoute({
      method: 'get', path: '/v1/public/refund_claims/{token}', tags: ['Public (checkout)'], summary: 'The customer\'s view of a refund (the claim page uses it)',
      request: { params: TokenParam },
      responses: { 200: jsonOk(ClaimViewSchema), ...claimErrors },
    }),
    async (c) => c.json(await claimView(c.req.valid('param').token), 200),
  );
  app.openapi(
    createRoute({
      method: 'post', path: '/v1/public/refund_claims/{token}', tags: ['Public (checkout)'], summary: 'The customer claims a refund with their address',
      description: 'The address is checked for the refund\'s chain and network (checksums, EIP-55). The amount is locked at this moment.',
      request: { params: TokenParam, body: jsonBody(ClaimSchema) },
      responses: { 200: jsonOk(ClaimViewSchema), 400: { description: 'Invalid address: `param` is `destination`.', content: { 'application/json': { schema: ErrorSchema } } }, 409: { description: 'Already claimed or closed.', content: { 'application/json': { schema: ErrorSchema } } }, ...claimErrors },
    }),
    async (c) => {
      const token = c.req.valid('param').token;
      await refunds.claim(token, c.req.valid('json').destination);
      return c.json(await claimView(token), 200);
    },
  );

  registerClaimPage(app, deps, refunds, perIp);
  return refunds;
}
