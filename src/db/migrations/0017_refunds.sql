-- Refunds (docs/refunds.md). Amounts are base units of the refunded asset (numeric(78,0)).
-- The invariants the database can hold itself are constraints here; the sum rule ("never more than
-- received per invoice and asset") is checked by src/refunds/service.ts in the transaction that
-- writes the refund, under a lock on the invoice row.
create table refunds (
  id text primary key check (id like 'ref\_%'),
  seq bigserial not null unique,
  merchant_id text not null references merchants(id) on delete cascade,
  invoice_id text not null references invoices(id) on delete cascade,
  status text not null default 'awaiting_destination' check (status in
    ('awaiting_destination', 'awaiting_approval', 'awaiting_signature', 'broadcast', 'completed', 'cancelled', 'failed')),
  -- the payment method refunded (BTC, USDC-ethereum): its chain, asset and decimals
  method text not null,
  chain text not null,
  asset text not null,
  decimals integer not null check (decimals between 0 and 36),
  -- what was asked: full | overpaid | decimal (requested_amount in requested_currency base units)
  amount_kind text not null check (amount_kind in ('full', 'overpaid', 'decimal')),
  requested_amount numeric(78,0) check (requested_amount > 0),
  requested_currency text,
  rate_basis text not null check (rate_basis in ('rate_then', 'current', 'fixed')),
  -- the rate used (price of one unit of the asset in the invoice currency); locked at the claim
  rate text,
  fee numeric(78,0) not null default 0 check (fee >= 0),
  -- what the customer receives, in asset base units (gross − fee); re-computed at the claim, then fixed
  amount numeric(78,0) not null check (amount > 0),
  reason text check (length(reason) <= 500),
  -- the claim link: sha256 of the token (lookup) and the token sealed with KASSA_SECRET_KEY (shown to the merchant)
  claim_token_hash bytea not null unique,
  claim_token_sealed text not null,
  destination text,
  claimed_at timestamptz,
  rate_locked_at timestamptz,
  approved_at timestamptz,
  -- Bitcoin: the unsigned PSBT Kassa built, its unsigned txid, fee rate (sat/vB) and network fee
  psbt text,
  unsigned_txid text,
  fee_rate text,
  network_fee numeric(78,0) check (network_fee >= 0),
  -- the signed transaction, recorded before it is broadcast (a re-upload re-broadcasts this)
  txid text,
  raw_tx text,
  broadcast_at timestamptz,
  completed_at timestamptz,
  cancelled_at timestamptz,
  failed_at timestamptz,
  failure_reason text,
  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now(),
  check (status = 'awaiting_destination' or status = 'cancelled' or destination is not null),
  check (status not in ('awaiting_signature', 'broadcast', 'completed') or approved_at is not null),
  check (status not in ('broadcast', 'completed') or (txid is not null and raw_tx is not null)),
  check ((amount_kind = 'decimal') = (requested_amount is not null and requested_currency is not null)),
  check (rate_basis <> 'fixed' or rate is not null)
);
create index refunds_merchant_idx on refunds (merchant_id, seq desc);
create index refunds_invoice_idx on refunds (invoice_id, seq desc);
-- At most one refund per invoice awaiting the merchant's signature (docs/refunds.md, rule 8).
create unique index refunds_one_awaiting_signature on refunds (invoice_id) where status = 'awaiting_signature';
-- A signed transaction belongs to one refund only (accepted once).
create unique index refunds_txid on refunds (chain, txid) where txid is not null;
