/** The refund invariants themselves (refund-invariant.ts): a consistent state passes, and each broken one is named. */
import { describe, expect, it } from 'vitest';
import { refundViolations, type RefundFact, type RefundFacts } from './refund-invariant.ts';

const refund = (o: Partial<RefundFact>): RefundFact => ({
  id: 'ref_1', invoiceId: 'inv_a', method: 'BTC', chain: 'bitcoin', amount: 50_000n, networkFee: 300n, decimals: 8, rate: '60000.00',
  status: 'completed', fee: 0n, txid: 'aa'.repeat(32), destination: 'bcrt1qdest1', paidOnChain: 50_000n, chainFee: 300n, known: true,
  events: { 'refund.broadcast': 1, 'refund.completed': 1 }, ...o,
});

function facts(): RefundFacts {
  return {
    refunds: [
      refund({}),
      refund({ id: 'ref_2', invoiceId: 'inv_b', method: 'USDC-ethereum', chain: 'ethereum', amount: 2_500_000n, networkFee: 0n, decimals: 6, rate: '1', txid: '0x' + 'bb'.repeat(32), destination: '0xdest2', paidOnChain: 2_500_000n, chainFee: null }),
      refund({ id: 'ref_3', invoiceId: 'inv_b', method: 'USDC-ethereum', chain: 'ethereum', amount: 1_000_000n, networkFee: 0n, decimals: 6, rate: '1', status: 'cancelled', txid: null, destination: '0xdest3', paidOnChain: 0n, chainFee: null, events: {} }),
    ],
    confirmed: new Map([['inv_a|BTC', 100_000n], ['inv_b|USDC-ethereum', 4_000_000n]]),
    ledger: new Map<string, { txns: Record<string, number>; outflow: bigint }>([
      ['inv_a|BTC', { txns: { refund_sent: 1, refund_network_fee: 1 }, outflow: 50_300n }],
      ['inv_b|USDC-ethereum', { txns: { refund_sent: 1 }, outflow: 2_500_000n }],
    ]),
    report: {
      invoices: [
        // 50,000 sat at 60,000.00 = 30.00; 300 sat = 0.18: refunded 30.18.
        { invoice_id: 'inv_a', currency: 'USD', received: '60.00', not_counted: '0.00', refunded: '30.18', net_received: '29.82' },
        { invoice_id: 'inv_b', currency: 'USD', received: '4.00', not_counted: '0.00', refunded: '2.50', net_received: '1.50' },
      ],
      totals: {
        per_currency: [{ currency: 'USD', received: '64.00', refunded: '32.68', net_received: '31.32' }],
        per_asset: [
          { method: 'BTC', received: '0.00100000', refunds: 1, refunded: '0.00050300', net_received: '0.00049700' },
          { method: 'USDC-ethereum', received: '4.000000', refunds: 1, refunded: '2.500000', net_received: '1.500000' },
        ],
      },
    },
    currencyOf: new Map([['inv_a', { currency: 'USD', decimals: 2 }], ['inv_b', { currency: 'USD', decimals: 2 }]]),
    methodDecimals: { BTC: 8, 'USDC-ethereum': 6 },
  };
}

describe('refundViolations', () => {
  it('a consistent state passes', () => {
    expect(refundViolations(facts())).toEqual([]);
  });

  it('a refund booked twice in the ledger is named (R5)', () => {
    const f = facts();
    f.ledger.set('inv_a|BTC', { txns: { refund_sent: 2, refund_network_fee: 1 }, outflow: 100_300n });
    expect(refundViolations(f)).toEqual([
      'refund R5: inv_a BTC: 2 × refund_sent in the ledger, expected 1',
      'refund R5: inv_a BTC: outflow account holds 100300, sent refunds 50300',
    ]);
  });

  it('a refund paid twice on chain, or paid while cancelled, is named (R3)', () => {
    const f = facts();
    f.refunds[1]!.paidOnChain = 5_000_000n;
    f.refunds[2]!.paidOnChain = 1_000_000n;
    expect(refundViolations(f)).toEqual([
      'refund R3: ref_2 (completed, USDC-ethereum) paid 5000000 to 0xdest2 on chain, expected 2500000',
      'refund R3: ref_3 (cancelled, USDC-ethereum) paid 1000000 to 0xdest3 on chain, expected 0',
    ]);
  });

  it('refunds above the confirmed payments, a shared transaction and a refund left half-way are named (R1, R2, R4)', () => {
    const f = facts();
    f.refunds[2]!.status = 'awaiting_signature';
    f.refunds[2]!.amount = 2_000_000n;
    f.refunds.push(refund({ id: 'ref_4', destination: 'bcrt1qdest4' }));
    f.ledger.set('inv_a|BTC', { txns: { refund_sent: 2, refund_network_fee: 2 }, outflow: 100_600n });
    f.report = null;
    expect(refundViolations(f)).toEqual([
      `refund R1: transaction bitcoin:${'aa'.repeat(32)} is recorded for ref_1, ref_4`,
      'refund R2: inv_b USDC-ethereum: refunds take 4500000, confirmed payments 4000000',
      'refund R4: ref_3 (USDC-ethereum) is awaiting_signature after quiesce',
    ]);
  });

  it('a dropped EVM refund transaction may stay broadcast (documented); a Bitcoin one may not', () => {
    const f = facts();
    Object.assign(f.refunds[1]!, { status: 'broadcast', known: false, paidOnChain: 0n, events: { 'refund.broadcast': 1 } });
    expect(refundViolations(f)).toEqual([]);
    Object.assign(f.refunds[0]!, { status: 'broadcast', paidOnChain: 0n, chainFee: null, events: { 'refund.broadcast': 1 } });
    expect(refundViolations(f)).toEqual([
      'refund R3: ref_1 (broadcast, BTC) paid 0 to bcrt1qdest1 on chain, expected 50000',
      'refund R4: ref_1 (BTC) is broadcast after quiesce',
    ]);
  });

  it('completed twice without a reorg in between is named (R6)', () => {
    const f = facts();
    f.refunds[0]!.events = { 'refund.broadcast': 1, 'refund.completed': 2 };
    expect(refundViolations(f)).toEqual(['refund R6: ref_1 is completed after 2 × refund.completed and 0 × refund.reorged']);
  });

  it('report figures that differ from the model are named (R7): the refund valued at its own rate, or the fee left out', () => {
    const f = facts();
    f.report!.invoices[0]!.refunded = '30.00';
    f.report!.invoices[0]!.net_received = '30.00';
    f.report!.totals.per_asset[0]!.refunded = '0.00050000';
    f.report!.totals.per_asset[0]!.net_received = '0.00050000';
    expect(refundViolations(f)).toEqual([
      'refund R7: report invoice inv_a refunded 30.00 net 30.00, model 3018 net 2982 (10^-2)',
      'refund R7: report per_asset BTC refunds=1 refunded=0.00050000 net=0.00050000, model refunds=1 refunded=50300 net=49700 (10^-8)',
    ]);
  });
});
