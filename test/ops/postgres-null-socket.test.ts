/**
 * scripts/patch-dependencies.mjs (run by `npm ci`): postgres.js 3.4.9 crashes the whole process
 * with `TypeError: Cannot read properties of null (reading 'write')` when it flushes a query onto a
 * connection PostgreSQL has already closed (upstream porsager/postgres #1154, #1208). The fault
 * harness's worker died of it under pg_terminate_backend. Without the patch the child below exits 1
 * with that TypeError; with it, the query is rejected with CONNECTION_CLOSED and the process lives.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { createTestDatabase } from '../support/db.ts';

let db: Awaited<ReturnType<typeof createTestDatabase>>;
beforeAll(async () => {
  db = await createTestDatabase();
});
afterAll(async () => {
  await db?.drop();
});

describe('a query on a connection PostgreSQL terminated', () => {
  it('is rejected with CONNECTION_CLOSED instead of crashing the process', async () => {
    const script = fileURLToPath(new URL('../fixtures/postgres-null-socket.mjs', import.meta.url));
    const result = await new Promise<{ code: number | null; stdout: string; stderr: string }>((resolve) => {
      execFile(process.execPath, [script, db.url], { timeout: 30_000 }, (err, stdout, stderr) => {
        resolve({ code: err ? (typeof err.code === 'number' ? err.code : 1) : 0, stdout, stderr });
      });
    });
    expect(result.stderr).not.toContain("reading 'write'");
    expect(result.code).toBe(0);
    expect(result.stdout).toContain('query rejected: CONNECTION_CLOSED');
    expect(result.stdout).toContain('survived');
  });
});

/**
 * scripts/patch-dependencies.mjs, second postgres.js patch (upstream porsager/postgres #1192, #1223):
 * a connection terminated while the client looks up the array types on connecting left a dropped
 * promise rejected with 57P01, an unhandled rejection that exits the process (the fault harness's
 * worker died of it; src/process-guards.ts had been keeping Kassa's processes alive through it).
 * The child has no rejection handler: without the patch it exits 1 within a few seconds.
 */
describe('a connection terminated while it looks up the array types', () => {
  it('rejects the waiting queries only: no unhandled rejection', async () => {
    const script = fileURLToPath(new URL('../fixtures/postgres-fetch-types.mjs', import.meta.url));
    const result = await new Promise<{ code: number | null; stdout: string; stderr: string }>((resolve) => {
      execFile(process.execPath, [script, db.url, '8'], { timeout: 40_000 }, (err, stdout, stderr) => {
        resolve({ code: err ? (typeof err.code === 'number' ? err.code : 1) : 0, stdout, stderr });
      });
    });
    expect(result.stderr).not.toContain('terminating connection due to administrator command');
    expect(result.code).toBe(0);
    expect(result.stdout).toContain('survived');
    // The scenario happened: some connections were terminated during the lookup.
    const during = Number(/terminated during the type lookup (\d+)/.exec(result.stdout)?.[1] ?? 0);
    expect(during).toBeGreaterThan(0);
  }, 60_000);
});
