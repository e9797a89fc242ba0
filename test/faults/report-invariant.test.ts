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

  describe('with refunds (docs/reconciliation.md, "Refunds")', () => {
    // inv_a received 30.00 (0.0005 BTC) and sent back 0.0002 BTC (12.00) with a 300 sat network fee (0.18).
    const withRefund = (): ReportJson => {
      const r = structuredClone(good);
      Object.assign(r.invoices[0]!, { not_counted: '0.00', refunded: '12.18', net_received: '17.82', refunds: [{ refund_id: 'ref_1', method: 'BTC', amount: '0.00020000', network_fee: '0.00000300', value: '12.00', network_fee_value: '0.18' }] });
      Object.assign(r.invoices[1]!, { not_counted: '6.00', refunded: '0.00', net_received: '6.00', refunds: [] });
      Object.assign(r.totals.per_currency[0]!, { refunded: '12.18', net_received: '23.82' });
      Object.assign(r.totals.per_asset[0]!, { refunds: 1, refunded: '0.00020300', net_received: '0.00039700' });
      return r;
    };
    const csvWithRefunds = (r: ReportJson, feeValue = '-0.18') => {
      const lines = ['invoice_id,invoice_currency,invoice_expected,invoice_received,payment_id,value,row_type,refund_id'];
      for (const i of r.invoices) {
        for (const p of i.payments) lines.push([i.invoice_id, i.currency, i.expected, i.received, (p as any).id, (p as any).value ?? '', 'payment', ''].join(','));
        for (const f of i.refunds ?? []) {
          lines.push([i.invoice_id, i.currency, i.expected, i.received, '', `-${f.value}`, 'refund', f.refund_id].join(','));
          lines.push([i.invoice_id, i.currency, i.expected, i.received, '', feeValue, 'refund_network_fee', f.refund_id].join(','));
        }
      }
      return lines.join('\r\n') + '\r\n';
    };

    it('a report whose refund figures are the sums of its refunds passes', () => {
      expect(reportAddsUp(withRefund(), csvWithRefunds(withRefund()))).toEqual([]);
    });

    it('a refund left out of refunded, the fee left out of the per-asset total, and a refund row with a positive value are named', () => {
      const bad = withRefund();
      bad.invoices[0]!.refunded = '12.00';
      bad.totals.per_asset[0]!.refunded = '0.00020000';
      const v = reportAddsUp(bad, csvWithRefunds(bad, '0.18'));
      expect(v).toContain('report: invoice inv_a refunded 12.00 ≠ Σ refund values 12.18');
      expect(v).toContain('report: invoice inv_a net_received 17.82 ≠ received + not_counted − refunded 18.00');
      expect(v).toContain('report: per_asset BTC refunds=1 refunded=0.00020000 net_received=0.00039700, Σ refunds refunds=1 refunded=0.00020300 net_received=0.00039700');
      expect(v).toContain('report CSV: refund_network_fee row of ref_1 has a positive value 0.18');
    });
  });
});
