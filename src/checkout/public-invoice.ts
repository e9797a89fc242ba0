/**
 * The public view of an invoice: what the paying customer needs and nothing else. Read by the
 * checkout page, `GET /v1/public/invoices/:id` and its SSE stream. Never contains metadata,
 * order ids, buyer e-mail, merchant ids, rates, tolerance or staff marks.
 */
import type { Deps } from '../deps.ts';
import { notFound } from '../errors.ts';
import { listPayments, presentPayment } from '../invoices/payments.ts';
import type { InvoiceObject } from '../invoices/present.ts';
import { readableAmount } from '../money/amount.ts';

/** Invoice ids are `inv_` + 22 base62 characters (src/ids.ts); anything else is a 404 without a query. */
export const INVOICE_ID_RE = /^inv_[0-9A-Za-z]{22}$/;

export interface PublicPaymentMethod {
  method: string;
  chain: string;
  network: string;
  /** The network's real name ("Base", "Arbitrum One", "Bitcoin"): src/chains/families.ts networkName. */
  network_name: string;
  chain_id?: number;
  asset: string;
  token?: string;
  address: string;
  /** The full price in this asset at the locked rate (amounts here drop trailing zeros after the second decimal). */
  amount: string;
  /** What is still due in this asset (0 once nothing more is expected). */
  amount_due: string;
  amount_paid: string;
  confirmations_required: number;
  /** Wallet URI for `amount_due`: BIP21 with `label` = merchant name, or EIP-681 as the API gives it. */
  payment_uri: string;
}

export interface PublicPayment {
  method: string;
  asset: string;
  amount: string;
  status: 'pending' | 'confirmed';
  confirmations: number;
  /** Bitcoin txid or EVM transaction hash. */
  txid: string;
  /** The transaction on a block explorer, when the chain config has `explorer_tx_url`; else null. */
  explorer_url: string | null;
}

/**
 * A chain's `explorer_tx_url` with `{txid}` filled in, or null: only for an http(s) template and a
 * txid of hex digits (optionally 0x-prefixed), so nothing else can end up in the link.
 */
export function explorerTxUrl(template: string | undefined, txid: string): string | null {
  if (!template || !/^https?:\/\//i.test(template) || !template.includes('{txid}')) return null;
  if (!/^(0x)?[0-9a-fA-F]+$/.test(txid)) return null;
  return template.replace('{txid}', txid);
}

export interface PublicInvoice {
  id: string;
  object: 'public_invoice';
  status: InvoiceObject['status'];
  exception: InvoiceObject['exception'];
  merchant_name: string;
  description: string | null;
  amount: string;
  currency: string;
  amount_paid: string;
  amount_due: string;
  expires_at: string;
  /** The server's clock when this was read (the page's countdown corrects for client clock skew). */
  server_time: string;
  redirect_url: string | null;
  locale: string;
  payment_methods: PublicPaymentMethod[];
  payments: PublicPayment[];
}

/** Adds `label=<merchant name>` to a BIP21 URI (RFC 3986 percent-encoding, spaces as %20). */
export function withBip21Label(uri: string, label: string): string {
  if (!uri.startsWith('bitcoin:') || !label) return uri;
  return `${uri}${uri.includes('?') ? '&' : '?'}label=${encodeURIComponent(label)}`;
}

export function toPublicInvoice(inv: InvoiceObject, merchantName: string, payments: PublicPayment[], now = new Date()): PublicInvoice {
  return {
    id: inv.id,
    object: 'public_invoice',
    status: inv.status,
    exception: inv.exception,
    merchant_name: merchantName,
    description: inv.description,
    amount: inv.amount,
    currency: inv.currency,
    amount_paid: inv.amount_paid,
    amount_due: inv.amount_due,
    expires_at: inv.expires_at,
    server_time: now.toISOString(),
    redirect_url: inv.redirect_url && /^https?:\/\//i.test(inv.redirect_url) ? inv.redirect_url : null,
    locale: inv.locale,
    payment_methods: inv.payment_methods.map((m) => ({
      method: m.method,
      chain: m.chain,
      network: m.network,
      network_name: m.network_name,
      ...(m.chain_id !== undefined ? { chain_id: m.chain_id } : {}),
      asset: m.asset,
      ...(m.token !== undefined ? { token: m.token } : {}),
      address: m.address,
      amount: readableAmount(m.amount),
      amount_due: readableAmount(m.amount_due),
      amount_paid: readableAmount(m.amount_paid),
      confirmations_required: m.confirmations_required,
      payment_uri: withBip21Label(m.payment_uri, merchantName),
    })),
    payments,
  };
}

/** Loads the public view (deadlines re-checked at read time by the invoice service). 404 when unknown. */
export async function loadPublicInvoice(deps: Deps, id: string): Promise<PublicInvoice> {
  if (!INVOICE_ID_RE.test(id)) throw notFound('invoice', undefined, 'id');
  const [owner] = await deps.sql<{ merchant_id: string; name: string }[]>`
    select i.merchant_id, m.name from invoices i join merchants m on m.id = i.merchant_id where i.id = ${id}`;
  if (!owner) throw notFound('invoice', undefined, 'id');
  const inv = await deps.invoices.get(owner.merchant_id, id);
  const { data } = await listPayments(deps.sql, owner.merchant_id, { invoiceId: id }, null);
  const payments: PublicPayment[] = [];
  for (const p of data.reverse()) {
    if (p.status !== 'pending' && p.status !== 'confirmed') continue;
    const shown = presentPayment(p, (method) => deps.assets.method(method)?.decimals ?? 0);
    payments.push({
      method: shown.method, asset: shown.asset, amount: readableAmount(shown.amount), status: p.status, confirmations: shown.confirmations,
      txid: p.txid, explorer_url: explorerTxUrl(deps.config.chains[p.chain]?.explorer_tx_url, p.txid),
    });
  }
  return toPublicInvoice(inv, owner.name, payments);
}
