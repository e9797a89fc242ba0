/**
 * The merchant's Bitcoin payment method: storing their public key material (descriptor or
 * xpub/ypub/zpub/tpub/upub/vpub) and showing what Kassa will derive from it.
 *
 * The route is `PUT /v1/merchant/payment_methods/bitcoin` (src/api/routes/payment-methods.ts). The
 * network comes from the deployment's Bitcoin chain (the one chain with type "bitcoin"). The view
 * shows the canonical descriptor and the first three receive addresses (`/0/0`, `/0/1`, `/0/2`) so
 * the merchant can compare them with their wallet before taking payments. Only public key material is ever
 * accepted (private keys are rejected by `parseBitcoinKeySource`), and nothing is logged but ids.
 */
import type { Config, BitcoinChainConfig } from '../../config.ts';
import type { Db, Sql, TxSql } from '../../db/client.ts';
import { conflict, unprocessable } from '../../errors.ts';
import { getBitcoinKeySource, setBitcoinKeySource } from './address-pool.ts';
import { parseBitcoinKeySource, type BitcoinKeySourceInput } from './descriptor.ts';
import { deriveAddresses } from './derive.ts';
import type { BitcoinNetworkName } from './networks.ts';

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
