/**
 * The invoice state machine as data (DESIGN.md §6) and the pure function that decides where an
 * invoice should be, given its payments. Persisting a move is guarded in SQL
 * (`update … where status = $from`), so a repeated or concurrent recompute is a no-op.
 */
import { currencyValueOf } from '../money/rate.ts';

export type InvoiceStatus = 'new' | 'processing' | 'settled' | 'expired' | 'invalid';
export type InvoiceException = 'paid_partial' | 'paid_over' | 'paid_late' | 'marked' | null;

/** Allowed moves, and the event each one emits. */
export const TRANSITIONS: Record<InvoiceStatus, Partial<Record<InvoiceStatus, string>>> = {
  new: { processing: 'invoice.processing', expired: 'invoice.expired', invalid: 'invoice.invalid' },
  processing: { settled: 'invoice.settled', invalid: 'invoice.invalid' },
  // An invoice whose payment is found late by a watcher that was down, but was sent before
  // expiry (its block time proves it), is paid after all.
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
  blockTime: Date | null;
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
  exception: InvoiceException;
  /** Value of all live (not reorged/replaced) payments in the invoice currency. */
  amountPaid: bigint;
  /** The on-time part of amountPaid. */
  amountPaidOnTime: bigint;
  threshold: bigint;
}

/** When the money was sent: the earliest of when Kassa first saw it and its block's time. */
export function sentAt(p: Pick<PaymentFacts, 'firstSeenAt' | 'blockTime'>): Date {
  return p.blockTime && p.blockTime < p.firstSeenAt ? p.blockTime : p.firstSeenAt;
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
    if (sentAt(p) <= inv.expiresAt) {
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

  let exception: InvoiceException = null;
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
