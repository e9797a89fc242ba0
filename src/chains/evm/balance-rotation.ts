/**
 * Which deposit addresses the EVM watcher's balance check reads at a block (docs/evm.md, "Balance
 * check"). The check exists for native coin that arrives without a transaction to the address
 * (sent by a contract); reading every open address at every block costs O(open invoices) node work
 * per block. Instead each block reads at most `maxPerBlock` addresses, continuing round-robin through
 * the watched set, so every open address is read at least once every ceil(open / maxPerBlock) blocks
 * and the per-block cost stays bounded whatever the number of open invoices.
 */
export interface BalanceRotation {
  /** The addresses to read at this block: all of them when the set is small, else the next slice. */
  next(watched: Map<string, unknown>): string[];
  /** Blocks needed to read every address of a set this size once. */
  cycleBlocks(size: number): number;
}

export function createBalanceRotation(maxPerBlock: number): BalanceRotation {
  if (!Number.isInteger(maxPerBlock) || maxPerBlock < 1) throw new Error('maxPerBlock must be a positive integer');
  let source: Map<string, unknown> | null = null;
  let it: Iterator<string> | null = null;
  return {
    next(watched) {
      if (watched.size <= maxPerBlock) {
        it = null;
        return [...watched.keys()];
      }
      // Map iterators are live: entries deleted meanwhile are skipped, entries added are visited.
      if (source !== watched || !it) {
        source = watched;
        it = watched.keys();
      }
      const out: string[] = [];
      const seen = new Set<string>();
      while (out.length < maxPerBlock) {
        let r = it.next();
        if (r.done) {
          it = watched.keys();
          r = it.next();
          if (r.done) break;
        }
        if (seen.has(r.value)) break; // wrapped around a set smaller than a slice (after deletions)
        seen.add(r.value);
        out.push(r.value);
      }
      return out;
    },
    cycleBlocks(size) {
      return Math.max(1, Math.ceil(size / maxPerBlock));
    },
  };
}
