import type { ParseArgsConfig } from 'node:util';
import { config, printResult, UsageError } from './util.ts';
import { createLogger } from '../logger.ts';
import { closeOnSignals, prepareDatabase, startApiServer, startWorkerProcess } from '../server.ts';
import { createDeps } from '../deps.ts';
import { SCOPES, isScope, type Scope } from '../merchants/scopes.ts';
import { merchantToApi } from '../api/routes/merchant.ts';
import { apiKeyToApi } from '../api/routes/api-keys.ts';
import { reconciliationCsv, reconciliationReport } from '../reports/reconciliation.ts';
import { main as devnetMain } from '../chains/devnet/bitcoin/main.ts';
import { writeFileSync } from 'node:fs';

export interface Command {
  options?: ParseArgsConfig['options'];
  positionals?: boolean;
  run(values: Record<string, string | boolean | undefined>, positionals: string[]): Promise<void>;
}

function required(values: Record<string, unknown>, name: string): string {
  const v = values[name];
  if (typeof v !== 'string' || v === '') throw new UsageError(`--${name} is required`);
  return v;
}

function parseScopes(raw: string): Scope[] {
  const scopes = raw.split(',').map((s) => s.trim()).filter(Boolean);
  const bad = scopes.filter((s) => !isScope(s));
  if (bad.length > 0 || scopes.length === 0) {
    throw new UsageError(`--scopes must be a comma-separated list of: ${SCOPES.join(', ')}${bad.length ? ` (unknown: ${bad.join(', ')})` : ''}`);
  }
  return scopes as Scope[];
}

/** Runs `fn` with deps on a migrated database, quietly (warnings only), then closes. */
async function withDeps<T>(fn: (deps: ReturnType<typeof createDeps>) => Promise<T>): Promise<T> {
  const cfg = config();
  const logger = createLogger({ level: 'warn', destination: process.stderr as never });
  await prepareDatabase(cfg, logger);
  const deps = createDeps(cfg, { logger });
  try {
    return await fn(deps);
  } finally {
    await deps.close();
  }
}

export const commands: Record<string, Command> = {
  migrate: {
    options: { json: { type: 'boolean' } },
    async run(values) {
      const cfg = config();
      const applied = await prepareDatabase(cfg, createLogger({ level: 'info', destination: process.stderr as never }));
      printResult(Boolean(values.json), { applied }, applied.length ? `applied ${applied.length} migration(s): ${applied.join(', ')}` : 'database is up to date');
    },
  },

  serve: {
    async run() {
      const cfg = config();
      const server = await startApiServer(cfg);
      closeOnSignals(server, server.deps.logger);
    },
  },

  worker: {
    async run() {
      const cfg = config();
      const workers = await startWorkerProcess(cfg);
      closeOnSignals(workers, workers.deps.logger);
    },
  },

  'merchants create': {
    options: { name: { type: 'string' }, json: { type: 'boolean' } },
    async run(values) {
      const name = required(values, 'name');
      if (name.length > 200) throw new UsageError('--name must be at most 200 characters');
      const result = await withDeps(async (deps) =>
        deps.sql.begin(async (tx) => {
          const merchant = await deps.merchants.create(tx, { name });
          const { key, secret } = await deps.apiKeys.create(tx, { merchantId: merchant.id, name: 'initial key', scopes: [...SCOPES] });
          return { merchant: merchantToApi(merchant), api_key: { ...apiKeyToApi(key), secret } };
        }),
      );
      printResult(
        Boolean(values.json),
        result,
        `merchant ${result.merchant.id} "${result.merchant.name}" created\n` +
          `API key ${result.api_key.id} (scopes: ${result.api_key.scopes.join(', ')})\n` +
          `secret: ${result.api_key.secret}\n` +
          `Store the secret now: it is not shown again.`,
      );
    },
  },

  'api-keys create': {
    options: { merchant: { type: 'string' }, scopes: { type: 'string' }, name: { type: 'string' }, json: { type: 'boolean' } },
    async run(values) {
      const merchantId = required(values, 'merchant');
      const scopes = parseScopes(required(values, 'scopes'));
      const result = await withDeps(async (deps) => {
        await deps.merchants.get(deps.sql, merchantId);
        const { key, secret } = await deps.apiKeys.create(deps.sql, { merchantId, name: (values.name as string) ?? '', scopes });
        return { api_key: { ...apiKeyToApi(key), secret } };
      });
      printResult(
        Boolean(values.json),
        result,
        `API key ${result.api_key.id} for ${merchantId} (scopes: ${scopes.join(', ')})\nsecret: ${result.api_key.secret}\nStore the secret now: it is not shown again.`,
      );
    },
  },

  reconcile: {
    options: { merchant: { type: 'string' }, from: { type: 'string' }, to: { type: 'string' }, csv: { type: 'string' }, json: { type: 'boolean' } },
    async run(values) {
      const merchantId = required(values, 'merchant');
      const from = new Date(required(values, 'from'));
      const to = new Date(required(values, 'to'));
      if (Number.isNaN(from.getTime()) || Number.isNaN(to.getTime()) || !(from < to)) {
        throw new UsageError('--from and --to must be ISO-8601 dates or times with --from before --to');
      }
      const report = await withDeps(async (deps) => {
        await deps.merchants.get(deps.sql, merchantId);
        return reconciliationReport(deps.sql, deps.assets, merchantId, from, to);
      });
      if (typeof values.csv === 'string') writeFileSync(values.csv, reconciliationCsv(report));
      const lines = [
        `Reconciliation ${report.from} – ${report.to}: ${report.invoices.length} invoice(s)`,
        ...report.totals.per_currency.map((c) => `  ${c.currency}: expected ${c.expected}, received ${c.received}, difference ${c.difference}`),
        ...report.totals.per_asset.map((a) => `  ${a.method}: ${a.payments} payment(s), received ${a.received} ${a.asset}, not counted ${a.not_counted}`),
        `  unmatched payments: ${report.unmatched.length}; verification mismatches: ${report.mismatches.length}`,
        ...(typeof values.csv === 'string' ? [`  CSV written to ${values.csv}`] : []),
      ];
      printResult(Boolean(values.json), report, lines.join('\n'));
    },
  },

  'devnet bitcoin': {
    options: { port: { type: 'string' }, host: { type: 'string' }, rpcuser: { type: 'string' }, rpcpassword: { type: 'string' }, seed: { type: 'string' }, premine: { type: 'string' } },
    async run(_values) {
      await devnetMain(process.argv.slice(4));
    },
  },

  'api-keys revoke': {
    options: { merchant: { type: 'string' }, key: { type: 'string' }, json: { type: 'boolean' } },
    async run(values) {
      const merchantId = required(values, 'merchant');
      const keyId = required(values, 'key');
      const key = await withDeps((deps) => deps.apiKeys.revoke(deps.sql, merchantId, keyId));
      printResult(Boolean(values.json), { api_key: apiKeyToApi(key) }, `API key ${key.id} revoked`);
    },
  },
};
