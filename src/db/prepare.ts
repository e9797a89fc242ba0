/** Creating and migrating the database, without the rest of the server (the CLI's database commands use it). */
import type { Config } from '../config.ts';
import type { Logger } from '../logger.ts';
import { createSql, databaseName, ensureDatabase, redactUrl, type Sql } from './client.ts';
import { migrate } from './migrate.ts';
import { isConnectionLost } from '../process-guards.ts';

/** Attempts when the connection is lost under the migrations at start-up (`kassa serve`, `kassa worker`). */
const START_ATTEMPTS = 5;

/** A Node or driver error (ECONNREFUSED, CONNECT_TIMEOUT…), not an SQLSTATE from the server. */
const isConnectionError = (err: unknown) => {
  const code = (err as { code?: unknown }).code;
  return typeof code === 'string' && !/^[0-9A-Z]{5}$/.test(code);
};

/**
 * Creates the database when missing (saying so) and applies pending migrations. The migrations run
 * on `opts.sql` when given (a pool the caller keeps: `kassa serve` warms its own this way), else on
 * a connection of their own. The server's `postgres` database is used only when the database is
 * missing, to create it: a start against an existing database opens a single connection.
 */
export async function prepareDatabase(config: Config, logger: Logger, opts: { sql?: Sql } = {}): Promise<string[]> {
  const sql = opts.sql ?? createSql(config.databaseUrl, { max: 1 });
  const run = async () => {
    for (let attempt = 1; ; attempt++) {
      // A retry runs on a connection of its own: postgres.js keeps handing out the reserved
      // connection that was lost ("write CONNECTION_CLOSED" on every later attempt).
      const conn = attempt === 1 ? sql : createSql(config.databaseUrl, { max: 1 });
      try {
        return await migrate(conn, { logger });
      } catch (err) {
        // A connection lost while starting (terminated by an operator or a restarting server): the
        // process would exit for nothing. Migrations are applied one transaction at a time, so the
        // run is simply repeated, a few times.
        if (isConnectionLost(err) && attempt < START_ATTEMPTS) {
          logger.warn({ err: (err as Error).message, attempt }, 'database connection lost while preparing the database; retrying');
          await new Promise((r) => setTimeout(r, 250 * attempt));
          continue;
        }
        if (isConnectionError(err) || (err as { code?: unknown }).code === '3D000') throw err;
        throw new Error(`migrations failed on ${redactUrl(config.databaseUrl)}: ${(err as Error).message}`, { cause: err });
      } finally {
        if (conn !== sql) await conn.end({ timeout: 5 });
      }
    }
  };
  try {
    try {
      return await run();
    } catch (err) {
      if ((err as { code?: unknown }).code !== '3D000') throw err; // 3D000: the database does not exist
    }
    if (await ensureDatabase(config.databaseUrl)) {
      logger.info({ database: databaseName(config.databaseUrl) }, `created database ${databaseName(config.databaseUrl)}`);
    }
    return await run();
  } finally {
    if (!opts.sql) await sql.end({ timeout: 5 });
  }
}
