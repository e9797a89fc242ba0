/**
 * The outbox moved to src/invoices/events.ts (settlement imports invoices, never the reverse:
 * docs/architecture.md §3). This re-export stays only for src/settlement/reverify.ts, which the
 * chain-sync engine work is rewriting; delete it once nothing imports it.
 */
export { writeEvent } from '../invoices/events.ts';
