/** Creating and migrating the database, without the rest of the server (the CLI's database commands use it). */
import type { Config } from '../config.ts';
import type { Logger } from '../logger.ts';
import { createSql, databaseName, ensureDatabase, redactUrl } from './client.ts';
import { migrate } from './migrate.ts';

/** Creates the database when missing (saying so) and applies pending migrations. */
export async function prepareDatabase(config: Config, logger: Logger): Promise<string[]> {
  if (await ensureDatabase(config.databaseUrl)) {
    logger.info({ database: databaseName(config.databaseUrl) }, `created database ${databaseName(config.databaseUrl)}`);
  }
  const sql = createSql(config.databaseUrl, { max: 1 });
  try {
    return await migrate(sql, { logger });
  } catch (err) {
    throw new Error(`migrations failed on ${redactUrl(config.databaseUrl)}: ${(err as Error).message}`, { cause: err });
  } finally {
    await sql.end({ timeout: 5 });
  }
}
