/**
 * The merchant's Bitcoin payment method: storing their public key material (descriptor or
 * xpub/ypub/zpub/tpub/upub/vpub) and showing what Kassa will derive from it.
 *
 * `PUT /v1/merchant/payment_methods/bitcoin` (scope settings:write). The network comes from the
 * deployment's Bitcoin chain (the one chain with type "bitcoin"). The response shows the canonical
 * descriptor and the first three receive addresses (`/0/0`, `/0/1`, `/0/2`) so the merchant can
 * compare them with their wallet before taking payments. Only public key material is ever
 * accepted (private keys are rejected by `parseBitcoinKeySource`), and nothing is logged but ids.
 */
import { createRoute, z, type OpenAPIHono } from '@hono/zod-openapi';
import type { Config, BitcoinChainConfig } from '../../config.ts';
import type { Db, Sql, TxSql } from '../../db/client.ts';
import type { Deps } from '../../deps.ts';
import { conflict, unprocessable } from '../../errors.ts';
import type { AppEnv } from '../../api/env.ts';
import { requireScope } from '../../api/middleware/auth.ts';
import { commonErrors, conflictError, jsonBody, jsonOk, unprocessableError } from '../../api/schemas.ts';
import { getBitcoinKeySource, setBitcoinKeySource } from './address-pool.ts';
import { parseBitcoinKeySource, type BitcoinKeySourceInput } from './descriptor.ts';
import { deriveAddresses } from './derive.ts';
import { BITCOIN_ADDRESS_TYPES, type BitcoinNetworkName } from './networks.ts';

/** The deployment's Bitcoin chain (key and config), or null when none is configured. */
export function configuredBitcoinChain(config: Pick<Config, 'chains'>): { chain: string; cfg: BitcoinChainConfig } | null {
  for (const [chain, cfg] of Object.entries(config.chains)) if (cfg.type === 'bitcoin') return { chain, cfg };
  return null;
}

export interface BitcoinPaymentMethodView {
  object: 'payment_method';
  method: 'BTC';
  chain: string;
  network: BitcoinNetworkName;
  descriptor: string;
  address_type: string;
  /** The first receive addresses (`/0/0`…`/0/2`), to check against the merchant's wallet. */
  first_addresses: { index: number; address: string }[];
  updated_at: string;
}

function view(chain: string, s: { descriptor: string; source: ReturnType<typeof parseBitcoinKeySource>; createdAt: Date }): BitcoinPaymentMethodView {
  return {
    object: 'payment_method',
    method: 'BTC',
    chain,
    network: s.source.network,
    descriptor: s.descriptor,
    address_type: s.source.address_type,
    first_addresses: deriveAddresses(s.source, 0, 3).map((d) => ({ index: d.index, address: d.address })),
    updated_at: s.createdAt.toISOString(),
  };
}

function requireBitcoinChain(config: Pick<Config, 'chains'>): { chain: string; cfg: BitcoinChainConfig } {
  const found = configuredBitcoinChain(config);
  if (!found) {
    throw unprocessable('chain_not_configured', 'This Kassa deployment has no Bitcoin chain configured (a chain with type "bitcoin" in the chains file), so the Bitcoin payment method cannot be set up.');
  }
  return found;
}

/**
 * Validates and stores the merchant's Bitcoin key source (replacing the previous one; addresses
 * already handed out stay valid) and derives the first address pool. 400 for invalid or private
 * key material (`param` names the field), 409 `bitcoin_key_in_use` when another merchant's key
 * derives the same addresses, 422 `chain_not_configured` without a Bitcoin chain.
 */
export async function setBitcoinPaymentMethod(
  sql: Sql,
  config: Pick<Config, 'chains'>,
  merchantId: string,
  input: BitcoinKeySourceInput,
): Promise<BitcoinPaymentMethodView> {
  const { chain, cfg } = requireBitcoinChain(config);
  const source = parseBitcoinKeySource(input, cfg.network);
  const param = input.descriptor !== undefined ? 'descriptor' : 'xpub';
  const stored = await sql.begin(async (tx) => {
    await refuseKeyOfAnotherMerchant(tx, merchantId, chain, source, param);
    return setBitcoinKeySource(tx, merchantId, chain, source);
  });
  return view(chain, stored);
}

/**
 * 409 `bitcoin_key_in_use` when another merchant on this deployment has (or had) a key source
 * that derives the same addresses: the same normalised account key (`source.xpub`, standard
 * version bytes, so an xpub, a zpub and a descriptor of one key are the same key) with the same
 * address type and network, or any key source whose derived addresses include this key's first
 * receive address. Two merchants deriving from one key would be handed the same deposit
 * addresses. Key sources the merchant replaced still count: their addresses may be on invoices.
 * Serialised per key (advisory lock), so two merchants setting the same key at once cannot both
 * pass. The message does not say which merchant holds the key.
 */
async function refuseKeyOfAnotherMerchant(tx: TxSql, merchantId: string, chain: string, source: ReturnType<typeof parseBitcoinKeySource>, param: string): Promise<void> {
  await tx`select pg_advisory_xact_lock(hashtextextended(${`kassa:bitcoin-key:${chain}:${source.xpub}`}, 0))`;
  const first = deriveAddresses(source, 0, 1)[0]!.address;
  const [taken] = await tx<{ n: number }[]>`
    select 1 as n from bitcoin_key_sources
    where chain = ${chain} and merchant_id <> ${merchantId}
      and source->>'xpub' = ${source.xpub} and source->>'address_type' = ${source.address_type} and source->>'network' = ${source.network}
    union all
    select 1 from deposit_addresses where chain = ${chain} and address = ${first} and merchant_id <> ${merchantId}
    limit 1`;
  if (taken) {
    throw conflict(
      'bitcoin_key_in_use',
      'Another merchant account on this Kassa already uses this key, so both accounts would be given the same deposit addresses. Use a key (account xpub or descriptor) that belongs to this merchant only.',
      param,
    );
  }
}

/** The merchant's Bitcoin payment method, or null when they have not set one (or no chain is configured). */
export async function getBitcoinPaymentMethod(db: Db, config: Pick<Config, 'chains'>, merchantId: string): Promise<BitcoinPaymentMethodView | null> {
  const found = configuredBitcoinChain(config);
  if (!found) return null;
  const stored = await getBitcoinKeySource(db, merchantId, found.chain);
  return stored ? view(found.chain, stored) : null;
}

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

const PutSchema = z
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
      request: { body: jsonBody(PutSchema) },
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
