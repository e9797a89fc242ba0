-- Dashboard: users with roles per merchant, one-time setup links, server-side sessions, TOTP
-- recovery codes, login attempts (rate limiting and lockout) and the audit log.
-- Secrets are never stored in the clear: setup tokens, session ids and recovery codes as SHA-256,
-- passwords as scrypt (parameters stored with the hash), TOTP secrets encrypted (src/crypto/secretbox.ts).

alter table merchants add column require_owner_2fa boolean not null default false;

create table dashboard_users (
  id text primary key check (id like 'usr\_%'),
  seq bigserial not null unique,
  merchant_id text not null references merchants(id) on delete cascade,
  -- stored lowercase; one login (e-mail) per user across the deployment
  email text not null unique check (email = lower(email) and length(email) between 3 and 254),
  role text not null check (role in ('owner', 'developer', 'finance', 'viewer')),
  -- "scrypt$N$r$p$salt$hash" (base64url); null until the user has used their setup link
  password_hash text,
  -- secretbox of the base32 TOTP secret; pending while enrolling, confirmed once a code verified
  totp_secret_box text,
  totp_pending_box text,
  totp_enabled_at timestamptz,
  -- the last accepted TOTP time step (a code is never accepted twice)
  totp_last_step bigint,
  disabled_at timestamptz,
  last_login_at timestamptz,
  created_by text,
  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now()
);
create index dashboard_users_merchant on dashboard_users (merchant_id, seq);

create table dashboard_setup_tokens (
  token_hash bytea primary key,
  user_id text not null references dashboard_users(id) on delete cascade,
  expires_at timestamptz not null,
  used_at timestamptz,
  created_at timestamptz not null default now()
);
create index dashboard_setup_tokens_user on dashboard_setup_tokens (user_id);

create table dashboard_sessions (
  id_hash bytea primary key,
  user_id text not null references dashboard_users(id) on delete cascade,
  merchant_id text not null references merchants(id) on delete cascade,
  -- synchronizer CSRF token for the forms of this session
  csrf_token text not null,
  -- true between a correct password and the second factor
  mfa_pending boolean not null default false,
  ip text,
  user_agent text,
  created_at timestamptz not null default now(),
  last_seen_at timestamptz not null default now(),
  expires_at timestamptz not null,
  revoked_at timestamptz
);
create index dashboard_sessions_user on dashboard_sessions (user_id) where revoked_at is null;

create table dashboard_recovery_codes (
  user_id text not null references dashboard_users(id) on delete cascade,
  code_hash bytea not null,
  used_at timestamptz,
  created_at timestamptz not null default now(),
  primary key (user_id, code_hash)
);

create table dashboard_login_attempts (
  id bigserial primary key,
  email text not null,
  user_id text,
  ip text not null,
  -- ok, bad_password, bad_totp, locked, rate_limited, disabled
  result text not null,
  created_at timestamptz not null default now()
);
create index dashboard_login_attempts_email on dashboard_login_attempts (email, created_at);
create index dashboard_login_attempts_ip on dashboard_login_attempts (ip, created_at);

create table audit_log (
  id bigserial primary key,
  merchant_id text references merchants(id) on delete cascade,
  -- "user:<id>", "cli" or "system"
  actor text not null,
  action text not null,
  target text,
  details jsonb not null default '{}',
  ip text,
  created_at timestamptz not null default now()
);
create index audit_log_merchant on audit_log (merchant_id, id desc);
