/**
 * `kassa users create --merchant <id> --email <e-mail> --role <owner|developer|finance|viewer>`:
 * creates a dashboard user and prints a one-time setup link (valid 24 h) where they set a password.
 * `kassa users setup-link --merchant <id> --user <usr_…>`: a new link (lost link, password reset).
 */
import { config, printResult, UsageError } from './util.ts';
import type { Command } from './commands.ts';
import { createLogger } from '../logger.ts';
import { prepareDatabase } from '../server.ts';
import { createDeps, type Deps } from '../deps.ts';
import { createDashboardAuth } from '../dashboard/auth.ts';
import { isRole, ROLES } from '../dashboard/permissions.ts';

function required(values: Record<string, unknown>, name: string): string {
  const v = values[name];
  if (typeof v !== 'string' || v === '') throw new UsageError(`--${name} is required`);
  return v;
}

async function withDeps<T>(fn: (deps: Deps) => Promise<T>): Promise<T> {
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

export const userCommands: Record<string, Command> = {
  'users create': {
    options: { merchant: { type: 'string' }, email: { type: 'string' }, role: { type: 'string' }, json: { type: 'boolean' } },
    async run(values) {
      const merchantId = required(values, 'merchant');
      const email = required(values, 'email');
      const role = required(values, 'role');
      if (!isRole(role)) throw new UsageError(`--role must be one of: ${ROLES.join(', ')}`);
      const r = await withDeps(async (deps) => {
        await deps.merchants.get(deps.sql, merchantId);
        return createDashboardAuth({ sql: deps.sql, config: deps.config, logger: deps.logger }).createUser(merchantId, { email, role, createdBy: 'cli' });
      });
      printResult(
        Boolean(values.json),
        { user: { id: r.user.id, object: 'user', merchant_id: r.user.merchantId, email: r.user.email, role: r.user.role }, setup_url: r.setupUrl, expires_at: r.expiresAt.toISOString() },
        `user ${r.user.id} <${r.user.email}> (${r.user.role}) created for ${merchantId}\n` +
          `setup link (one use, expires ${r.expiresAt.toISOString()}):\n${r.setupUrl}`,
      );
    },
  },

  'users setup-link': {
    options: { merchant: { type: 'string' }, user: { type: 'string' }, json: { type: 'boolean' } },
    async run(values) {
      const merchantId = required(values, 'merchant');
      const userId = required(values, 'user');
      const r = await withDeps((deps) =>
        createDashboardAuth({ sql: deps.sql, config: deps.config, logger: deps.logger }).reissueSetupLink(merchantId, userId, 'cli', null),
      );
      printResult(
        Boolean(values.json),
        { user: { id: r.user.id, object: 'user', email: r.user.email, role: r.user.role }, setup_url: r.setupUrl, expires_at: r.expiresAt.toISOString() },
        `setup link for ${r.user.email} (one use, expires ${r.expiresAt.toISOString()}):\n${r.setupUrl}`,
      );
    },
  },
};
