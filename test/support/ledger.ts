/** Shared assertions on invoices and the ledger for watcher-level tests (real Postgres). */
import { expect } from 'vitest';
import type { Sql } from '../../src/db/client.ts';

export async function invoiceRowOf(sql: Sql, id: string) {
  const [r] = await sql<{ status: string; amount_paid: bigint; exception: string | null }[]>`select status, amount_paid, exception from invoices where id = ${id}`;
  return r!;
}

/** Net balance an invoice's payments put on the merchant's available account. */
export async function availableOf(sql: Sql, merchantId: string, invoiceId: string): Promise<bigint> {
  const [r] = await sql<{ s: bigint | null }[]>`
    select sum(amount) as s from ledger_entries where invoice_id = ${invoiceId} and account = ${`merchant:${merchantId}:available`}`;
  return r!.s ?? 0n;
}

/** Every ledger transaction sums to zero per asset. */
export async function expectLedgerBalancedIn(sql: Sql): Promise<void> {
  const unbalanced = await sql`select txn_id, asset, sum(amount) as s from ledger_entries group by txn_id, asset having sum(amount) <> 0`;
  expect(unbalanced).toEqual([]);
}
