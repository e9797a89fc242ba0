import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Queue } from 'bullmq';
import { redisConnection } from '../../src/deps.ts';
import { createLogger } from '../../src/logger.ts';
import { randomBase62 } from '../../src/ids.ts';
import { startWorkers } from '../../src/queues/runner.ts';
import { QUEUE_NAMES, defaultJobOptions } from '../../src/queues/index.ts';
import { KassaError } from '../../src/errors.ts';
import { REDIS_URL } from '../support/db.ts';

const prefix = `{kassa-test-${randomBase62(8)}}`;
const connection = redisConnection(REDIS_URL);
const logger = createLogger({ level: 'silent' });
let queue: Queue;

beforeAll(() => {
  queue = new Queue(QUEUE_NAMES.settlement, { connection, prefix, defaultJobOptions: { ...defaultJobOptions.settlement, backoff: { type: 'fixed', delay: 10 } } });
});
afterAll(async () => {
  await queue.obliterate({ force: true });
  await queue.close();
  connection.disconnect();
});

describe('worker runner', () => {
  it('fails a job that outlives its time limit, so it is retried instead of holding its slot for ever', async () => {
    let calls = 0;
    const runner = startWorkers({
      connection, prefix, logger,
      processors: [{
        queue: QUEUE_NAMES.settlement,
        timeoutMs: 300,
        // The first attempt never settles (a query lost by the database client); the retry works.
        process: async () => { calls++; if (calls === 1) await new Promise(() => {}); return 'done'; },
      }],
    });
    try {
      const job = await queue.add('hangs', { invoiceId: 'inv_hang' }, { removeOnComplete: false, attempts: 2, backoff: { type: 'fixed', delay: 10 } });
      const deadline = Date.now() + 10_000;
      let state = await job.getState();
      while (state !== 'completed' && state !== 'failed' && Date.now() < deadline) {
        await new Promise((r) => setTimeout(r, 50));
        state = await job.getState();
      }
      expect(state).toBe('completed');
      expect(calls).toBe(2);
      const done = await queue.getJob(job.id!);
      expect(done?.attemptsMade).toBe(2);
      expect(done?.returnvalue).toBe('done');
    } finally {
      await runner.close();
    }
  });

  it('uses a Redis Cluster hash-tag prefix so all keys of a queue share a slot', async () => {
    await queue.add('probe', { invoiceId: 'inv_probe' });
    const keys = await connection.keys(`${prefix}:*`);
    expect(keys.length).toBeGreaterThan(0);
    expect(keys.every((k) => k.startsWith('{kassa-test-'))).toBe(true);
    await queue.drain();
  });

  it('graceful shutdown lets the running job finish', async () => {
    let finished = false;
    let started!: () => void;
    const startedP = new Promise<void>((r) => (started = r));
    const runner = startWorkers({
      connection, prefix, logger,
      processors: [{ queue: QUEUE_NAMES.settlement, process: async () => { started(); await new Promise((r) => setTimeout(r, 400)); finished = true; } }],
    });
    const job = await queue.add('slow', { invoiceId: 'inv_1' }, { removeOnComplete: false });
    await startedP;
    await runner.close();
    expect(finished).toBe(true);
    expect(await (await queue.getJob(job.id!))?.getState()).toBe('completed');
  });

  it('a non-retryable KassaError fails the job at once; a retryable error is retried; a bad payload is not retried', async () => {
    const attempts: Record<string, number> = {};
    const runner = startWorkers({
      connection, prefix, logger,
      processors: [{
        queue: QUEUE_NAMES.settlement,
        process: async (payload: { invoiceId: string }) => {
          attempts[payload.invoiceId] = (attempts[payload.invoiceId] ?? 0) + 1;
          if (payload.invoiceId === 'inv_final') throw new KassaError('bad', 'no retry', { status: 400 });
          if (payload.invoiceId === 'inv_flaky' && attempts[payload.invoiceId]! < 3) throw new Error('transient');
        },
      }],
    });
    const final = await queue.add('x', { invoiceId: 'inv_final' });
    const flaky = await queue.add('x', { invoiceId: 'inv_flaky' }, { removeOnComplete: false });
    const bad = await queue.add('x', { nope: true } as never);
    const deadline = Date.now() + 10_000;
    const state = async (id: string) => (await queue.getJob(id))?.getState();
    while (Date.now() < deadline) {
      if ((await state(final.id!)) === 'failed' && (await state(flaky.id!)) === 'completed' && (await state(bad.id!)) === 'failed') break;
      await new Promise((r) => setTimeout(r, 50));
    }
    await runner.close();
    expect(await state(final.id!)).toBe('failed');
    expect(attempts.inv_final).toBe(1);
    expect(await state(flaky.id!)).toBe('completed');
    expect(attempts.inv_flaky).toBe(3);
    expect(await state(bad.id!)).toBe('failed');
    expect((await queue.getJob(bad.id!))?.attemptsMade).toBe(1);
  });
});
