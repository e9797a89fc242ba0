/**
 * The chain-sync engine: ONE loop for every chain family (docs/architecture.md §5). A family
 * gives a `ChainAdapter` (./adapter.ts); the engine follows the node's best chain with it and
 * commits what it sees through the settlement entry point (src/settlement/commit.ts).
 *
 * One pass (`runOnce`):
 * 1. Read the node's tip and list its mempool, THEN bring the watched deposit addresses up to date
 *    (src/chains/watched-set.ts, incremental). In that order every payment the pass can see was
 *    broadcast after its address was in the loaded set (the reverse order lost payments to
 *    invoices created mid-pass; found by bench:latency).
 * 2. Caught up (cursor at or above the node's tip) with a cursor block the node no longer has:
 *    reorg handling.
 * 3. Catch up in ranges of `adapter.rangeSize` blocks, ONE `block` commit per range (payments,
 *    cursor and kept hashes in one transaction). The first block's parent must be the cursor's
 *    block, otherwise: reorg handling, then the tip is read again and the watched set refreshed.
 * 4. At the tip: the mempool listed in step 1, only transactions not seen before are fetched
 *    (`mempool` commit); pending payments missing from the listing are marked vanished, unless the
 *    tip moved meanwhile (the next pass decides). Skipped after a reorg in the same pass (the
 *    listing predates the rollback).
 * 5. The node's finalized height, when the adapter has one (`finalize` commit).
 *
 * Reorgs: walk back from the cursor comparing kept hashes with the node's until the common
 * ancestor; `reorg` commit (payments of dropped blocks become `pending` or `reorged`, as the
 * adapter says). No common ancestor in the kept window: `ReorgTooDeepError` (`reorg_too_deep`):
 * `runOnce` and `run` reject, health shows the error, the worker logs it as fatal.
 *
 * `run(signal)` is single-flight per chain (lease `watch:<chain>`, src/chains/single-flight.ts):
 * a second process stands by and takes over when the holder stops. Errors are reported as health
 * errors and retried with capped exponential backoff (from `backoffMinMs`, default 1 s, doubling
 * to `backoffMaxMs`, default 60 s); only `reorg_too_deep` and the adapter's fatal errors stop it.
 */
import type { Redis } from 'ioredis';
import type { Sql } from '../../db/client.ts';
import type { Logger } from '../../logger.ts';
import { KassaError, UpstreamError, isKassaError } from '../../errors.ts';
import type { SettlementService } from '../../settlement/service.ts';
import { commitChainEvent, type ChainEvent } from '../../settlement/commit.ts';
import { reportChainHealth } from '../health.ts';
import { tryLock } from '../single-flight.ts';
import { firstScanHeight } from '../start-height.ts';
import { createWatchedSet } from '../watched-set.ts';
import type { ChainAdapter, MempoolListing } from './adapter.ts';

export interface ChainSyncDeps {
  sql: Sql;
  settlement: SettlementService;
  logger: Logger;
  /** Health is reported to Redis when given. */
  redis?: Redis;
  queuePrefix: string;
  /** First block to scan when the chain has no cursor yet. Default: low enough to cover every open invoice (src/chains/start-height.ts). */
  startHeight?: number;
  /** Stop a pass after this many blocks (the next pass continues at once). Default 500. */
  maxBlocksPerPass?: number;
  /** Backoff after a failed pass: doubles from min to max. Default 1 s .. 60 s. */
  backoffMinMs?: number;
  backoffMaxMs?: number;
  /** How often a standby retries the lease. Default poll interval, at least 1 s. */
  lockRetryMs?: number;
}

export interface SyncPassResult {
  /** Blocks committed in this pass. */
  blocks: number;
  /** Node tip height seen in this pass. */
  tip: number;
  /** Reorgs handled in this pass. */
  reorgs: number;
  /** Mempool transactions fetched and scanned in this pass. */
  mempoolScanned: number;
  /** True when the pass stopped before the tip or must be followed at once (after a reorg). */
  more: boolean;
}

export interface ChainSync {
  readonly adapter: ChainAdapter;
  /** One pass (no lease: `run` holds it); reports health. Throws on node or database errors. */
  runOnce(signal?: AbortSignal): Promise<SyncPassResult>;
  /** Loops until `signal` aborts. Rejects on `reorg_too_deep` and on the adapter's fatal errors. */
  run(signal: AbortSignal): Promise<void>;
}

/** A reorg deeper than the kept window: the engine stops instead of guessing. */
export class ReorgTooDeepError extends KassaError {
  constructor(adapter: ChainAdapter, cursorHeight: number, oldestKept: number | null) {
    super(
      'reorg_too_deep',
      `${adapter.nodeName} reorganised deeper than the kept window of chain "${adapter.chain}" (no common ancestor between height ${oldestKept ?? '?'} and ${cursorHeight}); the watcher stopped. ` +
        `Check the node; then stop the workers and rewind below the fork: kassa chains rewind --chain ${adapter.chain} --height <H> (docs/operations.md, "Recovering from reorg_too_deep").`,
      { status: 500, retryable: false },
    );
    this.name = 'ReorgTooDeepError';
  }
}

export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal?.aborted) return resolve();
    const timer = setTimeout(done, ms);
    function done() {
      clearTimeout(timer);
      signal?.removeEventListener('abort', done);
      resolve();
    }
    signal?.addEventListener('abort', done, { once: true });
  });
}

/** Rest between two passes when a pass took (almost) the whole poll interval. */
const MIN_REST_MS = 100;

export function createChainSync(adapter: ChainAdapter, deps: ChainSyncDeps): ChainSync {
  const { sql, settlement } = deps;
  const chain = adapter.chain;
  const log = deps.logger.child({ chain, watcher: adapter.family.toLowerCase(), node: adapter.nodeName });
  const maxBlocks = deps.maxBlocksPerPass ?? 500;
  const watchedSet = createWatchedSet({ sql, chain, logger: log });

  const commit = (event: ChainEvent) => commitChainEvent(sql, settlement, chain, event);

  /** Brings the adapter's watched addresses up to date: a full load first, then changes only. */
  async function refreshWatched(): Promise<void> {
    try {
      adapter.watch(await watchedSet.refresh(), watchedSet.size);
    } catch (err) {
      watchedSet.invalidate();
      throw err;
    }
  }

  /** Walks back from `from` to the common ancestor and rolls back to it (one `reorg` commit). */
  async function reorg(from: number): Promise<void> {
    const oldest = await settlement.oldestKeptHeight(sql, chain);
    let ancestor: number | null = null;
    if (oldest !== null) {
      for (let h = from; h >= oldest; h--) {
        const stored = await settlement.blockHashAt(sql, chain, h);
        if (stored === null) break;
        if ((await adapter.hashAt(h)) === stored.toLowerCase()) {
          ancestor = h;
          break;
        }
      }
    }
    if (ancestor === null) throw new ReorgTooDeepError(adapter, from, oldest);
    await commit({ kind: 'reorg', ancestor, stillPending: await adapter.stillPending('reorg') });
    log.warn({ from_height: from, ancestor_height: ancestor, depth: from - ancestor }, 'reorg: rolled back to the common ancestor');
  }

  async function firstStart(tip: number): Promise<number> {
    const start = await firstScanHeight({
      db: sql, chain, tip, lookback: adapter.firstScanLookback,
      blockTime: async (h) => {
        const b = await adapter.blockAt(h);
        if (!b) throw new UpstreamError('chain_changed', `${adapter.nodeName}: no block at height ${h} (the chain changed); retrying`);
        return Math.floor(b.time.getTime() / 1000);
      },
    });
    if (start.reason === 'lookback') {
      log.warn({ start: start.height, tip, lookback: adapter.firstScanLookback, open_addresses: start.open },
        'first scan: open invoices are older than first_scan_lookback_blocks; payments in earlier blocks are not scanned');
    } else log.info({ start: start.height, tip, reason: start.reason, open_addresses: start.open }, 'first scan: no cursor yet, starting here');
    return start.height;
  }

  /** Mempool: new transactions scanned, vanished pending payments marked (one `mempool` commit). */
  async function mempoolPass(listing: MempoolListing, cursorHash: string): Promise<number> {
    const scan = await adapter.mempool!.scan(listing);
    const pending = await settlement.pendingTxids(sql, chain);
    let vanished = pending.filter((t) => !listing.has(t));
    // Only when the tip has not moved since the blocks were applied: a transaction just mined is
    // not in the listing either (the next pass decides).
    if (vanished.length && (await adapter.head()).hash !== cursorHash) vanished = [];
    if (scan.observations.length === 0 && vanished.length === 0) return scan.scanned;
    await commit({ kind: 'mempool', observations: scan.observations, vanished });
    if (scan.observations.length) log.info({ payments: scan.observations.length }, 'mempool payments seen');
    if (vanished.length) log.warn({ txids: vanished }, 'pending payments vanished from the mempool (replaced or double-spent)');
    return scan.scanned;
  }

  async function pass(signal?: AbortSignal): Promise<SyncPassResult> {
    const result: SyncPassResult = { blocks: 0, tip: -1, reorgs: 0, mempoolScanned: 0, more: false };
    await adapter.prepare?.();
    // Order matters (see the file comment): tip and mempool first, then the watched addresses.
    let head = await adapter.head();
    result.tip = head.height;
    let cursor = await settlement.cursor(sql, chain);
    // Listed only when this pass can reach the tip (the mempool pass runs only there).
    const listing = adapter.mempool && (!cursor || head.height - cursor.height <= maxBlocks) ? await adapter.mempool.list() : null;
    await refreshWatched();

    const afterReorg = async () => {
      result.reorgs++;
      cursor = await settlement.cursor(sql, chain);
      head = await adapter.head();
      result.tip = head.height;
      await refreshWatched(); // blocks up to the new tip may pay invoices created meanwhile
    };

    // Caught up (or the node is behind us): is our cursor block still in the node's chain? When
    // behind, the parent check of the next block answers that.
    if (cursor && cursor.height >= head.height && cursor.hash !== head.hash) {
      if ((await adapter.hashAt(cursor.height)) !== cursor.hash.toLowerCase()) {
        await reorg(cursor.height);
        await afterReorg();
      }
    }

    let next = cursor ? cursor.height + 1 : Math.min(deps.startHeight ?? (await firstStart(head.height)), head.height);
    while (next <= head.height) {
      if (signal?.aborted || result.blocks >= maxBlocks) {
        result.more = true;
        break;
      }
      const to = Math.min(head.height, next + adapter.rangeSize - 1, next + (maxBlocks - result.blocks) - 1);
      const scan = await adapter.scanRange(next, to, { last: to === head.height || result.blocks + (to - next + 1) >= maxBlocks });
      const first = scan.blocks[0];
      if (!first || scan.blocks.length !== to - next + 1) {
        throw new UpstreamError('chain_changed', `${adapter.nodeName}: blocks ${next}..${to} are no longer all in the node's chain; retrying`);
      }
      if (cursor && first.prevHash !== cursor.hash.toLowerCase()) {
        await reorg(cursor.height);
        await afterReorg();
        next = cursor ? cursor.height + 1 : next;
        continue;
      }
      for (let i = 1; i < scan.blocks.length; i++) {
        if (scan.blocks[i]!.prevHash !== scan.blocks[i - 1]!.hash) {
          throw new UpstreamError('chain_changed', `${adapter.nodeName}: the chain changed during the scan of ${next}..${to}; retrying`);
        }
      }
      await commit({
        kind: 'block', blocks: scan.blocks, observations: scan.observations, keep: adapter.reorgWindow,
        ...(scan.doubleSpent ? { doubleSpent: scan.doubleSpent } : {}), ...(scan.within ? { within: scan.within } : {}),
      });
      scan.committed?.();
      const last = scan.blocks[scan.blocks.length - 1]!;
      if (scan.observations.length || scan.doubleSpent?.length) {
        log.info({ from: next, to, hash: last.hash, payments: scan.observations.length, double_spent: scan.doubleSpent?.length ?? 0 }, 'blocks applied');
      } else log.debug({ from: next, to, hash: last.hash }, 'blocks applied');
      cursor = { height: last.height, hash: last.hash };
      result.blocks += scan.blocks.length;
      next = to + 1;
    }

    // After a rollback in this pass the listing is older than the payments it turned back to
    // pending: it would call them vanished. The next pass (right away) lists the mempool afresh.
    if (result.reorgs > 0) result.more = true;
    if (!result.more && listing && cursor && cursor.height >= head.height) {
      result.mempoolScanned = await mempoolPass(listing, cursor.hash);
    }
    if (adapter.finalizedHeight && cursor) {
      const fin = await adapter.finalizedHeight();
      if (fin !== null) await commit({ kind: 'finalize', height: fin });
    }
    return result;
  }

  async function health(state: 'ok' | 'error', tip: number | null, error: string | null): Promise<void> {
    if (!deps.redis) return;
    try {
      const cursor = await settlement.cursor(sql, chain).catch(() => null);
      await reportChainHealth(deps.redis, deps.queuePrefix, chain, {
        state, tip_height: tip, lag_blocks: tip !== null && cursor ? Math.max(0, tip - cursor.height) : null, error,
      });
    } catch (err) {
      log.warn({ err: (err as Error).message }, 'could not report chain health');
    }
  }

  async function runOnce(signal?: AbortSignal): Promise<SyncPassResult> {
    try {
      const r = await pass(signal);
      await health('ok', r.tip, null);
      return r;
    } catch (err) {
      await health('error', null, `${adapter.family} watcher for chain "${chain}": ${err instanceof Error ? err.message : String(err)}`);
      throw err;
    }
  }

  const isFatal = (err: unknown) => err instanceof ReorgTooDeepError || (adapter.isFatal?.(err) ?? false);

  async function run(signal: AbortSignal): Promise<void> {
    const poll = adapter.pollIntervalMs;
    const backoffMin = deps.backoffMinMs ?? 1_000;
    const backoffMax = deps.backoffMaxMs ?? 60_000;
    const lockRetry = deps.lockRetryMs ?? Math.max(poll, 1_000);
    let standbyLogged = false;
    while (!signal.aborted) {
      let lock: Awaited<ReturnType<typeof tryLock>>;
      try {
        lock = await tryLock(sql, `watch:${chain}`);
      } catch (err) {
        log.error({ err: (err as Error).message }, 'watcher could not take its lease (database error)');
        await sleep(lockRetry, signal);
        continue;
      }
      if (!lock) {
        if (!standbyLogged) log.info('another process watches this chain: standing by');
        standbyLogged = true;
        await sleep(lockRetry, signal);
        continue;
      }
      log.info('watcher started (holding the chain lease)');
      let failures = 0;
      try {
        while (!signal.aborted) {
          if (!(await lock.held())) {
            log.error('lost the chain lease (its database connection closed): standing by');
            break;
          }
          // A pass starts every `poll` ms (its own duration included, so a payment waits at most one
          // interval plus one pass), with at least MIN_REST_MS between passes.
          const started = Date.now();
          let delay = poll;
          try {
            const r = await runOnce(signal);
            failures = 0;
            delay = r.more ? 0 : Math.max(poll - (Date.now() - started), Math.min(MIN_REST_MS, poll));
          } catch (err) {
            const message = err instanceof Error ? err.message : String(err);
            if (isFatal(err)) {
              log.fatal({ err: message, code: isKassaError(err) ? err.code : undefined }, 'watcher stopped: needs attention');
              throw err;
            }
            failures++;
            delay = Math.min(backoffMax, backoffMin * 2 ** (failures - 1));
            log.error({ err: message, code: isKassaError(err) ? err.code : undefined, failures, retry_in_ms: delay }, 'watcher pass failed');
          }
          if (delay > 0) await sleep(delay, signal);
        }
      } finally {
        await lock.release().catch((err: Error) => log.warn({ err: err.message }, 'could not release the chain lease'));
      }
    }
    log.info('watcher stopped');
  }

  return { adapter, runOnce, run };
}
