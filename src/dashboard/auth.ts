/**
 * Dashboard authentication: users and their one-time setup links, password login with rate
 * limiting and lockout, TOTP second factor with recovery codes, server-side sessions (only a
 * SHA-256 of the session id is stored; idle and absolute expiry; revocable) and the audit log.
 *
 * Never logged: passwords, setup tokens, session ids, TOTP secrets or codes, recovery codes.
 */
import crypto from 'node:crypto';
import * as OTPAuth from 'otpauth';
import type { Config } from '../config.ts';
import type { Db, Sql } from '../db/client.ts';
import type postgres from 'postgres';
import type { Logger } from '../logger.ts';
import { newId } from '../ids.ts';
import { KassaError, invalidParam, notFound } from '../errors.ts';
import { decryptSecret, encryptSecret } from '../crypto/secretbox.ts';
import { merchantFromRow, type Merchant, type MerchantRow } from '../merchants/service.ts';
import { hashPassword, needsRehash, passwordProblem, verifyPassword } from './passwords.ts';
import { isRole, type Role } from './permissions.ts';

export interface AuthLimits {
  /** Wrong passwords / second-factor codes per account before it locks (default 5). */
  maxFailures: number;
  /** How long a lock lasts, and the window failures are counted in (default 15 min). */
  lockMs: number;
  /** Failed attempts per client IP in `lockMs` before every login from it is refused (default 30). */
  perIpFailures: number;
  /** Session idle timeout (default 30 min) and absolute lifetime (default 12 h). */
  idleMs: number;
  absoluteMs: number;
  /** Between the password and the second factor (default 5 min). */
  mfaPendingMs: number;
  /** Setup links (default 24 h). */
  setupMs: number;
  /** Sensitive actions need a sign-in or re-authentication at most this long ago (default 5 min). */
  reauthMs: number;
}

export const DEFAULT_AUTH_LIMITS: AuthLimits = {
  maxFailures: 5,
  lockMs: 15 * 60_000,
  perIpFailures: 30,
  idleMs: 30 * 60_000,
  absoluteMs: 12 * 3600_000,
  mfaPendingMs: 5 * 60_000,
  setupMs: 24 * 3600_000,
  reauthMs: 5 * 60_000,
};

export interface DashboardUser {
  id: string;
  merchantId: string;
  email: string;
  role: Role;
  hasPassword: boolean;
  totpEnabled: boolean;
  disabledAt: Date | null;
  lastLoginAt: Date | null;
  createdAt: Date;
}

interface UserRow {
  id: string;
  merchant_id: string;
  email: string;
  role: Role;
  password_hash: string | null;
  totp_secret_box: string | null;
  totp_pending_box: string | null;
  totp_enabled_at: Date | null;
  totp_last_step: bigint | null;
  disabled_at: Date | null;
  last_login_at: Date | null;
  created_at: Date;
}

function userFromRow(r: UserRow): DashboardUser {
  return {
    id: r.id, merchantId: r.merchant_id, email: r.email, role: r.role, hasPassword: r.password_hash !== null,
    totpEnabled: r.totp_enabled_at !== null, disabledAt: r.disabled_at, lastLoginAt: r.last_login_at, createdAt: r.created_at,
  };
}

export type DashboardMerchant = Merchant & { requireOwner2fa: boolean };

export interface Session {
  user: DashboardUser;
  merchant: DashboardMerchant;
  csrf: string;
  mfaPending: boolean;
  /** SHA-256 of the session id (the raw id is only in the cookie). */
  idHash: Buffer;
  createdAt: Date;
  expiresAt: Date;
  /** When the user last proved their password (and second factor): sign-in or re-authentication. */
  reauthAt: Date | null;
}

export type LoginResult =
  | { kind: 'ok'; sessionId: string; user: DashboardUser }
  | { kind: 'mfa'; sessionId: string; user: DashboardUser }
  /** The password was accepted by accounts of several merchants: the user picks one (`choiceId` goes in a cookie). */
  | { kind: 'choose'; choiceId: string }
  | { kind: 'refused'; status: 401 | 429; message: string };

/** Every step after the password ends in a session, a second-factor step or a refusal. */
export type SignInResult = Exclude<LoginResult, { kind: 'choose' }>;

/** The "choose the shop" step: only the accounts that accepted the password, with their merchant's name. */
export interface LoginChoice {
  csrf: string;
  accounts: { userId: string; merchantName: string; role: Role }[];
}

export interface AuditEntry {
  id: bigint;
  merchant_id: string | null;
  actor: string;
  action: string;
  target: string | null;
  details: Record<string, unknown>;
  ip: string | null;
  created_at: Date;
  actor_email: string | null;
}

const sha256 = (s: string) => crypto.createHash('sha256').update(s, 'utf8').digest();
const token = (bytes = 32) => crypto.randomBytes(bytes).toString('base64url');
export const normalizeEmail = (e: string) => e.trim().toLowerCase();
const EMAIL_RE = /^[^\s@]{1,64}@[^\s@]{1,189}\.[^\s@]{1,63}$/;

/** Recovery codes: 10 chars of an unambiguous alphabet, shown as xxxxx-xxxxx. */
const RC_ALPHABET = 'abcdefghjkmnpqrstuvwxyz23456789';
function recoveryCode(): string {
  let s = '';
  for (const b of crypto.randomBytes(20)) {
    if (b < 248 - (248 % RC_ALPHABET.length)) s += RC_ALPHABET[b % RC_ALPHABET.length];
    if (s.length === 10) break;
  }
  return s.length === 10 ? `${s.slice(0, 5)}-${s.slice(5)}` : recoveryCode();
}
const normalizeRecovery = (c: string) => c.trim().toLowerCase().replace(/[\s-]/g, '');

/**
 * The TOTP for a secret. `label` names the account in the authenticator app: the e-mail and, since
 * one e-mail may have an account (and a secret) in several merchants, the merchant's name.
 */
export function totpFor(label: string, secretBase32: string): OTPAuth.TOTP {
  return new OTPAuth.TOTP({ issuer: 'Kassa', label, algorithm: 'SHA1', digits: 6, period: 30, secret: OTPAuth.Secret.fromBase32(secretBase32) });
}
const totpLabel = (email: string, merchantName: string | undefined) => (merchantName ? `${email} (${merchantName.slice(0, 60)})` : email);

/** Writes one audit log row (who, what, when, from which IP). Accepts a transaction. */
export async function audit(
  db: Db,
  e: { merchantId: string | null; actor: string; action: string; target?: string | null; details?: Record<string, unknown>; ip?: string | null },
): Promise<void> {
  await db`
    insert into audit_log (merchant_id, actor, action, target, details, ip)
    values (${e.merchantId}, ${e.actor}, ${e.action}, ${e.target ?? null}, ${db.json((e.details ?? {}) as postgres.JSONValue)}, ${e.ip ?? null})`;
}

export function createDashboardAuth(deps: { sql: Sql; config: Pick<Config, 'publicUrl' | 'secretKey'>; logger: Logger; limits?: Partial<AuthLimits> }) {
  const { sql, config } = deps;
  const L: AuthLimits = { ...DEFAULT_AUTH_LIMITS, ...deps.limits };
  const log = deps.logger.child({ component: 'dashboard-auth' });
  const totpContext = (userId: string) => `dashboard-totp:${userId}`;

  async function userById(merchantId: string, id: string): Promise<UserRow> {
    const [row] = await sql<UserRow[]>`select * from dashboard_users where id = ${id} and merchant_id = ${merchantId}`;
    if (!row) throw notFound('user', id, 'id');
    return row;
  }

  async function issueSetupLink(db: Db, userId: string): Promise<{ url: string; expiresAt: Date }> {
    const raw = token();
    const expiresAt = new Date(Date.now() + L.setupMs);
    // A new link replaces any unused one.
    await db`delete from dashboard_setup_tokens where user_id = ${userId} and used_at is null`;
    await db`insert into dashboard_setup_tokens (token_hash, user_id, expires_at) values (${sha256(raw)}, ${userId}, ${expiresAt})`;
    return { url: `${config.publicUrl}/dashboard/setup/${raw}`, expiresAt };
  }

  /**
   * Attempts that count against the limits: wrong passwords and codes, plus attempts still being
   * verified ('pending'). An attempt is reserved before the slow check, so parallel guesses cannot
   * all pass the limit check before any failure is recorded.
   */
  const COUNTED = ['bad_password', 'bad_totp', 'pending'];

  /**
   * Failures (and attempts in flight) for this e-mail within the lock window. A success clears only
   * the failures from its own client IP (the person who just proved the password clears their own
   * typos): if any success anywhere cleared the count, someone holding one account with this e-mail
   * could watch the count reset and learn that another merchant's account with it signed in.
   */
  async function accountFailures(db: Db, email: string): Promise<number> {
    const [row] = await db<{ n: number }[]>`
      select count(*)::int as n from dashboard_login_attempts a
      where a.email = ${email} and a.result in ${db(COUNTED)}
        and a.created_at > now() - make_interval(secs => ${L.lockMs / 1000})
        and a.created_at > coalesce((select max(o.created_at) from dashboard_login_attempts o
                                     where o.email = ${email} and o.ip = a.ip and o.result = 'ok'), '-infinity')`;
    return row?.n ?? 0;
  }

  async function ipFailures(db: Db, ip: string): Promise<number> {
    const [row] = await db<{ n: number }[]>`
      select count(*)::int as n from dashboard_login_attempts
      where ip = ${ip} and result in ${db(COUNTED)} and created_at > now() - make_interval(secs => ${L.lockMs / 1000})`;
    return row?.n ?? 0;
  }

  type Reservation = { kind: 'reserved'; id: bigint } | { kind: 'locked' } | { kind: 'ip_limited' };

  /**
   * Atomically checks the per-IP and per-account limits and, when both allow it, reserves one
   * attempt (a 'pending' row) BEFORE the password or code is verified. Transaction-scoped advisory
   * locks on the e-mail and the IP serialise the check-and-insert, so under any concurrency at most
   * `maxFailures` attempts per account (and `perIpFailures` per IP) are ever verified in a window.
   * The caller resolves the reservation with `finishAttempt`.
   */
  async function reserveAttempt(email: string, userId: string | null, ip: string, opts: { checkIp: boolean }): Promise<Reservation> {
    return sql.begin(async (tx) => {
      await tx`select pg_advisory_xact_lock(hashtextextended(${'dashboard-login-email:' + email}, 0))`;
      if (opts.checkIp) await tx`select pg_advisory_xact_lock(hashtextextended(${'dashboard-login-ip:' + ip}, 0))`;
      if (opts.checkIp && (await ipFailures(tx, ip)) >= L.perIpFailures) {
        await tx`insert into dashboard_login_attempts (email, user_id, ip, result) values (${email}, ${userId}, ${ip}, 'rate_limited')`;
        return { kind: 'ip_limited' } as const;
      }
      if ((await accountFailures(tx, email)) >= L.maxFailures) {
        await tx`insert into dashboard_login_attempts (email, user_id, ip, result) values (${email}, ${userId}, ${ip}, 'locked')`;
        return { kind: 'locked' } as const;
      }
      const [row] = await tx<{ id: bigint }[]>`
        insert into dashboard_login_attempts (email, user_id, ip, result) values (${email}, ${userId}, ${ip}, 'pending') returning id`;
      return { kind: 'reserved', id: BigInt(row!.id) } as const;
    });
  }

  /**
   * Resolves a reserved attempt: 'ok', 'password_ok' (second factor or choice of shop follows),
   * 'bad_password', 'bad_totp' or 'disabled'; `userId` names the account once it is known.
   */
  async function finishAttempt(id: bigint, result: string, userId?: string): Promise<void> {
    await sql`update dashboard_login_attempts set result = ${result} ${userId ? sql`, user_id = ${userId}` : sql``} where id = ${id}`;
  }

  const lockedMessage = `Too many failed attempts. This account is locked for ${Math.round(L.lockMs / 60_000)} minutes; try again later.`;

  async function createSession(user: UserRow, opts: { mfaPending: boolean; ip: string; userAgent: string | undefined }): Promise<string> {
    const raw = token();
    const ttl = opts.mfaPending ? L.mfaPendingMs : L.absoluteMs;
    await sql`
      insert into dashboard_sessions (id_hash, user_id, merchant_id, csrf_token, mfa_pending, ip, user_agent, expires_at, reauth_at)
      values (${sha256(raw)}, ${user.id}, ${user.merchant_id}, ${token()}, ${opts.mfaPending}, ${opts.ip},
              ${(opts.userAgent ?? '').slice(0, 300)}, now() + make_interval(secs => ${ttl / 1000}), ${opts.mfaPending ? null : sql`now()`})`;
    return raw;
  }

  /** Signs `user` in. `attemptId` is the reserved attempt to mark 'ok', or null to record a new 'ok' one (after the choice of shop). */
  async function completeLogin(user: UserRow, attemptId: bigint | null, ip: string, userAgent: string | undefined, secondFactor: string | null): Promise<SignInResult> {
    if (attemptId === null) {
      await sql`insert into dashboard_login_attempts (email, user_id, ip, result) values (${user.email}, ${user.id}, ${ip}, 'ok')`;
    } else await finishAttempt(attemptId, 'ok', user.id);
    await sql`update dashboard_users set last_login_at = now() where id = ${user.id}`;
    await audit(sql, {
      merchantId: user.merchant_id, actor: `user:${user.id}`, action: 'login.succeeded', target: `user:${user.id}`, ip,
      details: { email: user.email, ...(secondFactor ? { second_factor: secondFactor } : {}) },
    });
    log.info({ user_id: user.id, merchant_id: user.merchant_id, second_factor: secondFactor }, 'dashboard login');
    const sessionId = await createSession(user, { mfaPending: false, ip, userAgent });
    return { kind: 'ok', sessionId, user: userFromRow(user) };
  }

  /** Validates a TOTP code against a secret; returns the accepted time step or null (replays refused). */
  function checkTotp(user: UserRow, secretBase32: string, code: string): bigint | null {
    const clean = code.replace(/\s/g, '');
    if (!/^\d{6}$/.test(clean)) return null;
    const now = Date.now();
    const delta = totpFor(user.email, secretBase32).validate({ token: clean, timestamp: now, window: 1 });
    if (delta === null) return null;
    const step = BigInt(Math.floor(now / 30_000) + delta);
    if (user.totp_last_step !== null && step <= user.totp_last_step) return null;
    return step;
  }

  /**
   * Checks and consumes a second factor: a TOTP code (its time step claimed atomically, so a code
   * works once) or an unused recovery code. Returns which factor was used, or null.
   */
  async function useSecondFactor(user: UserRow, code: string): Promise<'totp' | 'recovery_code' | null> {
    const secret = decryptSecret(config.secretKey, user.totp_secret_box!, totpContext(user.id));
    const step = checkTotp(user, secret, code);
    if (step !== null) {
      const [claimed] = await sql`
        update dashboard_users set totp_last_step = ${step}
        where id = ${user.id} and (totp_last_step is null or totp_last_step < ${step}) returning 1`;
      return claimed ? 'totp' : null;
    }
    if (normalizeRecovery(code).length !== 10) return null;
    const [used] = await sql`
      update dashboard_recovery_codes set used_at = now()
      where user_id = ${user.id} and code_hash = ${sha256(normalizeRecovery(code))} and used_at is null returning 1`;
    return used ? 'recovery_code' : null;
  }

  /**
   * The accounts whose password hash accepts `password`. Every hash is checked, in parallel, so the
   * time hardly depends on which account matches; no account still costs one scrypt (an unknown
   * e-mail answers like a wrong password).
   */
  async function acceptingAccounts(accounts: UserRow[], password: string): Promise<UserRow[]> {
    if (accounts.length === 0) {
      await verifyPassword(password, null);
      return [];
    }
    const ok = await Promise.all(accounts.map((u) => verifyPassword(password, u.password_hash)));
    return accounts.filter((_, i) => ok[i]);
  }

  /** After the password (and the choice of shop): the second factor when the account has one, else a session. */
  async function afterPassword(user: UserRow, attemptId: bigint | null, ip: string, userAgent: string | undefined): Promise<SignInResult> {
    if (user.totp_enabled_at && user.totp_secret_box) {
      if (attemptId !== null) await finishAttempt(attemptId, 'password_ok', user.id);
      const sessionId = await createSession(user, { mfaPending: true, ip, userAgent });
      return { kind: 'mfa', sessionId, user: userFromRow(user) };
    }
    return completeLogin(user, attemptId, ip, userAgent, null);
  }

  /** Stores a "choose the shop" step for the accounts that accepted the password; returns the raw cookie value. */
  async function createChoice(email: string, accounts: UserRow[], ip: string): Promise<string> {
    const raw = token();
    await sql`delete from dashboard_login_choices where expires_at < now()`;
    await sql`
      insert into dashboard_login_choices (id_hash, email, user_ids, csrf_token, ip, expires_at)
      values (${sha256(raw)}, ${email}, ${accounts.map((u) => u.id)}, ${token()}, ${ip}, now() + make_interval(secs => ${L.mfaPendingMs / 1000}))`;
    return raw;
  }

  /** The user a setup link is for, or null when it is unknown, used or expired. */
  async function setupUser(raw: string): Promise<DashboardUser | null> {
    const [row] = await sql<UserRow[]>`
      select u.* from dashboard_setup_tokens t join dashboard_users u on u.id = t.user_id
      where t.token_hash = ${sha256(raw)} and t.used_at is null and t.expires_at > now() and u.disabled_at is null`;
    return row ? userFromRow(row) : null;
  }

  return {
    limits: L,

    async createUser(merchantId: string, input: { email: string; role: string; createdBy: string; ip?: string | null }) {
      const email = normalizeEmail(input.email);
      if (!EMAIL_RE.test(email) || email.length > 254) throw invalidParam('email', 'Enter a valid e-mail address.');
      if (!isRole(input.role)) throw invalidParam('role', 'role must be one of owner, developer, finance, viewer.');
      const role = input.role;
      return sql.begin(async (tx) => {
        // Unique per merchant only (migration 0016): an e-mail another merchant uses is no conflict,
        // and nothing here may tell whether one does.
        const [row] = await tx<UserRow[]>`
          insert into dashboard_users (id, merchant_id, email, role, created_by)
          values (${newId('usr')}, ${merchantId}, ${email}, ${role}, ${input.createdBy})
          on conflict (merchant_id, email) do nothing returning *`;
        if (!row) throw new KassaError('user_exists', 'This merchant already has a user with this e-mail address.', { status: 409, param: 'email', retryable: false });
        const link = await issueSetupLink(tx, row.id);
        await audit(tx, { merchantId, actor: input.createdBy, action: 'user.created', target: `user:${row.id}`, details: { email, role }, ip: input.ip ?? null });
        log.info({ user_id: row.id, merchant_id: merchantId, role }, 'dashboard user created');
        return { user: userFromRow(row), setupUrl: link.url, expiresAt: link.expiresAt };
      });
    },

    /** A new setup link (e.g. a lost one, or to reset a password); unused older links stop working. */
    async reissueSetupLink(merchantId: string, userId: string, by: string, ip: string | null) {
      const row = await userById(merchantId, userId);
      const link = await sql.begin(async (tx) => {
        const l = await issueSetupLink(tx, row.id);
        await audit(tx, { merchantId, actor: by, action: 'user.setup_link_issued', target: `user:${row.id}`, details: { email: row.email }, ip });
        return l;
      });
      return { user: userFromRow(row), setupUrl: link.url, expiresAt: link.expiresAt };
    },

    setupUser,

    /** Sets the password from a setup link (single use). Every existing session of the user ends. */
    async completeSetup(raw: string, password: string, ip: string): Promise<DashboardUser> {
      const user = await setupUser(raw);
      if (!user) throw new KassaError('setup_link_invalid', 'This setup link is invalid, used or expired. Ask an owner for a new one.', { status: 404, retryable: false });
      const problem = passwordProblem(password, user.email);
      if (problem) throw invalidParam('password', problem, 'password_weak');
      const hash = await hashPassword(password);
      await sql.begin(async (tx) => {
        const used = await tx`update dashboard_setup_tokens set used_at = now() where token_hash = ${sha256(raw)} and used_at is null returning 1`;
        if (used.length === 0) throw new KassaError('setup_link_invalid', 'This setup link was already used.', { status: 404, retryable: false });
        await tx`update dashboard_users set password_hash = ${hash}, updated_at = now() where id = ${user.id}`;
        await tx`update dashboard_sessions set revoked_at = now() where user_id = ${user.id} and revoked_at is null`;
        await audit(tx, { merchantId: user.merchantId, actor: `user:${user.id}`, action: 'user.password_set', target: `user:${user.id}`, ip });
      });
      return user;
    },

    /**
     * Sign-in with e-mail and password. An e-mail may have accounts in several merchants (separate
     * passwords and second factors): the password is checked against every one of them, in
     * parallel, and the accounts that accept it decide. None: the same answer as an unknown e-mail
     * (which still costs one scrypt). One: that account (then its second factor). Several: the
     * "choose the shop" step, listing only those accounts. The limits are reserved before any check.
     */
    async login(emailInput: string, password: string, ip: string, userAgent?: string): Promise<LoginResult> {
      const email = normalizeEmail(emailInput).slice(0, 254);
      const accounts = await sql<UserRow[]>`select * from dashboard_users where email = ${email} order by seq`;
      const slot = await reserveAttempt(email, accounts.length === 1 ? accounts[0]!.id : null, ip, { checkIp: true });
      if (slot.kind === 'ip_limited') {
        return { kind: 'refused', status: 429, message: 'Too many failed sign-in attempts from your network. Try again later.' };
      }
      if (slot.kind === 'locked') return { kind: 'refused', status: 429, message: lockedMessage };
      let accepted: UserRow[];
      try {
        accepted = await acceptingAccounts(accounts, password);
      } catch (err) {
        await finishAttempt(slot.id, 'bad_password');
        throw err;
      }
      const enabled = accepted.filter((u) => !u.disabled_at);
      if (enabled.length === 0) {
        await finishAttempt(slot.id, accepted.length > 0 ? 'disabled' : 'bad_password');
        // Nobody signed in: every account with this e-mail sees the failure in its own merchant's log.
        for (const u of accounts) {
          await audit(sql, { merchantId: u.merchant_id, actor: `user:${u.id}`, action: 'login.failed', target: `user:${u.id}`, ip, details: { email, reason: 'wrong password' } });
        }
        const locked = (await accountFailures(sql, email)) >= L.maxFailures;
        return { kind: 'refused', status: locked ? 429 : 401, message: locked ? lockedMessage : 'The e-mail address or password is wrong.' };
      }
      for (const u of enabled) {
        if (needsRehash(u.password_hash!)) await sql`update dashboard_users set password_hash = ${await hashPassword(password)} where id = ${u.id}`;
      }
      if (enabled.length > 1) {
        await finishAttempt(slot.id, 'password_ok');
        return { kind: 'choose', choiceId: await createChoice(email, enabled, ip) };
      }
      return afterPassword(enabled[0]!, slot.id, ip, userAgent);
    },

    /** The "choose the shop" step for a raw cookie value, or null (unknown, used or expired). */
    async loadChoice(raw: string | undefined): Promise<LoginChoice | null> {
      if (!raw || raw.length > 100) return null;
      const rows = await sql<{ csrf_token: string; user_id: string; merchant_name: string; role: Role }[]>`
        select c.csrf_token, u.id as user_id, m.name as merchant_name, u.role
        from dashboard_login_choices c
        join dashboard_users u on u.id = any(c.user_ids) and u.disabled_at is null
        join merchants m on m.id = u.merchant_id
        where c.id_hash = ${sha256(raw)} and c.used_at is null and c.expires_at > now()
        order by u.seq`;
      if (rows.length === 0) return null;
      return { csrf: rows[0]!.csrf_token, accounts: rows.map((r) => ({ userId: r.user_id, merchantName: r.merchant_name, role: r.role })) };
    },

    /**
     * Takes the account picked on the "choose the shop" step (one of those that accepted the
     * password; the choice is used once), then continues as a sign-in of that account: its second
     * factor when it has one, otherwise a session. Null when the pick is not on the list.
     */
    async chooseAccount(raw: string, userId: string, ip: string, userAgent?: string): Promise<SignInResult | null> {
      const [choice] = await sql<{ email: string }[]>`
        update dashboard_login_choices set used_at = now()
        where id_hash = ${sha256(raw)} and used_at is null and expires_at > now() and ${userId} = any(user_ids)
        returning email`;
      if (!choice) return null;
      const [user] = await sql<UserRow[]>`select * from dashboard_users where id = ${userId} and email = ${choice.email} and disabled_at is null`;
      if (!user) return { kind: 'refused', status: 401, message: 'Sign in again.' };
      return afterPassword(user, null, ip, userAgent);
    },

    /**
     * The second step: a TOTP code or a recovery code for a session waiting for it. On success the
     * pending session is replaced by a new one (a new id: no session fixation).
     */
    async secondFactor(pending: Session, code: string, ip: string, userAgent?: string): Promise<SignInResult> {
      const [user] = await sql<UserRow[]>`select * from dashboard_users where id = ${pending.user.id}`;
      if (!user || user.disabled_at || !user.totp_secret_box) return { kind: 'refused', status: 401, message: 'Sign in again.' };
      // Reserve the attempt before checking the code (see reserveAttempt).
      const slot = await reserveAttempt(user.email, user.id, ip, { checkIp: false });
      if (slot.kind !== 'reserved') {
        await sql`update dashboard_sessions set revoked_at = now() where id_hash = ${pending.idHash}`;
        return { kind: 'refused', status: 429, message: lockedMessage };
      }
      let factor: string | null = null;
      try {
        factor = await useSecondFactor(user, code);
      } finally {
        if (!factor) await finishAttempt(slot.id, 'bad_totp');
      }
      if (!factor) {
        await audit(sql, { merchantId: user.merchant_id, actor: `user:${user.id}`, action: 'login.failed', target: `user:${user.id}`, ip, details: { email: user.email, reason: 'wrong second-factor code' } });
        return { kind: 'refused', status: 401, message: 'That code is not valid. Use the current code from your authenticator app, or a recovery code.' };
      }
      await sql`update dashboard_sessions set revoked_at = now() where id_hash = ${pending.idHash}`;
      return completeLogin(user, slot.id, ip, userAgent, factor);
    },

    /**
     * The session for a raw cookie value, or null (unknown, revoked, idle or past its absolute
     * lifetime, user disabled). Refreshes last_seen_at at most once a minute.
     */
    async loadSession(raw: string | undefined): Promise<Session | null> {
      if (!raw || raw.length > 100) return null;
      const idHash = sha256(raw);
      const [row] = await sql<(UserRow & { csrf_token: string; mfa_pending: boolean; s_created_at: Date; expires_at: Date; last_seen_at: Date; reauth_at: Date | null; merchant: MerchantRow & { require_owner_2fa: boolean } })[]>`
        select u.*, s.csrf_token, s.mfa_pending, s.created_at as s_created_at, s.expires_at, s.last_seen_at, s.reauth_at, to_jsonb(m.*) as merchant
        from dashboard_sessions s
        join dashboard_users u on u.id = s.user_id
        join merchants m on m.id = s.merchant_id
        where s.id_hash = ${idHash} and s.revoked_at is null and s.expires_at > now()
          and s.last_seen_at > now() - make_interval(secs => ${L.idleMs / 1000}) and u.disabled_at is null`;
      if (!row) return null;
      if (Date.now() - row.last_seen_at.getTime() > 60_000) {
        await sql`update dashboard_sessions set last_seen_at = now() where id_hash = ${idHash}`;
      }
      const m = row.merchant;
      return {
        user: userFromRow(row),
        merchant: { ...merchantFromRow({ ...m, created_at: new Date(m.created_at), updated_at: new Date(m.updated_at) }), requireOwner2fa: m.require_owner_2fa },
        csrf: row.csrf_token,
        mfaPending: row.mfa_pending,
        idHash,
        createdAt: row.s_created_at,
        expiresAt: row.expires_at,
        reauthAt: row.reauth_at,
      };
    },

    /** True when the session proved the password (and second factor) within `reauthMs`. */
    recentlyAuthenticated(session: Session): boolean {
      return session.reauthAt !== null && Date.now() - session.reauthAt.getTime() < L.reauthMs;
    },

    /**
     * Re-authentication for sensitive actions: the password, and a TOTP or recovery code when the
     * user has two-factor authentication on. Counted against the same lockout as sign-in (the
     * attempt is reserved before checking). On success the session's reauth_at is set to now.
     */
    async reauthenticate(session: Session, password: string, code: string, ip: string): Promise<{ ok: true } | { ok: false; status: 401 | 429; message: string }> {
      const [user] = await sql<UserRow[]>`select * from dashboard_users where id = ${session.user.id}`;
      if (!user || user.disabled_at) return { ok: false, status: 401, message: 'Sign in again.' };
      const slot = await reserveAttempt(user.email, user.id, ip, { checkIp: true });
      if (slot.kind !== 'reserved') return { ok: false, status: 429, message: lockedMessage };
      let result = 'bad_password';
      try {
        if (await verifyPassword(password, user.password_hash)) {
          if (user.totp_enabled_at && user.totp_secret_box) {
            result = 'bad_totp';
            if (await useSecondFactor(user, code)) result = 'reauth_ok';
          } else result = 'reauth_ok';
        }
      } finally {
        await finishAttempt(slot.id, result);
      }
      if (result !== 'reauth_ok') {
        await audit(sql, { merchantId: user.merchant_id, actor: `user:${user.id}`, action: 'reauth.failed', target: `user:${user.id}`, ip, details: { reason: result === 'bad_totp' ? 'wrong second-factor code' : 'wrong password' } });
        const locked = (await accountFailures(sql, user.email)) >= L.maxFailures;
        if (locked) return { ok: false, status: 429, message: lockedMessage };
        return { ok: false, status: 401, message: result === 'bad_totp' ? 'That code is not valid. Use the current code from your authenticator app, or a recovery code.' : 'The password is wrong.' };
      }
      await sql`update dashboard_sessions set reauth_at = now() where id_hash = ${session.idHash}`;
      await audit(sql, { merchantId: user.merchant_id, actor: `user:${user.id}`, action: 'reauth.succeeded', target: `user:${user.id}`, ip });
      return { ok: true };
    },

    async logout(session: Session, ip: string): Promise<void> {
      await sql`update dashboard_sessions set revoked_at = now() where id_hash = ${session.idHash}`;
      if (!session.mfaPending) {
        await audit(sql, { merchantId: session.merchant.id, actor: `user:${session.user.id}`, action: 'logout', target: `user:${session.user.id}`, ip });
      }
    },

    async listUsers(merchantId: string): Promise<(DashboardUser & { activeSessions: number })[]> {
      const rows = await sql<(UserRow & { active_sessions: number })[]>`
        select u.*, (select count(*)::int from dashboard_sessions s where s.user_id = u.id and s.revoked_at is null and s.expires_at > now()
                       and s.last_seen_at > now() - make_interval(secs => ${L.idleMs / 1000})) as active_sessions
        from dashboard_users u where u.merchant_id = ${merchantId} order by u.seq`;
      return rows.map((r) => ({ ...userFromRow(r), activeSessions: r.active_sessions }));
    },

    async getUser(merchantId: string, id: string): Promise<DashboardUser> {
      return userFromRow(await userById(merchantId, id));
    },

    async setRole(merchantId: string, userId: string, role: string, by: string, ip: string | null): Promise<DashboardUser> {
      if (!isRole(role)) throw invalidParam('role', 'role must be one of owner, developer, finance, viewer.');
      const before = await userById(merchantId, userId);
      return sql.begin(async (tx) => {
        if (before.role === 'owner' && role !== 'owner') await assertAnotherOwner(tx, merchantId, userId);
        const [row] = await tx<UserRow[]>`update dashboard_users set role = ${role}, updated_at = now() where id = ${userId} and merchant_id = ${merchantId} returning *`;
        await audit(tx, { merchantId, actor: by, action: 'user.role_changed', target: `user:${userId}`, details: { email: before.email, from: before.role, to: role }, ip });
        return userFromRow(row!);
      });
    },

    /** Disables the user and ends every session of theirs at once. */
    async revokeUser(merchantId: string, userId: string, by: string, ip: string | null): Promise<DashboardUser> {
      const before = await userById(merchantId, userId);
      return sql.begin(async (tx) => {
        if (before.role === 'owner' && !before.disabled_at) await assertAnotherOwner(tx, merchantId, userId);
        const [row] = await tx<UserRow[]>`
          update dashboard_users set disabled_at = coalesce(disabled_at, now()), updated_at = now() where id = ${userId} and merchant_id = ${merchantId} returning *`;
        const ended = await tx`update dashboard_sessions set revoked_at = now() where user_id = ${userId} and revoked_at is null returning 1`;
        await tx`delete from dashboard_setup_tokens where user_id = ${userId} and used_at is null`;
        await audit(tx, { merchantId, actor: by, action: 'user.revoked', target: `user:${userId}`, details: { email: before.email, sessions_ended: ended.length }, ip });
        log.info({ user_id: userId, merchant_id: merchantId, sessions_ended: ended.length }, 'dashboard user revoked');
        return userFromRow(row!);
      });
    },

    /** Ends every session of a user (they stay enabled and can sign in again). */
    async revokeSessions(merchantId: string, userId: string, by: string, ip: string | null): Promise<number> {
      const before = await userById(merchantId, userId);
      const ended = await sql`update dashboard_sessions set revoked_at = now() where user_id = ${userId} and revoked_at is null returning 1`;
      await audit(sql, { merchantId, actor: by, action: 'user.sessions_revoked', target: `user:${userId}`, details: { email: before.email, sessions_ended: ended.length }, ip });
      return ended.length;
    },

    /** Starts TOTP enrolment: a new pending secret (base32) and its otpauth:// URI for the QR code. */
    async startTotp(user: DashboardUser, merchantName?: string): Promise<{ secret: string; uri: string }> {
      const secret = new OTPAuth.Secret({ size: 20 }).base32;
      await sql`update dashboard_users set totp_pending_box = ${encryptSecret(config.secretKey, secret, totpContext(user.id))} where id = ${user.id}`;
      return { secret, uri: totpFor(totpLabel(user.email, merchantName), secret).toString() };
    },

    /** The pending enrolment (to show again after a wrong code), or null. */
    async pendingTotp(user: DashboardUser, merchantName?: string): Promise<{ secret: string; uri: string } | null> {
      const [row] = await sql<{ totp_pending_box: string | null }[]>`select totp_pending_box from dashboard_users where id = ${user.id}`;
      if (!row?.totp_pending_box) return null;
      const secret = decryptSecret(config.secretKey, row.totp_pending_box, totpContext(user.id));
      return { secret, uri: totpFor(totpLabel(user.email, merchantName), secret).toString() };
    },

    /** Verifies a code against the pending secret and enables TOTP; returns 10 recovery codes (shown once). */
    async confirmTotp(user: DashboardUser, code: string, ip: string): Promise<string[] | null> {
      const [row] = await sql<UserRow[]>`select * from dashboard_users where id = ${user.id}`;
      if (!row?.totp_pending_box) return null;
      const secret = decryptSecret(config.secretKey, row.totp_pending_box, totpContext(user.id));
      const step = checkTotp({ ...row, totp_last_step: null }, secret, code);
      if (step === null) return null;
      const codes = Array.from({ length: 10 }, recoveryCode);
      await sql.begin(async (tx) => {
        await tx`
          update dashboard_users set totp_secret_box = totp_pending_box, totp_pending_box = null, totp_enabled_at = now(),
            totp_last_step = ${step}, updated_at = now() where id = ${user.id}`;
        await tx`delete from dashboard_recovery_codes where user_id = ${user.id}`;
        await tx`insert into dashboard_recovery_codes ${tx(codes.map((c) => ({ user_id: user.id, code_hash: sha256(normalizeRecovery(c)) })))}`;
        await audit(tx, { merchantId: user.merchantId, actor: `user:${user.id}`, action: 'user.2fa_enabled', target: `user:${user.id}`, ip });
      });
      return codes;
    },

    async disableTotp(user: DashboardUser, by: string, ip: string): Promise<void> {
      await sql.begin(async (tx) => {
        await tx`update dashboard_users set totp_secret_box = null, totp_pending_box = null, totp_enabled_at = null, totp_last_step = null, updated_at = now() where id = ${user.id}`;
        await tx`delete from dashboard_recovery_codes where user_id = ${user.id}`;
        await audit(tx, { merchantId: user.merchantId, actor: by, action: 'user.2fa_disabled', target: `user:${user.id}`, ip });
      });
    },

    async remainingRecoveryCodes(userId: string): Promise<number> {
      const [row] = await sql<{ n: number }[]>`select count(*)::int as n from dashboard_recovery_codes where user_id = ${userId} and used_at is null`;
      return row?.n ?? 0;
    },

    async setRequireOwner2fa(merchantId: string, on: boolean, by: string, ip: string | null): Promise<void> {
      await sql.begin(async (tx) => {
        await tx`update merchants set require_owner_2fa = ${on}, updated_at = now() where id = ${merchantId}`;
        await audit(tx, { merchantId, actor: by, action: 'settings.require_owner_2fa', details: { value: on }, ip });
      });
    },

    async auditLog(merchantId: string, opts: { limit: number; beforeId?: bigint | undefined }): Promise<AuditEntry[]> {
      return sql<AuditEntry[]>`
        select a.*, u.email as actor_email from audit_log a
        left join dashboard_users u on a.actor = 'user:' || u.id
        where a.merchant_id = ${merchantId} ${opts.beforeId !== undefined ? sql`and a.id < ${opts.beforeId}` : sql``}
        order by a.id desc limit ${opts.limit}`;
    },
  };
}

async function assertAnotherOwner(db: Db, merchantId: string, userId: string): Promise<void> {
  const [row] = await db<{ n: number }[]>`
    select count(*)::int as n from dashboard_users where merchant_id = ${merchantId} and role = 'owner' and disabled_at is null and id <> ${userId}`;
  if ((row?.n ?? 0) === 0) {
    throw new KassaError('last_owner', 'A merchant must keep at least one active owner.', { status: 409, retryable: false });
  }
}

export type DashboardAuth = ReturnType<typeof createDashboardAuth>;
