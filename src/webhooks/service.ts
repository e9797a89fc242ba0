/**
 * Webhook endpoints (create, list, get, update, delete, rotate secret) and the event log (list,
 * get with deliveries and attempts, redeliver). Every read and write is scoped to a merchant.
 * Signing secrets are stored encrypted (AES-256-GCM, context = endpoint id) and returned only by
 * create and rotate.
 */
import type { Config } from '../config.ts';
import type { Sql } from '../db/client.ts';
import type { Logger } from '../logger.ts';
import type { Queues } from '../queues/index.ts';
import type { Page } from '../api/pagination.ts';
import { newId } from '../ids.ts';
import { encryptSecret } from '../crypto/secretbox.ts';
import { invalidParam, notFound } from '../errors.ts';
import { EVENT_TYPES, type EventType } from '../invoices/events.ts';
import { generateSecret } from './signing.ts';
import { checkUrlHost } from './ssrf.ts';
import { enqueueDelivery } from './schedule.ts';
import { eventEnvelope, type EventRow } from './envelope.ts';

/** How long the previous secret keeps being used (both signatures sent) after a rotation. */
export const ROTATION_OVERLAP_MS = 24 * 3600_000;

export interface EndpointRow {
  id: string;
  seq: bigint;
  merchant_id: string;
  url: string;
  description: string | null;
  events: string[] | null;
  enabled: boolean;
  previous_secret_expires_at: Date | null;
  disabled_reason: string | null;
  disabled_at: Date | null;
  created_at: Date;
  updated_at: Date;
}

export function endpointToApi(e: EndpointRow) {
  const rotating = e.previous_secret_expires_at && e.previous_secret_expires_at.getTime() > Date.now();
  return {
    id: e.id,
    object: 'webhook_endpoint' as const,
    url: e.url,
    description: e.description,
    events: (e.events ?? ['*']) as (EventType | '*')[],
    enabled: e.enabled,
    disabled_reason: e.disabled_reason,
    disabled_at: e.disabled_at?.toISOString() ?? null,
    previous_secret_expires_at: rotating ? e.previous_secret_expires_at!.toISOString() : null,
    created_at: e.created_at.toISOString(),
    updated_at: e.updated_at.toISOString(),
  };
}
export type WebhookEndpointObject = ReturnType<typeof endpointToApi>;

export type DeliveryStatus = 'pending' | 'delivered' | 'failed';

export interface EndpointInput {
  url?: string | undefined;
  events?: string[] | undefined;
  enabled?: boolean | undefined;
  description?: string | null | undefined;
}

const ENDPOINT_COLUMNS = (sql: Sql) => sql`
  id, seq, merchant_id, url, description, events, enabled, previous_secret_expires_at, disabled_reason, disabled_at, created_at, updated_at`;

interface EventListRow extends EventRow {
  seq: bigint;
  delivery_status: DeliveryStatus | null;
}

export function createWebhookService(deps: { sql: Sql; config: Config; logger: Logger; queues: Pick<Queues, 'webhook-delivery'> }) {
  const { sql, config } = deps;
  const wh = config.webhooks;

  function checkUrl(raw: string): string {
    let url: URL;
    try {
      url = new URL(raw);
    } catch {
      throw invalidParam('url', 'url must be an absolute URL.');
    }
    if (url.protocol !== 'https:' && !(url.protocol === 'http:' && wh.allowHttp)) {
      throw invalidParam('url', wh.allowHttp ? 'url must use http or https.' : 'url must use https.', 'url_insecure');
    }
    if (url.username || url.password) throw invalidParam('url', 'url must not contain credentials.');
    if (url.hash) throw invalidParam('url', 'url must not contain a fragment.');
    try {
      checkUrlHost(url, wh.allowedHosts);
    } catch (err) {
      throw invalidParam('url', (err as Error).message, 'url_not_allowed');
    }
    return url.toString();
  }

  function checkEvents(events: string[] | undefined): string[] | null {
    if (events === undefined) return null;
    if (events.length === 1 && events[0] === '*') return null;
    const bad = events.find((e) => !(EVENT_TYPES as readonly string[]).includes(e));
    if (bad !== undefined) throw invalidParam('events', `Unknown event type "${bad}". Use ${EVENT_TYPES.join(', ')} or "*".`);
    if (events.length === 0) throw invalidParam('events', 'events must list at least one event type (or "*").');
    return [...new Set(events)];
  }

  async function getRow(merchantId: string, id: string): Promise<EndpointRow> {
    const [row] = await sql<EndpointRow[]>`
      select ${ENDPOINT_COLUMNS(sql)} from webhook_endpoints where id = ${id} and merchant_id = ${merchantId} and deleted_at is null`;
    if (!row) throw notFound('webhook endpoint', id, 'id');
    return row;
  }

  async function eventRow(merchantId: string, id: string): Promise<EventListRow> {
    const [row] = await sql<EventListRow[]>`
      select e.id, e.seq, e.type, e.created_at, e.api_version, e.payload, ${deliveryStatusExpr()} as delivery_status
      from events e where e.id = ${id} and e.merchant_id = ${merchantId}`;
    if (!row) throw notFound('event', id, 'id');
    return row;
  }

  /** pending if any delivery is pending; failed if any failed (none pending); delivered if all delivered; null without deliveries. */
  function deliveryStatusExpr() {
    return sql`(select case
        when count(*) = 0 then null
        when bool_or(d.status = 'pending') then 'pending'
        when bool_or(d.status = 'failed') then 'failed'
        else 'delivered' end
      from webhook_deliveries d where d.event_id = e.id)`;
  }

  function eventToApi(e: EventListRow) {
    return { ...eventEnvelope(e), object: 'event' as const, delivery_status: e.delivery_status };
  }

  async function eventDetail(merchantId: string, id: string) {
    const e = await eventRow(merchantId, id);
    const deliveries = await sql<{
      id: string; endpoint_id: string; url: string; status: DeliveryStatus; attempt_count: number; next_attempt_at: Date | null;
      last_status_code: number | null; last_error: string | null; delivered_at: Date | null; created_at: Date;
    }[]>`
      select d.id, d.endpoint_id, w.url, d.status, d.attempt_count, d.next_attempt_at, d.last_status_code, d.last_error, d.delivered_at, d.created_at
      from webhook_deliveries d join webhook_endpoints w on w.id = d.endpoint_id
      where d.event_id = ${e.id} and d.merchant_id = ${merchantId} order by d.created_at, d.id`;
    const attempts = deliveries.length
      ? await sql<{ delivery_id: string; attempt: number; started_at: Date; status_code: number | null; duration_ms: number; error: string | null; response_snippet: string | null }[]>`
          select delivery_id, attempt, started_at, status_code, duration_ms, error, response_snippet
          from webhook_attempts where delivery_id in ${sql(deliveries.map((d) => d.id))} order by attempt`
      : [];
    return {
      ...eventToApi(e),
      deliveries: deliveries.map((d) => ({
        id: d.id,
        object: 'webhook_delivery' as const,
        endpoint_id: d.endpoint_id,
        url: d.url,
        status: d.status,
        attempt_count: d.attempt_count,
        next_attempt_at: d.status === 'pending' ? d.next_attempt_at?.toISOString() ?? null : null,
        last_status_code: d.last_status_code,
        last_error: d.last_error,
        delivered_at: d.delivered_at?.toISOString() ?? null,
        created_at: d.created_at.toISOString(),
        attempts: attempts
          .filter((a) => a.delivery_id === d.id)
          .map((a) => ({
            attempt: a.attempt, started_at: a.started_at.toISOString(), status_code: a.status_code, duration_ms: a.duration_ms,
            error: a.error, response_snippet: a.response_snippet,
          })),
      })),
    };
  }

  return {
    async createEndpoint(merchantId: string, input: EndpointInput & { url: string }): Promise<{ endpoint: WebhookEndpointObject; secret: string }> {
      const url = checkUrl(input.url);
      const events = checkEvents(input.events);
      const id = newId('we');
      const secret = generateSecret();
      const [row] = await sql<EndpointRow[]>`
        insert into webhook_endpoints (id, merchant_id, url, description, events, enabled, secret_box)
        values (${id}, ${merchantId}, ${url}, ${input.description ?? null}, ${events}, ${input.enabled ?? true},
                ${encryptSecret(config.secretKey, secret, id)})
        returning ${ENDPOINT_COLUMNS(sql)}`;
      deps.logger.info({ merchant_id: merchantId, endpoint_id: id }, 'webhook endpoint created');
      return { endpoint: endpointToApi(row!), secret };
    },

    async listEndpoints(merchantId: string, page: Page) {
      const rows = await sql<EndpointRow[]>`
        select ${ENDPOINT_COLUMNS(sql)} from webhook_endpoints
        where merchant_id = ${merchantId} and deleted_at is null
          ${page.afterSeq !== undefined ? sql`and seq < ${page.afterSeq}` : sql``}
          ${page.beforeSeq !== undefined ? sql`and seq > ${page.beforeSeq}` : sql``}
        order by seq ${page.beforeSeq !== undefined ? sql`asc` : sql`desc`}
        limit ${page.limit + 1}`;
      const data = rows.slice(0, page.limit).map(endpointToApi);
      if (page.beforeSeq !== undefined) data.reverse();
      return { data, hasMore: rows.length > page.limit };
    },

    async endpointSeq(merchantId: string, id: string): Promise<bigint | undefined> {
      const [r] = await sql<{ seq: bigint }[]>`select seq from webhook_endpoints where id = ${id} and merchant_id = ${merchantId} and deleted_at is null`;
      return r?.seq;
    },

    async getEndpoint(merchantId: string, id: string): Promise<WebhookEndpointObject> {
      return endpointToApi(await getRow(merchantId, id));
    },

    async updateEndpoint(merchantId: string, id: string, input: EndpointInput): Promise<WebhookEndpointObject> {
      const current = await getRow(merchantId, id);
      const url = input.url !== undefined ? checkUrl(input.url) : current.url;
      const events = input.events !== undefined ? checkEvents(input.events) : current.events;
      const enabled = input.enabled ?? current.enabled;
      const reenabled = enabled && !current.enabled;
      const [row] = await sql<EndpointRow[]>`
        update webhook_endpoints set url = ${url}, events = ${events}, enabled = ${enabled},
          description = ${input.description !== undefined ? input.description : current.description},
          disabled_reason = ${reenabled ? null : current.disabled_reason}, disabled_at = ${reenabled ? null : current.disabled_at},
          failing_since = ${reenabled ? null : sql`failing_since`}, updated_at = now()
        where id = ${id} and merchant_id = ${merchantId} and deleted_at is null
        returning ${ENDPOINT_COLUMNS(sql)}`;
      if (!row) throw notFound('webhook endpoint', id, 'id');
      return endpointToApi(row);
    },

    /** Deletes the endpoint; its pending deliveries are abandoned (history is kept for the event log). */
    async deleteEndpoint(merchantId: string, id: string): Promise<WebhookEndpointObject & { deleted: true }> {
      const row = await sql.begin(async (tx) => {
        const [r] = await tx<EndpointRow[]>`
          update webhook_endpoints set deleted_at = now(), enabled = false, updated_at = now()
          where id = ${id} and merchant_id = ${merchantId} and deleted_at is null
          returning ${ENDPOINT_COLUMNS(sql)}`;
        if (!r) throw notFound('webhook endpoint', id, 'id');
        await tx`
          update webhook_deliveries set status = 'failed', next_attempt_at = null, last_error = 'endpoint deleted', updated_at = now()
          where endpoint_id = ${id} and status = 'pending'`;
        return r;
      });
      deps.logger.info({ merchant_id: merchantId, endpoint_id: id }, 'webhook endpoint deleted');
      return { ...endpointToApi(row), deleted: true as const };
    },

    /** New secret (returned once); the old one is still used, alongside, for 24 h. */
    async rotateSecret(merchantId: string, id: string): Promise<{ endpoint: WebhookEndpointObject; secret: string }> {
      const secret = generateSecret();
      const [row] = await sql<EndpointRow[]>`
        update webhook_endpoints set
          previous_secret_box = secret_box,
          previous_secret_expires_at = now() + ${ROTATION_OVERLAP_MS + ' milliseconds'}::interval,
          secret_box = ${encryptSecret(config.secretKey, secret, id)}, updated_at = now()
        where id = ${id} and merchant_id = ${merchantId} and deleted_at is null
        returning ${ENDPOINT_COLUMNS(sql)}`;
      if (!row) throw notFound('webhook endpoint', id, 'id');
      deps.logger.info({ merchant_id: merchantId, endpoint_id: id }, 'webhook secret rotated');
      return { endpoint: endpointToApi(row), secret };
    },

    async listEvents(merchantId: string, filters: { type?: string | undefined; deliveryStatus?: DeliveryStatus | undefined }, page: Page) {
      const rows = await sql<EventListRow[]>`
        select * from (
          select e.id, e.seq, e.type, e.created_at, e.api_version, e.payload, ${deliveryStatusExpr()} as delivery_status
          from events e
          where e.merchant_id = ${merchantId}
            ${filters.type ? sql`and e.type = ${filters.type}` : sql``}
            ${page.afterSeq !== undefined ? sql`and e.seq < ${page.afterSeq}` : sql``}
            ${page.beforeSeq !== undefined ? sql`and e.seq > ${page.beforeSeq}` : sql``}
        ) x
        where true ${filters.deliveryStatus ? sql`and x.delivery_status = ${filters.deliveryStatus}` : sql``}
        order by seq ${page.beforeSeq !== undefined ? sql`asc` : sql`desc`}
        limit ${page.limit + 1}`;
      const data = rows.slice(0, page.limit).map(eventToApi);
      if (page.beforeSeq !== undefined) data.reverse();
      return { data, hasMore: rows.length > page.limit };
    },

    async eventSeq(merchantId: string, id: string): Promise<bigint | undefined> {
      const [r] = await sql<{ seq: bigint }[]>`select seq from events where id = ${id} and merchant_id = ${merchantId}`;
      return r?.seq;
    },

    getEvent: eventDetail,

    /**
     * Delivers the event again, now, to every enabled endpoint subscribed to its type: creates
     * missing deliveries and resets existing ones (also delivered or failed) to pending with a
     * fresh retry series.
     */
    async redeliver(merchantId: string, id: string) {
      const e = await eventRow(merchantId, id);
      const rows = await sql<{ id: string; attempt_count: number; next_attempt_at: Date }[]>`
        insert into webhook_deliveries (id, event_id, endpoint_id, merchant_id, next_attempt_at)
        select ${sql`'del_' || substr(md5(random()::text || w.id), 1, 22)`}, ${e.id}, w.id, ${merchantId}, now()
        from webhook_endpoints w
        where w.merchant_id = ${merchantId} and w.enabled and w.deleted_at is null
          and (w.events is null or ${e.type} = any(w.events))
        on conflict (event_id, endpoint_id) do update set
          status = 'pending', next_attempt_at = now(), series_attempts = 0, locked_until = null, updated_at = now()
        returning id, attempt_count, next_attempt_at`;
      for (const d of rows) await enqueueDelivery(deps.queues, d);
      deps.logger.info({ merchant_id: merchantId, event_id: id, deliveries: rows.length }, 'event redelivery requested');
      return eventDetail(merchantId, id);
    },

    /** Event type list (for docs/validation). */
    eventTypes: EVENT_TYPES as readonly EventType[],
  };
}

export type WebhookService = ReturnType<typeof createWebhookService>;
