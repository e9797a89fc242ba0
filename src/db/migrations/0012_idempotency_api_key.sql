-- A stored response is replayed only to the API key that made the request: another key of the
-- same merchant sending the same Idempotency-Key gets a 409 (idempotency_key_in_use_by_other_key).
-- Rows written before this migration have no key and are never replayed (they expire within 24 h).
alter table idempotency_keys add column api_key_id text;
