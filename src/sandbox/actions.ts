/**
 * What `kassa sandbox pay|mine|reorg` do, against the RUNNING sandbox (runtime.json, state.json):
 * - pay: reads the invoice through the API with the demo key and pays its deposit address from the
 *   sandbox wallets: Bitcoin from the devnet's wallet (`sendtoaddress`), ETH from hardhat account 2,
 *   USDC/USDT from the deployer (hardhat account 0, minting more when it runs low).
 * - mine: `generatetoaddress` on the devnet, `hardhat_mine` on the EVM chain.
 * - reorg (Bitcoin only): `invalidateblock` at tip-depth+1, optionally double-spend the invoice's
 *   transactions (`devnet_replace`), then mine depth+1 blocks: a longer chain replaces the old one.
 *   Hardhat has no way to drop mined blocks without an earlier `evm_snapshot`, and the sandbox does
 *   not take snapshots, so EVM reorgs are not supported (the watcher's reorg handling is covered
 *   by the EVM watcher tests instead).
 */
import { erc20Abi, type Address, type Hex } from 'viem';
import { KassaError } from '../errors.ts';
import { formatAmount, parseAmount } from '../money/amount.ts';
import { createBitcoinRpcClient, type BitcoinRpcClient } from '../chains/bitcoin/rpc.ts';
import { testUSDCAbi, testUSDTAbi } from '../chains/evm/artifacts.ts';
import { readRuntime, readState, type SandboxRuntime, type SandboxState } from './files.ts';
import { evmClients } from './hardhat.ts';

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
  runtime: SandboxRuntime;
  state: SandboxState;
  btc: BitcoinRpcClient;
  api<T>(method: string, path: string, body?: unknown): Promise<T>;
}

export function sandboxContext(dataDir: string): SandboxContext {
  const runtime = readRuntime(dataDir);
  const state = readState(dataDir);
  const btc = createBitcoinRpcClient({
    url: runtime.bitcoin.rpc_url, user: runtime.bitcoin.rpc_user, password: runtime.bitcoin.rpc_password, name: 'sandbox-devnet', timeoutMs: 30_000, retries: 0,
  });
  return {
    runtime,
    state,
    btc,
    async api<T>(method: string, path: string, body?: unknown): Promise<T> {
      const res = await fetch(`${runtime.api_url}${path}`, {
        method,
        headers: { authorization: `Bearer ${state.api_key}`, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
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
}

/** Percent as basis points from a decimal string ("12.5" → 1250n). */
function percentBps(value: string, param: string): bigint {
  return parseAmount(value, 2, { param });
}

export async function pay(ctx: SandboxContext, invoiceId: string, opts: PayOptions = {}): Promise<PayResult> {
  const invoice = await ctx.api<Invoice>('GET', `/v1/invoices/${encodeURIComponent(invoiceId)}`);
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
  if (pm.chain === 'bitcoin') {
    txid = await ctx.btc.call<string>('sendtoaddress', { address: pm.address, amount });
  } else {
    const e = ctx.runtime.ethereum;
    if (!pm.token) {
      const { publicClient, walletClient } = evmClients(e.rpc_url, e.payer_private_key as Hex);
      txid = await walletClient.sendTransaction({ to: pm.address as Address, value: units, account: walletClient.account, chain: walletClient.chain });
      await publicClient.waitForTransactionReceipt({ hash: txid as Hex });
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
    }
  }
  return { invoice: invoice.id, method: pm.method, address: pm.address, amount, asset: pm.asset, txid };
}

export type SandboxChain = 'bitcoin' | 'ethereum';

export async function mine(ctx: SandboxContext, chain: SandboxChain, blocks: number): Promise<{ chain: SandboxChain; blocks: number; tip: number }> {
  if (chain === 'bitcoin') {
    const address = await ctx.btc.call<string>('getnewaddress');
    await ctx.btc.call<string[]>('generatetoaddress', [blocks, address]);
    return { chain, blocks, tip: await ctx.btc.call<number>('getblockcount') };
  }
  const { publicClient } = evmClients(ctx.runtime.ethereum.rpc_url, ctx.runtime.ethereum.deployer_private_key as Hex);
  await publicClient.request({ method: 'hardhat_mine' as never, params: [`0x${blocks.toString(16)}`] as never });
  return { chain, blocks, tip: Number(await publicClient.getBlockNumber()) };
}

export interface ReorgResult {
  chain: 'bitcoin';
  depth: number;
  old_tip: { height: number; hash: string };
  new_tip: { height: number; hash: string };
  /** Transactions double-spent (replaced) before the new blocks were mined. */
  replaced: { txid: string; replacement: string }[];
}

/**
 * Bitcoin reorg: invalidates the block at tip-depth+1 (its transactions go back to the mempool),
 * BIP125-replaces `doubleSpend` transactions (so they do not come back), then mines depth+1 blocks.
 */
export async function reorg(ctx: SandboxContext, chain: SandboxChain, depth: number, opts: { doubleSpend?: string[] } = {}): Promise<ReorgResult> {
  if (chain !== 'bitcoin') {
    throw new KassaError(
      'sandbox_unsupported',
      'EVM reorgs are not supported by the sandbox: hardhat cannot drop mined blocks without an earlier evm_snapshot. Use --chain bitcoin.',
      { status: 400, param: 'chain', retryable: false },
    );
  }
  if (!Number.isInteger(depth) || depth < 1) throw new KassaError('parameter_invalid', '--depth must be a positive integer', { status: 400, param: 'depth', retryable: false });
  const height = await ctx.btc.call<number>('getblockcount');
  if (depth > height - 1) throw new KassaError('parameter_invalid', `--depth ${depth} is deeper than the chain (height ${height})`, { status: 400, param: 'depth', retryable: false });
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
    chain: 'bitcoin', depth,
    old_tip: { height, hash: oldHash },
    new_tip: { height: newHeight, hash: await ctx.btc.call<string>('getbestblockhash') },
    replaced,
  };
}
