-- A Bitcoin refund may be paid by a transaction the merchant's wallet broadcast itself and reported
-- by txid (docs/refunds.md, rule 12): then Kassa has no raw bytes of it. A broadcast or completed
-- refund still needs its txid, and an EVM one (with a prepared evm_tx) the checked sender.
alter table refunds drop constraint refunds_broadcast_recorded;
alter table refunds add constraint refunds_broadcast_recorded check (
  status not in ('broadcast', 'completed') or (txid is not null and (raw_tx is not null or evm_tx is null or sender is not null))
);
