/**
 * The one module with queue names, payload schemas and default job options (docs/architecture.md §8.5).
 * Payloads carry ids, never amounts: processors re-read the database.
 * The Redis key prefix uses Redis Cluster hash-tag form (`{kassa}`) so every key of a queue lands
 * in one slot and BullMQ's multi-key scripts work on a cluster.
 */
import type { Queue, JobsOptions, ConnectionOptions } from 'bullmq';
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

/** The Queue methods Kassa calls; each loads BullMQ on its first call (see createQueues). */
const QUEUE_METHODS = ['add', 'addBulk', 'getJobCounts', 'getFailed', 'upsertJobScheduler', 'getJobSchedulers'] as const;

/**
 * One queue as Kassa's code sees it: the BullMQ Queue methods it uses, and `queue()` for the
 * Queue itself (the bull-board dashboard needs it).
 */
export type KassaQueue<T> = Pick<Queue<T>, (typeof QUEUE_METHODS)[number] | 'close'> & { queue(): Promise<Queue<T>> };

export type Queues = { [N in QueueName]: KassaQueue<Payload<N>> } & { close(): Promise<void> };

/**
 * The queues, created on first use: BullMQ is loaded (and a Queue built) only when a method of that
 * queue is first called. `kassa serve` mostly never enqueues (the worker does), so the API process
 * starts without loading BullMQ (docs/architecture.md §10).
 */
export function createQueues(connection: ConnectionOptions, prefix: string): Queues {
  let bullmq: Promise<typeof import('bullmq')> | undefined;
  const made = new Map<QueueName, Promise<Queue>>();
  const real = (name: QueueName): Promise<Queue> => {
    let q = made.get(name);
    if (!q) {
      bullmq ??= import('bullmq');
      q = bullmq.then(({ Queue }) => new Queue(name, { connection, prefix, defaultJobOptions: defaultJobOptions[name] }));
      made.set(name, q);
    }
    return q;
  };
  const queues = {} as Record<QueueName, Record<string, unknown>>;
  for (const name of Object.values(QUEUE_NAMES)) {
    const facade: Record<string, unknown> = { queue: () => real(name) };
    for (const m of QUEUE_METHODS) {
      facade[m] = async (...args: unknown[]) => ((await real(name)) as unknown as Record<string, (...a: unknown[]) => unknown>)[m]!(...args);
    }
    // Closing a queue that was never used has nothing to close.
    facade.close = async () => {
      const q = made.get(name);
      if (q) await (await q).close();
    };
    queues[name] = facade;
  }
  return Object.assign(queues, {
    async close() {
      await Promise.all(Object.values(QUEUE_NAMES).map((n) => (queues[n].close as () => Promise<void>)()));
    },
  }) as unknown as Queues;
}

/** Validates a payload against its queue schema; throws a non-retryable error when it is wrong. */
export function parsePayload<N extends QueueName>(name: N, data: unknown): Payload<N> {
  return payloadSchemas[name].parse(data) as Payload<N>;
}
