/**
 * use_finalized_tag: a payment at or below the node's `finalized` block counts as fully confirmed,
 * even when the invoice asks for more confirmations than the block has.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseEther } from 'viem';
import { createEvmClient } from '../../src/chains/evm/client.ts';
import { createAssetRegistry } from '../../src/money/assets.ts';
import { createSettlementService } from '../../src/settlement/service.ts';
import { createEvmWatcher } from '../support/watchers.ts';
import { createTestContext, type TestContext } from '../support/db.ts';
import { EVM_CHAIN, insertEvmInvoice, setupEvm, type EvmTestEnv } from '../support/evm.ts';
import { mined, randomAddress, wallet } from '../contracts/fixture.ts';

let ctx: TestContext;
let env: EvmTestEnv;

beforeAll(async () => {
  env = await setupEvm({ use_finalized_tag: true });
  ctx = await createTestContext();
}, 90_000);
afterAll(async () => {
  await ctx?.close();
  await env?.stop();
});

describe('EVM watcher with use_finalized_tag', () => {
  it('settles a payment in a finalized block although it has fewer confirmations than required', async () => {
    const settlement = createSettlementService({
      chains: env.chains, assets: createAssetRegistry(env.chains), logger: ctx.deps.logger, redis: ctx.deps.redis,
      queuePrefix: ctx.config.queuePrefix, publicUrl: 'http://kassa.test',
    });
    const client = createEvmClient(env.cfg, { retryCount: 0 });
    const merchantId = (await ctx.deps.merchants.create(ctx.deps.sql, { name: 'Final shop' })).id;
    const inv = await insertEvmInvoice(ctx.deps.sql, env, { merchantId, treasury: randomAddress(), usdCents: 1000n, confirmations: 50 });
    const start = Number(await env.f.publicClient.getBlockNumber()) + 1;
    const w = createEvmWatcher({
      chain: EVM_CHAIN, config: env.cfg, client, sql: ctx.deps.sql, settlement, redis: ctx.deps.redis,
      queuePrefix: ctx.config.queuePrefix, logger: ctx.deps.logger, startBlock: start,
    });
    await mined(env.f, wallet(env.f, 1).sendTransaction({ to: inv.address, value: parseEther('0.01') }));
    const finalized = await env.f.publicClient.getBlock({ blockTag: 'finalized' });
    const r = await w.runOnce();
    expect(r.byMethod.eth_getBlockByNumber).toBeGreaterThan(0);
    const [state] = await ctx.deps.sql<{ finalized_height: bigint; tip_height: bigint }[]>`select finalized_height, tip_height from chain_state where chain = ${EVM_CHAIN}`;
    // hardhat's automine node reports its latest block as finalized
    expect(state!.finalized_height).toBe(finalized.number);
    const [inv2] = await ctx.deps.sql<{ status: string }[]>`select status from invoices where id = ${inv.invoiceId}`;
    expect(inv2!.status).toBe('settled');

    // Without the tag the same payment would wait for 50 confirmations.
    await ctx.deps.sql`update chain_state set finalized_height = null`;
    const other = await insertEvmInvoice(ctx.deps.sql, env, { merchantId, treasury: randomAddress(), usdCents: 1000n, confirmations: 50 });
    await mined(env.f, wallet(env.f, 2).sendTransaction({ to: other.address, value: parseEther('0.01') }));
    const plain = createEvmWatcher({
      chain: EVM_CHAIN, config: { ...env.cfg, use_finalized_tag: false }, client, sql: ctx.deps.sql, settlement, redis: ctx.deps.redis,
      queuePrefix: ctx.config.queuePrefix, logger: ctx.deps.logger,
    });
    await plain.runOnce();
    const [o] = await ctx.deps.sql<{ status: string }[]>`select status from invoices where id = ${other.invoiceId}`;
    expect(o!.status).toBe('processing');
  });
});
