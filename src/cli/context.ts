/**
 * Which Kassa a CLI command works on, and its database.
 *
 * - `config()`: the environment only (serve, worker, dev, evm, chains).
 * - `cliSettings()`: the administration commands (merchants, api-keys, users, reconcile, migrate)
 *   follow the sandbox: when `npm run dev` runs on this data folder (`$KASSA_DATA_DIR`, `.kassa`
 *   by default; its `sandbox/runtime.json` names a live process), its database, Redis, chains file
 *   and API URL are used for every variable the environment does not set (the environment always
 *   wins). One line on stderr says which database (and sandbox) the command uses.
 * - `withDb(settings, 'write', fn)` creates and migrates the database first (like `kassa migrate`);
 *   `withDb(settings, 'read', fn)` never does: a missing, empty or not fully migrated database is a
 *   clear error naming the database and `kassa migrate`.
 */
import { existsSync } from 'node:fs';
import { loadConfig, type Config } from '../config.ts';
import { KassaError } from '../errors.ts';
import { createLogger, type Logger } from '../logger.ts';
import { createSql, databaseName, redactUrl, type Sql } from '../db/client.ts';
import { readMigrations } from '../db/migrate.ts';
import { prepareDatabase } from '../db/prepare.ts';
import { isAlive, readJson, sandboxPaths, type SandboxRuntime } from './sandbox-runtime.ts';

/** The environment's configuration (no sandbox). */
export function config(): Config {
  return loadConfig(process.env);
}

export interface CliSettings {
  config: Config;
  /** The running sandbox whose settings were used, if any. */
  sandbox: SandboxRuntime | null;
  /** One line: the database (and sandbox) this command uses. */
  describe: string;
}

/** The running sandbox of `dataDir`, or null. */
export function runningSandbox(dataDir: string): SandboxRuntime | null {
  let runtime: SandboxRuntime | null;
  try {
    runtime = readJson<SandboxRuntime>(sandboxPaths(dataDir).runtime);
  } catch {
    return null; // unreadable: treated as no sandbox
  }
  return runtime && typeof runtime.pid === 'number' && isAlive(runtime.pid) ? runtime : null;
}

function where(url: string): string {
  const u = new URL(url);
  return `${databaseName(url)} on ${u.hostname}:${u.port || 5432}`;
}

/** The configuration of an administration command: the environment, then the running sandbox's settings. */
export function cliSettings(env: NodeJS.ProcessEnv = process.env): CliSettings {
  const merged: Record<string, string | undefined> = { ...env };
  const dataDir = env.KASSA_DATA_DIR || '.kassa';
  const sandbox = runningSandbox(dataDir);
  if (sandbox) {
    const chainsFile = sandboxPaths(dataDir).chains;
    const fromSandbox: Record<string, string | undefined> = {
      DATABASE_URL: sandbox.database_url,
      REDIS_URL: sandbox.redis_url,
      KASSA_CONFIG: existsSync(chainsFile) ? chainsFile : undefined,
      PORT: new URL(sandbox.api_url).port || undefined,
      PUBLIC_URL: sandbox.public_url,
    };
    for (const [name, value] of Object.entries(fromSandbox)) {
      if (value && !env[name]) merged[name] = value;
    }
  }
  const cfg = loadConfig(merged);
  let describe: string;
  if (!sandbox) describe = `database ${where(cfg.databaseUrl)}${env.DATABASE_URL ? ' (DATABASE_URL)' : ' (default; no sandbox running)'}`;
  else if (env.DATABASE_URL && env.DATABASE_URL !== sandbox.database_url) {
    describe = `database ${where(cfg.databaseUrl)} (DATABASE_URL; the running sandbox, pid ${sandbox.pid}, uses ${where(sandbox.database_url)})`;
  } else describe = `sandbox (pid ${sandbox.pid}, API ${sandbox.api_url}): database ${where(cfg.databaseUrl)}`;
  return { config: cfg, sandbox, describe };
}

/** Prints `settings.describe` on stderr (stdout stays the command's result). */
export function announce(settings: CliSettings): void {
  process.stderr.write(`kassa: using ${settings.describe}\n`);
}

export interface Db {
  config: Config;
  sql: Sql;
  logger: Logger;
}

/** Checks, without changing anything, that the database exists and has every migration applied. */
export async function checkDatabase(sql: Sql, databaseUrl: string): Promise<void> {
  const name = `database ${databaseName(databaseUrl)} (${redactUrl(databaseUrl)})`;
  let version: number | null;
  try {
    const rows = await sql<{ version: number | null }[]>`select max(version)::int as version from schema_migrations`;
    version = rows[0]?.version ?? null;
  } catch (err) {
    const code = (err as { code?: string }).code;
    if (code === '3D000') {
      throw new KassaError('database_missing', `${name} does not exist. Run "kassa migrate" to create it, start the sandbox ("npm run dev"), or set DATABASE_URL`, { retryable: false });
    }
    if (code === '42P01') throw new KassaError('database_not_migrated', `${name} has no Kassa tables. Run "kassa migrate" first`, { retryable: false });
    throw err;
  }
  const latest = Math.max(...readMigrations().map((m) => m.version));
  if (version === null || version < latest) {
    throw new KassaError('database_outdated', `${name} is at migration ${version ?? 0}, this Kassa needs ${latest}. Run "kassa migrate" first`, { retryable: false });
  }
}

/**
 * Runs `fn` with a connection pool on the settings' database, then closes it. 'write' creates and
 * migrates the database first; 'read' only checks it (see checkDatabase).
 */
export async function withDb<T>(settings: CliSettings, mode: 'read' | 'write', fn: (db: Db) => Promise<T>): Promise<T> {
  const cfg = settings.config;
  const logger = createLogger({ level: 'warn', destination: process.stderr });
  if (mode === 'write') await prepareDatabase(cfg, logger);
  const sql = createSql(cfg.databaseUrl, { max: 2 });
  try {
    if (mode === 'read') await checkDatabase(sql, cfg.databaseUrl);
    return await fn({ config: cfg, sql, logger });
  } finally {
    await sql.end({ timeout: 5 });
  }
}

/** cliSettings() announced on stderr: for commands that need only the configuration. */
export function adminConfig(): Config {
  const settings = cliSettings();
  announce(settings);
  return settings.config;
}
