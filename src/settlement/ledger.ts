/**
 * Append-only double-entry ledger (docs/architecture.md §7). Each booking is one ledger transaction whose
 * entries sum to zero per asset; the database re-checks that at commit (a deferred trigger) and
 * `book` checks it before writing. Balances are computed from entries, never stored.
 */
import type { Db } from '../db/client.ts';
import { randomBase62 } from '../ids.ts';

export type LedgerState = 'none' | 'pending' | 'available' | 'reversed';

export interface Entry {
  account: string;
  asset: string;
  amount: bigint;
}

export const accounts = {
  /** Money that arrived on a chain to one of the merchant's deposit addresses (credit side). */
  inflow: (chain: string) => `chain:${chain}:inflow`,
  pending: (merchantId: string) => `merchant:${merchantId}:pending`,
  available: (merchantId: string) => `merchant:${merchantId}:available`,
  invoiced: (merchantId: string) => `merchant:${merchantId}:invoiced`,
  writtenOff: (merchantId: string) => `merchant:${merchantId}:written_off`,
  refundDue: (merchantId: string) => `merchant:${merchantId}:refund_due`,
};

export function assertBalanced(entries: Entry[]): void {
  const sums = new Map<string, bigint>();
  for (const e of entries) sums.set(e.asset, (sums.get(e.asset) ?? 0n) + e.amount);
  for (const [asset, sum] of sums) if (sum !== 0n) throw new Error(`ledger entries do not balance for ${asset}: ${sum}`);
}

export async function book(
  db: Db,
  t: { merchantId: string; invoiceId?: string | null; paymentId?: string | null; kind: string; entries: Entry[] },
): Promise<string> {
  assertBalanced(t.entries);
  const txnId = `led_${randomBase62(18)}`;
  for (const e of t.entries) {
    if (e.amount === 0n) continue;
    await db`
      insert into ledger_entries (txn_id, merchant_id, invoice_id, payment_id, kind, account, asset, amount)
      values (${txnId}, ${t.merchantId}, ${t.invoiceId ?? null}, ${t.paymentId ?? null}, ${t.kind}, ${e.account}, ${e.asset}, ${e.amount})`;
  }
  return txnId;
}

function accountFor(state: LedgerState, chain: string, merchantId: string): string {
  if (state === 'pending') return accounts.pending(merchantId);
  if (state === 'available') return accounts.available(merchantId);
  return accounts.inflow(chain);
}

/** Books a payment's move between ledger states (none/reversed = not on the merchant's books). */
export async function bookPaymentState(
  db: Db,
  p: { id: string; merchantId: string; invoiceId: string; chain: string; method: string; amount: bigint },
  from: LedgerState,
  to: LedgerState,
): Promise<void> {
  const fromAcc = accountFor(from, p.chain, p.merchantId);
  const toAcc = accountFor(to, p.chain, p.merchantId);
  if (fromAcc === toAcc) return;
  const kind = to === 'reversed' ? 'payment_reversed' : to === 'available' ? (from === 'pending' ? 'payment_confirmed' : 'payment_received_confirmed') : 'payment_received';
  await book(db, {
    merchantId: p.merchantId, invoiceId: p.invoiceId, paymentId: p.id, kind,
    entries: [
      { account: toAcc, asset: p.method, amount: p.amount },
      { account: fromAcc, asset: p.method, amount: -p.amount },
    ],
  });
}

/**
 * The ledger postings a manual mark implies, in the invoice currency, from the invoice's final
 * state (docs/reconciliation.md, "Marks in the ledger"):
 * - marked `settled`: the shortfall, price − counted (every live payment in an offered asset counts
 *   on an invoice marked settled), is written off: `written_off` +x, `invoiced` −x;
 * - marked `invalid`: nothing counts, the money received is owed back: `refund_due` +y, `invoiced` −y;
 * - not marked: nothing.
 * Brings the invoice's postings on `written_off` and `refund_due` to exactly that by booking the
 * difference (a reversal, then the new posting, in one ledger transaction), so any sequence of
 * marks leaves the ledger as the final state implies. Returns true when it booked something.
 */
export async function syncMarkPostings(
  db: Db,
  inv: { id: string; merchantId: string; currency: string; amount: bigint; amountPaid: bigint; markedAs: 'settled' | 'invalid' | null },
): Promise<boolean> {
  const wantWrittenOff = inv.markedAs === 'settled' && inv.amountPaid < inv.amount ? inv.amount - inv.amountPaid : 0n;
  const wantRefundDue = inv.markedAs === 'invalid' ? inv.amountPaid : 0n;
  const rows = await db<{ account: string; s: bigint }[]>`
    select account, sum(amount) as s from ledger_entries
    where invoice_id = ${inv.id} and asset = ${inv.currency}
      and account in (${accounts.writtenOff(inv.merchantId)}, ${accounts.refundDue(inv.merchantId)})
    group by account`;
  const has = new Map(rows.map((r) => [r.account, BigInt(r.s)]));
  const dW = wantWrittenOff - (has.get(accounts.writtenOff(inv.merchantId)) ?? 0n);
  const dR = wantRefundDue - (has.get(accounts.refundDue(inv.merchantId)) ?? 0n);
  if (dW === 0n && dR === 0n) return false;
  const kind = inv.markedAs === 'settled' ? 'mark_settled' : inv.markedAs === 'invalid' ? 'mark_invalid' : 'mark_reversed';
  await book(db, {
    merchantId: inv.merchantId, invoiceId: inv.id, kind,
    entries: [
      { account: accounts.writtenOff(inv.merchantId), asset: inv.currency, amount: dW },
      { account: accounts.refundDue(inv.merchantId), asset: inv.currency, amount: dR },
      { account: accounts.invoiced(inv.merchantId), asset: inv.currency, amount: -(dW + dR) },
    ],
  });
  return true;
}
