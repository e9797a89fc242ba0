/**
 * Compiles Kassa's Solidity sources with the `solc` npm package (solc-js, pinned 0.8.28) and
 * renders the committed outputs:
 *   - `contracts/artifacts/<Name>.json` ({ contractName, sourceName, abi, bytecode, deployedBytecode })
 *   - one TypeScript module per source folder (each ABI `as const`, bytecodes typed `0x${string}`
 *     for viem), so production code never carries the sandbox's or the tests' contracts:
 *       contracts/*.sol          → src/chains/evm/artifacts.ts     (Kassa's contracts: production)
 *       contracts/sandbox/*.sol  → src/sandbox/contract-artifacts.ts (test tokens for local chains)
 *       contracts/test/*.sol     → test/support/contract-artifacts.ts (contracts only tests deploy)
 *
 * Settings are fixed (optimizer on, 200 runs, evmVersion paris for the widest EVM-chain support,
 * no metadata hash) so the output is deterministic: `compileContracts()` run in a test must equal
 * the committed files (see test/contracts/artifacts.test.ts). `contracts/build.ts` writes them.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join, relative, resolve, sep } from 'node:path';
import { fileURLToPath } from 'node:url';
import { KassaError } from '../src/errors.ts';

/** The solc version the sources are pinned to (`pragma solidity 0.8.28`). */
export const SOLC_VERSION = '0.8.28';

/** Absolute path of the `contracts/` directory. */
export const CONTRACTS_DIR = fileURLToPath(new URL('.', import.meta.url));
/** Absolute path of the repository root. */
export const REPO_ROOT = resolve(CONTRACTS_DIR, '..');
/** Where the JSON artifacts go (absolute). */
export const ARTIFACTS_DIR = join(CONTRACTS_DIR, 'artifacts');
/** The generated TypeScript modules (paths relative to the repository root), by source folder. */
export const ARTIFACT_MODULES = {
  production: 'src/chains/evm/artifacts.ts',
  sandbox: 'src/sandbox/contract-artifacts.ts',
  test: 'test/support/contract-artifacts.ts',
} as const;

/** The module a contract's artifact goes to: by the folder of its source (`sandbox/…`, `test/…`, else production). */
export function artifactModuleOf(sourceName: string): string {
  if (sourceName.startsWith('sandbox/')) return ARTIFACT_MODULES.sandbox;
  if (sourceName.startsWith('test/')) return ARTIFACT_MODULES.test;
  return ARTIFACT_MODULES.production;
}

/** Fixed compiler settings (changing them changes every bytecode and the factory address). */
export const SOLC_SETTINGS = {
  optimizer: { enabled: true, runs: 200 },
  evmVersion: 'paris',
  metadata: { bytecodeHash: 'none' },
  outputSelection: { '*': { '*': ['abi', 'evm.bytecode.object', 'evm.deployedBytecode.object'] } },
} as const;

export interface ContractArtifact {
  contractName: string;
  /** Source unit name, relative to contracts/ with forward slashes (e.g. `test/EthSender.sol`). */
  sourceName: string;
  abi: unknown[];
  bytecode: `0x${string}`;
  deployedBytecode: `0x${string}`;
}

export interface CompileResult {
  /** Deployable contracts (non-empty bytecode), sorted by name. Interfaces are left out. */
  artifacts: ContractArtifact[];
  /** Rendered files: path relative to the repo root (forward slashes) -> exact file content. */
  files: Map<string, string>;
  /** Compiler warnings, formatted. */
  warnings: string[];
}

interface SolcModule {
  compile(input: string, callbacks?: { import: (path: string) => { contents: string } | { error: string } }): string;
  version(): string;
}

interface SolcError {
  severity: 'error' | 'warning' | 'info';
  formattedMessage?: string;
  message: string;
}

interface SolcOutput {
  errors?: SolcError[];
  contracts?: Record<
    string,
    Record<string, { abi: unknown[]; evm: { bytecode: { object: string }; deployedBytecode: { object: string } } }>
  >;
}

const toPosix = (p: string): string => p.split(sep).join('/');

/** All `.sol` files under contracts/ (recursively, skipping artifacts/), as sorted source unit names. */
export function listSources(dir: string = CONTRACTS_DIR): string[] {
  const out: string[] = [];
  const walk = (d: string): void => {
    for (const entry of readdirSync(d, { withFileTypes: true })) {
      const full = join(d, entry.name);
      if (entry.isDirectory()) {
        if (entry.name === 'artifacts' || entry.name === 'node_modules' || entry.name.startsWith('.')) continue;
        walk(full);
      } else if (entry.isFile() && entry.name.endsWith('.sol')) {
        out.push(toPosix(relative(dir, full)));
      }
    }
  };
  walk(dir);
  return out.sort();
}

function loadSolc(): SolcModule {
  const require = createRequire(import.meta.url);
  const solc = require('solc') as SolcModule;
  const version = solc.version();
  if (!version.startsWith(`${SOLC_VERSION}+`)) {
    throw new KassaError('solc_version_mismatch', `Expected solc ${SOLC_VERSION}, the installed solc is ${version}.`, {
      retryable: false,
    });
  }
  return solc;
}

const lowerFirst = (s: string): string => s.charAt(0).toLowerCase() + s.slice(1);

/** Renders one artifacts module (see ARTIFACT_MODULES) from its artifacts (deterministic text). */
export function renderArtifactsTs(artifacts: ContractArtifact[]): string {
  const lines: string[] = [
    '// GENERATED by `npm run build:contracts` (contracts/build.ts) from contracts/**/*.sol — do not edit.',
    `// solc ${SOLC_VERSION}, optimizer 200 runs, evmVersion ${SOLC_SETTINGS.evmVersion}, no metadata hash.`,
    '// test/contracts/artifacts.test.ts fails when this file is stale.',
    '',
  ];
  for (const a of artifacts) {
    const base = lowerFirst(a.contractName);
    lines.push(`/** ABI of \`${a.contractName}\` (${a.sourceName}). */`);
    lines.push(`export const ${base}Abi = ${JSON.stringify(a.abi, null, 2)} as const;`);
    lines.push('');
    lines.push(`/** Creation bytecode of \`${a.contractName}\`. */`);
    lines.push(`export const ${base}Bytecode: \`0x\${string}\` = '${a.bytecode}';`);
    lines.push('');
    lines.push(`/** Runtime bytecode of \`${a.contractName}\`. */`);
    lines.push(`export const ${base}DeployedBytecode: \`0x\${string}\` = '${a.deployedBytecode}';`);
    lines.push('');
  }
  return lines.join('\n');
}

/**
 * Compiles every `.sol` under `contracts/` in memory and renders the artifact files.
 * Throws a `KassaError` (`solc_compile_failed`) listing the compiler errors, if any.
 */
export function compileContracts(opts: { contractsDir?: string } = {}): CompileResult {
  const dir = opts.contractsDir ?? CONTRACTS_DIR;
  const solc = loadSolc();
  const sources: Record<string, { content: string }> = {};
  for (const name of listSources(dir)) {
    sources[name] = { content: readFileSync(join(dir, name), 'utf8') };
  }
  const input = { language: 'Solidity', sources, settings: SOLC_SETTINGS };
  const output = JSON.parse(
    solc.compile(JSON.stringify(input), {
      import: (path: string) => {
        try {
          return { contents: readFileSync(join(dir, path), 'utf8') };
        } catch {
          return { error: `File not found: ${path}` };
        }
      },
    }),
  ) as SolcOutput;

  const errors = (output.errors ?? []).filter((e) => e.severity === 'error');
  if (errors.length > 0) {
    throw new KassaError(
      'solc_compile_failed',
      `Solidity compilation failed:\n${errors.map((e) => e.formattedMessage ?? e.message).join('\n')}`,
      { retryable: false },
    );
  }
  const warnings = (output.errors ?? [])
    .filter((e) => e.severity === 'warning')
    .map((e) => e.formattedMessage ?? e.message);

  const artifacts: ContractArtifact[] = [];
  for (const [sourceName, contracts] of Object.entries(output.contracts ?? {})) {
    for (const [contractName, c] of Object.entries(contracts)) {
      if (c.evm.bytecode.object.length === 0) continue; // interfaces / abstract contracts
      artifacts.push({
        contractName,
        sourceName,
        abi: c.abi,
        bytecode: `0x${c.evm.bytecode.object}`,
        deployedBytecode: `0x${c.evm.deployedBytecode.object}`,
      });
    }
  }
  artifacts.sort((a, b) => (a.contractName < b.contractName ? -1 : a.contractName > b.contractName ? 1 : 0));
  const seen = new Set<string>();
  for (const a of artifacts) {
    if (seen.has(a.contractName)) {
      throw new KassaError('solc_duplicate_contract', `Two contracts are named ${a.contractName}.`, { retryable: false });
    }
    seen.add(a.contractName);
  }

  const files = new Map<string, string>();
  const artifactsRel = toPosix(relative(REPO_ROOT, ARTIFACTS_DIR));
  for (const a of artifacts) {
    files.set(`${artifactsRel}/${a.contractName}.json`, `${JSON.stringify(a, null, 2)}\n`);
  }
  for (const module of Object.values(ARTIFACT_MODULES)) {
    files.set(module, renderArtifactsTs(artifacts.filter((a) => artifactModuleOf(a.sourceName) === module)));
  }
  return { artifacts, files, warnings };
}
