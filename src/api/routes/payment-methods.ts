/**
 * The merchant's payment methods over HTTP. The chain modules hold the rules and the storage
 * (src/chains/bitcoin/payment-method.ts, src/chains/evm/payment-method.ts); these routes validate
 * the request, call them and answer.
 *
 *   PUT /v1/merchant/payment_methods/bitcoin        { "descriptor": "wpkh(…)" } or { "xpub": "…" }
 *   PUT /v1/merchant/payment_methods/evm/{chain}    { "treasury": "0x…", "assets": ["ETH", "USDC"] }
 */
import { createRoute, z, type OpenAPIHono } from '@hono/zod-openapi';
import type { Deps } from '../../deps.ts';
import { setBitcoinPaymentMethod } from '../../chains/bitcoin/payment-method.ts';
import type { BitcoinKeySourceInput } from '../../chains/bitcoin/descriptor.ts';
import { BITCOIN_ADDRESS_TYPES } from '../../chains/bitcoin/networks.ts';
import { evmChainConfig, parseEvmAssets, parseTreasury, setEvmPaymentMethod, type EvmPaymentMethod } from '../../chains/evm/payment-method.ts';
import type { AppEnv } from '../env.ts';
import { requireScope } from '../middleware/auth.ts';
import { commonErrors, conflictError, jsonBody, jsonOk, notFoundError, unprocessableError } from '../schemas.ts';

// ---------------------------------------------------------------------------------------------
// Bitcoin

export const BitcoinPaymentMethodSchema = z
  .object({
    object: z.literal('payment_method'),
    method: z.literal('BTC'),
    chain: z.string().openapi({ example: 'bitcoin' }),
    network: z.enum(['mainnet', 'testnet', 'signet', 'regtest']),
    descriptor: z.string().openapi({ description: 'Canonical receive descriptor with checksum.', example: 'wpkh([73c5da0a/84h/0h/0h]xpub6C…/0/*)#…' }),
    address_type: z.enum(BITCOIN_ADDRESS_TYPES as [string, ...string[]]),
    first_addresses: z
      .array(z.object({ index: z.number().int(), address: z.string() }))
      .openapi({ description: 'The first three receive addresses: check that your wallet shows the same ones.' }),
    updated_at: z.string(),
  })
  .openapi('BitcoinPaymentMethod');

const BitcoinPutSchema = z
  .strictObject({
    descriptor: z.string().max(1000).optional().openapi({ description: 'A public output descriptor: wpkh(KEY/0/*), tr(KEY/0/*) or sh(wpkh(KEY/0/*)), optionally with a key origin and checksum.' }),
    xpub: z.string().max(200).optional().openapi({ description: 'An extended public key (xpub/ypub/zpub on mainnet, tpub/upub/vpub on test networks).' }),
    address_type: z.enum(BITCOIN_ADDRESS_TYPES as [string, ...string[]]).optional().openapi({ description: 'Script type; implied by ypub/zpub/upub/vpub, default p2wpkh.' }),
  })
  .openapi('BitcoinPaymentMethodUpdate');

export function registerBitcoinPaymentMethodRoutes(app: OpenAPIHono<AppEnv>, deps: Deps): void {
  app.openapi(
    createRoute({
      method: 'put', path: '/v1/merchant/payment_methods/bitcoin', tags: ['Merchant'],
      summary: 'Set the Bitcoin payment method (public descriptor or xpub)',
      description: 'Replaces the key Kassa derives deposit addresses from. Addresses already given to invoices stay valid. Never send a private key: it is rejected. A key another merchant account on this Kassa uses is refused (409 bitcoin_key_in_use): both would get the same deposit addresses.',
      middleware: [requireScope('settings:write')] as const,
      request: { body: jsonBody(BitcoinPutSchema) },
      responses: { 200: jsonOk(BitcoinPaymentMethodSchema), ...commonErrors, ...conflictError, ...unprocessableError },
    }),
    async (c) => {
      const body = c.req.valid('json');
      const merchantId = c.get('auth').merchant.id;
      const input: BitcoinKeySourceInput = {
        descriptor: body.descriptor,
        xpub: body.xpub,
        address_type: body.address_type as BitcoinKeySourceInput['address_type'],
      };
      const result = await setBitcoinPaymentMethod(deps.sql, deps.config, merchantId, input);
      c.get('log').info({ merchant_id: merchantId, chain: result.chain, address_type: result.address_type }, 'bitcoin payment method set');
      return c.json(result, 200);
    },
  );
}

// ---------------------------------------------------------------------------------------------
// EVM

const EvmPaymentMethodSchema = z
  .object({
    object: z.literal('evm_payment_method'),
    chain: z.string().openapi({ example: 'ethereum' }),
    treasury: z.string().openapi({ example: '0x52908400098527886E0F7030069857D2E4169EE7', description: 'Checksummed (EIP-55).' }),
    assets: z.array(z.string()).openapi({ example: ['ETH', 'USDC'] }),
    updated_at: z.string(),
  })
  .openapi('EvmPaymentMethod');

const EvmPutSchema = z
  .strictObject({
    treasury: z.string().max(100).openapi({
      description: 'Where every deposit on this chain can be paid out to, and only there. EIP-55 checksummed, or all lowercase. Not the zero address. A contract treasury must accept plain ETH transfers.',
      example: '0x52908400098527886E0F7030069857D2E4169EE7',
    }),
    assets: z.array(z.string().max(20)).max(50).optional().openapi({
      description: 'Asset symbols to accept on this chain (native coin and/or configured tokens). Default: all of them.',
      example: ['ETH', 'USDC'],
    }),
  })
  .openapi('EvmPaymentMethodUpdate');

export const evmPaymentMethodToApi = (m: EvmPaymentMethod) => ({
  object: 'evm_payment_method' as const,
  chain: m.chain,
  treasury: m.treasury,
  assets: m.assets,
  updated_at: m.updatedAt.toISOString(),
});

const ChainParam = z.object({ chain: z.string().max(40).openapi({ param: { name: 'chain', in: 'path' }, example: 'ethereum' }) });

export function registerEvmPaymentMethodRoutes(app: OpenAPIHono<AppEnv>, deps: Deps): void {
  app.openapi(
    createRoute({
      method: 'put', path: '/v1/merchant/payment_methods/evm/{chain}', tags: ['Merchant'],
      summary: 'Set the treasury and accepted assets for an EVM chain',
      middleware: [requireScope('settings:write')] as const,
      request: { params: ChainParam, body: jsonBody(EvmPutSchema) },
      responses: { 200: jsonOk(EvmPaymentMethodSchema), ...commonErrors, ...notFoundError },
    }),
    async (c) => {
      const { chain } = c.req.valid('param');
      const body = c.req.valid('json');
      const cfg = evmChainConfig(deps.config.chains, chain);
      const treasury = parseTreasury(body.treasury);
      const assets = parseEvmAssets(cfg, body.assets);
      const m = await setEvmPaymentMethod(deps.sql, c.get('auth').merchant.id, chain, { treasury, assets });
      c.get('log').info({ chain, assets }, 'evm payment method updated');
      return c.json(evmPaymentMethodToApi(m), 200);
    },
  );
}
