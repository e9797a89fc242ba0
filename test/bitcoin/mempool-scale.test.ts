/**
 * Mempool at mainnet size (docs/architecture.md §5): with 150,000 transactions in the node's
 * mempool and a few new ones per pass, the Bitcoin adapter fetches and scans only the new ones;
 * a large mempool found at start drains over later passes without delaying new arrivals.
 *
 * A unit test of the adapter's bookkeeping: the node here is a stub that lists txids and serves
 * raw transactions, counting what is fetched (the devnet-backed watcher tests cover the RPC path).
 */
import { describe, expect, it } from 'vitest';
import * as bitcoin from 'bitcoinjs-lib';
import { createBitcoinAdapter } from '../../src/chains/bitcoin/adapter.ts';
import type { BitcoinNodeClient } from '../../src/chains/bitcoin/types.ts';
import type { BitcoinChainConfig } from '../../src/config.ts';
import { createLogger } from '../../src/logger.ts';

const network = bitcoin.networks.regtest;
const ours = bitcoin.payments.p2wpkh({ hash: Buffer.alloc(20, 1), network });
const OURS = ours.address!;
const ourScript = Buffer.from(ours.output!);
const otherScript = Buffer.from(bitcoin.payments.p2wpkh({ hash: Buffer.alloc(20, 2), network }).output!);

function rawTx(n: number, script: Buffer): Uint8Array {
  const tx = new bitcoin.Transaction();
  const prev = Buffer.alloc(32);
  prev.writeUInt32LE(n, 0);
  tx.addInput(prev, 0);
  tx.addOutput(script, 1_000n + BigInt(n));
  return tx.toBuffer();
}

function stubNode(initial: number) {
  const mempool: string[] = Array.from({ length: initial }, (_, i) => i.toString(16).padStart(64, '0'));
  const paying = new Set<string>();
  let fetched: string[] = [];
  let next = initial;
  const client: BitcoinNodeClient = {
    name: 'stub node', kind: 'esplora',
    getBlockCount: async () => 0, getBestBlockHash: async () => '00'.repeat(32), getBlockHash: async () => '00'.repeat(32),
    getBlockHeader: async () => ({ hash: '00'.repeat(32), height: 0, time: 0, previousBlockHash: null, confirmations: 1 }) as never,
    getBlockRaw: async () => new Uint8Array(), sendRawTransaction: async () => '',
    getRawMempool: async () => [...mempool],
    getRawTransactionRaw: async (txid) => {
      fetched.push(txid);
      return rawTx(parseInt(txid.slice(-8), 16), paying.has(txid) ? ourScript : otherScript);
    },
  };
  return {
    client,
    /** Adds `n` transactions (the first pays the watched address when `pay`); removes `drop` old ones (mined). */
    arrive(n: number, opts: { pay?: boolean; drop?: number } = {}) {
      mempool.splice(0, opts.drop ?? 0);
      for (let i = 0; i < n; i++) {
        const id = (next++).toString(16).padStart(64, '0');
        if (i === 0 && opts.pay) paying.add(id);
        mempool.push(id);
      }
    },
    takeFetched() {
      const f = fetched;
      fetched = [];
      return f;
    },
  };
}

describe('Bitcoin mempool at mainnet size', () => {
  it('150,000 transactions: each pass fetches only what arrived (arrivals before the start backlog)', async () => {
    const node = stubNode(150_000);
    const cfg = { type: 'bitcoin', network: 'regtest', reorg_window: 10, poll_interval_ms: 1000 } as unknown as BitcoinChainConfig;
    const adapter = createBitcoinAdapter({ chain: 'bitcoin', config: cfg, client: node.client, logger: createLogger({ level: 'silent' }), maxMempoolTxsPerPass: 50_000 });
    adapter.watch({ full: true, added: [{ address: OURS, script: new Uint8Array(ourScript), invoiceId: 'inv_1' }], removed: [] }, 1);
    const mempool = adapter.mempool!;

    // First pass: the mempool found at start, bounded per pass.
    let scan = await mempool.scan(await mempool.list());
    expect(scan.scanned).toBe(50_000);
    expect(node.takeFetched()).toHaveLength(50_000);
    expect(adapter.mempoolState).toEqual({ scanned: 50_000, backlog: 100_000 });

    // 10 new transactions (one pays us) while 100,000 wait: the arrivals are fetched first.
    node.arrive(10, { pay: true, drop: 3 });
    scan = await mempool.scan(await mempool.list());
    const fetched = node.takeFetched();
    expect(fetched.slice(0, 10).map((t) => parseInt(t, 16))).toEqual(Array.from({ length: 10 }, (_, i) => 150_000 + i));
    expect(scan.observations).toHaveLength(1);
    expect(scan.observations[0]).toMatchObject({ address: OURS, block: null });

    // Drain the backlog, then steady state: 10 arrivals per pass → 10 fetches per pass.
    for (let i = 0; i < 5 && adapter.mempoolState.backlog > 0; i++) {
      node.arrive(10, { drop: 10 });
      await mempool.scan(await mempool.list());
    }
    expect(adapter.mempoolState.backlog).toBe(0);
    node.takeFetched();
    const times: number[] = [];
    for (let pass = 0; pass < 5; pass++) {
      node.arrive(10, { drop: 10 });
      const t0 = performance.now();
      scan = await mempool.scan(await mempool.list());
      times.push(performance.now() - t0);
      expect(scan.scanned).toBe(10);
      expect(node.takeFetched()).toHaveLength(10);
    }
    // The remembered set follows the mempool (mined transactions are forgotten), it does not grow.
    expect(adapter.mempoolState.scanned).toBeLessThanOrEqual(150_010);
    // Information only (a shared machine): the listing compare is one lookup per txid.
    console.log(`[mempool scale] 150,000 txs, 10 new per pass: pass ${times.map((t) => t.toFixed(1)).join(', ')} ms (stub node, no RPC)`);
  }, 180_000);
});
