/**
 * Sends one webhook delivery attempt and records it. Called by the `webhook-delivery` processor.
 *
 * 1. Claim the row (pending, due, not held by another worker) with a lease: duplicate jobs after a
 *    Redis flush or a re-enqueue never send twice at the same time.
 * 2. SSRF check (resolve now, connect to the checked address), sign with the current secret (and
 *    the previous one during a rotation), POST with a timeout.
 * 3. Record the attempt; 2xx → delivered; network error, timeout, 408, 429, 5xx → retry at the
 *    next step of the schedule (Retry-After honoured), or failed after the last one; other
 *    statuses (3xx, 4xx) → failed at once.
 * 4. An endpoint failing for 3 days (no success since) is disabled.
 */
import type { Config } from '../config.ts';
import type { Sql } from '../db/client.ts';
import type { Logger } from '../logger.ts';
import type { Queues } from '../queues/index.ts';
import { decryptSecret } from '../crypto/secretbox.ts';
import { signatureHeaders } from './signing.ts';
import { resolveTarget, systemResolver, SsrfError, type Resolver } from './ssrf.ts';
import { postJson, type HttpAttemptResult } from './http.ts';
import { enqueueDelivery, nextDelayMs, retryAfterMs } from './schedule.ts';
import { eventEnvelope, type EventRow } from './envelope.ts';

export const DISABLE_AFTER_MS = 3 * 24 * 3600_000;

export interface DeliveryOutcome {
  status: 'delivered' | 'pending' | 'failed' | 'skipped';
  statusCode?: number | null;
  error?: string | null;
}

export interface WebhookDeliverer {
  deliver(deliveryId: string): Promise<DeliveryOutcome>;
}

interface ClaimedRow {
  id: string;
  event_id: string;
  endpoint_id: string;
  attempt_count: number;
  series_attempts: number;
  url: string;
  enabled: boolean;
  deleted_at: Date | null;
  secret_box: string;
  previous_secret_box: string | null;
  previous_secret_expires_at: Date | null;
}

/** What a merchant sees (delivery attempts, last_error) when a delivery is refused by the SSRF check. */
export const WEBHOOK_REFUSED_REASON = 'the webhook URL resolves to a private or reserved address, or to none';

export function createWebhookDeliverer(deps: {
  sql: Sql;
  config: Config;
  logger: Logger;
  queues: Pick<Queues, 'webhook-delivery'>;
  resolver?: Resolver;
  /** Milliseconds an endpoint may fail (no success) before it is disabled. Default 3 days. */
  disableAfterMs?: number;
}): WebhookDeliverer {
  const { sql, config } = deps;
  const wh = config.webhooks;
  const resolver = deps.resolver ?? systemResolver;
  const disableAfterMs = deps.disableAfterMs ?? DISABLE_AFTER_MS;
  const leaseMs = wh.timeoutMs + 30_000;

  async function deliver(deliveryId: string): Promise<DeliveryOutcome> {
    const [row] = await sql<ClaimedRow[]>`
      update webhook_deliveries d set locked_until = now() + ${leaseMs + ' milliseconds'}::interval,
        attempt_count = d.attempt_count + 1, series_attempts = d.series_attempts + 1, updated_at = now()
      from webhook_endpoints e
      where d.id = ${deliveryId} and e.id = d.endpoint_id and d.status = 'pending'
        and d.next_attempt_at <= now() + interval '1 second'
        and (d.locked_until is null or d.locked_until < now())
      returning d.id, d.event_id, d.endpoint_id, d.attempt_count, d.series_attempts, e.url, e.enabled, e.deleted_at,
        e.secret_box, e.previous_secret_box, e.previous_secret_expires_at`;
    if (!row) return { status: 'skipped' };
    const log = deps.logger.child({ delivery_id: row.id, event_id: row.event_id, endpoint_id: row.endpoint_id, attempt: row.attempt_count });

    if (!row.enabled || row.deleted_at) {
      await sql`
        update webhook_deliveries set status = 'failed', locked_until = null, next_attempt_at = null,
          attempt_count = attempt_count - 1, series_attempts = series_attempts - 1,
          last_error = ${row.deleted_at ? 'endpoint deleted' : 'endpoint disabled'}, updated_at = now()
        where id = ${row.id}`;
      return { status: 'failed', error: 'endpoint not enabled' };
    }

    const [event] = await sql<EventRow[]>`select id, type, created_at, api_version, payload from events where id = ${row.event_id}`;
    const body = JSON.stringify(eventEnvelope(event!));
    const secrets = [decryptSecret(config.secretKey, row.secret_box, row.endpoint_id)];
    if (row.previous_secret_box && row.previous_secret_expires_at && row.previous_secret_expires_at.getTime() > Date.now()) {
      secrets.push(decryptSecret(config.secretKey, row.previous_secret_box, row.endpoint_id));
    }

    const startedAt = new Date();
    let result: HttpAttemptResult;
    try {
      const url = new URL(row.url);
      const target = await resolveTarget(url, wh.allowedHosts, resolver);
      const headers = signatureHeaders(secrets, event!.id, Math.floor(Date.now() / 1000), body);
      result = await postJson({ url, target, headers, body, timeoutMs: wh.timeoutMs });
    } catch (err) {
      const refused = err instanceof SsrfError;
      // A refusal's detail names what the host resolved to (maybe an internal address): it goes to
      // the operator's log only; the merchant sees the generic reason.
      if (refused) log.warn({ url: row.url, reason: (err as Error).message }, 'webhook target refused');
      result = {
        statusCode: null, headers: {}, snippet: '', timedOut: false, durationMs: Date.now() - startedAt.getTime(),
        error: refused ? `refused: ${WEBHOOK_REFUSED_REASON}` : `${(err as NodeJS.ErrnoException).code ?? 'error'}: ${(err as Error).message}`,
      };
    }

    const code = result.statusCode;
    const ok = code !== null && code >= 200 && code < 300;
    const retryable = !ok && (code === null || code === 408 || code === 429 || code >= 500);
    let error = result.error;
    if (!ok && code !== null) error = code >= 300 && code < 400 ? `redirect (${code}) not followed` : `HTTP ${code}`;

    let delay: number | null = null;
    if (retryable) {
      delay = nextDelayMs(wh.retryDelaysMs, row.series_attempts);
      if (delay !== null && code === 429) {
        const ra = retryAfterMs(result.headers['retry-after']);
        if (ra !== null) delay = Math.max(delay, ra);
      }
    }
    const status: DeliveryOutcome['status'] = ok ? 'delivered' : delay !== null ? 'pending' : 'failed';

    const updated = await sql.begin(async (tx) => {
      await tx`
        insert into webhook_attempts (delivery_id, attempt, started_at, status_code, duration_ms, error, response_snippet)
        values (${row.id}, ${row.attempt_count}, ${startedAt}, ${code}, ${result.durationMs}, ${error}, ${result.snippet || null})
        on conflict (delivery_id, attempt) do nothing`;
      const [d] = await tx<{ id: string; attempt_count: number; next_attempt_at: Date | null }[]>`
        update webhook_deliveries set
          status = ${status}, locked_until = null, last_attempt_at = ${startedAt}, last_status_code = ${code},
          last_error = ${ok ? null : error},
          delivered_at = ${ok ? new Date() : null},
          next_attempt_at = ${status === 'pending' ? tx`now() + ${delay + ' milliseconds'}::interval` : null},
          updated_at = now()
        where id = ${row.id}
        returning id, attempt_count, next_attempt_at`;
      if (ok) {
        await tx`update webhook_endpoints set failing_since = null where id = ${row.endpoint_id} and failing_since is not null`;
      } else {
        const [ep] = await tx<{ failing_since: Date }[]>`
          update webhook_endpoints set failing_since = coalesce(failing_since, ${startedAt})
          where id = ${row.endpoint_id} returning failing_since`;
        if (ep && Date.now() - ep.failing_since.getTime() >= disableAfterMs) {
          const disabled = await tx`
            update webhook_endpoints set enabled = false, disabled_at = now(), updated_at = now(),
              disabled_reason = 'Every delivery failed for 3 days; re-enable the endpoint once it works again.'
            where id = ${row.endpoint_id} and enabled`;
          if (disabled.count > 0) {
            log.warn({ notice: 'endpoint.disabled', failing_since: ep.failing_since.toISOString() }, 'webhook endpoint disabled after failing for 3 days');
          }
        }
      }
      return d!;
    });

    log.info({ status, status_code: code, duration_ms: result.durationMs, error, next_attempt_at: updated.next_attempt_at?.toISOString() ?? null }, 'webhook attempt');
    if (status === 'pending' && updated.next_attempt_at) {
      // If this fails (Redis down) the relay re-enqueues the delivery when it is due.
      await enqueueDelivery(deps.queues, { id: updated.id, attempt_count: updated.attempt_count, next_attempt_at: updated.next_attempt_at }).catch((err) =>
        log.warn({ err: (err as Error).message }, 'could not schedule the next attempt; the relay will'),
      );
    }
    return { status, statusCode: code, error };
  }

  return { deliver };
}
