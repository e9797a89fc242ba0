/**
 * Checks that the reconciliation report adds up with refunds (docs/reconciliation.md, "Refunds"):
 * every refund figure of the JSON is a sum over the report's own rows and refund rows of the CSV,
 * net = received + not counted − refunded per invoice, per currency and per asset, and the ledger's
 * `available` balance of the report's invoices per asset is the report's net received in that asset.
 */
import { expect } from 'vitest';
import type { Sql } from '../../src/db/client.ts';
import { parseCsv } from '../support/csv.ts';

/** A signed decimal string as an integer of 10^-18 units (so strings of any precision compare exactly). */
export function units(d: string): bigint {
  const neg = d.startsWith('-');
  const [w, f = ''] = (neg ? d.slice(1) : d).split('.');
  const v = BigInt(w!) * 10n ** 18n + BigInt(f.padEnd(18, '0'));
  return neg ? -v : v;
}
const sum = (xs: (string | null | undefined)[]) => xs.reduce((a, x) => a + (x ? units(x) : 0n), 0n);

export interface RefundReport {
  json: Record<string, any>;
  rows: Record<string, string>[];
}

export async function expectReportAddsUp(
  fetchReport: (format: 'json' | 'csv') => Promise<string>,
  sql: Sql,
  merchantId: string,
): Promise<RefundReport> {
  const json = JSON.parse(await fetchReport('json'));
  const rows = parseCsv(await fetchReport('csv')) as Record<string, string>[];
  expect(rows.every((r) => ['payment', 'refund', 'refund_network_fee', 'payout', 'payout_network_fee', ''].includes(r.row_type!))).toBe(true);

  for (const inv of json.invoices) {
    const mine = rows.filter((r) => r.invoice_id === inv.invoice_id);
    const refundRows = mine.filter((r) => r.row_type!.startsWith('refund'));
    // JSON: refunded = SUM(value + network_fee_value) over its refunds; net = received + not counted − refunded.
    expect(units(inv.refunded)).toBe(sum(inv.refunds.flatMap((f: { value: string | null; network_fee_value: string | null }) => [f.value, f.network_fee_value])));
    expect(units(inv.net_received)).toBe(units(inv.received) + units(inv.not_counted) - units(inv.refunded));
    // CSV: the payment rows give received, the refund rows −refunded; the invoice columns repeat the JSON.
    expect(sum(mine.filter((r) => r.row_type === 'payment' && r.counted === 'true').map((r) => r.value))).toBe(units(inv.received));
    expect(-sum(refundRows.map((r) => r.value))).toBe(units(inv.refunded));
    for (const r of mine) expect([r.invoice_refunded, r.invoice_net_received]).toEqual([inv.refunded, inv.net_received]);
    expect(new Set(refundRows.map((r) => r.refund_id))).toEqual(new Set(inv.refunds.map((f: { refund_id: string }) => f.refund_id)));
  }
  for (const c of json.totals.per_currency) {
    const invs = json.invoices.filter((i: { currency: string }) => i.currency === c.currency);
    expect(units(c.refunded)).toBe(sum(invs.map((i: { refunded: string }) => i.refunded)));
    expect(units(c.net_received)).toBe(units(c.received) + sum(invs.map((i: { not_counted: string }) => i.not_counted)) - units(c.refunded));
    // In the CSV: SUM(value) over all rows of the currency + the not-counted value = net received.
    const inCsv = rows.filter((r) => r.invoice_currency === c.currency);
    expect(sum(inCsv.map((r) => r.value)) + sum(invs.map((i: { not_counted: string }) => i.not_counted))).toBe(units(c.net_received));
  }
  for (const a of json.totals.per_asset) {
    const mine = rows.filter((r) => r.method === a.method && !r.row_type!.startsWith('payout')); // payouts are not invoice money
    const live = mine.filter((r) => r.row_type === 'payment' && (r.payment_status === 'pending' || r.payment_status === 'confirmed'));
    const refunds = mine.filter((r) => r.row_type!.startsWith('refund'));
    expect(-sum(refunds.map((r) => r.amount))).toBe(units(a.refunded));
    expect(sum([...live, ...refunds].map((r) => r.amount))).toBe(units(a.net_received));
    expect(units(a.net_received)).toBe(units(a.received) - units(a.refunded));
    expect(a.refunds).toBe(new Set(refunds.map((r) => r.refund_id)).size);
    // The ledger agrees: what the report's invoices left on the merchant's available account in this asset.
    const ids = json.invoices.map((i: { invoice_id: string }) => i.invoice_id);
    const [l] = await sql<{ s: string | null }[]>`
      select sum(amount)::text as s from ledger_entries where invoice_id = any(${ids}) and account = ${`merchant:${merchantId}:available`} and asset = ${a.method}`;
    const decimals = a.net_received.includes('.') ? a.net_received.length - a.net_received.indexOf('.') - 1 : 0;
    expect(BigInt(l!.s ?? '0') * 10n ** BigInt(18 - decimals), `ledger available in ${a.method}`).toBe(units(a.net_received));
  }
  return { json, rows };
}
