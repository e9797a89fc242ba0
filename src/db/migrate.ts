import { readdirSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import path from 'node:path';
import { createHash } from 'node:crypto';
import type { Sql } from './client.ts';
import type { Logger } from '../logger.ts';

const MIGRATIONS_DIR = fileURLToPath(new URL('./migrations/', import.meta.url));
/** Arbitrary constant: the advisory lock every Kassa migrator takes, so two processes never race. */
const MIGRATION_LOCK_ID = 0x4b617373; // "Kass"

export interface Migration {
  version: number;
  name: string;
  sql: string;
  checksum: string;
}

/** Reads `NNNN_name.sql` files in order. */
export function readMigrations(dir = MIGRATIONS_DIR): Migration[] {
  const files = readdirSync(dir).filter((f) => /^\d{4}_[a-z0-9_]+\.sql$/.test(f)).sort();
  const seen = new Set<number>();
  return files.map((file) => {
    const version = Number(file.slice(0, 4));
    if (seen.has(version)) throw new Error(`Two migrations share version ${version}: ${file}`);
    seen.add(version);
    const sql = readFileSync(path.join(dir, file), 'utf8');
    return { version, name: file.replace(/\.sql$/, ''), sql, checksum: createHash('sha256').update(sql).digest('hex') };
  });
}

/**
 * Applies pending migrations, each once, each in its own transaction, recorded in
 * `schema_migrations`. A session-level advisory lock on one reserved connection makes concurrent
 * starts safe: the second process waits, then finds nothing left to do. Returns the names applied.
 */
export async function migrate(sql: Sql, opts: { logger?: Logger; dir?: string } = {}): Promise<string[]> {
  const migrations = readMigrations(opts.dir);
  const applied: string[] = [];
  const conn = await sql.reserve();
  try {
    await conn`select pg_advisory_lock(${MIGRATION_LOCK_ID})`;
    try {
      await conn.unsafe(`
        create table if not exists schema_migrations (
          version integer primary key,
          name text not null,
          checksum text not null,
          applied_at timestamptz not null default now()
        )`);
      const done = new Map<number, string>();
      for (const row of await conn<{ version: number; checksum: string }[]>`select version, checksum from schema_migrations`) {
        done.set(row.version, row.checksum);
      }
      for (const m of migrations) {
        const checksum = done.get(m.version);
        if (checksum !== undefined) {
          if (checksum !== m.checksum) {
            opts.logger?.warn({ migration: m.name }, 'applied migration file changed since it ran; leaving it as is');
          }
          continue;
        }
        await conn.unsafe('begin');
        try {
          await conn.unsafe(m.sql);
          await conn`insert into schema_migrations (version, name, checksum) values (${m.version}, ${m.name}, ${m.checksum})`;
          await conn.unsafe('commit');
        } catch (err) {
          await conn.unsafe('rollback');
          throw new Error(`Migration ${m.name} failed: ${(err as Error).message}`, { cause: err });
        }
        applied.push(m.name);
        opts.logger?.info({ migration: m.name }, 'applied migration');
      }
    } finally {
      await conn`select pg_advisory_unlock(${MIGRATION_LOCK_ID})`;
    }
  } finally {
    conn.release();
  }
  return applied;
}
