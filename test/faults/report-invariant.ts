/**
 * "The reconciliation report adds up" (issue 14): every total is reproducible from the report's own
 * rows, in JSON and in CSV, and rows that are not counted carry no value a spreadsheet would add.
 * Pure functions over the report as the API returns it (used by the fault harness and the model test).
 *
 * A row is counted when it says so (`counted: true` / CSV `counted` = `true`) or, for a report
 * without that field, when it carries a value.
 *
 * Refunds (docs/reconciliation.md, "Refunds"), when the report has them: an invoice's `refunded` is
 * Σ (value + network_fee_value) of its refunds and `net_received` = received + not_counted −
 * refunded; per asset `refunded` = Σ (amount + network_fee), `net_received` = received − refunded;
 * in the CSV each refund adds a `refund` row (and a `refund_network_fee` row when it paid a fee)
 * with negative amount and value, so SUM(value) over the refund rows of a currency = −refunded and
 * over all its rows, plus the not-counted values, = net_received.
 */
import { parseCsv } from '../support/csv.ts';

export interface ReportRefundJson { refund_id: string; method: string; amount: string; network_fee: string; value: string | null; network_fee_value: string | null }

export interface ReportJson {
  invoices: {
    invoice_id: string; currency: string; expected: string; received: string; difference: string; status?: string; exception?: string | null; payments: Record<string, unknown>[];
    not_counted?: string; refunded?: string; net_received?: string; refunds?: ReportRefundJson[];
  }[];
  totals: {
    per_currency: { currency: string; invoices: number; expected: string; received: string; difference: string; refunded?: string; net_received?: string }[];
    per_asset: { method: string; payments: number; received: string; counted: string; not_counted: string; refunds?: number; refunded?: string; net_received?: string }[];
  };
}

const refundRowsOf = (f: ReportRefundJson) => (/^[0.]+$/.test(f.network_fee) ? 1 : 2);

/** Decimal string → scaled integer with `d` fraction digits (sign allowed). */
export function parseDecimal(s: string, d: number): bigint {
  const neg = s.startsWith('-');
  const [i, f = ''] = (neg ? s.slice(1) : s).split('.');
  const v = BigInt((i || '0') + f.padEnd(d, '0').slice(0, d));
  return neg ? -v : v;
}

const decimalsOf = (s: string) => (s.split('.')[1] ?? '').length;
const fmt = (v: bigint, d: number) => {
  const neg = v < 0n;
  const s = (neg ? -v : v).toString().padStart(d + 1, '0');
  return `${neg ? '-' : ''}${s.slice(0, s.length - d)}${d ? '.' + s.slice(s.length - d) : ''}`;
};


export function isCountedJson(p: Record<string, unknown>): boolean {
  if (p.counted !== undefined) return p.counted === true;
  return p.value !== null && p.value !== undefined && p.value !== '';
}

const live = (status: unknown) => status === 'pending' || status === 'confirmed';

/** Violations of "the report adds up" (empty = it does). */
export function reportAddsUp(r: ReportJson, csvText: string): string[] {
  const v: string[] = [];
  const perCurrency = new Map<string, { invoices: number; expected: bigint; received: bigint; d: number }>();
  const perAsset = new Map<string, { payments: number; received: bigint; counted: bigint; d: number }>();
  for (const inv of r.invoices) {
    const d = decimalsOf(inv.expected);
    let received = 0n;
    for (const p of inv.payments) {
      const counted = isCountedJson(p);
      if (counted) {
        if (!live(p.status)) v.push(`report: payment ${p.id} (${inv.invoice_id}) is ${p.status} but counted`);
        // A late payment counts only on an invoice staff marked settled (docs/reconciliation.md, "What counts").
        const markedSettled = inv.exception === 'marked' && inv.status === 'settled';
        if (p.late === true && !markedSettled) v.push(`report: late payment ${p.id} (${inv.invoice_id}) is counted`);
        received += parseDecimal(String(p.value ?? '0'), d);
      } else if (p.value !== null && p.value !== undefined && p.value !== '' && p.counted === undefined) {
        v.push(`report: payment ${p.id} (${inv.invoice_id}) is not counted but carries value ${p.value}`);
      }
      const amountD = decimalsOf(String(p.amount));
      const a = perAsset.get(String(p.method)) ?? { payments: 0, received: 0n, counted: 0n, d: amountD };
      if (live(p.status)) {
        a.payments += 1;
        a.received += parseDecimal(String(p.amount), amountD);
        if (counted) a.counted += parseDecimal(String(p.amount), amountD);
      }
      perAsset.set(String(p.method), a);
    }
    if (parseDecimal(inv.received, d) !== received) v.push(`report: invoice ${inv.invoice_id} received ${inv.received} ≠ Σ counted values ${fmt(received, d)}`);
    if (parseDecimal(inv.difference, d) !== parseDecimal(inv.received, d) - parseDecimal(inv.expected, d)) v.push(`report: invoice ${inv.invoice_id} difference ${inv.difference} ≠ received − expected`);
    if (inv.refunds && inv.refunded !== undefined && inv.net_received !== undefined) {
      const refunded = inv.refunds.reduce((a, f) => a + parseDecimal(f.value ?? '0', d) + parseDecimal(f.network_fee_value ?? '0', d), 0n);
      if (parseDecimal(inv.refunded, d) !== refunded) v.push(`report: invoice ${inv.invoice_id} refunded ${inv.refunded} ≠ Σ refund values ${fmt(refunded, d)}`);
      const net = parseDecimal(inv.received, d) + parseDecimal(inv.not_counted ?? '0', d) - parseDecimal(inv.refunded, d);
      if (parseDecimal(inv.net_received, d) !== net) v.push(`report: invoice ${inv.invoice_id} net_received ${inv.net_received} ≠ received + not_counted − refunded ${fmt(net, d)}`);
    }
    const c = perCurrency.get(inv.currency) ?? { invoices: 0, expected: 0n, received: 0n, d };
    c.invoices += 1;
    c.expected += parseDecimal(inv.expected, d);
    c.received += parseDecimal(inv.received, d);
    perCurrency.set(inv.currency, c);
  }
  for (const t of r.totals.per_currency) {
    const c = perCurrency.get(t.currency);
    if (!c) { v.push(`report: per_currency ${t.currency} has no invoices`); continue; }
    const got = `invoices=${t.invoices} expected=${t.expected} received=${t.received} difference=${t.difference}`;
    const want = `invoices=${c.invoices} expected=${fmt(c.expected, c.d)} received=${fmt(c.received, c.d)} difference=${fmt(c.received - c.expected, c.d)}`;
    if (got !== want) v.push(`report: per_currency ${t.currency} ${got}, Σ rows ${want}`);
  }
  for (const t of r.totals.per_asset) {
    const a = perAsset.get(t.method);
    if (!a) { v.push(`report: per_asset ${t.method} has no rows`); continue; }
    const d = Math.max(a.d, decimalsOf(t.received));
    const got = `payments=${t.payments} received=${t.received} counted=${t.counted} not_counted=${t.not_counted}`;
    const want = `payments=${a.payments} received=${fmt(a.received, d)} counted=${fmt(a.counted, d)} not_counted=${fmt(a.received - a.counted, d)}`;
    if (got !== want) v.push(`report: per_asset ${t.method} ${got}, Σ rows ${want}`);
    if (t.refunded !== undefined && t.net_received !== undefined) {
      const rs = r.invoices.flatMap((i) => (i.refunds ?? []).filter((f) => f.method === t.method));
      const refunded = rs.reduce((x, f) => x + parseDecimal(f.amount, d) + parseDecimal(f.network_fee, d), 0n);
      const g = `refunds=${t.refunds} refunded=${t.refunded} net_received=${t.net_received}`;
      const w = `refunds=${rs.length} refunded=${fmt(refunded, d)} net_received=${fmt(a.received - refunded, d)}`;
      if (g !== w) v.push(`report: per_asset ${t.method} ${g}, Σ refunds ${w}`);
    }
  }

  // CSV: one row per payment (or one per invoice without payments); a SUM over the value column
  // of each currency equals that currency's received total, and so does the JSON.
  const csv = parseCsv(csvText);
  const wantRows = r.invoices.reduce((a, i) => a + Math.max(1, i.payments.length + (i.refunds ?? []).reduce((x, f) => x + refundRowsOf(f), 0)), 0);
  if (csv.length !== wantRows) v.push(`report CSV: ${csv.length} rows, JSON has ${wantRows}`);
  const sums = new Map<string, bigint>();
  const all = new Map<string, bigint>();
  for (const row of csv) {
    const d = decimalsOf(row.invoice_expected ?? '');
    if (row.value) all.set(row.invoice_currency!, (all.get(row.invoice_currency!) ?? 0n) + parseDecimal(row.value, d));
    if (row.row_type?.startsWith('refund')) {
      if (row.value && parseDecimal(row.value, d) > 0n) v.push(`report CSV: ${row.row_type} row of ${row.refund_id} has a positive value ${row.value}`);
      continue;
    }
    const counted = row.counted !== undefined ? row.counted === 'true' : row.value !== '';
    if (!counted && row.value) v.push(`report CSV: payment ${row.payment_id} is not counted but its value column holds ${row.value}`);
    if (row.value) sums.set(row.invoice_currency!, (sums.get(row.invoice_currency!) ?? 0n) + parseDecimal(row.value, d));
    const inv = r.invoices.find((i) => i.invoice_id === row.invoice_id);
    if (!inv) { v.push(`report CSV: invoice ${row.invoice_id} not in the JSON report`); continue; }
    if (row.invoice_received !== inv.received) v.push(`report CSV: invoice ${row.invoice_id} received ${row.invoice_received}, JSON ${inv.received}`);
  }
  for (const t of r.totals.per_currency) {
    const d = decimalsOf(t.received);
    const sum = sums.get(t.currency) ?? 0n;
    if (sum !== parseDecimal(t.received, d)) v.push(`report CSV: SUM(value) for ${t.currency} = ${fmt(sum, d)}, totals received ${t.received}`);
    if (t.net_received !== undefined) {
      const notCounted = r.invoices.filter((i) => i.currency === t.currency).reduce((a, i) => a + parseDecimal(i.not_counted ?? '0', d), 0n);
      const net = (all.get(t.currency) ?? 0n) + notCounted;
      if (net !== parseDecimal(t.net_received, d)) v.push(`report CSV: SUM(value) + not counted for ${t.currency} = ${fmt(net, d)}, totals net_received ${t.net_received}`);
    }
  }
  return v;
}
