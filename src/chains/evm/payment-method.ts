/**
 * The merchant's EVM payment method per chain: a treasury address and the enabled assets, and the
 * per-invoice deposit address (a CREATE2 forwarder predicted offline, see forwarder.ts).
 *
 * The route, `PUT /v1/merchant/payment_methods/evm/{chain}`, is in src/api/routes/payment-methods.ts.
 */
import { getAddress, type Address } from 'viem';
import type { Db } from '../../db/client.ts';
import type { ChainConfig, EvmChainConfig } from '../../config.ts';
import { KassaError, invalidParam, unprocessable } from '../../errors.ts';
import { invoiceSaltFor, predictForwarderAddress } from './forwarder.ts';

export const ZERO_ADDRESS = '0x0000000000000000000000000000000000000000';

export interface EvmPaymentMethod {
  merchantId: string;
  chain: string;
  /** Checksummed. */
  treasury: Address;
  /** Enabled asset symbols on this chain (native symbol and/or token symbols). */
  assets: string[];
  updatedAt: Date;
}

/**
 * Validates a treasury address. All-lowercase or all-uppercase hex is accepted as unchecksummed
 * input; mixed case must carry a valid EIP-55 checksum (a typo then cannot go unnoticed).
 * The zero address is refused. Returns the checksummed form.
 */
export function parseTreasury(value: unknown, param = 'treasury'): Address {
  if (typeof value !== 'string' || !/^0x[0-9a-fA-F]{40}$/.test(value)) {
    throw invalidParam(param, `${param} must be an EVM address: 0x followed by 40 hex digits.`, 'address_invalid');
  }
  const body = value.slice(2);
  const checksummed = getAddress(value.toLowerCase());
  const unchecksummed = body === body.toLowerCase() || body === body.toUpperCase();
  if (!unchecksummed && value !== checksummed) {
    throw invalidParam(param, `${param} has an invalid EIP-55 checksum (a typo?). Copy the address again from your wallet.`, 'address_checksum_invalid');
  }
  if (checksummed.toLowerCase() === ZERO_ADDRESS) {
    throw invalidParam(param, `${param} cannot be the zero address: funds sent there are lost.`, 'treasury_zero_address');
  }
  return checksummed;
}

/** The EVM chain config for `chain`, or 404 `chain_not_configured` (param `chain`). */
export function evmChainConfig(chains: Record<string, ChainConfig>, chain: string): EvmChainConfig {
  const cfg = chains[chain];
  if (!cfg || cfg.type !== 'evm') {
    throw new KassaError('chain_not_configured', `No EVM chain '${chain}' is configured on this Kassa.`, {
      status: 404, param: 'chain', retryable: false,
    });
  }
  return cfg;
}

/** Asset symbols available on an EVM chain: the native coin first, then the configured tokens. */
export function evmChainAssets(cfg: EvmChainConfig): string[] {
  return [cfg.native_symbol, ...cfg.tokens.map((t) => t.symbol)];
}

/** Validates the requested asset symbols (case-insensitive); default = every asset of the chain. */
export function parseEvmAssets(cfg: EvmChainConfig, assets: string[] | undefined): string[] {
  const available = evmChainAssets(cfg);
  if (assets === undefined) return available;
  if (assets.length === 0) throw invalidParam('assets', 'assets must list at least one asset.', 'assets_empty');
  const out: string[] = [];
  for (const raw of assets) {
    const symbol = raw.toUpperCase();
    if (!available.includes(symbol)) {
      throw invalidParam('assets', `Asset '${raw}' is not configured on this chain. Available: ${available.join(', ')}.`, 'asset_unsupported');
    }
    if (!out.includes(symbol)) out.push(symbol);
  }
  return out;
}

interface SettingsRow {
  merchant_id: string;
  chain: string;
  treasury: string;
  assets: string[];
  updated_at: Date;
}

const toMethod = (r: SettingsRow): EvmPaymentMethod => ({
  merchantId: r.merchant_id, chain: r.chain, treasury: getAddress(r.treasury), assets: r.assets, updatedAt: r.updated_at,
});

/** Creates or replaces the merchant's settings for one EVM chain. Inputs must be validated already. */
export async function setEvmPaymentMethod(
  db: Db,
  merchantId: string,
  chain: string,
  input: { treasury: Address; assets: string[] },
): Promise<EvmPaymentMethod> {
  const treasury = getAddress(input.treasury);
  const [row] = await db<SettingsRow[]>`
    insert into merchant_evm_settings (merchant_id, chain, treasury, assets, updated_at)
    values (${merchantId}, ${chain}, ${treasury}, ${input.assets}, now())
    on conflict (merchant_id, chain) do update set treasury = excluded.treasury, assets = excluded.assets, updated_at = now()
    returning merchant_id, chain, treasury, assets, updated_at`;
  return toMethod(row!);
}

export async function getEvmPaymentMethod(db: Db, merchantId: string, chain: string): Promise<EvmPaymentMethod | null> {
  const [row] = await db<SettingsRow[]>`
    select merchant_id, chain, treasury, assets, updated_at from merchant_evm_settings where merchant_id = ${merchantId} and chain = ${chain}`;
  return row ? toMethod(row) : null;
}

export interface EvmDepositAddress {
  /** The forwarder address (checksummed). Store it lowercase in deposit_addresses. */
  address: Address;
  /** Enabled asset symbols. */
  assets: string[];
  /** The treasury bound into the address (store it: the merchant may change treasury later). */
  treasury: Address;
  /** What to put in deposit_addresses.derivation (the sweeper reads `treasury` from it). */
  derivation: { treasury: Address; factory: Address; implementation: Address };
}

/** Whether a configured chain is an EVM chain: for what only EVM chains have (`kassa evm`, the dashboard's EVM settings). */
export function isEvmChain(cfg: { type: string } | undefined): cfg is EvmChainConfig {
  return cfg?.type === 'evm';
}

/** The chain's forwarder factory and implementation; 422 `chain_not_deployed` when the chain config lacks them. */
export function forwarderDeployment(key: string, cfg: EvmChainConfig): { factory: string; implementation: string } {
  if (!cfg.factory || !cfg.implementation) {
    throw unprocessable('chain_not_deployed', `Chain '${key}' has no forwarder factory configured: run \`kassa evm deploy --chain ${key}\` and set factory/implementation in the chains config.`, 'chain');
  }
  return { factory: cfg.factory, implementation: cfg.implementation };
}

/**
 * The deposit address of an invoice on an EVM chain: predictForwarderAddress(factory,
 * implementation, merchant treasury, invoiceSaltFor(invoiceId)). No RPC. Null when the merchant has
 * not configured this chain; 422 `chain_not_deployed` when the chain config has no factory.
 */
export async function evmDepositAddress(
  db: Db,
  p: { merchantId: string; chain: string; invoiceId: string; cfg: EvmChainConfig },
): Promise<EvmDepositAddress | null> {
  const settings = await getEvmPaymentMethod(db, p.merchantId, p.chain);
  if (!settings) return null;
  const deployment = forwarderDeployment(p.chain, p.cfg);
  const factory = getAddress(deployment.factory);
  const implementation = getAddress(deployment.implementation);
  const address = predictForwarderAddress({ factory, implementation, treasury: settings.treasury, invoiceSalt: invoiceSaltFor(p.invoiceId) });
  return { address, assets: settings.assets, treasury: settings.treasury, derivation: { treasury: settings.treasury, factory, implementation } };
}
