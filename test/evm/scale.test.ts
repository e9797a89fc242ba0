import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseEther } from 'viem';
import { createEvmClient } from '../../src/chains/evm/client.ts';
import { createAssetRegistry } from '../../src/money/assets.ts';
import { createSettlementService } from '../../src/settlement/service.ts';
import { createEvmWatcher } from '../support/watchers.ts';
import { createTestContext, type TestContext } from '../support/db.ts';
import { EVM_CHAIN, insertEvmInvoice, insertManyOpenInvoices, setupEvm, type EvmTestEnv } from '../support/evm.ts';
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

describe('EVM watcher at scale', () => {
  it('keeps the per-block RPC cost constant from 10 to 10,000 open invoices', async () => {
    const settlement = createSettlementService({
      chains: env.chains, assets: createAssetRegistry(env.chains), logger: ctx.deps.logger, queuePrefix: ctx.config.queuePrefix, publicUrl: 'http://kassa.test',
    });
    const merchantId = (await ctx.deps.merchants.create(ctx.deps.sql, { name: 'Big shop' })).id;
    const client = createEvmClient(env.cfg, { retryCount: 0 });
    const w = createEvmWatcher({
      chain: EVM_CHAIN, config: env.cfg, client, sql: ctx.deps.sql, settlement, queuePrefix: ctx.config.queuePrefix, logger: ctx.deps.logger,
    });
    const paid = await insertEvmInvoice(ctx.deps.sql, env, { merchantId, treasury: randomAddress() });
    await insertManyOpenInvoices(ctx.deps.sql, merchantId, 9);
    await w.runOnce(); // first pass: chain id check, starts at the tip

    // One block with one payment to an open address, 10 open invoices.
    await mined(env.f, wallet(env.f, 1).sendTransaction({ to: paid.address, value: parseEther('0.001') }));
    const small = await w.runOnce();
    expect(small.blocks).toBe(1);

    await insertManyOpenInvoices(ctx.deps.sql, merchantId, 9_990);
    const [count] = await ctx.deps.sql<{ n: bigint }[]>`select count(*)::int8 as n from deposit_addresses where chain = ${EVM_CHAIN}`;
    expect(count!.n).toBe(10_000n);

    await mined(env.f, wallet(env.f, 1).sendTransaction({ to: paid.address, value: parseEther('0.001') }));
    const t0 = performance.now();
    const big = await w.runOnce();
    const ms = performance.now() - t0;
    expect(big.blocks).toBe(1);

    // Same HTTP round trips and same per-block JSON-RPC calls; only the balancesOf eth_calls
    // grow (ceil(n / 2,000)), and they travel in the same single batch.
    expect(big.httpRequests).toBe(small.httpRequests);
    const perBlock = (m: Record<string, number>) => ({ ...m, eth_call: undefined });
    expect(perBlock(big.byMethod)).toEqual(perBlock(small.byMethod));
    expect(small.byMethod.eth_call).toBe(1);
    expect(big.byMethod.eth_call).toBe(5);
    console.log(`[evm scale] 10 open: ${JSON.stringify(small.byMethod)} http=${small.httpRequests}; 10,000 open: ${JSON.stringify(big.byMethod)} http=${big.httpRequests}; block processed in ${ms.toFixed(0)} ms`);
    // The time is printed for information only: timings on a shared 2-core machine are not a
    // pass/fail criterion (performance figures belong in bench/).

    const rows = await ctx.deps.sql<{ amount: bigint }[]>`select amount from payments where invoice_id = ${paid.invoiceId}`;
    expect(rows.map((r) => r.amount)).toEqual([parseEther('0.001'), parseEther('0.001')]);

    // Bounded: with 2,000 addresses per block the balance check is one eth_call per block whatever
    // the number of open invoices, and every open address is read within ceil(10,000 / 2,000) blocks.
    const bounded = createEvmWatcher({
      chain: EVM_CHAIN, config: env.cfg, client, sql: ctx.deps.sql, settlement, queuePrefix: ctx.config.queuePrefix, logger: ctx.deps.logger,
      balanceCheckPerBlock: 2_000,
    });
    for (let i = 0; i < 5; i++) {
      await mined(env.f, wallet(env.f, 1).sendTransaction({ to: randomAddress(), value: 1n }));
      const r = await bounded.runOnce();
      expect(r.byMethod.eth_call).toBe(1);
    }
  });
});
