/**
 * Direct database fixtures for chain-watcher and settlement tests that need an invoice with known
 * deposit addresses without going through the HTTP API.
 */
import type { Sql } from '../../src/db/client.ts';
import { newId } from '../../src/ids.ts';

export interface FixtureMethod {
  method: string;
  chain: string;
  asset: string;
  token?: string | null;
  decimals: number;
  /** Canonical form: bech32 lowercase (Bitcoin) or lowercase hex (EVM). */
  address: string;
  script?: Uint8Array | null;
  rate: string;
  amountDue: bigint;
  confirmationsRequired: number;
}

export async function insertInvoice(
  sql: Sql,
  opts: {
    merchantId: string;
    amount: bigint;
    currency?: string;
    currencyDecimals?: number;
    expiresAt?: Date;
    monitoringUntil?: Date;
    speedPolicy?: 'high' | 'medium' | 'low_medium' | 'low';
    toleranceBps?: number;
    methods: FixtureMethod[];
  },
): Promise<string> {
  const id = newId('inv');
  const expiresAt = opts.expiresAt ?? new Date(Date.now() + 15 * 60_000);
  const monitoringUntil = opts.monitoringUntil ?? new Date(expiresAt.getTime() + 24 * 3600_000);
  await sql.begin(async (tx) => {
    await tx`
      insert into invoices (id, merchant_id, amount, currency, currency_decimals, speed_policy, tolerance_bps, expires_at, monitoring_until)
      values (${id}, ${opts.merchantId}, ${opts.amount}, ${opts.currency ?? 'USD'}, ${opts.currencyDecimals ?? 2},
              ${opts.speedPolicy ?? 'medium'}, ${opts.toleranceBps ?? 0}, ${expiresAt}, ${monitoringUntil})`;
    for (const m of opts.methods) {
      await tx`
        insert into invoice_payment_methods (invoice_id, method, chain, asset, token, decimals, address, rate, rate_source, amount_due, confirmations_required)
        values (${id}, ${m.method}, ${m.chain}, ${m.asset}, ${m.token ?? null}, ${m.decimals}, ${m.address}, ${m.rate}, 'fixture', ${m.amountDue}, ${m.confirmationsRequired})`;
      await tx`
        insert into deposit_addresses (chain, address, invoice_id, merchant_id, script)
        values (${m.chain}, ${m.address}, ${id}, ${opts.merchantId}, ${m.script ? Buffer.from(m.script) : null})
        on conflict (chain, address) do nothing`;
    }
  });
  return id;
}
