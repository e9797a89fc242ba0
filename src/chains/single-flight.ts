/**
 * Single-flight per chain: a session-level Postgres advisory lock held on a reserved connection
 * for as long as a watcher runs. Two worker processes can never scan one chain at once; when the
 * holder dies its connection closes and the lock is released, so a standby takes over.
 */
import { createHash } from 'node:crypto';
import type { Sql } from '../db/client.ts';

export function lockIdFor(name: string): bigint {
  // 63-bit positive id from the name
  return BigInt.asIntN(64, BigInt('0x' + createHash('sha256').update(`kassa:${name}`).digest('hex').slice(0, 16))) & 0x7fffffffffffffffn;
}

export interface HeldLock {
  release(): Promise<void>;
}

/** Tries once; returns null when another process holds the lock. */
export async function tryLock(sql: Sql, name: string): Promise<HeldLock | null> {
  const conn = await sql.reserve();
  const id = lockIdFor(name);
  try {
    const [row] = await conn<{ ok: boolean }[]>`select pg_try_advisory_lock(${id}) as ok`;
    if (!row?.ok) {
      conn.release();
      return null;
    }
  } catch (err) {
    conn.release();
    throw err;
  }
  let released = false;
  return {
    async release() {
      if (released) return;
      released = true;
      try {
        await conn`select pg_advisory_unlock(${id})`;
      } finally {
        conn.release();
      }
    },
  };
}
