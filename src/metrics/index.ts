/**
 * Prometheus metrics (prom-client). One `Registry` per process / Deps graph — never prom-client's
 * global registry — so tests build as many apps as they like and each sees only its own series.
 *
 * Two kinds of series:
 * - **event series**, incremented where things happen in this process (HTTP requests, invoice
 *   transitions, payment detections, webhook attempts, queue jobs). Each process (`kassa serve`,
 *   `kassa worker`) counts its own; Prometheus sums them across instances.
 * - **state series**, computed at scrape time from Postgres/Redis/BullMQ (invoices by status,
 *   payments by chain/asset/status, webhook deliveries by status, chain tip lag, queue depths) and
 *   cached for `cacheMs`, so they are the same whichever process is scraped.
 *
 * Labels are only bounded, non-secret values: chain keys, asset symbols, statuses, queue names,
 * HTTP method, route *pattern* and status. Never ids, URLs, addresses, errors or key material.
 */
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import type { Redis } from 'ioredis';
import type { Sql } from '../db/client.ts';
import type { Config } from '../config.ts';
import type { Queues, QueueName } from '../queues/index.ts';
import { QUEUE_NAMES } from '../queues/index.ts';
import { readChainHealth, readSweeperHealth, sweeperChains } from '../chains/health.ts';
import { INVOICE_STATUSES } from '../invoices/status.ts';
import { formatAmount } from '../money/amount.ts';

/** What the settlement service reports (src/settlement/service.ts, optional `metrics` dependency). */
export interface SettlementObserver {
  /** A payment row was inserted for the first time (seen in the mempool or first seen in a block). */
  paymentDetected(p: { chain: string; asset: string; seenAt: Date; blockTime: Date | null }): void;
  /** An invoice moved `from` → `to` (one call per persisted move). */
  invoiceTransition(from: string, to: string): void;
}

export interface KassaMetrics {
  registry: Registry;
  httpDuration: Histogram<'method' | 'route' | 'status'>;
  invoiceTransitions: Counter<'from' | 'to'>;
  paymentsDetected: Counter<'chain' | 'asset' | 'seen_in'>;
  detectionLatency: Histogram<'chain' | 'asset'>;
  webhookAttempts: Counter<'outcome'>;
  webhookAttemptDuration: Histogram<'outcome'>;
  queueJobs: Counter<'queue' | 'outcome'>;
  queueJobDuration: Histogram<'queue' | 'outcome'>;
  settlement: SettlementObserver;
}

export interface MetricsOptions {
  /** Node.js process metrics (CPU, memory, event loop lag, GC). Default true. */
  defaultMetrics?: boolean;
}

export function createMetrics(opts: MetricsOptions = {}): KassaMetrics {
  const registry = new Registry();
  if (opts.defaultMetrics !== false) collectDefaultMetrics({ register: registry });
  const httpDuration = new Histogram({
    name: 'kassa_http_request_duration_seconds',
    help: 'HTTP request duration by method, route pattern and status.',
    labelNames: ['method', 'route', 'status'] as const,
    buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
    registers: [registry],
  });
  const invoiceTransitions = new Counter({
    name: 'kassa_invoice_transitions_total',
    help: 'Invoice state transitions persisted by this process.',
    labelNames: ['from', 'to'] as const,
    registers: [registry],
  });
  const paymentsDetected = new Counter({
    name: 'kassa_payments_detected_total',
    help: 'On-chain payments to deposit addresses first recorded by this process (seen_in: mempool or block).',
    labelNames: ['chain', 'asset', 'seen_in'] as const,
    registers: [registry],
  });
  const detectionLatency = new Histogram({
    name: 'kassa_payment_detection_latency_seconds',
    help: 'For payments first seen in a block: time between the block timestamp and Kassa recording the payment.',
    labelNames: ['chain', 'asset'] as const,
    buckets: [1, 5, 15, 30, 60, 120, 300, 600, 1800, 3600, 7200],
    registers: [registry],
  });
  const webhookAttempts = new Counter({
    name: 'kassa_webhook_attempts_total',
    help: 'Webhook delivery attempts by outcome (delivered, retry, failed, skipped, error).',
    labelNames: ['outcome'] as const,
    registers: [registry],
  });
  const webhookAttemptDuration = new Histogram({
    name: 'kassa_webhook_attempt_duration_seconds',
    help: 'Duration of one webhook delivery attempt (claim, sign, POST, record) by outcome.',
    labelNames: ['outcome'] as const,
    buckets: [0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
    registers: [registry],
  });
  const queueJobs = new Counter({
    name: 'kassa_queue_jobs_processed_total',
    help: 'BullMQ jobs finished by this process, by queue and outcome (completed, failed).',
    labelNames: ['queue', 'outcome'] as const,
    registers: [registry],
  });
  const queueJobDuration = new Histogram({
    name: 'kassa_queue_job_duration_seconds',
    help: 'BullMQ job processing time by queue and outcome.',
    labelNames: ['queue', 'outcome'] as const,
    buckets: [0.01, 0.05, 0.1, 0.5, 1, 5, 15, 60],
    registers: [registry],
  });
  const settlement: SettlementObserver = {
    paymentDetected(p) {
      paymentsDetected.inc({ chain: p.chain, asset: p.asset, seen_in: p.blockTime ? 'block' : 'mempool' });
      // Block timestamps may be a little in the future (Bitcoin allows ~2 h): clamp at 0.
      if (p.blockTime) detectionLatency.observe({ chain: p.chain, asset: p.asset }, Math.max(0, (p.seenAt.getTime() - p.blockTime.getTime()) / 1000));
    },
    invoiceTransition(from, to) {
      invoiceTransitions.inc({ from, to });
    },
  };
  return {
    registry, httpDuration, invoiceTransitions, paymentsDetected, detectionLatency,
    webhookAttempts, webhookAttemptDuration, queueJobs, queueJobDuration, settlement,
  };
}

const perDeps = new WeakMap<object, KassaMetrics>();

/**
 * The metrics of one Deps graph: `deps.metrics` when the process created it there, otherwise one
 * instance per `deps` object (created on first use). Not a module singleton: two Deps graphs in one
 * process (tests) get two registries.
 */
export function metricsFor(deps: object): KassaMetrics {
  const own = (deps as { metrics?: KassaMetrics }).metrics;
  if (own) return own;
  let m = perDeps.get(deps);
  if (!m) {
    m = createMetrics();
    perDeps.set(deps, m);
  }
  return m;
}

export interface StateSources {
  sql: Sql;
  redis: Redis;
  queues: Queues;
  config: Pick<Config, 'queuePrefix' | 'chains'>;
}

interface Snapshot {
  invoices: { status: string; n: number }[];
  payments: { chain: string; asset: string; status: string; n: number }[];
  webhooks: { status: string; n: number }[] | null;
  chains: { chain: string; up: number; tip: number | null; lag: number | null; age: number | null }[];
  queues: { queue: string; counts: Record<string, number> }[];
  sweepers: { chain: string; balance: bigint; low: number; dust: number; age: number }[];
  errors: Set<string>;
}

const JOB_STATES = ['waiting', 'active', 'delayed', 'prioritized', 'waiting-children', 'paused', 'failed', 'completed'] as const;

/** Seconds after which a chain watcher's report counts as stale (same as /health). */
const CHAIN_STALE_MS = 60_000;

async function loadSnapshot(src: StateSources): Promise<Snapshot> {
  const errors = new Set<string>();
  const attempt = async <T>(source: string, f: () => Promise<T>, fallback: T): Promise<T> => {
    try {
      return await f();
    } catch {
      errors.add(source);
      return fallback;
    }
  };
  const [invoices, payments, webhooks, chains, queues, sweepers] = await Promise.all([
    attempt('postgres', async () =>
      (await src.sql<{ status: string; n: string }[]>`select status, count(*) as n from invoices group by status`).map((r) => ({ status: r.status, n: Number(r.n) })), []),
    attempt('postgres', async () =>
      (await src.sql<{ chain: string; asset: string; status: string; n: string }[]>`
        select chain, asset, status, count(*) as n from payments group by chain, asset, status`).map((r) => ({ ...r, n: Number(r.n) })), []),
    attempt('postgres', async () => {
      // The webhook tables arrive with migration 0004; older databases simply have no such series.
      const [t] = await src.sql<{ t: string | null }[]>`select to_regclass('webhook_deliveries')::text as t`;
      if (!t?.t) return null;
      return (await src.sql<{ status: string; n: string }[]>`select status, count(*) as n from webhook_deliveries group by status`).map((r) => ({ status: r.status, n: Number(r.n) }));
    }, null),
    attempt('redis', async () =>
      Promise.all(Object.keys(src.config.chains).map(async (chain) => {
        const h = await readChainHealth(src.redis, src.config.queuePrefix, chain);
        if (!h) return { chain, up: 0, tip: null, lag: null, age: null };
        const age = (Date.now() - Date.parse(h.updated_at)) / 1000;
        return { chain, up: h.state === 'ok' && age * 1000 <= CHAIN_STALE_MS ? 1 : 0, tip: h.tip_height, lag: h.lag_blocks, age };
      })), []),
    attempt('redis', async () =>
      Promise.all((Object.values(QUEUE_NAMES) as QueueName[]).map(async (queue) => ({
        queue, counts: await src.queues[queue].getJobCounts(...JOB_STATES),
      }))), []),
    attempt('redis', async () =>
      (await Promise.all(sweeperChains(src.config.chains).map(async (chain) => {
        const h = await readSweeperHealth(src.redis, src.config.queuePrefix, chain);
        if (!h) return null;
        return { chain, balance: BigInt(h.balance), low: h.low ? 1 : 0, dust: h.dust_forwarders, age: (Date.now() - Date.parse(h.updated_at)) / 1000 };
      }))).filter((x) => x !== null), []),
  ]);
  return { invoices, payments, webhooks, chains, queues, sweepers, errors };
}

/**
 * Registers the scrape-time state series on `metrics.registry`. One snapshot (a few grouped
 * queries, one Redis GET per chain, one getJobCounts per queue) serves every series of a scrape and
 * is reused for `cacheMs` (default 5 s), so frequent or concurrent scrapes cost nothing extra.
 */
export function registerStateMetrics(metrics: KassaMetrics, src: StateSources, opts: { cacheMs?: number } = {}): void {
  if (metrics.registry.getSingleMetric('kassa_invoices')) return; // createApp called twice with one Deps
  const cacheMs = opts.cacheMs ?? 5000;
  let cached: { at: number; value: Promise<Snapshot> } | null = null;
  const snapshot = (): Promise<Snapshot> => {
    if (!cached || Date.now() - cached.at > cacheMs) cached = { at: Date.now(), value: loadSnapshot(src) };
    return cached.value;
  };
  const registers = [metrics.registry];

  new Gauge({
    name: 'kassa_invoices', help: 'Invoices by current status (all time, from the database).', labelNames: ['status'] as const, registers,
    async collect() {
      const s = await snapshot();
      this.reset();
      for (const status of INVOICE_STATUSES) this.set({ status }, 0);
      for (const r of s.invoices) this.set({ status: r.status }, r.n);
    },
  });
  new Gauge({
    name: 'kassa_payments', help: 'On-chain payments by chain, asset and status (from the database).', labelNames: ['chain', 'asset', 'status'] as const, registers,
    async collect() {
      const s = await snapshot();
      this.reset();
      for (const r of s.payments) this.set({ chain: r.chain, asset: r.asset, status: r.status }, r.n);
    },
  });
  new Gauge({
    name: 'kassa_webhook_deliveries', help: 'Webhook deliveries by status: pending (incl. retrying), delivered, failed (from the database).', labelNames: ['status'] as const, registers,
    async collect() {
      const s = await snapshot();
      this.reset();
      if (!s.webhooks) return;
      for (const status of ['pending', 'delivered', 'failed']) this.set({ status }, 0);
      for (const r of s.webhooks) this.set({ status: r.status }, r.n);
    },
  });
  new Gauge({
    name: 'kassa_chain_up', help: '1 when the chain watcher reported ok within the last 60 s, else 0.', labelNames: ['chain'] as const, registers,
    async collect() {
      const s = await snapshot();
      this.reset();
      for (const c of s.chains) this.set({ chain: c.chain }, c.up);
    },
  });
  new Gauge({
    name: 'kassa_chain_tip_lag_blocks', help: "Blocks between the node's tip and the last block Kassa processed.", labelNames: ['chain'] as const, registers,
    async collect() {
      const s = await snapshot();
      this.reset();
      for (const c of s.chains) if (c.lag !== null) this.set({ chain: c.chain }, c.lag);
    },
  });
  new Gauge({
    name: 'kassa_chain_tip_height', help: "The node's tip height as last reported by the watcher.", labelNames: ['chain'] as const, registers,
    async collect() {
      const s = await snapshot();
      this.reset();
      for (const c of s.chains) if (c.tip !== null) this.set({ chain: c.chain }, c.tip);
    },
  });
  new Gauge({
    name: 'kassa_chain_health_age_seconds', help: "Seconds since the chain watcher's last report.", labelNames: ['chain'] as const, registers,
    async collect() {
      const s = await snapshot();
      this.reset();
      for (const c of s.chains) if (c.age !== null) this.set({ chain: c.chain }, c.age);
    },
  });
  new Gauge({
    name: 'kassa_sweeper_balance', help: "The sweeper key's native balance (ETH, POL; from the worker's last sweep run). A display value: the low-balance test is made on base units.", labelNames: ['chain'] as const, registers,
    async collect() {
      const s = await snapshot();
      this.reset();
      for (const w of s.sweepers) this.set({ chain: w.chain }, Number(formatAmount(w.balance, 18)));
    },
  });
  new Gauge({
    name: 'kassa_sweeper_balance_low', help: "1 when the sweeper key's native balance is below the chain's sweep.low_balance, else 0.", labelNames: ['chain'] as const, registers,
    async collect() {
      const s = await snapshot();
      this.reset();
      for (const w of s.sweepers) this.set({ chain: w.chain }, w.low);
    },
  });
  new Gauge({
    name: 'kassa_sweeper_dust_forwarders', help: 'Forwarders the sweeper leaves alone because they hold less than their sweep would cost.', labelNames: ['chain'] as const, registers,
    async collect() {
      const s = await snapshot();
      this.reset();
      for (const w of s.sweepers) this.set({ chain: w.chain }, w.dust);
    },
  });
  new Gauge({
    name: 'kassa_sweeper_report_age_seconds', help: "Seconds since the worker's last sweep run reported.", labelNames: ['chain'] as const, registers,
    async collect() {
      const s = await snapshot();
      this.reset();
      for (const w of s.sweepers) this.set({ chain: w.chain }, w.age);
    },
  });
  new Gauge({
    name: 'kassa_queue_jobs', help: 'BullMQ jobs per queue and state (failed = failed jobs still retained).', labelNames: ['queue', 'state'] as const, registers,
    async collect() {
      const s = await snapshot();
      this.reset();
      for (const q of s.queues) for (const state of JOB_STATES) this.set({ queue: q.queue, state }, q.counts[state] ?? 0);
    },
  });
  new Gauge({
    name: 'kassa_metrics_source_up', help: '1 when the last scrape could read the source (postgres, redis), else 0.', labelNames: ['source'] as const, registers,
    async collect() {
      const s = await snapshot();
      this.reset();
      for (const source of ['postgres', 'redis']) this.set({ source }, s.errors.has(source) ? 0 : 1);
    },
  });
}
