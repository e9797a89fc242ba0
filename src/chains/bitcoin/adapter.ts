/**
 * The Bitcoin family's `ChainAdapter` (src/chains/sync/adapter.ts; docs/architecture.md §5).
 *
 * Node calls (standard Bitcoin Core RPC through `BitcoinNodeClient`, or Esplora; nothing
 * devnet-specific): getbestblockhash + getblockheader (tip), getblockhash (reorg walk-back),
 * getblock <hash> 0 (raw blocks, parsed locally by `scanBlock`: one block per range),
 * getrawmempool (the listing) and getrawtransaction <txid> false only for txids not in the
 * previous listing (batched on the RPC client).
 *
 * Mempool at mainnet size: the adapter remembers every txid of the listings it read (ours or not)
 * in a compact hash table (./mempool-txids.ts), so a pass fetches and scans only the transactions
 * that arrived since — work proportional to what changed, not to the mempool (a node often holds
 * 50,000–300,000 transactions, ~10 new per second). At most `maxMempoolTxsPerPass` are fetched per
 * pass, arrivals first: a large mempool found at start drains over the next passes without
 * delaying new payments. What stays proportional to the mempool is reading the listing: one
 * getrawmempool call, read from the reply's bytes (no string per txid) beside the previous reply:
 * an entry byte-equal to the previous listing's entry at the same point of the walk costs a 64-byte
 * comparison; only the others (arrivals, moved entries) are decoded and looked up in the table,
 * which also answers whether a txid is listed (no set of the listing).
 * Core offers no cheaper RPC: `getrawmempool false true` adds a sequence number to the same full
 * listing; only ZMQ `sequence` notifications would list what changed.
 *
 * Double-spends: for pending payments the adapter keeps the outpoints their transactions spend,
 * indexed by outpoint; a block that spends one of them in another transaction reports the payment
 * double-spent (one pass over the block's inputs, whatever the size of the mempool).
 * Coinbase outputs to a deposit address are not payments (unspendable for 100 blocks).
 */
import * as bitcoin from 'bitcoinjs-lib';
import type { BitcoinChainConfig } from '../../config.ts';
import type { Logger } from '../../logger.ts';
import type { BlockRef, Observation } from '../../settlement/service.ts';
import type { PaymentToVerify } from '../../settlement/reverify.ts';
import type { ChainAdapter, MempoolListing, RangeScan } from '../sync/adapter.ts';
import type { WatchedAddressRow } from '../watched-set.ts';
import { DEFAULT_FIRST_SCAN_LOOKBACK } from '../start-height.ts';
import type { BitcoinNodeClient } from './types.ts';
import type { BitcoinRpcClient } from './rpc.ts';
import { UpstreamError } from '../../errors.ts';
import { hexToBytes, isBitcoinRpcError } from './rpc.ts';
import { MempoolTxids, txidListFromStrings, type TxidList } from './mempool-txids.ts';
import { ReplyBuffers } from './reply-buffers.ts';
import { scanBlock, scanTransaction, WatchedScripts, type OutputMatch } from './scanner.ts';
import { bitcoinNetwork } from './networks.ts';

export interface BitcoinAdapterOptions {
  chain: string;
  config: BitcoinChainConfig;
  client: BitcoinNodeClient;
  logger: Logger;
  /** Mempool transactions fetched per pass: arrivals first, the rest of a large mempool found at start in later passes. Default 5,000. */
  maxMempoolTxsPerPass?: number;
}

const HEX: string[] = Array.from({ length: 256 }, (_, i) => i.toString(16).padStart(2, '0'));
/** Bytes 4..36 of a raw block's header, display order (reversed). */
function prevHashOf(raw: Uint8Array): string {
  let s = '';
  for (let i = 35; i >= 4; i--) s += HEX[raw[i]!];
  return s;
}

const hasBatch = (c: BitcoinNodeClient): c is BitcoinRpcClient => c.kind === 'rpc' && typeof (c as Partial<BitcoinRpcClient>).batch === 'function';

/**
 * Bitcoin Core's (or Esplora's) mempool listing, as read into the adapter's `MempoolTxids` (its
 * number there): membership is answered by the table; `arrivals` are the txids it added.
 */
class TxidListing implements MempoolListing {
  /** `mempool.scan` took its arrivals. */
  scanned = false;
  constructor(
    private readonly known: MempoolTxids,
    readonly number: number,
    readonly size: number,
    readonly arrivals: string[],
  ) {}
  has(txid: string): boolean {
    // The table keeps one listing number per txid: only the latest listing can be asked.
    if (this.known.listing !== this.number) throw new Error('a mempool listing was used after a newer one was read');
    return this.known.inListing(txid, this.number);
  }
}

export function createBitcoinAdapter(opts: BitcoinAdapterOptions): ChainAdapter & {
  /** Txids of the mempool remembered as scanned, and listed but still to scan (tests, bench). */
  readonly mempoolState: { scanned: number; backlog: number };
} {
  const { chain, config, client } = opts;
  const log = opts.logger.child({ chain, node: client.name });
  const network = bitcoinNetwork(config.network);
  const maxMempool = opts.maxMempoolTxsPerPass ?? 5_000;
  /** Every txid of the listings read, until it leaves the mempool: scanned, or still to scan. */
  const known = new MempoolTxids();
  /** The listings' bytes, reused: `known` reads each listing against the previous one, kept in the other buffer. */
  const replies = new ReplyBuffers();
  /** Listed txids still to scan beyond this pass's arrivals (the mempool found at start), in order from `queueHead`. */
  let queue: string[] = [];
  let queueHead = 0;
  let lastListing: TxidListing | null = null;
  /** Pending payments seen in the mempool: txid → the outpoints its inputs spend. */
  const paying = new Map<string, string[]>();
  /** Outpoint → the pending payments spending it: a block spending one in another transaction double-spends them. */
  const spenders = new Map<string, string[]>();
  let scripts = new WatchedScripts(0);

  function scriptOf(r: WatchedAddressRow): Uint8Array | null {
    if (r.script) return r.script;
    try {
      return new Uint8Array(bitcoin.address.toOutputScript(r.address, network));
    } catch {
      log.warn({ address: r.address, invoice_id: r.invoiceId }, 'deposit address is not valid on this network; not watched');
      return null;
    }
  }

  function observations(matches: OutputMatch[], block: Observation['block']): Observation[] {
    const out: Observation[] = [];
    for (const m of matches) {
      const address = scripts.addressOf(m.script);
      if (!address) continue;
      if (m.coinbase) {
        log.warn({ txid: m.txid, vout: m.vout, address }, 'coinbase output to a deposit address ignored');
        continue;
      }
      out.push({ txid: m.txid, outputIndex: m.vout, address, token: null, amount: m.value, block });
    }
    return out;
  }

  async function hashAt(height: number): Promise<string | null> {
    try {
      return (await client.getBlockHash(height)).toLowerCase();
    } catch (err) {
      if (isBitcoinRpcError(err, -8) || isBitcoinRpcError(err, -5)) return null;
      throw err;
    }
  }

  /** Puts txids to scan ahead of the queue (arrivals of a listing that was never scanned, a failed fetch). */
  function queueFirst(txids: string[]): void {
    if (txids.length === 0) return;
    queue = [...txids, ...queue.slice(queueHead)];
    queueHead = 0;
  }

  function rememberPayment(txid: string, spent: string[]): void {
    forgetPayment(txid);
    paying.set(txid, spent);
    for (const o of spent) {
      const list = spenders.get(o);
      if (list) list.push(txid);
      else spenders.set(o, [txid]);
    }
  }

  function forgetPayment(txid: string): void {
    const spent = paying.get(txid);
    if (!spent) return;
    paying.delete(txid);
    for (const o of spent) {
      const rest = spenders.get(o)?.filter((t) => t !== txid) ?? [];
      if (rest.length) spenders.set(o, rest);
      else spenders.delete(o);
    }
  }

  const badListing = () => new UpstreamError('bitcoin_node_bad_response', `${client.name}: the mempool listing holds an entry that is not a 64-character hex txid`);

  /** The node's mempool listing as bytes (both clients read it so; a client without, as strings). */
  async function listTxids(): Promise<TxidList> {
    if (client.getRawMempoolTxids) return client.getRawMempoolTxids(replies);
    const list = txidListFromStrings(await client.getRawMempool());
    if (!list) throw badListing();
    return list;
  }

  /** Fetches raw transactions (one RPC batch per 100 on Core; a few at a time on Esplora). Missing ones are skipped. */
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
      await Promise.all(chunk.map(async (t) => {
        try {
          out.set(t, await client.getRawTransactionRaw(t));
        } catch (err) {
          if (!isBitcoinRpcError(err, -5)) throw err; // it left the mempool meanwhile
        }
      }));
    }
    return out;
  }

  const adapter: ChainAdapter & { readonly mempoolState: { scanned: number; backlog: number } } = {
    family: 'Bitcoin',
    chain,
    nodeName: client.name,
    reorgWindow: config.reorg_window,
    pollIntervalMs: config.poll_interval_ms,
    firstScanLookback: config.first_scan_lookback_blocks ?? DEFAULT_FIRST_SCAN_LOOKBACK.bitcoin,
    rangeSize: 1,
    get mempoolState() {
      return { scanned: known.scanned, backlog: known.size - known.scanned };
    },

    async head() {
      const hash = await client.getBestBlockHash();
      return { height: (await client.getBlockHeader(hash)).height, hash: hash.toLowerCase() };
    },
    hashAt,
    async blockAt(height) {
      const hash = await hashAt(height);
      if (hash === null) return null;
      const header = await client.getBlockHeader(hash);
      return { height, hash, prevHash: (header.previousBlockHash ?? '0'.repeat(64)).toLowerCase(), time: new Date(header.time * 1000) };
    },

    watch(delta, size) {
      if (delta.full) scripts = new WatchedScripts(size);
      for (const r of delta.added) {
        const script = scriptOf(r);
        if (script) scripts.add(script, r.address);
      }
      for (const r of delta.removed) {
        const script = scriptOf(r);
        if (script) scripts.remove(script);
      }
    },

    async scanRange(from, to): Promise<RangeScan> {
      const blocks: BlockRef[] = [];
      const obs: Observation[] = [];
      const doubleSpent = new Set<string>();
      for (let height = from; height <= to; height++) {
        const hash = await hashAt(height);
        if (hash === null) break; // the node's chain got shorter: the engine retries
        const raw = await client.getBlockRaw(hash);
        const scan = scanBlock(raw, scripts);
        const time = new Date(scan.header.time * 1000);
        blocks.push({ height, hash, prevHash: prevHashOf(raw), time });
        obs.push(...observations(scan.matches, { hash, height, time }));
        // Pending payments whose inputs this block spends in another transaction were double-spent.
        if (spenders.size) {
          const inBlock = new Set(scan.matches.map((m) => m.txid));
          for (const o of scan.spent.spentAmong(spenders.keys())) for (const t of spenders.get(o)!) if (!inBlock.has(t)) doubleSpent.add(t);
        }
      }
      return {
        blocks, observations: obs, doubleSpent: [...doubleSpent],
        committed: () => {
          for (const t of doubleSpent) {
            forgetPayment(t);
            known.delete(t);
          }
        },
      };
    },

    mempool: {
      async list() {
        const { bytes, starts, count } = await listTxids();
        // Arrivals of a listing never scanned (the pass stopped before the tip) are scanned first.
        if (lastListing && !lastListing.scanned) queueFirst(lastListing.arrivals);
        lastListing = null;
        const offsets = known.readListing({ bytes, starts, count });
        if (!offsets) throw badListing(); // nothing of it remembered as new: its arrivals are new again next time
        replies.keep(); // `known` reads the next listing against this one: its bytes stay
        const text = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
        const arrivals = offsets.map((at) => text.toString('latin1', at, at + 64).toLowerCase());
        const number = known.listing;
        lastListing = new TxidListing(known, number, known.listedCount, arrivals);
        return lastListing;
      },
      /**
       * `listing` was read BEFORE the watched set was refreshed (the engine's ordering rule):
       * every transaction in it was broadcast after its deposit address existed, so "not ours" is final.
       */
      async scan(l) {
        const listing = l as TxidListing;
        if (listing !== lastListing) throw new Error('a mempool listing was scanned after a newer one was read');
        listing.scanned = true;
        // Forget what left the mempool, only when something did (after the blocks of this pass:
        // their double-spend check still saw the payments that left with them).
        if (known.size > known.listedCount) {
          for (const t of [...paying.keys()]) if (!listing.has(t)) forgetPayment(t);
          known.forgetUnlisted();
        }
        // Arrivals (not in the previous listing) first, then the queue (listed earlier, not
        // scanned yet: the mempool found at start); fetches and scans only for what changed.
        const fresh = listing.arrivals.slice(0, maxMempool);
        for (let i = fresh.length; i < listing.arrivals.length; i++) queue.push(listing.arrivals[i]!);
        while (fresh.length < maxMempool && queueHead < queue.length) {
          const t = queue[queueHead++]!;
          if (listing.has(t) && !known.isScanned(t)) fresh.push(t);
        }
        if (queueHead === queue.length || (queueHead > 4096 && queueHead * 2 > queue.length)) {
          queue = queue.slice(queueHead);
          queueHead = 0;
        }
        const raws = await fetchTransactions(fresh);
        const obs: Observation[] = [];
        const missing: string[] = [];
        for (const txid of fresh) {
          const raw = raws.get(txid);
          if (!raw) {
            missing.push(txid); // left the mempool meanwhile, most likely: tried again while listed
            continue;
          }
          const scan = scanTransaction(raw, scripts);
          const mine = observations(scan.matches, null);
          obs.push(...mine);
          known.markScanned(txid);
          if (mine.length) rememberPayment(txid, scan.spent);
        }
        queueFirst(missing);
        return { observations: obs, scanned: fresh.length };
      },
    },

    async stillPending(reason) {
      // A rewind resets to pending: the rescan confirms them again or the mempool pass marks them replaced.
      if (reason === 'rewind') return () => true;
      const listing = new Set(await client.getRawMempool());
      return (txid) => listing.has(txid);
    },

    /** getblockhash(height) must still be the payment's block; the raw tx must pay the amount. */
    async reverify(p: PaymentToVerify) {
      const hash = await hashAt(p.blockHeight).catch(() => null);
      if (hash !== p.blockHash.toLowerCase()) return `block ${p.blockHash} at height ${p.blockHeight} is no longer in the node's best chain`;
      if (!p.script) return null;
      const one = new WatchedScripts(1);
      one.add(p.script);
      const scan = scanTransaction(await client.getRawTransactionRaw(p.txid), one);
      const out = scan.matches.find((m) => m.vout === p.outputIndex);
      if (!out) return `transaction ${p.txid} has no output ${p.outputIndex} to ${p.address}`;
      if (out.value !== p.amount) return `output ${p.outputIndex} pays ${out.value} sat, recorded ${p.amount}`;
      return null;
    },
  };
  return adapter;
}
