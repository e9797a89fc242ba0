/**
 * Webhook and customer e-mail processors for `kassa worker`:
 * - `outbox-relay` (repeatable, every `relayEveryMs`): events → deliveries + e-mails, and the sweep
 *   that re-enqueues due deliveries / pending e-mails a restarted or flushed Redis lost.
 * - `webhook-delivery` (concurrency 20): one attempt per job; the schedule lives in the database.
 * - `email` (concurrency 5, BullMQ retries from src/queues/index.ts).
 * The repeatable relay job is re-declared every `watchdogMs` so it comes back after a Redis flush.
 */
import type { Deps } from '../src/deps.ts';
import type { ProcessorSpec } from '../src/queues/runner.ts';
import { QUEUE_NAMES, defaultJobOptions } from '../src/queues/index.ts';
import { createWebhookPipeline, type WebhookPipeline } from '../src/webhooks/index.ts';
import type { Resolver } from '../src/webhooks/ssrf.ts';
import type { EmailSender } from '../src/email/sender.ts';
import { instrumentDeliverer } from '../src/metrics/instrument.ts';

export const RELAY_SCHEDULER_ID = 'outbox-relay';

export interface WebhookWorkerOptions {
  /** How often the relay runs. Default 1000 ms. */
  relayEveryMs?: number;
  /** How often the repeatable job is re-declared (Redis flush recovery). Default 30 s. */
  watchdogMs?: number;
  deliveryConcurrency?: number;
  resolver?: Resolver;
  sender?: EmailSender | null;
  disableAfterMs?: number;
}

export interface WebhookWorkers {
  pipeline: WebhookPipeline;
  processors: ProcessorSpec<any>[];
  start(): Promise<void>;
  stop(): Promise<void>;
}

export function buildWebhookProcessors(deps: Deps, opts: WebhookWorkerOptions = {}): WebhookWorkers {
  const pipeline = createWebhookPipeline(deps, {
    ...(opts.resolver ? { resolver: opts.resolver } : {}),
    ...(opts.sender !== undefined ? { sender: opts.sender } : {}),
    ...(opts.disableAfterMs !== undefined ? { disableAfterMs: opts.disableAfterMs } : {}),
  });
  // Delivery outcomes and latency are counted for /metrics.
  const deliverer = instrumentDeliverer(deps.metrics, pipeline.deliverer);
  const relayEveryMs = opts.relayEveryMs ?? 1000;
  const watchdogMs = opts.watchdogMs ?? 30_000;
  let timer: NodeJS.Timeout | undefined;

  const relaySpec: ProcessorSpec<typeof QUEUE_NAMES.outboxRelay> = {
    queue: QUEUE_NAMES.outboxRelay,
    concurrency: 1,
    process: async () => pipeline.relay.relayOnce(),
    timeoutMs: 2 * 60_000,
  };
  const deliverySpec: ProcessorSpec<typeof QUEUE_NAMES.webhookDelivery> = {
    queue: QUEUE_NAMES.webhookDelivery,
    concurrency: Math.max(10, opts.deliveryConcurrency ?? 20),
    process: async (payload) => deliverer.deliver(payload.deliveryId),
    // One HTTP attempt plus its bookkeeping; a stuck job is failed (and removed), and the relay
    // re-creates it from the delivery row.
    timeoutMs: 2 * 60_000,
  };
  const emailSpec: ProcessorSpec<typeof QUEUE_NAMES.email> = {
    queue: QUEUE_NAMES.email,
    concurrency: 5,
    process: async (payload, job) => {
      const attempts = job.opts.attempts ?? defaultJobOptions[QUEUE_NAMES.email].attempts ?? 1;
      return pipeline.emails.send(payload.emailId, { final: job.attemptsMade + 1 >= attempts });
    },
  };

  async function declare(): Promise<void> {
    await deps.queues[QUEUE_NAMES.outboxRelay].upsertJobScheduler(RELAY_SCHEDULER_ID, { every: relayEveryMs }, { name: 'relay', data: {} });
  }

  return {
    pipeline,
    processors: [relaySpec, deliverySpec, emailSpec],
    async start() {
      await declare();
      await pipeline.relay.relayOnce().catch((err) => deps.logger.warn({ err: (err as Error).message }, 'initial outbox relay failed'));
      timer = setInterval(() => {
        declare().catch((err) => deps.logger.warn({ err: (err as Error).message }, 'could not declare the outbox relay job'));
      }, watchdogMs);
      timer.unref();
    },
    async stop() {
      if (timer) clearInterval(timer);
      timer = undefined;
      pipeline.sender?.close();
    },
  };
}
