import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseEther, type Address, type Hex } from 'viem';
import { forwarderFactoryAbi } from '../../src/chains/evm/artifacts.ts';
import { testUSDCAbi, testUSDTAbi } from '../../src/sandbox/contract-artifacts.ts';
import { ethSenderAbi, ethSenderBytecode } from '../support/contract-artifacts.ts';
import { createEvmClient } from '../../src/chains/evm/client.ts';
import { invoiceSaltFor } from '../../src/chains/evm/forwarder.ts';
import { createAssetRegistry } from '../../src/money/assets.ts';
import { createSettlementService, type SettlementService } from '../../src/settlement/service.ts';
import { readChainHealth } from '../../src/chains/health.ts';
import { createEvmWatcher, type EvmWatcherOptions } from '../support/watchers.ts';
import { createTestContext, type TestContext } from '../support/db.ts';
import { EVM_CHAIN, insertEvmInvoice, setupEvm, type EvmTestEnv } from '../support/evm.ts';
import { mined, randomAddress, wallet } from '../contracts/fixture.ts';

let ctx: TestContext;
let env: EvmTestEnv;
let settlement: SettlementService;
let merchantId: string;

beforeAll(async () => {
  env = await setupEvm();
  ctx = await createTestContext();
  settlement = createSettlementService({
    chains: env.chains, assets: createAssetRegistry(env.chains), logger: ctx.deps.logger, redis: ctx.deps.redis,
    queuePrefix: ctx.config.queuePrefix, publicUrl: 'http://kassa.test',
  });
  merchantId = (await ctx.deps.merchants.create(ctx.deps.sql, { name: 'EVM shop' })).id;
}, 90_000);

afterAll(async () => {
  await ctx?.close();
  await env?.stop();
});

const tip = async () => Number(await env.f.publicClient.getBlockNumber());

function watcher(extra: Partial<EvmWatcherOptions> = {}) {
  return createEvmWatcher({
    chain: EVM_CHAIN, config: env.cfg, client: createEvmClient(env.cfg, { retryCount: 0 }), sql: ctx.deps.sql, settlement,
    redis: ctx.deps.redis, queuePrefix: ctx.config.queuePrefix, logger: ctx.deps.logger, ...extra,
  });
}

interface PayRow { txid: string; output_index: number; method: string; amount: bigint; status: string; block_height: bigint | null; ledger_state: string }
const paymentsOf = (invoiceId: string) =>
  ctx.deps.sql<PayRow[]>`select txid, output_index, method, amount, status, block_height, ledger_state from payments where invoice_id = ${invoiceId} order by seq`;
const statusOf = async (invoiceId: string) => (await ctx.deps.sql<{ status: string }[]>`select status from invoices where id = ${invoiceId}`)[0]!.status;

const payEth = (i: number, to: Address, value: bigint) => mined(env.f, wallet(env.f, i).sendTransaction({ to, value }));
const payToken = (token: Address, to: Address, amount: bigint) =>
  mined(env.f, wallet(env.f, 0).writeContract({ address: token, abi: token === env.usdt ? testUSDTAbi : testUSDCAbi, functionName: 'transfer', args: [to, amount] }));
const mine = (n = 1) => env.f.publicClient.request({ method: 'hardhat_mine' as never, params: [`0x${n.toString(16)}`] as never });

// One watcher instance follows the chain across the tests below (like a running worker).
let w: ReturnType<typeof watcher>;

describe('EVM watcher: detection', () => {
  it('detects ETH, USDC and USDT paid to a predicted forwarder address with the right amounts and confirmations', async () => {
    const treasury = randomAddress();
    const inv = await insertEvmInvoice(ctx.deps.sql, env, { merchantId, treasury, usdCents: 1000n, confirmations: 2 });
    w = watcher({ startBlock: (await tip()) + 1 });
    const eth = await payEth(1, inv.address, parseEther('0.004')); // $4
    const usdc = await payToken(env.usdc, inv.address, 3_000_000n); // $3
    const usdt = await payToken(env.usdt, inv.address, 3_000_000n); // $3
    const r = await w.runOnce();
    expect(r.blocks).toBe(3);

    const rows = await paymentsOf(inv.invoiceId);
    expect(rows.map((p) => [p.method, p.amount, p.status, p.output_index >= 0 ? 'log' : p.output_index])).toEqual([
      ['ETH-ethereum', parseEther('0.004'), 'confirmed', -1],
      ['USDC-ethereum', 3_000_000n, 'confirmed', 'log'],
      ['USDT-ethereum', 3_000_000n, 'confirmed', 'log'],
    ]);
    expect(rows[0]!.txid).toBe(eth.transactionHash.toLowerCase());
    expect(rows[1]!.txid).toBe(usdc.transactionHash.toLowerCase());
    expect(rows[2]!.txid).toBe(usdt.transactionHash.toLowerCase());
    // ETH and USDC have ≥ 2 confirmations, USDT (in the tip block) only 1 of the 2 required.
    expect(rows.map((p) => p.ledger_state)).toEqual(['available', 'available', 'pending']);
    expect(await statusOf(inv.invoiceId)).toBe('processing');

    await mine(1);
    await w.runOnce();
    expect((await paymentsOf(inv.invoiceId)).map((p) => p.ledger_state)).toEqual(['available', 'available', 'available']);
    expect(await statusOf(inv.invoiceId)).toBe('settled');

    // A second pass over the same tip records nothing twice.
    await w.runOnce();
    expect(await paymentsOf(inv.invoiceId)).toHaveLength(3);
  });

  it('does not count a reverted ETH transfer to a deposit address', async () => {
    const treasury = randomAddress();
    const inv = await insertEvmInvoice(ctx.deps.sql, env, { merchantId, treasury });
    // Deploy the forwarder: calldata sent to it is delegated to the implementation, which reverts.
    await mined(env.f, wallet(env.f, 0).writeContract({
      address: env.f.contracts.factory, abi: forwarderFactoryAbi, functionName: 'deploy', args: [treasury, invoiceSaltFor(inv.invoiceId)],
    }));
    let hash: Hex | undefined;
    try {
      hash = await wallet(env.f, 2).sendTransaction({ to: inv.address, value: parseEther('1'), data: '0xdeadbeef', gas: 100_000n });
    } catch (err) {
      // hardhat reports the failure but still mines the transaction
      hash = (err as { cause?: { data?: { txHash?: Hex } } }).cause?.data?.txHash;
    }
    const block = await env.f.publicClient.getBlock({ includeTransactions: true });
    const reverted = block.transactions.find((t) => t.to?.toLowerCase() === inv.lower);
    expect(reverted, `the reverting tx (${hash}) should be mined`).toBeDefined();
    const receipt = await env.f.publicClient.getTransactionReceipt({ hash: reverted!.hash });
    expect(receipt.status).toBe('reverted');

    await w.runOnce();
    expect(await paymentsOf(inv.invoiceId)).toEqual([]);
    expect(await env.f.publicClient.getBalance({ address: inv.address })).toBe(0n);
  });

  it('catches ETH sent by a contract (internal transfer) through the balance check', async () => {
    const inv = await insertEvmInvoice(ctx.deps.sql, env, { merchantId, treasury: randomAddress() });
    const deployHash = await wallet(env.f, 3).deployContract({ abi: ethSenderAbi, bytecode: ethSenderBytecode });
    const sender = (await mined(env.f, deployHash)).contractAddress!;
    await w.runOnce();
    const r = await mined(env.f, wallet(env.f, 3).writeContract({ address: sender, abi: ethSenderAbi, functionName: 'sendViaCall', args: [inv.address], value: parseEther('0.003') }));
    await w.runOnce();
    const rows = await paymentsOf(inv.invoiceId);
    expect(rows).toHaveLength(1);
    expect(rows[0]).toMatchObject({
      txid: `balance:${inv.lower}:${r.blockNumber}`, output_index: -2, amount: parseEther('0.003'), status: 'confirmed', method: 'ETH-ethereum',
    });
    // Later passes do not credit the same coins again; a second internal transfer adds only its amount.
    await mine(2);
    await w.runOnce();
    expect(await paymentsOf(inv.invoiceId)).toHaveLength(1);
    await mined(env.f, wallet(env.f, 3).writeContract({ address: sender, abi: ethSenderAbi, functionName: 'sendViaCall', args: [inv.address], value: parseEther('0.001') }));
    await payEth(4, inv.address, parseEther('0.002')); // a plain transfer: recorded from the tx, not by the balance check
    await w.runOnce();
    const after = await paymentsOf(inv.invoiceId);
    expect(after.map((p) => [p.output_index, p.amount])).toEqual([
      [-2, parseEther('0.003')],
      [-1, parseEther('0.002')],
      [-2, parseEther('0.001')],
    ]);
  });
});

describe('EVM watcher: reorgs', () => {
  it('un-counts a payment whose block is orphaned and counts the re-mined transaction once', async () => {
    const inv = await insertEvmInvoice(ctx.deps.sql, env, { merchantId, treasury: randomAddress(), confirmations: 1 });
    await w.runOnce();
    const snapshot = await env.f.publicClient.request({ method: 'evm_snapshot' as never, params: [] as never }) as string;
    const payer = wallet(env.f, 5);
    const request = await payer.prepareTransactionRequest({ to: inv.address, value: parseEther('0.01') });
    const raw = await payer.signTransaction(request);
    const first = await mined(env.f, env.f.publicClient.sendRawTransaction({ serializedTransaction: raw }));
    await w.runOnce();
    expect((await paymentsOf(inv.invoiceId))[0]).toMatchObject({ status: 'confirmed', block_height: first.blockNumber });
    expect(await statusOf(inv.invoiceId)).toBe('settled');

    // Another branch without the payment, longer than ours.
    await env.f.publicClient.request({ method: 'evm_revert' as never, params: [snapshot] as never });
    await mine(3);
    await w.runOnce();
    const orphaned = await paymentsOf(inv.invoiceId);
    expect(orphaned).toHaveLength(1);
    expect(orphaned[0]).toMatchObject({ status: 'reorged', block_height: null, ledger_state: 'reversed' });
    expect(await statusOf(inv.invoiceId)).toBe('invalid');
    const [ev] = await ctx.deps.sql<{ n: bigint }[]>`select count(*)::int8 as n from events where invoice_id = ${inv.invoiceId} and type = 'invoice.payment_reorged'`;
    expect(ev!.n).toBe(1n);

    // The same transaction is mined again on the new branch: one payment, confirmed again.
    const again = await mined(env.f, env.f.publicClient.sendRawTransaction({ serializedTransaction: raw }));
    expect(again.transactionHash).toBe(first.transactionHash);
    await w.runOnce();
    const rows = await paymentsOf(inv.invoiceId);
    expect(rows).toHaveLength(1);
    expect(rows[0]).toMatchObject({ status: 'confirmed', block_height: again.blockNumber, amount: parseEther('0.01') });
  });

  it('rolls back when the node switches to a branch of the same height (tip hash differs)', async () => {
    const inv = await insertEvmInvoice(ctx.deps.sql, env, { merchantId, treasury: randomAddress() });
    await w.runOnce();
    const snapshot = await env.f.publicClient.request({ method: 'evm_snapshot' as never, params: [] as never }) as string;
    await payEth(6, inv.address, parseEther('0.02'));
    await w.runOnce();
    expect((await paymentsOf(inv.invoiceId))[0]!.status).toBe('confirmed');
    await env.f.publicClient.request({ method: 'evm_revert' as never, params: [snapshot] as never });
    await mine(1); // same height, different block
    const r = await w.runOnce();
    expect(r.blocks).toBe(1);
    expect((await paymentsOf(inv.invoiceId))[0]!.status).toBe('reorged');
  });

  it('stops with a loud error when the reorg is deeper than the kept window', async () => {
    const deepChain = 'ethereum';
    const small = { ...env.cfg, reorg_window: 2 };
    const inv = await insertEvmInvoice(ctx.deps.sql, env, { merchantId, treasury: randomAddress() });
    const snapshot = await env.f.publicClient.request({ method: 'evm_snapshot' as never, params: [] as never }) as string;
    const sw = createEvmWatcher({
      chain: deepChain, config: small, client: createEvmClient(small, { retryCount: 0 }), sql: ctx.deps.sql, settlement,
      redis: ctx.deps.redis, queuePrefix: ctx.config.queuePrefix, logger: ctx.deps.logger,
    });
    await payEth(7, inv.address, parseEther('0.001'));
    await mine(4);
    await sw.runOnce();
    await env.f.publicClient.request({ method: 'evm_revert' as never, params: [snapshot] as never });
    await mine(8);
    await expect(sw.runOnce()).rejects.toMatchObject({ code: 'reorg_too_deep', retryable: false });
    const ctl = new AbortController();
    // Rejects by itself (the worker logs it as fatal): the chain is stopped, not retried forever.
    await expect(sw.run(ctl.signal)).rejects.toMatchObject({ code: 'reorg_too_deep' });
    const h = await readChainHealth(ctx.deps.redis, ctx.config.queuePrefix, deepChain);
    expect(h).toMatchObject({ state: 'error' });
    expect(h!.error).toMatch(/deeper than the kept window/);
    // Repair for the next tests: forget the cursor so the watcher restarts at the tip.
    await ctx.deps.sql`delete from chain_state where chain = ${deepChain}`;
    await ctx.deps.sql`delete from chain_blocks where chain = ${deepChain}`;
  });
});

describe('EVM watcher: restarts', () => {
  it('a restart in the middle of a catch-up records every payment exactly once', async () => {
    const start = (await tip()) + 1;
    const invs = await Promise.all([0, 1, 2].map(() => insertEvmInvoice(ctx.deps.sql, env, { merchantId, treasury: randomAddress(), usdCents: 100_000n })));
    for (let round = 0; round < 3; round++) {
      for (const inv of invs) {
        await payEth(8, inv.address, parseEther('0.001') * BigInt(round + 1));
        await payToken(env.usdc, inv.address, 1_000_000n * BigInt(round + 1));
      }
    }
    // First process: a few small ranges, then it "dies" (a fetch that fails after some requests).
    let requests = 0;
    const dying = createEvmClient(env.cfg, {
      retryCount: 0,
      fetchFn: async (input, init) => {
        if (++requests > 6) throw new Error('connection reset (simulated crash)');
        return fetch(input, init);
      },
    });
    const a = createEvmWatcher({
      chain: EVM_CHAIN, config: env.cfg, client: dying, sql: ctx.deps.sql, settlement, logger: ctx.deps.logger,
      queuePrefix: ctx.config.queuePrefix, catchupRange: 4, startBlock: start,
    });
    await expect(a.runOnce()).rejects.toMatchObject({ code: 'evm_rpc_error' });
    const mid = await settlement.cursor(ctx.deps.sql, EVM_CHAIN);
    expect(mid!.height).toBeGreaterThan(start);
    expect(mid!.height).toBeLessThan(await tip());

    // A second process picks up from the cursor.
    const b = watcher({ catchupRange: 5 });
    await b.runOnce();
    await b.runOnce();
    for (const inv of invs) {
      const rows = await paymentsOf(inv.invoiceId);
      expect(rows.map((r) => [r.method, r.amount]).sort()).toEqual([
        ['ETH-ethereum', parseEther('0.001')], ['ETH-ethereum', parseEther('0.002')], ['ETH-ethereum', parseEther('0.003')],
        ['USDC-ethereum', 1_000_000n], ['USDC-ethereum', 2_000_000n], ['USDC-ethereum', 3_000_000n],
      ].sort());
      const [ev] = await ctx.deps.sql<{ n: bigint }[]>`select count(*)::int8 as n from events where invoice_id = ${inv.invoiceId} and type = 'invoice.payment_detected'`;
      expect(ev!.n).toBe(6n);
    }
    w = b;
  });
});

describe('EVM watcher: RPC failures', () => {
  it('an unreachable node gives a clear error, health shows the chain unhealthy, and run() backs off without crashing', async () => {
    const down = { ...env.cfg, rpc_url: 'http://127.0.0.1:9' };
    let attempts = 0;
    const client = createEvmClient(down, {
      retryCount: 0, timeoutMs: 500,
      fetchFn: async (input, init) => {
        attempts++;
        return fetch(input, init);
      },
    });
    const dw = createEvmWatcher({
      chain: 'ethereum-down', config: down, client, sql: ctx.deps.sql, settlement, redis: ctx.deps.redis,
      queuePrefix: ctx.config.queuePrefix, logger: ctx.deps.logger, backoffMinMs: 100, backoffMaxMs: 400,
    });
    const err = await dw.runOnce().then(() => null, (e: unknown) => e as { code: string; message: string; retryable: boolean });
    expect(err).toMatchObject({ code: 'evm_rpc_error', retryable: true });
    expect(err!.message).toContain('http://127.0.0.1:9');
    const h = await readChainHealth(ctx.deps.redis, ctx.config.queuePrefix, 'ethereum-down');
    expect(h).toMatchObject({ state: 'error' });

    attempts = 0;
    const ctl = new AbortController();
    const started = Date.now();
    const running = dw.run(ctl.signal);
    await new Promise((r) => setTimeout(r, 1_500));
    ctl.abort();
    await running; // never throws
    // Backoff 100, 200, 400, 400 …: about 5 tries in 1.5 s, not hundreds.
    expect(attempts).toBeGreaterThanOrEqual(2);
    expect(attempts).toBeLessThanOrEqual(8);
    expect(Date.now() - started).toBeLessThan(3_000);
  });
});
