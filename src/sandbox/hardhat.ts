/**
 * The sandbox's local EVM chain: a `hardhat node` child process (in memory, chain id 31337, the
 * well-known dev mnemonic, automine) with Kassa's factory and test tokens deployed by account 0.
 * The chain starts empty on every start, so the deployment (and its addresses) is the same each
 * time.
 */
import { fileURLToPath } from 'node:url';
import { createPublicClient, createWalletClient, http, type Hex, type PublicClient } from 'viem';
import { privateKeyToAccount, privateKeyToAddress } from 'viem/accounts';
import { hardhat } from 'viem/chains';
import { deployDevContracts } from './test-tokens.ts';
import type { EvmSnapshot } from './files.ts';
import { spawnManaged, type ManagedChild } from './procs.ts';

const REPO_ROOT = fileURLToPath(new URL('../..', import.meta.url));
const HARDHAT_BIN = fileURLToPath(new URL('../../node_modules/hardhat/internal/cli/bootstrap.js', import.meta.url));
const HARDHAT_CONFIG = fileURLToPath(new URL('./hardhat.config.cjs', import.meta.url));

export const SANDBOX_CHAIN_ID = 31337;

/** Hardhat dev accounts 0..3 ("test test … junk"): 0 deploys, 1 is the merchant treasury, 2 pays. */
const KEYS: readonly Hex[] = [
  '0xac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80',
  '0x59c6995e998f97a5a0044966f0945389dc9e86dae88c7a8412f4603b6b78690d',
  '0x5de4111afa1a4b94908f83103eb1f1706367c2e68ca870fc3fb9a804cdab365a',
  '0x7c852118294e51e653712a81e05800f419141751be58f605c371e15141b007a6',
];
export const HARDHAT_ACCOUNTS = KEYS.map((privateKey) => ({ privateKey, address: privateKeyToAddress(privateKey) }));

async function chainId(url: string): Promise<number | null> {
  try {
    const res = await fetch(url, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'eth_chainId', params: [] }),
      signal: AbortSignal.timeout(1_000),
    });
    const body = (await res.json()) as { result?: string };
    return typeof body.result === 'string' ? Number.parseInt(body.result, 16) : null;
  } catch {
    return null;
  }
}

export function evmClients(url: string, privateKey: Hex) {
  const chain = { ...hardhat, rpcUrls: { default: { http: [url] } } };
  const publicClient = createPublicClient({ chain, transport: http(url) }) as PublicClient;
  const walletClient = createWalletClient({ account: privateKeyToAccount(privateKey), chain, transport: http(url) });
  return { publicClient, walletClient };
}

/** One JSON-RPC call to the sandbox's hardhat node (for the `evm_*` / `hardhat_*` methods). */
export async function evmRpc<T>(url: string, method: string, params: unknown[] = []): Promise<T> {
  const res = await fetch(url, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ jsonrpc: '2.0', id: 1, method, params }),
    signal: AbortSignal.timeout(30_000),
  });
  const body = (await res.json()) as { result?: T; error?: { message?: string } };
  if (body.error || !('result' in body)) throw new Error(`${method} on ${url} failed: ${body.error?.message ?? `HTTP ${res.status}`}`);
  return body.result as T;
}

export interface EvmBlockRef {
  number: number;
  hash: string;
  timestamp: number;
  transactions: string[];
}

/** A block (transaction hashes only) by number or tag. */
export async function evmBlock(url: string, block: number | 'latest'): Promise<EvmBlockRef> {
  const b = await evmRpc<{ number: string; hash: string; timestamp: string; transactions: string[] } | null>(
    url, 'eth_getBlockByNumber', [typeof block === 'number' ? `0x${block.toString(16)}` : block, false]);
  if (!b) throw new Error(`block ${block} not found on ${url}`);
  return { number: Number.parseInt(b.number, 16), hash: b.hash, timestamp: Number.parseInt(b.timestamp, 16), transactions: b.transactions };
}

/** `evm_snapshot` of the chain as it is now, with the tip it captures. */
export async function takeEvmSnapshot(url: string, by: string): Promise<EvmSnapshot> {
  const id = await evmRpc<string>(url, 'evm_snapshot');
  const tip = await evmBlock(url, 'latest');
  return { id, height: tip.number, hash: tip.hash, by };
}

export interface SandboxEvm {
  proc: ManagedChild;
  url: string;
  factory: string;
  implementation: string;
  usdc: string;
  usdt: string;
}

export async function startSandboxEvm(port: number, env: NodeJS.ProcessEnv, timeoutMs = 60_000): Promise<SandboxEvm> {
  const proc = spawnManaged('ethereum', process.execPath, [HARDHAT_BIN, '--config', HARDHAT_CONFIG, 'node', '--hostname', '127.0.0.1', '--port', String(port)], {
    cwd: REPO_ROOT,
    env: { ...env, HARDHAT_DISABLE_TELEMETRY_PROMPT: 'true', DO_NOT_TRACK: '1', NO_COLOR: '1' },
    // The node prints its 20 accounts and their keys: well known, but noise here.
    filter: (line) => line.trim() !== '' && !/^(Account #|Private Key:|WARNING: These accounts|Any funds sent|Accounts$|=+$)/.test(line.trim()),
  });
  const url = `http://127.0.0.1:${port}`;
  const deadline = Date.now() + timeoutMs;
  let id: number | null = null;
  while (Date.now() < deadline) {
    if (proc.child.exitCode !== null) throw new Error(`hardhat node exited during start-up (port ${port})`);
    id = await chainId(url);
    if (id !== null) break;
    await new Promise((r) => setTimeout(r, 200));
  }
  if (id === null) {
    await proc.stop();
    throw new Error(`hardhat node did not answer on ${url} within ${timeoutMs} ms`);
  }
  if (id !== SANDBOX_CHAIN_ID) {
    await proc.stop();
    throw new Error(`the node on ${url} is chain id ${id}, expected ${SANDBOX_CHAIN_ID}`);
  }
  const { publicClient, walletClient } = evmClients(url, HARDHAT_ACCOUNTS[0]!.privateKey);
  const c = await deployDevContracts({ walletClient, publicClient });
  return { proc, url, factory: c.factory, implementation: c.implementation, usdc: c.testUsdc, usdt: c.testUsdt };
}
