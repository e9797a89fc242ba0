/**
 * The worker process's bootstrapping (`kassa worker`, the sandbox, tests): the BullMQ processors
 * of workers/ behind src/queues/runner.ts, and /metrics on its own listener when METRICS_PORT is
 * set. Apart from src/server.ts so the API process never imports workers/ (docs/architecture.md §3).
 */
import type { Config } from './config.ts';
import { prepareDatabase } from './db/prepare.ts';
import { createDeps, redisConnection, type Deps } from './deps.ts';
import type { WorkerRunner } from './queues/runner.ts';
import { instrumentWorkers, startMetricsServer } from './metrics/instrument.ts';

export interface RunningWorkers {
  deps: Deps;
  runner: WorkerRunner;
  close(): Promise<void>;
}

export async function startWorkerProcess(config: Config, opts: { deps?: Deps } = {}): Promise<RunningWorkers> {
  const deps = opts.deps ?? createDeps(config);
  await prepareDatabase(config, deps.logger);
  // Loaded here, not at the top: `kassa serve` never loads the worker code.
  const [{ buildProcessors }, { startWorkers }] = await Promise.all([import('../workers/processors.ts'), import('./queues/runner.ts')]);
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
