/**
 * The refund invariants of the fault harness (docs/refunds.md, docs/reconciliation.md "Refunds"),
 * as a pure function over facts gathered from the database, the nodes and the report, so a unit
 * test can show each one failing (refund-invariant.test.ts):
 * R1 one transaction pays one refund: no txid is recorded for two refunds;
 * R2 nothing above what arrived: per invoice and asset, Σ (amount + fee) of the refunds that are not
 *    cancelled or failed ≤ the confirmed payments;
 * R3 paid once, exactly, on chain: what reached the customer's (fresh) destination is the refund's
 *    amount when it is broadcast or completed, nothing otherwise — never twice; a Bitcoin refund's
 *    network fee on chain is its recorded `network_fee`;
 * R4 terminal after quiesce: completed, cancelled or failed — or the documented case, an EVM refund
 *    whose transaction the node no longer knows (dropped), which stays `broadcast`;
 * R5 the ledger books each refund exactly once: per invoice and asset, one `refund_sent` (and one
 *    `refund_network_fee` when it paid a fee) per refund that was ever broadcast, one reversal per
 *    failed one, and the outflow account holds Σ (amount + network fee) of the sent ones;
 * R6 events: completed at most once (refund.completed − refund.reorged is 1 exactly when completed, else 0);
 * R7 the report's refund figures equal the model's (money-model.ts `refundReport`): per invoice
 *    refunded and net_received, per currency refunded and net_received, per asset refunds, refunded
 *    and net_received.
 */
import { refundReport, type ModelRefund } from '../model/money-model.ts';

export interface RefundFact extends ModelRefund {
  status: string;
  fee: bigint;
  txid: string | null;
  destination: string | null;
  /** What reached `destination` on chain (best chain / canonical balance), in base units. */
  paidOnChain: bigint;
  /** Bitcoin: the fee of the refund transaction in the best chain (null when it is not there). */
  chainFee: bigint | null;
  /** EVM: the node still knows the recorded transaction (mined or in its mempool). */
  known: boolean;
  events: Record<string, number>;
}

export interface RefundFacts {
  refunds: RefundFact[];
  /** `${invoice}|${method}` → Σ confirmed payments (base units). */
  confirmed: Map<string, bigint>;
  /** Ledger, per `${invoice}|${method}`: distinct transactions per kind, and the outflow account's balance. */
  ledger: Map<string, { txns: Record<string, number>; outflow: bigint }>;
  /** The report (JSON), or null when it was not read. */
  report: {
    invoices: { invoice_id: string; currency: string; received: string; not_counted: string; refunded: string; net_received: string }[];
    totals: {
      per_currency: { currency: string; refunded: string; net_received: string; received: string }[];
      per_asset: { method: string; received: string; refunds: number; refunded: string; net_received: string }[];
    };
  } | null;
  /** Invoice id → currency and its decimals; method → decimals. */
  currencyOf: Map<string, { currency: string; decimals: number }>;
  methodDecimals: Record<string, number>;
}

const SENT = new Set(['broadcast', 'completed']);
const EVER_SENT = new Set(['broadcast', 'completed', 'failed']);
const RESERVING = new Set(['awaiting_destination', 'awaiting_approval', 'awaiting_signature', 'broadcast', 'completed']);

function dec(s: string, d: number): bigint {
  const neg = s.startsWith('-');
  const [i, f = ''] = (neg ? s.slice(1) : s).split('.');
  const v = BigInt((i || '0') + f.padEnd(d, '0').slice(0, d));
  return neg ? -v : v;
}

/** The documented exception: an EVM refund whose transaction the node no longer knows stays broadcast. */
export const droppedEvm = (r: RefundFact) => r.chain !== 'bitcoin' && r.status === 'broadcast' && !r.known;

export function refundViolations(f: RefundFacts): string[] {
  const v: string[] = [];
  // R1
  const byTx = new Map<string, string[]>();
  for (const r of f.refunds) if (r.txid) byTx.set(`${r.chain}:${r.txid.toLowerCase()}`, [...(byTx.get(`${r.chain}:${r.txid.toLowerCase()}`) ?? []), r.id]);
  for (const [k, ids] of byTx) if (ids.length > 1) v.push(`refund R1: transaction ${k} is recorded for ${ids.join(', ')}`);

  // R2
  const reserved = new Map<string, bigint>();
  for (const r of f.refunds) if (RESERVING.has(r.status)) reserved.set(`${r.invoiceId}|${r.method}`, (reserved.get(`${r.invoiceId}|${r.method}`) ?? 0n) + r.amount + r.fee);
  for (const [k, x] of reserved) {
    const got = f.confirmed.get(k) ?? 0n;
    if (x > got) v.push(`refund R2: ${k.replace('|', ' ')}: refunds take ${x}, confirmed payments ${got}`);
  }

  for (const r of f.refunds) {
    // R3
    const want = SENT.has(r.status) && !droppedEvm(r) ? r.amount : 0n;
    if (r.paidOnChain !== want) v.push(`refund R3: ${r.id} (${r.status}, ${r.method}) paid ${r.paidOnChain} to ${r.destination} on chain, expected ${want}`);
    if (r.chain === 'bitcoin' && r.chainFee !== null && r.chainFee !== r.networkFee) v.push(`refund R3: ${r.id}: network fee on chain ${r.chainFee}, recorded ${r.networkFee}`);
    // R4
    if (!['completed', 'cancelled', 'failed'].includes(r.status) && !droppedEvm(r)) v.push(`refund R4: ${r.id} (${r.method}) is ${r.status} after quiesce`);
    // R6
    const net = (r.events['refund.completed'] ?? 0) - (r.events['refund.reorged'] ?? 0);
    if (net !== (r.status === 'completed' ? 1 : 0)) v.push(`refund R6: ${r.id} is ${r.status} after ${r.events['refund.completed'] ?? 0} × refund.completed and ${r.events['refund.reorged'] ?? 0} × refund.reorged`);
    if (EVER_SENT.has(r.status) && !(r.events['refund.broadcast'] ?? 0)) v.push(`refund R6: ${r.id} is ${r.status} without a refund.broadcast event`);
  }

  // R5
  const keys = new Set([...f.refunds.map((r) => `${r.invoiceId}|${r.method}`), ...f.ledger.keys()]);
  for (const k of keys) {
    const rs = f.refunds.filter((r) => `${r.invoiceId}|${r.method}` === k);
    const l = f.ledger.get(k) ?? { txns: {}, outflow: 0n };
    const want: Record<string, number> = {
      refund_sent: rs.filter((r) => EVER_SENT.has(r.status)).length,
      refund_sent_reversed: rs.filter((r) => r.status === 'failed').length,
      refund_network_fee: rs.filter((r) => EVER_SENT.has(r.status) && r.networkFee > 0n).length,
      refund_network_fee_reversed: rs.filter((r) => r.status === 'failed' && r.networkFee > 0n).length,
    };
    for (const [kind, n] of Object.entries(want)) {
      if ((l.txns[kind] ?? 0) !== n) v.push(`refund R5: ${k.replace('|', ' ')}: ${l.txns[kind] ?? 0} × ${kind} in the ledger, expected ${n}`);
    }
    const out = rs.filter((r) => SENT.has(r.status)).reduce((a, r) => a + r.amount + r.networkFee, 0n);
    if (l.outflow !== out) v.push(`refund R5: ${k.replace('|', ' ')}: outflow account holds ${l.outflow}, sent refunds ${out}`);
  }

  // R7
  if (f.report) {
    const model = refundReport(f.refunds.filter((r) => SENT.has(r.status)), f.currencyOf);
    for (const ri of f.report.invoices) {
      const cur = f.currencyOf.get(ri.invoice_id);
      if (!cur) continue;
      const refunded = model.perInvoice.get(ri.invoice_id) ?? 0n;
      const net = dec(ri.received, cur.decimals) + dec(ri.not_counted, cur.decimals) - refunded;
      if (dec(ri.refunded, cur.decimals) !== refunded || dec(ri.net_received, cur.decimals) !== net) {
        v.push(`refund R7: report invoice ${ri.invoice_id} refunded ${ri.refunded} net ${ri.net_received}, model ${refunded} net ${net} (10^-${cur.decimals})`);
      }
    }
    for (const pc of f.report.totals.per_currency) {
      const invs = f.report.invoices.filter((i) => i.currency === pc.currency);
      const d = f.currencyOf.get(invs[0]?.invoice_id ?? '')?.decimals ?? 2;
      const refunded = invs.reduce((a, i) => a + (model.perInvoice.get(i.invoice_id) ?? 0n), 0n);
      const net = invs.reduce((a, i) => a + dec(i.received, d) + dec(i.not_counted, d), 0n) - refunded;
      if (dec(pc.refunded, d) !== refunded || dec(pc.net_received, d) !== net) v.push(`refund R7: report per_currency ${pc.currency} refunded ${pc.refunded} net ${pc.net_received}, model ${refunded} net ${net}`);
    }
    const methods = new Set([...f.report.totals.per_asset.map((a) => a.method), ...model.perAsset.keys()]);
    for (const m of methods) {
      const ra = f.report.totals.per_asset.find((a) => a.method === m);
      const ma = model.perAsset.get(m) ?? { refunds: 0, refunded: 0n };
      const d = f.methodDecimals[m] ?? 0;
      if (!ra) { v.push(`refund R7: report has no per_asset ${m}, model ${ma.refunds} refunds of ${ma.refunded}`); continue; }
      const net = dec(ra.received, d) - ma.refunded;
      if (ra.refunds !== ma.refunds || dec(ra.refunded, d) !== ma.refunded || dec(ra.net_received, d) !== net) {
        v.push(`refund R7: report per_asset ${m} refunds=${ra.refunds} refunded=${ra.refunded} net=${ra.net_received}, model refunds=${ma.refunds} refunded=${ma.refunded} net=${net} (10^-${d})`);
      }
    }
  }
  return v;
}
