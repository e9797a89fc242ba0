-- The BEFORE INSERT triggers on deposit_addresses (0010: chain_height, 0015: change_xid) run their
-- PL/pgSQL function only when it has something to do. The invoice statement fills in chain_height
-- itself, and change_xid defaults to the inserting transaction's id, so for it neither function
-- runs (a PL/pgSQL call per row was a measurable part of creating an invoice). A row inserted
-- without chain_height, or naming another transaction's change_xid, is handled as before.
drop trigger deposit_addresses_chain_height on deposit_addresses;
create trigger deposit_addresses_chain_height before insert on deposit_addresses
  for each row when (new.chain_height is null)
  execute function deposit_addresses_chain_height();

drop trigger deposit_addresses_insert_stamp on deposit_addresses;
create trigger deposit_addresses_insert_stamp before insert on deposit_addresses
  for each row when (new.change_xid is distinct from pg_current_xact_id())
  execute function deposit_addresses_stamp_change_xid();
