/**
 * Invoices: creation (payment methods, locked rates, one deposit address per method, outbox
 * event, all in one transaction), reads, cancel and manual marks.
 */
import type { Db, Sql, TxSql } from '../db/client.ts';
import type { ChainConfig, EvmChainConfig } from '../config.ts';
import type { Logger } from '../logger.ts';
import type { AssetRegistry, CryptoAsset } from '../money/assets.ts';
import type { RateService } from '../rates/index.ts';
import type { SettlementService } from '../settlement/service.ts';
import type { Merchant, SpeedPolicy } from '../merchants/service.ts';
import { parseAmount } from '../money/amount.ts';
import { assetAmountFor } from '../money/rate.ts';
import { newId } from '../ids.ts';
import { conflict, invalidParam, unprocessable } from '../errors.ts';
import { writeEvent } from '../settlement/events.ts';
import { book, accounts } from '../settlement/ledger.ts';
import { loadInvoice, loadMethods, presentInvoice, type InvoiceObject, type InvoiceRow, type MethodRow } from './present.ts';
import type { Page } from '../api/pagination.ts';

/** Confirmations per speed policy on Bitcoin (DESIGN.md §4). */
export const BITCOIN_CONFIRMATIONS: Record<SpeedPolicy, number> = { high: 0, medium: 1, low_medium: 2, low: 6 };
/** Outputs below this many satoshis are dust for common wallets and nodes (P2PKH dust limit). */
export const BITCOIN_DUST_SATS = 546n;

export interface AddressProviders {
  /** Next unused address from the merchant's xpub/descriptor; null when Bitcoin is not set up. */
  bitcoin(tx: TxSql, merchantId: string, chain: string): Promise<{ address: string; script: Uint8Array; derivation: object } | null>;
  /** The invoice's forwarder address on an EVM chain; null when the merchant has no treasury there. */
  evm(db: Db, p: { merchantId: string; chain: string; invoiceId: string; cfg: EvmChainConfig }): Promise<{ address: string; assets: string[]; derivation?: object } | null>;
}

export interface CreateInvoiceInput {
  amount: unknown;
  currency: string;
  payment_methods?: string[] | undefined;
  order_id?: string | undefined;
  description?: string | undefined;
  metadata?: Record<string, string> | undefined;
  expires_in?: number | undefined;
  buyer_email?: string | undefined;
  locale?: 'en' | 'zh-CN' | undefined;
  redirect_url?: string | undefined;
  speed_policy?: SpeedPolicy | undefined;
}

export interface InvoiceFilters {
  status?: string | undefined;
  orderId?: string | undefined;
  createdGte?: Date | undefined;
  createdLt?: Date | undefined;
}

export interface InvoiceService {
  /** Payment methods the merchant has enabled (and the deployment supports). */
  enabledMethods(db: Db, merchantId: string): Promise<CryptoAsset[]>;
  create(merchant: Merchant, input: CreateInvoiceInput, opts?: { idempotencyKey?: string }): Promise<InvoiceObject>;
  get(merchantId: string | undefined, id: string): Promise<InvoiceObject>;
  list(merchantId: string, filters: InvoiceFilters, page: Page): Promise<{ data: InvoiceObject[]; hasMore: boolean }>;
  seqOf(merchantId: string, id: string): Promise<bigint | undefined>;
  cancel(merchantId: string, id: string): Promise<InvoiceObject>;
  mark(merchantId: string, id: string, status: 'settled' | 'invalid', by: string, reason: string | undefined): Promise<InvoiceObject>;
}

/** Thrown inside the create transaction to roll it back when the idempotency key was used before. */
class IdempotentReplay extends Error {}

export function createInvoiceService(deps: {
  sql: Sql;
  chains: Record<string, ChainConfig>;
  assets: AssetRegistry;
  rates: RateService;
  settlement: SettlementService;
  addresses: AddressProviders;
  publicUrl: string;
  logger: Logger;
}): InvoiceService {
  const { sql } = deps;
  const present = (row: InvoiceRow, methods: Awaited<ReturnType<typeof loadMethods>>) =>
    presentInvoice(row, methods.get(row.id) ?? [], deps.chains, deps.publicUrl);

  async function enabledMethods(db: Db, merchantId: string): Promise<CryptoAsset[]> {
    const out: CryptoAsset[] = [];
    const rows = await db<{ kind: 'bitcoin' | 'evm'; chain: string; assets: string[] | null }[]>`
      select 'bitcoin' as kind, chain, null::text[] as assets from bitcoin_key_sources where merchant_id = ${merchantId} and active
      union all
      select 'evm', chain, assets from merchant_evm_settings where merchant_id = ${merchantId}`;
    for (const row of rows) {
      if (row.kind === 'bitcoin') {
        const m = deps.assets.method('BTC');
        if (m && m.chain === row.chain) out.push(m);
        continue;
      }
      for (const symbol of row.assets ?? []) {
        const m = deps.assets.method(`${symbol}-${row.chain}`);
        if (m) out.push(m);
      }
    }
    return out;
  }

  /** Re-checks deadlines at read time (the repeatable job does it too, but reads must never be stale). */
  async function refreshIfDue(row: InvoiceRow): Promise<boolean> {
    const now = Date.now();
    const due = (row.status === 'new' && row.expires_at.getTime() <= now) || (row.status === 'processing' && row.monitoring_until.getTime() <= now);
    if (!due) return false;
    const changed = await sql.begin((tx) => deps.settlement.recompute(tx, [row.id]));
    await deps.settlement.publishChanges(changed);
    return changed.size > 0;
  }

  async function getOne(merchantId: string | undefined, id: string): Promise<InvoiceObject> {
    let { row, methods } = await loadInvoice(sql, id, merchantId);
    if (await refreshIfDue(row)) ({ row, methods } = await loadInvoice(sql, id, merchantId));
    return presentInvoice(row, methods, deps.chains, deps.publicUrl);
  }

  return {
    enabledMethods,

    async create(merchant, input, opts = {}) {
      const currency = deps.assets.currency(input.currency, 'currency');
      const amount = parseAmount(input.amount, currency.decimals, { param: 'amount', unit: currency.code });

      const enabled = await enabledMethods(sql, merchant.id);
      if (enabled.length === 0) {
        throw unprocessable('no_payment_methods', 'This merchant has no payment method set up. Configure Bitcoin (PUT /v1/merchant/payment_methods/bitcoin) or an EVM chain first.');
      }
      let chosen = enabled;
      if (input.payment_methods !== undefined) {
        const byId = new Map(enabled.map((m) => [m.method, m]));
        chosen = [];
        for (const [i, id] of input.payment_methods.entries()) {
          const m = byId.get(id);
          if (!m) {
            throw invalidParam(`payment_methods.${i}`, `Payment method "${id}" is not enabled for this merchant. Enabled: ${enabled.map((e) => e.method).join(', ')}.`, 'payment_method_not_enabled');
          }
          if (!chosen.includes(m)) chosen.push(m);
        }
      }

      const speed = input.speed_policy ?? merchant.defaultSpeedPolicy;
      // Rates first (network calls), outside the transaction.
      const terms = await Promise.all(
        chosen.map(async (m) => {
          const q = await deps.rates.rate(m.symbol, currency.code);
          const due = assetAmountFor(amount, currency.decimals, q.rate, m.decimals);
          if (m.method === 'BTC' && due < BITCOIN_DUST_SATS) {
            throw invalidParam('amount', `The amount is too small to pay in BTC: it converts to ${due} satoshis, below the ${BITCOIN_DUST_SATS}-satoshi dust limit wallets refuse to send.`, 'amount_too_small');
          }
          const chain = deps.chains[m.chain]!;
          const confirmations = chain.type === 'bitcoin' ? BITCOIN_CONFIRMATIONS[speed] : chain.confirmations[speed];
          return { m, rate: q, due, confirmations };
        }),
      );

      const id = newId('inv');
      const expiresIn = input.expires_in ?? merchant.defaultExpirySeconds;
      // One transaction, few round trips: the invoice row, its deposit addresses and methods in
      // multi-row inserts, the outbox event; the response is built from what was written.
      // Two pipelined round trips in one transaction: (1) the invoice row and every deposit
      // address, (2) the deposit addresses, payment methods and outbox event. The response is built
      // from what was written.
      const created = await sql
        .begin(async (tx) => {
          const chainKeys = [...new Set(terms.map((t) => t.m.chain))];
          const [rows, ...addresses] = await Promise.all([
            tx<InvoiceRow[]>`
              insert into invoices (id, merchant_id, amount, currency, currency_decimals, order_id, description, metadata, buyer_email,
                                    locale, redirect_url, speed_policy, tolerance_bps, idempotency_key, expires_at, monitoring_until)
              values (${id}, ${merchant.id}, ${amount}, ${currency.code}, ${currency.decimals}, ${input.order_id ?? null},
                      ${input.description ?? null}, ${tx.json(input.metadata ?? {})}, ${input.buyer_email ?? null}, ${input.locale ?? 'en'},
                      ${input.redirect_url ?? null}, ${speed}, ${merchant.paymentToleranceBps}, ${opts.idempotencyKey ?? null},
                      now() + make_interval(secs => ${expiresIn}),
                      now() + make_interval(secs => ${expiresIn + merchant.monitoringWindowSeconds}))
              on conflict (merchant_id, idempotency_key) do nothing
              returning *`,
            ...chainKeys.map(async (key) => {
              const chain = deps.chains[key]!;
              if (chain.type === 'bitcoin') {
                const a = await deps.addresses.bitcoin(tx, merchant.id, key);
                if (!a) throw unprocessable('no_payment_methods', 'Bitcoin is not set up for this merchant.');
                return { chain: key, address: a.address, script: Buffer.from(a.script) as Buffer | null, derivation: a.derivation as object };
              }
              const a = await deps.addresses.evm(tx, { merchantId: merchant.id, chain: key, invoiceId: id, cfg: chain });
              if (!a) throw unprocessable('no_payment_methods', `No treasury is set up on ${key}.`);
              return { chain: key, address: a.address, script: null, derivation: (a.derivation ?? {}) as object };
            }),
          ]);
          const row = (rows as InvoiceRow[])[0];
          // The same idempotency key created it already (a retry after a crash): roll back, return that one.
          if (!row) throw new IdempotentReplay();
          const byChain = new Map(addresses.map((a) => [a.chain, a]));
          const methodRows: MethodRow[] = terms.map((t) => ({
            invoice_id: id, method: t.m.method, chain: t.m.chain, asset: t.m.symbol, token: t.m.token ?? null, decimals: t.m.decimals,
            address: byChain.get(t.m.chain)!.address, rate: t.rate.rate, rate_source: t.rate.source, amount_due: t.due,
            confirmations_required: t.confirmations, paid: 0n,
          }));
          const object = presentInvoice(row, methodRows, deps.chains, deps.publicUrl);
          await Promise.all([
            tx`insert into deposit_addresses ${tx(
              addresses.map((a) => ({
                chain: a.chain, address: deps.chains[a.chain]!.type === 'evm' ? a.address.toLowerCase() : a.address,
                invoice_id: id, merchant_id: merchant.id, script: a.script, derivation: JSON.stringify(a.derivation),
              })),
              'chain', 'address', 'invoice_id', 'merchant_id', 'script', 'derivation',
            )}`,
            tx`insert into invoice_payment_methods ${tx(
              methodRows.map(({ paid: _paid, ...m }) => ({ ...m, amount_due: m.amount_due.toString() })),
              'invoice_id', 'method', 'chain', 'asset', 'token', 'decimals', 'address', 'rate', 'rate_source', 'amount_due', 'confirmations_required',
            )}`,
            writeEvent(tx, { merchantId: merchant.id, type: 'invoice.created', invoiceId: id, object }),
          ]);
          return object;
        })
        .catch((err: unknown) => {
          if (err instanceof IdempotentReplay) return null;
          throw err;
        });
      if (!created) {
        const [existing] = await sql<{ id: string }[]>`select id from invoices where merchant_id = ${merchant.id} and idempotency_key = ${opts.idempotencyKey ?? null}`;
        return getOne(merchant.id, existing!.id);
      }
      deps.logger.info({ invoice_id: id, merchant_id: merchant.id, methods: terms.map((t) => t.m.method) }, 'invoice created');
      return created;
    },

    get: getOne,

    async list(merchantId, f, page) {
      const rows = await sql<InvoiceRow[]>`
        select * from invoices
        where merchant_id = ${merchantId}
          ${f.status ? sql`and status = ${f.status}` : sql``}
          ${f.orderId ? sql`and order_id = ${f.orderId}` : sql``}
          ${f.createdGte ? sql`and created_at >= ${f.createdGte}` : sql``}
          ${f.createdLt ? sql`and created_at < ${f.createdLt}` : sql``}
          ${page.afterSeq !== undefined ? sql`and seq < ${page.afterSeq}` : sql``}
          ${page.beforeSeq !== undefined ? sql`and seq > ${page.beforeSeq}` : sql``}
        order by seq ${page.beforeSeq !== undefined ? sql`asc` : sql`desc`}
        limit ${page.limit + 1}`;
      const hasMore = rows.length > page.limit;
      const data = rows.slice(0, page.limit);
      if (page.beforeSeq !== undefined) data.reverse();
      const methods = await loadMethods(sql, data.map((r) => r.id));
      return { data: data.map((r) => present(r, methods)), hasMore };
    },

    async seqOf(merchantId, id) {
      const [row] = await sql<{ seq: bigint }[]>`select seq from invoices where id = ${id} and merchant_id = ${merchantId}`;
      return row?.seq;
    },

    async cancel(merchantId, id) {
      await loadInvoice(sql, id, merchantId); // 404 for unknown or another merchant's invoice
      const changed = await sql.begin(async (tx) => {
        const [inv] = await tx<InvoiceRow[]>`select * from invoices where id = ${id} for update`;
        if (inv!.cancelled_at) return false; // repeated command: a no-op
        const [counted] = await tx<{ n: number }[]>`select count(*)::int as n from payments where invoice_id = ${id}`;
        const n = counted?.n ?? 0;
        if (inv!.status !== 'new' || n > 0) {
          throw conflict('invoice_not_cancellable', `Only an unpaid invoice in status "new" can be cancelled; this one is "${inv!.status}"${n > 0 ? ' and has payments' : ''}.`);
        }
        // A cancelled invoice expires now; payments that still arrive are recorded as late.
        await tx`update invoices set cancelled_at = now(), expires_at = now(), updated_at = now() where id = ${id}`;
        await deps.settlement.recompute(tx, [id]);
        return true;
      });
      if (changed) await deps.settlement.publishChanges([id]);
      return getOne(merchantId, id);
    },

    async mark(merchantId, id, status, by, reason) {
      await loadInvoice(sql, id, merchantId);
      const changed = await sql.begin(async (tx) => {
        const [inv] = await tx<InvoiceRow[]>`select * from invoices where id = ${id} for update`;
        if (inv!.marked_at && inv!.status === status) return false; // repeated: no-op
        if (inv!.status === status && !inv!.marked_at && status === 'settled') {
          throw conflict('invoice_already_settled', 'This invoice is already settled.');
        }
        await tx`
          update invoices set status = ${status}, exception = 'marked', marked_at = now(), marked_by = ${by}, mark_reason = ${reason ?? null},
            settled_at = case when ${status} = 'settled' then coalesce(settled_at, now()) else settled_at end, updated_at = now()
          where id = ${id}`;
        // The decision is booked in the invoice currency: a shortfall accepted as settled is
        // written off; money received on an invoice marked invalid is owed back to the customer.
        const cur = inv!.currency;
        if (status === 'settled' && inv!.amount_paid < inv!.amount) {
          const short = inv!.amount - inv!.amount_paid;
          await book(tx, { merchantId, invoiceId: id, kind: 'mark_settled', entries: [
            { account: accounts.writtenOff(merchantId), asset: cur, amount: short },
            { account: accounts.invoiced(merchantId), asset: cur, amount: -short },
          ] });
        }
        if (status === 'invalid' && inv!.amount_paid > 0n) {
          await book(tx, { merchantId, invoiceId: id, kind: 'mark_invalid', entries: [
            { account: accounts.refundDue(merchantId), asset: cur, amount: inv!.amount_paid },
            { account: accounts.invoiced(merchantId), asset: cur, amount: -inv!.amount_paid },
          ] });
        }
        const { row, methods } = await loadInvoice(tx, id, merchantId);
        await writeEvent(tx, { merchantId, type: 'invoice.marked', invoiceId: id, object: presentInvoice(row, methods, deps.chains, deps.publicUrl) });
        return true;
      });
      if (changed) await deps.settlement.publishChanges([id]);
      return getOne(merchantId, id);
    },
  };
}

