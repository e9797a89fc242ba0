/**
 * The columnar storage of the watched set and of the Bitcoin adapter's script set
 * (src/chains/byte-table.ts, `AddressTable` in src/chains/watched-set.ts) against plain Maps, under
 * random adds and removals large enough to fill, drop and compact slabs.
 */
import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { ByteTable } from '../../src/chains/byte-table.ts';
import { AddressTable } from '../../src/chains/watched-set.ts';

const hex = (b: Uint8Array) => Buffer.from(b).toString('hex');

function key(t: ByteTable, e: number): string {
  return t.slab(e).toString('hex', t.keyStart(e), t.keyStart(e) + t.keyLength(e));
}
function value(t: ByteTable, e: number): string {
  return t.slab(e).toString('hex', t.valueStart(e), t.valueStart(e) + t.valueLength(e));
}

/** Adds `k` → `v` to the table; returns the entry. */
function put(t: ByteTable, k: Uint8Array, v: Uint8Array): number {
  const e = t.add(k, 0, k.length, v.length);
  if (e >= 0) t.slab(e).set(v, t.valueStart(e));
  return e;
}

function expectSame(t: ByteTable, model: Map<string, string>): void {
  expect(t.size).toBe(model.size);
  const seen = new Map<string, string>();
  for (let e = 0; e < t.size; e++) seen.set(key(t, e), value(t, e));
  expect(seen).toEqual(model);
  for (const k of model.keys()) {
    const b = Buffer.from(k, 'hex');
    const e = t.find(b, 0, b.length);
    expect(e).toBeGreaterThanOrEqual(0);
    expect(value(t, e)).toBe(model.get(k));
  }
}

describe('ByteTable', () => {
  it('behaves like a Map under random adds and removals, keys found inside a larger buffer', () => {
    fc.assert(
      fc.property(
        fc.array(fc.tuple(fc.boolean(), fc.uint8Array({ minLength: 0, maxLength: 12 }), fc.uint8Array({ maxLength: 30 })), { maxLength: 2000 }),
        (ops) => {
          const t = new ByteTable();
          const model = new Map<string, string>();
          for (const [add, k, v] of ops) {
            if (add) {
              const e = put(t, k, v);
              expect(e >= 0).toBe(!model.has(hex(k)));
              if (e >= 0) model.set(hex(k), hex(v));
            } else {
              const e = t.find(k, 0, k.length);
              expect(e >= 0).toBe(model.delete(hex(k)));
              if (e >= 0) t.removeAt(e);
            }
          }
          expectSame(t, model);
          for (const [, k] of ops) {
            const buf = Uint8Array.from([7, 7, 7, ...k, 7]);
            expect(t.find(buf, 3, k.length) >= 0).toBe(model.has(hex(k)));
          }
        },
      ),
      { numRuns: 60 },
    );
  });

  it('drops emptied slabs and compacts sparse ones; bytes handed out as views keep their contents', () => {
    const t = new ByteTable();
    const model = new Map<string, string>();
    const N = 60_000;
    const rec = (i: number) => {
      const k = Buffer.alloc(24);
      k.writeUInt32LE(Math.imul(i, 2654435761) >>> 0, 0);
      k.writeUInt32LE(i, 4);
      const v = Buffer.alloc(40, i % 251);
      return { k, v };
    };
    for (let i = 0; i < N; i++) {
      const { k, v } = rec(i);
      put(t, k, v);
      model.set(hex(k), hex(v));
    }
    const slabs = t.slabByteLength;
    expect(slabs).toBeGreaterThan(N * 64);
    // A view of a record, taken before its record moves or dies.
    const probe = rec(N - 1);
    const pe = t.find(probe.k, 0, 24);
    const view = t.slab(pe).subarray(t.valueStart(pe), t.valueStart(pe) + 40);
    // Remove nine in ten, scattered: every slab ends up sparse, so records must move.
    for (let i = 0; i < N; i++) {
      if (i % 10 === 3) continue;
      const { k } = rec(i);
      t.removeAt(t.find(k, 0, 24));
      model.delete(hex(k));
    }
    expectSame(t, model);
    expect(hex(view)).toBe(hex(probe.v));
    expect(t.slabByteLength).toBeLessThan(slabs / 2);
    // The rest, in order (first in, first out): whole slabs empty and are dropped.
    for (let i = 3; i < N; i += 10) {
      const { k } = rec(i);
      t.removeAt(t.find(k, 0, 24));
      model.delete(hex(k));
    }
    expectSame(t, model);
    expect(t.slabByteLength).toBeLessThanOrEqual(256 * 1024);
    // And the table keeps working afterwards.
    for (let i = 0; i < 1000; i++) {
      const { k, v } = rec(N + i);
      put(t, k, v);
      model.set(hex(k), hex(v));
    }
    expectSame(t, model);
  });

  it('rejects keys and values over 65,535 bytes', () => {
    const t = new ByteTable();
    expect(() => t.add(new Uint8Array(70_000), 0, 70_000)).toThrow(RangeError);
    expect(() => t.add(new Uint8Array(4), 0, 4, 70_000)).toThrow(RangeError);
    expect(t.size).toBe(0);
  });
});

describe('AddressTable (the watched set storage)', () => {
  it('keeps rows and the earliest deadline right under random adds, changes and removals', () => {
    fc.assert(
      fc.property(
        fc.array(
          fc.oneof(
            fc.record({ op: fc.constant('add' as const), a: fc.integer({ min: 0, max: 300 }), until: fc.integer({ min: 0, max: 1000 }), script: fc.option(fc.uint8Array({ maxLength: 34 })) }),
            fc.record({ op: fc.constant('until' as const), a: fc.integer({ min: 0, max: 300 }), until: fc.integer({ min: 0, max: 1000 }) }),
            fc.record({ op: fc.constant('remove' as const), a: fc.integer({ min: 0, max: 300 }) }),
            fc.record({ op: fc.constant('expire' as const), until: fc.integer({ min: 0, max: 1000 }) }),
          ),
          { maxLength: 1500 },
        ),
        fc.boolean(),
        (ops, bulkStart) => {
          const t = new AddressTable();
          const model = new Map<string, { script: string | null; invoiceId: string; until: number }>();
          const addr = (a: number) => `bc1q${a.toString(36)}ä`; // not only ASCII
          if (bulkStart) {
            for (let a = 0; a < 50; a++) {
              t.add(addr(a), null, `inv_${a}`, (a * 37) % 1000, true);
              model.set(addr(a), { script: null, invoiceId: `inv_${a}`, until: (a * 37) % 1000 });
            }
            t.finishLoad();
          }
          for (const o of ops) {
            if (o.op === 'add') {
              const e = t.add(addr(o.a), o.script, `inv_${o.a}_${o.until}`, o.until);
              expect(e >= 0).toBe(!model.has(addr(o.a)));
              if (e >= 0) model.set(addr(o.a), { script: o.script ? hex(o.script) : null, invoiceId: `inv_${o.a}_${o.until}`, until: o.until });
            } else if (o.op === 'until') {
              const e = t.find(addr(o.a));
              expect(e >= 0).toBe(model.has(addr(o.a)));
              if (e >= 0) {
                t.setUntil(e, o.until);
                model.get(addr(o.a))!.until = o.until;
              }
            } else if (o.op === 'remove') {
              const e = t.find(addr(o.a));
              expect(e >= 0).toBe(model.delete(addr(o.a)));
              if (e >= 0) t.removeAt(e);
            } else {
              // What the refresh does: drop everything whose deadline has passed, earliest first.
              let last = -Infinity;
              for (let e = t.earliest(); e >= 0 && t.untilOf(e) <= o.until; e = t.earliest()) {
                expect(t.untilOf(e)).toBeGreaterThanOrEqual(last);
                last = t.untilOf(e);
                const r = t.row(e);
                expect(model.get(r.address)?.until).toBe(last);
                model.delete(r.address);
                t.removeAt(e);
              }
              for (const v of model.values()) expect(v.until).toBeGreaterThan(o.until);
            }
          }
          expect(t.size).toBe(model.size);
          const rows = new Map([...t.rows()].map((r) => [r.address, { script: r.script ? hex(r.script) : null, invoiceId: r.invoiceId, until: t.untilOf(t.find(r.address)) }]));
          expect(rows).toEqual(model);
          for (const [a, v] of model) expect(t.invoiceIs(t.find(a), v.invoiceId)).toBe(true);
          const min = Math.min(...[...model.values()].map((v) => v.until));
          if (model.size) expect(t.untilOf(t.earliest())).toBe(min);
          else expect(t.earliest()).toBe(-1);
        },
      ),
      { numRuns: 60 },
    );
  });
});
