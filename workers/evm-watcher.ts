/**
 * The EVM chain watcher: follows one chain block by block and records payments to open deposit
 * (forwarder) addresses through the settlement service.
 *
 * Per pass (runOnce): eth_blockNumber, then blocks cursor+1..tip in ranges (one block at a time
 * when following the tip, up to `catchupRange` blocks during catch-up). For each range, in one
 * JSON-RPC batch: eth_getBlockByNumber(full transactions) per block, ONE eth_getLogs for the
 * Transfer topic of all configured tokens and one for the forwarders' Flushed topic (each split in
 * halves when the node refuses the range; flushes by anyone are stored in evm_outflows);
 * then eth_getTransactionReceipt only for transactions whose `to` is an open deposit address; and,
 * on the last range of the pass, the balance check: ForwarderFactory.balancesOf(addresses) via
 * eth_call in chunks of `balanceChunk` (2,000) addresses, all chunks in one HTTP batch, over at most
 * `balance_check_per_block` (10,000) open addresses per block, round-robin over the open ones.
 * None of these grows with the number of open invoices beyond that bound; addresses are matched in memory.
 *
 * Each range is committed in ONE database transaction: observations, cursor + kept block hashes,
 * recompute of touched invoices and of those awaiting confirmations. Live updates are published
 * after the commit. Reorgs: the first block's parent hash must equal the stored hash of the cursor;
 * otherwise the watcher walks back to the common ancestor, rolls back (payments of orphaned blocks
 * become `reorged`) and re-scans. A reorg deeper than the kept window stops the chain loudly.
 */
import type { Redis } from 'ioredis';
import { BaseError, getAddress, toEventSelector, type Address, type Block, type Hex } from 'viem';
import type { EvmChainConfig } from '../src/config.ts';
import type { Sql, TxSql } from '../src/db/client.ts';
import type { Logger } from '../src/logger.ts';
import type { BlockRef, Observation, SettlementService } from '../src/settlement/service.ts';
import type { EvmClient } from '../src/chains/evm/client.ts';
import { forwarderFactoryAbi } from '../src/chains/evm/artifacts.ts';
import { reportChainHealth } from '../src/chains/health.ts';
import { tryLock } from '../src/chains/single-flight.ts';
import { DEFAULT_FIRST_SCAN_LOOKBACK, firstScanHeight } from '../src/chains/start-height.ts';
import { KassaError, UpstreamError, isKassaError } from '../src/errors.ts';
import { createWatchedSet } from '../src/chains/watched-set.ts';
import { createBalanceRotation } from '../src/chains/evm/balance-rotation.ts';

/** keccak256("Transfer(address,address,uint256)") */
export const TRANSFER_TOPIC: Hex = '0xddf252ad1be2c89b69c2b068fc378daa952ba7f163c4a11628f55a4df523b3ef';
/** The Forwarder's `Flushed(address indexed treasury, uint256 amount)`: native coin leaving a deposit address. */
export const FLUSHED_TOPIC: Hex = toEventSelector('Flushed(address,uint256)');

/** Native coin that left a deposit address (a forwarder's Flushed event), whoever flushed it. */
interface Outflow {
  txid: string;
  logIndex: number;
  address: string;
  amount: bigint;
  blockNumber: number;
  blockHash: string;
}

export interface EvmWatcherOptions {
  chain: string;
  config: EvmChainConfig;
  client: EvmClient;
  sql: Sql;
  settlement: SettlementService;
  redis?: Redis;
  queuePrefix: string;
  logger: Logger;
  /**
   * First block to scan when the chain has no cursor yet. Default: low enough to cover every open
   * invoice, at most `first_scan_lookback_blocks` back (src/chains/start-height.ts).
   */
  startBlock?: number;
  /** Blocks per range (one DB transaction) during catch-up; capped by max_log_range. Default 100. */
  catchupRange?: number;
  /** Stop a pass after this many blocks (the next pass continues). Default: unlimited. */
  maxBlocksPerPass?: number;
  /** Addresses per balancesOf eth_call. Default 2,000. */
  balanceChunk?: number;
  /** Open addresses read by the balance check per block (round-robin). Default: the chain's `balance_check_per_block`. */
  balanceCheckPerBlock?: number;
  /** Backoff after a failed pass: doubles from min to max. Default 1 s .. 60 s. */
  backoffMinMs?: number;
  backoffMaxMs?: number;
}

export interface PassResult {
  /** Blocks processed (committed) in this pass. */
  blocks: number;
  /** JSON-RPC calls made in this pass (each element of a batch counts). */
  rpcCalls: number;
  /** HTTP round trips to the node in this pass. */
  httpRequests: number;
  /** JSON-RPC calls by method. */
  byMethod: Record<string, number>;
  tip: number;
}

export interface EvmWatcher {
  /** One pass (no lock: `run` holds the single-flight lock). Throws on RPC errors. */
  runOnce(): Promise<PassResult>;
  /** Loops until `signal` aborts: standby until the lock is acquired, backoff on errors. */
  run(signal: AbortSignal): Promise<void>;
}

interface RpcTx {
  hash: Hex;
  transactionIndex: number | null;
  to: Address | null;
  value: bigint;
}
type FullBlock = Block<bigint, true>;

const sleep = (ms: number, signal?: AbortSignal) =>
  new Promise<void>((resolve) => {
    if (signal?.aborted) return resolve();
    const t = setTimeout(done, ms);
    function done() {
      clearTimeout(t);
      signal?.removeEventListener('abort', done);
      resolve();
    }
    signal?.addEventListener('abort', done, { once: true });
  });

function rpcMessage(err: unknown): string {
  if (err instanceof BaseError) return (err.shortMessage || err.message).split('\n')[0]!;
  if (err instanceof Error) return err.message.split('\n')[0]!;
  return String(err);
}

const TOO_MANY = /too many|limit exceeded|more than \d+ results|query returned more than|response size|range is too large|block range|exceed/i;

export function createEvmWatcher(o: EvmWatcherOptions): EvmWatcher {
  const { chain, config: cfg, client, sql, settlement } = o;
  const pc = client.public;
  const log = o.logger.child({ chain });
  const tokens = cfg.tokens.map((t) => t.address.toLowerCase() as Address);
  const tokenSet = new Set(tokens);
  const range = Math.max(1, Math.min(o.catchupRange ?? 100, cfg.max_log_range));
  const balanceChunk = o.balanceChunk ?? 2_000;
  const rotation = createBalanceRotation(o.balanceCheckPerBlock ?? o.config.balance_check_per_block ?? 10_000);
  let chainIdChecked = false;

  const rpc = async <T>(what: string, fn: () => Promise<T>): Promise<T> => {
    try {
      return await fn();
    } catch (err) {
      if (isKassaError(err)) throw err;
      throw new UpstreamError('evm_rpc_error', `${chain}: ${what} failed at ${cfg.rpc_url}: ${rpcMessage(err)}`, { cause: err });
    }
  };

  type RawLog = { address: string; topics: Hex[]; data: Hex; blockNumber: Hex; blockHash: Hex; logIndex: Hex; transactionHash: Hex; transactionIndex: Hex; removed?: boolean };

  /** eth_getLogs for `topic` (of `address` when given) over from..to; halves the range on limit errors. */
  async function getLogs(topic: Hex, address: Address[] | undefined, from: number, to: number): Promise<RawLog[]> {
    try {
      return (await pc.request({
        method: 'eth_getLogs',
        params: [{ ...(address ? { address } : {}), topics: [topic], fromBlock: `0x${from.toString(16)}`, toBlock: `0x${to.toString(16)}` }],
      })) as RawLog[];
    } catch (err) {
      if (to > from && TOO_MANY.test(rpcMessage(err) + ' ' + ((err as { details?: string }).details ?? ''))) {
        const mid = Math.floor((from + to) / 2);
        log.debug({ from, to }, 'eth_getLogs range refused, splitting');
        return [...(await getLogs(topic, address, from, mid)), ...(await getLogs(topic, address, mid + 1, to))];
      }
      throw new UpstreamError('evm_rpc_error', `${chain}: eth_getLogs ${from}..${to} failed at ${cfg.rpc_url}: ${rpcMessage(err)}`, { cause: err });
    }
  }

  /**
   * Flushed events of deposit addresses in from..to: eth_getLogs by topic only (forwarders are
   * many and mostly not deployed), the emitter matched against the watched addresses in memory.
   * Only a forwarder can emit from a deposit address (CREATE2 binds the code), so a match is real.
   */
  async function outflowLogs(from: number, to: number, watched: Map<string, string>): Promise<Outflow[]> {
    if (!cfg.factory || watched.size === 0) return [];
    const out: Outflow[] = [];
    for (const l of await getLogs(FLUSHED_TOPIC, undefined, from, to)) {
      if (l.removed || l.topics.length !== 2 || l.topics[0] !== FLUSHED_TOPIC) continue;
      const address = l.address.toLowerCase();
      if (!watched.has(address)) continue;
      const amount = l.data === '0x' ? 0n : BigInt(l.data);
      if (amount <= 0n) continue;
      out.push({ txid: l.transactionHash.toLowerCase(), logIndex: Number(BigInt(l.logIndex)), address, amount, blockNumber: Number(BigInt(l.blockNumber)), blockHash: l.blockHash.toLowerCase() });
    }
    return out;
  }

  /** eth_getLogs for the Transfer topic of every configured token; halves the range on limit errors. */
  async function transferLogs(from: number, to: number): Promise<{ blockNumber: number; blockHash: string; logIndex: number; txIndex: number; txid: string; token: string; to: string; amount: bigint }[]> {
    if (tokens.length === 0) return [];
    const raw = await getLogs(TRANSFER_TOPIC, tokens, from, to);
    const out = [];
    for (const l of raw) {
      if (l.removed || l.topics.length !== 3 || l.topics[0] !== TRANSFER_TOPIC) continue; // ERC-721 has 4 topics
      const token = l.address.toLowerCase();
      if (!tokenSet.has(token as Address)) continue;
      const amount = l.data === '0x' ? 0n : BigInt(l.data);
      out.push({
        blockNumber: Number(BigInt(l.blockNumber)), blockHash: l.blockHash.toLowerCase(), logIndex: Number(BigInt(l.logIndex)), txIndex: Number(BigInt(l.transactionIndex)),
        txid: l.transactionHash.toLowerCase(), token, to: ('0x' + l.topics[2]!.slice(26)).toLowerCase(), amount,
      });
    }
    return out;
  }

  /** Native balances of `addresses` at `block` via ForwarderFactory.balancesOf (eth_call, chunked, one batch). */
  async function balances(addresses: string[], block: number): Promise<Map<string, bigint>> {
    const out = new Map<string, bigint>();
    if (!cfg.factory || addresses.length === 0) return out;
    const chunks: string[][] = [];
    for (let i = 0; i < addresses.length; i += balanceChunk) chunks.push(addresses.slice(i, i + balanceChunk));
    const results = await rpc('balancesOf', () =>
      Promise.all(chunks.map((c) =>
        pc.readContract({ address: getAddress(cfg.factory!), abi: forwarderFactoryAbi, functionName: 'balancesOf', args: [c as Address[]], blockNumber: BigInt(block) }))));
    results.forEach((vals, i) => chunks[i]!.forEach((a, j) => out.set(a, vals[j] ?? 0n)));
    return out;
  }

  /**
   * Balance-check credits at `block` (inside the range's transaction, after its observations and
   * outflows): credit = on-chain balance − (live native payments recorded − every flush out of the
   * address still in the best chain at ≤ block), for addresses with a balance or with a flush.
   */
  async function balanceCredits(tx: TxSql, onChain: Map<string, bigint>, block: BlockRef): Promise<Observation[]> {
    const candidates = [...onChain].filter(([a, v]) => v > 0n || flushedAddresses.has(a)).map(([a]) => a);
    if (candidates.length === 0) return [];
    const rows = await tx<{ address: string; expected: bigint }[]>`
      select a.address,
        coalesce((select sum(p.amount) from payments p
                  where p.chain = ${chain} and p.address = a.address and p.output_index in (-1, -2) and p.status in ('pending', 'confirmed')), 0)
        - coalesce((select sum(o.amount) from evm_outflows o
                  where o.chain = ${chain} and o.address = a.address and o.block_number <= ${block.height}
                    and (o.block_number < (select min(height) from chain_blocks where chain = ${chain})
                         or exists (select 1 from chain_blocks b where b.chain = ${chain} and b.height = o.block_number and b.hash = o.block_hash))), 0)
          as expected
      from unnest(${candidates}::text[]) as a(address)`;
    const out: Observation[] = [];
    for (const r of rows) {
      const diff = (onChain.get(r.address) ?? 0n) - BigInt(r.expected);
      if (diff > 0n) {
        out.push({
          txid: `balance:${r.address}:${block.height}`, outputIndex: -2, address: r.address, token: null, amount: diff,
          block: { hash: block.hash, height: block.height, time: block.time },
        });
      }
    }
    return out;
  }

  class ReorgDetected extends Error {}

  /** Open deposit addresses (lowercase) → invoice id, kept current incrementally (docs/architecture.md §5). */
  const watchedSet = createWatchedSet({ sql, chain, logger: log });
  const watchedMap = new Map<string, string>();
  async function loadWatched(): Promise<Map<string, string>> {
    let delta;
    try {
      delta = await watchedSet.refresh();
    } catch (err) {
      watchedSet.invalidate();
      throw err;
    }
    if (delta.full) watchedMap.clear();
    for (const r of delta.added) watchedMap.set(r.address.toLowerCase(), r.invoiceId);
    for (const r of delta.removed) watchedMap.delete(r.address.toLowerCase());
    return watchedMap;
  }

  async function processRange(from: number, to: number, prev: { height: number; hash: string } | null, watched: Map<string, string>, last: boolean): Promise<Set<string>> {
    const heights = Array.from({ length: to - from + 1 }, (_, i) => from + i);
    const [blocks, logs, outflows] = await Promise.all([
      rpc('eth_getBlockByNumber', () => Promise.all(heights.map((h) => pc.getBlock({ blockNumber: BigInt(h), includeTransactions: true }) as Promise<FullBlock>))),
      transferLogs(from, to),
      outflowLogs(from, to, watched),
    ]);
    const refs: BlockRef[] = blocks.map((b) => ({
      height: Number(b.number), hash: b.hash!.toLowerCase(), prevHash: b.parentHash.toLowerCase(), time: new Date(Number(b.timestamp) * 1000),
    }));
    if (prev && refs[0]!.prevHash !== prev.hash.toLowerCase()) throw new ReorgDetected();
    for (let i = 1; i < refs.length; i++) {
      if (refs[i]!.prevHash !== refs[i - 1]!.hash) {
        throw new UpstreamError('evm_chain_changed', `${chain}: the node's chain changed during the scan of ${from}..${to}; retrying`);
      }
    }
    const byHeight = new Map(refs.map((r) => [r.height, r]));
    for (const f of outflows) {
      const ref = byHeight.get(f.blockNumber);
      if (!ref || ref.hash !== f.blockHash) {
        throw new UpstreamError('evm_chain_changed', `${chain}: logs of block ${f.blockNumber} belong to another branch; retrying`);
      }
    }
    // Observations in chain order (block, transaction, log) so payments get a natural sequence.
    const ordered: { key: [number, number, number]; o: Observation }[] = [];

    // ERC-20 transfers (matched in memory; the node filters by token + topic only).
    for (const l of logs) {
      const ref = byHeight.get(l.blockNumber);
      if (!ref || ref.hash !== l.blockHash) {
        throw new UpstreamError('evm_chain_changed', `${chain}: logs of block ${l.blockNumber} belong to another branch; retrying`);
      }
      if (l.amount > 0n && watched.has(l.to)) {
        ordered.push({ key: [ref.height, l.txIndex, l.logIndex], o: { txid: l.txid, outputIndex: l.logIndex, address: l.to, token: l.token, amount: l.amount, block: { hash: ref.hash, height: ref.height, time: ref.time } } });
      }
    }

    // Native transfers: top-level transactions to an open address, counted only if they succeeded.
    const candidates: { tx: RpcTx; ref: BlockRef }[] = [];
    blocks.forEach((b, i) => {
      for (const t of b.transactions as RpcTx[]) {
        if (t.to && t.value > 0n && watched.has(t.to.toLowerCase())) candidates.push({ tx: t, ref: refs[i]! });
      }
    });
    if (candidates.length > 0) {
      const receipts = await rpc('eth_getTransactionReceipt', () => Promise.all(candidates.map((c) => pc.getTransactionReceipt({ hash: c.tx.hash }))));
      receipts.forEach((r, i) => {
        const c = candidates[i]!;
        if (r.status !== 'success') {
          log.info({ txid: c.tx.hash, address: c.tx.to, block: c.ref.height }, 'reverted transfer to a deposit address ignored');
          return;
        }
        if (r.blockHash.toLowerCase() !== c.ref.hash) throw new UpstreamError('evm_chain_changed', `${chain}: receipt of ${c.tx.hash} is from another branch; retrying`);
        ordered.push({
          key: [c.ref.height, c.tx.transactionIndex ?? 0, -1],
          o: {
            txid: c.tx.hash.toLowerCase(), outputIndex: -1, address: c.tx.to!.toLowerCase(), token: null, amount: c.tx.value,
            block: { hash: c.ref.hash, height: c.ref.height, time: c.ref.time },
          },
        });
      });
    }

    const obs = ordered.sort((a, b) => a.key[0] - b.key[0] || a.key[1] - b.key[1] || a.key[2] - b.key[2]).map((x) => x.o);
    const lastRef = refs[refs.length - 1]!;
    // At most `balance_check_per_block` addresses per block, round-robin over the open ones.
    const onChain = last && watched.size > 0 ? await balances(rotation.next(watched), lastRef.height) : new Map<string, bigint>();

    const changed = await sql.begin(async (tx) => {
      const touched = await settlement.recordObservations(tx, chain, obs);
      if (outflows.length > 0) await recordOutflows(tx, outflows);
      for (const ref of refs) await settlement.advanceCursor(tx, chain, ref, cfg.reorg_window);
      if (onChain.size > 0) {
        const credits = await balanceCredits(tx, onChain, lastRef);
        if (credits.length > 0) {
          log.info({ credits: credits.map((c) => ({ address: c.address, amount: c.amount.toString() })), block: lastRef.height }, 'balance check found native coin not seen in transactions');
          for (const id of await settlement.recordObservations(tx, chain, credits)) touched.add(id);
        }
      }
      for (const id of await settlement.awaitingConfirmations(tx, chain)) touched.add(id);
      return settlement.recompute(tx, touched);
    });
    for (const f of outflows) flushedAddresses.add(f.address);
    if (obs.length > 0) log.info({ from, to, payments: obs.length }, 'payments recorded');
    if (outflows.length > 0) log.info({ from, to, flushes: outflows.length }, 'flushes out of deposit addresses recorded');
    await settlement.publishChanges(changed);
    return changed;
  }

  /** Stores flushes (one row per Flushed log); a log seen again (re-scan, re-mined) is updated, never doubled. */
  async function recordOutflows(tx: TxSql, outflows: Outflow[]): Promise<void> {
    await tx`
      insert into evm_outflows ${tx(outflows.map((f) => ({
        chain, txid: f.txid, log_index: f.logIndex, address: f.address, amount: f.amount.toString(), block_number: f.blockNumber, block_hash: f.blockHash,
      })), 'chain', 'txid', 'log_index', 'address', 'amount', 'block_number', 'block_hash')}
      on conflict (chain, txid, log_index) do update set address = excluded.address, amount = excluded.amount,
        block_number = excluded.block_number, block_hash = excluded.block_hash`;
  }

  /**
   * Watched addresses that have had a flush: the balance check must look at them even at a zero
   * balance (coin that arrived unseen and was flushed before the check). Loaded once, then kept
   * up to date as flushes are recorded.
   */
  const flushedAddresses = new Set<string>();
  let flushedLoaded = false;
  async function loadFlushedAddresses(): Promise<void> {
    if (flushedLoaded) return;
    const rows = await sql<{ address: string }[]>`
      select distinct o.address from evm_outflows o
      join deposit_addresses d on d.chain = o.chain and d.address = o.address
      join invoices i on i.id = d.invoice_id
      where o.chain = ${chain} and i.monitoring_until > now()`;
    for (const r of rows) flushedAddresses.add(r.address);
    flushedLoaded = true;
  }

  /** Walks back from `height` to the highest block whose stored hash the node still has. */
  async function handleReorg(height: number): Promise<number> {
    const oldest = await settlement.oldestKeptHeight(sql, chain);
    for (let h = height; oldest !== null && h >= oldest; h--) {
      const stored = await settlement.blockHashAt(sql, chain, h);
      if (stored === null) break;
      const node = await rpc('eth_getBlockByNumber', () => pc.getBlock({ blockNumber: BigInt(h) }));
      if (node.hash!.toLowerCase() === stored.toLowerCase()) {
        const changed = await sql.begin(async (tx) => {
          const touched = await settlement.rollbackTo(tx, chain, h, () => false);
          for (const id of await settlement.awaitingConfirmations(tx, chain)) touched.add(id);
          return settlement.recompute(tx, touched);
        });
        await settlement.publishChanges(changed);
        log.warn({ common_ancestor: h }, 'reorg: rolled back to the common ancestor, re-scanning');
        return h;
      }
    }
    throw new KassaError('evm_reorg_too_deep',
      `${chain}: chain reorganisation deeper than the kept window (${cfg.reorg_window} blocks, oldest kept ${oldest ?? 'none'}); the watcher stops. Check the node; then stop the workers and rewind below the fork: kassa chains rewind --chain ${chain} --height <H> (docs/operations.md, "Recovering from reorg_too_deep").`,
      { retryable: false });
  }

  /** The first block of a chain without a cursor: covers every open invoice (bounded look-back). */
  async function firstStart(tip: number): Promise<number> {
    const start = await firstScanHeight({
      db: sql, chain, tip, lookback: cfg.first_scan_lookback_blocks ?? DEFAULT_FIRST_SCAN_LOOKBACK.evm,
      blockTime: async (h) => Number((await rpc('eth_getBlockByNumber', () => pc.getBlock({ blockNumber: BigInt(h) }))).timestamp),
    });
    if (start.reason === 'lookback') {
      log.warn({ start: start.height, tip, lookback: cfg.first_scan_lookback_blocks ?? DEFAULT_FIRST_SCAN_LOOKBACK.evm, open_addresses: start.open },
        'first scan: open invoices are older than first_scan_lookback_blocks; payments in earlier blocks are not scanned');
    } else log.info({ start: start.height, tip, reason: start.reason, open_addresses: start.open }, 'first scan: no cursor yet, starting here');
    return start.height;
  }

  async function pass(): Promise<PassResult> {
    const before = client.counts();
    if (!chainIdChecked) {
      const id = await rpc('eth_chainId', () => pc.getChainId());
      if (id !== cfg.chain_id) {
        throw new KassaError('evm_chain_id_mismatch', `${chain}: the node at ${cfg.rpc_url} is chain id ${id}, the config says ${cfg.chain_id}.`, { retryable: false });
      }
      chainIdChecked = true;
    }
    const tip = Number(await rpc('eth_blockNumber', () => pc.getBlockNumber({ cacheTime: 0 })));
    let cursor = await settlement.cursor(sql, chain);
    let blocks = 0;
    const limit = o.maxBlocksPerPass ?? Number.POSITIVE_INFINITY;

    if (cursor && cursor.height >= tip) {
      // Caught up (or the node is behind us): make sure our tip is still in the node's chain.
      const h = Math.min(cursor.height, tip);
      const node = await rpc('eth_getBlockByNumber', () => pc.getBlock({ blockNumber: BigInt(h) }));
      const stored = await settlement.blockHashAt(sql, chain, h);
      if (cursor.height > tip || (stored && stored.toLowerCase() !== node.hash!.toLowerCase())) {
        await handleReorg(cursor.height > tip ? tip : h - 1);
        cursor = await settlement.cursor(sql, chain);
      }
    }

    let next = cursor ? cursor.height + 1 : (o.startBlock ?? (await firstStart(tip)));
    if (next <= tip) {
      await loadFlushedAddresses();
      const watched = await loadWatched();
      while (next <= tip && blocks < limit) {
        const to = Math.min(tip, next + range - 1, next + (limit - blocks) - 1);
        const last = to === tip || blocks + (to - next + 1) >= limit;
        try {
          await processRange(next, to, cursor, watched, last);
        } catch (err) {
          if (!(err instanceof ReorgDetected)) throw err;
          await handleReorg(cursor!.height);
          cursor = await settlement.cursor(sql, chain);
          next = cursor ? cursor.height + 1 : next;
          continue;
        }
        blocks += to - next + 1;
        cursor = await settlement.cursor(sql, chain);
        next = to + 1;
      }
    }
    if (cfg.use_finalized_tag && cursor) {
      // One call per pass, whatever the number of invoices: the node's finalized block.
      const fin = await rpc('eth_getBlockByNumber', () => pc.getBlock({ blockTag: 'finalized' }));
      if (fin.number !== null) {
        const changed = await sql.begin((tx) => settlement.setFinalized(tx, chain, Number(fin.number)));
        await settlement.publishChanges(changed);
      }
    }
    const after = client.counts();
    const byMethod: Record<string, number> = {};
    for (const [m, n] of Object.entries(after.byMethod)) {
      const d = n - (before.byMethod[m] ?? 0);
      if (d > 0) byMethod[m] = d;
    }
    return { blocks, rpcCalls: after.calls - before.calls, httpRequests: after.http - before.http, byMethod, tip };
  }

  async function health(state: 'ok' | 'error', tip: number | null, error: string | null): Promise<void> {
    if (!o.redis) return;
    const cursor = await settlement.cursor(sql, chain).catch(() => null);
    await reportChainHealth(o.redis, o.queuePrefix, chain, {
      state, tip_height: tip, lag_blocks: tip !== null && cursor ? Math.max(0, tip - cursor.height) : null, error,
    }).catch((err: Error) => log.warn({ err: err.message }, 'could not report chain health'));
  }

  async function runOnce(): Promise<PassResult> {
    try {
      const r = await pass();
      await health('ok', r.tip, null);
      return r;
    } catch (err) {
      await health('error', null, err instanceof Error ? err.message : String(err));
      throw err;
    }
  }

  async function run(signal: AbortSignal): Promise<void> {
    const pollMs = cfg.poll_interval_ms;
    const minBackoff = o.backoffMinMs ?? 1_000;
    const maxBackoff = o.backoffMaxMs ?? 60_000;
    while (!signal.aborted) {
      const lock = await tryLock(sql, `watch:${chain}`).catch((err: Error) => {
        log.warn({ err: err.message }, 'could not try the watcher lock');
        return null;
      });
      if (!lock) {
        log.debug('another process watches this chain: standby');
        await sleep(Math.max(pollMs, 1_000), signal);
        continue;
      }
      log.info({ rpc_url: cfg.rpc_url }, 'evm watcher started');
      let backoff = 0;
      try {
        while (!signal.aborted) {
          if (!(await lock.held())) {
            log.error('lost the chain lock (its database connection closed): standing by');
            break;
          }
          try {
            const r = await runOnce();
            backoff = 0;
            const c = await settlement.cursor(sql, chain);
            if (r.blocks === 0 || !c || c.height >= r.tip) await sleep(pollMs, signal);
          } catch (err) {
            if (isKassaError(err) && !err.retryable) {
              log.error({ err: err.message, code: err.code }, 'evm watcher stopped: needs attention');
              return;
            }
            backoff = backoff === 0 ? minBackoff : Math.min(maxBackoff, backoff * 2);
            log.warn({ err: err instanceof Error ? err.message : String(err), retry_in_ms: backoff }, 'evm watcher pass failed');
            await sleep(backoff, signal);
          }
        }
      } finally {
        await lock.release().catch(() => {});
      }
    }
    log.info('evm watcher stopped');
  }

  return { runOnce, run };
}
