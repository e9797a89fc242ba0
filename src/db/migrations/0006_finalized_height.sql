-- Chains with a finality gadget: blocks at or below the node's `finalized` block count as fully
-- confirmed whatever their confirmation count (EVM chains with `use_finalized_tag`).
alter table chain_state add column finalized_height bigint;
