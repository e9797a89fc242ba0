/** The outbox: event rows written in the same transaction as the change they describe. */
import type { Db } from '../db/client.ts';
import { newId } from '../ids.ts';

export const API_VERSION = '2026-11-01';

export const EVENT_TYPES = [
  'invoice.created',
  'invoice.payment_detected',
  'invoice.processing',
  'invoice.settled',
  'invoice.expired',
  'invoice.invalid',
  'invoice.payment_reorged',
  'invoice.marked',
  /** A counted payment failed re-verification against the node (see docs/reconciliation.md). */
  'invoice.payment_mismatch',
] as const;
export type EventType = (typeof EVENT_TYPES)[number];

export async function writeEvent(
  db: Db,
  e: { merchantId: string; type: EventType; invoiceId: string; object: unknown; payment?: unknown },
): Promise<string> {
  const id = newId('evt');
  const data = e.payment === undefined ? { object: e.object } : { object: e.object, payment: e.payment };
  await db`
    insert into events (id, merchant_id, type, invoice_id, api_version, payload)
    values (${id}, ${e.merchantId}, ${e.type}, ${e.invoiceId}, ${API_VERSION}, ${db.json(data as never)})`;
  return id;
}
