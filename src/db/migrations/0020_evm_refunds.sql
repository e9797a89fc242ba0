-- EVM refunds (docs/refunds.md): the merchant's own wallet sends the transaction Kassa prepared and
-- reports its hash; Kassa checks it on chain. There is no raw transaction to record (Kassa never
-- sees the signed bytes), so a broadcast EVM refund carries what was checked instead.
alter table refunds
  -- the transaction the merchant's wallet should send: {"chain_id", "from", "to", "value", "data"}
  add column evm_tx jsonb,
  -- the reported transaction as checked: the account that sent it and its nonce (a replacement
  -- reported later must have the same sender and nonce, so at most one of them can be mined)
  add column sender text,
  add column evm_nonce bigint check (evm_nonce >= 0),
  -- the block that holds the refund transaction, as last seen by the tracker
  add column block_number bigint;

-- broadcast/completed needs the recorded transaction: the raw bytes (Bitcoin) or the checked EVM sender.
alter table refunds drop constraint refunds_check2;
alter table refunds add constraint refunds_broadcast_recorded check (
  status not in ('broadcast', 'completed') or (txid is not null and (raw_tx is not null or (evm_tx is not null and sender is not null)))
);
