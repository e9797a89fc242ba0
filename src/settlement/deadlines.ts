/**
 * Deadlines: invoices whose expiry or monitoring window has passed are recomputed (docs/architecture.md §6:
 * enforced by a repeatable job and re-checked at read time). The scan enqueues one settlement job
 * per due invoice; the settlement processor recomputes it in its own transaction.
 */
import type { Sql } from '../db/client.ts';
import type { Queues } from '../queues/index.ts';
import type { SettlementService } from './service.ts';

/** Ids of invoices whose deadline has passed but whose state does not show it yet. */
export async function dueInvoices(sql: Sql, limit = 1000): Promise<string[]> {
  const rows = await sql<{ id: string }[]>`
    (select id from invoices where status = 'new' and expires_at <= now() order by expires_at limit ${limit})
    union all
    (select id from invoices where status = 'processing' and monitoring_until <= now() order by monitoring_until limit ${limit})`;
  return rows.map((r) => r.id);
}

export async function enqueueDueInvoices(sql: Sql, queues: Pick<Queues, 'settlement'>): Promise<number> {
  const ids = await dueInvoices(sql);
  if (ids.length === 0) return 0;
  // The job id de-duplicates while a recompute for that invoice is still queued.
  await queues.settlement.addBulk(ids.map((invoiceId) => ({ name: 'deadline', data: { invoiceId }, opts: { jobId: `deadline-${invoiceId}` } })));
  return ids.length;
}

/** The settlement job: recompute one invoice, then publish the change for live status. */
export async function recomputeInvoice(sql: Sql, settlement: SettlementService, invoiceId: string): Promise<boolean> {
  const changed = await sql.begin((tx) => settlement.recompute(tx, [invoiceId]));
  await settlement.publishChanges(changed);
  return changed.size > 0;
}
