/**
 * Test helpers for the Bitcoin regtest devnet: spawn it as a real child process
 * (`node --import tsx src/sandbox/devnet/bitcoin/main.ts --port 0`), wait for its JSON line,
 * and talk to it with Kassa's own RPC/Esplora clients. Wallet helpers call the devnet's
 * Core-compatible wallet RPCs (plus the devnet-only `devnet_*` test methods).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { createInterface } from 'node:readline';
import { createBitcoinRpcClient, type BitcoinRpcClient } from '../../src/chains/bitcoin/rpc.ts';
import { createEsploraClient, type EsploraClient } from '../../src/chains/bitcoin/esplora.ts';

const REPO_ROOT = fileURLToPath(new URL('../../', import.meta.url));

export interface DevnetProcess {
  rpcUrl: string;
  esploraUrl: string;
  rpcUser: string;
  rpcPassword: string;
  rpc: BitcoinRpcClient;
  esplora: EsploraClient;
  wallet: DevnetWallet;
  child: ChildProcess;
  stop(): Promise<void>;
}

export interface StartDevnetProcessOptions {
  /** Extra CLI args, e.g. ['--premine', '0']. */
  args?: string[];
  rpcUser?: string;
  rpcPassword?: string;
  /** How long to wait for the JSON line (default 30 s). */
  startTimeoutMs?: number;
}

export async function startDevnetProcess(opts: StartDevnetProcessOptions = {}): Promise<DevnetProcess> {
  const rpcUser = opts.rpcUser ?? 'kassa';
  const rpcPassword = opts.rpcPassword ?? 'kassa';
  const child = spawn(
    process.execPath,
    ['--import', 'tsx', 'src/sandbox/devnet/bitcoin/main.ts', '--port', '0', '--rpcuser', rpcUser, '--rpcpassword', rpcPassword, ...(opts.args ?? [])],
    { cwd: REPO_ROOT, stdio: ['ignore', 'pipe', 'pipe'] },
  );
  let stderr = '';
  child.stderr!.on('data', (d: Buffer) => {
    stderr += d.toString();
  });
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const line = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`bitcoin devnet did not start within ${opts.startTimeoutMs ?? 30_000} ms; stderr: ${stderr}`));
    }, opts.startTimeoutMs ?? 30_000);
    const rl = createInterface({ input: child.stdout! });
    rl.on('line', (l) => {
      if (l.trim().startsWith('{')) {
        clearTimeout(timer);
        rl.close();
        resolve(l);
      }
    });
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`bitcoin devnet exited with code ${code}; stderr: ${stderr}`));
    });
  });
  const info = JSON.parse(line) as { rpc_url: string; esplora_url: string };
  const rpc = createBitcoinRpcClient({ url: info.rpc_url, user: rpcUser, password: rpcPassword, name: 'devnet', timeoutMs: 10_000, retries: 0 });
  const esplora = createEsploraClient({ url: info.esplora_url, name: 'devnet-esplora', timeoutMs: 10_000, retries: 0 });
  return {
    rpcUrl: info.rpc_url,
    esploraUrl: info.esplora_url,
    rpcUser,
    rpcPassword,
    rpc,
    esplora,
    wallet: devnetWallet(rpc),
    child,
    async stop() {
      if (child.exitCode === null && child.signalCode === null) {
        child.kill('SIGTERM');
        await exited;
      }
    },
  };
}

/** Thin typed wrappers over the devnet's wallet RPCs. */
export interface DevnetWallet {
  /** `getnewaddress` (bcrt1 P2WPKH). */
  getNewAddress(): Promise<string>;
  /** `getbalance`, in BTC as the node returns it. */
  getBalance(): Promise<number>;
  /** `sendtoaddress <address> <amountBtc>`; amount is a decimal string or number of BTC. */
  sendToAddress(address: string, amountBtc: string | number, opts?: { feeRate?: number; subtractFee?: boolean }): Promise<string>;
  /** Devnet-only `devnet_sendoutputs`: several outputs (repeats allowed) in one transaction. */
  sendOutputs(outputs: [address: string, amountBtc: string | number][], feeRate?: number): Promise<string>;
  /** Devnet-only `devnet_replace`: BIP125-replace a wallet mempool tx, re-spending its inputs elsewhere. */
  replace(txid: string, address?: string, feeRate?: number): Promise<string>;
  /** `generatetoaddress <n> <address>` (a fresh wallet address by default). */
  mine(n: number, address?: string): Promise<string[]>;
  /** `invalidateblock <hash>`. */
  invalidateBlock(hash: string): Promise<void>;
  /** `reconsiderblock <hash>`. */
  reconsiderBlock(hash: string): Promise<void>;
}

export function devnetWallet(rpc: BitcoinRpcClient): DevnetWallet {
  return {
    getNewAddress: () => rpc.call<string>('getnewaddress'),
    getBalance: () => rpc.call<number>('getbalance'),
    sendToAddress: (address, amount, opts = {}) =>
      rpc.call<string>('sendtoaddress', {
        address,
        amount,
        ...(opts.subtractFee ? { subtractfeefromamount: true } : {}),
        ...(opts.feeRate ? { fee_rate: opts.feeRate } : {}),
      }),
    sendOutputs: (outputs, feeRate) => rpc.call<string>('devnet_sendoutputs', feeRate === undefined ? [outputs] : [outputs, feeRate]),
    replace: (txid, address, feeRate) => rpc.call<string>('devnet_replace', [txid, address ?? null, feeRate ?? null]),
    mine: async (n, address) => rpc.call<string[]>('generatetoaddress', [n, address ?? (await rpc.call<string>('getnewaddress'))]),
    invalidateBlock: async (hash) => {
      await rpc.call('invalidateblock', [hash]);
    },
    reconsiderBlock: async (hash) => {
      await rpc.call('reconsiderblock', [hash]);
    },
  };
}
