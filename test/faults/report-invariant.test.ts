/** The "report adds up" invariant itself: it passes a consistent report and names what does not add up. */
import { describe, expect, it } from 'vitest';
import { reportAddsUp, type ReportJson } from './report-invariant.ts';

const pay = (o: Record<string, unknown>) => ({ id: 'pay_1', method: 'BTC', status: 'confirmed', late: false, amount: '0.00050000', rate: '60000.00', value: '30.00', ...o });
const csvOf = (r: ReportJson) => {
  const lines = ['invoice_id,invoice_currency,invoice_expected,invoice_received,payment_id,value'];
  for (const i of r.invoices) for (const p of i.payments.length ? i.payments : [{}]) lines.push([i.invoice_id, i.currency, i.expected, i.received, (p as any).id ?? '', (p as any).value ?? ''].join(','));
  return lines.join('\r\n') + '\r\n';
};

describe('reportAddsUp', () => {
  const good: ReportJson = {
    invoices: [
      { invoice_id: 'inv_a', currency: 'USD', expected: '30.00', received: '30.00', difference: '0.00', payments: [pay({})] },
      { invoice_id: 'inv_b', currency: 'USD', expected: '10.00', received: '0.00', difference: '-10.00', payments: [pay({ id: 'pay_2', late: true, value: null, amount: '0.00010000' })] },
    ],
    totals: {
      per_currency: [{ currency: 'USD', invoices: 2, expected: '40.00', received: '30.00', difference: '-10.00' }],
      per_asset: [{ method: 'BTC', payments: 2, received: '0.00060000', counted: '0.00050000', not_counted: '0.00010000' }],
    },
  };

  it('a report whose totals are the sums of its counted rows passes', () => {
    expect(reportAddsUp(good, csvOf(good))).toEqual([]);
  });

  it('a late row that carries a value, counted in the invoice total, is named (issue 14 item 2)', () => {
    const bad = structuredClone(good);
    bad.invoices[1]!.payments[0]!.value = '10.00';
    bad.invoices[1]!.received = '10.00';
    bad.invoices[1]!.difference = '0.00';
    const v = reportAddsUp(bad, csvOf(bad));
    expect(v).toContain('report: late payment pay_2 (inv_b) is counted');
    expect(v).toContain('report: per_currency USD invoices=2 expected=40.00 received=30.00 difference=-10.00, Σ rows invoices=2 expected=40.00 received=40.00 difference=0.00');
    expect(v).toContain('report CSV: SUM(value) for USD = 40.00, totals received 30.00');
  });

  it('a reorged row that still carries value is named', () => {
    const bad = structuredClone(good);
    bad.invoices.push({ invoice_id: 'inv_c', currency: 'USD', expected: '25.00', received: '0.00', difference: '-25.00', payments: [pay({ id: 'pay_3', status: 'reorged', value: '25.00' })] });
    bad.totals.per_currency[0] = { currency: 'USD', invoices: 3, expected: '65.00', received: '30.00', difference: '-35.00' };
    const v = reportAddsUp(bad, csvOf(bad));
    expect(v).toContain('report: payment pay_3 (inv_c) is reorged but counted');
    expect(v).toContain('report CSV: SUM(value) for USD = 55.00, totals received 30.00');
  });
});
