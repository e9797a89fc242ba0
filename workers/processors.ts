/**
 * The set of BullMQ processors a `kassa worker` process runs, plus the repeatable jobs it
 * schedules. Workers are thin: parse the job, call a service, map errors.
 */
import type { Deps } from '../src/deps.ts';
import type { ProcessorSpec } from '../src/queues/runner.ts';

export interface ProcessorSet {
  processors: ProcessorSpec<any>[];
  /** Schedules repeatable jobs / starts loops after the workers are running. */
  start(): Promise<void>;
  /** Stops loops before the workers close. */
  stop(): Promise<void>;
}

export function buildProcessors(_deps: Deps): ProcessorSet {
  return { processors: [], start: async () => {}, stop: async () => {} };
}
