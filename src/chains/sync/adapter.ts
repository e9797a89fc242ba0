/**
 * What a chain family (Bitcoin, EVM, …) gives the chain-sync engine (docs/architecture.md §5):
 * reads of the node (tip, block hashes, the blocks of a range turned into observations, the
 * mempool, the finalized height), the matching state it keeps in memory (the watched deposit
 * addresses), and the re-verification of a recorded payment. The engine (./engine.ts) owns
 * everything else: the loop, the lease, backoff, health, reorg walk-back and the commits.
 *
 * An adapter never writes to the database except inside `RangeScan.within` (a hook the block
 * commit runs in its transaction), and never decides about reorgs: it reports what the node says.
 */
import type { TxSql } from '../../db/client.ts';
import type { BlockRef, Observation } from '../../settlement/service.ts';
import type { PaymentToVerify } from '../../settlement/reverify.ts';
import type { WatchedSetDelta } from '../watched-set.ts';

export interface ChainHead {
  height: number;
  /** The tip's hash when the node returns it with the height (Bitcoin); null when it costs another call (EVM). */
  hash: string | null;
}

/** The blocks from..to of the node's best chain, scanned against the watched set. */
export interface RangeScan {
  /** Exactly the blocks from..to, in order (lowercase hashes). */
  blocks: BlockRef[];
  /** Payments to watched addresses in these blocks, in chain order. */
  observations: Observation[];
  /** Pending payments these blocks prove double-spent (their inputs spent by another transaction). */
  doubleSpent?: string[];
  /**
   * Work that must commit with these blocks (inside the block's transaction, after the
   * observations and the cursor): returns more observations to record (EVM: flushes and
   * balance-check credits).
   */
  within?: (tx: TxSql) => Promise<Observation[]>;
  /** Called after the commit (the adapter forgets state the commit made obsolete). */
  committed?: () => void;
}

/** A listing of the node's mempool: read at the start of a pass, scanned at its end. */
export interface MempoolListing {
  /** Is `txid` in this listing? */
  has(txid: string): boolean;
  /** How many transactions it holds. */
  readonly size: number;
}

export interface MempoolScan {
  /** Pending payments to watched addresses among the transactions not seen before. */
  observations: Observation[];
  /** Transactions fetched and scanned in this pass (only those new since the previous listing). */
  scanned: number;
}

export interface ChainAdapter {
  /** The family's name in logs and errors: "Bitcoin", "EVM". */
  readonly family: string;
  /** The chain key from the chains config. */
  readonly chain: string;
  /** The node as named in logs and errors (never with credentials). */
  readonly nodeName: string;
  /** Block hashes kept for reorg detection. */
  readonly reorgWindow: number;
  readonly pollIntervalMs: number;
  /** Look-back bound of the first scan (src/chains/start-height.ts). */
  readonly firstScanLookback: number;
  /** Blocks scanned and committed together during catch-up (1 = one transaction per block). */
  readonly rangeSize: number;

  /** Checks run at the start of each pass (EVM: the node's chain id, once). */
  prepare?(): Promise<void>;
  head(): Promise<ChainHead>;
  /** The best-chain hash at `height` (lowercase), or null when the node's chain is shorter. */
  hashAt(height: number): Promise<string | null>;
  /** The best-chain block at `height`, or null when the node's chain is shorter. */
  blockAt(height: number): Promise<BlockRef | null>;
  /** Applies a change of the watched deposit addresses (the engine loads them: src/chains/watched-set.ts); `size` is the set's new size. */
  watch(delta: WatchedSetDelta, size: number): void;
  /** Scans the blocks from..to (to − from < rangeSize). `last`: the last range of this pass. */
  scanRange(from: number, to: number, opts: { last: boolean }): Promise<RangeScan>;
  /** The node's mempool, when the family has one Kassa reads. */
  mempool?: {
    list(): Promise<MempoolListing>;
    /** Scans the transactions of `listing` not seen before (work proportional to what changed). */
    scan(listing: MempoolListing): Promise<MempoolScan>;
  };
  /** The node's finalized height, when the family has one and the chain is configured to use it. */
  finalizedHeight?(): Promise<number | null>;
  /**
   * What becomes of the payments of dropped blocks: true → `pending` (the transaction can still
   * confirm: Bitcoin keeps it in the mempool), false → `reorged`. `reason` is `rewind` for
   * `kassa chains rewind` (the rescan decides), `reorg` for a reorganisation seen by the engine.
   */
  stillPending(reason: 'reorg' | 'rewind'): Promise<(txid: string) => boolean>;
  /** Re-verifies a recorded payment: null when the node still shows it, else what differs. */
  reverify(p: PaymentToVerify): Promise<string | null>;
  /** Errors after which the engine stops instead of retrying (besides `reorg_too_deep`). */
  isFatal?(err: unknown): boolean;
}
