/**
 * Shared EVM test setup: a hardhat node with the Kassa contracts and test tokens deployed (via
 * test/contracts/fixture.ts), a chains config object for chain key 'ethereum' (chain id 31337,
 * tokens USDC = TestUSDC and USDT = TestUSDT), and helpers to create invoices whose deposit
 * address is the real predicted forwarder of (treasury, invoice id).
 */
import { getAddress, type Address } from 'viem';
import { parseChainsFile, type ChainConfig, type EvmChainConfig } from '../../src/config.ts';
import type { Sql } from '../../src/db/client.ts';
import { newId } from '../../src/ids.ts';
import { invoiceSaltFor, predictForwarderAddress } from '../../src/chains/evm/forwarder.ts';
import { setupContractsFixture, type ContractsFixture } from '../contracts/fixture.ts';

export const EVM_CHAIN = 'ethereum';

export interface EvmTestEnv {
  f: ContractsFixture;
  cfg: EvmChainConfig;
  chains: Record<string, ChainConfig>;
  usdc: Address;
  usdt: Address;
  stop(): Promise<void>;
}

export function evmChainsConfig(rpcUrl: string, c: { factory: Address; implementation: Address; usdc: Address; usdt: Address }, extra: Record<string, unknown> = {}) {
  return parseChainsFile({
    chains: {
      [EVM_CHAIN]: {
        type: 'evm', network: 'hardhat', chain_id: 31337, rpc_url: rpcUrl,
        factory: c.factory, implementation: c.implementation,
        confirmations: { high: 0, medium: 1, low_medium: 2, low: 3 },
        tokens: [
          { symbol: 'USDC', address: c.usdc, decimals: 6 },
          { symbol: 'USDT', address: c.usdt, decimals: 6 },
        ],
        poll_interval_ms: 50, reorg_window: 20, max_log_range: 500,
        ...extra,
      },
    },
  }).chains;
}

export async function setupEvm(extra: Record<string, unknown> = {}): Promise<EvmTestEnv> {
  const f = await setupContractsFixture();
  const chains = evmChainsConfig(f.node.url, { factory: f.contracts.factory, implementation: f.contracts.implementation, usdc: f.contracts.testUsdc, usdt: f.contracts.testUsdt }, extra);
  const cfg = chains[EVM_CHAIN] as EvmChainConfig;
  return { f, cfg, chains, usdc: f.contracts.testUsdc, usdt: f.contracts.testUsdt, stop: () => f.node.stop() };
}

export interface EvmInvoice {
  invoiceId: string;
  /** Checksummed forwarder address. */
  address: Address;
  /** Lowercase (as stored). */
  lower: string;
}

/**
 * An invoice of `usd` cents payable in ETH (rate 1000 USD), USDC and USDT (rate 1), whose deposit
 * address is the forwarder of (treasury, invoice id). confirmations_required per `confirmations`.
 */
export async function insertEvmInvoice(
  sql: Sql,
  env: EvmTestEnv,
  opts: { merchantId: string; treasury: Address; usdCents?: bigint; confirmations?: number; monitoringUntil?: Date },
): Promise<EvmInvoice> {
  const id = newId('inv');
  const address = predictForwarderAddress({ factory: env.f.contracts.factory, implementation: env.f.contracts.implementation, treasury: opts.treasury, invoiceSalt: invoiceSaltFor(id) });
  const lower = address.toLowerCase();
  const cents = opts.usdCents ?? 1000n;
  const conf = opts.confirmations ?? 1;
  const expiresAt = new Date(Date.now() + 15 * 60_000);
  const monitoringUntil = opts.monitoringUntil ?? new Date(expiresAt.getTime() + 24 * 3600_000);
  await sql.begin(async (tx) => {
    await tx`
      insert into invoices (id, merchant_id, amount, currency, currency_decimals, speed_policy, tolerance_bps, expires_at, monitoring_until)
      values (${id}, ${opts.merchantId}, ${cents}, 'USD', 2, 'medium', 0, ${expiresAt}, ${monitoringUntil})`;
    const methods = [
      { method: `ETH-${EVM_CHAIN}`, asset: 'ETH', token: null, decimals: 18, rate: '1000', due: cents * 10n ** 13n },
      { method: `USDC-${EVM_CHAIN}`, asset: 'USDC', token: env.usdc.toLowerCase(), decimals: 6, rate: '1', due: cents * 10n ** 4n },
      { method: `USDT-${EVM_CHAIN}`, asset: 'USDT', token: env.usdt.toLowerCase(), decimals: 6, rate: '1', due: cents * 10n ** 4n },
    ];
    for (const m of methods) {
      await tx`
        insert into invoice_payment_methods (invoice_id, method, chain, asset, token, decimals, address, rate, rate_source, amount_due, confirmations_required)
        values (${id}, ${m.method}, ${EVM_CHAIN}, ${m.asset}, ${m.token}, ${m.decimals}, ${lower}, ${m.rate}, 'fixture', ${m.due}, ${conf})`;
    }
    await tx`
      insert into deposit_addresses (chain, address, invoice_id, merchant_id, derivation)
      values (${EVM_CHAIN}, ${lower}, ${id}, ${opts.merchantId}, ${tx.json({ treasury: getAddress(opts.treasury), factory: env.f.contracts.factory, implementation: env.f.contracts.implementation })})`;
  });
  return { invoiceId: id, address, lower };
}

/** `n` extra open invoices with random (unfunded) deposit addresses, inserted in bulk SQL. */
export async function insertManyOpenInvoices(sql: Sql, merchantId: string, n: number): Promise<void> {
  await sql`
    with ids as (
      select 'inv_bulk' || g || '_' || substr(md5(random()::text), 1, 8) as id, g from generate_series(1, ${n}) g
    ), inv as (
      insert into invoices (id, merchant_id, amount, currency, currency_decimals, speed_policy, tolerance_bps, expires_at, monitoring_until)
      select id, ${merchantId}, 1000, 'USD', 2, 'medium', 0, now() + interval '15 minutes', now() + interval '1 day' from ids
      returning id
    )
    insert into deposit_addresses (chain, address, invoice_id, merchant_id)
    select ${EVM_CHAIN}, '0x' || substr(md5(inv.id), 1, 32) || substr(md5(inv.id || 'x'), 1, 8), inv.id, ${merchantId} from inv`;
}
