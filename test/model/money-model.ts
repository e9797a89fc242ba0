/**
 * An independent reference model of invoice accounting, written from the documents (README,
 * docs/integration-guide.md, docs/reconciliation.md, docs/webhooks.md, docs/evm.md) and the rules
 * of issue 14 — deliberately NOT from src/settlement or src/reports (nothing is imported from
 * there). Pure: no database, no clock; time is a logical counter advanced by each event.
 *
 * The rules it applies (each one quoted or derived from the documents):
 *
 * - A payment's value is its amount at the rate locked on the invoice when it was created,
 *   rounded down in the invoice currency (src/money/rate.ts: "the value credited for a payment
 *   rounds down"). An asset the invoice did not offer has no rate and no value.
 * - Live = `pending` (in mempool) or `confirmed`; `reorged` and `replaced` payments are gone.
 * - On time (issue 14, item 1): Kassa saw the payment (mempool or block), by its own clock, at or
 *   before `expires_at`, OR the payment is in a block at a height at or below a tip height the
 *   watcher recorded at or before `expires_at`. A miner's block timestamp never matters.
 * - Countable = live ∧ offered ∧ on time. `amount_paid` = Σ value of countable payments.
 * - Counted (the report's one definition) = countable ∧ the invoice is not `invalid`
 *   (docs/reconciliation.md, "not_counted (late, not offered, on an invalid invoice)" and the
 *   unmatched reasons reorged/replaced/asset_not_offered/late/invoice_invalid).
 * - Paid in full = countable value ≥ price × (1 − tolerance) (rounded up, never less).
 *   Confirmed = the countable value of payments with at least the method's
 *   `confirmations_required` (confirmations = tip − height + 1) is paid in full.
 * - States (docs/reconciliation.md "States and exceptions", docs/webhooks.md "Event types"):
 *   new → processing (paid in full) → settled (confirmed); new → expired (deadline passed, not
 *   paid in full); expired → processing/settled only when the on-time rule shows it was paid
 *   before the deadline; processing/settled → invalid when a counted payment leaves the chain and
 *   the rest is no longer paid in full. Staff marks override everything (`marked`).
 * - Exceptions: marked > paid_late (money arrived after expiry on an invoice that is not
 *   processing/settled) > paid_over (counted more than the price) > paid_partial (some, but less
 *   than the price minus the tolerance) > none.
 * - `amount_due` = price − amount_paid while `new`, else 0.
 * - Report: rows carry value only when counted; invoice `received` = Σ counted values;
 *   per-currency totals = Σ invoices; per-asset `received` = Σ live amounts, `counted` = Σ counted
 *   amounts, `not_counted` = the rest, `payments` = number of live payments.
 * - Ledger (issue 14, item 5): after any sequence of marks the ledger equals what the final state
 *   implies: a marked-settled invoice writes off the shortfall (price − amount_paid), a
 *   marked-invalid one owes back what was paid; nothing else in the invoice currency.
 *
 * - Refunds (docs/refunds.md rules 1–4, 6, 7; docs/reconciliation.md "Refunds"): see the refund
 *   section at the end. Per invoice and asset the refunds that are not cancelled or failed never
 *   take more (gross: amount + deducted fee) than the confirmed payments in that asset; `full` =
 *   what is left, `overpaid` = (amount_paid − price) converted at the invoice's locked rate, a
 *   decimal in the invoice currency converted the same way, a decimal in the asset as is;
 *   conversions round down; the customer receives gross − fee > 0. Sent = broadcast or completed:
 *   the report's refunded value (amount and network fee, each at the invoice's locked rate, rounded
 *   down), net_received = received + not_counted − refunded, per asset net = received − refunded,
 *   and the ledger's merchant accounts hold live payments − sent (amount + network fee).
 *
 * Where the documents do not decide, the model returns every acceptable answer (exception sets).
 */
import { currencyValueOf } from '../../src/money/rate.ts';

export type Status = 'new' | 'processing' | 'settled' | 'expired' | 'invalid';
export type Exception = 'paid_partial' | 'paid_over' | 'paid_late' | 'marked' | null;
export type PaymentStatus = 'pending' | 'confirmed' | 'reorged' | 'replaced';
export type UnmatchedReason = 'late' | 'asset_not_offered' | 'reorged' | 'replaced' | 'invoice_invalid' | string;

/**
 * Event names, in ONE place (docs/webhooks.md "Event types"). `paidLate`, `paidPartial` and
 * `paymentConfirmed` are the events issue 14 item 3 asks for ("a partial payment confirming, and a
 * late payment, are each visible as an event"), under the names the fix gives them; set an
 * environment variable to '' to leave one unchecked, or to another name after a rename.
 *  - paidLate / paidPartial: fire when the invoice's exception becomes paid_late / paid_partial;
 *  - paymentConfirmed: fires when a payment reaches its method's confirmations_required (at once
 *    for 0), also a partial or late one, and again after a reorg. data.payment names it.
 */
export const EVENTS = {
  created: 'invoice.created',
  paymentDetected: 'invoice.payment_detected',
  paymentReorged: 'invoice.payment_reorged',
  marked: 'invoice.marked',
  status: {
    processing: 'invoice.processing',
    settled: 'invoice.settled',
    expired: 'invoice.expired',
    invalid: 'invoice.invalid',
  } as Record<Exclude<Status, 'new'>, string>,
  paidLate: envName('KASSA_MODEL_EVENT_PAID_LATE', 'invoice.paid_late'),
  paidPartial: envName('KASSA_MODEL_EVENT_PAID_PARTIAL', 'invoice.paid_partial'),
  paymentConfirmed: envName('KASSA_MODEL_EVENT_PAYMENT_CONFIRMED', 'invoice.payment_confirmed'),
};

function envName(name: string, dflt: string): string | undefined {
  const v = process.env[name];
  return v === undefined ? dflt : v === '' ? undefined : v;
}

/**
 * The unmatched reason of a live, on-time payment on an invoice staff marked invalid: issue 14's fix
 * names it `marked_invalid` in docs/reconciliation.md (`invoice_invalid` before it);
 * KASSA_MODEL_REASON_MARKED_INVALID overrides it. An invoice invalid by itself: `invoice_invalid`.
 */
export const MARKED_INVALID_REASON = process.env.KASSA_MODEL_REASON_MARKED_INVALID || 'marked_invalid';

/** Ledger account suffixes (merchant:<id>:<suffix>) for marks, in one place. */
export const MARK_ACCOUNTS = { writtenOff: 'written_off', refundDue: 'refund_due', invoiced: 'invoiced' };

export interface MethodTerms {
  method: string;
  chain: string;
  asset: string;
  decimals: number;
  /** The locked rate (invoice currency per whole asset unit). */
  rate: string;
  confirmationsRequired: number;
}

export interface ModelPayment {
  /** `${chain}:${txid}:${outputIndex}`: the identity of a payment. */
  key: string;
  invoiceId: string;
  chain: string;
  txid: string;
  outputIndex: number;
  method: string;
  decimals: number;
  amount: bigint;
  status: PaymentStatus;
  height: number | null;
  /** Logical time Kassa first saw it. */
  seenAt: number;
}

interface ModelInvoiceState {
  id: string;
  amount: bigint;
  currency: string;
  currencyDecimals: number;
  toleranceBps: number;
  methods: Map<string, MethodTerms>;
  status: Status;
  marked: 'settled' | 'invalid' | null;
  /** Logical time of the deadline, null while it has not passed. */
  expiredAt: number | null;
  /** amount_paid when the last effective mark was made. */
  paidAtMark: bigint | null;
}

export interface InvoiceView {
  status: Status;
  /** Every exception the documents allow here (usually one). */
  exceptions: Exception[];
  amountPaid: bigint;
  amountDue: bigint;
}

export interface ReportRow {
  key: string;
  txid: string;
  outputIndex: number;
  method: string;
  status: PaymentStatus;
  late: boolean;
  amount: bigint;
  rate: string | null;
  counted: boolean;
  /** Value in the invoice currency when counted, else null. */
  value: bigint | null;
  reason: UnmatchedReason | null;
}

export interface ReportInvoice {
  id: string;
  status: Status;
  exceptions: Exception[];
  expected: bigint;
  received: bigint;
  difference: bigint;
  rows: ReportRow[];
  notCounted: bigint;
  /** Value of its sent refunds (amount and network fee each at the locked rate, rounded down). */
  refunded: bigint;
  /** received + not counted − refunded. */
  netReceived: bigint;
  /** Its sent refunds, with their values (null without a locked rate). */
  refunds: (ModelRefund & { value: bigint | null; feeValue: bigint | null; status: RefundStatus })[];
}

export interface ModelReport {
  invoices: ReportInvoice[];
  perCurrency: Map<string, { invoices: number; expected: bigint; received: bigint; decimals: number; refunded: bigint; netReceived: bigint }>;
  /** refunds / refunded (amount + network fee) / net = received − refunded. */
  perAsset: Map<string, { payments: number; received: bigint; counted: bigint; refunds: number; refunded: bigint }>;
}

/** What one step is expected to have emitted. */
export interface StepExpectation {
  /** Per invoice: status before and after, and whether a mark changed it. */
  transitions: Map<string, { from: Status; to: Status; byMark: boolean }>;
  detected: { invoiceId: string; key: string; late: boolean }[];
  reorged: { invoiceId: string; key: string; status: PaymentStatus }[];
  marked: string[];
}

const live = (p: ModelPayment) => p.status === 'pending' || p.status === 'confirmed';

export class MoneyModel {
  private t = 0;
  /** The current logical time (Kassa's clock, in steps). */
  get now(): number {
    return this.t;
  }
  readonly invoices = new Map<string, ModelInvoiceState>();
  readonly payments = new Map<string, ModelPayment>();
  readonly refunds = new Map<string, ModelRefundState>();
  /** Watcher tip per chain, and every (time, height) it recorded. */
  readonly tips = new Map<string, number>();
  private readonly tipHistory = new Map<string, { t: number; height: number }[]>();
  private step: StepExpectation = MoneyModel.emptyStep();

  static emptyStep(): StepExpectation {
    return { transitions: new Map(), detected: [], reorged: [], marked: [] };
  }

  /** Starts a step (one database transaction / API call); returns what the previous one expected. */
  beginStep(): void {
    this.step = MoneyModel.emptyStep();
    this.t += 1;
  }

  endStep(): StepExpectation {
    this.recomputeAll();
    return this.step;
  }

  createInvoice(i: { id: string; amount: bigint; currency: string; currencyDecimals: number; toleranceBps: number; methods: MethodTerms[] }): void {
    this.invoices.set(i.id, {
      ...i, methods: new Map(i.methods.map((m) => [m.method, m])), status: 'new', marked: null, expiredAt: null, paidAtMark: null,
    });
  }

  recordTip(chain: string, height: number): void {
    this.tips.set(chain, height);
    const h = this.tipHistory.get(chain) ?? [];
    h.push({ t: this.t, height });
    this.tipHistory.set(chain, h);
  }

  /** Highest tip the watcher recorded on `chain` at or before logical time `t`. */
  maxTipRecordedBy(chain: string, t: number): number {
    let max = -1;
    for (const r of this.tipHistory.get(chain) ?? []) if (r.t <= t && r.height > max) max = r.height;
    return max;
  }

  /** A payment seen (block = null: mempool). Returns whether it is a new payment. */
  observe(p: { invoiceId: string; chain: string; txid: string; outputIndex: number; method: string; decimals: number; amount: bigint; height: number | null }): boolean {
    const key = `${p.chain}:${p.txid}:${p.outputIndex}`;
    const existing = this.payments.get(key);
    if (existing) {
      // A mempool sighting never un-confirms; a block sighting (re)confirms at its height.
      if (p.height !== null) {
        existing.status = 'confirmed';
        existing.height = p.height;
      } else if (existing.status !== 'confirmed') existing.status = 'pending';
      return false;
    }
    const np: ModelPayment = { key, ...p, status: p.height === null ? 'pending' : 'confirmed', seenAt: this.t };
    this.payments.set(key, np);
    this.step.detected.push({ invoiceId: p.invoiceId, key, late: !this.onTime(np) });
    return true;
  }

  /** Chain rolled back to `height`: payments in orphaned blocks go back to the mempool or are reorged. */
  rollback(chain: string, height: number, stillInMempool: (key: string) => boolean): void {
    for (const p of this.payments.values()) {
      if (p.chain !== chain || p.status !== 'confirmed' || p.height === null || p.height <= height) continue;
      p.status = stillInMempool(p.key) ? 'pending' : 'reorged';
      p.height = null;
      this.step.reorged.push({ invoiceId: p.invoiceId, key: p.key, status: p.status });
    }
    this.recordTip(chain, height);
  }

  /** Pending payments whose transaction vanished (double-spent, dropped). */
  replace(keys: string[]): void {
    for (const k of keys) {
      const p = this.payments.get(k);
      if (p && p.status === 'pending') p.status = 'replaced';
    }
  }

  expire(invoiceId: string): void {
    const inv = this.invoices.get(invoiceId)!;
    if (inv.expiredAt === null) inv.expiredAt = this.t;
  }

  /**
   * A staff mark. Returns 'noop' when it repeats the current mark, 'conflict_allowed' when the
   * invoice is already settled without a mark and settled is asked (a 409 is acceptable there),
   * else 'applied'.
   */
  markOutcome(invoiceId: string, status: 'settled' | 'invalid'): 'noop' | 'conflict_allowed' | 'applied' {
    const inv = this.invoices.get(invoiceId)!;
    if (inv.marked === status && inv.status === status) return 'noop';
    if (inv.marked === null && inv.status === status && status === 'settled') return 'conflict_allowed';
    return 'applied';
  }

  mark(invoiceId: string, status: 'settled' | 'invalid'): void {
    const inv = this.invoices.get(invoiceId)!;
    const from = inv.status;
    inv.marked = status;
    inv.status = status;
    inv.paidAtMark = this.receivedOf(inv);
    this.step.marked.push(invoiceId);
    const prev = this.step.transitions.get(invoiceId);
    this.step.transitions.set(invoiceId, { from: prev?.from ?? from, to: status, byMark: true });
  }

  // ------------------------------------------------------------------ rules

  confirmations(p: ModelPayment): number {
    if (p.status !== 'confirmed' || p.height === null) return 0;
    return Math.max(0, (this.tips.get(p.chain) ?? -1) - p.height + 1);
  }

  onTime(p: ModelPayment): boolean {
    const inv = this.invoices.get(p.invoiceId)!;
    if (inv.expiredAt === null || p.seenAt <= inv.expiredAt) return true;
    return p.status === 'confirmed' && p.height !== null && p.height <= this.maxTipRecordedBy(p.chain, inv.expiredAt);
  }

  offered(p: ModelPayment): MethodTerms | undefined {
    return this.invoices.get(p.invoiceId)!.methods.get(p.method);
  }

  valueOf(p: ModelPayment): bigint | null {
    const m = this.offered(p);
    if (!m) return null;
    const inv = this.invoices.get(p.invoiceId)!;
    return currencyValueOf(p.amount, m.decimals, m.rate, inv.currencyDecimals);
  }

  countable(p: ModelPayment): boolean {
    return live(p) && this.offered(p) !== undefined && this.onTime(p);
  }

  /**
   * docs/reconciliation.md, "What counts": a live payment in an offered asset counts when it is on
   * time; on an invoice staff marked settled every such payment counts (staff accepted it), on one
   * marked invalid none does (the money is owed back).
   */
  counted(p: ModelPayment): boolean {
    if (!live(p) || this.offered(p) === undefined) return false;
    const marked = this.invoices.get(p.invoiceId)!.marked;
    if (marked === 'settled') return true;
    if (marked === 'invalid') return false;
    return this.onTime(p);
  }

  /** The invoice's amount_paid: the value of its counted payments (the report's `received`). */
  private countedPaidOf(inv: ModelInvoiceState): bigint {
    return this.paymentsOf(inv.id).filter((p) => this.counted(p)).reduce((a, p) => a + this.valueOf(p)!, 0n);
  }

  /** Everything still on chain in offered assets, on time or not (what a mark to invalid owes back). */
  private receivedOf(inv: ModelInvoiceState): bigint {
    return this.paymentsOf(inv.id).filter((p) => live(p) && this.offered(p) !== undefined).reduce((a, p) => a + this.valueOf(p)!, 0n);
  }

  paymentsOf(invoiceId: string): ModelPayment[] {
    return [...this.payments.values()].filter((p) => p.invoiceId === invoiceId);
  }

  private paidOf(inv: ModelInvoiceState): bigint {
    return this.paymentsOf(inv.id).filter((p) => this.countable(p)).reduce((a, p) => a + this.valueOf(p)!, 0n);
  }

  threshold(invoiceId: string): bigint {
    const inv = this.invoices.get(invoiceId)!;
    return (inv.amount * BigInt(10000 - inv.toleranceBps) + 9999n) / 10000n;
  }

  private recomputeAll(): void {
    for (const inv of this.invoices.values()) {
      const from = inv.status;
      if (inv.marked) continue;
      const ps = this.paymentsOf(inv.id).filter((p) => this.countable(p));
      const paid = ps.reduce((a, p) => a + this.valueOf(p)!, 0n);
      const confirmed = ps.filter((p) => this.confirmations(p) >= this.offered(p)!.confirmationsRequired).reduce((a, p) => a + this.valueOf(p)!, 0n);
      const th = this.threshold(inv.id);
      const full = paid >= th;
      const conf = confirmed >= th;
      let to: Status = from;
      switch (from) {
        case 'new':
        case 'expired':
          if (full) to = conf ? 'settled' : 'processing';
          else if (inv.expiredAt !== null) to = 'expired';
          break;
        case 'processing':
          to = !full ? 'invalid' : conf ? 'settled' : 'processing';
          break;
        case 'settled':
          if (!full) to = 'invalid';
          break;
        case 'invalid':
          break;
      }
      if (to !== from) {
        inv.status = to;
        const prev = this.step.transitions.get(inv.id);
        this.step.transitions.set(inv.id, { from: prev?.from ?? from, to, byMark: prev?.byMark ?? false });
      }
    }
  }

  // ------------------------------------------------------------------ outputs

  view(invoiceId: string): InvoiceView {
    const inv = this.invoices.get(invoiceId)!;
    const paid = this.countedPaidOf(inv);
    return { status: inv.status, exceptions: this.exceptions(inv, paid), amountPaid: paid, amountDue: inv.status === 'new' && paid < inv.amount ? inv.amount - paid : 0n };
  }

  private exceptions(inv: ModelInvoiceState, paid: bigint): Exception[] {
    if (inv.marked) return ['marked'];
    const ps = this.paymentsOf(inv.id).filter(live);
    const lateOffered = ps.some((p) => this.offered(p) && !this.onTime(p));
    const lateOther = ps.some((p) => !this.offered(p) && !this.onTime(p));
    const paying = inv.status === 'processing' || inv.status === 'settled';
    // paid_over: "more than the price arrived" (docs/reconciliation.md), counted or not.
    const rest: Exception = this.receivedOf(inv) > inv.amount ? 'paid_over' : paid > 0n && paid < this.threshold(inv.id) ? 'paid_partial' : null;
    if (lateOffered && !paying) return ['paid_late'];
    // Late money on an invoice paid on time, or late money in an asset it did not offer: the
    // documents do not say which exception wins.
    if (lateOffered || lateOther) return [rest, 'paid_late'];
    return [rest];
  }

  /** Payments (of offered assets) that have their method's confirmations: live and deep enough. */
  confirmedKeys(): Set<string> {
    const out = new Set<string>();
    for (const p of this.payments.values()) {
      const m = this.offered(p);
      if (m && live(p) && this.confirmations(p) >= m.confirmationsRequired) out.add(p.key);
    }
    return out;
  }

  reasonOf(p: ModelPayment): UnmatchedReason | null {
    if (p.status === 'reorged' || p.status === 'replaced') return p.status;
    if (!this.offered(p)) return 'asset_not_offered';
    if (this.counted(p)) return null;
    if (this.invoices.get(p.invoiceId)!.marked === 'invalid') return MARKED_INVALID_REASON;
    return 'late';
  }

  /** Expected ledger balances in the invoice currency for marks (account suffix → amount). */
  markBalances(invoiceId: string): { writtenOff: bigint; refundDue: bigint; invoiced: bigint; reliable: boolean } {
    const inv = this.invoices.get(invoiceId)!;
    const paid = this.receivedOf(inv);
    let writtenOff = 0n;
    let refundDue = 0n;
    if (inv.marked === 'settled' && paid < inv.amount) writtenOff = inv.amount - paid;
    if (inv.marked === 'invalid') refundDue = paid;
    // When money arrived after the last mark, the documents do not say whether the booking follows.
    const reliable = inv.paidAtMark === null || inv.paidAtMark === paid;
    return { writtenOff, refundDue, invoiced: -(writtenOff + refundDue), reliable };
  }

  // ---------------------------------------------------------------- refunds

  /** Confirmed payments of the invoice in `method` (base units): what refunds may give back (rule 1). */
  confirmedIn(invoiceId: string, method: string): bigint {
    return this.paymentsOf(invoiceId).filter((p) => p.method === method && p.status === 'confirmed').reduce((a, p) => a + p.amount, 0n);
  }

  /** What the invoice's other refunds in `method` take (gross), those not cancelled or failed. */
  reservedIn(invoiceId: string, method: string, exceptId: string | null): bigint {
    let x = 0n;
    for (const r of this.refunds.values()) if (r.invoiceId === invoiceId && r.method === method && r.id !== exceptId && RESERVING.has(r.status)) x += r.amount + r.terms.fee;
    return x;
  }

  /**
   * The gross refund for these terms now (rules 2, 3), or the reason it is refused. `rate` is the
   * rate the amount is converted at (the invoice's locked one for rate_then, the given one for fixed).
   */
  refundGross(invoiceId: string, method: string, terms: RefundTerms, exceptId: string | null): { gross: bigint } | { refused: string } {
    const inv = this.invoices.get(invoiceId)!;
    const m = inv.methods.get(method)!;
    const received = this.confirmedIn(invoiceId, method);
    if (received === 0n) return { refused: 'nothing_received' };
    const left = received - this.reservedIn(invoiceId, method, exceptId);
    const rate = terms.rateBasis === 'fixed' ? terms.rate! : m.rate;
    let gross: bigint;
    if (terms.kind === 'full') {
      if (left <= 0n) return { refused: 'nothing_left_to_refund' };
      gross = left;
    } else if (terms.kind === 'overpaid') {
      const paid = this.view(invoiceId).amountPaid;
      if (paid <= inv.amount) return { refused: 'invoice_not_overpaid' };
      gross = toAssetDown(paid - inv.amount, inv.currencyDecimals, rate, m.decimals);
    } else if (terms.requestedCurrency === inv.currency) {
      gross = toAssetDown(terms.requested!, inv.currencyDecimals, rate, m.decimals);
    } else gross = terms.requested!;
    if (gross <= 0n) return { refused: 'refund_amount_zero' };
    if (gross > left) return { refused: 'refund_exceeds_received' };
    if (terms.fee >= gross) return { refused: 'fee_too_large' };
    return { gross };
  }

  addRefund(r: { id: string; invoiceId: string; method: string; chain: string; decimals: number; terms: RefundTerms; amount: bigint }): void {
    this.refunds.set(r.id, { ...r, status: 'awaiting_destination', networkFee: 0n });
  }

  /** Sent refunds (broadcast or completed) as the report values them. */
  sentRefunds(invoiceIds: string[]): ModelRefund[] {
    const out: ModelRefund[] = [];
    for (const r of this.refunds.values()) {
      if (!invoiceIds.includes(r.invoiceId) || (r.status !== 'broadcast' && r.status !== 'completed')) continue;
      out.push({ id: r.id, invoiceId: r.invoiceId, method: r.method, chain: r.chain, amount: r.amount, networkFee: r.networkFee, decimals: r.decimals, rate: this.invoices.get(r.invoiceId)!.methods.get(r.method)?.rate ?? null });
    }
    return out;
  }

  /** Value of the invoice's live payments in offered assets that do not count (the report's not_counted). */
  notCountedOf(invoiceId: string): bigint {
    return this.paymentsOf(invoiceId).filter((p) => live(p) && this.offered(p) !== undefined && !this.counted(p)).reduce((a, p) => a + this.valueOf(p)!, 0n);
  }

  report(invoiceIds: string[]): ModelReport {
    const perCurrency: ModelReport['perCurrency'] = new Map();
    const perAsset: ModelReport['perAsset'] = new Map();
    const invoices = invoiceIds.map((id) => {
      const inv = this.invoices.get(id)!;
      const v = this.view(id);
      const rows: ReportRow[] = this.paymentsOf(id).map((p) => {
        const counted = this.counted(p);
        const a = perAsset.get(p.method) ?? { payments: 0, received: 0n, counted: 0n, refunds: 0, refunded: 0n };
        if (live(p)) {
          a.payments += 1;
          a.received += p.amount;
          if (counted) a.counted += p.amount;
        }
        perAsset.set(p.method, a);
        return {
          key: p.key, txid: p.txid, outputIndex: p.outputIndex, method: p.method, status: p.status, late: !this.onTime(p),
          amount: p.amount, rate: this.offered(p)?.rate ?? null, counted, value: counted ? this.valueOf(p) : null, reason: this.reasonOf(p),
        };
      });
      const received = rows.reduce((a, r) => a + (r.value ?? 0n), 0n);
      const sent = this.sentRefunds([id]);
      const { perInvoice, perAsset: refundsPerAsset } = refundReport(sent, new Map([[id, { currency: inv.currency, decimals: inv.currencyDecimals }]]));
      const refunded = perInvoice.get(id) ?? 0n;
      for (const [method, ra] of refundsPerAsset) {
        const a = perAsset.get(method) ?? { payments: 0, received: 0n, counted: 0n, refunds: 0, refunded: 0n };
        a.refunds += ra.refunds;
        a.refunded += ra.refunded;
        perAsset.set(method, a);
      }
      const notCounted = this.notCountedOf(id);
      const netReceived = received + notCounted - refunded;
      const c = perCurrency.get(inv.currency) ?? { invoices: 0, expected: 0n, received: 0n, decimals: inv.currencyDecimals, refunded: 0n, netReceived: 0n };
      c.invoices += 1;
      c.expected += inv.amount;
      c.received += received;
      c.refunded += refunded;
      c.netReceived += netReceived;
      perCurrency.set(inv.currency, c);
      const refunds = sent.map((r) => {
        const val = refundValue(r, inv.currencyDecimals);
        return { ...r, value: val?.sent ?? null, feeValue: val?.fee ?? null, status: this.refunds.get(r.id)!.status };
      });
      return { id, status: v.status, exceptions: v.exceptions, expected: inv.amount, received, difference: received - inv.amount, rows, notCounted, refunded, netReceived, refunds };
    });
    return { invoices, perCurrency, perAsset };
  }
}

// ------------------------------------------------------------------ refunds

/**
 * A refund as the report sees it (docs/reconciliation.md, "Refunds"): the amount sent to the
 * customer and the network fee paid from the invoice's own outputs, in the asset's base units, and
 * the rate the INVOICE locked for the refunded method (not the refund's own rate basis: "valued at
 * the rate the invoice locked for the refunded method"); null when the invoice did not offer it.
 */
export interface ModelRefund {
  id: string;
  invoiceId: string;
  method: string;
  chain: string;
  amount: bigint;
  networkFee: bigint;
  decimals: number;
  rate: string | null;
}

/**
 * The value of a sent refund in the invoice currency: the amount and the network fee each valued
 * at the invoice's locked rate and rounded down ("each valued at the rate the invoice locked for
 * the refunded method and rounded down"); null without a locked rate ("its rows have no value").
 */
export function refundValue(r: Pick<ModelRefund, 'amount' | 'networkFee' | 'decimals' | 'rate'>, currencyDecimals: number): { sent: bigint; fee: bigint } | null {
  if (r.rate === null) return null;
  return { sent: currencyValueOf(r.amount, r.decimals, r.rate, currencyDecimals), fee: currencyValueOf(r.networkFee, r.decimals, r.rate, currencyDecimals) };
}

/**
 * The report's refund figures from the refunds that left the wallet (`broadcast` or `completed`;
 * the caller passes only those): per invoice `refunded` (in its currency), per method the number
 * of refunds and `refunded` (amount + network fee, in the asset).
 */
export function refundReport(sent: ModelRefund[], currencyOf: Map<string, { currency: string; decimals: number }>): {
  perInvoice: Map<string, bigint>;
  perAsset: Map<string, { refunds: number; refunded: bigint }>;
} {
  const perInvoice = new Map<string, bigint>();
  const perAsset = new Map<string, { refunds: number; refunded: bigint }>();
  for (const r of sent) {
    const cur = currencyOf.get(r.invoiceId);
    if (!cur) continue; // an invoice outside the report's period
    const v = refundValue(r, cur.decimals);
    perInvoice.set(r.invoiceId, (perInvoice.get(r.invoiceId) ?? 0n) + (v ? v.sent + v.fee : 0n));
    const a = perAsset.get(r.method) ?? { refunds: 0, refunded: 0n };
    a.refunds += 1;
    a.refunded += r.amount + r.networkFee;
    perAsset.set(r.method, a);
  }
  return { perInvoice, perAsset };
}

export type RefundStatus = 'awaiting_destination' | 'awaiting_approval' | 'awaiting_signature' | 'broadcast' | 'completed' | 'cancelled' | 'failed';
/** Rule 1: every refund that is not cancelled or failed takes its share of what arrived. */
const RESERVING = new Set<RefundStatus>(['awaiting_destination', 'awaiting_approval', 'awaiting_signature', 'broadcast', 'completed']);

/** What the merchant asked for (rules 2–4). */
export interface RefundTerms {
  kind: 'full' | 'overpaid' | 'decimal';
  /** A decimal amount, in `requestedCurrency`'s minor units (the invoice currency or the asset). */
  requested: bigint | null;
  requestedCurrency: string | null;
  rateBasis: 'rate_then' | 'fixed';
  /** The rate given with `fixed` (invoice currency per whole asset unit). */
  rate: string | null;
  /** Deducted from the refund (asset base units). */
  fee: bigint;
}

export interface ModelRefundState {
  id: string;
  invoiceId: string;
  method: string;
  chain: string;
  decimals: number;
  terms: RefundTerms;
  status: RefundStatus;
  /** What the customer receives (gross − fee), locked at the claim. */
  amount: bigint;
  /** Bitcoin: the network fee of its transaction, paid from the invoice's outputs. */
  networkFee: bigint;
}

/**
 * A value in the invoice currency (minor units) as base units of an asset at `rate` (invoice
 * currency per whole unit), rounded down: "Conversions round down, so a refund never pays more
 * than the value asked". Written out here rather than taken from src/.
 */
export function toAssetDown(value: bigint, currencyDecimals: number, rate: string, assetDecimals: number): bigint {
  const [i, f = ''] = rate.split('.');
  const rateScaled = BigInt(i! + f);
  if (rateScaled <= 0n) throw new Error(`rate ${rate}`);
  return (value * 10n ** BigInt(assetDecimals) * 10n ** BigInt(f.length)) / (10n ** BigInt(currencyDecimals) * rateScaled);
}
