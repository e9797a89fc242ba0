/**
 * The invoice state machine as data (docs/architecture.md §6) and the pure function that decides where an
 * invoice should be, given its payments. Persisting a move is guarded in SQL
 * (`update … where status = $from`), so a repeated or concurrent recompute is a no-op.
 */
import { currencyValueOf } from '../money/rate.ts';
import type { InvoiceException, InvoiceStatus } from '../invoices/status.ts';

/** Allowed moves, and the event each one emits. */
export const TRANSITIONS: Record<InvoiceStatus, Partial<Record<InvoiceStatus, string>>> = {
  new: { processing: 'invoice.processing', expired: 'invoice.expired', invalid: 'invoice.invalid' },
  processing: { settled: 'invoice.settled', invalid: 'invoice.invalid' },
  // An invoice whose payment is found after expiry, but that Kassa's own records prove reached the
  // chain before expiry (`sentOnTime`: a block at or below a tip recorded before expiry), is paid after all.
  expired: { processing: 'invoice.processing', invalid: 'invoice.invalid' },
  settled: { invalid: 'invoice.invalid' },
  // Invalid because a counted payment left the chain; it came back (re-mined) before monitoring ended.
  invalid: { processing: 'invoice.processing' },
};


export interface MethodTerms {
  method: string;
  rate: string;
  decimals: number;
  confirmationsRequired: number;
}

export interface PaymentFacts {
  method: string;
  amount: bigint;
  status: 'pending' | 'confirmed' | 'reorged' | 'replaced';
  confirmations: number;
  firstSeenAt: Date;
  /** Height of the block it is in (confirmed payments), else null/absent. */
  blockHeight?: number | null;
  /**
   * The highest block height of the payment's chain that Kassa recorded (with its own clock) at
   * or before the invoice's expires_at; null/absent when it recorded none. See `sentOnTime`.
   */
  heightAtDeadline?: number | null;
  /** False when the invoice did not offer the payment's asset (no locked rate: it cannot count). */
  offered?: boolean;
}

export interface InvoiceFacts {
  status: InvoiceStatus;
  amount: bigint;
  currencyDecimals: number;
  toleranceBps: number;
  expiresAt: Date;
  monitoringUntil: Date;
  marked: boolean;
}

export interface Evaluation {
  status: InvoiceStatus;
  exception: InvoiceException | null;
  /** Value of all live (not reorged/replaced) payments in offered assets, in the invoice currency. */
  amountPaid: bigint;
  /** The part of amountPaid that counts toward the price when no mark applies (`countsTowardPrice`). */
  amountPaidOnTime: bigint;
  threshold: bigint;
}

/**
 * THE on-time rule (docs/reconciliation.md, "When a payment is on time"): a payment is on time
 * only if Kassa's own records prove it reached the mempool or a block by the deadline —
 * Kassa first saw it (mempool or block, Kassa's clock) at or before `expiresAt`, or it is in a
 * block at a height at or below a chain tip that a watcher recorded (Kassa's clock) at or before
 * `expiresAt`. A block's own timestamp is chosen by its miner and is never used.
 *
 * Reorgs: `blockHeight` is the payment's block in Kassa's current chain, and tip records of
 * blocks that left the chain are folded down to the fork point (settlement `advanceCursor`), so a
 * payment first seen after the deadline and re-mined higher than the recorded tip is late; one
 * Kassa saw before the deadline stays on time wherever it is re-mined.
 */
export function sentOnTime(
  p: Pick<PaymentFacts, 'firstSeenAt' | 'status' | 'blockHeight' | 'heightAtDeadline'>,
  expiresAt: Date,
): boolean {
  if (p.firstSeenAt.getTime() <= expiresAt.getTime()) return true;
  const { blockHeight, heightAtDeadline } = p;
  return p.status === 'confirmed' && blockHeight != null && heightAtDeadline != null && blockHeight <= heightAtDeadline;
}

/**
 * THE definition of "counted toward the price", used by the state machine (`evaluate`), the
 * report's amounts received (JSON, CSV, dashboard, `kassa reconcile`) and the ledger's mark
 * postings (`syncMarkPostings`):
 * - a payment that left the chain (`reorged`, `replaced`) or is in an asset the invoice did not
 *   offer (no locked rate) never counts;
 * - on an invoice staff marked `settled`, every other payment counts (staff accepted it);
 * - on an invoice staff marked `invalid`, none counts (the money is owed back to the customer);
 * - otherwise a payment counts when it is on time (`sentOnTime`).
 */
export function countsTowardPrice(
  p: { status: PaymentFacts['status']; offered: boolean; onTime: boolean },
  markedAs: 'settled' | 'invalid' | null,
): boolean {
  if (p.status !== 'pending' && p.status !== 'confirmed') return false;
  if (!p.offered) return false;
  if (markedAs === 'settled') return true;
  if (markedAs === 'invalid') return false;
  return p.onTime;
}

/** What a mark means for counting: the invoice's status when staff marked it, else null. */
export function markedAs(inv: { status: InvoiceStatus; marked: boolean }): 'settled' | 'invalid' | null {
  if (!inv.marked) return null;
  return inv.status === 'settled' ? 'settled' : inv.status === 'invalid' ? 'invalid' : null;
}

export function evaluate(inv: InvoiceFacts, methods: MethodTerms[], payments: PaymentFacts[], now: Date): Evaluation {
  const terms = new Map(methods.map((m) => [m.method, m]));
  let paid = 0n;
  let onTime = 0n;
  let confirmedOnTime = 0n;
  let late = 0n;
  for (const p of payments) {
    if (p.status !== 'pending' && p.status !== 'confirmed') continue;
    const t = terms.get(p.method);
    if (!t) continue;
    const value = currencyValueOf(p.amount, t.decimals, t.rate, inv.currencyDecimals);
    paid += value;
    // The automatic rules judge the payments themselves (a mark freezes the status below).
    if (countsTowardPrice({ status: p.status, offered: true, onTime: sentOnTime(p, inv.expiresAt) }, null)) {
      onTime += value;
      const confs = p.status === 'confirmed' ? p.confirmations : 0;
      if (confs >= t.confirmationsRequired) confirmedOnTime += value;
    } else late += value;
  }
  // Paid in full when at least amount × (1 − tolerance) arrived (rounded up: never less).
  const threshold = (inv.amount * BigInt(10000 - inv.toleranceBps) + 9999n) / 10000n;

  let status = inv.status;
  if (!inv.marked) {
    const full = onTime >= threshold;
    const confirmed = confirmedOnTime >= threshold;
    switch (inv.status) {
      case 'new':
      case 'expired':
        if (full) status = confirmed ? 'settled' : 'processing';
        else if (now >= inv.expiresAt) status = 'expired';
        break;
      case 'processing':
        if (!full) status = 'invalid'; // a counted payment was reorged out or double-spent
        else if (confirmed) status = 'settled';
        else if (now >= inv.monitoringUntil) status = 'invalid'; // failed to confirm in time
        break;
      case 'settled':
        if (!full) status = 'invalid';
        break;
      case 'invalid':
        if (full && now < inv.monitoringUntil) status = confirmed ? 'settled' : 'processing';
        break;
    }
  }

  let exception: InvoiceException | null = null;
  if (inv.marked) exception = 'marked';
  else if (late > 0n && status !== 'settled' && status !== 'processing') exception = 'paid_late';
  else if (paid > inv.amount) exception = 'paid_over';
  else if (paid > 0n && onTime < threshold) exception = 'paid_partial';
  return { status, exception, amountPaid: paid, amountPaidOnTime: onTime, threshold };
}

/** The moves (with their events) from `from` to `to`; reaching `settled` always goes through `processing`. */
export function path(from: InvoiceStatus, to: InvoiceStatus): { from: InvoiceStatus; to: InvoiceStatus; event: string }[] {
  if (from === to) return [];
  if (from !== 'processing' && to === 'settled') {
    return [...path(from, 'processing'), ...path('processing', 'settled')];
  }
  const event = TRANSITIONS[from][to];
  if (!event) throw new Error(`invoice cannot move from ${from} to ${to}`);
  return [{ from, to, event }];
}
