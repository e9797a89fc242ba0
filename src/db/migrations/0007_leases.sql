-- Single-flight leases (one chain watcher per chain across all worker processes). A lease row is
-- renewed by its holder before every pass; when the holder dies it expires and a standby takes it.
create table leases (
  name text primary key,
  holder text not null,
  expires_at timestamptz not null,
  acquired_at timestamptz not null default now()
);
