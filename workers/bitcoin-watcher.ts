/**
 * The Bitcoin chain watcher: follows the node's best chain block by block and its mempool, and
 * records payments to open deposit addresses through the settlement service (docs/architecture.md §5).
 *
 * Node calls (standard Bitcoin Core RPC through `BitcoinNodeClient`, or Esplora; nothing
 * devnet-specific): getbestblockhash + getblockheader (tip), getblockhash (cursor check, catch-up,
 * reorg walk-back), getblock <hash> 0 (raw blocks, parsed locally by `scanBlock`), getrawmempool,
 * getrawtransaction <txid> false for mempool txs not seen before (batched on the RPC client).
 *
 * One pass (`runOnce`):
 * 1. Read the node's tip and list its mempool, THEN bring the watched deposit scripts up to date
 *    (the incremental watched set: only rows changed since the last pass; invoices are created all
 *    the time). In that order, every payment the pass can see
 *    was broadcast after its address was in the loaded set (the reverse order lost payments to
 *    invoices created mid-pass; found by bench:latency, regression test in watcher.test.ts).
 * 2. If the node's block at the cursor height is no longer the cursor's block: reorg handling.
 * 3. Catch up in order, ONE database transaction per block: recordObservations + advanceCursor
 *    (keeping `reorg_window` block hashes) + pending payments double-spent by the block's inputs
 *    marked vanished + recompute(touched ∪ awaiting confirmations); publish after commit. Before
 *    applying block h+1 its parent hash must equal the cursor's hash, otherwise: reorg handling.
 * 4. Once at the tip: the mempool listed in step 1. New txids (at most `maxMempoolTxsPerPass` per pass) are fetched
 *    and scanned → pending observations; pending payments whose tx is neither in the mempool nor
 *    confirmed are marked vanished (`replaced`), unless the tip moved meanwhile (checked again
 *    next pass, so a tx just mined is never mistaken for a vanished one).
 * 5. Report health (tip, lag, error naming the node).
 *
 * Reorgs: walk back from the cursor comparing stored hashes with the node's until the common
 * ancestor; in one transaction roll back to it (payments of orphaned blocks become `pending` when
 * their tx is back in the mempool, else `reorged`) and recompute; then continue forward on the new
 * branch. An ancestor older than the kept window stops the watcher loudly (`reorg_too_deep`,
 * health error) instead of guessing.
 *
 * First start (no cursor): the watcher starts low enough to cover every open invoice (the chain
 * height recorded with its deposit address, or the block of its creation time), at most
 * `first_scan_lookback_blocks` below the tip (src/chains/start-height.ts), or at `startHeight`
 * when given. Without open invoices it starts AT the node's current tip.
 *
 * `run(signal)` is single-flight per chain (a renewed lease row `watch:<chain>`, src/chains/single-flight.ts): a second
 * process waits in standby and takes over when the holder stops. Node errors are logged, reported
 * as health errors and retried with capped exponential backoff; the loop never crashes on them.
 */
import type { Redis } from 'ioredis';
import * as bitcoin from 'bitcoinjs-lib';
import type { BitcoinChainConfig } from '../src/config.ts';
import type { Sql } from '../src/db/client.ts';
import type { Logger } from '../src/logger.ts';
import { KassaError, isKassaError } from '../src/errors.ts';
import type { BlockRef, Observation, SettlementService } from '../src/settlement/service.ts';
import type { BitcoinNodeClient } from '../src/chains/bitcoin/types.ts';
import type { BitcoinRpcClient } from '../src/chains/bitcoin/rpc.ts';
import { hexToBytes, isBitcoinRpcError } from '../src/chains/bitcoin/rpc.ts';
import { scanBlock, scanTransaction, WatchedScripts, type OutputMatch } from '../src/chains/bitcoin/scanner.ts';
import { bitcoinNetwork } from '../src/chains/bitcoin/networks.ts';
import { reportChainHealth } from '../src/chains/health.ts';
import { tryLock } from '../src/chains/single-flight.ts';
import { DEFAULT_FIRST_SCAN_LOOKBACK, firstScanHeight } from '../src/chains/start-height.ts';
import { createWatchedSet, type WatchedAddressRow } from '../src/chains/watched-set.ts';

export interface BitcoinWatcherOptions {
  chain: string;
  config: BitcoinChainConfig;
  client: BitcoinNodeClient;
  sql: Sql;
  settlement: SettlementService;
  redis: Redis;
  queuePrefix: string;
  logger: Logger;
  /**
   * First block to scan when the chain has no cursor yet. Default: low enough to cover every open
   * invoice, at most `first_scan_lookback_blocks` back (src/chains/start-height.ts).
   */
  startHeight?: number;
  /** Stop a pass after this many blocks (the next pass continues). Default 500. */
  maxBlocksPerPass?: number;
  /** New mempool transactions fetched per pass. Default 1,000. */
  maxMempoolTxsPerPass?: number;
  /** Backoff after a failed pass: doubles from min to max. Default poll_interval_ms .. 60 s. */
  backoffMinMs?: number;
  backoffMaxMs?: number;
  /** How often a standby retries the lock. Default poll_interval_ms (at least 1 s). */
  lockRetryMs?: number;
}

export interface BitcoinPassResult {
  /** Blocks applied (committed) in this pass. */
  blocks: number;
  /** Node tip height seen at the start of the pass. */
  tip: number;
  /** Reorgs handled in this pass. */
  reorgs: number;
  /** Mempool transactions fetched and scanned in this pass. */
  mempoolScanned: number;
  /** True when the pass stopped before the tip (maxBlocksPerPass or abort). */
  more: boolean;
}

export interface BitcoinWatcher {
  /** One pass (no lock: `run` holds the single-flight lock); reports health `ok` when it succeeds. Throws on node/database errors. */
  runOnce(signal?: AbortSignal): Promise<BitcoinPassResult>;
  /** Loops until `signal` aborts: standby until the lock is acquired, backoff on errors. Rejects only on `reorg_too_deep`. */
  run(signal: AbortSignal): Promise<void>;
}

/** A reorg deeper than the kept window: the watcher stops instead of guessing. */
export class ReorgTooDeepError extends KassaError {
  constructor(chain: string, node: string, cursorHeight: number, oldestKept: number | null) {
    super(
      'reorg_too_deep',
      `Bitcoin watcher for chain "${chain}" stopped: ${node} reorganised deeper than the kept window (no common ancestor between height ${oldestKept ?? '?'} and ${cursorHeight}). ` +
        `Check the node; then stop the workers and rewind below the fork: kassa chains rewind --chain ${chain} --height <H> (docs/operations.md, "Recovering from reorg_too_deep").`,
      { status: 500, retryable: false },
    );
    this.name = 'ReorgTooDeepError';
  }
}

const HEX: string[] = Array.from({ length: 256 }, (_, i) => i.toString(16).padStart(2, '0'));
const toHex = (b: Uint8Array): string => {
  let s = '';
  for (let i = 0; i < b.length; i++) s += HEX[b[i]!];
  return s;
};

function sleep(ms: number, signal?: AbortSignal): Promise<void> {
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

const hasBatch = (c: BitcoinNodeClient): c is BitcoinRpcClient => c.kind === 'rpc' && typeof (c as Partial<BitcoinRpcClient>).batch === 'function';

interface Watched {
  scripts: WatchedScripts;
  /** script hex → deposit address */
  addressOf: Map<string, string>;
}

export function createBitcoinWatcher(opts: BitcoinWatcherOptions): BitcoinWatcher {
  const { chain, config, client, sql, settlement, logger } = opts;
  const log = logger.child({ chain, watcher: 'bitcoin', node: client.name });
  const keep = config.reorg_window;
  const maxBlocks = opts.maxBlocksPerPass ?? 500;
  const maxMempool = opts.maxMempoolTxsPerPass ?? 1000;
  const network = bitcoinNetwork(config.network);
  /** Mempool txids already fetched and scanned → outpoints spent by those that pay us (for double-spend checks). */
  const seenMempool = new Map<string, string[] | null>();

  /** The deposit scripts matched against, kept current incrementally (docs/architecture.md §5). */
  const watchedSet = createWatchedSet({ sql, chain, logger: log });
  const watched: Watched = { scripts: new WatchedScripts(0), addressOf: new Map() };

  function scriptOf(r: WatchedAddressRow): Uint8Array | null {
    if (r.script) return r.script;
    try {
      return new Uint8Array(bitcoin.address.toOutputScript(r.address, network));
    } catch {
      log.warn({ address: r.address, invoice_id: r.invoiceId }, 'deposit address is not valid on this network; not watched');
      return null;
    }
  }

  /** Brings the watched scripts up to date with the database: a full load first, then changes only. */
  async function loadWatched(): Promise<Watched> {
    let delta;
    try {
      delta = await watchedSet.refresh();
    } catch (err) {
      watchedSet.invalidate();
      throw err;
    }
    if (delta.full) {
      watched.scripts = new WatchedScripts(watchedSet.size);
      watched.addressOf.clear();
    }
    for (const r of delta.added) {
      const script = scriptOf(r);
      if (!script) continue;
      watched.scripts.add(script);
      watched.addressOf.set(toHex(script), r.address);
    }
    for (const r of delta.removed) {
      const script = scriptOf(r);
      if (!script) continue;
      watched.scripts.remove(script);
      watched.addressOf.delete(toHex(script));
    }
    return watched;
  }

  function observations(matches: OutputMatch[], w: Watched, block: Observation['block']): Observation[] {
    const out: Observation[] = [];
    for (const m of matches) {
      const address = w.addressOf.get(toHex(m.script));
      if (!address) continue;
      if (m.coinbase) {
        // A coinbase output is unspendable for 100 blocks; Kassa does not count it as a payment.
        log.warn({ txid: m.txid, vout: m.vout, address }, 'coinbase output to a deposit address ignored');
        continue;
      }
      out.push({ txid: m.txid, outputIndex: m.vout, address, token: null, amount: m.value, block });
    }
    return out;
  }

  /** The node's best-chain hash at `height`, or null when the node's chain is shorter. */
  async function nodeHashAt(height: number): Promise<string | null> {
    try {
      return await client.getBlockHash(height);
    } catch (err) {
      if (isBitcoinRpcError(err, -8) || isBitcoinRpcError(err, -5)) return null;
      throw err;
    }
  }

  async function mempoolSet(): Promise<Set<string>> {
    return new Set(await client.getRawMempool());
  }

  /** Walks back to the common ancestor and rolls back to it in one transaction. */
  async function handleReorg(cursor: { height: number; hash: string }): Promise<void> {
    const oldest = await settlement.oldestKeptHeight(sql, chain);
    let ancestor: number | null = null;
    if (oldest !== null) {
      for (let h = cursor.height; h >= oldest; h--) {
        const stored = await settlement.blockHashAt(sql, chain, h);
        if (stored === null) break;
        if ((await nodeHashAt(h)) === stored) {
          ancestor = h;
          break;
        }
      }
    }
    if (ancestor === null) throw new ReorgTooDeepError(chain, client.name, cursor.height, oldest);
    const mempool = await mempoolSet();
    const changed = await sql.begin(async (tx) => {
      const touched = await settlement.rollbackTo(tx, chain, ancestor, (txid) => mempool.has(txid));
      for (const id of await settlement.awaitingConfirmations(tx, chain)) touched.add(id);
      return settlement.recompute(tx, touched);
    });
    log.warn({ from_height: cursor.height, ancestor_height: ancestor, depth: cursor.height - ancestor }, 'bitcoin reorg: rolled back to the common ancestor');
    await settlement.publishChanges(changed);
  }

  /** Applies one block in one transaction. */
  async function applyBlock(ref: Omit<BlockRef, 'time'>, raw: Uint8Array, w: Watched): Promise<void> {
    const scan = scanBlock(raw, w.scripts);
    const time = new Date(scan.header.time * 1000);
    const obs = observations(scan.matches, w, { hash: ref.hash, height: ref.height, time });
    // Pending payments whose inputs this block spends in another transaction were double-spent.
    const inBlock = new Set(scan.matches.map((m) => m.txid));
    const pendingInputs = new Map<string, string>();
    for (const [txid, spent] of seenMempool) {
      if (!spent || inBlock.has(txid)) continue;
      for (const o of spent) pendingInputs.set(o, txid);
    }
    const doubleSpent = pendingInputs.size ? [...new Set(scan.spent.spentAmong(pendingInputs.keys()).map((o) => pendingInputs.get(o)!))] : [];
    const changed = await sql.begin(async (tx) => {
      const touched = await settlement.recordObservations(tx, chain, obs);
      await settlement.advanceCursor(tx, chain, { ...ref, time }, keep);
      if (doubleSpent.length) for (const id of await settlement.markVanished(tx, chain, doubleSpent)) touched.add(id);
      for (const id of await settlement.awaitingConfirmations(tx, chain)) touched.add(id);
      return settlement.recompute(tx, touched);
    });
    for (const t of doubleSpent) seenMempool.delete(t);
    if (obs.length || doubleSpent.length) {
      log.info({ height: ref.height, hash: ref.hash, payments: obs.length, double_spent: doubleSpent.length }, 'bitcoin block applied');
    } else {
      log.debug({ height: ref.height, hash: ref.hash }, 'bitcoin block applied');
    }
    await settlement.publishChanges(changed);
  }

  /** Fetches raw mempool transactions (one RPC batch per 100 on Core; a few at a time on Esplora). Missing ones are skipped. */
  async function fetchTransactions(txids: string[]): Promise<Map<string, Uint8Array>> {
    const out = new Map<string, Uint8Array>();
    if (hasBatch(client)) {
      for (let i = 0; i < txids.length; i += 100) {
        const chunk = txids.slice(i, i + 100);
        const res = await client.batch(chunk.map((t) => ({ method: 'getrawtransaction', params: [t, false] })));
        res.forEach((r, j) => {
          if (r.ok && typeof r.result === 'string') out.set(chunk[j]!, hexToBytes(r.result, 'getrawtransaction', client.name));
        });
      }
      return out;
    }
    for (let i = 0; i < txids.length; i += 8) {
      const chunk = txids.slice(i, i + 8);
      await Promise.all(
        chunk.map(async (t) => {
          try {
            out.set(t, await client.getRawTransactionRaw(t));
          } catch (err) {
            if (!isBitcoinRpcError(err, -5)) throw err; // it left the mempool meanwhile
          }
        }),
      );
    }
    return out;
  }

  /**
   * `mempool` was listed BEFORE `w` was loaded (see runOnce): every transaction in it was broadcast
   * after its deposit address existed, so `w` knows that address and "not ours" is final.
   */
  async function mempoolPass(w: Watched, tipHash: string, mempool: string[]): Promise<number> {
    const inMempool = new Set(mempool);
    for (const t of seenMempool.keys()) if (!inMempool.has(t)) seenMempool.delete(t);
    const fresh = mempool.filter((t) => !seenMempool.has(t)).slice(0, maxMempool);
    const raws = await fetchTransactions(fresh);
    const obs: Observation[] = [];
    for (const txid of fresh) {
      const raw = raws.get(txid);
      if (!raw) continue;
      const scan = scanTransaction(raw, w.scripts);
      const mine = observations(scan.matches, w, null);
      obs.push(...mine);
      seenMempool.set(txid, mine.length ? scan.spent : null);
    }
    // Vanished: pending payments whose tx is gone from the mempool. Only when the tip has not moved
    // since the blocks were applied (else the tx may just have been mined: next pass decides).
    const pending = await settlement.pendingTxids(sql, chain);
    let vanished = pending.filter((t) => !inMempool.has(t));
    if (vanished.length && (await client.getBestBlockHash()) !== tipHash) vanished = [];
    if (obs.length === 0 && vanished.length === 0) return fresh.length;
    const changed = await sql.begin(async (tx) => {
      const touched = await settlement.recordObservations(tx, chain, obs);
      for (const id of await settlement.markVanished(tx, chain, vanished)) touched.add(id);
      return settlement.recompute(tx, touched);
    });
    if (obs.length) log.info({ payments: obs.length }, 'bitcoin mempool payments seen');
    if (vanished.length) log.warn({ txids: vanished }, 'pending bitcoin payments vanished from the mempool (replaced or double-spent)');
    await settlement.publishChanges(changed);
    return fresh.length;
  }

  /** The first block of a chain without a cursor: covers every open invoice (bounded look-back). */
  async function firstStart(tip: number): Promise<number> {
    const start = await firstScanHeight({
      db: sql, chain, tip, lookback: config.first_scan_lookback_blocks ?? DEFAULT_FIRST_SCAN_LOOKBACK.bitcoin,
      blockTime: async (h) => (await client.getBlockHeader(await client.getBlockHash(h))).time,
    });
    if (start.reason === 'lookback') {
      log.warn({ start: start.height, tip, lookback: config.first_scan_lookback_blocks ?? DEFAULT_FIRST_SCAN_LOOKBACK.bitcoin, open_addresses: start.open },
        'first scan: open invoices are older than first_scan_lookback_blocks; payments in earlier blocks are not scanned');
    } else log.info({ start: start.height, tip, reason: start.reason, open_addresses: start.open }, 'first scan: no cursor yet, starting here');
    return start.height;
  }

  async function runOnce(signal?: AbortSignal): Promise<BitcoinPassResult> {
    const result: BitcoinPassResult = { blocks: 0, tip: -1, reorgs: 0, mempoolScanned: 0, more: false };
    // Order matters: the tip and the mempool are read BEFORE the watched addresses are loaded. A
    // payment in a block up to that tip or in that mempool listing was broadcast after its invoice
    // (and deposit address) was committed, so the set loaded afterwards contains the address.
    // Loaded the other way round, an invoice created in between could be paid and scanned against
    // a set without its address: a block would be applied without the payment (lost), a mempool tx
    // would be remembered as "not ours" and only counted once mined.
    let tipHash = await client.getBestBlockHash();
    let tip = (await client.getBlockHeader(tipHash)).height;
    result.tip = tip;
    let cursor = await settlement.cursor(sql, chain);
    // Listed only when this pass can reach the tip (the mempool pass runs only there).
    const mempool = !cursor || tip - cursor.height <= maxBlocks ? await client.getRawMempool() : null;
    let w = await loadWatched();

    // The node's chain no longer contains our cursor block (same-length or shorter reorg).
    if (cursor && cursor.hash !== tipHash) {
      const atCursor = await nodeHashAt(cursor.height);
      if (atCursor !== cursor.hash) {
        await handleReorg(cursor);
        result.reorgs++;
        cursor = await settlement.cursor(sql, chain);
      }
    }

    let next = cursor ? cursor.height + 1 : Math.min(opts.startHeight ?? (await firstStart(tip)), tip);
    while (next <= tip) {
      if (signal?.aborted || result.blocks >= maxBlocks) {
        result.more = true;
        break;
      }
      const hash = await client.getBlockHash(next);
      const raw = await client.getBlockRaw(hash);
      const prevHash = scanPrevHash(raw);
      if (cursor && prevHash !== cursor.hash) {
        await handleReorg(cursor);
        result.reorgs++;
        cursor = await settlement.cursor(sql, chain);
        next = cursor ? cursor.height + 1 : next;
        tipHash = await client.getBestBlockHash();
        tip = (await client.getBlockHeader(tipHash)).height;
        result.tip = tip;
        w = await loadWatched(); // blocks up to the new tip may pay invoices created meanwhile
        continue;
      }
      await applyBlock({ height: next, hash, prevHash }, raw, w);
      cursor = { height: next, hash };
      result.blocks++;
      next++;
    }

    // After a rollback in this pass the listing is older than the payments it turned back to
    // pending: it would call them vanished. The next pass (right away) lists the mempool afresh.
    if (result.reorgs > 0 && !result.more) result.more = true;
    if (!result.more && mempool && cursor && cursor.height >= tip) {
      result.mempoolScanned = await mempoolPass(w, cursor.hash, mempool);
    }
    await health('ok', result.tip, null);
    return result;
  }

  function scanPrevHash(raw: Uint8Array): string {
    // Bytes 4..36 of the header, display order (reversed).
    let s = '';
    for (let i = 35; i >= 4; i--) s += HEX[raw[i]!];
    return s;
  }

  async function health(state: 'ok' | 'error', tip: number | null, error: string | null): Promise<void> {
    try {
      const cursor = await settlement.cursor(sql, chain).catch(() => null);
      await reportChainHealth(opts.redis, opts.queuePrefix, chain, {
        state,
        tip_height: tip,
        lag_blocks: tip !== null && cursor ? Math.max(0, tip - cursor.height) : null,
        error,
      });
    } catch (err) {
      log.warn({ err: (err as Error).message }, 'could not report chain health');
    }
  }

  async function run(signal: AbortSignal): Promise<void> {
    const poll = config.poll_interval_ms;
    const backoffMin = opts.backoffMinMs ?? poll;
    const backoffMax = opts.backoffMaxMs ?? 60_000;
    const lockRetry = opts.lockRetryMs ?? Math.max(poll, 1000);
    let standbyLogged = false;
    while (!signal.aborted) {
      let lock: Awaited<ReturnType<typeof tryLock>>;
      try {
        lock = await tryLock(sql, `watch:${chain}`);
      } catch (err) {
        log.error({ err: (err as Error).message }, 'bitcoin watcher could not take its lock (database error)');
        await sleep(lockRetry, signal);
        continue;
      }
      if (!lock) {
        if (!standbyLogged) log.info('another process watches this chain: standing by');
        standbyLogged = true;
        await sleep(lockRetry, signal);
        continue;
      }
      log.info('bitcoin watcher started (holding the chain lock)');
      let failures = 0;
      try {
        while (!signal.aborted) {
          if (!(await lock.held())) {
            log.error('lost the chain lock (its database connection closed): standing by');
            break;
          }
          let delay = poll;
          try {
            const r = await runOnce(signal);
            failures = 0;
            if (r.more) delay = 0;
          } catch (err) {
            const message = err instanceof Error ? err.message : String(err);
            if (err instanceof ReorgTooDeepError) {
              log.fatal({ err: message }, 'bitcoin watcher stopped: reorg deeper than the kept window');
              await health('error', null, message);
              throw err;
            }
            failures++;
            delay = Math.min(backoffMax, backoffMin * 2 ** (failures - 1));
            log.error({ err: message, code: isKassaError(err) ? err.code : undefined, failures, retry_in_ms: delay }, 'bitcoin watcher pass failed');
            await health('error', null, `Bitcoin watcher for chain "${chain}": ${message}`);
          }
          if (delay > 0) await sleep(delay, signal);
        }
      } finally {
        await lock.release().catch((err: Error) => log.warn({ err: err.message }, 'could not release the chain lock'));
      }
    }
    log.info('bitcoin watcher stopped');
  }

  return { runOnce, run };
}
