/**
 * src/process-guards.ts: an error that only says a database connection went away is told apart
 * from a bug. The errors come from a real PostgreSQL killing a real postgres.js connection
 * (pg_terminate_backend), the fault the harness injects, not from hand-made objects.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import postgres from 'postgres';
import { Hono } from 'hono';
import { isConnectionLost } from '../../src/process-guards.ts';
import { handleError } from '../../src/api/errors.ts';
import type { AppEnv } from '../../src/api/env.ts';
import { createTestDatabase } from '../support/db.ts';

let db: Awaited<ReturnType<typeof createTestDatabase>>;
beforeAll(async () => {
  db = await createTestDatabase();
});
afterAll(async () => {
  await db?.drop();
});

describe('isConnectionLost', () => {
  it('is true for what postgres.js reports when PostgreSQL terminates the connection under a query', async () => {
    const victim = postgres(db.url, { max: 1, onnotice: () => {} });
    const admin = postgres(db.url, { max: 1, onnotice: () => {} });
    try {
      const [row] = await victim<{ pid: number }[]>`select pg_backend_pid() as pid`;
      const pid = row!.pid;
      const running = victim`select pg_sleep(30)`.then(() => null, (e: unknown) => e);
      await new Promise((r) => setTimeout(r, 200));
      await admin`select pg_terminate_backend(${pid})`;
      const err = await running;
      expect(err).toBeInstanceOf(Error);
      expect(isConnectionLost(err)).toBe(true);
    } finally {
      await victim.end({ timeout: 1 });
      await admin.end({ timeout: 1 });
    }
  });

  it('is false for an ordinary SQL error and for a plain bug', async () => {
    const sql = postgres(db.url, { max: 1, onnotice: () => {} });
    try {
      const err = await sql`select * from no_such_table`.then(() => null, (e: unknown) => e);
      expect((err as { code?: string }).code).toBe('42P01');
      expect(isConnectionLost(err)).toBe(false);
    } finally {
      await sql.end({ timeout: 1 });
    }
    expect(isConnectionLost(new TypeError("Cannot read properties of null (reading 'write')"))).toBe(false);
    expect(isConnectionLost(null)).toBe(false);
  });

  it('an API request whose connection PostgreSQL terminates answers 503 database_unavailable, retryable (it answered 500 internal_error)', async () => {
    const victim = postgres(db.url, { max: 1, onnotice: () => {} });
    const admin = postgres(db.url, { max: 1, onnotice: () => {} });
    try {
      const [row] = await victim<{ pid: number }[]>`select pg_backend_pid() as pid`;
      const app = new Hono<AppEnv>();
      app.onError(handleError);
      app.get('/x', async (c) => c.json(await victim`select pg_sleep(30)`));
      const res = app.request('/x');
      await new Promise((r) => setTimeout(r, 200));
      await admin`select pg_terminate_backend(${row!.pid})`;
      const answer = await res;
      expect(answer.status).toBe(503);
      expect(answer.headers.get('retry-after')).toBe('1');
      expect(((await answer.json()) as { error: { code: string } }).error.code).toBe('database_unavailable');
    } finally {
      await victim.end({ timeout: 1 });
      await admin.end({ timeout: 1 });
    }
  });
});
