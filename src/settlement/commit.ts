/**
 * The one entry point through which chain events change money state (docs/architecture.md §5):
 * the chain-sync engine and `kassa chains rewind` commit `block`, `reorg`, `finalize` and
 * `mempool` events here, each in ONE database transaction that also moves the chain cursor when
 * the event does, so a payment is recorded exactly once with the block that carries it. Changed
 * invoices are published for live status after the commit.
 *
 * Nothing here knows a chain family: the family's extra work for a block comes in as `within`.
 */
import type { Sql, TxSql } from '../db/client.ts';
import type { BlockRef, Observation, SettlementService } from './service.ts';

export type ChainEvent =
  | {
      kind: 'block';
      /** Consecutive blocks, the first one's parent being the cursor; the cursor ends on the last. */
      blocks: BlockRef[];
      observations: Observation[];
      /** Block hashes kept for reorg detection. */
      keep: number;
      /** Pending payments these blocks double-spent → `replaced`. */
      doubleSpent?: string[];
      /** The family's extra work in the same transaction (after the cursor moved); returns more observations. */
      within?: (tx: TxSql) => Promise<Observation[]>;
    }
  | {
      kind: 'reorg';
      /** The common ancestor (or the rewind height): blocks above it are dropped. */
      ancestor: number;
      /** Payments of dropped blocks: true → `pending`, false → `reorged`. */
      stillPending: (txid: string) => boolean;
      /** Sets the cursor to this block (the rewind: the node's block at `ancestor`). */
      cursor?: { block: BlockRef; keep: number };
      /** Runs first in the transaction (the rewind re-checks its lease there); throwing aborts the event. */
      guard?: (tx: TxSql) => Promise<void>;
    }
  | { kind: 'finalize'; height: number }
  | { kind: 'mempool'; observations: Observation[]; vanished: string[] };

export interface CommitResult {
  /** Invoices the event touched (recomputed). */
  touched: Set<string>;
  /** Invoices whose state, amount paid or ledger changed (published). */
  changed: Set<string>;
}

export async function commitChainEvent(sql: Sql, settlement: SettlementService, chain: string, event: ChainEvent): Promise<CommitResult> {
  const result = await sql.begin(async (tx) => {
    let touched: Set<string>;
    switch (event.kind) {
      case 'block': {
        touched = await settlement.recordObservations(tx, chain, event.observations);
        for (const b of event.blocks) await settlement.advanceCursor(tx, chain, b, event.keep);
        if (event.within) for (const id of await settlement.recordObservations(tx, chain, await event.within(tx))) touched.add(id);
        if (event.doubleSpent?.length) for (const id of await settlement.markVanished(tx, chain, event.doubleSpent)) touched.add(id);
        for (const id of await settlement.awaitingConfirmations(tx, chain)) touched.add(id);
        break;
      }
      case 'reorg': {
        if (event.guard) await event.guard(tx);
        touched = await settlement.rollbackTo(tx, chain, event.ancestor, event.stillPending);
        if (event.cursor) await settlement.advanceCursor(tx, chain, event.cursor.block, event.cursor.keep);
        for (const id of await settlement.awaitingConfirmations(tx, chain)) touched.add(id);
        break;
      }
      case 'finalize':
        // setFinalized recomputes the invoices waiting for confirmations itself.
        return { touched: new Set<string>(), changed: await settlement.setFinalized(tx, chain, event.height) };
      case 'mempool': {
        touched = await settlement.recordObservations(tx, chain, event.observations);
        for (const id of await settlement.markVanished(tx, chain, event.vanished)) touched.add(id);
        break;
      }
    }
    return { touched, changed: await settlement.recompute(tx, touched) };
  });
  await settlement.publishChanges(result.changed);
  return result;
}
