/**
 * `kassa serve` and `kassa worker`: the long-running processes (configuration from the environment
 * only). src/worker-process.ts loads the worker code inside startWorkerProcess, so `serve` never loads it.
 */
import type { Command } from './util.ts';
import { config } from './context.ts';
import { closeOnSignals, startApiServer } from '../server.ts';
import { startWorkerProcess } from '../worker-process.ts';

export const commands: Record<string, Command> = {
  serve: {
    async run() {
      const server = await startApiServer(config());
      closeOnSignals(server, server.deps.logger);
    },
  },

  worker: {
    async run() {
      const workers = await startWorkerProcess(config());
      closeOnSignals(workers, workers.deps.logger);
    },
  },
};
