/**
 * The reconciliation report for finance staff (docs/architecture.md §7): for a period, every invoice created
 * in it with each on-chain payment (chain, asset, tx, output, block, confirmations, amount, locked
 * rate, value), expected vs received; totals per asset and per currency; payments that were not
 * counted toward a price (late, in an asset the invoice did not offer, reversed by a reorg or
 * double-spend); and the result of re-verifying counted payments against the node.
 */
import { csvCell, csvLine } from '../csv.ts';
import type { Db } from '../db/client.ts';
import type { AssetRegistry } from '../money/assets.ts';
import { formatAmount } from '../money/amount.ts';
import { currencyValueOf } from '../money/rate.ts';
import { listPayments, presentPayment, type PaymentObject, type PaymentView } from '../invoices/payments.ts';
import { countsTowardPrice, markedAs } from '../settlement/state-machine.ts';
import type { InvoiceRow } from '../invoices/present.ts';

export type ReportPayment = Omit<PaymentObject, 'value'> & {
  /** amount × locked rate in the invoice currency; null when the payment is not counted. */
  value: string | null;
  /** Whether the payment counts toward the invoice's price (`countsTowardPrice`). */
  counted: boolean;
  verified_at: string | null;
  mismatch: string | null;
};

export interface ReconciliationInvoice {
  invoice_id: string;
  order_id: string | null;
  created_at: string;
  status: string;
  exception: string | null;
  currency: string;
  expected: string;
  /** Sum of `value` over this invoice's counted payments. */
  received: string;
  /** received − expected. */
  difference: string;
  /** Value (at the locked rates) of live payments in offered assets that do not count (e.g. late). */
  not_counted: string;
  /** Value of the invoice's sent refunds: SUM of `value` + `network_fee_value` over `refunds`. */
  refunded: string;
  /** received + not_counted − refunded (docs/reconciliation.md, "Refunds"). */
  net_received: string;
  payments: ReportPayment[];
  refunds: ReportRefund[];
}

/** A refund that left the merchant's wallet (`broadcast` or `completed`), as a report row. */
export interface ReportRefund {
  refund_id: string;
  status: string;
  chain: string;
  method: string;
  asset: string;
  txid: string;
  /** What the customer received, in the asset. */
  amount: string;
  /** Network fee paid from the invoice's own outputs (Bitcoin), in the asset; "0" on EVM chains. */
  network_fee: string;
  /** The rate the invoice locked for this method; null when the method was not offered. */
  rate: string | null;
  /** Value of `amount` at `rate` in the invoice currency (rounded down); null without a rate. */
  value: string | null;
  /** Value of `network_fee` at `rate` (rounded down); null without a rate. */
  network_fee_value: string | null;
}

interface RefundRow {
  id: string; invoice_id: string; status: string; chain: string; method: string; asset: string; decimals: number;
  txid: string; amount: bigint; network_fee: bigint; rate: string | null;
}

/** Refund statuses whose money left the wallet: the ones the report subtracts (and the ledger books). */
export const REPORTED_REFUND_STATUSES = ['broadcast', 'completed'] as const;

/**
 * The one rule for a refund's value in the invoice currency (docs/reconciliation.md, "Refunds"):
 * the amount sent and the network fee, each valued at the rate the invoice locked for the refunded
 * method (the rate that valued the payments it gives back) and rounded down; null without a rate.
 */
export function refundedValue(r: Pick<RefundRow, 'amount' | 'network_fee' | 'decimals' | 'rate'>, currencyDecimals: number): { sent: bigint; fee: bigint } | null {
  if (r.rate === null) return null;
  return { sent: currencyValueOf(r.amount, r.decimals, r.rate, currencyDecimals), fee: currencyValueOf(r.network_fee, r.decimals, r.rate, currencyDecimals) };
}

/**
 * A payout whose money left the wallet (`broadcast` or `completed`) in the period (by
 * `broadcast_at`). Payouts are the merchant's own spending, not invoice money: they are listed
 * apart and never subtracted from an invoice's, currency's or asset's received or net received
 * (docs/reconciliation.md, "Payouts").
 */
export interface ReportPayout {
  payout_id: string;
  status: string;
  chain: string;
  method: string;
  asset: string;
  txid: string;
  destination: string;
  reference: string | null;
  broadcast_at: string;
  amount: string;
  /** Paid by Kassa's PSBT (Bitcoin); "0" when the wallet paid it outside Kassa's knowledge (EVM gas, a reported Bitcoin txid). */
  network_fee: string;
}

type UnmatchedReason = 'late' | 'asset_not_offered' | 'reorged' | 'replaced' | 'marked_invalid';

export interface ReconciliationReport {
  object: 'reconciliation_report';
  from: string;
  to: string;
  generated_at: string;
  invoices: ReconciliationInvoice[];
  totals: {
    /** Sums over the report's invoices; `received` = SUM of `value` over their counted payments. */
    per_currency: { currency: string; invoices: number; expected: string; received: string; difference: string; refunded: string; net_received: string }[];
    /**
     * Sums of on-chain amounts of the report's payments by method: live, counted, live but not
     * counted; and of its sent refunds (amount + network fee), and received − refunded.
     */
    per_asset: { method: string; asset: string; chain: string; payments: number; received: string; counted: string; not_counted: string; refunds: number; refunded: string; net_received: string }[];
    /** Sums over `payouts` by method: how many, the amounts sent, the network fees, and both together. */
    payouts_per_asset: { method: string; asset: string; chain: string; payouts: number; sent: string; network_fee: string; total: string }[];
  };
  payouts: ReportPayout[];
  /**
   * Payments that do not count toward a price: those of the report's invoices, then those first
   * seen in the period on invoices created before it (`earlier_invoice: true`; they are rows and
   * totals of the report of the period their invoice was created in).
   */
  unmatched: { payment_id: string; invoice_id: string; reason: UnmatchedReason; method: string; amount: string; txid: string; earlier_invoice: boolean }[];
  mismatches: { payment_id: string; invoice_id: string; txid: string; mismatch: string }[];
}

function whyNotCounted(p: PaymentView, inv: Pick<InvoiceRow, 'status' | 'marked_at'>): UnmatchedReason | null {
  const offered = p.rate !== null;
  const marked = markedAs({ status: inv.status, marked: inv.marked_at !== null });
  if (countsTowardPrice({ status: p.status, offered, onTime: !p.late }, marked)) return null;
  if (p.status === 'reorged' || p.status === 'replaced') return p.status;
  if (!offered) return 'asset_not_offered';
  if (marked === 'invalid') return 'marked_invalid';
  return 'late';
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

  const refundRows = ids.length === 0 ? [] : await db<RefundRow[]>`
    select r.id, r.invoice_id, r.status, r.chain, r.method, r.asset, r.decimals, r.txid, r.amount, coalesce(r.network_fee, 0) as network_fee, m.rate
    from refunds r left join invoice_payment_methods m on m.invoice_id = r.invoice_id and m.method = r.method
    where r.merchant_id = ${merchantId} and r.invoice_id = any(${ids}) and r.status = any(${REPORTED_REFUND_STATUSES as unknown as string[]})
    order by r.seq`;
  const refundsOf = new Map<string, RefundRow[]>();
  for (const r of refundRows) refundsOf.set(r.invoice_id, [...(refundsOf.get(r.invoice_id) ?? []), r]);

  const perCurrency = new Map<string, { decimals: number; invoices: number; expected: bigint; received: bigint; refunded: bigint; net: bigint }>();
  const perAsset = new Map<string, { method: string; asset: string; chain: string; decimals: number; payments: number; received: bigint; counted: bigint; refunds: number; refunded: bigint }>();
  const unmatched: ReconciliationReport['unmatched'] = [];
  const report: ReconciliationInvoice[] = invoices.map((inv) => {
    let received = 0n;
    let notCounted = 0n;
    const payments = (byInvoice.get(inv.id) ?? []).reverse().map((p): ReportPayment => {
      const decimals = p.decimals ?? decimalsOf(p.method);
      const live = p.status === 'pending' || p.status === 'confirmed';
      const reason = whyNotCounted(p, inv);
      const counted = reason === null;
      const value = p.rate ? currencyValueOf(p.amount, decimals, p.rate, inv.currency_decimals) : 0n;
      if (counted) received += value;
      else if (live && p.rate) notCounted += value;
      const a = perAsset.get(p.method) ?? { method: p.method, asset: p.asset, chain: p.chain, decimals, payments: 0, received: 0n, counted: 0n, refunds: 0, refunded: 0n };
      if (live) {
        a.payments += 1;
        a.received += p.amount;
        if (counted) a.counted += p.amount;
      }
      perAsset.set(p.method, a);
      if (reason) unmatched.push({ payment_id: p.id, invoice_id: p.invoice_id, reason, method: p.method, amount: formatAmount(p.amount, decimals), txid: p.txid, earlier_invoice: false });
      return {
        ...presentPayment(p, decimalsOf),
        value: counted ? formatAmount(value, inv.currency_decimals) : null,
        counted, verified_at: null, mismatch: p.mismatch,
      };
    });
    let refunded = 0n;
    const refunds = (refundsOf.get(inv.id) ?? []).map((r): ReportRefund => {
      const v = refundedValue(r, inv.currency_decimals);
      if (v) refunded += v.sent + v.fee;
      const a = perAsset.get(r.method) ?? { method: r.method, asset: r.asset, chain: r.chain, decimals: r.decimals, payments: 0, received: 0n, counted: 0n, refunds: 0, refunded: 0n };
      a.refunds += 1;
      a.refunded += r.amount + r.network_fee;
      perAsset.set(r.method, a);
      return {
        refund_id: r.id, status: r.status, chain: r.chain, method: r.method, asset: r.asset, txid: r.txid,
        amount: formatAmount(r.amount, r.decimals), network_fee: formatAmount(r.network_fee, r.decimals), rate: r.rate,
        value: v ? formatAmount(v.sent, inv.currency_decimals) : null,
        network_fee_value: v ? formatAmount(v.fee, inv.currency_decimals) : null,
      };
    });
    const net = received + notCounted - refunded;
    const c = perCurrency.get(inv.currency) ?? { decimals: inv.currency_decimals, invoices: 0, expected: 0n, received: 0n, refunded: 0n, net: 0n };
    c.invoices += 1;
    c.expected += inv.amount;
    c.received += received;
    c.refunded += refunded;
    c.net += net;
    perCurrency.set(inv.currency, c);
    return {
      invoice_id: inv.id,
      order_id: inv.order_id,
      created_at: inv.created_at.toISOString(),
      status: inv.status,
      exception: inv.exception,
      currency: inv.currency,
      expected: formatAmount(inv.amount, inv.currency_decimals),
      received: formatAmount(received, inv.currency_decimals),
      difference: formatAmount(received - inv.amount, inv.currency_decimals),
      not_counted: formatAmount(notCounted, inv.currency_decimals),
      refunded: formatAmount(refunded, inv.currency_decimals),
      net_received: formatAmount(net, inv.currency_decimals),
      payments,
      refunds,
    };
  });

  // Payments first seen in the period on invoices created before it: listed when not counted.
  const inReport = new Set(ids);
  const earlier = inPeriod.filter((p) => !inReport.has(p.invoice_id));
  if (earlier.length) {
    const older = await db<Pick<InvoiceRow, 'id' | 'status' | 'marked_at'>[]>`
      select id, status, marked_at from invoices where merchant_id = ${merchantId} and id = any(${[...new Set(earlier.map((p) => p.invoice_id))]})`;
    const olderById = new Map(older.map((i) => [i.id, i]));
    for (const p of [...earlier].reverse()) {
      const inv = olderById.get(p.invoice_id);
      const reason = inv ? whyNotCounted(p, inv) : null;
      if (reason) {
        unmatched.push({ payment_id: p.id, invoice_id: p.invoice_id, reason, method: p.method, amount: formatAmount(p.amount, p.decimals ?? decimalsOf(p.method)), txid: p.txid, earlier_invoice: true });
      }
    }
  }

  const payoutRows = await db<{ id: string; status: string; chain: string; method: string; asset: string; decimals: number; txid: string; destination: string; reference: string | null; broadcast_at: Date; amount: bigint; network_fee: bigint | null }[]>`
    select id, status, chain, method, asset, decimals, txid, destination, reference, broadcast_at, amount, network_fee from payouts
    where merchant_id = ${merchantId} and status in ('broadcast', 'completed') and broadcast_at >= ${from} and broadcast_at < ${to}
    order by seq`;
  const payoutSums = new Map<string, { method: string; asset: string; chain: string; decimals: number; payouts: number; sent: bigint; fee: bigint }>();
  for (const p of payoutRows) {
    const a = payoutSums.get(p.method) ?? { method: p.method, asset: p.asset, chain: p.chain, decimals: p.decimals, payouts: 0, sent: 0n, fee: 0n };
    a.payouts += 1;
    a.sent += p.amount;
    a.fee += p.network_fee ?? 0n;
    payoutSums.set(p.method, a);
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
        refunded: formatAmount(c.refunded, c.decimals), net_received: formatAmount(c.net, c.decimals),
      })),
      per_asset: [...perAsset.values()].map((a) => ({
        method: a.method, asset: a.asset, chain: a.chain, payments: a.payments,
        received: formatAmount(a.received, a.decimals), counted: formatAmount(a.counted, a.decimals),
        not_counted: formatAmount(a.received - a.counted, a.decimals),
        refunds: a.refunds, refunded: formatAmount(a.refunded, a.decimals), net_received: formatAmount(a.received - a.refunded, a.decimals),
      })),
      payouts_per_asset: [...payoutSums.values()].map((a) => ({
        method: a.method, asset: a.asset, chain: a.chain, payouts: a.payouts,
        sent: formatAmount(a.sent, a.decimals), network_fee: formatAmount(a.fee, a.decimals), total: formatAmount(a.sent + a.fee, a.decimals),
      })),
    },
    payouts: payoutRows.map((p) => ({
      payout_id: p.id, status: p.status, chain: p.chain, method: p.method, asset: p.asset, txid: p.txid, destination: p.destination,
      reference: p.reference, broadcast_at: p.broadcast_at.toISOString(),
      amount: formatAmount(p.amount, p.decimals), network_fee: formatAmount(p.network_fee ?? 0n, p.decimals),
    })),
    unmatched,
    mismatches: inPeriod.filter((p) => p.mismatch).map((p) => ({ payment_id: p.id, invoice_id: p.invoice_id, txid: p.txid, mismatch: p.mismatch! })),
  };
}

export const CSV_COLUMNS = [
  'invoice_id', 'order_id', 'invoice_created_at', 'invoice_status', 'invoice_exception', 'invoice_currency',
  'invoice_expected', 'invoice_received', 'invoice_difference', 'invoice_not_counted', 'payment_id', 'chain', 'method', 'asset', 'txid',
  'output_index', 'block_height', 'block_time', 'confirmations', 'payment_status', 'late', 'counted', 'amount', 'rate', 'value',
  'mismatch', 'row_type', 'refund_id', 'refund_status', 'invoice_refunded', 'invoice_net_received', 'payout_id', 'payout_status',
] as const;

/** Columns holding plain decimal numbers (written as numbers; every other column is text). */
export const CSV_NUMERIC_COLUMNS: ReadonlySet<string> = new Set([
  'invoice_expected', 'invoice_received', 'invoice_not_counted', 'invoice_difference', 'output_index', 'block_height', 'confirmations', 'amount', 'rate', 'value',
  'invoice_refunded', 'invoice_net_received',
]);

/** A text cell (see src/csv.ts). */
export const csvField = (v: unknown): string => csvCell(v, 'text');

const negate = (d: string | null) => (d === null ? null : d.startsWith('-') ? d.slice(1) : /^[0.]+$/.test(d) ? d : `-${d}`);

/**
 * One row per payment (an invoice without payments gets one row with empty payment columns), then
 * per sent refund one `refund` row (the amount sent) and, when it paid one, a `refund_network_fee`
 * row, both with negative `amount` and `value` (money out). `value` is filled only on counted
 * payment rows and on refund rows with a locked rate, so per `invoice_currency` the SUM of `value`
 * over `payment` rows is `totals.per_currency[].received` and over `refund*` rows it is
 * −`refunded`; per `method` the SUM of `amount` over live payment rows and refund rows is
 * `totals.per_asset[].net_received`. After the invoices, per payout one `payout` row and, when it
 * paid one, a `payout_network_fee` row, with empty invoice columns and negative `amount`: the SUM of
 * `amount` over `payout*` rows per `method` is −`totals.payouts_per_asset[].total`.
 */
export function reconciliationCsv(r: ReconciliationReport): string {
  const lines = [CSV_COLUMNS.join(',')];
  for (const inv of r.invoices) {
    const base = [inv.invoice_id, inv.order_id, inv.created_at, inv.status, inv.exception, inv.currency, inv.expected, inv.received, inv.difference, inv.not_counted];
    const tail = (type: string, id: string | null, status: string | null) => [type, id, status, inv.refunded, inv.net_received, '', ''];
    const payments = inv.payments.length || inv.refunds.length ? inv.payments : [null];
    for (const p of payments) {
      const cols = p
        ? [p.id, p.chain, p.method, p.asset, p.txid, p.output_index, p.block_height, p.block_time, p.confirmations, p.status, p.late, p.counted, p.amount, p.rate, p.value, p.mismatch]
        : Array(16).fill('');
      lines.push(csvLine(CSV_COLUMNS, [...base, ...cols, ...tail(p ? 'payment' : '', null, null)], CSV_NUMERIC_COLUMNS));
    }
    for (const f of inv.refunds) {
      const row = (type: string, amount: string, value: string | null) => [
        ...base, '', f.chain, f.method, f.asset, f.txid, '', '', '', '', '', '', '', negate(amount), f.rate, negate(value), '', ...tail(type, f.refund_id, f.status),
      ];
      lines.push(csvLine(CSV_COLUMNS, row('refund', f.amount, f.value), CSV_NUMERIC_COLUMNS));
      if (!/^[0.]+$/.test(f.network_fee)) lines.push(csvLine(CSV_COLUMNS, row('refund_network_fee', f.network_fee, f.network_fee_value), CSV_NUMERIC_COLUMNS));
    }
  }
  for (const p of r.payouts) {
    const row = (type: string, amount: string) => [
      ...Array(10).fill(''), '', p.chain, p.method, p.asset, p.txid, '', '', '', '', '', '', '', negate(amount), '', '', '', type, '', '', '', '', p.payout_id, p.status,
    ];
    lines.push(csvLine(CSV_COLUMNS, row('payout', p.amount), CSV_NUMERIC_COLUMNS));
    if (!/^[0.]+$/.test(p.network_fee)) lines.push(csvLine(CSV_COLUMNS, row('payout_network_fee', p.network_fee), CSV_NUMERIC_COLUMNS));
  }
  return lines.join('\r\n') + '\r\n';
}

