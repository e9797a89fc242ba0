/**
 * The import rules of docs/architecture.md §3 (.dependency-cruiser.cjs), checked on every
 * `npm test`: no module breaks one. Also the layout rule checked beside them: outside src/chains/
 * (and src/config.ts, src/sandbox/) no code compares a chain's type.
 */
import { execFileSync } from 'node:child_process';
import { rmSync, writeFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { chainTypeBranches, checkChainTypeBranches, checkImports, describeBranch, describeViolation } from '../../scripts/check-imports.ts';

describe('import rules (dependency-cruiser)', () => {
  it('has no violation', async () => {
    const r = await checkImports();
    expect(r.cruised).toBeGreaterThan(100); // it read the code base, not an empty folder
    expect(r.violations.map(describeViolation)).toEqual([]);
  }, 120_000);
});

describe('chain-type rule: nothing outside src/chains/ branches on a chain type', () => {
  it('finds comparisons of a chain type and leaves other comparisons alone', () => {
    const src = [
      "if (cfg.type === 'bitcoin') a();", // 1
      "const n = cfg?.type !== 'evm';", // 2
      "if (kind === 'evm') b();", // 3
      "const l = v.chain_type == other;", // 4
      "switch (chain.type) { case 'bitcoin': break; case 'evm': break; }", // 5 (two cases)
      "if (e.type === 'invoice.marked') c();", // 6: an event type
      "if (chain === 'bitcoin') d();", // 7: a chain key (the sandbox's chain names)
      "if (m.method === 'BTC') e();", // 8: a payment method id
    ].join('\n');
    expect(chainTypeBranches('x.ts', src).map((b) => b.line)).toEqual([1, 2, 3, 4, 5, 5]);
  });

  it('catches the branch the checkout had before it asked the family (src/checkout/wallet.ts before this rule)', () => {
    // The file as it was: `if (cfg?.type !== 'evm' || out[m.chain]) continue;`
    const before = "export function walletNetworks(inv, chains) {\n  for (const m of inv.payment_methods) {\n    const cfg = chains[m.chain];\n    if (cfg?.type !== 'evm' || out[m.chain]) continue;\n  }\n}\n";
    expect(chainTypeBranches('src/checkout/wallet.ts', before).map(describeBranch)).toEqual(["src/checkout/wallet.ts:4: cfg?.type !== 'evm'"]);
  });

  it('has no violation in src/ and workers/', () => {
    const r = checkChainTypeBranches();
    expect(r.violations.map(describeBranch)).toEqual([]);
  });

  it('makes `npm run check:imports` fail on a violation', () => {
    // The script's exit code is what CI sees: a module outside src/chains/ with a chain-type
    // comparison must fail it. The check reads the real tree, so the violation is a file there.
    const file = 'src/zz-chain-type-violation.ts';
    writeFileSync(file, "export const isEvm = (c: { type: string }) => c.type === 'evm';\n");
    try {
      let status = 0;
      let stderr = '';
      try {
        execFileSync('npx', ['tsx', 'scripts/check-imports.ts'], { encoding: 'utf8', stdio: 'pipe' });
      } catch (err) {
        status = (err as { status: number }).status;
        stderr = (err as { stderr: string }).stderr;
      }
      expect(status).toBe(1);
      expect(stderr).toContain(`chain-type branch outside src/chains/: ${file}:1: c.type === 'evm'`);
    } finally {
      rmSync(file);
    }
  }, 120_000);
});
