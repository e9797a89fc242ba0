/**
 * The reconciliation report for finance staff (DESIGN.md §7): for a period, every invoice created
 * in it with each on-chain payment (chain, asset, tx, output, block, confirmations, amount, locked
 * rate, value), expected vs received; totals per asset and per currency; payments that were not
 * counted toward a price (late, in an asset the invoice did not offer, reversed by a reorg or
 * double-spend); and the result of re-verifying counted payments against the node.
 */
import { csvCell, csvLine } from '../csv.ts';
import type { Db } from '../db/client.ts';
import type { AssetRegistry } from '../money/assets.ts';
import { formatAmount } from '../money/amount.ts';
import { listPayments, presentPayment, type PaymentObject } from '../invoices/payments.ts';
import type { InvoiceRow } from '../invoices/present.ts';

export interface ReconciliationInvoice {
  invoice_id: string;
  order_id: string | null;
  created_at: string;
  status: string;
  exception: string | null;
  currency: string;
  expected: string;
  received: string;
  difference: string;
  payments: (PaymentObject & { verified_at: string | null; mismatch: string | null })[];
}

export interface ReconciliationReport {
  object: 'reconciliation_report';
  from: string;
  to: string;
  generated_at: string;
  invoices: ReconciliationInvoice[];
  totals: {
    per_currency: { currency: string; invoices: number; expected: string; received: string; difference: string }[];
    /** Sums of on-chain amounts by payment method, split by whether they count toward a price. */
    per_asset: { method: string; asset: string; chain: string; payments: number; received: string; counted: string; not_counted: string }[];
  };
  unmatched: { payment_id: string; invoice_id: string; reason: 'late' | 'asset_not_offered' | 'reorged' | 'replaced' | 'invoice_invalid'; method: string; amount: string; txid: string }[];
  mismatches: { payment_id: string; invoice_id: string; txid: string; mismatch: string }[];
}

export async function reconciliationReport(
  db: Db,
  assets: AssetRegistry,
  merchantId: string,
  from: Date,
  to: Date,
): Promise<ReconciliationReport> {
  const invoices = await db<InvoiceRow[]>`
    select * from invoices where merchant_id = ${merchantId} and created_at >= ${from} and created_at < ${to} order by seq`;
  const ids = invoices.map((i) => i.id);
  const decimalsOf = (m: string) => assets.method(m)?.decimals ?? 0;
  // Payments of these invoices, plus payments first seen in the period on older invoices (late ones).
  const { data: inPeriod } = await listPayments(db, merchantId, { from, to, orInvoiceIds: ids }, null);
  const byInvoice = new Map<string, typeof inPeriod>();
  for (const p of inPeriod) byInvoice.set(p.invoice_id, [...(byInvoice.get(p.invoice_id) ?? []), p]);

  const perCurrency = new Map<string, { decimals: number; invoices: number; expected: bigint; received: bigint }>();
  const report: ReconciliationInvoice[] = invoices.map((inv) => {
    const c = perCurrency.get(inv.currency) ?? { decimals: inv.currency_decimals, invoices: 0, expected: 0n, received: 0n };
    c.invoices += 1;
    c.expected += inv.amount;
    c.received += inv.amount_paid;
    perCurrency.set(inv.currency, c);
    return {
      invoice_id: inv.id,
      order_id: inv.order_id,
      created_at: inv.created_at.toISOString(),
      status: inv.status,
      exception: inv.exception,
      currency: inv.currency,
      expected: formatAmount(inv.amount, inv.currency_decimals),
      received: formatAmount(inv.amount_paid, inv.currency_decimals),
      difference: formatAmount(inv.amount_paid - inv.amount, inv.currency_decimals),
      payments: (byInvoice.get(inv.id) ?? []).reverse().map((p) => ({
        ...presentPayment(p, decimalsOf), verified_at: null as string | null, mismatch: p.mismatch,
      })),
    };
  });

  const invoiceStatus = new Map(invoices.map((i) => [i.id, i.status]));
  const perAsset = new Map<string, { method: string; asset: string; chain: string; decimals: number; payments: number; received: bigint; counted: bigint }>();
  const unmatched: ReconciliationReport['unmatched'] = [];
  for (const p of inPeriod) {
    const decimals = p.decimals ?? decimalsOf(p.method);
    const a = perAsset.get(p.method) ?? { method: p.method, asset: p.asset, chain: p.chain, decimals, payments: 0, received: 0n, counted: 0n };
    const live = p.status === 'pending' || p.status === 'confirmed';
    let reason: ReconciliationReport['unmatched'][number]['reason'] | null = null;
    if (!live) reason = p.status === 'reorged' ? 'reorged' : 'replaced';
    else if (p.rate === null) reason = 'asset_not_offered';
    else if (p.late) reason = 'late';
    else if (invoiceStatus.get(p.invoice_id) === 'invalid') reason = 'invoice_invalid';
    if (live) {
      a.payments += 1;
      a.received += p.amount;
      if (reason === null) a.counted += p.amount;
    }
    perAsset.set(p.method, a);
    if (reason) unmatched.push({ payment_id: p.id, invoice_id: p.invoice_id, reason, method: p.method, amount: formatAmount(p.amount, decimals), txid: p.txid });
  }

  return {
    object: 'reconciliation_report',
    from: from.toISOString(),
    to: to.toISOString(),
    generated_at: new Date().toISOString(),
    invoices: report,
    totals: {
      per_currency: [...perCurrency.entries()].map(([currency, c]) => ({
        currency, invoices: c.invoices,
        expected: formatAmount(c.expected, c.decimals), received: formatAmount(c.received, c.decimals),
        difference: formatAmount(c.received - c.expected, c.decimals),
      })),
      per_asset: [...perAsset.values()].map((a) => ({
        method: a.method, asset: a.asset, chain: a.chain, payments: a.payments,
        received: formatAmount(a.received, a.decimals), counted: formatAmount(a.counted, a.decimals),
        not_counted: formatAmount(a.received - a.counted, a.decimals),
      })),
    },
    unmatched,
    mismatches: inPeriod.filter((p) => p.mismatch).map((p) => ({ payment_id: p.id, invoice_id: p.invoice_id, txid: p.txid, mismatch: p.mismatch! })),
  };
}

export const CSV_COLUMNS = [
  'invoice_id', 'order_id', 'invoice_created_at', 'invoice_status', 'invoice_exception', 'invoice_currency',
  'invoice_expected', 'invoice_received', 'invoice_difference', 'payment_id', 'chain', 'method', 'asset', 'txid',
  'output_index', 'block_height', 'block_time', 'confirmations', 'payment_status', 'late', 'amount', 'rate', 'value',
  'mismatch',
] as const;

/** Columns holding plain decimal numbers (written as numbers; every other column is text). */
export const CSV_NUMERIC_COLUMNS: ReadonlySet<string> = new Set([
  'invoice_expected', 'invoice_received', 'invoice_difference', 'output_index', 'block_height', 'confirmations', 'amount', 'rate', 'value',
]);

/** A text cell (see src/csv.ts). */
export const csvField = (v: unknown): string => csvCell(v, 'text');

/** One row per payment (an invoice without payments gets one row with empty payment columns). */
export function reconciliationCsv(r: ReconciliationReport): string {
  const lines = [CSV_COLUMNS.join(',')];
  for (const inv of r.invoices) {
    const base = [inv.invoice_id, inv.order_id, inv.created_at, inv.status, inv.exception, inv.currency, inv.expected, inv.received, inv.difference];
    const payments = inv.payments.length ? inv.payments : [null];
    for (const p of payments) {
      const cols = p
        ? [p.id, p.chain, p.method, p.asset, p.txid, p.output_index, p.block_height, p.block_time, p.confirmations, p.status, p.late, p.amount, p.rate, p.value, p.mismatch]
        : Array(15).fill('');
      lines.push(csvLine(CSV_COLUMNS, [...base, ...cols], CSV_NUMERIC_COLUMNS));
    }
  }
  return lines.join('\r\n') + '\r\n';
}
