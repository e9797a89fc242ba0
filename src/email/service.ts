/**
 * Customer e-mails, driven by the outbox events (the webhook relay calls `createForEvent` in the
 * same transaction that marks an event relayed). Rows in `emails` are the truth; the `email`
 * queue sends them with BullMQ retries; the relay re-enqueues pending rows a flushed Redis lost.
 *
 * Which e-mail an event produces (to the invoice's buyer_email, in its locale):
 * - invoice.payment_detected: `late_payment` when the payment came after expiry; `partial_payment`
 *   (remaining amount + checkout link) when the invoice is still open and partly paid; otherwise
 *   `payment_detected`.
 * - invoice.settled: `paid`.  - invoice.expired: `expired`.
 * - refund.created: `refund_claim` with the claim link (docs/refunds.md), unless the refund was
 *   claimed or cancelled before the e-mail is written.
 * - refund.completed: `refund_completed` (once per refund: completed again after a reorg sends nothing).
 *
 * Abuse limits (Kassa must not be a way to mail anyone): an e-mail is only written once the
 * customer acted — a payment was detected on that invoice — so creating (and cancelling or letting
 * expire) an unpaid invoice never mails its buyer_email; a merchant's invoices cause at most
 * `emailsPerMerchantPerHour` e-mails per rolling hour (more are dropped and logged); merchant text
 * is bounded in length (templates.ts) and escaped in the HTML part.
 */
import type { Config } from '../config.ts';
import type { Db, Sql } from '../db/client.ts';
import type { Logger } from '../logger.ts';
import type { Queues } from '../queues/index.ts';
import { randomBase62 } from '../ids.ts';
import { loadInvoice, presentInvoice } from '../invoices/present.ts';
import { renderEmail, emailLocale, type EmailContext, type EmailKind } from './templates.ts';
import { readableAmount } from '../money/amount.ts';
import type { EmailSender } from './sender.ts';

export interface EmailEventRow {
  id: string;
  merchant_id: string;
  type: string;
  invoice_id: string | null;
  payload: { object: unknown; payment?: { id?: string } | unknown };
}

export interface EmailService {
  /** True when SMTP is configured. */
  readonly enabled: boolean;
  /** Creates the e-mail row(s) an event calls for; returns their ids (enqueue after commit). */
  createForEvent(tx: Db, event: EmailEventRow): Promise<string[]>;
  enqueue(ids: string[]): Promise<void>;
  /** Re-enqueues pending e-mails (after a Redis restart or flush). Returns how many. */
  sweep(): Promise<number>;
  /** Sends one e-mail (the `email` processor). `final` = the queue's last attempt. */
  send(emailId: string, opts?: { final?: boolean }): Promise<'sent' | 'skipped'>;
}

export function createEmailService(deps: {
  sql: Sql;
  config: Config;
  logger: Logger;
  queues: Pick<Queues, 'email'>;
  sender: EmailSender | null;
}): EmailService {
  const { sql, config } = deps;
  const enabled = deps.sender !== null;

  async function kindFor(tx: Db, event: EmailEventRow, inv: { status: string; exception: string | null }): Promise<EmailKind | null> {
    switch (event.type) {
      case 'invoice.settled':
        return 'paid';
      case 'invoice.expired':
        return 'expired';
      case 'refund.created': {
        const r = event.payload.object as { id?: string; claim_url?: string | null };
        if (!r?.id || !r.claim_url) return null;
        const [now] = await tx<{ status: string }[]>`select status from refunds where id = ${r.id}`;
        return now?.status === 'awaiting_destination' ? 'refund_claim' : null;
      }
      case 'refund.completed': {
        const id = (event.payload.object as { id?: string })?.id;
        if (!id) return null;
        const [before] = await tx`
          select 1 from emails e join events ev on ev.id = e.event_id
          where e.merchant_id = ${event.merchant_id} and e.kind = 'refund_completed' and ev.payload->'object'->>'id' = ${id} limit 1`;
        return before ? null : 'refund_completed';
      }
      case 'invoice.payment_detected': {
        const paymentId = (event.payload.payment as { id?: string } | undefined)?.id;
        if (paymentId) {
          const [p] = await tx<{ late: boolean }[]>`select late from payments where id = ${paymentId}`;
          if (p?.late) return 'late_payment';
        }
        if (inv.status === 'expired') return 'late_payment';
        if (inv.status === 'new' && inv.exception === 'paid_partial') return 'partial_payment';
        return 'payment_detected';
      }
      default:
        return null;
    }
  }

  return {
    enabled,

    async createForEvent(tx, event) {
      if (!enabled || !event.invoice_id) return [];
      const { row, methods } = await loadInvoice(tx, event.invoice_id, event.merchant_id);
      if (!row.buyer_email) return [];
      const kind = await kindFor(tx, event, row);
      if (!kind) return [];
      // Only after the customer acted: a payment was seen on this invoice.
      const [paid] = await tx`select 1 from payments where invoice_id = ${event.invoice_id} limit 1`;
      if (!paid) return [];
      // Per-merchant limit: serialised per merchant so concurrent relays cannot overshoot it.
      await tx`select pg_advisory_xact_lock(hashtextextended(${'kassa-email-limit:' + event.merchant_id}, 0))`;
      const [recent] = await tx<{ n: number }[]>`
        select count(*)::int as n from emails where merchant_id = ${event.merchant_id} and created_at > now() - interval '1 hour'`;
      if ((recent?.n ?? 0) >= config.emailsPerMerchantPerHour) {
        deps.logger.warn({ merchant_id: event.merchant_id, event_id: event.id, limit: config.emailsPerMerchantPerHour }, 'customer e-mail not sent: merchant hourly limit reached');
        return [];
      }
      const inv = presentInvoice(row, methods, config.chains, config.publicUrl);
      const [merchant] = await tx<{ name: string }[]>`select name from merchants where id = ${event.merchant_id}`;
      const locale = emailLocale(row.locale);
      const r = kind === 'refund_claim' || kind === 'refund_completed'
        ? event.payload.object as { amount: string; asset: string; rate_basis: string; requested: { kind: string; currency: string | null }; claim_url: string | null; destination: string | null; txid: string | null }
        : null;
      const refund: EmailContext['refund'] = r ? {
        amount: readableAmount(r.amount), asset: r.asset, claimUrl: r.claim_url, destination: r.destination, txid: r.txid,
        amountAtClaim: kind === 'refund_claim' && r.rate_basis === 'current' && r.requested.kind !== 'full' && r.requested.currency !== r.asset,
      } : undefined;
      const rendered = renderEmail(kind, locale, {
        merchantName: merchant?.name ?? '', invoiceId: inv.id, orderId: inv.order_id, description: inv.description,
        amount: inv.amount, currency: inv.currency, amountPaid: inv.amount_paid, amountDue: inv.amount_due, checkoutUrl: inv.checkout_url, refund,
      });
      const id = `eml_${randomBase62(22)}`;
      const rows = await tx<{ id: string }[]>`
        insert into emails (id, event_id, merchant_id, invoice_id, kind, to_address, locale, subject, text_body, html_body)
        values (${id}, ${event.id}, ${event.merchant_id}, ${event.invoice_id}, ${kind}, ${row.buyer_email}, ${locale},
                ${rendered.subject}, ${rendered.text}, ${rendered.html})
        on conflict (event_id, kind) do nothing
        returning id`;
      return rows.map((r) => r.id);
    },

    async enqueue(ids) {
      for (const id of ids) await deps.queues.email.add('send', { emailId: id }, { jobId: id });
    },

    async sweep() {
      if (!enabled) return 0;
      const rows = await sql<{ id: string }[]>`select id from emails where status = 'pending' order by created_at limit 500`;
      // jobId = e-mail id: a job that still exists (waiting, delayed for a retry) is not duplicated.
      for (const r of rows) await deps.queues.email.add('send', { emailId: r.id }, { jobId: r.id });
      return rows.length;
    },

    async send(emailId, opts = {}) {
      const [e] = await sql<{ id: string; to_address: string; subject: string; text_body: string; html_body: string; status: string; kind: string }[]>`
        select id, to_address, subject, text_body, html_body, status, kind from emails where id = ${emailId}`;
      if (!e || e.status !== 'pending' || !deps.sender) return 'skipped';
      const log = deps.logger.child({ email_id: e.id, kind: e.kind });
      try {
        await deps.sender.send({ id: e.id, to: e.to_address, subject: e.subject, text: e.text_body, html: e.html_body });
      } catch (err) {
        const message = (err as Error).message.slice(0, 500);
        await sql`
          update emails set attempts = attempts + 1, last_error = ${message},
            status = ${opts.final ? 'failed' : 'pending'} where id = ${e.id}`;
        log.warn({ err: message, final: !!opts.final }, 'e-mail not sent');
        throw err;
      }
      await sql`update emails set status = 'sent', sent_at = now(), attempts = attempts + 1, last_error = null where id = ${e.id}`;
      log.info('e-mail sent');
      return 'sent';
    },
  };
}
