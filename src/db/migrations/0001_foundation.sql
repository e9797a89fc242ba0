-- Foundation: merchants, API keys, idempotency keys.
-- Conventions: every public object has a prefixed text id and a `seq` (bigserial) used for
-- newest-first ordering and cursor pagination. Amounts are numeric(78,0) base units.

create table merchants (
  id text primary key check (id like 'mer\_%'),
  seq bigserial not null unique,
  name text not null check (length(name) between 1 and 200),
  default_expiry_seconds integer not null default 900 check (default_expiry_seconds between 60 and 604800),
  monitoring_window_seconds integer not null default 86400 check (monitoring_window_seconds between 0 and 2592000),
  payment_tolerance_bps integer not null default 0 check (payment_tolerance_bps between 0 and 5000),
  default_speed_policy text not null default 'medium' check (default_speed_policy in ('high', 'medium', 'low_medium', 'low')),
  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now()
);

create table api_keys (
  id text primary key check (id like 'key\_%'),
  seq bigserial not null unique,
  merchant_id text not null references merchants(id) on delete cascade,
  name text not null default '',
  -- The public lookup part of the secret (also its visible prefix). The secret itself is never stored.
  lookup text not null unique,
  secret_hash bytea not null,
  scopes text[] not null,
  created_at timestamptz not null default now(),
  last_used_at timestamptz,
  revoked_at timestamptz
);
create index api_keys_merchant_idx on api_keys (merchant_id, seq desc);

create table idempotency_keys (
  merchant_id text not null references merchants(id) on delete cascade,
  key text not null,
  request_hash text not null,
  method text not null,
  path text not null,
  -- null while the first request is still running
  status_code integer,
  response_body text,
  created_at timestamptz not null default now(),
  locked_at timestamptz not null default now(),
  primary key (merchant_id, key)
);
create index idempotency_keys_created_idx on idempotency_keys (created_at);
