-- Payment methods, invoices, deposit addresses, on-chain payments, chain cursors, ledger, events.

-- Bitcoin public key material per merchant. A merchant may replace it; addresses already handed out
-- stay valid (they live in deposit_addresses). Only one active source per merchant and chain.
create table bitcoin_key_sources (
  id bigserial primary key,
  merchant_id text not null references merchants(id) on delete cascade,
  chain text not null,
  descriptor text not null,
  source jsonb not null,
  next_index integer not null default 0 check (next_index >= 0),
  active boolean not null default true,
  created_at timestamptz not null default now()
);
create unique index bitcoin_key_sources_active on bitcoin_key_sources (merchant_id, chain) where active;

-- Addresses derived ahead of time, so derivation stays off the request path.
create table bitcoin_address_pool (
  source_id bigint not null references bitcoin_key_sources(id) on delete cascade,
  derivation_index integer not null,
  address text not null,
  script bytea not null,
  allocated_at timestamptz,
  primary key (source_id, derivation_index)
);
create index bitcoin_address_pool_free on bitcoin_address_pool (source_id, derivation_index) where allocated_at is null;

create table merchant_evm_settings (
  merchant_id text not null references merchants(id) on delete cascade,
  chain text not null,
  treasury text not null check (treasury ~ '^0x[0-9a-fA-F]{40}$'),
  -- enabled assets on this chain: the native symbol and/or token symbols
  assets text[] not null,
  updated_at timestamptz not null default now(),
  primary key (merchant_id, chain)
);

create table invoices (
  id text primary key check (id like 'inv\_%'),
  seq bigserial not null unique,
  merchant_id text not null references merchants(id) on delete cascade,
  status text not null default 'new' check (status in ('new', 'processing', 'settled', 'expired', 'invalid')),
  exception text check (exception in ('paid_partial', 'paid_over', 'paid_late', 'marked')),
  amount numeric(78,0) not null check (amount > 0),
  currency text not null,
  currency_decimals integer not null,
  amount_paid numeric(78,0) not null default 0,
  order_id text,
  description text,
  metadata jsonb not null default '{}',
  buyer_email text,
  locale text not null default 'en',
  redirect_url text,
  speed_policy text not null check (speed_policy in ('high', 'medium', 'low_medium', 'low')),
  tolerance_bps integer not null,
  idempotency_key text,
  expires_at timestamptz not null,
  monitoring_until timestamptz not null,
  settled_at timestamptz,
  cancelled_at timestamptz,
  marked_at timestamptz,
  marked_by text,
  mark_reason text,
  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now(),
  unique (merchant_id, idempotency_key)
);
create index invoices_merchant_idx on invoices (merchant_id, seq desc);
create index invoices_merchant_order_idx on invoices (merchant_id, order_id);
create index invoices_open_idx on invoices (expires_at) where status in ('new', 'processing');
create index invoices_monitoring_idx on invoices (monitoring_until);

-- One row per (invoice, payment method): the deposit address and the locked rate.
create table invoice_payment_methods (
  invoice_id text not null references invoices(id) on delete cascade,
  method text not null,
  chain text not null,
  asset text not null,
  -- ERC-20 contract (lowercase hex); null for a chain's native coin and for Bitcoin
  token text,
  decimals integer not null,
  address text not null,
  -- price of one unit of the asset in the invoice currency, a decimal string
  rate text not null,
  rate_source text not null,
  amount_due numeric(78,0) not null check (amount_due > 0),
  confirmations_required integer not null,
  primary key (invoice_id, method)
);
create index invoice_payment_methods_address on invoice_payment_methods (chain, lower(address));

-- Every deposit address ever handed out: never shared between invoices.
create table deposit_addresses (
  chain text not null,
  -- canonical form: bech32 lowercase for Bitcoin, lowercase hex for EVM
  address text not null,
  invoice_id text not null references invoices(id) on delete cascade,
  merchant_id text not null,
  script bytea,
  derivation jsonb not null default '{}',
  created_at timestamptz not null default now(),
  primary key (chain, address)
);
create index deposit_addresses_invoice on deposit_addresses (invoice_id);

-- The chain cursor: the last block fully processed, per chain.
create table chain_state (
  chain text primary key,
  tip_height bigint,
  tip_hash text,
  updated_at timestamptz not null default now()
);

-- Recent blocks per chain (the reorg window).
create table chain_blocks (
  chain text not null,
  height bigint not null,
  hash text not null,
  prev_hash text not null,
  block_time timestamptz not null,
  primary key (chain, height)
);

create table payments (
  id text primary key check (id like 'pay\_%'),
  seq bigserial not null unique,
  chain text not null,
  txid text not null,
  -- Bitcoin: vout. EVM: log index of an ERC-20 Transfer; -1 for a native transfer in a transaction;
  -- -2 for native coin found by the balance check (txid is then 'balance:<address>:<block>').
  output_index integer not null,
  address text not null,
  invoice_id text not null references invoices(id),
  merchant_id text not null,
  method text not null,
  asset text not null,
  amount numeric(78,0) not null check (amount > 0),
  -- pending: seen unconfirmed; confirmed: in a block of the best chain; reorged: its block left
  -- the best chain; replaced: vanished from the mempool (double-spent, replaced or evicted)
  status text not null check (status in ('pending', 'confirmed', 'reorged', 'replaced')),
  block_hash text,
  block_height bigint,
  block_time timestamptz,
  first_seen_at timestamptz not null default now(),
  late boolean not null default false,
  -- what the ledger has booked for it: none, pending, available or reversed
  ledger_state text not null default 'none' check (ledger_state in ('none', 'pending', 'available', 'reversed')),
  verified_at timestamptz,
  mismatch text,
  updated_at timestamptz not null default now(),
  unique (chain, txid, output_index)
);
create index payments_invoice on payments (invoice_id);
create index payments_merchant on payments (merchant_id, seq desc);
create index payments_chain_block on payments (chain, block_height);
create index payments_open on payments (chain) where status in ('pending', 'confirmed');

-- Append-only double-entry ledger. Amounts are signed base units; each ledger transaction
-- (txn_id) sums to zero per asset, enforced at commit by the trigger below.
create table ledger_entries (
  id bigserial primary key,
  txn_id text not null,
  merchant_id text not null,
  invoice_id text,
  payment_id text,
  kind text not null,
  account text not null,
  asset text not null,
  amount numeric(78,0) not null check (amount <> 0),
  created_at timestamptz not null default now()
);
create index ledger_entries_txn on ledger_entries (txn_id);
create index ledger_entries_invoice on ledger_entries (invoice_id);

create function ledger_txn_balanced() returns trigger language plpgsql as $$
declare unbalanced text;
begin
  select asset into unbalanced from ledger_entries where txn_id = new.txn_id group by asset having sum(amount) <> 0 limit 1;
  if unbalanced is not null then
    raise exception 'ledger transaction % does not balance for %', new.txn_id, unbalanced;
  end if;
  return null;
end $$;
create constraint trigger ledger_entries_balanced after insert on ledger_entries
  deferrable initially deferred for each row execute function ledger_txn_balanced();

create function ledger_append_only() returns trigger language plpgsql as $$
begin
  raise exception 'ledger_entries is append-only';
end $$;
create trigger ledger_entries_no_update before update or delete on ledger_entries
  for each row execute function ledger_append_only();

-- The outbox: one row per event, written in the transaction that caused it.
create table events (
  id text primary key check (id like 'evt\_%'),
  seq bigserial not null unique,
  merchant_id text not null references merchants(id) on delete cascade,
  type text not null,
  invoice_id text,
  api_version text not null,
  payload jsonb not null,
  created_at timestamptz not null default now(),
  relayed_at timestamptz
);
create index events_merchant on events (merchant_id, seq desc);
create index events_unrelayed on events (seq) where relayed_at is null;
create index events_invoice on events (invoice_id);
