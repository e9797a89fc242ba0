import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ARTIFACTS_DIR, REPO_ROOT, compileContracts } from '../../contracts/compile.ts';

describe('contract artifacts', () => {
  it('the committed artifacts equal a fresh compile (run `npm run build:contracts` if this fails)', () => {
    const { files, artifacts, warnings } = compileContracts();
    expect(warnings).toEqual([]);
    expect(artifacts.map((a) => a.contractName)).toEqual(
      expect.arrayContaining(['Forwarder', 'ForwarderFactory', 'TestUSDC', 'TestUSDT', 'EthSender']),
    );
    for (const [rel, content] of files) {
      const full = join(REPO_ROOT, rel);
      expect(existsSync(full), `${rel} is missing`).toBe(true);
      expect(readFileSync(full, 'utf8'), `${rel} is stale`).toBe(content);
    }
    const committedJson = readdirSync(ARTIFACTS_DIR).filter((n) => n.endsWith('.json')).sort();
    expect(committedJson).toEqual(artifacts.map((a) => `${a.contractName}.json`).sort());
  }, 120_000);

  it('compiling twice gives identical output', () => {
    const a = compileContracts();
    const b = compileContracts();
    expect([...a.files.entries()]).toEqual([...b.files.entries()]);
  }, 120_000);
});
