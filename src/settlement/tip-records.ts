/**
 * Pruning Kassa's tip records (`chain_tip_observations`, the on-time proof of `sentOnTime`).
 *
 * THE retention rule (docs/reconciliation.md, "When a payment is on time"): per chain, Kassa keeps
 * every record at a height inside the kept block window (`chain_blocks`), every record made after
 * T0, the highest record made at or before T0, and for every invoice with a payment on that chain
 * first seen after its `expires_at` the highest record made at or before that `expires_at`; T0 is
 * the earliest `expires_at` of the invoices whose monitoring window has not ended or ended less
 * than a day ago, and never later than a day ago. Everything else is deleted.
 *
 * Why nothing deleted can change an on-time decision (`recordedHeightAt(chain, E)` is the highest
 * recorded height with a time at or before the deadline E):
 * - for any E at or after T0, the records at or before E are the ones kept after T0 plus the highest
 *   one at or before T0, so the highest height is the same;
 * - an invoice with E before T0 is no longer monitored, so no new payment is matched to it, and a
 *   payment can only (re)appear in a block inside the window; a payment seen by E is on time
 *   whatever the records say; a payment first seen after E in a block below the window keeps its
 *   height forever and its invoice's witness record (the highest at or before E) is kept; one in a
 *   block inside the window is judged against the same highest record when that record is inside
 *   the window (kept), and is late either way when it is below the window (its block is higher);
 * - the reorg folding in `advanceCursor` only reads records at heights inside the window, and those
 *   are all kept (a reorg deeper than the window stops the chain: `reorg_too_deep`).
 * A chain with no kept blocks yet is left alone.
 */
import type { Db } from '../db/client.ts';

/** The margin behind the database's clock: invoices whose window ended within it still count as monitored. */
export const TIP_RECORD_MARGIN = '1 day';

/** Deletes the tip records no on-time decision can still use; returns how many per chain. */
export async function pruneTipObservations(db: Db): Promise<Record<string, number>> {
  const chains = await db<{ chain: string }[]>`select distinct chain from chain_tip_observations`;
  const out: Record<string, number> = {};
  for (const { chain } of chains) {
    const res = await db`
      with t0 as (
        select least(now() - ${TIP_RECORD_MARGIN}::interval,
                     (select min(expires_at) from invoices where monitoring_until > now() - ${TIP_RECORD_MARGIN}::interval)) as t
      ),
      win as (select min(height) as h from chain_blocks where chain = ${chain}),
      keep as (
        (select o.height from chain_tip_observations o
          where o.chain = ${chain} and o.observed_at <= (select t from t0) order by o.height desc limit 1)
        union
        select w.height from invoices i
          cross join lateral (
            select o.height from chain_tip_observations o
            where o.chain = ${chain} and o.observed_at <= i.expires_at order by o.height desc limit 1) w
          where exists (select 1 from payments p where p.invoice_id = i.id and p.chain = ${chain} and p.first_seen_at > i.expires_at)
      )
      delete from chain_tip_observations o
      where o.chain = ${chain}
        and (select h from win) is not null and o.height < (select h from win)
        and o.observed_at <= (select t from t0)
        and o.height not in (select height from keep)`;
    out[chain] = res.count;
  }
  return out;
}
