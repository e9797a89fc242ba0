/**
 * Runs BullMQ workers with graceful shutdown: on SIGTERM/SIGINT stop taking jobs, let running jobs
 * finish, then close connections. Processors are thin: parse the payload, call a service, map
 * errors (a non-retryable KassaError becomes an UnrecoverableError so BullMQ does not retry it).
 *
 * Every job has a time limit (`timeoutMs`, default 10 minutes). A job still running then is failed
 * as a retryable error and its slot freed: a database query that never settles (the PostgreSQL
 * client can lose one when the server kills a connection while it is being opened) would otherwise
 * keep the job active for ever, its lock renewed, and block every later job with its id. The
 * abandoned work may still finish later; every processor is idempotent (the database row is the
 * truth), so at worst it is done twice, never lost.
 */
import { Worker, UnrecoverableError, type ConnectionOptions, type Job } from 'bullmq';
import type { Logger } from '../logger.ts';
import { isKassaError } from '../errors.ts';
import { parsePayload, type Payload, type QueueName } from './index.ts';

export interface ProcessorSpec<N extends QueueName = QueueName> {
  queue: N;
  concurrency?: number;
  process(payload: Payload<N>, job: Job, log: Logger): Promise<unknown>;
  /** Time limit of one job, in milliseconds (default DEFAULT_JOB_TIMEOUT_MS). */
  timeoutMs?: number;
}

export const DEFAULT_JOB_TIMEOUT_MS = 10 * 60_000;

export class JobTimeoutError extends Error {
  constructor(readonly timeoutMs: number) {
    super(`the job did not finish within its time limit (${timeoutMs} ms); it is failed and will be retried`);
    this.name = 'JobTimeoutError';
  }
}

function withTimeLimit<T>(work: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const limit = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new JobTimeoutError(ms)), ms);
  });
  return Promise.race([work, limit]).finally(() => clearTimeout(timer));
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
          const work = spec.process(payload, job, log);
          // Once the time limit has failed the job, the abandoned work's own later failure is moot: not an unhandled rejection.
          work.catch(() => {});
          return await withTimeLimit(work, spec.timeoutMs ?? DEFAULT_JOB_TIMEOUT_MS);
        } catch (err) {
          if (err instanceof JobTimeoutError) {
            log.error({ timeout_ms: err.timeoutMs }, 'job exceeded its time limit; failed so that it is retried');
            throw err;
          }
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
