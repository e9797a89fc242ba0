/**
 * What a `kassa worker` process runs:
 * - one chain-sync engine loop per configured chain (src/chains/sync/engine.ts; single-flight across processes through a
 *   renewed lease row in Postgres: a second worker process stands by and takes over if the first dies);
 * - BullMQ processors: settlement recomputes, maintenance (deadline scan, address-pool refill);
 * - the repeatable jobs that feed them (job schedulers are upserted, so every process may do it).
 * Workers are thin: parse the job, call a service, map errors.
 */
import type { Job } from 'bullmq';
import type { Deps } from '../src/deps.ts';
import type { Logger } from '../src/logger.ts';
import type { ProcessorSpec } from '../src/queues/runner.ts';
import { QUEUE_NAMES } from '../src/queues/index.ts';
import { enqueueDueInvoices, recomputeInvoice } from '../src/settlement/deadlines.ts';
import { refillAddressPools } from '../src/chains/bitcoin/address-pool.ts';
import { createChainAdapter, createChainSweeper } from '../src/chains/registry.ts';
import { createChainSync } from '../src/chains/sync/engine.ts';
import type { Sweeper } from '../src/chains/evm/sweeper.ts';
import { reportSweeperHealth } from '../src/chains/health.ts';
import { reverifyPayments } from '../src/settlement/reverify.ts';
import { pruneTipObservations } from '../src/settlement/tip-records.ts';
import { buildWebhookProcessors } from './webhooks.ts';
import { refundServiceFor } from '../src/refunds/service.ts';
import { payoutServiceFor } from '../src/payouts/service.ts';

export interface ProcessorSet {
  processors: ProcessorSpec<any>[];
  /** Schedules repeatable jobs and starts the chain loops after the workers are running. */
  start(): Promise<void>;
  /** Stops the chain loops before the workers close. */
  stop(): Promise<void>;
}

export interface ProcessorOptions {
  /** Seconds between deadline scans (default 5). */
  deadlineEverySeconds?: number;
  /** Run chain watchers in this process (default true). */
  watchers?: boolean;
  /** How often the repeatable jobs are re-declared, so they come back after a Redis flush (default 30 s). */
  watchdogMs?: number;
}

/**
 * One sweep run on `chain`, then the sweeper key's balance and the dust count reported for /health
 * and /metrics (src/chains/health.ts). A failed run is reported too (as the check's error).
 */
export async function runSweeper(deps: Deps, chain: string, sweeper: Sweeper, log: Logger): Promise<Record<string, unknown>> {
  let error: string | null = null;
  let out: Record<string, unknown> = {};
  try {
    const run = await sweeper.sweepRun(50);
    out = { swept: run.swept.length, transactions: run.transactions, dust: run.dust.length };
  } catch (err) {
    error = err instanceof Error ? err.message.split('\n')[0]! : String(err);
    log.warn({ chain, err: error }, 'sweep run failed');
  }
  try {
    const key = await sweeper.keyState();
    if (key.low) log.warn({ chain, address: key.address, balance: key.balance.toString(), low_balance: key.lowBalance.toString() }, 'the sweeper key is low on gas');
    await reportSweeperHealth(deps.redis, deps.config.queuePrefix, chain, {
      address: key.address, balance: key.balance.toString(), low_balance: key.lowBalance.toString(), low: key.low,
      dust_forwarders: sweeper.dustPending(), error,
    });
    return { ...out, key_balance: key.balance.toString(), low: key.low };
  } catch (err) {
    log.warn({ chain, err: err instanceof Error ? err.message.split('\n')[0] : String(err) }, 'could not read the sweeper key balance');
    return out;
  }
}

export function buildProcessors(deps: Deps, opts: ProcessorOptions = {}): ProcessorSet {
  const abort = new AbortController();
  const loops: Promise<void>[] = [];
  // Sweepers exist only for chains whose config has a gas-only sweeper key (src/chains/registry.ts).
  const sweepers = new Map<string, Sweeper>();
  for (const [chain, cfg] of Object.entries(deps.config.chains)) {
    const sweeper = createChainSweeper(chain, cfg, { sql: deps.sql, logger: deps.logger });
    if (sweeper) sweepers.set(chain, sweeper);
  }

  // One refund service for the process, so its EVM clients (and their connections) are reused by
  // every 15-second tracking pass instead of being rebuilt for each.
  const refunds = refundServiceFor(deps);
  const payouts = payoutServiceFor(deps);

  const processors: ProcessorSpec<any>[] = [
    {
      queue: QUEUE_NAMES.settlement,
      concurrency: 4,
      process: async (payload: { invoiceId: string }) => recomputeInvoice(deps.sql, deps.settlement, payload.invoiceId),
    },
    {
      queue: QUEUE_NAMES.maintenance,
      process: async (_payload: Record<string, never>, job: Job, log) => {
        if (job.name === 'scan-deadlines') return enqueueDueInvoices(deps.sql, deps.queues);
        if (job.name === 'refill-address-pools') return refillAddressPools(deps.sql, { minFree: 50, batch: 200, logger: log });
        if (job.name === 'reverify-payments') {
          const vdeps = { sql: deps.sql, logger: log, chains: deps.config.chains, publicUrl: deps.config.publicUrl };
          // First (a node that is down fails the re-verification below, not this): the tip records
          // no on-time decision can still use (src/settlement/tip-records.ts).
          const pruned = await pruneTipObservations(deps.sql);
          const results: Record<string, unknown> = { pruned_tip_records: pruned };
          for (const [chain, cfg] of Object.entries(deps.config.chains)) {
            results[chain] = await reverifyPayments(vdeps, chain, createChainAdapter(chain, cfg, { sql: deps.sql, logger: log }));
          }
          return results;
        }
        if (job.name === 'track-refunds') {
          const results: Record<string, unknown> = {};
          for (const chain of Object.keys(deps.config.chains)) results[chain] = await refunds.track(chain);
          return results;
        }
        if (job.name === 'track-payouts') {
          const results: Record<string, unknown> = {};
          for (const chain of Object.keys(deps.config.chains)) results[chain] = await payouts.track(chain);
          return results;
        }
        if (job.name === 'sweep-settled') {
          const results: Record<string, unknown> = {};
          for (const [chain, sweeper] of sweepers) results[chain] = await runSweeper(deps, chain, sweeper, log);
          return results;
        }
        log.warn({ name: job.name }, 'unknown maintenance job');
        return null;
      },
    },
  ];

  const webhooks = buildWebhookProcessors(deps);
  processors.push(...webhooks.processors);

  // Job schedulers live in Redis: a flushed or replaced Redis loses them, so they are re-declared
  // every `watchdogMs` (an upsert is a no-op when they exist), not only at start.
  async function declareSchedulers(): Promise<void> {
    const every = (opts.deadlineEverySeconds ?? 5) * 1000;
    await deps.queues.maintenance.upsertJobScheduler('scan-deadlines', { every }, { name: 'scan-deadlines', data: {} });
    await deps.queues.maintenance.upsertJobScheduler('refill-address-pools', { every: 30_000 }, { name: 'refill-address-pools', data: {} });
    await deps.queues.maintenance.upsertJobScheduler('reverify-payments', { every: 5 * 60_000 }, { name: 'reverify-payments', data: {} });
    await deps.queues.maintenance.upsertJobScheduler('track-refunds', { every: 15_000 }, { name: 'track-refunds', data: {} });
    await deps.queues.maintenance.upsertJobScheduler('track-payouts', { every: 15_000 }, { name: 'track-payouts', data: {} });
    if (sweepers.size > 0) {
      await deps.queues.maintenance.upsertJobScheduler('sweep-settled', { every: 60_000 }, { name: 'sweep-settled', data: {} });
    }
  }
  let watchdog: NodeJS.Timeout | undefined;

  return {
    processors,
    async start() {
      await webhooks.start();
      await declareSchedulers();
      watchdog = setInterval(() => {
        declareSchedulers().catch((err: Error) => deps.logger.warn({ err: err.message }, 'could not declare the maintenance jobs'));
      }, opts.watchdogMs ?? 30_000);
      watchdog.unref();
      if (opts.watchers === false) return;
      // One chain-sync engine per configured chain, whatever its family (docs/architecture.md §5).
      for (const [chain, cfg] of Object.entries(deps.config.chains)) {
        const sync = createChainSync(createChainAdapter(chain, cfg, { sql: deps.sql, logger: deps.logger }), {
          sql: deps.sql, settlement: deps.settlement, redis: deps.redis, queuePrefix: deps.config.queuePrefix, logger: deps.logger,
        });
        loops.push(sync.run(abort.signal).catch((err: Error) => deps.logger.fatal({ chain, err: err.message }, 'chain watcher stopped')));
      }
    },
    async stop() {
      if (watchdog) clearInterval(watchdog);
      watchdog = undefined;
      await webhooks.stop();
      abort.abort();
      await Promise.all(loops);
    },
  };
}
