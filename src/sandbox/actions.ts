/**
 * What `kassa sandbox pay|mine|reorg` do, against the RUNNING sandbox (runtime.json, state.json):
 * - pay: reads the invoice's public view (GET /v1/public/invoices/:id, so any merchant's invoice in
 *   the sandbox) and pays its deposit address from the sandbox wallets: Bitcoin from the devnet's wallet (`sendtoaddress`), ETH from hardhat account 2,
 *   USDC/USDT from the deployer (hardhat account 0, minting more when it runs low).
 * - mine: `generatetoaddress` on the devnet, `evm_mine` once per block on the EVM chain.
 * - reorg --chain bitcoin: `invalidateblock` at tip-depth+1, optionally double-spend the invoice's
 *   transactions (`devnet_replace`), then mine depth+1 blocks: a longer chain replaces the old one.
 *   The invalidated blocks' transactions go back to the mempool (and into the new blocks) unless
 *   double-spent.
 * - reorg --chain ethereum: hardhat cannot drop mined blocks, but it can go back to an earlier
 *   `evm_snapshot` (`evm_revert`). So:
 *
 *   DESIGN (EVM snapshots). The sandbox's own EVM actions take the snapshots: `pay` on an EVM
 *   method takes one before it sends anything, `mine --chain ethereum` one before each block (for
 *   `--blocks N` > 10: before the first and before each of the last 10), `reorg` the same for the
 *   blocks of its new branch, and `kassa dev` one right after the deployment. Each is recorded as
 *   { id, height, hash } (the tip it captures) in `.kassa/sandbox/evm-snapshots.json`, newest 20
 *   kept, tied to the sandbox run (runtime.json's `started_at`: a restart's fresh chain ignores
 *   the old file). `reorg --chain ethereum --depth N` takes the newest recorded snapshot at height
 *   tip-N, or below it when there is none exactly there (the result reports the actual depth),
 *   whose block hash still matches the chain; runs `evm_revert` (hardhat also drops every snapshot
 *   taken after it; the file does the same); sets the next block's timestamp after the old tip's
 *   (so even empty blocks get new hashes); and mines depth+1 blocks: a longer, different branch.
 *   No usable snapshot (nothing paid or mined with the sandbox yet, older than the 20 kept, or
 *   deeper than the watcher's `reorg_window`) is a clear error saying what to do.
 *   Not chosen: snapshots taken by `kassa dev` on every new block. That costs a poller, a snapshot
 *   per block for the whole run (hardhat keeps every snapshot's state in memory until reverted)
 *   and still races blocks mined in between; the actions know exactly when they create blocks.
 *   Blocks mined by anything else (your own wallet against the node) have no snapshot of their
 *   own: a reorg reaching into them goes back to the nearest older snapshot.
 *   Transactions in the dropped blocks are GONE: hardhat does not return them to a mempool, so the
 *   new branch does not contain them (like a double-spend on Bitcoin). The watcher marks their
 *   payments `reorged`, and an invoice they settled becomes `invalid`.
 */
import { erc20Abi, type Address, type Hex } from 'viem';
import { KassaError } from '../errors.ts';
import { formatAmount, parseAmount } from '../money/amount.ts';
import { createBitcoinRpcClient, type BitcoinRpcClient } from '../chains/bitcoin/rpc.ts';
import { testUSDCAbi, testUSDTAbi } from './contract-artifacts.ts';
import { loadChainsFile } from '../config.ts';
import { readEvmSnapshots, readRuntime, readState, recordEvmSnapshots, writeEvmSnapshots, MAX_EVM_SNAPSHOTS, type EvmSnapshot, type SandboxState } from './files.ts';
import { sandboxPaths, type SandboxRuntime } from '../cli/sandbox-runtime.ts';
import { evmBlock, evmClients, evmRpc, takeEvmSnapshot } from './hardhat.ts';

export interface InvoiceMethod {
  method: string;
  chain: string;
  asset: string;
  token?: string;
  address: string;
  amount: string;
  amount_due: string;
  amount_paid: string;
}

export interface Invoice {
  id: string;
  status: string;
  exception: string | null;
  amount: string;
  currency: string;
  amount_paid: string;
  amount_due: string;
  expires_at: string;
  payment_methods: InvoiceMethod[];
}

export interface SandboxContext {
  dataDir: string;
  runtime: SandboxRuntime;
  state: SandboxState;
  btc: BitcoinRpcClient;
  /** The API with the demo merchant's key. */
  api<T>(method: string, path: string, body?: unknown): Promise<T>;
  /** The API without a key (/v1/public/…: any merchant's invoice). */
  publicApi<T>(path: string): Promise<T>;
}

async function apiCall<T>(url: string, method: string, path: string, headers: Record<string, string>, body?: unknown): Promise<T> {
  const res = await fetch(`${url}${path}`, {
    method,
    headers: { ...headers, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
  });
  const text = await res.text();
  if (!res.ok) {
    let message = text;
    try {
      const e = (JSON.parse(text) as { error?: { code?: string; message?: string } }).error;
      if (e) message = `${e.code}: ${e.message}`;
    } catch {
      /* not JSON */
    }
    throw new KassaError('sandbox_api_error', `${method} ${path} answered ${res.status}: ${message}`, { retryable: false });
  }
  return JSON.parse(text) as T;
}

export function sandboxContext(dataDir: string): SandboxContext {
  const runtime = readRuntime(dataDir);
  const state = readState(dataDir);
  const btc = createBitcoinRpcClient({
    url: runtime.bitcoin.rpc_url, user: runtime.bitcoin.rpc_user, password: runtime.bitcoin.rpc_password, name: 'sandbox-devnet', timeoutMs: 30_000, retries: 0,
  });
  return {
    dataDir,
    runtime,
    state,
    btc,
    api<T>(method: string, path: string, body?: unknown): Promise<T> {
      return apiCall<T>(runtime.api_url, method, path, { authorization: `Bearer ${state.api_key}` }, body);
    },
    publicApi<T>(path: string): Promise<T> {
      return apiCall<T>(runtime.api_url, 'GET', path, {});
    },
  };
}

const DECIMALS: Record<string, number> = { BTC: 8, ETH: 18, USDC: 6, USDT: 6 };

export interface PayOptions {
  method?: string;
  /** Exact amount in the asset (decimal string). */
  amount?: string;
  /** Pay this percentage of what is due (e.g. "50"). */
  partial?: string;
  /** Pay what is due plus this percentage (e.g. "10"). */
  over?: string;
}

export interface PayResult {
  invoice: string;
  method: string;
  address: string;
  amount: string;
  asset: string;
  txid: string;
  /** EVM: the block the payment was mined in (automine). */
  block?: number;
}

/** Percent as basis points from a decimal string ("12.5" → 1250n). */
function percentBps(value: string, param: string): bigint {
  return parseAmount(value, 2, { param });
}

export async function pay(ctx: SandboxContext, invoiceId: string, opts: PayOptions = {}): Promise<PayResult> {
  // The public view (what a customer's wallet sees): any merchant's invoice, not only the demo merchant's.
  const invoice = await ctx.publicApi<Invoice>(`/v1/public/invoices/${encodeURIComponent(invoiceId)}`);
  const methods = invoice.payment_methods;
  const pm = opts.method ? methods.find((m) => m.method === opts.method) : methods[0];
  if (!pm) {
    throw new KassaError('parameter_invalid', `invoice ${invoice.id} has no payment method ${opts.method ?? ''} (it offers: ${methods.map((m) => m.method).join(', ') || 'none'})`, { status: 400, param: 'method', retryable: false });
  }
  const decimals = DECIMALS[pm.asset];
  if (decimals === undefined) throw new KassaError('parameter_invalid', `the sandbox cannot pay ${pm.asset}`, { status: 400, retryable: false });
  let due = parseAmount(pm.amount_due, decimals, { param: 'amount_due', allowZero: true });
  // An expired invoice shows nothing due; paying it anyway (a late payment) sends the unpaid rest.
  if (due === 0n && invoice.status === 'expired') {
    due = parseAmount(pm.amount, decimals, { param: 'amount' }) - parseAmount(pm.amount_paid, decimals, { param: 'amount_paid', allowZero: true });
  }
  let units: bigint;
  if (opts.amount !== undefined) units = parseAmount(opts.amount, decimals, { param: 'amount' });
  else if (opts.partial !== undefined) units = (due * percentBps(opts.partial, 'partial')) / 10_000n;
  else if (opts.over !== undefined) units = (due * (10_000n + percentBps(opts.over, 'over')) + 9_999n) / 10_000n;
  else units = due;
  if (units <= 0n) throw new KassaError('parameter_invalid', `nothing to pay: the amount is ${formatAmount(units, decimals)} ${pm.asset} (due: ${pm.amount_due})`, { status: 400, retryable: false });
  const amount = formatAmount(units, decimals);

  let txid: string;
  let block: number | undefined;
  if (pm.chain === 'bitcoin') {
    txid = await ctx.btc.call<string>('sendtoaddress', { address: pm.address, amount });
  } else {
    const e = ctx.runtime.ethereum;
    // Before anything is mined: `sandbox reorg --chain ethereum` can drop this payment.
    recordEvmSnapshots(ctx.dataDir, ctx.runtime, [await takeEvmSnapshot(e.rpc_url, 'pay')]);
    if (!pm.token) {
      const { publicClient, walletClient } = evmClients(e.rpc_url, e.payer_private_key as Hex);
      txid = await walletClient.sendTransaction({ to: pm.address as Address, value: units, account: walletClient.account, chain: walletClient.chain });
      block = Number((await publicClient.waitForTransactionReceipt({ hash: txid as Hex })).blockNumber);
    } else {
      const { publicClient, walletClient } = evmClients(e.rpc_url, e.deployer_private_key as Hex);
      const token = pm.token as Address;
      const abi = pm.asset === 'USDT' ? testUSDTAbi : testUSDCAbi;
      const balance = await publicClient.readContract({ address: token, abi: erc20Abi, functionName: 'balanceOf', args: [walletClient.account.address] });
      if (balance < units) {
        const mint = await walletClient.writeContract({ address: token, abi, functionName: 'mint', args: [walletClient.account.address, units * 10n], account: walletClient.account, chain: walletClient.chain });
        await publicClient.waitForTransactionReceipt({ hash: mint });
      }
      txid = await walletClient.writeContract({ address: token, abi, functionName: 'transfer', args: [pm.address as Address, units], account: walletClient.account, chain: walletClient.chain });
      const receipt = await publicClient.waitForTransactionReceipt({ hash: txid as Hex });
      if (receipt.status !== 'success') throw new KassaError('sandbox_payment_failed', `${pm.asset} transfer ${txid} reverted`, { retryable: false });
      block = Number(receipt.blockNumber);
    }
  }
  return { invoice: invoice.id, method: pm.method, address: pm.address, amount, asset: pm.asset, txid, ...(block === undefined ? {} : { block }) };
}

export type SandboxChain = 'bitcoin' | 'ethereum';

export async function mine(ctx: SandboxContext, chain: SandboxChain, blocks: number): Promise<{ chain: SandboxChain; blocks: number; tip: number }> {
  if (chain === 'bitcoin') {
    const address = await ctx.btc.call<string>('getnewaddress');
    await ctx.btc.call<string[]>('generatetoaddress', [blocks, address]);
    return { chain, blocks, tip: await ctx.btc.call<number>('getblockcount') };
  }
  return { chain, blocks, tip: await mineEvm(ctx, blocks, 'mine') };
}

/** The EVM chain's block number. */
export async function evmTip(ctx: SandboxContext): Promise<number> {
  return (await evmBlock(ctx.runtime.ethereum.rpc_url, 'latest')).number;
}

/** `mine --chain ethereum` snapshots before each of the last this many blocks (half of what is kept). */
const SNAPSHOTS_PER_MINE = MAX_EVM_SNAPSHOTS / 2;

/**
 * Mines `blocks` EVM blocks, one `evm_mine` each, with a snapshot before the first and before each
 * of the last SNAPSHOTS_PER_MINE; `firstTimestamp` is the first block's timestamp. Returns the tip.
 * Not `hardhat_mine` with a count: hardhat (2.29, EDR) "reserves" such blocks, and most of them
 * then report parentHash 0x00…0, which the EVM watcher reads as the chain changing under it
 * (`evm_chain_changed`, retried for ever).
 */
async function mineEvm(ctx: SandboxContext, blocks: number, by: string, firstTimestamp?: number): Promise<number> {
  const url = ctx.runtime.ethereum.rpc_url;
  const taken: EvmSnapshot[] = [];
  try {
    for (let i = 0; i < blocks; i++) {
      if (i === 0 || i >= blocks - SNAPSHOTS_PER_MINE) taken.push(await takeEvmSnapshot(url, by));
      if (i === 0 && firstTimestamp !== undefined) await evmRpc(url, 'evm_setNextBlockTimestamp', [firstTimestamp]);
      await evmRpc(url, 'evm_mine');
    }
  } finally {
    recordEvmSnapshots(ctx.dataDir, ctx.runtime, taken);
  }
  return evmTip(ctx);
}

export interface ReorgResult {
  chain: SandboxChain;
  /** Blocks replaced (EVM: can be more than asked when no snapshot was exactly at tip-depth). */
  depth: number;
  requested_depth: number;
  old_tip: { height: number; hash: string };
  new_tip: { height: number; hash: string };
  /** Bitcoin: transactions double-spent (replaced) before the new blocks were mined. */
  replaced: { txid: string; replacement: string }[];
  /** EVM: transactions of the dropped blocks; they are gone (not in the new branch, no mempool). */
  dropped_transactions?: string[];
  note?: string;
}

function depthError(message: string): KassaError {
  return new KassaError('parameter_invalid', message, { status: 400, param: 'depth', retryable: false });
}

/**
 * Bitcoin reorg: invalidates the block at tip-depth+1 (its transactions go back to the mempool),
 * BIP125-replaces `doubleSpend` transactions (so they do not come back), then mines depth+1 blocks.
 * EVM reorg: reverts to a recorded snapshot at (or below) tip-depth and mines a longer branch
 * (see the header).
 */
export async function reorg(ctx: SandboxContext, chain: SandboxChain, depth: number, opts: { doubleSpend?: string[] } = {}): Promise<ReorgResult> {
  if (!Number.isInteger(depth) || depth < 1) throw depthError('--depth must be a positive integer');
  if (chain === 'ethereum') {
    if ((opts.doubleSpend ?? []).length > 0) {
      throw new KassaError('parameter_invalid', '--double-spend is for --chain bitcoin only: an EVM reorg in the sandbox drops the transactions of the dropped blocks anyway', { status: 400, param: 'double-spend', retryable: false });
    }
    return reorgEvm(ctx, depth);
  }
  const height = await ctx.btc.call<number>('getblockcount');
  if (depth > height - 1) throw depthError(`--depth ${depth} is deeper than the chain (height ${height})`);
  const oldHash = await ctx.btc.call<string>('getbestblockhash');
  const forkHash = await ctx.btc.call<string>('getblockhash', [height - depth + 1]);
  await ctx.btc.call('invalidateblock', [forkHash]);
  const replaced: ReorgResult['replaced'] = [];
  for (const txid of opts.doubleSpend ?? []) {
    const replacement = await ctx.btc.call<string>('devnet_replace', [txid, null, null]);
    replaced.push({ txid, replacement });
  }
  const address = await ctx.btc.call<string>('getnewaddress');
  await ctx.btc.call<string[]>('generatetoaddress', [depth + 1, address]);
  const newHeight = await ctx.btc.call<number>('getblockcount');
  return {
    chain: 'bitcoin', depth, requested_depth: depth,
    old_tip: { height, hash: oldHash },
    new_tip: { height: newHeight, hash: await ctx.btc.call<string>('getbestblockhash') },
    replaced,
  };
}

/** The EVM watcher's reorg window for the sandbox chain (deeper reorgs stop it). */
function evmReorgWindow(ctx: SandboxContext): number {
  try {
    const c = loadChainsFile(sandboxPaths(ctx.dataDir).chains).chains.ethereum;
    if (c?.type === 'evm') return c.reorg_window;
  } catch {
    /* fall through to the default */
  }
  return 128;
}

async function reorgEvm(ctx: SandboxContext, depth: number): Promise<ReorgResult> {
  const url = ctx.runtime.ethereum.rpc_url;
  const oldTip = await evmBlock(url, 'latest');
  if (depth > oldTip.number) throw depthError(`--depth ${depth} is deeper than the chain (height ${oldTip.number})`);
  const target = oldTip.number - depth;
  const window = evmReorgWindow(ctx);
  const recorded = readEvmSnapshots(ctx.dataDir, ctx.runtime);
  // Newest first among the deepest-enough ones: the highest height <= target, then the latest taken.
  const candidates = recorded
    .map((snap, index) => ({ snap, index }))
    .filter((c) => c.snap.height <= target)
    .sort((a, b) => b.snap.height - a.snap.height || b.index - a.index);
  const unusable = new Set<number>();
  let chosen: { snap: EvmSnapshot; index: number } | null = null;
  let tooDeep: EvmSnapshot | null = null;
  let dropped: string[] = [];
  for (const c of candidates) {
    if (oldTip.number - c.snap.height > window) {
      tooDeep = c.snap;
      break;
    }
    // Taken on another branch (e.g. someone else reverted the node): reverting would mix chains.
    if ((await evmBlock(url, c.snap.height)).hash.toLowerCase() !== c.snap.hash.toLowerCase()) {
      unusable.add(c.index);
      continue;
    }
    const txs: string[] = [];
    for (let h = c.snap.height + 1; h <= oldTip.number; h++) txs.push(...(await evmBlock(url, h)).transactions);
    if (!(await evmRpc<boolean>(url, 'evm_revert', [c.snap.id]))) {
      unusable.add(c.index); // hardhat no longer has it
      continue;
    }
    chosen = c;
    dropped = txs;
    break;
  }
  // Reverting consumed the chosen snapshot and invalidated every later one (hardhat does the same).
  writeEvmSnapshots(ctx.dataDir, ctx.runtime, recorded.filter((_, i) => !unusable.has(i) && (chosen === null || i < chosen.index)));
  if (!chosen) {
    const what = `an EVM reorg of depth ${depth} needs a sandbox snapshot at height ${target} or below (tip ${oldTip.number})`;
    if (tooDeep) {
      throw depthError(`${what}; the nearest one is at height ${tooDeep.height}, ${oldTip.number - tooDeep.height} blocks deep, deeper than the watcher's reorg window (${window}). Use a smaller --depth after paying or mining with the sandbox.`);
    }
    const kept = recorded.filter((_, i) => !unusable.has(i)).map((s) => s.height);
    const oldest = kept.length ? Math.min(...kept) : null;
    throw new KassaError('sandbox_no_snapshot',
      oldest !== null && oldest < oldTip.number
        ? `${what}; the oldest snapshot it keeps is at height ${oldest}, so --depth ${oldTip.number - oldest} is the deepest possible now ` +
          `(it keeps the last ${MAX_EVM_SNAPSHOTS}, taken when it pays or mines on the EVM chain).`
        : `${what}, and there is none: the sandbox snapshots the EVM chain only when it creates blocks itself. ` +
          'Pay or mine with the sandbox first (e.g. "npx kassa sandbox mine --chain ethereum --blocks 3"), then reorg at most that deep.',
      { status: 400, param: 'depth', retryable: false });
  }
  const actual = oldTip.number - chosen.snap.height;
  // New timestamps (later than every dropped block's) so even empty blocks get new hashes.
  await mineEvm(ctx, actual + 1, 'reorg', Math.max(oldTip.timestamp + 1, Math.floor(Date.now() / 1000)));
  const newTip = await evmBlock(url, 'latest');
  return {
    chain: 'ethereum', depth: actual, requested_depth: depth,
    old_tip: { height: oldTip.number, hash: oldTip.hash },
    new_tip: { height: newTip.number, hash: newTip.hash },
    replaced: [],
    dropped_transactions: dropped,
    note: 'hardhat does not return the transactions of dropped blocks to a mempool: they are gone, not in the new branch',
  };
}
