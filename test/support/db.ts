/**
 * Per-test-file isolation on the real Postgres and Redis: each call gets its own freshly migrated
 * database and its own BullMQ/Redis key prefix, so files run in parallel and reruns never see
 * another run's rows.
 */
import { Writable } from 'node:stream';
import postgres from 'postgres';
import { loadConfig, type Config } from '../../src/config.ts';
import { createSql } from '../../src/db/client.ts';
import { migrate } from '../../src/db/migrate.ts';
import { createDeps, type Deps } from '../../src/deps.ts';
import { createLogger } from '../../src/logger.ts';
import { randomBase62 } from '../../src/ids.ts';
import { SCOPES, type Scope } from '../../src/merchants/scopes.ts';

export const PG_SERVER = process.env.TEST_PG_SERVER ?? 'postgres://postgres@127.0.0.1:5432';
export const REDIS_URL = process.env.TEST_REDIS_URL ?? 'redis://127.0.0.1:6379';

/** Captures every log line written by the code under test (used to prove secrets are never logged). */
export class LogCapture extends Writable {
  lines: string[] = [];
  override _write(chunk: Buffer, _enc: string, cb: () => void): void {
    this.lines.push(chunk.toString());
    cb();
  }
  text(): string {
    return this.lines.join('');
  }
}

export async function createTestDatabase(): Promise<{ url: string; name: string; drop(): Promise<void> }> {
  const name = `kassa_test_${randomBase62(10).toLowerCase()}`;
  const admin = postgres(`${PG_SERVER}/postgres`, { max: 1, onnotice: () => {} });
  await admin.unsafe(`create database ${name}`);
  await admin.end();
  const url = `${PG_SERVER}/${name}`;
  return {
    url,
    name,
    async drop() {
      const a = postgres(`${PG_SERVER}/postgres`, { max: 1, onnotice: () => {} });
      await a.unsafe(`drop database if exists ${name} with (force)`);
      await a.end();
    },
  };
}

export interface TestContext {
  config: Config;
  deps: Deps;
  logs: LogCapture;
  close(): Promise<void>;
}

/** A migrated database + deps with a unique queue prefix. `env` overrides configuration. */
export async function createTestContext(env: Record<string, string> = {}): Promise<TestContext> {
  const db = await createTestDatabase();
  const sql = createSql(db.url, { max: 1 });
  await migrate(sql);
  await sql.end();
  const config = loadConfig({
    KASSA_ENV: 'test',
    DATABASE_URL: db.url,
    REDIS_URL: REDIS_URL,
    KASSA_SECRET_KEY: '11'.repeat(32),
    KASSA_QUEUE_PREFIX: `{kassa-test-${randomBase62(8)}}`,
    LOG_LEVEL: 'info',
    PUBLIC_URL: 'http://kassa.test',
    RATE_LIMIT_PER_SECOND: '1000',
    ...env,
  });
  const logs = new LogCapture();
  const deps = createDeps(config, { logger: createLogger({ level: 'debug', destination: logs }) });
  return {
    config,
    deps,
    logs,
    async close() {
      const keys = await deps.redis.keys(`${config.queuePrefix}*`);
      if (keys.length) await deps.redis.del(...keys);
      await deps.close();
      await db.drop();
    },
  };
}

export async function createMerchantWithKey(deps: Deps, opts: { name?: string; scopes?: Scope[] } = {}) {
  const merchant = await deps.merchants.create(deps.sql, { name: opts.name ?? 'Test shop' });
  const { key, secret } = await deps.apiKeys.create(deps.sql, { merchantId: merchant.id, scopes: opts.scopes ?? [...SCOPES] });
  return { merchant, key, secret };
}

/** `app.request` with a bearer key and a JSON body. */
export function req(secret: string | undefined, method: string, body?: unknown, headers: Record<string, string> = {}): RequestInit {
  return {
    method,
    headers: {
      ...(secret ? { authorization: `Bearer ${secret}` } : {}),
      ...(body !== undefined ? { 'content-type': 'application/json' } : {}),
      ...headers,
    },
    ...(body !== undefined ? { body: typeof body === 'string' ? body : JSON.stringify(body) } : {}),
  };
}
