/**
 * The import rules of docs/architecture.md §3 (.dependency-cruiser.cjs), checked on every
 * `npm test`: no violation beyond the known-violations baseline, and no baseline entry that was
 * fixed but left in the file (so a fixed violation cannot come back unnoticed).
 */
import { describe, expect, it } from 'vitest';
import { BASELINE_FILE, checkImports, describeViolation } from '../../scripts/check-imports.ts';

describe('import rules (dependency-cruiser)', () => {
  it(`has no violation outside ${BASELINE_FILE}, and the baseline lists only violations that still occur`, async () => {
    const r = await checkImports();
    expect(r.cruised).toBeGreaterThan(100); // it read the code base, not an empty folder
    expect(r.fresh.map(describeViolation)).toEqual([]);
    expect(r.stale).toEqual([]);
  }, 120_000);
});
