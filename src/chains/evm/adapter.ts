/**
 * The EVM family's `ChainAdapter` (src/chains/sync/adapter.ts; docs/architecture.md §5, docs/evm.md).
 *
 * Per range (one block at a time when following the tip, up to `catchupRange` blocks during
 * catch-up), in one JSON-RPC batch: eth_getBlockByNumber(full transactions) per block, ONE
 * eth_getLogs for the Transfer topic of all configured tokens and one for the forwarders' Flushed
 * topic (each split in halves when the node refuses the range; flushes by anyone are stored in
 * evm_outflows); then eth_getTransactionReceipt only for transactions whose `to` is an open
 * deposit address; and, on the last range of the pass, the balance check:
 * ForwarderFactory.balancesOf(addresses) via eth_call in chunks of `balanceChunk` (2,000)
 * addresses, all chunks in one HTTP batch, over at most `balance_check_per_block` (10,000) open
 * addresses per block, round-robin over the open ones. None of these grows with the number of
 * open invoices beyond that bound; addresses are matched in memory.
 *
 * The flushes and the balance-check credits are written inside the range's block commit
 * (`RangeScan.within`). Payments of dropped blocks become `reorged` (no mempool is read).
 */
import { BaseError, parseEventLogs, erc20Abi, toEventSelector, type Address, type Block, type Hex } from 'viem';
import type { EvmChainConfig } from '../../config.ts';
import type { Sql, TxSql } from '../../db/client.ts';
import type { Logger } from '../../logger.ts';
import type { BlockRef, Observation } from '../../settlement/service.ts';
import { KassaError, UpstreamError, isKassaError } from '../../errors.ts';
import type { ChainAdapter, RangeScan } from '../sync/adapter.ts';
import { DEFAULT_FIRST_SCAN_LOOKBACK } from '../start-height.ts';
import type { EvmClient } from './client.ts';
import { createBalanceRotation } from './balance-rotation.ts';
import { decodeBalances, encodeBalancesOf } from './balances-call.ts';

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

export interface EvmAdapterOptions {
  chain: string;
  config: EvmChainConfig;
  client: EvmClient;
  sql: Sql;
  logger: Logger;
  /** Blocks per range (one DB transaction) during catch-up; capped by max_log_range. Default 100. */
  catchupRange?: number;
  /** Addresses per balancesOf eth_call. Default 2,000. */
  balanceChunk?: number;
  /** Open addresses read by the balance check per block (round-robin). Default: the chain's `balance_check_per_block`. */
  balanceCheckPerBlock?: number;
}

interface RpcTx {
  hash: Hex;
  transactionIndex: number | null;
  to: Address | null;
  value: bigint;
}
type FullBlock = Block<bigint, true>;

function rpcMessage(err: unknown): string {
  if (err instanceof BaseError) return (err.shortMessage || err.message).split('\n')[0]!;
  if (err instanceof Error) return err.message.split('\n')[0]!;
  return String(err);
}

const TOO_MANY = /too many|limit exceeded|more than \d+ results|query returned more than|response size|range is too large|block range|exceed/i;

export function createEvmAdapter(o: EvmAdapterOptions): ChainAdapter {
  const { chain, config: cfg, client, sql } = o;
  const pc = client.public;
  const log = o.logger.child({ chain });
  const tokens = cfg.tokens.map((t) => t.address.toLowerCase() as Address);
  const tokenSet = new Set(tokens);
  const range = Math.max(1, Math.min(o.catchupRange ?? 100, cfg.max_log_range));
  const balanceChunk = o.balanceChunk ?? 2_000;
  const rotation = createBalanceRotation(o.balanceCheckPerBlock ?? o.config.balance_check_per_block ?? 10_000);
  /** Open deposit addresses (lowercase) → invoice id. */
  const watched = new Map<string, string>();
  let chainIdChecked = false;
  // The origin only: RPC URLs often carry an API key in their path or credentials.
  const nodeName = (() => {
    try {
      return `${chain} node (${new URL(cfg.rpc_url).origin})`;
    } catch {
      return `${chain} node`;
    }
  })();

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
    const to = cfg.factory.toLowerCase();
    const at = `0x${block.toString(16)}`;
    // Encoded and decoded by hand (./balances-call.ts): the generic ABI coder cost ~20 ms per block.
    await rpc('balancesOf', () =>
      Promise.all(chunks.map(async (c) => {
        const data = (await pc.request({ method: 'eth_call', params: [{ to, data: encodeBalancesOf(c) }, at] } as never)) as string;
        const vals = decodeBalances(data, c.length);
        c.forEach((a, j) => out.set(a, vals[j]!));
      })));
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

  const getBlock = (h: number) => rpc('eth_getBlockByNumber', async () => {
    try {
      return await pc.getBlock({ blockNumber: BigInt(h) });
    } catch (err) {
      if ((err as Error).name === 'BlockNotFoundError') return null;
      throw err;
    }
  });

  async function scanRange(from: number, to: number, { last }: { last: boolean }): Promise<RangeScan> {
    const heights = Array.from({ length: to - from + 1 }, (_, i) => from + i);
    const [blocks, logs, outflows] = await Promise.all([
      rpc('eth_getBlockByNumber', () => Promise.all(heights.map((h) => pc.getBlock({ blockNumber: BigInt(h), includeTransactions: true }) as Promise<FullBlock>))),
      transferLogs(from, to),
      outflowLogs(from, to, watched),
    ]);
    const refs: BlockRef[] = blocks.map((b) => ({
      height: Number(b.number), hash: b.hash!.toLowerCase(), prevHash: b.parentHash.toLowerCase(), time: new Date(Number(b.timestamp) * 1000),
    }));
    const byHeight = new Map(refs.map((r) => [r.height, r]));
    const sameBranch = (height: number, hash: string) => {
      const ref = byHeight.get(height);
      if (!ref || ref.hash !== hash) throw new UpstreamError('evm_chain_changed', `${chain}: logs of block ${height} belong to another branch; retrying`);
      return ref;
    };
    for (const f of outflows) sameBranch(f.blockNumber, f.blockHash);
    // Observations in chain order (block, transaction, log) so payments get a natural sequence.
    const ordered: { key: [number, number, number]; o: Observation }[] = [];

    // ERC-20 transfers (matched in memory; the node filters by token + topic only).
    for (const l of logs) {
      const ref = sameBranch(l.blockNumber, l.blockHash);
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

    const observations = ordered.sort((a, b) => a.key[0] - b.key[0] || a.key[1] - b.key[1] || a.key[2] - b.key[2]).map((x) => x.o);
    const lastRef = refs[refs.length - 1]!;
    // At most `balance_check_per_block` addresses per block, round-robin over the open ones.
    const onChain = last && watched.size > 0 ? await balances(rotation.next(watched), lastRef.height) : new Map<string, bigint>();
    // Before the commit, not after: the balance check of this very range must look at an address
    // whose first flush is in it (coin that arrived unseen and was flushed leaves a zero balance).
    // Harmless if the commit fails: the credit is computed from the rows the transaction sees.
    for (const f of outflows) flushedAddresses.add(f.address);

    return {
      blocks: refs,
      observations,
      within: async (tx) => {
        if (outflows.length > 0) await recordOutflows(tx, outflows);
        if (onChain.size === 0) return [];
        const credits = await balanceCredits(tx, onChain, lastRef);
        if (credits.length > 0) {
          log.info({ credits: credits.map((c) => ({ address: c.address, amount: c.amount.toString() })), block: lastRef.height }, 'balance check found native coin not seen in transactions');
        }
        return credits;
      },
      committed: () => {
        if (outflows.length > 0) log.info({ from, to, flushes: outflows.length }, 'flushes out of deposit addresses recorded');
      },
    };
  }

  return {
    family: 'EVM',
    chain,
    nodeName,
    reorgWindow: cfg.reorg_window,
    pollIntervalMs: cfg.poll_interval_ms,
    firstScanLookback: cfg.first_scan_lookback_blocks ?? DEFAULT_FIRST_SCAN_LOOKBACK.evm,
    rangeSize: range,

    async prepare() {
      if (!chainIdChecked) {
        const id = await rpc('eth_chainId', () => pc.getChainId());
        if (id !== cfg.chain_id) {
          throw new KassaError('evm_chain_id_mismatch', `${chain}: the node at ${cfg.rpc_url} is chain id ${id}, the config says ${cfg.chain_id}.`, { retryable: false });
        }
        chainIdChecked = true;
      }
      await loadFlushedAddresses();
    },
    async head() {
      return { height: Number(await rpc('eth_blockNumber', () => pc.getBlockNumber({ cacheTime: 0 }))), hash: null };
    },
    async hashAt(h) {
      return (await getBlock(h))?.hash?.toLowerCase() ?? null;
    },
    async blockAt(h) {
      const b = await getBlock(h);
      if (!b || !b.hash) return null;
      return { height: h, hash: b.hash.toLowerCase(), prevHash: b.parentHash.toLowerCase(), time: new Date(Number(b.timestamp) * 1000) };
    },
    watch(delta) {
      if (delta.full) watched.clear();
      for (const r of delta.added) watched.set(r.address.toLowerCase(), r.invoiceId);
      for (const r of delta.removed) watched.delete(r.address.toLowerCase());
    },
    scanRange,
    ...(cfg.use_finalized_tag
      ? {
          // One call per pass, whatever the number of invoices: the node's finalized block.
          async finalizedHeight() {
            const fin = await rpc('eth_getBlockByNumber', () => pc.getBlock({ blockTag: 'finalized' }));
            return fin.number === null ? null : Number(fin.number);
          },
        }
      : {}),
    async stillPending() {
      return () => false; // no mempool: a rescan that finds the transfer on the new branch confirms it again
    },
    /** The receipt must be successful in the same block; the transfer (native or Transfer log) must match. */
    async reverify(p) {
      const hash = p.txid as Hex;
      const receipt = await pc.getTransactionReceipt({ hash }).catch(() => null);
      if (!receipt || receipt.blockHash.toLowerCase() !== p.blockHash.toLowerCase()) return `transaction ${p.txid} is no longer in block ${p.blockHash} of the node's best chain`;
      if (receipt.status !== 'success') return `transaction ${p.txid} reverted`;
      if (p.outputIndex === -1) {
        const tx = await pc.getTransaction({ hash });
        return tx.to?.toLowerCase() !== p.address.toLowerCase() || tx.value !== p.amount ? `transaction ${p.txid} does not send ${p.amount} wei to ${p.address}` : null;
      }
      const l = parseEventLogs({ abi: erc20Abi, logs: receipt.logs, eventName: 'Transfer' }).find((x) => x.logIndex === p.outputIndex);
      if (!l || l.args.to.toLowerCase() !== p.address.toLowerCase() || l.args.value !== p.amount) {
        return `log ${p.outputIndex} of ${p.txid} is not a Transfer of ${p.amount} to ${p.address}`;
      }
      return null;
    },
    isFatal: (err) => isKassaError(err) && err.code === 'evm_chain_id_mismatch',
  };
}
