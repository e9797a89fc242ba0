/** Reading on-chain payments (the API's /v1/payments and an invoice's payments). */
import type { Db } from '../db/client.ts';
import { formatAmount } from '../money/amount.ts';
import { currencyValueOf } from '../money/rate.ts';
import type { Page } from '../api/pagination.ts';

export interface PaymentView {
  id: string;
  invoice_id: string;
  chain: string;
  txid: string;
  output_index: number;
  address: string;
  method: string;
  asset: string;
  /** From the invoice's method; null when the payment used an asset the invoice did not offer. */
  decimals: number | null;
  amount: bigint;
  status: 'pending' | 'confirmed' | 'reorged' | 'replaced';
  block_hash: string | null;
  block_height: bigint | null;
  block_time: Date | null;
  first_seen_at: Date;
  late: boolean;
  rate: string | null;
  currency: string;
  currency_decimals: number;
  tip_height: bigint | null;
  mismatch: string | null;
}

export function confirmationsOf(p: Pick<PaymentView, 'status' | 'block_height' | 'tip_height'>): number {
  if (p.status !== 'confirmed' || p.block_height === null || p.tip_height === null) return 0;
  return Math.max(0, Number(p.tip_height - p.block_height) + 1);
}

/** `decimalsOf` resolves an asset's decimals when the invoice did not offer that method. */
export function presentPayment(p: PaymentView, decimalsOf: (method: string) => number) {
  const decimals = p.decimals ?? decimalsOf(p.method);
  return {
    id: p.id,
    object: 'payment' as const,
    invoice_id: p.invoice_id,
    method: p.method,
    chain: p.chain,
    asset: p.asset,
    txid: p.txid,
    output_index: p.output_index,
    address: p.address,
    amount: formatAmount(p.amount, decimals),
    status: p.status,
    confirmations: confirmationsOf(p),
    block_height: p.block_height === null ? null : Number(p.block_height),
    block_hash: p.block_hash,
    block_time: p.block_time?.toISOString() ?? null,
    first_seen_at: p.first_seen_at.toISOString(),
    late: p.late,
    rate: p.rate,
    value: p.rate ? formatAmount(currencyValueOf(p.amount, decimals, p.rate, p.currency_decimals), p.currency_decimals) : null,
    currency: p.currency,
  };
}

export type PaymentObject = ReturnType<typeof presentPayment>;

/** Payments of a merchant (optionally of one invoice / time range), newest first. */
export async function listPayments(
  db: Db,
  merchantId: string,
  f: { invoiceId?: string; from?: Date; to?: Date; orInvoiceIds?: string[] },
  page: Page | null,
): Promise<{ data: PaymentView[]; hasMore: boolean }> {
  const limit = page ? page.limit + 1 : null;
  const rows = await db<PaymentView[]>`
    select p.id, p.invoice_id, p.chain, p.txid, p.output_index, p.address, p.method, p.asset, p.amount, p.status, p.block_hash,
           p.block_height, p.block_time, p.first_seen_at, p.late, p.mismatch, m.rate,
           m.decimals, i.currency, i.currency_decimals, c.tip_height
    from payments p
    join invoices i on i.id = p.invoice_id
    left join invoice_payment_methods m on m.invoice_id = p.invoice_id and m.method = p.method
    left join chain_state c on c.chain = p.chain
    where p.merchant_id = ${merchantId}
      ${f.invoiceId ? db`and p.invoice_id = ${f.invoiceId}` : db``}
      ${f.orInvoiceIds && f.from && f.to
        ? db`and (p.invoice_id = any(${f.orInvoiceIds}) or (p.first_seen_at >= ${f.from} and p.first_seen_at < ${f.to}))`
        : db`${f.from ? db`and p.first_seen_at >= ${f.from}` : db``} ${f.to ? db`and p.first_seen_at < ${f.to}` : db``}`}
      ${page?.afterSeq !== undefined ? db`and p.seq < ${page.afterSeq}` : db``}
      ${page?.beforeSeq !== undefined ? db`and p.seq > ${page.beforeSeq}` : db``}
    order by p.seq ${page?.beforeSeq !== undefined ? db`asc` : db`desc`}
    ${limit !== null ? db`limit ${limit}` : db``}`;
  const hasMore = page ? rows.length > page.limit : false;
  const data = page ? rows.slice(0, page.limit) : rows;
  if (page?.beforeSeq !== undefined) data.reverse();
  return { data, hasMore };
}

/** The list position (`seq`) of a merchant's payment, for a page cursor; undefined for another merchant's or an unknown id. */
export async function paymentSeq(db: Db, merchantId: string, id: string): Promise<bigint | undefined> {
  const [r] = await db<{ seq: bigint }[]>`select seq from payments where id = ${id} and merchant_id = ${merchantId}`;
  return r?.seq;
}
