/** Creating and migrating the database, without the rest of the server (the CLI's database commands use it). */
import type { Config } from '../config.ts';
import type { Logger } from '../logger.ts';
import { createSql, databaseName, ensureDatabase, redactUrl, type Sql } from './client.ts';
import { migrate } from './migrate.ts';

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
    try {
      return await migrate(sql, { logger });
    } catch (err) {
      if (isConnectionError(err) || (err as { code?: unknown }).code === '3D000') throw err;
      throw new Error(`migrations failed on ${redactUrl(config.databaseUrl)}: ${(err as Error).message}`, { cause: err });
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
