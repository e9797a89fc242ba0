import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestContext, type TestContext } from '../support/db.ts';
import { loadConfig } from '../../src/config.ts';
import { startWorkerProcess, type RunningWorkers } from '../../src/worker-process.ts';

let ctx: TestContext;
let workers: RunningWorkers;

beforeAll(async () => {
  ctx = await createTestContext();
  const config = { ...ctx.config, ...loadConfig({ DATABASE_URL: ctx.config.databaseUrl, KASSA_SECRET_KEY: '11'.repeat(32), METRICS_PORT: '0' }), queuePrefix: ctx.config.queuePrefix };
  workers = await startWorkerProcess(config, { deps: ctx.deps });
});
afterAll(async () => {
  await workers?.close();
  await ctx?.close();
});

describe('kassa worker metrics', () => {
  it('serves its own /metrics on METRICS_PORT with job outcomes', async () => {
    const started = ctx.logs.lines.map((l) => JSON.parse(l)).find((l) => l.msg === 'workers started');
    expect(started.metrics_url).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/metrics$/);
    let body = '';
    for (let i = 0; i < 100; i++) {
      body = await (await fetch(started.metrics_url)).text();
      if (body.includes('kassa_queue_jobs_processed_total{queue="maintenance",outcome="completed"}')) break;
      await new Promise((r) => setTimeout(r, 100));
    }
    expect(body).toContain('kassa_queue_jobs_processed_total{queue="maintenance",outcome="completed"}');
    expect(body).toContain('process_cpu_user_seconds_total');
  });
});
