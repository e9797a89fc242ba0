-- EVM sweeps: deploy + flush of an invoice's forwarder to the merchant treasury. One row per
-- transaction sent. The watcher's balance check subtracts the native amount of confirmed sweeps
-- that are still in the best chain (docs/evm.md, "Balance check").
create table evm_sweeps (
  id bigserial primary key,
  invoice_id text not null references invoices(id) on delete cascade,
  chain text not null,
  -- forwarder (deposit address) and treasury, lowercase hex
  forwarder text not null,
  treasury text not null,
  tx_hash text,
  -- sent: broadcast, receipt not seen yet; confirmed: mined with status success;
  -- failed: reverted or could not be sent (error says why)
  status text not null check (status in ('sent', 'confirmed', 'failed')),
  -- native coin moved (from the Forwarder's Flushed event), base units
  native_amount numeric(78,0) not null default 0,
  -- ERC-20 moved: {"0xtoken(lowercase)": "base units"} from TokensFlushed events
  token_amounts jsonb not null default '{}',
  block_number bigint,
  block_hash text,
  error text,
  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now()
);
create index evm_sweeps_invoice on evm_sweeps (invoice_id);
create index evm_sweeps_forwarder on evm_sweeps (chain, forwarder);
create unique index evm_sweeps_tx on evm_sweeps (chain, tx_hash) where tx_hash is not null;
