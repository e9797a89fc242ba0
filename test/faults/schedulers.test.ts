/**
 * Regression (found by the fault harness, seed 1): after Redis lost its data (FLUSHALL / a fresh
 * Redis), the maintenance job schedulers (deadline scan, address-pool refill, re-verification)
 * were never declared again, so invoices stopped expiring until a worker restarted.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestContext, type TestContext } from '../support/db.ts';
import { flushQueuePrefix } from '../webhooks/support.ts';
import { buildProcessors, type ProcessorSet } from '../../workers/processors.ts';

let ctx: TestContext;
let set: ProcessorSet;

beforeAll(async () => {
  ctx = await createTestContext();
  set = buildProcessors(ctx.deps, { watchers: false, watchdogMs: 200 });
  await set.start();
});
afterAll(async () => {
  await set?.stop();
  await ctx?.close();
});

describe('worker job schedulers', () => {
  it('come back after Redis loses them (flush of this prefix)', async () => {
    const ids = async () => (await ctx.deps.queues.maintenance.getJobSchedulers()).map((s) => s.key ?? s.id).sort();
    expect(await ids()).toEqual(expect.arrayContaining(['refill-address-pools', 'reverify-payments', 'scan-deadlines']));
    expect(await flushQueuePrefix(ctx)).toBeGreaterThan(0);
    expect(await ids()).toEqual([]);
    const deadline = Date.now() + 5_000;
    let now: string[] = [];
    while (Date.now() < deadline) {
      now = await ids();
      if (now.includes('scan-deadlines')) break;
      await new Promise((r) => setTimeout(r, 100));
    }
    expect(now).toEqual(expect.arrayContaining(['refill-address-pools', 'reverify-payments', 'scan-deadlines']));
  });
});
