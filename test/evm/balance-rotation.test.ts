import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { createBalanceRotation } from '../../src/chains/evm/balance-rotation.ts';

describe('balance-check rotation', () => {
  it('reads every address when the set fits in one block', () => {
    const r = createBalanceRotation(5);
    const m = new Map([['a', 1], ['b', 2]]);
    expect(r.next(m)).toEqual(['a', 'b']);
    expect(r.next(m)).toEqual(['a', 'b']);
  });

  it('never reads more than the bound, and reads every address within one cycle while the set changes', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 7 }),
        fc.array(fc.tuple(fc.integer({ min: 0, max: 40 }), fc.boolean()), { maxLength: 60 }),
        (max, changes) => {
          const r = createBalanceRotation(max);
          const m = new Map<string, number>();
          for (let i = 0; i < 25; i++) m.set(`s${i}`, i);
          let step = 0;
          for (const [k, add] of changes) {
            if (add) m.set(`n${k}`, k);
            else m.delete(`s${k}`);
            // An address present for a whole cycle (plus one block for a partly consumed slice) is read.
            const stable = new Set(m.keys());
            const read = new Set<string>();
            const blocks = r.cycleBlocks(m.size) + 1;
            for (let b = 0; b < blocks; b++) {
              const slice = r.next(m);
              expect(slice.length).toBeLessThanOrEqual(max);
              expect(new Set(slice).size).toBe(slice.length);
              slice.forEach((a) => read.add(a));
            }
            for (const a of stable) expect(read.has(a)).toBe(true);
            step++;
          }
          return step >= 0;
        },
      ),
      { numRuns: 200 },
    );
  });
});
