/**
 * The import rules of docs/architecture.md §3, checked with dependency-cruiser
 * (.dependency-cruiser.cjs). Prints each violation and exits 1 when there is one.
 *
 *   npx tsx scripts/check-imports.ts    (also run by `npm test` through test/unit/dependencies.test.ts)
 *
 * It uses dependency-cruiser's API rather than its CLI: the CLI refuses to start on Node 20,
 * which Kassa supports; the API runs on it.
 */
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { cruise, type ICruiseResult, type IViolation } from 'dependency-cruiser';
import extractDepcruiseOptions from 'dependency-cruiser/config-utl/extract-depcruise-options';
import extractTSConfig from 'dependency-cruiser/config-utl/extract-ts-config';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');

export interface ImportCheck {
  violations: IViolation[];
  /** Modules read. */
  cruised: number;
}

export async function checkImports(): Promise<ImportCheck> {
  const cwd = process.cwd();
  process.chdir(root);
  try {
    const options = await extractDepcruiseOptions(path.join(root, '.dependency-cruiser.cjs'));
    const result = await cruise(['src', 'workers'], { ...options, validate: true, outputType: 'json' }, undefined, {
      tsConfig: extractTSConfig(path.join(root, 'tsconfig.json')),
    });
    const output = (typeof result.output === 'string' ? JSON.parse(result.output) : result.output) as ICruiseResult;
    return { violations: output.summary.violations, cruised: output.summary.totalCruised };
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
  for (const v of r.violations) console.error(`import violation: ${describeViolation(v)}`);
  console.log(`import rules: ${r.cruised} modules read, ${r.violations.length} violation(s)`);
  process.exitCode = r.violations.length > 0 ? 1 : 0;
}
