/** Seeded randomness and the payer side of the harness: Bitcoin devnet wallet and a hardhat account. */
import * as bitcoin from 'bitcoinjs-lib';
import { createWalletClient, encodeFunctionData, http, parseAbi, type Hex, type PublicClient } from 'viem';
import { privateKeyToAccount } from 'viem/accounts';
import { hardhat } from 'viem/chains';
import type { BitcoinRpcClient } from '../../src/chains/bitcoin/rpc.ts';
import { forwarderAbi, forwarderFactoryAbi } from '../../src/chains/evm/artifacts.ts';
import { ethSenderAbi, ethSenderBytecode } from '../support/contract-artifacts.ts';
import { invoiceSaltFor } from '../../src/chains/evm/forwarder.ts';
import { HARDHAT_ACCOUNTS } from '../support/hardhat.ts';

/** mulberry32: small, fast, good enough for choosing actions; the same seed gives the same choices. */
export function prng(seed: number) {
  let a = seed >>> 0;
  const next = () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  return {
    next,
    int: (lo: number, hi: number) => lo + Math.floor(next() * (hi - lo + 1)),
    pick: <T>(xs: readonly T[]): T => xs[Math.floor(next() * xs.length)]!,
    chance: (p: number) => next() < p,
    weighted: <T extends string>(w: Record<T, number>): T => {
      const entries = Object.entries(w) as [T, number][];
      let x = next() * entries.reduce((s, [, v]) => s + v, 0);
      for (const [k, v] of entries) if ((x -= v) < 0) return k;
      return entries[entries.length - 1]![0];
    },
  };
}
export type Prng = ReturnType<typeof prng>;

/** Decimal string of base units (no floating point). */
export function formatUnits(units: bigint, decimals: number): string {
  const neg = units < 0n;
  const s = (neg ? -units : units).toString().padStart(decimals + 1, '0');
  const int = s.slice(0, s.length - decimals);
  const frac = decimals ? s.slice(s.length - decimals).replace(/0+$/, '') : '';
  return `${neg ? '-' : ''}${int}${frac ? '.' + frac : ''}`;
}
export function parseUnits(amount: string, decimals: number): bigint {
  const [i, f = ''] = amount.split('.');
  return BigInt(i! + f.padEnd(decimals, '0').slice(0, decimals));
}

export const ERC20 = parseAbi(['function transfer(address to, uint256 amount) returns (bool)', 'event Transfer(address indexed from, address indexed to, uint256 value)']);

export function bitcoinPayer(rpc: BitcoinRpcClient) {
  return {
    send: (address: string, sats: bigint) => rpc.call<string>('sendtoaddress', { address, amount: formatUnits(sats, 8) }),
    rawOf: (txid: string) => rpc.call<string>('getrawtransaction', [txid, false]),
    rebroadcast: (hex: string) => rpc.call<string>('sendrawtransaction', [hex]),
    replace: (txid: string) => rpc.call<string>('devnet_replace', [txid, null, null]),
    mine: async (n: number) => rpc.call<string[]>('generatetoaddress', [n, await rpc.call<string>('getnewaddress')]),
    height: () => rpc.call<number>('getblockcount'),
    hashAt: (h: number) => rpc.call<string>('getblockhash', [h]),
    invalidate: (hash: string) => rpc.call('invalidateblock', [hash]),
  };
}

/**
 * Outputs paying to regtest addresses in a block (verbosity 2 with hex; amounts from the raw tx),
 * and each transaction's inputs (`txid:vout` spent) and output total (a refund's fee = inputs − outputs).
 */
export async function bitcoinBlockOutputs(rpc: BitcoinRpcClient, hash: string): Promise<{
  height: number; outs: { txid: string; vout: number; address: string; sats: bigint }[]; txs: { txid: string; ins: string[]; outSats: bigint }[];
}> {
  const b = await rpc.call<{ height: number; tx: { txid: string; hex: string }[] }>('getblock', [hash, 2]);
  const outs: { txid: string; vout: number; address: string; sats: bigint }[] = [];
  const txs: { txid: string; ins: string[]; outSats: bigint }[] = [];
  for (const t of b.tx) {
    const tx = bitcoin.Transaction.fromHex(t.hex);
    txs.push({
      txid: t.txid,
      ins: tx.ins.map((i) => `${Buffer.from(i.hash).reverse().toString('hex')}:${i.index}`),
      outSats: tx.outs.reduce((a, o) => a + BigInt(o.value), 0n),
    });
    tx.outs.forEach((o, vout) => {
      let address: string;
      try {
        address = bitcoin.address.fromOutputScript(o.script, bitcoin.networks.regtest);
      } catch {
        return;
      }
      outs.push({ txid: t.txid, vout, address, sats: BigInt(o.value) });
    });
  }
  return { height: b.height, outs, txs };
}

/** Sends native coin and ERC-20 transfers from hardhat account 2, one at a time (nonces from the node). */
export function evmPayer(url: string, publicClient: PublicClient) {
  const chain = { ...hardhat, rpcUrls: { default: { http: [url] } } };
  const account = privateKeyToAccount(HARDHAT_ACCOUNTS[2]!.privateKey);
  const wallet = createWalletClient({ account, chain, transport: http(url, { timeout: 15_000, retryCount: 0 }) });
  const deployer = createWalletClient({ account: privateKeyToAccount(HARDHAT_ACCOUNTS[0]!.privateKey), chain, transport: http(url, { timeout: 15_000, retryCount: 0 }) });
  let queue: Promise<unknown> = Promise.resolve();
  const serial = <T>(fn: () => Promise<T>): Promise<T> => {
    const p = queue.then(fn, fn);
    queue = p.catch(() => {});
    return p;
  };
  type Fees = { maxPriorityFeePerGas?: bigint };
  async function sendRaw(to: Hex, value: bigint, data?: Hex, gas?: bigint, fees: Fees = {}): Promise<{ hash: Hex; raw: Hex }> {
    return serial(async () => {
      const req = await wallet.prepareTransactionRequest({ to, value, ...(data ? { data } : {}), ...(gas ? { gas } : {}), ...fees, account, chain });
      const raw = await wallet.signTransaction(req as never);
      const hash = await publicClient.sendRawTransaction({ serializedTransaction: raw });
      return { hash, raw };
    });
  }
  return {
    address: account.address,
    /** Gives the payer tokens (the test tokens have a public mint; the deployer holds 1e12 units). */
    async fund(token: Hex, amount: bigint) {
      const hash = await deployer.writeContract({ address: token, abi: ERC20, functionName: 'transfer', args: [account.address, amount], account: deployer.account, chain });
      await publicClient.waitForTransactionReceipt({ hash });
    },
    sendNative: (to: Hex, wei: bigint, fees: Fees = {}) => sendRaw(to, wei, undefined, undefined, fees),
    /** Deploys the EthSender test contract (a contract that pays with an internal transfer). */
    async deploySender(): Promise<Hex> {
      const hash = await deployer.deployContract({ abi: ethSenderAbi, bytecode: ethSenderBytecode, account: deployer.account, chain });
      return (await publicClient.waitForTransactionReceipt({ hash })).contractAddress!;
    },
    /** Native coin sent by a contract (`sender.sendViaCall(to)`): an internal transfer, no transaction to `to`. */
    sendViaContract: (sender: Hex, to: Hex, wei: bigint, fees: Fees = {}) =>
      sendRaw(sender, wei, encodeFunctionData({ abi: ethSenderAbi, functionName: 'sendViaCall', args: [to] }), 200_000n, fees),
    sendToken: (token: Hex, to: Hex, units: bigint) => sendRaw(token, 0n, encodeFunctionData({ abi: ERC20, functionName: 'transfer', args: [to, units] })),
    rebroadcast: (raw: Hex) => serial(() => publicClient.sendRawTransaction({ serializedTransaction: raw })),
    rpc: (method: string, params: unknown[] = []) => publicClient.request({ method: method as never, params: params as never }) as Promise<unknown>,
  };
}

/** The hardhat accounts a stranger flushes from: none is Kassa's (0 deploys, 1 is the test treasury, 2 pays). */
export const STRANGER_ACCOUNTS = [5, 6, 7, 8, 9] as const;

/**
 * A stranger who flushes deposit addresses: anyone may call `factory.deployAndFlush(treasury,
 * keccak256(invoice id), tokens)` (docs/evm.md, "Flushes, whoever calls them"). Sends are serialized
 * (the workload and the fault loop both flush) with an explicit gas limit, so no estimate is needed
 * and a send works with automine off; returns the transaction hash without waiting for a block.
 */
export function strangerFlusher(url: string, publicClient: PublicClient, factory: Hex, tokens: Hex[]) {
  const chain = { ...hardhat, rpcUrls: { default: { http: [url] } } };
  const wallets = STRANGER_ACCOUNTS.map((i) => {
    const account = privateKeyToAccount(HARDHAT_ACCOUNTS[i]!.privateKey);
    return { account, wallet: createWalletClient({ account, chain, transport: http(url, { timeout: 15_000, retryCount: 0 }) }) };
  });
  let queue: Promise<unknown> = Promise.resolve();
  return {
    flush(who: number, treasury: Hex, invoiceId: string, fees: { maxPriorityFeePerGas?: bigint } = {}): Promise<Hex> {
      const { account, wallet } = wallets[who % wallets.length]!;
      const run = queue.then(async () => {
        const data = encodeFunctionData({ abi: forwarderFactoryAbi, functionName: 'deployAndFlush', args: [treasury, invoiceSaltFor(invoiceId), tokens] });
        const req = await wallet.prepareTransactionRequest({ to: factory, data, value: 0n, gas: 1_000_000n, ...fees, account, chain });
        const raw = await wallet.signTransaction(req as never);
        return publicClient.sendRawTransaction({ serializedTransaction: raw });
      });
      queue = run.catch(() => {});
      return run;
    },
  };
}

/** `Flushed(treasury, amount)` of the forwarders (Kassa's contracts), the event every native flush emits. */
export const FLUSHED_EVENT = forwarderAbi.find((x) => x.type === 'event' && x.name === 'Flushed')!;
