/**
 * The refund state machine as data (docs/refunds.md, rule 6), like the invoice's
 * (src/settlement/state-machine.ts): allowed moves are a table, and `moveRefund` persists one move
 * guarded in SQL (`update … where status = $from`), so a repeated or concurrent move changes
 * nothing the second time.
 */
import type { Db } from '../db/client.ts';
import { conflict } from '../errors.ts';
import type { EventType } from '../invoices/events.ts';

/** The refund events (docs/webhooks.md). */
export type RefundEventType = Extract<EventType, `refund.${string}`>;

export const REFUND_STATUSES = [
  'awaiting_destination', 'awaiting_approval', 'awaiting_signature', 'broadcast', 'completed', 'cancelled', 'failed',
] as const;
export type RefundStatus = (typeof REFUND_STATUSES)[number];

/** Allowed moves, and the event each one stands for. */
export const REFUND_TRANSITIONS: Record<RefundStatus, Partial<Record<RefundStatus, RefundEventType>>> = {
  awaiting_destination: { awaiting_approval: 'refund.claimed', cancelled: 'refund.cancelled' },
  awaiting_approval: { awaiting_signature: 'refund.approved', cancelled: 'refund.cancelled' },
  awaiting_signature: { broadcast: 'refund.broadcast', cancelled: 'refund.cancelled' },
  broadcast: { completed: 'refund.completed', failed: 'refund.failed' },
  // A reorg took the refund's transaction below the invoice's confirmation policy again.
  completed: { broadcast: 'refund.reorged' },
  cancelled: {},
  failed: {},
};

/** Statuses whose amount counts against what the invoice received (everything but cancelled/failed). */
export const RESERVING_STATUSES: readonly RefundStatus[] = REFUND_STATUSES.filter((s) => s !== 'cancelled' && s !== 'failed');

export function canMove(from: RefundStatus, to: RefundStatus): boolean {
  return REFUND_TRANSITIONS[from][to] !== undefined;
}

/** 409 `refund_state_invalid` unless `from → to` is in the table. */
export function assertMove(id: string, from: RefundStatus, to: RefundStatus): void {
  if (!canMove(from, to)) {
    const allowed = Object.keys(REFUND_TRANSITIONS[from]);
    throw conflict('refund_state_invalid', `Refund ${id} is ${from}; it cannot become ${to}${allowed.length ? ` (from ${from} it can become ${allowed.join(' or ')})` : ` (${from} is final)`}.`);
  }
}

/**
 * Moves a refund `from → to` with the extra column values `set`, guarded by `where status = from`.
 * Returns false when the refund was no longer in `from` (someone else moved it first).
 */
export async function moveRefund(db: Db, id: string, from: RefundStatus, to: RefundStatus, set: Record<string, unknown> = {}): Promise<boolean> {
  assertMove(id, from, to);
  return guardedMove(db, 'refunds', id, from, to, set);
}

/**
 * The guarded update of one row's status (refunds and payouts): `update <table> set status = to,
 * …set where id = $id and status = $from`. Returns false when the row was no longer in `from`.
 */
export async function guardedMove(db: Db, table: 'refunds' | 'payouts', id: string, from: string, to: string, set: Record<string, unknown>): Promise<boolean> {
  const values: Record<string, unknown> = Object.fromEntries(
    Object.entries({ ...set, status: to, updated_at: new Date() }).map(([k, v]): [string, unknown] => [k, typeof v === 'bigint' ? String(v) : v]),
  );
  const rows = await db`update ${db(table)} set ${db(values, ...Object.keys(values))} where id = ${id} and status = ${from} returning id`;
  return rows.length === 1;
}
