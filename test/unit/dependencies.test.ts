/**
 * The import rules of docs/architecture.md §3 (.dependency-cruiser.cjs), checked on every
 * `npm test`: no module breaks one.
 */
import { describe, expect, it } from 'vitest';
import { checkImports, describeViolation } from '../../scripts/check-imports.ts';

describe('import rules (dependency-cruiser)', () => {
  it('has no violation', async () => {
    const r = await checkImports();
    expect(r.cruised).toBeGreaterThan(100); // it read the code base, not an empty folder
    expect(r.violations.map(describeViolation)).toEqual([]);
  }, 120_000);
});
