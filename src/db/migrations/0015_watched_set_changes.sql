-- The incremental watched set (docs/architecture.md §5, "Watched set"): every deposit address row
-- carries the id of the transaction that last changed what a watcher must know about it (its
-- creation, or a change of its invoice's monitoring window). A watcher that loaded the set under a
-- snapshot S only needs the rows with change_xid >= xmin(S) next time: every row changed by a
-- transaction below xmin(S) had committed (or aborted) before S was taken, so S already showed it.
alter table deposit_addresses add column change_xid xid8 not null default pg_current_xact_id();
create index deposit_addresses_chain_change_xid on deposit_addresses (chain, change_xid);

-- An insert always gets its own transaction's id, even when the statement names an old one (a row
-- copied back from a backup or a test fixture): an old id would hide the row from the next delta.
create function deposit_addresses_stamp_change_xid() returns trigger
language plpgsql as $$
begin
  new.change_xid := pg_current_xact_id();
  return new;
end;
$$;

create trigger deposit_addresses_insert_stamp
  before insert on deposit_addresses
  for each row execute function deposit_addresses_stamp_change_xid();

create function deposit_addresses_touch_on_monitoring_change() returns trigger
language plpgsql as $$
begin
  update deposit_addresses set change_xid = pg_current_xact_id() where invoice_id = new.id;
  return null;
end;
$$;

create trigger invoices_monitoring_until_changed
  after update of monitoring_until on invoices
  for each row when (old.monitoring_until is distinct from new.monitoring_until)
  execute function deposit_addresses_touch_on_monitoring_change();
