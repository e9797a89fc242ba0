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
}

export interface ModelReport {
  invoices: ReportInvoice[];
  perCurrency: Map<string, { invoices: number; expected: bigint; received: bigint; decimals: number }>;
  perAsset: Map<string, { payments: number; received: bigint; counted: bigint }>;
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

  report(invoiceIds: string[]): ModelReport {
    const perCurrency: ModelReport['perCurrency'] = new Map();
    const perAsset: ModelReport['perAsset'] = new Map();
    const invoices = invoiceIds.map((id) => {
      const inv = this.invoices.get(id)!;
      const v = this.view(id);
      const rows: ReportRow[] = this.paymentsOf(id).map((p) => {
        const counted = this.counted(p);
        const a = perAsset.get(p.method) ?? { payments: 0, received: 0n, counted: 0n };
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
      const c = perCurrency.get(inv.currency) ?? { invoices: 0, expected: 0n, received: 0n, decimals: inv.currencyDecimals };
      c.invoices += 1;
      c.expected += inv.amount;
      c.received += received;
      perCurrency.set(inv.currency, c);
      return { id, status: v.status, exceptions: v.exceptions, expected: inv.amount, received, difference: received - inv.amount, rows };
    });
    return { invoices, perCurrency, perAsset };
  }
}
