/**
 * The import rules of docs/architecture.md §3, checked with dependency-cruiser
 * (.dependency-cruiser.cjs), and the layout rule beside them: outside src/chains/ (and the chains
 * file's parsing in src/config.ts, the dev tooling in src/sandbox/) no code compares a chain's type
 * (`cfg.type === 'bitcoin'`, `=== 'evm'`, `chain_type === …`, `case 'evm':` on a type); it asks the
 * chain family (src/chains/families.ts) instead. Prints each violation and exits 1 when there is one.
 *
 *   npx tsx scripts/check-imports.ts    (also run by `npm test` through test/unit/dependencies.test.ts)
 *
 * It uses dependency-cruiser's API rather than its CLI: the CLI refuses to start on Node 20,
 * which Kassa supports; the API runs on it.
 */
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import ts from 'typescript';
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

/** Where a chain's type may be compared: the families themselves, the chains file's parsing, the dev tooling. */
export const CHAIN_TYPE_ALLOWED = ['src/chains/', 'src/config.ts', 'src/sandbox/'];

const CHAIN_TYPES = new Set(['bitcoin', 'evm']);
const TYPE_NAMES = new Set(['type', 'chain_type', 'chainType']);
const EQUALITY = new Set([ts.SyntaxKind.EqualsEqualsEqualsToken, ts.SyntaxKind.ExclamationEqualsEqualsToken, ts.SyntaxKind.EqualsEqualsToken, ts.SyntaxKind.ExclamationEqualsToken]);

/** The name an operand ends in (`cfg.type`, `cfg?.type`, `v.chain_type`, `type`), through parentheses and `!`. */
function nameOf(e: ts.Expression): string | undefined {
  while (ts.isParenthesizedExpression(e) || ts.isNonNullExpression(e)) e = e.expression;
  if (ts.isIdentifier(e)) return e.text;
  if (ts.isPropertyAccessExpression(e)) return e.name.text;
  if (ts.isElementAccessExpression(e) && ts.isStringLiteral(e.argumentExpression)) return e.argumentExpression.text;
  return undefined;
}
const literalOf = (e: ts.Expression): string | undefined => (ts.isStringLiteral(e) || ts.isNoSubstitutionTemplateLiteral(e) ? e.text : undefined);

/** Whether comparing `a` with `b` looks at a chain's type. */
function comparesChainType(a: ts.Expression, b: ts.Expression): boolean {
  for (const [x, y] of [[a, b], [b, a]] as const) {
    const lit = literalOf(y);
    const name = nameOf(x);
    if (lit === 'evm') return true;
    if (lit !== undefined && CHAIN_TYPES.has(lit) && name !== undefined && TYPE_NAMES.has(name)) return true;
    if (name === 'chain_type' || name === 'chainType') return true;
  }
  return false;
}

export interface ChainTypeBranch {
  file: string;
  line: number;
  text: string;
}

/** The chain-type comparisons in one file's source (`file` is only for the answer). */
export function chainTypeBranches(file: string, source: string): ChainTypeBranch[] {
  const sf = ts.createSourceFile(file, source, ts.ScriptTarget.Latest, true, file.endsWith('x') ? ts.ScriptKind.TSX : ts.ScriptKind.TS);
  const out: ChainTypeBranch[] = [];
  const add = (n: ts.Node) => out.push({ file, line: sf.getLineAndCharacterOfPosition(n.getStart(sf)).line + 1, text: n.getText(sf).slice(0, 120) });
  const visit = (n: ts.Node) => {
    if (ts.isBinaryExpression(n) && EQUALITY.has(n.operatorToken.kind) && comparesChainType(n.left, n.right)) add(n);
    if (ts.isSwitchStatement(n)) {
      const name = nameOf(n.expression);
      const onType = name !== undefined && TYPE_NAMES.has(name);
      for (const c of n.caseBlock.clauses) {
        if (!ts.isCaseClause(c)) continue;
        const lit = literalOf(c.expression);
        if (lit !== undefined && CHAIN_TYPES.has(lit) && (onType || lit === 'evm')) add(c.expression);
      }
    }
    ts.forEachChild(n, visit);
  };
  visit(sf);
  return out;
}

function sourceFiles(dir: string): string[] {
  return readdirSync(path.join(root, dir), { recursive: true, withFileTypes: true })
    .filter((d) => d.isFile() && /\.tsx?$/.test(d.name) && !d.name.endsWith('.d.ts'))
    .map((d) => path.relative(root, path.join(d.parentPath, d.name)).split(path.sep).join('/'));
}

/** The chain-type comparisons in src/ and workers/ outside the allowed places. */
export function checkChainTypeBranches(): { violations: ChainTypeBranch[] } {
  const violations: ChainTypeBranch[] = [];
  for (const file of [...sourceFiles('src'), ...sourceFiles('workers')]) {
    if (CHAIN_TYPE_ALLOWED.some((p) => file === p || file.startsWith(p))) continue;
    violations.push(...chainTypeBranches(file, readFileSync(path.join(root, file), 'utf8')));
  }
  return { violations };
}

export const describeBranch = (b: ChainTypeBranch): string => `${b.file}:${b.line}: ${b.text}`;

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const r = await checkImports();
  for (const v of r.violations) console.error(`import violation: ${describeViolation(v)}`);
  console.log(`import rules: ${r.cruised} modules read, ${r.violations.length} violation(s)`);
  const b = checkChainTypeBranches();
  for (const v of b.violations) console.error(`chain-type branch outside src/chains/: ${describeBranch(v)}`);
  console.log(`chain-type rule: ${b.violations.length} violation(s)`);
  process.exitCode = r.violations.length + b.violations.length > 0 ? 1 : 0;
}
