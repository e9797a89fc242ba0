-- Payouts (docs/refunds.md, "Payouts"): money the merchant sends from the same place as refunds —
-- to a supplier, say — without an invoice. Kassa prepares the transfer (an unsigned PSBT over the
-- merchant's own received outputs, or the EVM transaction from the treasury), the merchant's
-- wallet signs it, Kassa checks what was signed or sent. Amounts are base units of the asset
-- (numeric(78,0)). The same column names as `refunds` for the transfer (src/chains/transfer.ts).
create table payouts (
  id text primary key check (id like 'po\_%'),
  seq bigserial not null unique,
  merchant_id text not null references merchants(id) on delete cascade,
  status text not null default 'awaiting_approval' check (status in
    ('awaiting_approval', 'awaiting_signature', 'broadcast', 'completed', 'cancelled', 'failed')),
  -- the payment method paid in (BTC, USDC-ethereum): its chain, asset and decimals
  method text not null,
  chain text not null,
  asset text not null,
  decimals integer not null check (decimals between 0 and 36),
  amount numeric(78,0) not null check (amount > 0),
  destination text not null check (length(destination) <= 120),
  reference text check (length(reference) <= 200),
  description text check (length(description) <= 500),
  -- the chain's confirmation policy at creation (the merchant's default speed policy): completed at this many
  confirmations_required integer not null check (confirmations_required >= 1),
  approved_at timestamptz,
  -- Bitcoin: the unsigned PSBT Kassa built, its unsigned txid, fee rate (sat/vB) and network fee
  psbt text,
  unsigned_txid text,
  fee_rate text,
  network_fee numeric(78,0) check (network_fee >= 0),
  -- the transaction that pays it: Kassa's signed PSBT (raw_tx) or one reported by its id
  txid text,
  raw_tx text,
  -- Bitcoin: the output that pays the destination (0 in Kassa's PSBT)
  output_index integer check (output_index >= 0),
  -- EVM: the transaction the wallet should send, and the reported one as checked
  evm_tx jsonb,
  sender text,
  evm_nonce bigint check (evm_nonce >= 0),
  block_number bigint,
  broadcast_at timestamptz,
  completed_at timestamptz,
  cancelled_at timestamptz,
  failed_at timestamptz,
  failure_reason text,
  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now(),
  check (status not in ('awaiting_signature', 'broadcast', 'completed') or approved_at is not null),
  check (status not in ('broadcast', 'completed') or (txid is not null and broadcast_at is not null))
);
create index payouts_merchant_idx on payouts (merchant_id, seq desc);
-- A transaction pays one payout only.
create unique index payouts_txid on payouts (chain, txid) where txid is not null;
-- At most one PSBT per merchant and chain awaits a signature: two would spend the same outputs.
create unique index payouts_one_psbt_awaiting_signature on payouts (merchant_id, chain) where status = 'awaiting_signature' and psbt is not null;
