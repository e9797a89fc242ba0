/**
 * `kassa users create --merchant <id> --email <e-mail> --role <owner|developer|finance|viewer>`:
 * creates a dashboard user and prints a one-time setup link (valid 24 h) where they set a password.
 * `kassa users setup-link --merchant <id> --user <usr_…>`: a new link (lost link, password reset).
 * `kassa users list --merchant <id>`: the merchant's dashboard users (never password or 2FA secrets).
 */
import { limitOf, printResult, required, UsageError, type Command } from './util.ts';
import { announce, cliSettings, withDb } from './context.ts';
import { createMerchantService } from '../merchants/service.ts';
import { createDashboardAuth } from '../dashboard/auth.ts';
import { isRole, ROLES } from '../dashboard/permissions.ts';

const merchants = createMerchantService();

interface UserRow {
  id: string;
  email: string;
  role: string;
  has_password: boolean;
  totp_enabled_at: Date | null;
  disabled_at: Date | null;
  last_login_at: Date | null;
  created_at: Date;
}

export const commands: Record<string, Command> = {
  'users create': {
    options: { merchant: { type: 'string' }, email: { type: 'string' }, role: { type: 'string' }, json: { type: 'boolean' } },
    async run(values) {
      const merchantId = required(values, 'merchant');
      const email = required(values, 'email');
      const role = required(values, 'role');
      if (!isRole(role)) throw new UsageError(`--role must be one of: ${ROLES.join(', ')}`);
      const settings = cliSettings();
      announce(settings);
      const r = await withDb(settings, 'write', async ({ sql, config, logger }) => {
        await merchants.get(sql, merchantId);
        return createDashboardAuth({ sql, config, logger }).createUser(merchantId, { email, role, createdBy: 'cli' });
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
      const settings = cliSettings();
      announce(settings);
      const r = await withDb(settings, 'read', ({ sql, config, logger }) =>
        createDashboardAuth({ sql, config, logger }).reissueSetupLink(merchantId, userId, 'cli', null),
      );
      printResult(
        Boolean(values.json),
        { user: { id: r.user.id, object: 'user', email: r.user.email, role: r.user.role }, setup_url: r.setupUrl, expires_at: r.expiresAt.toISOString() },
        `setup link for ${r.user.email} (one use, expires ${r.expiresAt.toISOString()}):\n${r.setupUrl}`,
      );
    },
  },

  'users list': {
    options: { merchant: { type: 'string' }, limit: { type: 'string' }, json: { type: 'boolean' } },
    async run(values) {
      const merchantId = required(values, 'merchant');
      const limit = limitOf(values);
      const settings = cliSettings();
      announce(settings);
      const rows = await withDb(settings, 'read', async ({ sql }) => {
        await merchants.get(sql, merchantId);
        return sql<UserRow[]>`
          select id, email, role, password_hash is not null as has_password, totp_enabled_at, disabled_at, last_login_at, created_at
          from dashboard_users where merchant_id = ${merchantId} order by seq desc limit ${limit}`;
      });
      const data = rows.map((u) => ({
        id: u.id,
        object: 'user' as const,
        merchant_id: merchantId,
        email: u.email,
        role: u.role,
        // invited: the setup link has not been used yet (no password).
        status: u.disabled_at ? 'disabled' : u.has_password ? 'active' : 'invited',
        two_factor: u.totp_enabled_at !== null,
        last_login_at: u.last_login_at ? u.last_login_at.toISOString() : null,
        created_at: u.created_at.toISOString(),
      }));
      const human =
        data.length === 0
          ? `no dashboard users for ${merchantId} (add one with: kassa users create --merchant ${merchantId} --email <e-mail> --role owner)`
          : data.map((u) => `${u.id}  ${u.email}  ${u.role}  ${u.status}${u.two_factor ? '  2FA' : ''}  last login ${u.last_login_at ?? 'never'}`).join('\n');
      printResult(Boolean(values.json), { object: 'list', data }, human);
    },
  },
};
