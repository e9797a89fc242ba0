/**
 * The API process's bootstrapping, shared by `kassa serve`, the sandbox and tests. The worker
 * process starts in src/worker-process.ts: the API never imports workers/ (docs/architecture.md §3).
 *
 * Start-up order of the API (docs/architecture.md §10): the database is migrated while the API's
 * code loads (both started at once: loading is mostly waiting on files, migrating on the database),
 * on the pool the server then uses, so the first /health finds a connection open. This module
 * imports the rest of Kassa only inside its functions, so that both can start before it is loaded.
 */
import type { AddressInfo } from 'node:net';
import type { ServerType } from '@hono/node-server';
import type { Config } from './config.ts';
import { createSql } from './db/client.ts';
import { prepareDatabase } from './db/prepare.ts';
import type { Deps } from './deps.ts';
import { createLogger, type Logger } from './logger.ts';

export { prepareDatabase };

export interface RunningServer {
  url: string;
  port: number;
  deps: Deps;
  close(): Promise<void>;
}

export async function startApiServer(config: Config, opts: { deps?: Deps } = {}): Promise<RunningServer> {
  const code = Promise.all([import('@hono/node-server'), import('./deps.ts'), import('./api/app.ts')]);
  code.catch(() => {}); // awaited below, after the migrations
  const logger = opts.deps?.logger ?? createLogger({ level: config.logLevel, name: 'kassa' });
  const sql = opts.deps?.sql ?? createSql(config.databaseUrl, { max: config.dbPoolSize });
  try {
    await prepareDatabase(config, logger, { sql });
  } catch (err) {
    if (!opts.deps) await sql.end({ timeout: 5 });
    throw err;
  }
  const [{ serve }, { createDeps }, { createApp }] = await code;
  const deps = opts.deps ?? createDeps(config, { logger, sql });
  const app = createApp(deps);
  // Requests still running when shutdown starts (their client may already be gone) must finish
  // before the database pool closes under them.
  let inflight = 0;
  const fetch = async (req: Request, env: Parameters<typeof app.fetch>[1]) => {
    inflight++;
    try {
      return await app.fetch(req, env);
    } finally {
      inflight--;
    }
  };
  const server: ServerType = await new Promise((resolve) => {
    const s = serve({ fetch, port: config.port, hostname: config.host }, () => resolve(s));
  });
  const port = (server.address() as AddressInfo).port;
  const url = `http://${config.host.includes(':') ? `[${config.host}]` : config.host}:${port}`;
  deps.logger.info({ url, public_url: config.publicUrl }, 'api listening');
  return {
    url,
    port,
    deps,
    async close() {
      await new Promise<void>((resolve) => server.close(() => resolve()));
      for (const deadline = Date.now() + 15_000; inflight > 0 && Date.now() < deadline; ) {
        await new Promise((r) => setTimeout(r, 20));
      }
      if (!opts.deps) await deps.close();
    },
  };
}

/** Closes `target` on SIGTERM/SIGINT, then exits. A second signal exits at once. */
export function closeOnSignals(target: { close(): Promise<void> }, logger: Logger): void {
  let closing = false;
  const onSignal = (signal: string) => {
    if (closing) process.exit(1);
    closing = true;
    logger.info({ signal }, 'shutting down');
    target.close().then(
      () => process.exit(0),
      (err) => {
        logger.error({ err: (err as Error).message }, 'shutdown failed');
        process.exit(1);
      },
    );
  };
  process.once('SIGTERM', () => onSignal('SIGTERM'));
  process.once('SIGINT', () => onSignal('SIGINT'));
}
