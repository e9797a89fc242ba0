/** The event as sent to webhooks and shown by the API: one function so the shape never drifts. */
import type { EventPayload, EventType } from '../invoices/events.ts';

export interface EventRow {
  id: string;
  type: EventType;
  created_at: Date;
  api_version: string;
  payload: EventPayload;
}

export function eventEnvelope(e: EventRow) {
  const data: EventPayload = { object: e.payload.object };
  if (e.payload.payment !== undefined) data.payment = e.payload.payment;
  return { id: e.id, type: e.type, created_at: e.created_at.toISOString(), api_version: e.api_version, data };
}
