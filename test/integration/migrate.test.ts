import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { createSql, ensureDatabase } from '../../src/db/client.ts';
import { migrate, readMigrations } from '../../src/db/migrate.ts';
import { createTestDatabase } from '../support/db.ts';

let db: Awaited<ReturnType<typeof createTestDatabase>>;
beforeAll(async () => { db = await createTestDatabase(); });
afterAll(async () => db?.drop());

describe('migrator', () => {
  it('applies every migration once even when several processes start at once', async () => {
    const pools = Array.from({ length: 4 }, () => createSql(db.url, { max: 2 }));
    const results = await Promise.all(pools.map((p) => migrate(p)));
    const all = readMigrations().map((m) => m.name);
    // Exactly one run applied them; the others found nothing to do.
    expect(results.filter((r) => r.length > 0)).toEqual([all]);
    const rows = await pools[0]!`select version from schema_migrations order by version`;
    expect(rows.map((r) => r.version)).toEqual(readMigrations().map((m) => m.version));
    expect(await migrate(pools[0]!)).toEqual([]);
    await Promise.all(pools.map((p) => p.end()));
  });

  it('a failing migration is rolled back entirely and not recorded', async () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'kassa-mig-'));
    writeFileSync(path.join(dir, '0001_ok.sql'), 'create table t_ok (id int);');
    writeFileSync(path.join(dir, '0002_bad.sql'), 'create table t_bad (id int); select * from no_such_table;');
    const other = await createTestDatabase();
    const sql = createSql(other.url, { max: 1 });
    try {
      await expect(migrate(sql, { dir })).rejects.toThrow(/Migration 0002_bad failed/);
      const tables = await sql`select table_name from information_schema.tables where table_name like 't\\_%'`;
      expect(tables.map((t) => t.table_name)).toEqual(['t_ok']);
      expect((await sql`select name from schema_migrations`).map((r) => r.name)).toEqual(['0001_ok']);
    } finally {
      await sql.end();
      await other.drop();
    }
  });

  it('numeric(78,0) amounts round-trip as bigint, beyond 2^64', async () => {
    const sql = createSql(db.url, { max: 1 });
    const big = 2n ** 200n + 7n;
    const [row] = await sql<{ v: bigint }[]>`select ${big}::numeric(78,0) as v`;
    expect(row!.v).toBe(big);
    expect(typeof row!.v).toBe('bigint');
    await sql.end();
  });

  it('ensureDatabase creates a missing database once', async () => {
    const name = `kassa_test_ensure_${Date.now()}`;
    const url = db.url.replace(/\/[^/]+$/, `/${name}`);
    expect(await ensureDatabase(url)).toBe(true);
    expect(await ensureDatabase(url)).toBe(false);
    const sql = createSql(db.url.replace(/\/[^/]+$/, '/postgres'), { max: 1 });
    await sql.unsafe(`drop database ${name}`);
    await sql.end();
  });
});
