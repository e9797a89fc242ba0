/**
 * The running sandbox's runtime file (`$KASSA_DATA_DIR/sandbox/runtime.json`) and the paths of the
 * sandbox's data folder: the contract between the sandbox, which writes the file on start
 * (src/sandbox/dev.ts), and the CLI's administration commands, which follow a running sandbox
 * through it (src/cli/context.ts). Production code reads this module, never src/sandbox/.
 */
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';

export interface SandboxPaths {
  dir: string;
  chains: string;
  state: string;
  wallet: string;
  runtime: string;
  webhooksLog: string;
  evmSnapshots: string;
}

export function sandboxPaths(dataDir: string): SandboxPaths {
  const dir = path.resolve(dataDir, 'sandbox');
  return {
    dir,
    chains: path.join(dir, 'chains.json'),
    state: path.join(dir, 'state.json'),
    wallet: path.join(dir, 'wallet.json'),
    runtime: path.join(dir, 'runtime.json'),
    webhooksLog: path.join(dir, 'webhooks.log'),
    evmSnapshots: path.join(dir, 'evm-snapshots.json'),
  };
}

/** Where the running sandbox listens. */
export interface SandboxRuntime {
  pid: number;
  started_at: string;
  api_url: string;
  /** The API's PUBLIC_URL (links in CLI output, e.g. dashboard setup links). */
  public_url?: string;
  database_url: string;
  redis_url?: string;
  bitcoin: { rpc_url: string; esplora_url: string; rpc_user: string; rpc_password: string };
  ethereum: {
    rpc_url: string;
    chain_id: number;
    factory: string;
    implementation: string;
    usdc: string;
    usdt: string;
    /** Hardhat account 0: deployed the contracts, holds the test tokens. */
    deployer_private_key: string;
    /** Hardhat account 2: pays ETH invoices. */
    payer_private_key: string;
  };
  webhooks_url: string | null;
}

export function readJson<T>(file: string): T | null {
  if (!existsSync(file)) return null;
  return JSON.parse(readFileSync(file, 'utf8')) as T;
}

export function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}
