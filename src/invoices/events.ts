/** The outbox: event rows written in the same transaction as the change they describe. */
import type postgres from 'postgres';
import type { Db } from '../db/client.ts';
import { newId } from '../ids.ts';
import type { InvoiceObject } from './present.ts';

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
  /** A payment reached the confirmations its method requires (also a partial one); `data.payment`. */
  'invoice.payment_confirmed',
  /** The invoice's exception became `paid_partial`: money arrived, less than the price. */
  'invoice.paid_partial',
  /** The invoice's exception became `paid_late`: money arrived that is not on time. */
  'invoice.paid_late',
  /** Refunds (docs/refunds.md): `data.object` is the refund. */
  'refund.created',
  'refund.claimed',
  'refund.approved',
  'refund.broadcast',
  'refund.completed',
  /** A reorg took a completed refund's transaction below the confirmations required: it is `broadcast` again. */
  'refund.reorged',
  'refund.failed',
  'refund.cancelled',
  /** Payouts (docs/refunds.md, "Payouts"): `data.object` is the payout; these events have no invoice. */
  'payout.created',
  'payout.approved',
  'payout.broadcast',
  'payout.completed',
  /** A reorg took a completed payout's transaction below the confirmations required: it is `broadcast` again. */
  'payout.reorged',
  'payout.failed',
  'payout.cancelled',
] as const;
export type EventType = (typeof EVENT_TYPES)[number];

/** `data.payment` of the payment events (the API's EventPayment schema). */
export interface EventPaymentObject {
  id: string;
  chain: string;
  txid: string;
  output_index: number;
  method: string;
  status: 'pending' | 'confirmed' | 'reorged' | 'replaced';
  block_height: number | null;
}

/** What an event row's `payload` holds: the invoice as it stood when the event was written, and the payment for payment events. */
export interface EventPayload {
  object: InvoiceObject;
  payment?: EventPaymentObject;
}

export async function writeEvent(
  db: Db,
  e: { merchantId: string; type: EventType; invoiceId: string | null; object: unknown; payment?: unknown },
): Promise<string> {
  const id = newId('evt');
  const data = e.payment === undefined ? { object: e.object } : { object: e.object, payment: e.payment };
  await db`
    insert into events (id, merchant_id, type, invoice_id, api_version, payload)
    values (${id}, ${e.merchantId}, ${e.type}, ${e.invoiceId}, ${API_VERSION}, ${db.json(data as postgres.JSONValue)})`;
  return id;
}

/**
 * Gives every event this transaction wrote for `invoiceId` the invoice as it stands now (call
 * after the last change to the invoice in the transaction), so `data.object` equals what
 * `GET /v1/invoices/:id` returns once the transaction commits. Rows written by the current
 * transaction are those whose xmin is its id.
 */
export async function refreshEventObjects(db: Db, invoiceId: string, object: unknown): Promise<void> {
  await db`
    update events set payload = jsonb_set(payload, '{object}', ${db.json(object as postgres.JSONValue)})
    where invoice_id = ${invoiceId} and xmin = pg_current_xact_id()::xid`;
}
