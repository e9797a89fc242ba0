/**
 * Starts a real `hardhat node` (Hardhat 2) on a free local port for tests and the sandbox.
 *
 *   const node = await startHardhatNode();
 *   // ... viem clients on node.url, node.accounts[0].privateKey ...
 *   await node.stop();
 *
 * Uses test/support/hardhat.config.cjs (chainId 31337, the well-known dev mnemonic, no Solidity
 * config so nothing is compiled or downloaded). The child is killed in stop() and on process exit.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createServer } from 'node:net';
import { fileURLToPath } from 'node:url';
import { privateKeyToAddress } from 'viem/accounts';
import type { Address, Hex } from 'viem';

const REPO_ROOT = fileURLToPath(new URL('../..', import.meta.url));
const HARDHAT_BIN = fileURLToPath(new URL('../../node_modules/.bin/hardhat', import.meta.url));
const HARDHAT_CONFIG = fileURLToPath(new URL('./hardhat.config.cjs', import.meta.url));

export const HARDHAT_CHAIN_ID = 31337;

/** Private keys of the hardhat dev accounts 0..9 ("test test ... junk"), 10,000 ETH each. */
export const HARDHAT_PRIVATE_KEYS: readonly Hex[] = [
  '0xac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80',
  '0x59c6995e998f97a5a0044966f0945389dc9e86dae88c7a8412f4603b6b78690d',
  '0x5de4111afa1a4b94908f83103eb1f1706367c2e68ca870fc3fb9a804cdab365a',
  '0x7c852118294e51e653712a81e05800f419141751be58f605c371e15141b007a6',
  '0x47e179ec197488593b187f80a00eb0da91f1b9d0b13f8733639f19c30a34926a',
  '0x8b3a350cf5c34c9194ca85829a2df0ec3153be0318b5e2d3348e872092edffba',
  '0x92db14e403b83dfe3df233f83dfa3a0d7096f21ca9b0d6d6b8d88b2b4ec1564e',
  '0x4bbbf85ce3377467afe5d46f804f221813b2bb87f24d81f60f1fcdbf7cbf4356',
  '0xdbda1821b80551c9d65939329250298aa3472ba22feea921c0cf5d620ea67b97',
  '0x2a871d0798f97d79848a013d4936a73bf4cc922c825d33c1cf7073dff6d409c6',
];

export interface HardhatAccount {
  address: Address;
  privateKey: Hex;
}

/** The hardhat dev accounts 0..9 (address + private key). */
export const HARDHAT_ACCOUNTS: readonly HardhatAccount[] = HARDHAT_PRIVATE_KEYS.map((privateKey) => ({
  address: privateKeyToAddress(privateKey),
  privateKey,
}));

export interface HardhatNode {
  /** JSON-RPC URL, e.g. http://127.0.0.1:40123 */
  url: string;
  port: number;
  chainId: number;
  accounts: readonly HardhatAccount[];
  /** Kills the node and waits for it to exit. Idempotent. */
  stop(): Promise<void>;
}

const live = new Set<ChildProcess>();
let exitHookInstalled = false;
function installExitHook(): void {
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  process.on('exit', () => {
    for (const child of live) child.kill('SIGKILL');
  });
}

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.unref();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const addr = srv.address();
      const port = typeof addr === 'object' && addr ? addr.port : 0;
      srv.close(() => resolve(port));
    });
  });
}

async function rpcChainId(url: string): Promise<number | null> {
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

async function startOnce(port: number, timeoutMs: number, expectedChainId: number): Promise<HardhatNode> {
  // Run the bin (a JS file) with this Node binary: no PATH lookup, no shebang.
  const child = spawn(process.execPath, [HARDHAT_BIN, '--config', HARDHAT_CONFIG, 'node', '--hostname', '127.0.0.1', '--port', String(port)], {
    cwd: REPO_ROOT,
    stdio: ['ignore', 'pipe', 'pipe'],
    env: {
      HARDHAT_DISABLE_TELEMETRY_PROMPT: 'true',
      DO_NOT_TRACK: '1',
      CI: 'true',
      NO_COLOR: '1',
      KASSA_HARDHAT_CHAIN_ID: String(expectedChainId),
    },
  });
  live.add(child);
  installExitHook();

  let output = '';
  const keep = (chunk: Buffer): void => {
    output = (output + chunk.toString('utf8')).slice(-8_000);
  };
  child.stdout?.on('data', keep);
  child.stderr?.on('data', keep);

  let exited = false;
  const exitedPromise = new Promise<void>((resolve) => {
    child.once('exit', () => {
      exited = true;
      live.delete(child);
      resolve();
    });
  });

  const stop = async (): Promise<void> => {
    if (exited) return;
    child.kill('SIGTERM');
    const timer = setTimeout(() => child.kill('SIGKILL'), 3_000);
    await exitedPromise;
    clearTimeout(timer);
  };

  const url = `http://127.0.0.1:${port}`;
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (exited) throw new Error(`hardhat node exited during startup (port ${port}):\n${output}`);
    const chainId = await rpcChainId(url);
    if (chainId !== null) {
      if (chainId !== expectedChainId) {
        await stop();
        throw new Error(`hardhat node on ${url} answered chain id ${chainId}, expected ${expectedChainId}`);
      }
      return { url, port, chainId, accounts: HARDHAT_ACCOUNTS, stop };
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  await stop();
  throw new Error(`hardhat node did not answer eth_chainId within ${timeoutMs} ms:\n${output}`);
}

/**
 * Spawns `node_modules/.bin/hardhat node --hostname 127.0.0.1 --port <free port>` and resolves
 * once `eth_chainId` answers the expected chain id (31337 unless `chainId` is given). Retries on another port if the node dies at startup (port race).
 */
export async function startHardhatNode(opts: { timeoutMs?: number; /** Default 31337. */ chainId?: number } = {}): Promise<HardhatNode> {
  const timeoutMs = opts.timeoutMs ?? 30_000;
  let lastError: unknown;
  for (let attempt = 0; attempt < 3; attempt++) {
    try {
      return await startOnce(await freePort(), timeoutMs, opts.chainId ?? HARDHAT_CHAIN_ID);
    } catch (err) {
      lastError = err;
    }
  }
  throw lastError;
}
