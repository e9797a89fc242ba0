-- Kassa's own record of when it knew each block: when a watcher moves a chain's cursor to a block,
-- (height, hash) is stored with Kassa's clock. A payment in a block at or below a height recorded
-- at or before an invoice's expires_at provably reached the chain by then (docs/reconciliation.md,
-- "When a payment is on time"), whatever time the block's miner wrote in its header.
create table chain_tip_observations (
  chain text not null,
  height bigint not null,
  hash text not null,
  observed_at timestamptz not null,
  primary key (chain, height)
);
create index chain_tip_observations_time on chain_tip_observations (chain, observed_at);
