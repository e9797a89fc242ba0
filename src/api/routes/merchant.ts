import { createRoute, z, type OpenAPIHono } from '@hono/zod-openapi';
import type { Deps } from '../../deps.ts';
import type { Merchant } from '../../merchants/service.ts';
import { SPEED_POLICIES } from '../../merchants/service.ts';
import { formatAmount, parseAmount } from '../../money/amount.ts';
import { invalidParam } from '../../errors.ts';
import type { AppEnv } from '../env.ts';
import { requireScope } from '../middleware/auth.ts';
import { commonErrors, jsonBody, jsonOk } from '../schemas.ts';

export const MerchantSchema = z
  .object({
    id: z.string().openapi({ example: 'mer_7Qd…' }),
    object: z.literal('merchant'),
    name: z.string(),
    default_expiry_seconds: z.number().int().openapi({ description: 'Invoice lifetime when `expires_in` is not given.' }),
    monitoring_window_seconds: z.number().int().openapi({ description: 'How long after expiry payments are still recorded (as late payments).' }),
    payment_tolerance_percent: z.string().openapi({ example: '0.50', description: 'An invoice counts as paid when at least (100 − this)% arrived.' }),
    default_speed_policy: z.enum(SPEED_POLICIES),
    created_at: z.string(),
  })
  .openapi('Merchant');

export function merchantToApi(m: Merchant) {
  return {
    id: m.id,
    object: 'merchant' as const,
    name: m.name,
    default_expiry_seconds: m.defaultExpirySeconds,
    monitoring_window_seconds: m.monitoringWindowSeconds,
    payment_tolerance_percent: formatAmount(BigInt(m.paymentToleranceBps), 2),
    default_speed_policy: m.defaultSpeedPolicy,
    created_at: m.createdAt.toISOString(),
  };
}

const PatchSchema = z
  .strictObject({
    name: z.string().min(1).max(200).optional(),
    default_expiry_seconds: z.number().int().min(60).max(604800).optional(),
    monitoring_window_seconds: z.number().int().min(0).max(2592000).optional(),
    payment_tolerance_percent: z.string().optional().openapi({ description: 'Decimal string, 0 to 50, at most 2 decimals.', example: '0.50' }),
    default_speed_policy: z.enum(SPEED_POLICIES).optional(),
  })
  .openapi('MerchantUpdate');

const EnabledMethodSchema = z
  .object({
    method: z.string().openapi({ example: 'USDC-ethereum' }),
    chain: z.string(),
    network: z.string(),
    asset: z.string(),
    decimals: z.number().int(),
    token: z.string().optional(),
  })
  .openapi('EnabledPaymentMethod');

export function registerMerchantRoutes(app: OpenAPIHono<AppEnv>, deps: Deps): void {
  app.openapi(
    createRoute({
      method: 'get', path: '/v1/merchant/payment_methods', tags: ['Merchant'], summary: 'Payment methods this merchant accepts',
      responses: { 200: jsonOk(z.object({ object: z.literal('list'), data: z.array(EnabledMethodSchema), has_more: z.boolean() })), ...commonErrors },
    }),
    async (c) => {
      const methods = await deps.invoices.enabledMethods(deps.sql, c.get('auth').merchant.id);
      const data = methods.map((m) => ({
        method: m.method, chain: m.chain, network: deps.config.chains[m.chain]?.network ?? 'unknown', asset: m.symbol, decimals: m.decimals,
        ...(m.token ? { token: m.token } : {}),
      }));
      return c.json({ object: 'list' as const, data, has_more: false }, 200);
    },
  );

  app.openapi(
    createRoute({
      method: 'get', path: '/v1/merchant', tags: ['Merchant'], summary: 'The merchant this API key belongs to',
      responses: { 200: jsonOk(MerchantSchema), ...commonErrors },
    }),
    async (c) => c.json(merchantToApi(await deps.merchants.get(deps.sql, c.get('auth').merchant.id)), 200),
  );

  app.openapi(
    createRoute({
      method: 'patch', path: '/v1/merchant', tags: ['Merchant'], summary: 'Update merchant settings',
      middleware: [requireScope('settings:write')] as const,
      request: { body: jsonBody(PatchSchema) },
      responses: { 200: jsonOk(MerchantSchema), ...commonErrors },
    }),
    async (c) => {
      const body = c.req.valid('json');
      let paymentToleranceBps: number | undefined;
      if (body.payment_tolerance_percent !== undefined) {
        const bps = parseAmount(body.payment_tolerance_percent, 2, { param: 'payment_tolerance_percent', allowZero: true });
        if (bps > 5000n) throw invalidParam('payment_tolerance_percent', 'payment_tolerance_percent must be between 0 and 50.');
        paymentToleranceBps = Number(bps);
      }
      const m = await deps.merchants.update(deps.sql, c.get('auth').merchant.id, {
        name: body.name,
        defaultExpirySeconds: body.default_expiry_seconds,
        monitoringWindowSeconds: body.monitoring_window_seconds,
        paymentToleranceBps,
        defaultSpeedPolicy: body.default_speed_policy as Merchant['defaultSpeedPolicy'] | undefined,
      });
      return c.json(merchantToApi(m), 200);
    },
  );
}
