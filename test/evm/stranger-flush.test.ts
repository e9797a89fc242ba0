/**
 * Issue 14 defect 4: anyone may flush a forwarder (the invoice id is public), and such a flush was
 * not recorded, so the balance check (expected = native payments − Kassa's own sweeps) under-
 * credited coin that arrived afterwards through an internal transfer. The watcher now indexes
 * every forwarder's Flushed event (evm_outflows): every wei that reached a deposit address is
 * counted exactly once, whoever flushes it.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { decodeEventLog, parseEther, parseGwei, type Address, type Hex } from 'viem';
import { forwarderAbi, forwarderFactoryAbi } from '../../src/chains/evm/artifacts.ts';
import { ethSenderAbi, ethSenderBytecode } from '../support/contract-artifacts.ts';
import { createEvmClient } from '../../src/chains/evm/client.ts';
import { invoiceSaltFor } from '../../src/chains/evm/forwarder.ts';
import { createAssetRegistry } from '../../src/money/assets.ts';
import { createSettlementService, type SettlementService } from '../../src/settlement/service.ts';
import { createEvmWatcher } from '../support/watchers.ts';
import { createTestContext, type TestContext } from '../support/db.ts';
import { EVM_CHAIN, insertEvmInvoice, setupEvm, type EvmTestEnv } from '../support/evm.ts';
import { mined, randomAddress, wallet } from '../contracts/fixture.ts';

let ctx: TestContext;
let env: EvmTestEnv;
let settlement: SettlementService;
let merchantId: string;
let sender: Address;
let w: ReturnType<typeof createEvmWatcher>;

const CUSTOMER = 1;
const STRANGER = 5;
const CONTRACT_PAYER = 6;

beforeAll(async () => {
  env = await setupEvm();
  ctx = await createTestContext();
  settlement = createSettlementService({
    chains: env.chains, assets: createAssetRegistry(env.chains), logger: ctx.deps.logger, redis: ctx.deps.redis,
    queuePrefix: ctx.config.queuePrefix, publicUrl: 'http://kassa.test',
  });
  merchantId = (await ctx.deps.merchants.create(ctx.deps.sql, { name: 'Flush shop' })).id;
  const deployed = await mined(env.f, wallet(env.f, 0).deployContract({ abi: ethSenderAbi, bytecode: ethSenderBytecode }));
  sender = deployed.contractAddress!;
  w = createEvmWatcher({
    chain: EVM_CHAIN, config: env.cfg, client: createEvmClient(env.cfg, { retryCount: 0 }), sql: ctx.deps.sql, settlement,
    redis: ctx.deps.redis, queuePrefix: ctx.config.queuePrefix, logger: ctx.deps.logger,
    startBlock: Number(await env.f.publicClient.getBlockNumber()) + 1,
  });
}, 90_000);

afterAll(async () => {
  await ctx?.close();
  await env?.stop();
});

const rpc = (method: string, params: unknown[] = []) => env.f.publicClient.request({ method: method as never, params: params as never });
const balance = (a: Address) => env.f.publicClient.getBalance({ address: a });

/** A 5.00 USD invoice: 0.005 ETH at the fixture's 1000 USD/ETH, 1 confirmation. */
const newInvoice = (treasury: Address) => insertEvmInvoice(ctx.deps.sql, env, { merchantId, treasury, usdCents: 500n, confirmations: 1 });

const payPlain = (to: Address, value: bigint, fees: { maxPriorityFeePerGas?: bigint } = {}) =>
  wallet(env.f, CUSTOMER).sendTransaction({ to, value, gas: 100_000n, ...fees });
const payFromContract = (to: Address, value: bigint, fees: { maxPriorityFeePerGas?: bigint } = {}) =>
  wallet(env.f, CONTRACT_PAYER).writeContract({ address: sender, abi: ethSenderAbi, functionName: 'sendViaCall', args: [to], value, gas: 200_000n, ...fees });
const strangerFlush = (treasury: Address, invoiceId: string, fees: { maxPriorityFeePerGas?: bigint } = {}) =>
  wallet(env.f, STRANGER).writeContract({
    address: env.f.contracts.factory, abi: forwarderFactoryAbi, functionName: 'deployAndFlush',
    args: [treasury, invoiceSaltFor(invoiceId), [env.usdc, env.usdt]], gas: 1_000_000n, ...fees,
  });

function flushedAmount(receipt: { logs: { address: string; data: Hex; topics: Hex[] }[] }, forwarder: string): bigint {
  let sum = 0n;
  for (const l of receipt.logs) {
    if (l.address.toLowerCase() !== forwarder.toLowerCase()) continue;
    const ev = decodeEventLog({ abi: forwarderAbi, data: l.data, topics: l.topics as [Hex, ...Hex[]] });
    if (ev.eventName === 'Flushed') sum += ev.args.amount;
  }
  return sum;
}

const ethPayments = (invoiceId: string) =>
  ctx.deps.sql<{ output_index: number; amount: bigint; status: string }[]>`
    select output_index, amount, status from payments where invoice_id = ${invoiceId} and method = 'ETH-ethereum' order by seq`;
const invoice = async (invoiceId: string) =>
  (await ctx.deps.sql<{ status: string; exception: string | null }[]>`select status, exception from invoices where id = ${invoiceId}`)[0]!;
const credited = async (invoiceId: string) =>
  (await ethPayments(invoiceId)).filter((p) => p.status === 'confirmed').reduce((a, p) => a + p.amount, 0n);

describe('EVM: a stranger flushes the deposit address', () => {
  it('between payments: 0.002 plain + stranger deployAndFlush + 0.003 from a contract → 0.005 credited, settled', async () => {
    const treasury = randomAddress();
    const inv = await newInvoice(treasury);

    await mined(env.f, payPlain(inv.address, parseEther('0.002')));
    await w.runOnce();
    expect(await credited(inv.invoiceId)).toBe(parseEther('0.002'));

    const flush = await mined(env.f, strangerFlush(treasury, inv.invoiceId));
    expect(flushedAmount(flush, inv.address)).toBe(parseEther('0.002'));
    expect(await balance(treasury)).toBe(parseEther('0.002'));
    await w.runOnce();

    await mined(env.f, payFromContract(inv.address, parseEther('0.003'))); // internal transfer: seen by the balance check only
    await w.runOnce();

    expect(await credited(inv.invoiceId)).toBe(parseEther('0.005'));
    expect((await ethPayments(inv.invoiceId)).map((p) => [p.output_index, p.amount])).toEqual([
      [-1, parseEther('0.002')],
      [-2, parseEther('0.003')],
    ]);
    expect(await invoice(inv.invoiceId)).toEqual({ status: 'settled', exception: null });
    const [out] = await ctx.deps.sql<{ amount: bigint; txid: string }[]>`select amount, txid from evm_outflows where address = ${inv.lower}`;
    expect(out).toEqual({ amount: parseEther('0.002'), txid: flush.transactionHash.toLowerCase() });

    // Later passes and a second flush of the rest change nothing: counted exactly once.
    await mined(env.f, strangerFlush(treasury, inv.invoiceId));
    await w.runOnce();
    await rpc('hardhat_mine', ['0x3']);
    await w.runOnce();
    expect(await credited(inv.invoiceId)).toBe(parseEther('0.005'));
    expect(await balance(treasury)).toBe(parseEther('0.005'));
  });

  it('in the same block as payments: contract 0.003, stranger flush, plain 0.002 in one block → 0.005 credited', async () => {
    const treasury = randomAddress();
    const inv = await newInvoice(treasury);
    await rpc('evm_setAutomine', [false]);
    let hashes: Hex[];
    try {
      // Descending priority fees fix the order inside the block whatever the node's mempool order.
      hashes = [
        await payFromContract(inv.address, parseEther('0.003'), { maxPriorityFeePerGas: parseGwei('3') }),
        await strangerFlush(treasury, inv.invoiceId, { maxPriorityFeePerGas: parseGwei('2') }),
        await payPlain(inv.address, parseEther('0.002'), { maxPriorityFeePerGas: parseGwei('1') }),
      ];
      await rpc('evm_mine');
    } finally {
      await rpc('evm_setAutomine', [true]);
    }
    const receipts = await Promise.all(hashes.map((hash) => env.f.publicClient.waitForTransactionReceipt({ hash })));
    expect(receipts.map((r) => r.status)).toEqual(['success', 'success', 'success']);
    expect(new Set(receipts.map((r) => r.blockNumber)).size).toBe(1);
    expect(receipts.map((r) => r.transactionIndex)).toEqual([0, 1, 2]);
    expect(flushedAmount(receipts[1]!, inv.address)).toBe(parseEther('0.003')); // the contract's coin left before the check
    expect(await balance(inv.address)).toBe(parseEther('0.002'));

    await w.runOnce();
    expect(await credited(inv.invoiceId)).toBe(parseEther('0.005'));
    expect(await invoice(inv.invoiceId)).toEqual({ status: 'settled', exception: null });
  });

  it('first flush of an address in the same block as the contract payment it empties → credited in that pass', async () => {
    const treasury = randomAddress();
    const inv = await newInvoice(treasury);
    await w.runOnce();
    await rpc('evm_setAutomine', [false]);
    let hashes: Hex[];
    try {
      hashes = [
        await payFromContract(inv.address, parseEther('0.005'), { maxPriorityFeePerGas: parseGwei('3') }),
        await strangerFlush(treasury, inv.invoiceId, { maxPriorityFeePerGas: parseGwei('2') }),
      ];
      await rpc('evm_mine');
    } finally {
      await rpc('evm_setAutomine', [true]);
    }
    const receipts = await Promise.all(hashes.map((hash) => env.f.publicClient.waitForTransactionReceipt({ hash })));
    expect(flushedAmount(receipts[1]!, inv.address)).toBe(parseEther('0.005'));
    expect(await balance(inv.address)).toBe(0n); // nothing left: only the flush shows the coin arrived

    await w.runOnce(); // no later block: the pass that records the flush must credit the coin
    expect(await credited(inv.invoiceId)).toBe(parseEther('0.005'));
    expect(await invoice(inv.invoiceId)).toEqual({ status: 'settled', exception: null });
  });

  it('a flush orphaned by a reorg is forgotten; its re-mined twin counts once', async () => {
    const treasury = randomAddress();
    const inv = await newInvoice(treasury);
    await mined(env.f, payFromContract(inv.address, parseEther('0.001')));
    await w.runOnce();
    expect(await credited(inv.invoiceId)).toBe(parseEther('0.001'));

    const snapshot = (await rpc('evm_snapshot')) as string;
    await mined(env.f, strangerFlush(treasury, inv.invoiceId));
    await w.runOnce();
    expect((await ctx.deps.sql`select 1 from evm_outflows where address = ${inv.lower}`).length).toBe(1);

    // The flush's block is replaced by a longer branch without it.
    await rpc('evm_revert', [snapshot]);
    await rpc('hardhat_mine', ['0x3']);
    await w.runOnce();
    expect((await ctx.deps.sql`select 1 from evm_outflows where address = ${inv.lower}`).length).toBe(0);
    expect(await balance(inv.address)).toBe(parseEther('0.001'));
    expect(await credited(inv.invoiceId)).toBe(parseEther('0.001'));

    // On the new branch: more coin from a contract, then a flush → 0.003 in total, once.
    await mined(env.f, payFromContract(inv.address, parseEther('0.002')));
    await mined(env.f, strangerFlush(treasury, inv.invoiceId));
    await w.runOnce();
    expect(await credited(inv.invoiceId)).toBe(parseEther('0.003'));
    await rpc('hardhat_mine', ['0x2']);
    await w.runOnce();
    expect(await credited(inv.invoiceId)).toBe(parseEther('0.003'));
  });
});
