/**
 * The invoice statuses and exceptions (docs/architecture.md §4, §6), declared once. The state
 * machine, the invoice object, the OpenAPI schemas, the dashboard filters and the metrics all use
 * these lists. The database keeps its own copy as check constraints on `invoices.status` and
 * `invoices.exception` (src/db/migrations/0002_payments.sql); test/invoices/status.test.ts
 * checks that the two agree.
 */

/** Where an invoice is in its life (the state machine's states). */
export const INVOICE_STATUSES = ['new', 'processing', 'settled', 'expired', 'invalid'] as const;
export type InvoiceStatus = (typeof INVOICE_STATUSES)[number];

/** What is unusual about how an invoice was paid or decided (null on the invoice when nothing is). */
export const INVOICE_EXCEPTIONS = ['paid_partial', 'paid_over', 'paid_late', 'marked'] as const;
export type InvoiceException = (typeof INVOICE_EXCEPTIONS)[number];
