import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createSql, type Sql } from '../../src/db/client.ts';
import { migrate } from '../../src/db/migrate.ts';
import { tryLock } from '../../src/chains/single-flight.ts';
import { createTestDatabase } from '../support/db.ts';

let db: Awaited<ReturnType<typeof createTestDatabase>>;
let a: Sql;
let b: Sql;
beforeAll(async () => {
  db = await createTestDatabase();
  a = createSql(db.url, { max: 2 });
  b = createSql(db.url, { max: 2 });
  await migrate(a);
});
afterAll(async () => {
  // Connections terminated by the last test: do not wait for them to close politely.
  await a?.end({ timeout: 1 });
  await b?.end({ timeout: 1 });
  await db?.drop();
});

describe('single-flight chain lease', () => {
  it('one holder at a time; a standby takes over after release', async () => {
    const first = await tryLock(a, 'watch:one');
    expect(first).not.toBeNull();
    expect(await first!.held()).toBe(true);
    expect(await tryLock(b, 'watch:one')).toBeNull();
    await first!.release();
    expect(await first!.held()).toBe(false);
    const second = await tryLock(b, 'watch:one');
    expect(second).not.toBeNull();
    await second!.release();
  });

  it('a holder that stopped renewing (killed, paused) loses the lease to a standby, and notices', async () => {
    const stale = await tryLock(a, 'watch:two', { ttlSeconds: 1 });
    expect(stale).not.toBeNull();
    expect(await tryLock(b, 'watch:two')).toBeNull();
    await new Promise((r) => setTimeout(r, 1200));
    const standby = await tryLock(b, 'watch:two');
    expect(standby).not.toBeNull();
    expect(await stale!.held()).toBe(false);
    expect(await standby!.held()).toBe(true);
    await stale!.release(); // must not remove the new holder's lease
    expect(await standby!.held()).toBe(true);
    await standby!.release();
  });

  it('survives its connections being terminated (uses any pooled connection)', async () => {
    const lock = await tryLock(a, 'watch:three');
    await b`select pg_terminate_backend(pid) from pg_stat_activity where datname = current_database() and pid <> pg_backend_pid()`;
    let ok = false;
    for (let i = 0; i < 5 && !ok; i++) ok = await lock!.held();
    expect(ok).toBe(true);
    await lock!.release();
  });
});
