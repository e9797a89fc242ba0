/**
 * Administration commands: migrate, merchants create|list, api-keys create|list|revoke, reconcile.
 * They follow the running sandbox and say which database they use (./context.ts). Commands that
 * only read (lists, reconcile) or change existing rows (revoke) never create or migrate a database.
 *
 * Only what these commands need is imported (no API server, Redis, queues or chain clients).
 */
import { writeFileSync } from 'node:fs';
import { printResult, required, limitOf, UsageError, type Command } from './util.ts';
import { announce, cliSettings, withDb } from './context.ts';
import { createLogger } from '../logger.ts';
import { prepareDatabase } from '../db/prepare.ts';
import { SCOPES, isScope, type Scope } from '../merchants/scopes.ts';
import { createMerchantService, merchantFromRow, type Merchant, type MerchantRow } from '../merchants/service.ts';
import { createApiKeyService, type ApiKey } from '../merchants/api-keys.ts';
import { createAssetRegistry } from '../money/assets.ts';
import { formatAmount } from '../money/amount.ts';
import { reconciliationCsv, reconciliationReport } from '../reports/reconciliation.ts';

export type { Command } from './util.ts';

/** The API's merchant object (GET /v1/merchant); test/cli checks that both agree. */
export function merchantJson(m: Merchant) {
  return {
    id: m.id,
    object: 'merchant' as const,
    name: m.name,
    default_expiry_seconds: m.defaultExpirySeconds,
    monitoring_window_seconds: m.monitoringWindowSeconds,
    payment_tolerance_percent: formatAmount(BigInt(m.paymentToleranceBps), 2),
    default_speed_policy: m.defaultSpeedPolicy,
    created_at: m.createdAt.toISOString(),
  };
}

/** The API's api_key object (GET /v1/api_keys); test/cli checks that both agree. */
export function apiKeyJson(k: ApiKey) {
  return {
    id: k.id,
    object: 'api_key' as const,
    name: k.name,
    prefix: k.prefix,
    scopes: k.scopes,
    created_at: k.createdAt.toISOString(),
    last_used_at: k.lastUsedAt ? k.lastUsedAt.toISOString() : null,
    revoked_at: k.revokedAt ? k.revokedAt.toISOString() : null,
  };
}

function parseScopes(raw: string): Scope[] {
  const scopes = raw.split(',').map((s) => s.trim()).filter(Boolean);
  const bad = scopes.filter((s) => !isScope(s));
  if (bad.length > 0 || scopes.length === 0) {
    throw new UsageError(`--scopes must be a comma-separated list of: ${SCOPES.join(', ')}${bad.length ? ` (unknown: ${bad.join(', ')})` : ''}`);
  }
  return scopes as Scope[];
}

/** Fixed-width columns for the human output of lists. */
function table(rows: string[][]): string {
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => (r[i] ?? '').length)));
  return rows.map((r) => r.map((c, i) => (i === r.length - 1 ? c : c.padEnd(widths[i]!))).join('  ')).join('\n');
}

const merchants = createMerchantService();
const apiKeys = createApiKeyService();

export const commands: Record<string, Command> = {
  migrate: {
    options: { json: { type: 'boolean' } },
    async run(values) {
      const settings = cliSettings();
      announce(settings);
      const applied = await prepareDatabase(settings.config, createLogger({ level: 'info', destination: process.stderr }));
      printResult(Boolean(values.json), { applied }, applied.length ? `applied ${applied.length} migration(s): ${applied.join(', ')}` : 'database is up to date');
    },
  },

  'merchants create': {
    options: { name: { type: 'string' }, json: { type: 'boolean' } },
    async run(values) {
      const name = required(values, 'name');
      if (name.length > 200) throw new UsageError('--name must be at most 200 characters');
      const settings = cliSettings();
      announce(settings);
      const result = await withDb(settings, 'write', ({ sql }) =>
        sql.begin(async (tx) => {
          const merchant = await merchants.create(tx, { name });
          const { key, secret } = await apiKeys.create(tx, { merchantId: merchant.id, name: 'initial key', scopes: [...SCOPES] });
          return { merchant: merchantJson(merchant), api_key: { ...apiKeyJson(key), secret } };
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

  'merchants list': {
    options: { limit: { type: 'string' }, json: { type: 'boolean' } },
    async run(values) {
      const limit = limitOf(values);
      const settings = cliSettings();
      announce(settings);
      const rows = await withDb(settings, 'read', ({ sql }) => sql<MerchantRow[]>`select * from merchants order by seq desc limit ${limit}`);
      const data = rows.map((r) => merchantJson(merchantFromRow(r)));
      printResult(
        Boolean(values.json),
        { object: 'list', data },
        data.length === 0 ? 'no merchants (create one with: kassa merchants create --name <name>)' : table([['ID', 'NAME', 'CREATED'], ...data.map((m) => [m.id, m.name, m.created_at])]),
      );
    },
  },

  'api-keys create': {
    options: { merchant: { type: 'string' }, scopes: { type: 'string' }, name: { type: 'string' }, json: { type: 'boolean' } },
    async run(values) {
      const merchantId = required(values, 'merchant');
      const scopes = parseScopes(required(values, 'scopes'));
      const settings = cliSettings();
      announce(settings);
      const result = await withDb(settings, 'write', async ({ sql }) => {
        await merchants.get(sql, merchantId);
        const { key, secret } = await apiKeys.create(sql, { merchantId, name: (values.name as string) ?? '', scopes });
        return { api_key: { ...apiKeyJson(key), secret } };
      });
      printResult(
        Boolean(values.json),
        result,
        `API key ${result.api_key.id} for ${merchantId} (scopes: ${scopes.join(', ')})\nsecret: ${result.api_key.secret}\nStore the secret now: it is not shown again.`,
      );
    },
  },

  'api-keys list': {
    options: { merchant: { type: 'string' }, limit: { type: 'string' }, json: { type: 'boolean' } },
    async run(values) {
      const merchantId = required(values, 'merchant');
      const limit = limitOf(values);
      const settings = cliSettings();
      announce(settings);
      const page = await withDb(settings, 'read', async ({ sql }) => {
        await merchants.get(sql, merchantId);
        return apiKeys.list(sql, merchantId, { limit });
      });
      const data = page.data.map(apiKeyJson);
      printResult(
        Boolean(values.json),
        { object: 'list', data, has_more: page.hasMore },
        data.length === 0
          ? `no API keys for ${merchantId}`
          : table([
              ['ID', 'PREFIX', 'NAME', 'SCOPES', 'STATUS', 'LAST USED'],
              ...data.map((k) => [k.id, k.prefix, k.name || '-', k.scopes.join(','), k.revoked_at ? `revoked ${k.revoked_at}` : 'active', k.last_used_at ?? 'never']),
            ]) + (page.hasMore ? `\n(more: --limit ${Math.min(limit * 2, 1000)})` : ''),
      );
    },
  },

  'api-keys revoke': {
    options: { merchant: { type: 'string' }, key: { type: 'string' }, json: { type: 'boolean' } },
    async run(values) {
      const merchantId = required(values, 'merchant');
      const keyId = required(values, 'key');
      const settings = cliSettings();
      announce(settings);
      const key = await withDb(settings, 'read', ({ sql }) => apiKeys.revoke(sql, merchantId, keyId));
      printResult(Boolean(values.json), { api_key: apiKeyJson(key) }, `API key ${key.id} revoked`);
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
      const settings = cliSettings();
      announce(settings);
      const report = await withDb(settings, 'read', async ({ sql, config }) => {
        await merchants.get(sql, merchantId);
        return reconciliationReport(sql, createAssetRegistry(config.chains), merchantId, from, to);
      });
      if (typeof values.csv === 'string') writeFileSync(values.csv, reconciliationCsv(report));
      const lines = [
        `Reconciliation ${report.from} – ${report.to}: ${report.invoices.length} invoice(s)`,
        ...report.totals.per_currency.map((c) => `  ${c.currency}: expected ${c.expected}, received ${c.received}, difference ${c.difference}${/^[0.]+$/.test(c.refunded) ? '' : `, refunded ${c.refunded}, net received ${c.net_received}`}`),
        ...report.totals.per_asset.map((a) => `  ${a.method}: ${a.payments} payment(s), received ${a.received} ${a.asset}, not counted ${a.not_counted}`),
        `  unmatched payments: ${report.unmatched.length}; verification mismatches: ${report.mismatches.length}`,
        ...(typeof values.csv === 'string' ? [`  CSV written to ${values.csv}`] : []),
      ];
      printResult(Boolean(values.json), report, lines.join('\n'));
    },
  },
};
