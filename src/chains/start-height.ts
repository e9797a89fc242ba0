/**
 * Where a chain watcher starts when the chain has no cursor yet (its first pass, or after the
 * cursor was removed): low enough to cover every open invoice, so a payment made before the first
 * worker start is still scanned. Shared by the Bitcoin and the EVM watcher.
 *
 * For the deposit addresses of invoices still monitored (`monitoring_until > now()`):
 * - an address that recorded the chain's cursor when it was handed out
 *   (`deposit_addresses.chain_height`) is covered from that height: its payment cannot be in an
 *   older block;
 * - an address created while the chain had no cursor is covered from the last block whose
 *   timestamp is at least `CLOCK_MARGIN_SECONDS` before the address's creation (binary search
 *   over block timestamps; the margin absorbs block timestamps that are off, which Bitcoin allows
 *   up to two hours).
 * The start is the lowest of these, never below `tip − lookback + 1` (the chain's
 * `first_scan_lookback_blocks`) and never above the tip. Without open invoices it is the tip.
 */
import type { Db } from '../db/client.ts';

/** `first_scan_lookback_blocks` when the chain config does not set it. */
export const DEFAULT_FIRST_SCAN_LOOKBACK = { bitcoin: 1008, evm: 10_000 } as const;

/** Block timestamps may be this far off from the wall clock (Bitcoin's future limit is 2 h). */
export const CLOCK_MARGIN_SECONDS = 2 * 3600;

export interface FirstScan {
  /** The first block to scan. */
  height: number;
  /** Why: `tip` (nothing open), `recorded` (a recorded cursor height), `time` (a creation time) or `lookback` (capped). */
  reason: 'tip' | 'recorded' | 'time' | 'lookback';
  /** Open deposit addresses on the chain when the start was chosen. */
  open: number;
}

export interface FirstScanInput {
  db: Db;
  chain: string;
  tip: number;
  /** At most this many blocks back from the tip (the tip included). */
  lookback: number;
  /** Unix seconds of the block at `height` (best chain). */
  blockTime(height: number): Promise<number>;
}

/** The first block to scan for a chain without a cursor (see the module comment). */
export async function firstScanHeight(i: FirstScanInput): Promise<FirstScan> {
  const [row] = await i.db<{ open: number; min_height: bigint | null; oldest_unrecorded: Date | null }[]>`
    select count(*)::int as open,
           min(d.chain_height) as min_height,
           min(d.created_at) filter (where d.chain_height is null) as oldest_unrecorded
    from deposit_addresses d join invoices inv on inv.id = d.invoice_id
    where d.chain = ${i.chain} and inv.monitoring_until > now()`;
  const open = row?.open ?? 0;
  const floor = Math.max(0, i.tip - Math.max(1, i.lookback) + 1);
  if (open === 0) return { height: i.tip, reason: 'tip', open };
  let height = i.tip;
  let reason: FirstScan['reason'] = 'tip';
  if (row!.min_height !== null && Number(row!.min_height) < height) {
    height = Math.max(0, Number(row!.min_height));
    reason = 'recorded';
  }
  if (row!.oldest_unrecorded) {
    const t = Math.floor(row!.oldest_unrecorded.getTime() / 1000) - CLOCK_MARGIN_SECONDS;
    const h = await lastBlockBefore(t, floor, Math.min(height, i.tip), i.blockTime);
    if (h < height) {
      height = h;
      reason = 'time';
    }
  }
  if (height < floor) return { height: floor, reason: 'lookback', open };
  return { height, reason, open };
}

/**
 * The highest height in [lo, hi] whose block time is ≤ `t`; `lo − 1` when even block `lo` is later
 * (the wanted start is below `lo`; 0 for the genesis block, which covers everything). A binary
 * search: about log2(hi − lo) block reads. Block times need not be monotonic; the margin the
 * caller subtracts from `t` covers the difference.
 */
async function lastBlockBefore(t: number, lo: number, hi: number, blockTime: (h: number) => Promise<number>): Promise<number> {
  if (hi < lo) return hi;
  if ((await blockTime(lo)) > t) return Math.max(0, lo - 1);
  while (lo < hi) {
    const mid = Math.ceil((lo + hi) / 2);
    if ((await blockTime(mid)) <= t) lo = mid;
    else hi = mid - 1;
  }
  return lo;
}
