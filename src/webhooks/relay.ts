/**
 * The outbox relay: moves unrelayed `events` rows into `webhook_deliveries` (one per enabled,
 * subscribed endpoint of the event's merchant) and customer e-mails, marks them relayed in the
 * same transaction, then enqueues the jobs. Then it sweeps: every pending delivery that is due and
 * not held by a worker is enqueued again (the job id dedups when the job still exists), so nothing
 * is lost if Redis restarted or was flushed. Runs as a repeatable job and can be called directly.
 */
import type { Sql } from '../db/client.ts';
import type { Logger } from '../logger.ts';
import type { Queues } from '../queues/index.ts';
import { newId } from '../ids.ts';
import type { EmailService } from '../email/service.ts';
import { enqueueDelivery } from './schedule.ts';

export interface RelayResult {
  events: number;
  deliveries: number;
  emails: number;
  /** Due deliveries (and pending e-mails) enqueued again by the sweep. */
  swept: number;
}

export interface WebhookRelay {
  relayOnce(): Promise<RelayResult>;
}

const BATCH = 200;

interface DeliveryRef {
  id: string;
  attempt_count: number;
  next_attempt_at: Date;
}

export function createWebhookRelay(deps: {
  sql: Sql;
  logger: Logger;
  queues: Pick<Queues, 'webhook-delivery'>;
  emails?: EmailService | undefined;
}): WebhookRelay {
  const { sql } = deps;

  async function relayBatch(): Promise<{ events: number; deliveries: DeliveryRef[]; emails: string[] }> {
    return sql.begin(async (tx) => {
      const events = await tx<{ id: string; merchant_id: string; type: string; invoice_id: string | null; payload: { object: unknown; payment?: unknown } }[]>`
        select id, merchant_id, type, invoice_id, payload from events
        where relayed_at is null order by seq limit ${BATCH} for update skip locked`;
      const deliveries: DeliveryRef[] = [];
      const emails: string[] = [];
      for (const e of events) {
        const endpoints = await tx<{ id: string }[]>`
          select id from webhook_endpoints
          where merchant_id = ${e.merchant_id} and enabled and deleted_at is null
            and (events is null or ${e.type} = any(events))`;
        for (const ep of endpoints) {
          const rows = await tx<DeliveryRef[]>`
            insert into webhook_deliveries (id, event_id, endpoint_id, merchant_id, next_attempt_at)
            values (${newId('del')}, ${e.id}, ${ep.id}, ${e.merchant_id}, now())
            on conflict (event_id, endpoint_id) do nothing
            returning id, attempt_count, next_attempt_at`;
          deliveries.push(...rows);
        }
        if (deps.emails) emails.push(...(await deps.emails.createForEvent(tx, e)));
      }
      if (events.length > 0) await tx`update events set relayed_at = now() where id in ${tx(events.map((e) => e.id))}`;
      return { events: events.length, deliveries, emails };
    });
  }

  async function relayOnce(): Promise<RelayResult> {
    const result: RelayResult = { events: 0, deliveries: 0, emails: 0, swept: 0 };
    for (;;) {
      const b = await relayBatch();
      result.events += b.events;
      result.deliveries += b.deliveries.length;
      result.emails += b.emails.length;
      // A failure here is repaired by the sweep below (now or on the next run): rows are committed.
      for (const d of b.deliveries) await enqueueDelivery(deps.queues, d);
      if (deps.emails) await deps.emails.enqueue(b.emails);
      if (b.events < BATCH) break;
    }
    const due = await sql<DeliveryRef[]>`
      select id, attempt_count, next_attempt_at from webhook_deliveries
      where status = 'pending' and next_attempt_at <= now() and (locked_until is null or locked_until < now())
      order by next_attempt_at limit 1000`;
    for (const d of due) await enqueueDelivery(deps.queues, d);
    result.swept = due.length + (deps.emails ? await deps.emails.sweep() : 0);
    if (result.events > 0) deps.logger.debug({ ...result }, 'outbox relayed');
    return result;
  }

  return { relayOnce };
}
