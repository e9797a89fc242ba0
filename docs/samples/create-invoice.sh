#!/bin/sh
# Creates an invoice with curl. KASSA_URL: where Kassa runs; KASSA_API_KEY: a key with invoices:write.
# The Idempotency-Key makes a retry of this exact request safe (the first answer is replayed).
set -eu
curl -sS --fail-with-body -X POST "$KASSA_URL/v1/invoices" \
  -H "Authorization: Bearer $KASSA_API_KEY" \
  -H "Idempotency-Key: ${IDEMPOTENCY_KEY:-order-1042-$(date +%s)}" \
  -H "Content-Type: application/json" \
  -d '{"amount":"25.00","currency":"USD","order_id":"order-1042"}'
