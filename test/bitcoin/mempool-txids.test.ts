/**
 * The Bitcoin adapter's mempool memory (src/chains/bitcoin/mempool-txids.ts) and the byte-level
 * read of `getrawmempool` (src/chains/bitcoin/rpc.ts): the same txids as a full JSON parse, exact
 * membership (checked against a `Set` through growth, deletions and forgetting), the fallbacks
 * for replies of another shape, and the adapter's handling of a listing it never scanned.
 */
import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import * as bitcoin from 'bitcoinjs-lib';
import { MempoolTxids, SEEN_BAD_HEX, SEEN_KNOWN, SEEN_NEW, scanTxidArray, txidListFromStrings, type TxidList } from '../../src/chains/bitcoin/mempool-txids.ts';
import { createBitcoinRpcClient, isBitcoinRpcError } from '../../src/chains/bitcoin/rpc.ts';
import { ReplyBuffers } from '../../src/chains/bitcoin/reply-buffers.ts';
import { createBitcoinAdapter } from '../../src/chains/bitcoin/adapter.ts';
import type { BitcoinNodeClient } from '../../src/chains/bitcoin/types.ts';
import type { BitcoinChainConfig } from '../../src/config.ts';
import { createLogger } from '../../src/logger.ts';
import { isKassaError } from '../../src/errors.ts';

const txid = () => randomBytes(32).toString('hex');
const txidsOf = (l: TxidList) => Array.from(l.starts, (s) => Buffer.from(l.bytes.subarray(s, s + 64)).toString('latin1'));

/** A fetch that answers every request with `body` (HTTP `status`). */
const answer = (body: string, status = 200): typeof fetch =>
  (async () => new Response(body, { status, headers: { 'content-type': 'application/json' } })) as typeof fetch;
const rpc = (body: string, status = 200) => createBitcoinRpcClient({ url: 'http://node.test/', name: 'test node', retries: 0, fetch: answer(body, status) });

describe('getrawmempool read from the bytes', () => {
  it('Core\'s reply: the same txids, in order, as JSON.parse', async () => {
    const ids = Array.from({ length: 1000 }, txid);
    const list = await rpc(JSON.stringify({ result: ids, error: null, id: 1 })).getRawMempoolTxids();
    expect(list.count).toBe(1000);
    expect(txidsOf(list)).toEqual(ids);
  });

  it('other shapes: whitespace, the result after the id, an empty mempool, JSON-RPC 2.0', async () => {
    const ids = [txid(), txid(), txid()];
    const spaced = `{ "id" : {"n": [1, "]"]} ,\n "result" : [ "${ids[0]}" ,\n"${ids[1]}",  "${ids[2]}" ] , "error": null }\n`;
    expect(txidsOf(await rpc(spaced).getRawMempoolTxids())).toEqual(ids);
    expect((await rpc('{"result":[],"error":null,"id":7}').getRawMempoolTxids()).count).toBe(0);
    expect(txidsOf(await rpc(JSON.stringify({ jsonrpc: '2.0', result: ids, id: 2 })).getRawMempoolTxids())).toEqual(ids);
  });

  it('an RPC error reply is the node\'s error (code kept), not an empty mempool', async () => {
    const err = await rpc('{"result":null,"error":{"code":-28,"message":"Loading block index…"},"id":1}', 500).getRawMempoolTxids().catch((e: unknown) => e);
    expect(isBitcoinRpcError(err, -28)).toBe(true);
  });

  it('a reply that is not a list of txids is a bad response', async () => {
    for (const body of ['{"result":["abc"],"error":null,"id":1}', '{"result":{"txids":[]},"error":null,"id":1}', '{"result":[1,2],"error":null,"id":1}', 'not json']) {
      const err = await rpc(body).getRawMempoolTxids().catch((e: unknown) => e);
      expect(isKassaError(err) && err.code, body).toBe('bitcoin_node_bad_response');
    }
  });

  it('a listing read into the caller\'s buffers stays valid while the next one is read, and a failed read does not use up its turn', async () => {
    const lists = [Array.from({ length: 2000 }, txid), Array.from({ length: 3000 }, txid), Array.from({ length: 1000 }, txid)];
    let k = 0;
    let fail = false;
    const client = createBitcoinRpcClient({
      url: 'http://node.test/', name: 'test node', retries: 1, retryDelayMs: 1,
      fetch: (async () => {
        if (fail) {
          fail = false;
          return new Response('busy', { status: 503 });
        }
        return new Response(JSON.stringify({ result: lists[k++], error: null, id: 1 }), { status: 200 });
      }) as typeof fetch,
    });
    const into = new ReplyBuffers();
    // Each listing kept once read, as the adapter does.
    const first = await client.getRawMempoolTxids(into);
    into.keep();
    fail = true; // the second listing needs a retry: the first stays intact anyway
    const second = await client.getRawMempoolTxids(into);
    into.keep();
    expect(txidsOf(first)).toEqual(lists[0]);
    expect(txidsOf(second)).toEqual(lists[1]);
    const third = await client.getRawMempoolTxids(into);
    into.keep();
    expect(txidsOf(second)).toEqual(lists[1]);
    expect(txidsOf(third)).toEqual(lists[2]);
    expect(third.bytes.buffer).toBe(first.bytes.buffer); // the first listing's buffer, reused
    // Without buffers of its own, a caller gets bytes nobody reuses.
    k = 0;
    const own = await client.getRawMempoolTxids();
    for (let n = 0; n < 2; n++) {
      await client.getRawMempoolTxids(into);
      into.keep();
    }
    expect(txidsOf(own)).toEqual(lists[0]);
  });

  it('scanTxidArray leaves anything but 64-character strings to the full parse', () => {
    const id = txid();
    expect(scanTxidArray(Buffer.from(`["${id}"]`), 0)?.list.count).toBe(1);
    expect(scanTxidArray(Buffer.from(`["${id}",]`), 0)).toBeNull();
    expect(scanTxidArray(Buffer.from(`["${id.slice(1)}"]`), 0)).toBeNull();
    expect(scanTxidArray(Buffer.from(`["${id}x"]`), 0)).toBeNull();
    expect(scanTxidArray(Buffer.from(`["${id}"`), 0)).toBeNull();
  });
});

describe('MempoolTxids', () => {
  it('answers exactly like a Set through growth, deletions and forgetting what left', () => {
    const known = new MempoolTxids(16);
    const ref = new Set<string>();
    let listing = Array.from({ length: 3000 }, txid);
    for (let round = 0; round < 12; round++) {
      // Some leave, some arrive (a few in upper case: the same txid), some are deleted.
      listing = listing.slice(round * 50).concat(Array.from({ length: 400 }, txid));
      const list = txidListFromStrings(listing.map((t, i) => (i % 97 === 0 ? t.toUpperCase() : t)))!;
      known.beginListing();
      let fresh = 0;
      for (let i = 0; i < list.count; i++) {
        const seen = known.see(list.bytes, list.starts[i]!);
        expect(seen).toBe(ref.has(listing[i]!) ? SEEN_KNOWN : SEEN_NEW);
        if (seen === SEEN_NEW) fresh++;
      }
      expect(fresh).toBe(round === 0 ? 3400 : 400);
      const listed = new Set(listing);
      for (const t of ref) if (!listed.has(t)) ref.delete(t);
      for (const t of listing) ref.add(t);
      known.forgetUnlisted();
      const gone = listing[round * 7]!;
      expect(known.delete(gone)).toBe(true);
      ref.delete(gone);
      listing.splice(round * 7, 1);
      expect(known.size).toBe(ref.size);
      expect(new Set(known.toArray())).toEqual(ref);
      for (const t of listing.slice(0, 200)) expect(known.inListing(t, known.listing)).toBe(true);
      expect(known.inListing(gone, known.listing)).toBe(false);
      expect(known.inListing(txid(), known.listing)).toBe(false);
    }
  });

  it('a listing entry that is not hex is reported and not remembered; a listed txid twice counts once', () => {
    const known = new MempoolTxids();
    const a = txid();
    const list = txidListFromStrings([a, a, 'g'.repeat(64)])!;
    known.beginListing();
    expect(known.see(list.bytes, list.starts[0]!)).toBe(SEEN_NEW);
    expect(known.see(list.bytes, list.starts[1]!)).toBe(SEEN_KNOWN);
    expect(known.see(list.bytes, list.starts[2]!)).toBe(SEEN_BAD_HEX);
    expect(known.size).toBe(1);
    expect(known.listedCount).toBe(1);
  });
});

describe('MempoolTxids.readListing (each listing walked beside the previous one)', () => {
  /** A small deterministic generator (the failures print the seed). */
  const rng = (seed: number) => () => ((seed = (Math.imul(seed, 1103515245) + 12345) >>> 0) / 2 ** 32);

  it('answers exactly like a Set whatever changes between listings: arrivals anywhere, departures in runs, moves, duplicates, case, deletions, growth', () => {
    for (const seed of [1, 2, 3, 4, 5]) {
      const rand = rng(seed);
      const pick = (n: number) => Math.floor(rand() * n);
      const known = new MempoolTxids(16); // grows (rehashes) while listings are read
      const ref = new Set<string>();
      let listing = Array.from({ length: 500 }, txid);
      for (let round = 0; round < 40; round++) {
        const next = [...listing];
        const change = pick(7);
        if (change === 0) next.splice(pick(next.length), pick(200)); // a block: a run departs
        if (change === 1) for (let k = 0; k < 30; k++) next.splice(pick(next.length + 1), 0, txid()); // arrivals anywhere
        if (change === 2) for (let k = 0; k < 20; k++) next.splice(pick(next.length + 1), 0, ...next.splice(pick(next.length), 1)); // moves
        if (change === 3) next.reverse();
        if (change === 4 && next.length) next.splice(pick(next.length), 0, next[pick(next.length)]!); // a txid listed twice
        if (change === 5) for (let k = 0; k < 300; k++) next.push(txid()); // growth
        if (change === 6) for (let k = 0; k < 50; k++) next.splice(pick(next.length), 1); // scattered departures
        listing = next;
        // Some entries in upper case: the same txid.
        const shown = listing.map((t) => (pick(50) === 0 ? t.toUpperCase() : t));
        const list = txidListFromStrings(shown)!;
        const offsets = known.readListing(list);
        expect(offsets, `seed ${seed} round ${round}`).not.toBeNull();
        const arrived = offsets!.map((o) => Buffer.from(list.bytes.subarray(o, o + 64)).toString('latin1').toLowerCase());
        const expected = [...new Set(listing.filter((t) => !ref.has(t)))];
        expect(arrived, `seed ${seed} round ${round} (change ${change})`).toEqual(expected);
        const listed = new Set(listing);
        for (const t of ref) if (!listed.has(t)) ref.delete(t);
        for (const t of listing) ref.add(t);
        expect(known.listedCount).toBe(listed.size);
        known.forgetUnlisted();
        if (round % 5 === 4 && listing.length) {
          // Deleted between listings (a double-spend): new again in the next listing that holds it.
          const gone = listing[pick(listing.length)]!;
          expect(known.delete(gone)).toBe(true);
          ref.delete(gone);
        }
        expect(known.size).toBe(ref.size);
        expect(new Set(known.toArray())).toEqual(ref);
        for (const t of listing.slice(0, 50)) expect(known.inListing(t, known.listing)).toBe(ref.has(t));
        expect(known.inListing(txid(), known.listing)).toBe(false);
      }
    }
  });

  it('looks up only what changed: nothing for the same listing, the arrivals, one entry per run that departed or moved', () => {
    const known = new MempoolTxids();
    const listing = Array.from({ length: 10_000 }, txid);
    known.readListing(txidListFromStrings(listing)!);
    expect(known.lookedUp).toBe(10_000); // the first listing: every entry
    known.readListing(txidListFromStrings(listing)!);
    expect(known.lookedUp).toBe(0);
    const arrivals = [txid(), txid(), txid()];
    listing.splice(10, 0, arrivals[0]!);
    listing.splice(5000, 0, arrivals[1]!);
    listing.push(arrivals[2]!);
    expect(known.readListing(txidListFromStrings(listing)!)?.length).toBe(3);
    expect(known.lookedUp).toBe(3);
    listing.splice(100, 2000); // a block took a run
    listing.splice(7000, 1); // and one more
    known.readListing(txidListFromStrings(listing)!);
    expect(known.lookedUp).toBe(2); // the first entry after each gap
    listing.splice(20, 0, ...listing.splice(6000, 1)); // one entry moves forward
    known.readListing(txidListFromStrings(listing)!);
    expect(known.lookedUp).toBe(2); // where it is now, and the entry after where it was
    expect(known.listedCount).toBe(listing.length);
  });

  it('a listing with an entry that is not hex: null, its arrivals not remembered, and the next listing is read in full', () => {
    const known = new MempoolTxids();
    const a = txid(), b = txid(), c = txid();
    expect(known.readListing(txidListFromStrings([a, b])!)?.length).toBe(2);
    expect(known.readListing(txidListFromStrings([a, c, 'g'.repeat(64)])!)).toBeNull();
    expect(known.size).toBe(2); // c was not kept
    const list = txidListFromStrings([a, b, c])!;
    const offsets = known.readListing(list)!;
    expect(offsets.map((o) => Buffer.from(list.bytes.subarray(o, o + 64)).toString('latin1'))).toEqual([c]);
    expect(known.listedCount).toBe(3);
  });
});

describe('the adapter\'s mempool listing', () => {
  const network = bitcoin.networks.regtest;
  const ours = bitcoin.payments.p2wpkh({ hash: Buffer.alloc(20, 7), network });
  const cfg = { type: 'bitcoin', network: 'regtest', reorg_window: 10, poll_interval_ms: 1000 } as unknown as BitcoinChainConfig;

  function node() {
    const raw = new Map<string, Uint8Array>();
    const mempool: string[] = [];
    const fetched: string[] = [];
    const client: BitcoinNodeClient = {
      name: 'stub node', kind: 'esplora',
      getBlockCount: async () => 0, getBestBlockHash: async () => '00'.repeat(32), getBlockHash: async () => '00'.repeat(32),
      getBlockHeader: async () => ({ hash: '00'.repeat(32), height: 0, time: 0, previousBlockHash: null, confirmations: 1 }) as never,
      getBlockRaw: async () => new Uint8Array(), sendRawTransaction: async () => '',
      getRawMempool: async () => [...mempool],
      getRawTransactionRaw: async (t) => {
        fetched.push(t);
        return raw.get(t)!;
      },
    };
    let n = 0;
    return {
      client, fetched,
      /** A transaction paying `ours` (`pay`) or someone else enters the mempool; returns its txid. */
      send(pay: boolean): string {
        const tx = new bitcoin.Transaction();
        const prev = Buffer.alloc(32, 9);
        prev.writeUInt32LE(++n, 0);
        tx.addInput(prev, 0);
        tx.addOutput(pay ? ours.output! : bitcoin.payments.p2wpkh({ hash: Buffer.alloc(20, 8), network }).output!, 5_000n);
        const id = tx.getId();
        raw.set(id, tx.toBuffer());
        mempool.push(id);
        return id;
      },
    };
  }

  it('arrivals of a listing that was never scanned (the pass stopped before the tip) are scanned with the next one', async () => {
    const nd = node();
    const adapter = createBitcoinAdapter({ chain: 'bitcoin', config: cfg, client: nd.client, logger: createLogger({ level: 'silent' }) });
    adapter.watch({ full: true, added: [{ address: ours.address!, script: new Uint8Array(ours.output!), invoiceId: 'inv_1' }], removed: [] }, 1);
    const first = nd.send(true);
    const unscanned = await adapter.mempool!.list(); // the pass ends before the mempool step
    expect(unscanned.has(first)).toBe(true);
    const second = nd.send(false);
    const listing = await adapter.mempool!.list();
    expect(() => unscanned.has(first)).toThrow(/newer one/); // one listing number per txid: only the latest answers
    await expect(adapter.mempool!.scan(unscanned)).rejects.toThrow(/newer one/);
    const scan = await adapter.mempool!.scan(listing);
    expect(nd.fetched.sort()).toEqual([first, second].sort());
    expect(scan.observations).toMatchObject([{ txid: first, address: ours.address, amount: 5_000n, block: null }]);
    expect(adapter.mempoolState).toEqual({ scanned: 2, backlog: 0 });
    // Seen once: the next pass fetches nothing.
    const again = await adapter.mempool!.scan(await adapter.mempool!.list());
    expect(again).toEqual({ observations: [], scanned: 0 });
  });
});
