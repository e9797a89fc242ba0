/**
 * Append-only double-entry ledger (DESIGN.md §7). Each booking is one ledger transaction whose
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
