-- POST /v1/invoices claims its Idempotency-Key and stores the 201 response in the same statement
-- that writes the invoice (no separate claim/store round trips). That response is assembled in
-- SQL, so it cannot be sealed with KASSA_SECRET_KEY like `response_body`; it carries no secret (an
-- invoice as GET /v1/invoices/:id shows it) and is kept here in the clear. A row has at most one
-- of `response_body` (sealed) and `response_plain`.
alter table idempotency_keys add column response_plain text;
alter table idempotency_keys add constraint idempotency_keys_one_response check (response_body is null or response_plain is null);
