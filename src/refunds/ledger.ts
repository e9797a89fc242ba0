/**
 * Ledger postings for refunds (docs/refunds.md, "For finance staff"), in the refunded asset's base
 * units, through the settlement ledger's `book` (balanced per asset, checked again at commit):
 * - `refund_sent`: the refund amount leaves `merchant:<id>:available` for `chain:<chain>:outflow`;
 * - `refund_network_fee`: the network fee, paid from the invoice's outputs, the same way;
 * - a refund that fails after it was recorded as broadcast is reversed by the opposite entries.
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
  const sign = opts.reverse ? -1n : 1n;
  const post = (kind: string, amount: bigint) =>
    amount === 0n ? Promise.resolve('') : book(db, {
      merchantId: r.merchant_id, invoiceId: r.invoice_id, kind: opts.reverse ? `${kind}_reversed` : kind,
      entries: [
        { account: refundAccounts.outflow(r.chain), asset: r.method, amount: sign * amount },
        { account: accounts.available(r.merchant_id), asset: r.method, amount: -sign * amount },
      ],
    });
  await post('refund_sent', r.amount);
  await post('refund_network_fee', r.network_fee);
}
