/**
 * Ledger postings for money the merchant sends (docs/refunds.md, "For finance staff"), in the
 * asset's base units, through the settlement ledger's `book` (balanced per asset, checked again at
 * commit):
 * - `refund_sent` / `payout_sent`: the amount leaves `merchant:<id>:available` for `chain:<chain>:outflow`;
 * - `refund_network_fee` / `payout_network_fee`: the network fee Kassa's PSBT paid, the same way;
 * - a transfer that fails after it was recorded as broadcast is reversed by the opposite entries
 *   (`…_reversed`).
 * Refund postings carry their invoice; payout postings have none.
 */
import type { Db } from '../db/client.ts';
import { accounts, book } from '../settlement/ledger.ts';

export const refundAccounts = {
  outflow: (chain: string) => `chain:${chain}:outflow`,
};

export async function bookRefundSent(
  db: Db,
  r: { id: string; merchant_id: string; invoice_id: string; chain: string; method: string; amount: bigint; network_fee: bigint },
  opts: { reverse?: boolean } = {},
): Promise<void> {
  await bookSent(db, 'refund', r, opts);
}

export async function bookPayoutSent(
  db: Db,
  p: { id: string; merchant_id: string; chain: string; method: string; amount: bigint; network_fee: bigint },
  opts: { reverse?: boolean } = {},
): Promise<void> {
  await bookSent(db, 'payout', { ...p, invoice_id: null }, opts);
}

async function bookSent(
  db: Db,
  what: 'refund' | 'payout',
  r: { merchant_id: string; invoice_id: string | null; chain: string; method: string; amount: bigint; network_fee: bigint },
  opts: { reverse?: boolean },
): Promise<void> {
  const sign = opts.reverse ? -1n : 1n;
  const post = (kind: string, amount: bigint) =>
    amount === 0n ? Promise.resolve('') : book(db, {
      merchantId: r.merchant_id, invoiceId: r.invoice_id, kind: opts.reverse ? `${kind}_reversed` : kind,
      entries: [
        { account: refundAccounts.outflow(r.chain), asset: r.method, amount: sign * amount },
        { account: accounts.available(r.merchant_id), asset: r.method, amount: -sign * amount },
      ],
    });
  await post(`${what}_sent`, r.amount);
  await post(`${what}_network_fee`, r.network_fee);
}
