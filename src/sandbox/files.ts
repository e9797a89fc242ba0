/**
 * The sandbox's files in the local data folder (`$KASSA_DATA_DIR/sandbox`, `.kassa/sandbox` by
 * default). Files holding secrets (demo API key, webhook secret, wallet seed, database URL) are
 * written with mode 0600.
 *
 * - `chains.json`  the chains file (KASSA_CONFIG) of the running sandbox: rewritten on every start.
 * - `state.json`   the demo merchant, its API key and webhook endpoint: created once, reused.
 * - `wallet.json`  the demo merchant's Bitcoin seed (random, generated once).
 * - `runtime.json` URLs and ports of the running sandbox (for `kassa sandbox …` commands; its
 *   format and paths are in src/cli/sandbox-runtime.ts, which the administration commands read).
 * - `webhooks.log` one JSON line per webhook the built-in receiver verified (or rejected).
 * - `evm-snapshots.json` the last hardhat `evm_snapshot`s the sandbox took (for `kassa sandbox
 *   reorg --chain ethereum`), tied to one run of the sandbox (`runtime.json`'s `started_at`).
 */
import { chmodSync, mkdirSync, renameSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { KassaError } from '../errors.ts';
import { isAlive, readJson, sandboxPaths, type SandboxRuntime } from '../cli/sandbox-runtime.ts';

/** The demo merchant, created once and reused on later starts. */
export interface SandboxState {
  merchant_id: string;
  api_key_id: string;
  /** The demo API key (a sandbox-only convenience: printed on start, file mode 0600). */
  api_key: string;
  webhook_endpoint_id: string | null;
  webhook_secret: string | null;
  /** Database the merchant lives in (a different DATABASE_URL gets its own demo merchant). */
  database: string;
}

export function writePrivateJson(file: string, value: unknown): void {
  mkdirSync(path.dirname(file), { recursive: true });
  const tmp = `${file}.${process.pid}.tmp`;
  writeFileSync(tmp, JSON.stringify(value, null, 2) + '\n', { mode: 0o600 });
  chmodSync(tmp, 0o600);
  renameSync(tmp, file);
}

/** The running sandbox's runtime file, or a clear error when the sandbox is not running. */
export function readRuntime(dataDir: string): SandboxRuntime {
  const paths = sandboxPaths(dataDir);
  const runtime = readJson<SandboxRuntime>(paths.runtime);
  if (!runtime) {
    throw new KassaError('sandbox_not_running', `No running sandbox found (${paths.runtime} is missing). Start it with "npm run dev".`, { retryable: false });
  }
  if (!isAlive(runtime.pid)) {
    throw new KassaError('sandbox_not_running', `The sandbox (pid ${runtime.pid}) is not running any more. Start it with "npm run dev".`, { retryable: false });
  }
  return runtime;
}

export function readState(dataDir: string): SandboxState {
  const paths = sandboxPaths(dataDir);
  const state = readJson<SandboxState>(paths.state);
  if (!state) throw new KassaError('sandbox_not_running', `No sandbox merchant found (${paths.state}). Start the sandbox with "npm run dev".`, { retryable: false });
  return state;
}

/** How many EVM snapshots `evm-snapshots.json` keeps (the newest). */
export const MAX_EVM_SNAPSHOTS = 20;

/** A hardhat `evm_snapshot` taken by the sandbox: the chain as it was at block `height`. */
export interface EvmSnapshot {
  /** The id `evm_snapshot` returned (hardhat never reuses one; reverting to it consumes it). */
  id: string;
  /** Block number and hash of the chain's tip when the snapshot was taken. */
  height: number;
  hash: string;
  /** What took it: `start`, `pay`, `mine`, `reorg`. */
  by: string;
}

interface EvmSnapshotsFile {
  /** `started_at` of the sandbox run (runtime.json) whose hardhat node holds these snapshots. */
  sandbox_started_at: string;
  /** Oldest first (= the order hardhat took them). */
  snapshots: EvmSnapshot[];
}

/** The recorded snapshots of this sandbox run, oldest first ([] for another run's file). */
export function readEvmSnapshots(dataDir: string, runtime: SandboxRuntime): EvmSnapshot[] {
  const file = readJson<EvmSnapshotsFile>(sandboxPaths(dataDir).evmSnapshots);
  return file && file.sandbox_started_at === runtime.started_at && Array.isArray(file.snapshots) ? file.snapshots : [];
}

/** Replaces the recorded snapshots (keeping the newest MAX_EVM_SNAPSHOTS). */
export function writeEvmSnapshots(dataDir: string, runtime: SandboxRuntime, snapshots: EvmSnapshot[]): void {
  const file: EvmSnapshotsFile = { sandbox_started_at: runtime.started_at, snapshots: snapshots.slice(-MAX_EVM_SNAPSHOTS) };
  writePrivateJson(sandboxPaths(dataDir).evmSnapshots, file);
}

/** Appends snapshots just taken (read-modify-write: the sandbox commands run one at a time). */
export function recordEvmSnapshots(dataDir: string, runtime: SandboxRuntime, added: EvmSnapshot[]): void {
  if (added.length === 0) return;
  writeEvmSnapshots(dataDir, runtime, [...readEvmSnapshots(dataDir, runtime), ...added]);
}

