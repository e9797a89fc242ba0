/**
 * Process bootstrapping shared by `kassa serve`, `kassa worker`, the sandbox and tests.
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
import type { WorkerRunner } from './queues/runner.ts';

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
  const fetch = async (req: Request, env: unknown) => {
    inflight++;
    try {
      return await app.fetch(req, env as never);
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

export interface RunningWorkers {
  deps: Deps;
  runner: WorkerRunner;
  close(): Promise<void>;
}

export async function startWorkerProcess(config: Config, opts: { deps?: Deps } = {}): Promise<RunningWorkers> {
  // Loaded here, not at the top: `kassa serve` never loads the worker code.
  const [{ createDeps, redisConnection }, { instrumentWorkers, startMetricsServer }, { buildProcessors }, { startWorkers }] = await Promise.all([
    import('./deps.ts'), import('./metrics/instrument.ts'), import('../workers/processors.ts'), import('./queues/runner.ts'),
  ]);
  const deps = opts.deps ?? createDeps(config);
  await prepareDatabase(config, deps.logger);
  const { processors, start, stop } = buildProcessors(deps);
  const connection = redisConnection(config.redisUrl);
  connection.on('error', () => {});
  const runner = startWorkers({
    connection,
    prefix: config.queuePrefix,
    logger: deps.logger,
    processors,
  });
  instrumentWorkers(deps.metrics, runner.workers);
  await start();
  // Workers serve no HTTP API: with METRICS_PORT set they expose /metrics on their own listener.
  const metricsServer = config.metricsPort === undefined ? null : await startMetricsServer({
    metrics: deps.metrics, host: config.host, port: config.metricsPort, adminToken: config.adminToken, logger: deps.logger,
  });
  deps.logger.info({ queues: processors.map((p) => p.queue), metrics_url: metricsServer?.url ?? null }, 'workers started');
  return {
    deps,
    runner,
    async close() {
      await metricsServer?.close();
      await stop();
      await runner.close();
      connection.disconnect();
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
