/**
 * Read-only queries behind the dashboard pages (search, lists, overview statistics, an invoice's
 * events and webhook deliveries). Every query is scoped to the session's merchant. Writes never
 * happen here: they go through the same services as the API.
 */
import type { Sql } from '../db/client.ts';
import type { AssetRegistry } from '../money/assets.ts';
import { formatAmount } from '../money/amount.ts';
import type { InvoiceRow } from '../invoices/present.ts';


export interface InvoiceSearch {
  q?: string | undefined;
  status?: string | undefined;
  /** An exception code, "any" (some exception) or "none". */
  exception?: string | undefined;
  method?: string | undefined;
  from?: Date | undefined;
  to?: Date | undefined;
}

export interface InvoiceListRow extends InvoiceRow {
  seq: bigint;
  methods: string[];
}

/** Newest first, `limit` per page; `after` / `before` are invoice ids (cursor). */
export async function searchInvoices(
  sql: Sql,
  merchantId: string,
  f: InvoiceSearch,
  page: { limit: number; after?: string | undefined; before?: string | undefined },
): Promise<{ rows: InvoiceListRow[]; hasNext: boolean; hasPrev: boolean }> {
  const cursorId = page.after ?? page.before;
  let cursor: bigint | undefined;
  if (cursorId) {
    const [c] = await sql<{ seq: bigint }[]>`select seq from invoices where id = ${cursorId} and merchant_id = ${merchantId}`;
    cursor = c?.seq;
  }
  const backwards = page.before !== undefined && cursor !== undefined;
  const q = f.q?.trim();
  const rows = await sql<InvoiceListRow[]>`
    select i.*, (select coalesce(array_agg(m.method order by m.method), '{}') from invoice_payment_methods m where m.invoice_id = i.id) as methods
    from invoices i
    where i.merchant_id = ${merchantId}
      ${q ? sql`and (i.id = ${q} or i.order_id = ${q}
                 or exists (select 1 from invoice_payment_methods m where m.invoice_id = i.id and lower(m.address) = lower(${q}))
                 or exists (select 1 from payments p where p.invoice_id = i.id and p.merchant_id = ${merchantId}
                            and (lower(p.txid) = lower(${q}) or lower(p.address) = lower(${q}))))` : sql``}
      ${f.status ? sql`and i.status = ${f.status}` : sql``}
      ${f.exception === 'none' ? sql`and i.exception is null` : f.exception === 'any' ? sql`and i.exception is not null` : f.exception ? sql`and i.exception = ${f.exception}` : sql``}
      ${f.method ? sql`and exists (select 1 from invoice_payment_methods m where m.invoice_id = i.id and m.method = ${f.method})` : sql``}
      ${f.from ? sql`and i.created_at >= ${f.from}` : sql``}
      ${f.to ? sql`and i.created_at < ${f.to}` : sql``}
      ${cursor !== undefined ? (backwards ? sql`and i.seq > ${cursor}` : sql`and i.seq < ${cursor}`) : sql``}
    order by i.seq ${backwards ? sql`asc` : sql`desc`}
    limit ${page.limit + 1}`;
  const more = rows.length > page.limit;
  const data = rows.slice(0, page.limit);
  if (backwards) data.reverse();
  return {
    rows: data,
    hasNext: backwards ? true : more,
    hasPrev: backwards ? more : cursor !== undefined,
  };
}

export interface InvoiceEventRow {
  id: string;
  type: string;
  created_at: Date;
  payload: { data?: { object?: { status?: string; exception?: string | null; amount_paid?: string; marked?: { by?: string; reason?: string } | null } } } & Record<string, unknown>;
}

export async function invoiceEvents(sql: Sql, merchantId: string, invoiceId: string): Promise<InvoiceEventRow[]> {
  return sql<InvoiceEventRow[]>`
    select id, type, created_at, payload from events where merchant_id = ${merchantId} and invoice_id = ${invoiceId} order by seq`;
}

export interface DeliveryRow {
  event_id: string;
  id: string;
  url: string;
  status: string;
  attempt_count: number;
  last_status_code: number | null;
  last_error: string | null;
  delivered_at: Date | null;
  next_attempt_at: Date | null;
}

/** Webhook deliveries of these events (empty when the webhooks tables are absent). */
export async function deliveriesOf(sql: Sql, merchantId: string, eventIds: string[]): Promise<DeliveryRow[]> {
  if (eventIds.length === 0) return [];
  return sql<DeliveryRow[]>`
    select d.event_id, d.id, w.url, d.status, d.attempt_count, d.last_status_code, d.last_error, d.delivered_at, d.next_attempt_at
    from webhook_deliveries d join webhook_endpoints w on w.id = d.endpoint_id
    where d.merchant_id = ${merchantId} and d.event_id = any(${eventIds}) order by d.created_at, d.id`;
}

export interface Overview {
  from: Date;
  to: Date;
  days: { day: string; settled: number; expired: number; invalid: number; open: number }[];
  created: number;
  settled: number;
  /** "settled / created" as a percentage string with one decimal, or null without invoices. */
  successRate: string | null;
  /** Median seconds from creation to settlement (automatic settlements only), or null. */
  medianSettleSeconds: number | null;
  /** Per payment method: total (decimal string) and per-day base-unit sums (for bar heights only). */
  volume: { method: string; asset: string; chain: string; payments: number; amount: string; perDay: bigint[] }[];
  exceptions: { exception: string; n: number }[];
}

/** Statistics for the `days` days up to and including today (UTC). */
export async function overview(sql: Sql, assets: AssetRegistry, merchantId: string, days: number, now = new Date()): Promise<Overview> {
  const to = new Date(Date.UTC(now.getUTCFullYear(), now.getUTCMonth(), now.getUTCDate() + 1));
  const from = new Date(to.getTime() - days * 86_400_000);
  const perDay = await sql<{ day: string; status: string; n: number }[]>`
    select to_char(date_trunc('day', created_at at time zone 'UTC'), 'YYYY-MM-DD') as day, status, count(*)::int as n
    from invoices where merchant_id = ${merchantId} and created_at >= ${from} and created_at < ${to}
    group by 1, 2`;
  const byDay = new Map<string, Overview['days'][number]>();
  for (let t = from.getTime(); t < to.getTime(); t += 86_400_000) {
    const day = new Date(t).toISOString().slice(0, 10);
    byDay.set(day, { day, settled: 0, expired: 0, invalid: 0, open: 0 });
  }
  let created = 0;
  let settled = 0;
  for (const r of perDay) {
    const d = byDay.get(r.day);
    if (!d) continue;
    created += r.n;
    if (r.status === 'settled') {
      d.settled += r.n;
      settled += r.n;
    } else if (r.status === 'expired') d.expired += r.n;
    else if (r.status === 'invalid') d.invalid += r.n;
    else d.open += r.n;
  }
  const [median] = await sql<{ s: number | null }[]>`
    select percentile_cont(0.5) within group (order by extract(epoch from settled_at - created_at))::float8 as s
    from invoices where merchant_id = ${merchantId} and created_at >= ${from} and created_at < ${to}
      and status = 'settled' and settled_at is not null and marked_at is null`;
  const vol = await sql<{ method: string; asset: string; chain: string; day: string; payments: number; amount: bigint }[]>`
    select method, asset, chain, to_char(date_trunc('day', first_seen_at at time zone 'UTC'), 'YYYY-MM-DD') as day,
           count(*)::int as payments, sum(amount)::numeric as amount
    from payments
    where merchant_id = ${merchantId} and status in ('pending', 'confirmed') and first_seen_at >= ${from} and first_seen_at < ${to}
    group by 1, 2, 3, 4 order by method, day`;
  const exceptions = await sql<{ exception: string; n: number }[]>`
    select exception, count(*)::int as n from invoices
    where merchant_id = ${merchantId} and created_at >= ${from} and created_at < ${to} and exception is not null
    group by exception order by exception`;
  const dayIndex = new Map([...byDay.keys()].map((d, i) => [d, i]));
  const perMethod = new Map<string, Overview['volume'][number] & { total: bigint }>();
  for (const v of vol) {
    const m = perMethod.get(v.method) ?? { method: v.method, asset: v.asset, chain: v.chain, payments: 0, amount: '', perDay: Array<bigint>(byDay.size).fill(0n), total: 0n };
    m.payments += v.payments;
    m.total += v.amount;
    const i = dayIndex.get(v.day);
    if (i !== undefined) m.perDay[i] = (m.perDay[i] ?? 0n) + v.amount;
    perMethod.set(v.method, m);
  }
  const volume = [...perMethod.values()].map(({ total, ...m }) => ({ ...m, amount: formatAmount(total, assets.method(m.method)?.decimals ?? 0) }));
  return {
    from, to, days: [...byDay.values()], created, settled,
    successRate: created > 0 ? formatAmount(BigInt(Math.round((settled * 1000) / created)), 1) : null,
    medianSettleSeconds: median?.s ?? null,
    volume, exceptions,
  };
}

export interface RefundActor {
  refund_id: string;
  action: 'created' | 'approved';
  user_id: string;
  email: string;
}

/** Who created and approved these refunds in the dashboard (refunds created over the API have no row). */
export async function refundActors(sql: Sql, merchantId: string, refundIds: string[]): Promise<RefundActor[]> {
  if (refundIds.length === 0) return [];
  return sql<RefundActor[]>`
    select a.refund_id, a.action, a.user_id, u.email from refund_dashboard_actions a join dashboard_users u on u.id = a.user_id
    where a.merchant_id = ${merchantId} and a.refund_id = any(${refundIds})`;
}

/** The merchant lets the person who created a refund approve it too (migration 0022). */
export async function refundSinglePerson(sql: Sql, merchantId: string): Promise<boolean> {
  const [m] = await sql<{ refund_single_person: boolean }[]>`select refund_single_person from merchants where id = ${merchantId}`;
  return m?.refund_single_person ?? false;
}
