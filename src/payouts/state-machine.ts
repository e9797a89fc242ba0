/**
 * The payout state machine as data (docs/refunds.md, "Payouts"), like the refund's
 * (src/refunds/state-machine.ts): allowed moves are a table, and `movePayout` persists one move
 * guarded in SQL (`update … where status = $from`), so a repeated or concurrent move changes
 * nothing the second time.
 */
import type { Db } from '../db/client.ts';
import { conflict } from '../errors.ts';
import type { EventType } from '../invoices/events.ts';
import { guardedMove } from '../refunds/state-machine.ts';

export const PAYOUT_STATUSES = ['awaiting_approval', 'awaiting_signature', 'broadcast', 'completed', 'cancelled', 'failed'] as const;
export type PayoutStatus = (typeof PAYOUT_STATUSES)[number];

/** The payout events (docs/webhooks.md). */
export type PayoutEventType = Extract<EventType, `payout.${string}`>;

/** Allowed moves, and the event each one stands for. */
export const PAYOUT_TRANSITIONS: Record<PayoutStatus, Partial<Record<PayoutStatus, PayoutEventType>>> = {
  awaiting_approval: { awaiting_signature: 'payout.approved', cancelled: 'payout.cancelled' },
  awaiting_signature: { broadcast: 'payout.broadcast', cancelled: 'payout.cancelled' },
  broadcast: { completed: 'payout.completed', failed: 'payout.failed' },
  // A reorg took the payout's transaction below the confirmations required.
  completed: { broadcast: 'payout.reorged' },
  cancelled: {},
  failed: {},
};

export function canMovePayout(from: PayoutStatus, to: PayoutStatus): boolean {
  return PAYOUT_TRANSITIONS[from][to] !== undefined;
}

/** Moves a payout `from → to` (409 `payout_state_invalid` unless the table allows it); false when it was no longer in `from`. */
export async function movePayout(db: Db, id: string, from: PayoutStatus, to: PayoutStatus, set: Record<string, unknown> = {}): Promise<boolean> {
  if (!canMovePayout(from, to)) {
    const allowed = Object.keys(PAYOUT_TRANSITIONS[from]);
    throw conflict('payout_state_invalid', `Payout ${id} is ${from}; it cannot become ${to}${allowed.length ? ` (from ${from} it can become ${allowed.join(' or ')})` : ` (${from} is final)`}.`);
  }
  return guardedMove(db, 'payouts', id, from, to, set);
}
