/**
 * Single-flight per chain: a lease row in Postgres (`leases`), taken by one watcher and renewed
 * before every pass. Two worker processes never scan one chain at once; when the holder dies
 * (kill -9, lost network) its lease expires after `ttlSeconds` and a standby takes over.
 *
 * Why a lease and not a session advisory lock: an advisory lock lives on one connection, and when
 * Postgres terminates that connection the holder keeps running without noticing (and postgres.js
 * cannot safely reuse a reserved connection whose socket died). A lease works over any pooled
 * connection and survives connection drops and Postgres restarts.
 */
import { randomBytes } from 'node:crypto';
import { hostname } from 'node:os';
import type { Sql } from '../db/client.ts';

export const DEFAULT_LEASE_TTL_SECONDS = 20;

export interface HeldLock {
  /** The holder id written in the lease row. */
  holder: string;
  /**
   * Renews the lease and says whether it is still ours: false when it expired and another process
   * took it (this one was paused or cut off too long). Watchers call this before every pass and go
   * back to standby when it returns false.
   */
  held(): Promise<boolean>;
  release(): Promise<void>;
}

/** Tries once; returns null when another live process holds the lease. */
export async function tryLock(sql: Sql, name: string, opts: { ttlSeconds?: number } = {}): Promise<HeldLock | null> {
  const ttl = opts.ttlSeconds ?? DEFAULT_LEASE_TTL_SECONDS;
  const holder = `${hostname()}:${process.pid}:${randomBytes(4).toString('hex')}`;
  const [row] = await sql<{ holder: string }[]>`
    insert into leases (name, holder, expires_at) values (${name}, ${holder}, now() + make_interval(secs => ${ttl}))
    on conflict (name) do update set holder = excluded.holder, expires_at = excluded.expires_at, acquired_at = now()
      where leases.expires_at < now()
    returning holder`;
  if (row?.holder !== holder) return null;
  let released = false;
  return {
    holder,
    async held() {
      if (released) return false;
      try {
        const rows = await sql`
          update leases set expires_at = now() + make_interval(secs => ${ttl})
          where name = ${name} and holder = ${holder} and expires_at > now()
          returning 1`;
        return rows.length === 1;
      } catch {
        return false; // cannot tell: behave as if lost (the caller stands by and retries)
      }
    },
    async release() {
      if (released) return;
      released = true;
      await sql`delete from leases where name = ${name} and holder = ${holder}`.catch(() => {});
    },
  };
}
