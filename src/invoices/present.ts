/**
 * The invoice as the API, webhooks and the checkout page show it (docs/architecture.md §4). Shared by every
 * reader so the shape never drifts between them.
 */
import type { Db } from '../db/client.ts';
import type { ChainConfig } from '../config.ts';
import { chainFamily, networkName } from '../chains/families.ts';
import { bitcoinUri } from '../chains/bitcoin/family.ts';
import { formatAmount } from '../money/amount.ts';
import { currencyValueOf, payableAmountFor } from '../money/rate.ts';
import { notFound } from '../errors.ts';
import type { InvoiceException, InvoiceStatus } from './status.ts';

export interface InvoiceRow {
  id: string;
  merchant_id: string;
  status: InvoiceStatus;
  exception: InvoiceException | null;
  amount: bigint;
  currency: string;
  currency_decimals: number;
  amount_paid: bigint;
  order_id: string | null;
  description: string | null;
  metadata: Record<string, string>;
  buyer_email: string | null;
  locale: string;
  redirect_url: string | null;
  speed_policy: string;
  tolerance_bps: number;
  expires_at: Date;
  monitoring_until: Date;
  settled_at: Date | null;
  cancelled_at: Date | null;
  marked_at: Date | null;
  marked_by: string | null;
  mark_reason: string | null;
  created_at: Date;
  updated_at: Date;
}

export interface MethodRow {
  invoice_id: string;
  method: string;
  chain: string;
  asset: string;
  token: string | null;
  decimals: number;
  address: string;
  rate: string;
  rate_source: string;
  amount_due: bigint;
  confirmations_required: number;
  /** Sum of live payments (pending or confirmed) to this method, in asset base units. */
  paid: bigint;
}

/**
 * The wallet link of a payment method (its family's: BIP 21, EIP-681). A method whose chain is no
 * longer configured keeps the BIP 21 form it has always had.
 */
export function paymentUri(m: Pick<MethodRow, 'address' | 'token' | 'decimals'>, chain: ChainConfig | undefined, due: bigint, label?: string): string {
  return chain ? chainFamily(chain).paymentUri(m, due, label) : bitcoinUri(m, due, label);
}

export function presentInvoice(inv: InvoiceRow, methods: MethodRow[], chains: Record<string, ChainConfig>, publicUrl: string) {
  const remaining = inv.amount > inv.amount_paid ? inv.amount - inv.amount_paid : 0n;
  const open = inv.status === 'new';
  return {
    id: inv.id,
    object: 'invoice' as const,
    status: inv.status,
    exception: inv.exception,
    amount: formatAmount(inv.amount, inv.currency_decimals),
    currency: inv.currency,
    amount_paid: formatAmount(inv.amount_paid, inv.currency_decimals),
    amount_due: formatAmount(open ? remaining : 0n, inv.currency_decimals),
    order_id: inv.order_id,
    description: inv.description,
    metadata: inv.metadata,
    buyer_email: inv.buyer_email,
    locale: inv.locale,
    redirect_url: inv.redirect_url,
    speed_policy: inv.speed_policy,
    payment_tolerance_percent: formatAmount(BigInt(inv.tolerance_bps), 2),
    checkout_url: `${publicUrl}/pay/${inv.id}`,
    created_at: inv.created_at.toISOString(),
    expires_at: inv.expires_at.toISOString(),
    monitoring_until: inv.monitoring_until.toISOString(),
    settled_at: inv.settled_at?.toISOString() ?? null,
    cancelled_at: inv.cancelled_at?.toISOString() ?? null,
    marked: inv.marked_at ? { at: inv.marked_at.toISOString(), by: inv.marked_by, reason: inv.mark_reason } : null,
    payment_methods: methods.map((m) => {
      const chain = chains[m.chain];
      // What is still due in this asset: the whole price converted at this method's locked rate,
      // minus what already arrived (through any method).
      const due = open && remaining > 0n ? payableAmountFor(remaining, inv.currency_decimals, m.rate, m.asset, m.decimals) : 0n;
      return {
        method: m.method,
        chain: m.chain,
        network: chain ? chain.network : 'unknown',
        network_name: networkName(m.chain, chain),
        ...(chain ? chainFamily(chain).apiFields() : {}),
        asset: m.asset,
        ...(m.token ? { token: m.token } : {}),
        address: m.address,
        amount: formatAmount(m.amount_due, m.decimals),
        amount_due: formatAmount(due, m.decimals),
        amount_paid: formatAmount(m.paid, m.decimals),
        rate: m.rate,
        confirmations_required: m.confirmations_required,
        payment_uri: paymentUri(m, chain, due),
      };
    }),
  };
}

export type InvoiceObject = ReturnType<typeof presentInvoice>;

/** Loads and presents one invoice. `merchantId` scopes the read (undefined only for public/system reads). */
export async function loadInvoice(db: Db, id: string, merchantId: string | undefined): Promise<{ row: InvoiceRow; methods: MethodRow[] }> {
  const [row] = await db<InvoiceRow[]>`
    select * from invoices where id = ${id} ${merchantId !== undefined ? db`and merchant_id = ${merchantId}` : db``}`;
  if (!row) throw notFound('invoice', id, 'id');
  const methods = await loadMethods(db, [id]);
  return { row, methods: methods.get(id) ?? [] };
}

export async function loadMethods(db: Db, invoiceIds: string[]): Promise<Map<string, MethodRow[]>> {
  const out = new Map<string, MethodRow[]>();
  if (invoiceIds.length === 0) return out;
  const rows = await db<MethodRow[]>`
    select m.*, coalesce((select sum(p.amount) from payments p
                          where p.invoice_id = m.invoice_id and p.method = m.method and p.status in ('pending', 'confirmed')), 0)::numeric as paid
    from invoice_payment_methods m where m.invoice_id = any(${invoiceIds})
    order by m.invoice_id, m.method`;
  for (const r of rows) {
    const list = out.get(r.invoice_id) ?? [];
    list.push(r);
    out.set(r.invoice_id, list);
  }
  return out;
}

export { currencyValueOf };
