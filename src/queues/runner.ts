/**
 * Runs BullMQ workers with graceful shutdown: on SIGTERM/SIGINT stop taking jobs, let running jobs
 * finish, then close connections. Processors are thin: parse the payload, call a service, map
 * errors (a non-retryable KassaError becomes an UnrecoverableError so BullMQ does not retry it).
 */
import { Worker, UnrecoverableError, type ConnectionOptions, type Job } from 'bullmq';
import type { Logger } from '../logger.ts';
import { isKassaError } from '../errors.ts';
import { parsePayload, type Payload, type QueueName } from './index.ts';

export interface ProcessorSpec<N extends QueueName = QueueName> {
  queue: N;
  concurrency?: number;
  process(payload: Payload<N>, job: Job, log: Logger): Promise<unknown>;
}

export interface WorkerRunner {
  workers: Worker[];
  close(): Promise<void>;
}

export function startWorkers(opts: {
  connection: ConnectionOptions;
  prefix: string;
  logger: Logger;
  processors: ProcessorSpec<any>[];
}): WorkerRunner {
  const workers = opts.processors.map((spec) => {
    const worker = new Worker(
      spec.queue,
      async (job: Job) => {
        const log = opts.logger.child({ queue: spec.queue, job_id: job.id, attempt: job.attemptsMade + 1 });
        let payload: unknown;
        try {
          payload = parsePayload(spec.queue, job.data);
        } catch (err) {
          throw new UnrecoverableError(`invalid payload: ${(err as Error).message}`);
        }
        try {
          return await spec.process(payload, job, log);
        } catch (err) {
          if (isKassaError(err) && !err.retryable) {
            log.warn({ code: err.code, err: err.message }, 'job failed; not retrying');
            throw new UnrecoverableError(`${err.code}: ${err.message}`);
          }
          log.warn({ err: (err as Error).message }, 'job failed');
          throw err;
        }
      },
      { connection: opts.connection, prefix: opts.prefix, concurrency: spec.concurrency ?? 1, autorun: true },
    );
    worker.on('error', (err) => opts.logger.error({ queue: spec.queue, err: err.message }, 'worker error'));
    return worker;
  });
  return {
    workers,
    async close() {
      // Worker.close() waits for active jobs to finish before resolving.
      await Promise.all(workers.map((w) => w.close()));
    },
  };
}
