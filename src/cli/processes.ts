/**
 * `kassa serve` and `kassa worker`: the long-running processes (configuration from the environment
 * only). The worker process's code is imported only by `worker`, so `serve` never loads it
 * (start-up time: docs/architecture.md §10).
 */
import type { Command } from './util.ts';
import { config } from './context.ts';
import { closeOnSignals, startApiServer } from '../server.ts';
import { guardUnhandledRejections } from '../process-guards.ts';

export const commands: Record<string, Command> = {
  serve: {
    async run() {
      const server = await startApiServer(config());
      guardUnhandledRejections(server.deps.logger);
      closeOnSignals(server, server.deps.logger);
    },
  },

  worker: {
    async run() {
      const { startWorkerProcess } = await import('../worker-process.ts');
      const workers = await startWorkerProcess(config());
      guardUnhandledRejections(workers.deps.logger);
      closeOnSignals(workers, workers.deps.logger);
    },
  },
};
