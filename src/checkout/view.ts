/**
 * What the checkout page shows for a public invoice: the view state and its texts. The page script
 * (checkout.client.js) mirrors these rules to update the page live; keep the two in step.
 */
import { fmt, type Messages } from './i18n.ts';
import type { PublicInvoice, PublicPaymentMethod } from './public-invoice.ts';

export type CheckoutView = 'waiting' | 'partial' | 'detected' | 'paid' | 'expired' | 'invalid';

const nonZero = (amount: string) => /[1-9]/.test(amount);

export function viewOf(inv: Pick<PublicInvoice, 'status' | 'amount_paid'>): CheckoutView {
  switch (inv.status) {
    case 'new':
      return nonZero(inv.amount_paid) ? 'partial' : 'waiting';
    case 'processing':
      return 'detected';
    case 'settled':
      return 'paid';
    case 'expired':
      return 'expired';
    default:
      return 'invalid';
  }
}

/**
 * The network's real name as the customer sees it: "Base", "Arbitrum One", "Ethereum (chain 31337)"
 * for an EVM chain (the API's `network_name`); "Bitcoin" / "Bitcoin · regtest" in the page's language.
 */
export function networkLabel(m: Pick<PublicPaymentMethod, 'network' | 'network_name' | 'chain_id'>, t: Messages): string {
  if (m.chain_id === undefined) return m.network === 'mainnet' ? t.bitcoin : fmt(t.network_bitcoin, { network: m.network });
  return m.network_name;
}

/** Methods grouped by asset, in the invoice's order: USDC on Base, Arbitrum and Ethereum is one group. */
export function methodGroups<M extends Pick<PublicPaymentMethod, 'asset'>>(methods: M[]): { asset: string; methods: M[] }[] {
  const groups: { asset: string; methods: M[] }[] = [];
  for (const m of methods) {
    const g = groups.find((x) => x.asset === m.asset);
    if (g) g.methods.push(m);
    else groups.push({ asset: m.asset, methods: [m] });
  }
  return groups;
}

/** "n of m" for the detected state: the least-confirmed live payment against its method's requirement. */
export function confirmationsOf(inv: Pick<PublicInvoice, 'payments' | 'payment_methods'>): { n: number; m: number } {
  let n = Infinity;
  let m = 0;
  for (const p of inv.payments) {
    const req = inv.payment_methods.find((x) => x.method === p.method)?.confirmations_required ?? 0;
    if (p.confirmations < req || n === Infinity) n = Math.min(n, p.confirmations);
    m = Math.max(m, req);
  }
  if (n === Infinity) n = 0;
  return { n: Math.min(n, m), m };
}

export interface StatusText {
  title: string;
  detail: string;
  note: string;
}

export function statusText(inv: PublicInvoice, t: Messages): StatusText {
  const v = viewOf(inv);
  const vars = { paid: inv.amount_paid, due: inv.amount_due, currency: inv.currency, amount: inv.amount, merchant: inv.merchant_name };
  switch (v) {
    case 'waiting':
      return { title: t.status_waiting, detail: t.status_waiting_detail, note: '' };
    case 'partial':
      return { title: t.status_partial, detail: fmt(t.status_partial_detail, vars), note: '' };
    case 'detected': {
      const c = confirmationsOf(inv);
      return { title: t.status_detected, detail: fmt(t.status_detected_detail, c), note: '' };
    }
    case 'paid': {
      const notes: string[] = [];
      if (inv.exception === 'paid_over') notes.push(fmt(t.note_overpaid, vars));
      if (inv.exception === 'paid_late') notes.push(fmt(t.note_late, vars));
      return { title: t.status_paid, detail: fmt(t.status_paid_detail, vars), note: notes.join(' ') };
    }
    case 'expired':
      if (inv.exception === 'paid_late') return { title: t.status_expired, detail: fmt(t.status_expired_detail, vars), note: fmt(t.note_late, vars) };
      return { title: t.status_expired, detail: fmt(t.status_expired_detail, vars), note: nonZero(inv.amount_paid) ? fmt(t.note_expired_partial, vars) : '' };
    case 'invalid':
      return { title: t.status_invalid, detail: fmt(t.status_invalid_detail, vars), note: '' };
  }
}

export function paymentLine(inv: Pick<PublicInvoice, 'payment_methods'>, p: PublicInvoice['payments'][number], t: Messages): string {
  const m = inv.payment_methods.find((x) => x.method === p.method)?.confirmations_required ?? 0;
  if (p.status === 'confirmed' && p.confirmations >= m) return fmt(t.payment_confirmed, { amount: p.amount, asset: p.asset });
  return fmt(t.payment_pending, { amount: p.amount, asset: p.asset, n: p.confirmations, m });
}

/** Remaining time as m:ss or h:mm:ss (0:00 when past). */
export function clock(ms: number): string {
  const s = Math.max(0, Math.floor(ms / 1000));
  const h = Math.floor(s / 3600);
  const mm = Math.floor((s % 3600) / 60);
  const ss = String(s % 60).padStart(2, '0');
  return h > 0 ? `${h}:${String(mm).padStart(2, '0')}:${ss}` : `${mm}:${ss}`;
}

/** Whether the payment panel (address, QR) is offered: only while more payment is expected. */
export const showsPaymentPanel = (v: CheckoutView) => v === 'waiting' || v === 'partial';
