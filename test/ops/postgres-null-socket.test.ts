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
