/**
 * `npm run build:contracts`: compiles contracts/**\/*.sol and writes contracts/artifacts/*.json and
 * the TypeScript artifact modules (src/chains/evm/artifacts.ts, src/sandbox/contract-artifacts.ts,
 * test/support/contract-artifacts.ts; see contracts/compile.ts). Removes JSON artifacts of contracts that
 * no longer exist.
 */
import { mkdirSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { ARTIFACTS_DIR, REPO_ROOT, compileContracts } from './compile.ts';

const started = Date.now();
const { artifacts, files, warnings } = compileContracts();
for (const w of warnings) console.warn(w);

mkdirSync(ARTIFACTS_DIR, { recursive: true });
const keep = new Set(artifacts.map((a) => `${a.contractName}.json`));
for (const f of readdirSync(ARTIFACTS_DIR)) {
  if (f.endsWith('.json') && !keep.has(f)) rmSync(join(ARTIFACTS_DIR, f));
}
for (const [rel, content] of files) {
  const full = join(REPO_ROOT, rel);
  mkdirSync(dirname(full), { recursive: true });
  writeFileSync(full, content);
}
console.log(
  `Compiled ${artifacts.length} contracts (${artifacts.map((a) => a.contractName).join(', ')}) in ${Date.now() - started} ms; wrote ${files.size} files.`,
);
