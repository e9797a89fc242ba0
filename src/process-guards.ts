/**
 * What a long-running Kassa process (`kassa serve`, `kassa worker`) does with a promise rejection
 * nobody handled (docs/operations.md, "Database connection loss").
 *
 * The fault harness kills PostgreSQL connections (pg_terminate_backend) and found that one can
 * surface as an unhandled rejection of the postgres.js client (`57P01 terminating connection due
 * to administrator command`, `CONNECTION_CLOSED`, `ECONNRESET`) that took the whole worker down.
 * Its source was the client's array-type lookup on a new connection, whose promise postgres.js
 * drops (porsager/postgres #1192); scripts/patch-dependencies.mjs fixes it at install. This guard
 * stays for any other such path, and logs the stack to find it.
 * Such an error belongs to a connection that is already gone: the transaction it was part of was
 * rolled back by PostgreSQL, the client reconnects by itself, and the work is retried by its loop or
 * queue, so the process logs it and carries on. Any other unhandled rejection is a bug: it is logged
 * as fatal and the process exits, as Node.js would by default, for the supervisor to restart it.
 */
import type { Logger } from './logger.ts';

const CONNECTION_LOST_CODES = new Set([
  '57P01', // admin_shutdown: terminating connection due to administrator command
  '57P02', // crash_shutdown
  '57P03', // cannot_connect_now
  'CONNECTION_CLOSED',
  'CONNECTION_ENDED',
  'CONNECTION_DESTROYED',
  'ECONNRESET',
  'ECONNREFUSED',
  'EPIPE',
]);

/** True for an error that only says a database or network connection went away. */
export function isConnectionLost(err: unknown): boolean {
  const code = (err as { code?: unknown } | null)?.code;
  return typeof code === 'string' && CONNECTION_LOST_CODES.has(code);
}

export function guardUnhandledRejections(logger: Logger): void {
  process.on('unhandledRejection', (reason) => {
    const err = reason instanceof Error ? reason : new Error(String(reason));
    if (isConnectionLost(reason)) {
      // The stack names the operation nobody awaited (postgres.js rejects with its call site).
      logger.error({ err: err.message, code: (reason as { code: string }).code, stack: err.stack }, 'a connection was lost under a pending operation; it is retried by its loop or queue');
      return;
    }
    logger.fatal({ err: err.message, stack: err.stack }, 'unhandled promise rejection: exiting');
    process.exit(1);
  });
}
