-- One sweep transaction may flush several forwarders (ForwarderFactory.flushMany): each forwarder
-- keeps its own evm_sweeps row, so a transaction hash is unique per (chain, forwarder), not per chain.
drop index evm_sweeps_tx;
create unique index evm_sweeps_tx on evm_sweeps (chain, tx_hash, forwarder) where tx_hash is not null;
