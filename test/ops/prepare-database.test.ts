/**
 * src/db/prepare.ts: a database connection terminated while `kassa serve` or `kassa worker` prepares
 * the database at start-up (the fault harness's pg_terminate_backend right after a kill -9 and
 * restart) is retried instead of ending the process with "write CONNECTION_CLOSED".
 * Real PostgreSQL: the migrations are held at their advisory lock by another session, their backend
 * is terminated while it waits, then the lock is released.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import postgres from 'postgres';
import { prepareDatabase } from '../../src/db/prepare.ts';
import { createLogger } from '../../src/logger.ts';
import { createTestContext, type TestContext } from '../support/db.ts';

let ctx: TestContext;
beforeAll(async () => {
  ctx = await createTestContext();
});
afterAll(async () => ctx?.close());

describe('prepareDatabase at start-up', () => {
  // Before the fix this answered "failed: write CONNECTION_CLOSED 127.0.0.1:5432 (CONNECTION_CLOSED)".
  it('survives its connection being terminated under the migrations', async () => {
    const holder = postgres(ctx.config.databaseUrl, { max: 1, onnotice: () => {} });
    const admin = postgres(ctx.config.databaseUrl, { max: 1, onnotice: () => {} });
    const logger = createLogger({ level: process.env.KASSA_TEST_LOG ? 'warn' : 'silent', destination: process.stderr as never });
    try {
      await holder`select pg_advisory_lock(${0x4b617373})`; // the migrations' lock (src/db/migrate.ts)
      const started = prepareDatabase(ctx.config, logger).then(() => 'ok', (e: Error) => `failed: ${e.message} (${(e as { code?: string }).code})`);
      // Wait until the migrations wait for the lock, then terminate their backend.
      let pid: number | undefined;
      for (let i = 0; i < 100 && pid === undefined; i++) {
        const rows = await admin<{ pid: number }[]>`select pid from pg_locks where locktype = 'advisory' and not granted and database = (select oid from pg_database where datname = current_database())`;
        pid = rows[0]?.pid;
        if (pid === undefined) await new Promise((r) => setTimeout(r, 50));
      }
      expect(pid).toBeDefined();
      await admin`select pg_terminate_backend(${pid!})`;
      await new Promise((r) => setTimeout(r, 100));
      await holder`select pg_advisory_unlock(${0x4b617373})`;
      expect(await started).toBe('ok');
    } finally {
      await holder.end({ timeout: 1 });
      await admin.end({ timeout: 1 });
    }
  }, 30_000);
});
