-- Where a watcher's first pass starts, and native coin leaving EVM deposit addresses.

-- The chain's cursor (chain_state.tip_height) when the deposit address was handed out; null when
-- the chain had no cursor yet (the watcher never ran). A watcher without a cursor starts low enough
-- to cover every open invoice: at the lowest recorded height, or at the block of the oldest
-- invoice's creation time when none was recorded (src/chains/start-height.ts). Filled by a
-- trigger, so every way of creating an invoice records it.
alter table deposit_addresses add column chain_height bigint;

create function deposit_addresses_chain_height() returns trigger language plpgsql as $$
begin
  if new.chain_height is null then
    select s.tip_height into new.chain_height from chain_state s where s.chain = new.chain;
  end if;
  return new;
end $$;

create trigger deposit_addresses_chain_height before insert on deposit_addresses
  for each row execute function deposit_addresses_chain_height();

-- Native coin that left an EVM deposit address: one row per forwarder `Flushed(treasury, amount)`
-- event, whoever called the flush (Kassa's sweeper, the merchant, a stranger). Recorded by the
-- watcher in the transaction of the block range that contains it. The balance check subtracts the
-- rows still in the best chain (block hash = the watcher's kept hash, or older than the kept
-- window), so a flush orphaned by a reorg is not subtracted and a re-mined one counts once.
create table evm_outflows (
  chain text not null,
  txid text not null,
  log_index integer not null,
  -- the forwarder (deposit address), lowercase hex
  address text not null,
  amount numeric(78,0) not null check (amount > 0),
  block_number bigint not null,
  block_hash text not null,
  created_at timestamptz not null default now(),
  primary key (chain, txid, log_index)
);
create index evm_outflows_address on evm_outflows (chain, address);
