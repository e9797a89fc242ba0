/**
 * createDeps(config) builds everything a process needs, with dependencies passed in (no module
 * singletons), so tests build the same graph against their own database and queue prefix.
 */
import { Redis } from 'ioredis';
import type { Config } from './config.ts';
import { createSql, type Sql } from './db/client.ts';
import { createLogger, type Logger } from './logger.ts';
import { createQueues, type Queues } from './queues/index.ts';
import { createAssetRegistry, type AssetRegistry } from './money/assets.ts';
import { createMerchantService, type MerchantService } from './merchants/service.ts';
import { createApiKeyService, type ApiKeyService } from './merchants/api-keys.ts';
import { ratesFromConfig, type RateService } from './rates/index.ts';
import { createSettlementService, type SettlementService } from './settlement/service.ts';
import { createInvoiceService, type InvoiceService } from './invoices/service.ts';
import { createMetrics, type KassaMetrics } from './metrics/index.ts';

export interface Deps {
  config: Config;
  logger: Logger;
  sql: Sql;
  /** General-purpose Redis connection (rate limits, pub/sub publishing, health). */
  redis: Redis;
  queues: Queues;
  assets: AssetRegistry;
  merchants: MerchantService;
  apiKeys: ApiKeyService;
  rates: RateService;
  settlement: SettlementService;
  invoices: InvoiceService;
  /** This process's Prometheus registry and instruments (no global registry). */
  metrics: KassaMetrics;
  close(): Promise<void>;
}

export interface DepsOverrides {
  logger?: Logger;
  /** The database pool to use (and close with the rest) instead of a new one. */
  sql?: Sql;
  rates?: RateService;
}

export function redisConnection(url: string): Redis {
  // maxRetriesPerRequest: null is required by BullMQ workers and harmless elsewhere.
  return new Redis(url, { maxRetriesPerRequest: null, enableOfflineQueue: true, lazyConnect: false });
}

export function createDeps(config: Config, opts: DepsOverrides = {}): Deps {
  const logger = opts.logger ?? createLogger({ level: config.logLevel, name: 'kassa' });
  const sql = opts.sql ?? createSql(config.databaseUrl, { max: config.dbPoolSize });
  const redis = redisConnection(config.redisUrl);
  redis.on('error', (err) => logger.warn({ err: err.message }, 'redis connection error'));
  const queueConnection = redisConnection(config.redisUrl);
  queueConnection.on('error', () => {});
  const queues = createQueues(queueConnection, config.queuePrefix);
  let closed = false;
  const assets = createAssetRegistry(config.chains);
  const rates = opts.rates ?? ratesFromConfig(config.rates, logger);
  const metrics = createMetrics();
  const settlement = createSettlementService({
    chains: config.chains, assets, logger, redis, queuePrefix: config.queuePrefix, publicUrl: config.publicUrl,
    metrics: metrics.settlement,
  });
  const invoices = createInvoiceService({
    sql, chains: config.chains, assets, rates, settlement,
    publicUrl: config.publicUrl, logger,
  });
  return {
    config,
    logger,
    sql,
    redis,
    queues,
    assets,
    merchants: createMerchantService(),
    apiKeys: createApiKeyService(),
    rates,
    settlement,
    invoices,
    metrics,
    async close() {
      if (closed) return;
      closed = true;
      await queues.close().catch(() => {});
      queueConnection.disconnect();
      redis.disconnect();
      await sql.end({ timeout: 5 });
    },
  };
}
