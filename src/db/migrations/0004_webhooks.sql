-- Webhook endpoints, deliveries (one per event and endpoint) with every attempt, and the customer
-- e-mail outbox. The database is the source of truth for delivery schedules: BullMQ jobs are only
-- a way to wake a worker at `next_attempt_at`, and the relay re-creates them when Redis lost them.

create table webhook_endpoints (
  id text primary key check (id like 'we\_%'),
  seq bigserial not null unique,
  merchant_id text not null references merchants(id) on delete cascade,
  url text not null,
  description text,
  -- subscribed event types; null = every type
  events text[],
  enabled boolean not null default true,
  -- AES-256-GCM boxes (src/crypto/secretbox.ts, context = endpoint id) of "whsec_…" secrets
  secret_box text not null,
  previous_secret_box text,
  previous_secret_expires_at timestamptz,
  -- first failed attempt since the last successful one (automatic disabling after 3 days)
  failing_since timestamptz,
  disabled_reason text,
  disabled_at timestamptz,
  deleted_at timestamptz,
  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now()
);
create index webhook_endpoints_merchant on webhook_endpoints (merchant_id, seq desc) where deleted_at is null;

create table webhook_deliveries (
  id text primary key check (id like 'del\_%'),
  event_id text not null references events(id) on delete cascade,
  endpoint_id text not null references webhook_endpoints(id) on delete cascade,
  merchant_id text not null,
  status text not null default 'pending' check (status in ('pending', 'delivered', 'failed')),
  -- attempts ever made, and attempts in the current series (reset by a manual redelivery)
  attempt_count integer not null default 0,
  series_attempts integer not null default 0,
  next_attempt_at timestamptz,
  -- a worker holds the delivery while it sends (duplicate jobs never send twice)
  locked_until timestamptz,
  last_attempt_at timestamptz,
  last_status_code integer,
  last_error text,
  delivered_at timestamptz,
  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now(),
  unique (event_id, endpoint_id)
);
create index webhook_deliveries_due on webhook_deliveries (next_attempt_at) where status = 'pending';
create index webhook_deliveries_endpoint on webhook_deliveries (endpoint_id, status);

create table webhook_attempts (
  id bigserial primary key,
  delivery_id text not null references webhook_deliveries(id) on delete cascade,
  attempt integer not null,
  started_at timestamptz not null,
  status_code integer,
  duration_ms integer not null,
  error text,
  -- at most 1 KB of the response body
  response_snippet text,
  unique (delivery_id, attempt)
);

create table emails (
  id text primary key check (id like 'eml\_%'),
  seq bigserial not null unique,
  event_id text not null references events(id) on delete cascade,
  merchant_id text not null references merchants(id) on delete cascade,
  invoice_id text,
  kind text not null check (kind in ('payment_detected', 'paid', 'partial_payment', 'expired', 'late_payment')),
  to_address text not null,
  locale text not null,
  subject text not null,
  text_body text not null,
  html_body text not null,
  status text not null default 'pending' check (status in ('pending', 'sent', 'failed')),
  attempts integer not null default 0,
  last_error text,
  sent_at timestamptz,
  created_at timestamptz not null default now(),
  unique (event_id, kind)
);
create index emails_pending on emails (created_at) where status = 'pending';
