/** The payout state table (docs/refunds.md, "Payouts"), without a database. */
import { describe, expect, it } from 'vitest';
import { PAYOUT_STATUSES, PAYOUT_TRANSITIONS, canMovePayout } from '../../src/payouts/state-machine.ts';
import { EVENT_TYPES } from '../../src/invoices/events.ts';

describe('payout states', () => {
  it('approved → broadcast → completed (and back on a reorg); cancelled only before broadcast; final states have no way out', () => {
    expect(canMovePayout('awaiting_approval', 'awaiting_signature')).toBe(true);
    expect(canMovePayout('awaiting_approval', 'broadcast')).toBe(false); // never without approval
    expect(canMovePayout('broadcast', 'cancelled')).toBe(false); // money on its way cannot be cancelled
    expect(Object.keys(PAYOUT_TRANSITIONS.completed)).toEqual(['broadcast']);
    for (const s of ['cancelled', 'failed'] as const) expect(Object.keys(PAYOUT_TRANSITIONS[s])).toEqual([]);
    for (const s of PAYOUT_STATUSES) {
      for (const [to, event] of Object.entries(PAYOUT_TRANSITIONS[s])) {
        expect(PAYOUT_STATUSES).toContain(to);
        expect(EVENT_TYPES).toContain(event);
      }
    }
  });
});
