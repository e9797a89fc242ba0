import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseEther, type Address } from 'viem';
import { forwarderFactoryAbi } from '../../src/chains/evm/artifacts.ts';
import { testUSDCAbi } from '../../src/sandbox/contract-artifacts.ts';
import { ethSenderAbi, ethSenderBytecode } from '../support/contract-artifacts.ts';
import { invoiceSaltFor } from '../../src/chains/evm/forwarder.ts';
import { createEvmClient } from '../../src/chains/evm/client.ts';
import { createSweeper } from '../../src/chains/evm/sweeper.ts';
import { createAssetRegistry } from '../../src/money/assets.ts';
import { createSettlementService } from '../../src/settlement/service.ts';
import { createEvmWatcher } from '../support/watchers.ts';
import { createTestContext, type TestContext } from '../support/db.ts';
import { EVM_CHAIN, insertEvmInvoice, setupEvm, type EvmTestEnv } from '../support/evm.ts';
import { mined, randomAddress, wallet } from '../contracts/fixture.ts';

let ctx: TestContext;
let env: EvmTestEnv;

beforeAll(async () => {
  env = await setupEvm();
  ctx = await createTestContext();
}, 90_000);

afterAll(async () => {
  await ctx?.close();
  await env?.stop();
});

const usdcOf = (a: Address) => env.f.publicClient.readContract({ address: env.usdc, abi: testUSDCAbi, functionName: 'balanceOf', args: [a] });
const ethOf = (a: Address) => env.f.publicClient.getBalance({ address: a });

describe('EVM sweeper', () => {
  it('moves the ETH and USDC of a settled invoice from its forwarder to the treasury, and the balance check stays right', async () => {
    const settlement = createSettlementService({
      chains: env.chains, assets: createAssetRegistry(env.chains), logger: ctx.deps.logger, queuePrefix: ctx.config.queuePrefix, publicUrl: 'http://kassa.test',
    });
    const merchantId = (await ctx.deps.merchants.create(ctx.deps.sql, { name: 'Sweep shop' })).id;
    const w = createEvmWatcher({
      chain: EVM_CHAIN, config: env.cfg, client: createEvmClient(env.cfg, { retryCount: 0 }), sql: ctx.deps.sql, settlement,
      queuePrefix: ctx.config.queuePrefix, logger: ctx.deps.logger,
    });
    await w.runOnce();
    const treasury = randomAddress();
    const inv = await insertEvmInvoice(ctx.deps.sql, env, { merchantId, treasury, usdCents: 2000n, confirmations: 1 });
    await mined(env.f, wallet(env.f, 1).sendTransaction({ to: inv.address, value: parseEther('0.01') })); // $10
    await mined(env.f, wallet(env.f, 0).writeContract({ address: env.usdc, abi: testUSDCAbi, functionName: 'transfer', args: [inv.address, 10_000_000n] })); // $10
    await w.runOnce();
    expect((await ctx.deps.sql<{ status: string }[]>`select status from invoices where id = ${inv.invoiceId}`)[0]!.status).toBe('settled');

    const sweeper = createSweeper({
      chain: EVM_CHAIN, cfg: env.cfg, walletClient: wallet(env.f, 9), publicClient: env.f.publicClient, sql: ctx.deps.sql, logger: ctx.deps.logger,
    });
    const [res] = await sweeper.sweepSettled(10);
    expect(res).toMatchObject({ invoiceId: inv.invoiceId, status: 'confirmed', nativeAmount: parseEther('0.01') });
    expect(res!.tokenAmounts).toEqual({ [env.usdc.toLowerCase()]: 10_000_000n });
    expect(await ethOf(treasury)).toBe(parseEther('0.01'));
    expect(await usdcOf(treasury)).toBe(10_000_000n);
    expect(await ethOf(inv.address)).toBe(0n);
    expect(await usdcOf(inv.address)).toBe(0n);
    const [row] = await ctx.deps.sql<{ status: string; native_amount: bigint; tx_hash: string; forwarder: string }[]>`
      select status, native_amount, tx_hash, forwarder from evm_sweeps where invoice_id = ${inv.invoiceId}`;
    expect(row).toMatchObject({ status: 'confirmed', native_amount: parseEther('0.01'), tx_hash: res!.txHash, forwarder: inv.lower });

    // Nothing left to sweep; the watcher's balance check sees no phantom payment after the sweep.
    expect(await sweeper.sweepSettled(10)).toEqual([]);
    await w.runOnce();
    expect(await ctx.deps.sql`select 1 from payments where invoice_id = ${inv.invoiceId}`).toHaveLength(2);

    // ETH sent later by a contract to the (now deployed) forwarder is credited exactly once, for its amount.
    const sender = (await mined(env.f, wallet(env.f, 3).deployContract({ abi: ethSenderAbi, bytecode: ethSenderBytecode }))).contractAddress!;
    await mined(env.f, wallet(env.f, 3).writeContract({ address: sender, abi: ethSenderAbi, functionName: 'sendViaTransfer', args: [inv.address], value: parseEther('0.002') }));
    await w.runOnce();
    await w.runOnce();
    const late = await ctx.deps.sql<{ output_index: number; amount: bigint }[]>`
      select output_index, amount from payments where invoice_id = ${inv.invoiceId} and output_index = -2`;
    expect(late.map((r) => r.amount)).toEqual([parseEther('0.002')]);

    // A second sweep (new payment after the first one) moves it too.
    const [again] = await sweeper.sweepSettled(10);
    expect(again).toMatchObject({ invoiceId: inv.invoiceId, nativeAmount: parseEther('0.002') });
    expect(await ethOf(treasury)).toBe(parseEther('0.012'));
  });

  it('sends no transaction when a stranger already flushed the forwarder empty; sweeps again after a new payment', async () => {
    const settlement = createSettlementService({
      chains: env.chains, assets: createAssetRegistry(env.chains), logger: ctx.deps.logger, queuePrefix: ctx.config.queuePrefix, publicUrl: 'http://kassa.test',
    });
    const merchantId = (await ctx.deps.merchants.create(ctx.deps.sql, { name: 'Flushed shop' })).id;
    const w = createEvmWatcher({
      chain: EVM_CHAIN, config: env.cfg, client: createEvmClient(env.cfg, { retryCount: 0 }), sql: ctx.deps.sql, settlement,
      queuePrefix: ctx.config.queuePrefix, logger: ctx.deps.logger,
    });
    await w.runOnce();
    const treasury = randomAddress();
    const inv = await insertEvmInvoice(ctx.deps.sql, env, { merchantId, treasury, usdCents: 1000n, confirmations: 1 });
    await mined(env.f, wallet(env.f, 1).sendTransaction({ to: inv.address, value: parseEther('0.01') })); // $10
    await w.runOnce();
    expect((await ctx.deps.sql<{ status: string }[]>`select status from invoices where id = ${inv.invoiceId}`)[0]!.status).toBe('settled');

    // A stranger (not Kassa's key) flushes the forwarder to the treasury first.
    await mined(env.f, wallet(env.f, 5).writeContract({
      address: env.f.contracts.factory, abi: forwarderFactoryAbi, functionName: 'deployAndFlush',
      args: [treasury, invoiceSaltFor(inv.invoiceId), [env.usdc, env.usdt]], gas: 1_000_000n,
    }));
    expect(await ethOf(inv.address)).toBe(0n);
    expect(await ethOf(treasury)).toBe(parseEther('0.01'));

    const key = wallet(env.f, 8);
    const sweeper = createSweeper({
      chain: EVM_CHAIN, cfg: env.cfg, walletClient: key, publicClient: env.f.publicClient, sql: ctx.deps.sql, logger: ctx.deps.logger,
    });
    const nonce = () => env.f.publicClient.getTransactionCount({ address: key.account.address });
    const before = await nonce();
    expect(await sweeper.sweepInvoice(inv.invoiceId)).toBeNull();
    expect(await sweeper.sweepSettled(50)).toEqual([]);
    expect(await nonce()).toBe(before); // no transaction, no gas
    const rows = await ctx.deps.sql<{ status: string; tx_hash: string | null; native_amount: bigint }[]>`
      select status, tx_hash, native_amount from evm_sweeps where invoice_id = ${inv.invoiceId}`;
    expect(rows).toEqual([{ status: 'confirmed', tx_hash: null, native_amount: 0n }]); // the check, once: sweepSettled skipped it

    // A payment after the check: the next sweepSettled moves it.
    await mined(env.f, wallet(env.f, 0).writeContract({ address: env.usdc, abi: testUSDCAbi, functionName: 'transfer', args: [inv.address, 3_000_000n] }));
    await w.runOnce();
    const [res] = await sweeper.sweepSettled(50);
    expect(res).toMatchObject({ invoiceId: inv.invoiceId, status: 'confirmed', nativeAmount: 0n, tokenAmounts: { [env.usdc.toLowerCase()]: 3_000_000n } });
    expect(await nonce()).toBe(before + 1);
    expect(await usdcOf(treasury)).toBe(3_000_000n);
  });

  it('refuses to sweep an invoice that is not settled', async () => {
    const merchantId = (await ctx.deps.merchants.create(ctx.deps.sql, { name: 'Other' })).id;
    const inv = await insertEvmInvoice(ctx.deps.sql, env, { merchantId, treasury: randomAddress() });
    const sweeper = createSweeper({
      chain: EVM_CHAIN, cfg: env.cfg, walletClient: wallet(env.f, 9), publicClient: env.f.publicClient, sql: ctx.deps.sql, logger: ctx.deps.logger,
    });
    await expect(sweeper.sweepInvoice(inv.invoiceId)).rejects.toMatchObject({ code: 'invoice_not_settled' });
  });
});
