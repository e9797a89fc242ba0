import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import * as bitcoin from 'bitcoinjs-lib';
import { KassaError } from '../../src/errors.ts';
import { parseBlockHeader, scanBlock, scanTransaction, WatchedScripts } from '../../src/chains/bitcoin/scanner.ts';

// Real Bitcoin blocks in test/fixtures/blocks (docs/architecture.md §9, "Test data").
const DATA = new URL('../fixtures/blocks/', import.meta.url);
const BLOCKS = [
  { name: 'block426884', txs: 409, outputs: 798 },
  { name: 'block928831', txs: 915, outputs: 9990 },
  { name: 'block928848', txs: 676, outputs: 7379 },
] as const;

const load = (name: string) => new Uint8Array(readFileSync(new URL(`${name}.raw`, DATA)));
const hex = (b: Uint8Array) => Buffer.from(b).toString('hex');

describe('scanBlock() on real blocks', () => {
  for (const { name, txs, outputs } of BLOCKS) {
    describe(name, () => {
      const raw = load(name);
      const block = bitcoin.Block.fromBuffer(raw);
      const btxs = block.transactions!;

      it(`counts ${txs} transactions and ${outputs} outputs, and parses the header`, () => {
        const r = scanBlock(raw, new WatchedScripts());
        expect(r.txCount).toBe(txs);
        expect(r.outputCount).toBe(outputs);
        expect(r.inputCount).toBe(btxs.reduce((n, t) => n + t.ins.length, 0));
        expect(r.matches).toEqual([]);
        expect(r.header).toEqual({
          hash: block.getId(),
          prevHash: hex(Uint8Array.from(block.prevHash!).reverse()),
          merkleRoot: hex(Uint8Array.from(block.merkleRoot!).reverse()),
          version: block.version,
          time: block.timestamp,
          bits: block.bits,
          nonce: block.nonce,
        });
        expect(parseBlockHeader(raw)).toEqual(r.header);
      });

      it('finds exactly the outputs paying planted scripts, with txids and values matching bitcoinjs-lib', () => {
        const watched = new WatchedScripts();
        // a sample of real scripts, plus random noise that must never match
        let n = 0;
        for (const tx of btxs) for (const o of tx.outs) if (n++ % 37 === 5) watched.add(o.script);
        for (let i = 0; i < 5000; i++) watched.add(Uint8Array.from([0, 20, ...Array.from({ length: 20 }, () => (Math.random() * 256) | 0)]));
        const expected: string[] = [];
        btxs.forEach((tx, t) =>
          tx.outs.forEach((o, vout) => {
            if (watched.has(o.script)) expected.push(`${tx.getId()}:${vout}:${o.value}:${hex(o.script)}:${t}:${t === 0}`);
          }),
        );
        const r = scanBlock(raw, watched);
        const got = r.matches.map((m) => `${m.txid}:${m.vout}:${m.value}:${hex(m.script)}:${m.txIndex}:${m.coinbase}`);
        expect(got.length).toBeGreaterThan(0);
        expect(got).toEqual(expected);
        for (const m of r.matches) expect(typeof m.value).toBe('bigint');
      });

      it('records the outpoints spent by every non-coinbase input', () => {
        const r = scanBlock(raw, null);
        const expected = btxs.slice(1).flatMap((tx) => tx.ins.map((i) => `${hex(Uint8Array.from(i.hash).reverse())}:${i.index}`));
        expect(r.spent.size).toBe(expected.length);
        expect(r.spent.toArray()).toEqual(expected);
        const some = [expected[0]!, expected[expected.length - 1]!, expected[expected.length >> 1]!];
        const fake = `${'ab'.repeat(32)}:0`;
        expect(r.spent.spentAmong([...some, fake]).sort()).toEqual([...new Set(some)].sort());
        expect(r.spent.has(some[0]!.toUpperCase())).toBe(true);
        expect(r.spent.has(fake)).toBe(false);
        expect(r.spent.has('not an outpoint')).toBe(false);
      });

      it('scanTransaction() agrees with bitcoinjs-lib on txid, wtxid, matches and spent outpoints', () => {
        const sample = btxs.filter((_, i) => i % 29 === 0 || i === btxs.length - 1);
        if (name !== 'block426884') expect(sample.some((t) => t.hasWitnesses())).toBe(true);
        for (const tx of sample) {
          const watched = new WatchedScripts();
          watched.add(tx.outs[tx.outs.length - 1]!.script);
          const r = scanTransaction(tx.toBuffer(), watched);
          expect(r.txid).toBe(tx.getId());
          // bitcoinjs reports the all-zero wtxid BIP-141 uses for the coinbase commitment; Kassa hashes the bytes
          if (!tx.isCoinbase()) expect(r.wtxid).toBe(hex(Uint8Array.from(tx.getHash(true)).reverse()));
          expect(r.segwit).toBe(tx.hasWitnesses());
          expect(r.outputCount).toBe(tx.outs.length);
          const expectedMatches = tx.outs.flatMap((o, vout) => (watched.has(o.script) ? [`${vout}:${o.value}`] : []));
          expect(r.matches.map((m) => `${m.vout}:${m.value}`)).toEqual(expectedMatches);
          for (const m of r.matches) expect(m.txid).toBe(tx.getId());
          if (tx.isCoinbase()) expect(r.spent).toEqual([]);
          else expect(r.spent).toEqual(tx.ins.map((i) => `${hex(Uint8Array.from(i.hash).reverse())}:${i.index}`));
        }
      });
    });
  }
});

describe('scanTransaction() on constructed transactions', () => {
  const p2wpkh = bitcoin.payments.p2wpkh({ hash: new Uint8Array(20).fill(7) }).output!;
  const p2tr = Uint8Array.from([0x51, 0x20, ...new Uint8Array(32).fill(9)]);

  function makeTx(witness: boolean): bitcoin.Transaction {
    const tx = new bitcoin.Transaction();
    tx.version = 2;
    tx.addInput(new Uint8Array(32).fill(1), 3);
    tx.addInput(new Uint8Array(32).fill(2), 0);
    tx.addOutput(p2wpkh, 5_000_000_000n); // 50 BTC: above 2^32 satoshis
    tx.addOutput(Uint8Array.from([0x6a, 0x01, 0x00]), 0n);
    tx.addOutput(p2tr, 2_100_000_000_000_000n); // 21M BTC
    if (witness) {
      tx.setWitness(0, [new Uint8Array(72).fill(3), new Uint8Array(33).fill(2)]);
      tx.setWitness(1, []);
    }
    return tx;
  }

  for (const witness of [false, true]) {
    it(`reads values above 2^32 as exact bigints (${witness ? 'segwit' : 'legacy'})`, () => {
      const tx = makeTx(witness);
      const watched = new WatchedScripts();
      watched.add(p2wpkh);
      watched.add(hex(p2tr));
      const r = scanTransaction(tx.toBuffer(), watched);
      expect(r.segwit).toBe(witness);
      expect(r.txid).toBe(tx.getId());
      expect(r.matches.map((m) => [m.vout, m.value])).toEqual([
        [0, 5_000_000_000n],
        [2, 2_100_000_000_000_000n],
      ]);
      expect(r.spent).toEqual([`${'01'.repeat(32)}:3`, `${'02'.repeat(32)}:0`]);
    });
  }
});

describe('malformed data', () => {
  const raw = load('block426884');

  function expectMalformed(fn: () => unknown): void {
    try {
      fn();
    } catch (err) {
      expect(err).toBeInstanceOf(KassaError);
      expect((err as KassaError).code).toBe('bitcoin_data_malformed');
      return;
    }
    throw new Error('expected bitcoin_data_malformed');
  }

  it('rejects truncated blocks, trailing bytes and short headers', () => {
    for (const cut of [79, 81, 1000, raw.length >> 1, raw.length - 1]) expectMalformed(() => scanBlock(raw.subarray(0, cut), null));
    const longer = new Uint8Array(raw.length + 1);
    longer.set(raw);
    expectMalformed(() => scanBlock(longer, null));
  });

  it('rejects truncated transactions and corrupted counts without hanging', () => {
    const tx = bitcoin.Block.fromBuffer(raw).transactions![3]!.toBuffer();
    for (let cut = 0; cut < tx.length; cut += 7) expectMalformed(() => scanTransaction(tx.subarray(0, cut), null));
    const corrupted = new Uint8Array(tx);
    corrupted[4] = 0xfe; // input count -> huge
    expectMalformed(() => scanTransaction(corrupted, null));
  });

  it('never throws anything but a KassaError on random corruption', () => {
    fc.assert(
      fc.property(fc.integer({ min: 81, max: raw.length - 1 }), fc.integer({ min: 0, max: 255 }), (pos, byte) => {
        const copy = new Uint8Array(raw);
        copy[pos] = byte;
        try {
          scanBlock(copy, null);
        } catch (err) {
          expect(err).toBeInstanceOf(KassaError);
        }
      }),
      { numRuns: 200 },
    );
  });
});

describe('WatchedScripts', () => {
  it('add / has / remove, bytes or hex, duplicates reported', () => {
    const w = new WatchedScripts();
    const a = Uint8Array.from([0, 20, ...new Uint8Array(20).fill(1)]);
    expect(w.add(a)).toBe(true);
    expect(w.add(hex(a))).toBe(false);
    expect(w.size).toBe(1);
    expect(w.has(a)).toBe(true);
    expect(w.has(hex(a).toUpperCase())).toBe(true);
    expect(w.has(a.subarray(0, 21))).toBe(false);
    const buf = Uint8Array.from([9, 9, ...a, 9]);
    expect(w.hasAt(buf, 2, 22)).toBe(true);
    expect(w.hasAt(buf, 1, 22)).toBe(false);
    expect(w.remove(a)).toBe(true);
    expect(w.remove(a)).toBe(false);
    expect(w.has(a)).toBe(false);
    expect(w.size).toBe(0);
    expect(w.add(new Uint8Array(0))).toBe(true);
    expect(w.has(new Uint8Array(0))).toBe(true);
    expect(() => w.add('abc')).toThrow();
  });

  it('keeps the deposit address of each script, decoded only when asked', () => {
    const w = new WatchedScripts();
    const a = Uint8Array.from([0, 20, ...new Uint8Array(20).fill(1)]);
    const b = Uint8Array.from([0, 20, ...new Uint8Array(20).fill(2)]);
    expect(w.add(a, 'bcrt1qaaaa')).toBe(true);
    expect(w.add(b, 'bcrt1qbbbb')).toBe(true);
    expect(w.add(hex(a), 'bcrt1qother')).toBe(false); // present: the first address stays
    expect(w.addressOf(a)).toBe('bcrt1qaaaa');
    expect(w.addressOf(b)).toBe('bcrt1qbbbb');
    expect(w.remove(a)).toBe(true);
    expect(w.addressOf(a)).toBeUndefined();
    expect(w.addressOf(b)).toBe('bcrt1qbbbb'); // moved into the removed entry's place
    expect(w.add(a)).toBe(true);
    expect(w.addressOf(a)).toBe('');
  });

  it('behaves like a Set under random add/remove sequences (growth, deletion, compaction)', () => {
    fc.assert(
      fc.property(
        fc.array(fc.tuple(fc.boolean(), fc.uint8Array({ minLength: 0, maxLength: 40 }).map((b) => (b.length > 3 ? b : Uint8Array.from([b.length])))), {
          maxLength: 3000,
        }),
        (ops) => {
          const w = new WatchedScripts();
          const model = new Set<string>();
          for (const [add, s] of ops) {
            const k = hex(s);
            if (add) {
              expect(w.add(s)).toBe(!model.has(k));
              model.add(k);
            } else {
              expect(w.remove(s)).toBe(model.delete(k));
            }
          }
          expect(w.size).toBe(model.size);
          for (const k of model) expect(w.has(k)).toBe(true);
          for (const [, s] of ops) expect(w.has(s)).toBe(model.has(hex(s)));
          expect(new Set([...w.scripts()].map(hex))).toEqual(model);
        },
      ),
      { numRuns: 60 },
    );
  });

  it('handles many entries and heavy deletion (backward-shift deletion keeps probes intact)', () => {
    const w = new WatchedScripts();
    const scripts = Array.from({ length: 50_000 }, (_, i) => {
      const s = new Uint8Array(22);
      s[1] = 20;
      new DataView(s.buffer).setUint32(2, i * 2654435761);
      new DataView(s.buffer).setUint32(6, i);
      return s;
    });
    for (const s of scripts) w.add(s);
    for (let i = 0; i < scripts.length; i += 2) expect(w.remove(scripts[i]!)).toBe(true);
    expect(w.size).toBe(25_000);
    for (let i = 0; i < scripts.length; i++) expect(w.has(scripts[i]!)).toBe(i % 2 === 1);
    w.clear();
    expect(w.size).toBe(0);
    expect(w.has(scripts[1]!)).toBe(false);
  });
});
