/**
 * The seam of the chain-sync engine (docs/architecture.md §5): a third chain family, an in-memory
 * node written here, runs through the same engine and settlement entry point as Bitcoin and EVM,
 * against the real database. It checks the exactly-once invariants after reorgs (shallow, with a
 * re-mined or a dropped transaction, and too deep), and after crashes inside and right after a
 * block's commit: every observation in the best chain up to the cursor is recorded once, and the
 * cursor and the payments move in the same transaction.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestContext, type TestContext } from '../support/db.ts';
import { insertInvoice } from '../support/fixtures.ts';
import { parseChainsFile, type ChainConfig } from '../../src/config.ts';
import { createAssetRegistry } from '../../src/money/assets.ts';
import { createSettlementService, type BlockRef, type Observation, type SettlementService } from '../../src/settlement/service.ts';
import type { ChainAdapter, MempoolListing, RangeScan } from '../../src/chains/sync/adapter.ts';
import { createChainSync, type ChainSync } from '../../src/chains/sync/engine.ts';
import { readChainHealth } from '../../src/chains/health.ts';

const CHAIN = 'memchain';

interface MemTx {
  txid: string;
  outputs: { address: string; amount: bigint }[];
}
interface MemBlock extends BlockRef {
  txs: MemTx[];
}

/** A node of the memory family: a best chain of blocks and a mempool. */
let nodes = 0;
class MemoryNode {
  /** Hashes and txids are unique across the nodes of this file (they share one database). */
  private readonly id = ++nodes;
  blocks: MemBlock[] = [{ height: 0, hash: `n${this.id}-genesis`, prevHash: 'none', time: new Date(), txs: [] }];
  mempool = new Map<string, MemTx>();
  private branch = 0;
  private txCount = 0;

  get tip(): MemBlock {
    return this.blocks[this.blocks.length - 1]!;
  }
  send(outputs: MemTx['outputs']): MemTx {
    const tx = { txid: `n${this.id}-tx${++this.txCount}`, outputs };
    this.mempool.set(tx.txid, tx);
    return tx;
  }
  /** Mines `n` blocks; the first takes the whole mempool. */
  mine(n = 1): void {
    for (let i = 0; i < n; i++) {
      const height = this.tip.height + 1;
      const txs = i === 0 ? [...this.mempool.values()] : [];
      if (i === 0) this.mempool.clear();
      this.blocks.push({ height, hash: `n${this.id}-h${height}-b${this.branch}`, prevHash: this.tip.hash, time: new Date(), txs });
    }
  }
  /** Drops the last `depth` blocks (their transactions back to the mempool unless in `drop`) and mines `n` on the new branch. */
  reorg(depth: number, n: number, drop: string[] = []): void {
    this.branch++;
    for (const b of this.blocks.splice(this.blocks.length - depth)) {
      for (const t of b.txs) if (!drop.includes(t.txid)) this.mempool.set(t.txid, t);
    }
    this.mine(n);
  }
}

interface Faults {
  /** Throws inside the block commit's transaction when the range holds this height. */
  crashInCommitAt?: number;
  /** Throws right after the commit of the range holding this height. */
  crashAfterCommitAt?: number;
}

/** The memory family's adapter: the whole contract a family fulfils, nothing else. */
function memoryAdapter(node: MemoryNode, opts: { reorgWindow: number; rangeSize: number; faults?: Faults }): ChainAdapter & { scannedTxids: string[] } {
  const watched = new Set<string>();
  const seen = new Set<string>();
  const scannedTxids: string[] = [];
  const observe = (tx: MemTx, block: Observation['block']): Observation[] =>
    tx.outputs.flatMap((o, i) => (watched.has(o.address) ? [{ txid: tx.txid, outputIndex: i, address: o.address, token: null, amount: o.amount, block }] : []));
  const ref = (b: MemBlock): BlockRef => ({ height: b.height, hash: b.hash, prevHash: b.prevHash, time: b.time });
  const holds = (from: number, to: number, h: number | undefined) => h !== undefined && h >= from && h <= to;
  return {
    family: 'Memory', chain: CHAIN, nodeName: 'memory node', reorgWindow: opts.reorgWindow, pollIntervalMs: 10,
    firstScanLookback: 100, rangeSize: opts.rangeSize, scannedTxids,
    async head() {
      return { height: node.tip.height, hash: node.tip.hash };
    },
    async hashAt(h) {
      return node.blocks[h]?.hash ?? null;
    },
    async blockAt(h) {
      const b = node.blocks[h];
      return b ? ref(b) : null;
    },
    watch(delta) {
      if (delta.full) watched.clear();
      for (const r of delta.added) watched.add(r.address);
      for (const r of delta.removed) watched.delete(r.address);
    },
    async scanRange(from, to): Promise<RangeScan> {
      const blocks = node.blocks.slice(from, to + 1);
      const scan: RangeScan = {
        blocks: blocks.map(ref),
        observations: blocks.flatMap((b) => b.txs.flatMap((t) => observe(t, { hash: b.hash, height: b.height, time: b.time }))),
      };
      if (holds(from, to, opts.faults?.crashInCommitAt)) {
        scan.within = async () => {
          throw new Error('simulated crash inside the block commit');
        };
      }
      if (holds(from, to, opts.faults?.crashAfterCommitAt)) {
        scan.committed = () => {
          throw new Error('simulated crash right after the block commit');
        };
      }
      return scan;
    },
    mempool: {
      async list() {
        const ids = new Set(node.mempool.keys());
        return { has: (t: string) => ids.has(t), size: ids.size } satisfies MempoolListing;
      },
      async scan(listing) {
        const observations: Observation[] = [];
        let scanned = 0;
        for (const [txid, tx] of node.mempool) {
          if (!listing.has(txid) || seen.has(txid)) continue;
          seen.add(txid);
          scannedTxids.push(txid);
          scanned++;
          observations.push(...observe(tx, null));
        }
        for (const t of seen) if (!listing.has(t)) seen.delete(t);
        return { observations, scanned };
      },
    },
    async stillPending() {
      const inMempool = new Set(node.mempool.keys());
      return (txid) => inMempool.has(txid);
    },
    async reverify(p) {
      return node.blocks[p.blockHeight]?.hash === p.blockHash ? null : `block ${p.blockHash} left the best chain`;
    },
  };
}

let ctx: TestContext;
let settlement: SettlementService;
let merchantId: string;

beforeAll(async () => {
  ctx = await createTestContext();
  // The memory chain is priced like an EVM chain's native coin ("MEM-memchain"): a valid EVM chain
  // entry, so the asset registry lists its method; the engine and the adapter never read it.
  const mem = parseChainsFile({
    chains: { [CHAIN]: { type: 'evm', network: 'local', chain_id: 1337, rpc_url: 'http://127.0.0.1:1', native_symbol: 'MEM', confirmations: { high: 0, medium: 1, low_medium: 2, low: 3 } } },
  }).chains[CHAIN]!;
  const chains: Record<string, ChainConfig> = { ...ctx.config.chains, [CHAIN]: mem };
  settlement = createSettlementService({
    chains, assets: createAssetRegistry(chains), logger: ctx.deps.logger, redis: ctx.deps.redis,
    queuePrefix: ctx.config.queuePrefix, publicUrl: 'http://kassa.test',
  });
  merchantId = (await ctx.deps.merchants.create(ctx.deps.sql, { name: 'Memory shop' })).id;
});
afterAll(async () => ctx?.close());

let addressCount = 0;
async function invoice(): Promise<{ id: string; address: string }> {
  const address = `mem-address-${++addressCount}`;
  const id = await insertInvoice(ctx.deps.sql, {
    merchantId, amount: 3000n,
    methods: [{ method: `MEM-${CHAIN}`, chain: CHAIN, asset: 'MEM', decimals: 18, address, rate: '3000.00', amountDue: 10n ** 16n, confirmationsRequired: 2 }],
  });
  return { id, address };
}

function engine(node: MemoryNode, o: { reorgWindow?: number; rangeSize?: number; faults?: Faults; startHeight?: number } = {}): ChainSync & { adapter: ReturnType<typeof memoryAdapter> } {
  const adapter = memoryAdapter(node, { reorgWindow: o.reorgWindow ?? 50, rangeSize: o.rangeSize ?? 3, ...(o.faults ? { faults: o.faults } : {}) });
  const sync = createChainSync(adapter, {
    sql: ctx.deps.sql, settlement, redis: ctx.deps.redis, queuePrefix: ctx.config.queuePrefix, logger: ctx.deps.logger,
    startHeight: o.startHeight ?? 0, backoffMinMs: 5, backoffMaxMs: 20,
  });
  return Object.assign(sync, { adapter });
}

async function sync(e: ChainSync): Promise<void> {
  for (let i = 0; i < 50; i++) if (!(await e.runOnce()).more) return;
  throw new Error('never caught up');
}

async function resetChain(): Promise<void> {
  await ctx.deps.sql`delete from chain_state where chain = ${CHAIN}`;
  await ctx.deps.sql`delete from chain_blocks where chain = ${CHAIN}`;
  await ctx.deps.sql`delete from chain_tip_observations where chain = ${CHAIN}`;
}

/**
 * The exactly-once invariants, checked against the node once the engine is at its tip:
 * - every output to a watched address in a best-chain block up to the cursor is ONE payment,
 *   `confirmed` at that block; every mempool output to one is ONE `pending` payment;
 * - no other payment of this chain is live (orphaned ones are `reorged`, replaced ones `replaced`);
 * - each payment had exactly one `invoice.payment_detected` event;
 * - the cursor and every kept block hash are the node's.
 */
async function expectExactlyOnce(node: MemoryNode, addresses: Set<string>): Promise<void> {
  const cursor = (await settlement.cursor(ctx.deps.sql, CHAIN))!;
  expect(cursor).toEqual({ height: node.tip.height, hash: node.tip.hash });
  const kept = await ctx.deps.sql<{ height: bigint; hash: string }[]>`select height, hash from chain_blocks where chain = ${CHAIN}`;
  for (const k of kept) expect(k.hash).toBe(node.blocks[Number(k.height)]!.hash);

  const expected = new Map<string, { status: string; block_hash: string | null; amount: bigint }>();
  for (const b of node.blocks.slice(0, cursor.height + 1)) {
    for (const t of b.txs) t.outputs.forEach((o, i) => addresses.has(o.address) && expected.set(`${t.txid}:${i}`, { status: 'confirmed', block_hash: b.hash, amount: o.amount }));
  }
  for (const t of node.mempool.values()) t.outputs.forEach((o, i) => addresses.has(o.address) && expected.set(`${t.txid}:${i}`, { status: 'pending', block_hash: null, amount: o.amount }));

  const rows = await ctx.deps.sql<{ id: string; txid: string; output_index: number; status: string; block_hash: string | null; amount: bigint; detected: bigint }[]>`
    select p.id, p.txid, p.output_index, p.status, p.block_hash, p.amount,
      (select count(*) from events e where e.invoice_id = p.invoice_id and e.type = 'invoice.payment_detected' and e.payload->'payment'->>'id' = p.id)::int8 as detected
    from payments p where p.chain = ${CHAIN} and p.address = any(${[...addresses]})`;
  const live = rows.filter((r) => r.status === 'pending' || r.status === 'confirmed');
  expect(new Map(live.map((r) => [`${r.txid}:${r.output_index}`, { status: r.status, block_hash: r.block_hash, amount: r.amount }]))).toEqual(expected);
  expect(live).toHaveLength(expected.size);
  for (const r of rows) expect(r.detected).toBe(1n);
}

describe('an in-memory chain family through the chain-sync engine', () => {
  it('records payments once through mempool, blocks and a shallow reorg that re-mines the transaction', async () => {
    await resetChain();
    const node = new MemoryNode();
    node.mine(2);
    const e = engine(node);
    const a = await invoice();
    const b = await invoice();
    const addrs = new Set([a.address, b.address]);
    await sync(e);

    const ta = node.send([{ address: a.address, amount: 10n ** 16n }, { address: 'someone-else', amount: 5n }]);
    await sync(e);
    expect(e.adapter.scannedTxids).toEqual([ta.txid]);
    await expectExactlyOnce(node, addrs);

    node.mine(1);
    node.send([{ address: b.address, amount: 4n * 10n ** 15n }]);
    node.mine(4);
    await sync(e);
    await expectExactlyOnce(node, addrs);
    expect((await ctx.deps.sql<{ status: string }[]>`select status from invoices where id = ${a.id}`)[0]!.status).toBe('settled');

    // Reorg of depth 5: both transactions go back to the mempool and are re-mined in the new branch.
    node.reorg(5, 6);
    const r = await e.runOnce();
    expect(r.reorgs).toBe(1);
    await sync(e);
    await expectExactlyOnce(node, addrs);
    const [reorged] = await ctx.deps.sql<{ n: bigint }[]>`select count(*)::int8 as n from events where type = 'invoice.payment_reorged' and invoice_id = ${a.id}`;
    expect(reorged!.n).toBe(1n);
    expect((await ctx.deps.sql<{ status: string }[]>`select status from invoices where id = ${a.id}`)[0]!.status).toBe('settled');
  });

  it('a payment whose transaction does not come back after a reorg is un-counted (reorged), once', async () => {
    await resetChain();
    const node = new MemoryNode();
    const e = engine(node);
    const inv = await invoice();
    await sync(e);
    const t = node.send([{ address: inv.address, amount: 10n ** 16n }]);
    node.mine(3);
    await sync(e);
    expect((await ctx.deps.sql<{ status: string }[]>`select status from invoices where id = ${inv.id}`)[0]!.status).toBe('settled');

    node.reorg(3, 4, [t.txid]); // double-spent on the new branch: gone from the mempool too
    await sync(e);
    await expectExactlyOnce(node, new Set([inv.address]));
    const [p] = await ctx.deps.sql<{ status: string }[]>`select status from payments where txid = ${t.txid}`;
    expect(p!.status).toBe('reorged');
    expect((await ctx.deps.sql<{ status: string }[]>`select status from invoices where id = ${inv.id}`)[0]!.status).toBe('invalid');
  });

  it('a crash inside a block commit leaves neither its payments nor the cursor; the restart records them once', async () => {
    await resetChain();
    const node = new MemoryNode();
    const inv = await invoice();
    const other = await invoice();
    const addrs = new Set([inv.address, other.address]);
    await sync(engine(node));
    for (let i = 0; i < 4; i++) {
      node.send([{ address: inv.address, amount: 10n ** 15n * BigInt(i + 1) }]);
      node.send([{ address: other.address, amount: 7n }]);
      node.mine(1);
    }
    const before = (await settlement.cursor(ctx.deps.sql, CHAIN))!.height;
    // Ranges of 2: the commit of the range holding height before+3 throws after recording its payments.
    const crashing = engine(node, { rangeSize: 2, faults: { crashInCommitAt: before + 3 } });
    await expect(crashing.runOnce()).rejects.toThrow(/simulated crash inside the block commit/);
    const mid = (await settlement.cursor(ctx.deps.sql, CHAIN))!;
    expect(mid.height).toBe(before + 2); // the first range committed, the second rolled back whole
    const [n] = await ctx.deps.sql<{ n: bigint }[]>`select count(*)::int8 as n from payments where chain = ${CHAIN} and block_height > ${mid.height}`;
    expect(n!.n).toBe(0n);

    // The restarted process (a new adapter and engine) continues from the cursor.
    await sync(engine(node, { rangeSize: 2 }));
    await expectExactlyOnce(node, addrs);
  });

  it('a crash right after a block commit: the restart does not record the block again', async () => {
    await resetChain();
    const node = new MemoryNode();
    const inv = await invoice();
    await sync(engine(node));
    node.send([{ address: inv.address, amount: 10n ** 16n }]);
    node.mine(1);
    const height = node.tip.height;
    await expect(engine(node, { faults: { crashAfterCommitAt: height } }).runOnce()).rejects.toThrow(/right after the block commit/);
    expect((await settlement.cursor(ctx.deps.sql, CHAIN))!.height).toBe(height);
    const restarted = engine(node);
    await sync(restarted);
    node.mine(2);
    await sync(restarted);
    await expectExactlyOnce(node, new Set([inv.address]));
  });

  it('a reorg deeper than the kept window: runOnce and run reject with reorg_too_deep, health shows it, nothing changes', async () => {
    await resetChain();
    const node = new MemoryNode();
    const inv = await invoice();
    const e = engine(node, { reorgWindow: 3 });
    await sync(e);
    node.send([{ address: inv.address, amount: 10n ** 16n }]);
    node.mine(6);
    await sync(e);
    const cursor = await settlement.cursor(ctx.deps.sql, CHAIN);
    const payments = await ctx.deps.sql`select id, status, block_hash from payments where chain = ${CHAIN} order by id`;

    node.reorg(5, 6);
    await expect(e.runOnce()).rejects.toMatchObject({ code: 'reorg_too_deep', retryable: false });
    await expect(engine(node, { reorgWindow: 3 }).run(new AbortController().signal)).rejects.toMatchObject({ code: 'reorg_too_deep' });
    const h = await readChainHealth(ctx.deps.redis, ctx.config.queuePrefix, CHAIN);
    expect(h?.state).toBe('error');
    expect(h?.error).toMatch(/reorganised deeper than the kept window/);
    expect(await settlement.cursor(ctx.deps.sql, CHAIN)).toEqual(cursor);
    expect(await ctx.deps.sql`select id, status, block_hash from payments where chain = ${CHAIN} order by id`).toEqual(payments);
  });

  it('a node error is retried with backoff by run(), which keeps going and catches up', async () => {
    await resetChain();
    const node = new MemoryNode();
    const inv = await invoice();
    const e = engine(node);
    await sync(e);
    let failures = 3;
    const realHead = e.adapter.head;
    e.adapter.head = async () => {
      if (failures-- > 0) throw new Error('node unreachable');
      return realHead();
    };
    node.send([{ address: inv.address, amount: 10n ** 16n }]);
    node.mine(2);
    const ac = new AbortController();
    const running = e.run(ac.signal);
    for (let i = 0; i < 200; i++) {
      const c = await settlement.cursor(ctx.deps.sql, CHAIN);
      if (c?.height === node.tip.height) break;
      await new Promise((r) => setTimeout(r, 20));
    }
    ac.abort();
    await running;
    expect(failures).toBeLessThan(0);
    await expectExactlyOnce(node, new Set([inv.address]));
  });
});
