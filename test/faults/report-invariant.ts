/**
 * "The reconciliation report adds up" (issue 14): every total is reproducible from the report's own
 * rows, in JSON and in CSV, and rows that are not counted carry no value a spreadsheet would add.
 * Pure functions over the report as the API returns it (used by the fault harness and the model test).
 *
 * A row is counted when it says so (`counted: true` / CSV `counted` = `true`) or, for a report
 * without that field, when it carries a value.
 */
import { parseCsv } from '../support/csv.ts';

export interface ReportJson {
  invoices: { invoice_id: string; currency: string; expected: string; received: string; difference: string; status?: string; exception?: string | null; payments: Record<string, unknown>[] }[];
  totals: {
    per_currency: { currency: string; invoices: number; expected: string; received: string; difference: string }[];
    per_asset: { method: string; payments: number; received: string; counted: string; not_counted: string }[];
  };
}

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
  }

  // CSV: one row per payment (or one per invoice without payments); a SUM over the value column
  // of each currency equals that currency's received total, and so does the JSON.
  const csv = parseCsv(csvText);
  const wantRows = r.invoices.reduce((a, i) => a + Math.max(1, i.payments.length), 0);
  if (csv.length !== wantRows) v.push(`report CSV: ${csv.length} rows, JSON has ${wantRows}`);
  const sums = new Map<string, bigint>();
  for (const row of csv) {
    const d = decimalsOf(row.invoice_expected ?? '');
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
  }
  return v;
}
