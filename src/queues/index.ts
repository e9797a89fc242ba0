/**
 * The one module with queue names, payload schemas and default job options (docs/architecture.md §8.5).
 * Payloads carry ids, never amounts: processors re-read the database.
 * The Redis key prefix uses Redis Cluster hash-tag form (`{kassa}`) so every key of a queue lands
 * in one slot and BullMQ's multi-key scripts work on a cluster.
 */
import { Queue, type JobsOptions, type ConnectionOptions } from 'bullmq';
import { z } from 'zod';

export const QUEUE_NAMES = {
  settlement: 'settlement',
  maintenance: 'maintenance',
  outboxRelay: 'outbox-relay',
  webhookDelivery: 'webhook-delivery',
  email: 'email',
  reverify: 'reverify',
  sweep: 'sweep',
} as const;
export type QueueName = (typeof QUEUE_NAMES)[keyof typeof QUEUE_NAMES];

export const payloadSchemas = {
  [QUEUE_NAMES.settlement]: z.strictObject({ invoiceId: z.string() }),
  [QUEUE_NAMES.maintenance]: z.strictObject({}),
  [QUEUE_NAMES.outboxRelay]: z.strictObject({}),
  [QUEUE_NAMES.webhookDelivery]: z.strictObject({ deliveryId: z.string() }),
  [QUEUE_NAMES.email]: z.strictObject({ emailId: z.string() }),
  [QUEUE_NAMES.reverify]: z.strictObject({ chain: z.string().optional() }),
  [QUEUE_NAMES.sweep]: z.strictObject({ invoiceId: z.string(), chain: z.string() }),
} satisfies Record<QueueName, z.ZodType>;

export type Payload<N extends QueueName> = z.infer<(typeof payloadSchemas)[N]>;

export const defaultJobOptions: Record<QueueName, JobsOptions> = {
  [QUEUE_NAMES.settlement]: { removeOnComplete: true, removeOnFail: 1000, attempts: 10, backoff: { type: 'exponential', delay: 500 } },
  [QUEUE_NAMES.maintenance]: { removeOnComplete: true, removeOnFail: 100, attempts: 1 },
  [QUEUE_NAMES.outboxRelay]: { removeOnComplete: true, removeOnFail: 100, attempts: 1 },
  [QUEUE_NAMES.webhookDelivery]: { removeOnComplete: 1000, removeOnFail: 1000, attempts: 1 },
  [QUEUE_NAMES.email]: { removeOnComplete: 1000, removeOnFail: 1000, attempts: 8, backoff: { type: 'exponential', delay: 10_000 } },
  [QUEUE_NAMES.reverify]: { removeOnComplete: true, removeOnFail: 100, attempts: 1 },
  [QUEUE_NAMES.sweep]: { removeOnComplete: 1000, removeOnFail: 1000, attempts: 10, backoff: { type: 'exponential', delay: 15_000 } },
};

export type Queues = { [N in QueueName]: Queue<Payload<N>> } & { close(): Promise<void> };

export function createQueues(connection: ConnectionOptions, prefix: string): Queues {
  const queues = {} as Record<QueueName, Queue>;
  for (const name of Object.values(QUEUE_NAMES)) {
    queues[name] = new Queue(name, { connection, prefix, defaultJobOptions: defaultJobOptions[name] });
  }
  return Object.assign(queues, {
    async close() {
      await Promise.all(Object.values(QUEUE_NAMES).map((n) => queues[n].close()));
    },
  }) as unknown as Queues;
}

/** Validates a payload against its queue schema; throws a non-retryable error when it is wrong. */
export function parsePayload<N extends QueueName>(name: N, data: unknown): Payload<N> {
  return payloadSchemas[name].parse(data) as Payload<N>;
}
