/**
 * The import rules of docs/architecture.md §3, checked with dependency-cruiser
 * (.dependency-cruiser.cjs). Prints each violation and exits 1 when there is one that is not in
 * the known-violations baseline (.dependency-cruiser-known-violations.json: violations being
 * removed by work in progress; a fixed one must be deleted from it, so it cannot come back).
 *
 *   npx tsx scripts/check-imports.ts            check (run by `npm test` through test/unit/dependencies.test.ts)
 *   npx tsx scripts/check-imports.ts --baseline print the current violations as a baseline file
 *
 * It uses dependency-cruiser's API rather than its CLI: the CLI refuses to start on Node 20,
 * which Kassa supports; the API runs on it.
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { cruise, type ICruiseResult, type IViolation } from 'dependency-cruiser';
import extractDepcruiseOptions from 'dependency-cruiser/config-utl/extract-depcruise-options';
import extractTSConfig from 'dependency-cruiser/config-utl/extract-ts-config';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
export const BASELINE_FILE = '.dependency-cruiser-known-violations.json';

export interface ImportCheck {
  /** Violations not in the baseline. */
  fresh: IViolation[];
  /** Baseline entries that no longer occur (fixed: delete them from the baseline). */
  stale: { from: string; to: string; rule: string }[];
  all: IViolation[];
  /** Modules read. */
  cruised: number;
}

const key = (v: { from: string; to: string; rule: { name: string } | string }) => `${typeof v.rule === 'string' ? v.rule : v.rule.name} ${v.from} → ${v.to}`;

export async function checkImports(): Promise<ImportCheck> {
  const cwd = process.cwd();
  process.chdir(root);
  try {
    const options = await extractDepcruiseOptions(path.join(root, '.dependency-cruiser.cjs'));
    const result = await cruise(['src', 'workers'], { ...options, validate: true, outputType: 'json' }, undefined, {
      tsConfig: extractTSConfig(path.join(root, 'tsconfig.json')),
    });
    const output = (typeof result.output === 'string' ? JSON.parse(result.output) : result.output) as ICruiseResult;
    const all = output.summary.violations;
    const baseline = JSON.parse(readFileSync(path.join(root, BASELINE_FILE), 'utf8')) as { from: string; to: string; rule: { name: string } }[];
    const known = new Set(baseline.map(key));
    const seen = new Set(all.map(key));
    return {
      all,
      cruised: output.summary.totalCruised,
      fresh: all.filter((v) => !known.has(key(v))),
      stale: baseline.filter((b) => !seen.has(key(b))).map((b) => ({ from: b.from, to: b.to, rule: b.rule.name })),
    };
  } finally {
    process.chdir(cwd);
  }
}

export function describeViolation(v: IViolation): string {
  const cycle = v.cycle?.length ? ` (cycle: ${v.cycle.map((c) => c.name).join(' → ')})` : '';
  return `${v.rule.name}: ${v.from} → ${v.to}${cycle}`;
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const r = await checkImports();
  if (process.argv.includes('--baseline')) {
    console.log(JSON.stringify(r.all.map((v) => ({ type: v.type, from: v.from, to: v.to, rule: v.rule, ...(v.cycle ? { cycle: v.cycle } : {}) })), null, 2));
  } else {
    for (const v of r.fresh) console.error(`new import violation: ${describeViolation(v)}`);
    for (const s of r.stale) console.error(`fixed, delete from ${BASELINE_FILE}: ${s.rule}: ${s.from} → ${s.to}`);
    console.log(`import rules: ${r.all.length - r.fresh.length} known violation(s), ${r.fresh.length} new, ${r.stale.length} fixed but still in the baseline`);
    process.exitCode = r.fresh.length > 0 || r.stale.length > 0 ? 1 : 0;
  }
}
