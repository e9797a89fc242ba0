/** Retry schedule and job scheduling for webhook deliveries. The database row is the truth. */
import type { Queues } from '../queues/index.ts';

/**
 * Delay before the next attempt after `seriesAttempts` failed attempts in the current series, or
 * null when that was the last one. ±10 % jitter so many deliveries failing together do not retry
 * in lockstep.
 */
export function nextDelayMs(delays: readonly number[], seriesAttempts: number, random = Math.random): number | null {
  if (seriesAttempts < 1 || seriesAttempts > delays.length) return null;
  const base = delays[seriesAttempts - 1]!;
  return Math.max(0, Math.round(base * (0.9 + random() * 0.2)));
}

/** Parses Retry-After (seconds or an HTTP date) into milliseconds from now; capped at 24 h. */
export function retryAfterMs(value: string | string[] | undefined, now = Date.now()): number | null {
  const v = Array.isArray(value) ? value[0] : value;
  if (!v) return null;
  let ms: number;
  if (/^\d+$/.test(v.trim())) ms = Number(v.trim()) * 1000;
  else {
    const t = Date.parse(v);
    if (Number.isNaN(t)) return null;
    ms = t - now;
  }
  return Math.min(Math.max(ms, 0), 24 * 3600_000);
}

/**
 * Enqueues (or re-enqueues) the BullMQ job that wakes a worker for a delivery's next attempt. The
 * job id is derived from the row (delivery id, attempt count, due time), so enqueueing the same
 * scheduled attempt twice is a no-op while the job exists, and a lost job is simply re-created.
 */
export async function enqueueDelivery(
  queues: Pick<Queues, 'webhook-delivery'>,
  d: { id: string; attempt_count: number; next_attempt_at: Date },
): Promise<void> {
  const due = d.next_attempt_at.getTime();
  await queues['webhook-delivery'].add(
    'deliver',
    { deliveryId: d.id },
    { jobId: `${d.id}-${d.attempt_count}-${due}`, delay: Math.max(0, due - Date.now()), removeOnComplete: true, removeOnFail: true },
  );
}
