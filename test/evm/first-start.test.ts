/**
 * Issue 14 defect 8: on its first pass (no cursor) the EVM watcher started at the node's tip, so a
 * token payment made before the first worker start was never scanned. The first pass now starts
 * low enough to cover every open invoice (src/chains/start-height.ts), with a bounded look-back.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Address } from 'viem';
import { testUSDCAbi, testUSDTAbi } from '../../src/sandbox/contract-artifacts.ts';
import { createEvmClient } from '../../src/chains/evm/client.ts';
import { CLOCK_MARGIN_SECONDS, firstScanHeight } from '../../src/chains/start-height.ts';
import type { EvmChainConfig } from '../../src/config.ts';
import { createAssetRegistry } from '../../src/money/assets.ts';
import { createSettlementService, type SettlementService } from '../../src/settlement/service.ts';
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
  merchantId = (await ctx.deps.merchants.create(ctx.deps.sql, { name: 'First start shop' })).id;
}, 90_000);

afterAll(async () => {
  await ctx?.close();
  await env?.stop();
});

const tip = async () => Number(await env.f.publicClient.getBlockNumber());
const mine = (n = 1) => env.f.publicClient.request({ method: 'hardhat_mine' as never, params: [`0x${n.toString(16)}`] as never });
const payToken = (token: Address, to: Address, amount: bigint) =>
  mined(env.f, wallet(env.f, 0).writeContract({ address: token, abi: token === env.usdt ? testUSDTAbi : testUSDCAbi, functionName: 'transfer', args: [to, amount] }));

function watcher(cfg: EvmChainConfig = env.cfg, extra: Partial<EvmWatcherOptions> = {}) {
  return createEvmWatcher({
    chain: EVM_CHAIN, config: cfg, client: createEvmClient(cfg, { retryCount: 0 }), sql: ctx.deps.sql, settlement,
    redis: ctx.deps.redis, queuePrefix: ctx.config.queuePrefix, logger: ctx.deps.logger, ...extra,
  });
}

const paymentsOf = (invoiceId: string) =>
  ctx.deps.sql<{ method: string; amount: bigint; status: string; block_height: bigint }[]>`
    select method, amount, status, block_height from payments where invoice_id = ${invoiceId} order by seq`;
const statusOf = async (invoiceId: string) => (await ctx.deps.sql<{ status: string }[]>`select status from invoices where id = ${invoiceId}`)[0]!.status;
const forgetCursor = () => ctx.deps.sql.begin(async (tx) => {
  await tx`delete from chain_blocks where chain = ${EVM_CHAIN}`;
  await tx`delete from chain_state where chain = ${EVM_CHAIN}`;
});
const endMonitoring = (invoiceId: string) => ctx.deps.sql`update invoices set monitoring_until = now() - interval '1 second' where id = ${invoiceId}`;
const firstScanLogs = () => ctx.logs.lines.filter((l) => l.includes('first scan')).map((l) => JSON.parse(l) as Record<string, any>);

describe('EVM watcher: the first pass covers open invoices', () => {
  let first: Awaited<ReturnType<typeof insertEvmInvoice>>;

  it('credits a token payment made before the first watcher start (no cursor when the invoice was created)', async () => {
    await mine(5);
    first = await insertEvmInvoice(ctx.deps.sql, env, { merchantId, treasury: randomAddress(), usdCents: 1000n, confirmations: 1 });
    const [da] = await ctx.deps.sql<{ chain_height: bigint | null }[]>`select chain_height from deposit_addresses where invoice_id = ${first.invoiceId}`;
    expect(da!.chain_height).toBeNull(); // the chain had no cursor yet
    const paid = await payToken(env.usdc, first.address, 10_000_000n); // $10, in full
    await mine(3);
    expect(await tip()).toBeGreaterThan(Number(paid.blockNumber));

    await watcher().runOnce();
    const rows = await paymentsOf(first.invoiceId);
    expect(rows.map((p) => [p.method, p.amount, p.status, Number(p.block_height)])).toEqual([['USDC-ethereum', 10_000_000n, 'confirmed', Number(paid.blockNumber)]]);
    expect(await statusOf(first.invoiceId)).toBe('settled');
    expect(firstScanLogs().at(-1)).toMatchObject({ reason: 'time', open_addresses: 1 });
  });

  it('after the cursor was lost, starts at the chain height recorded with the deposit address', async () => {
    const cursor = (await settlement.cursor(ctx.deps.sql, EVM_CHAIN))!;
    const inv = await insertEvmInvoice(ctx.deps.sql, env, { merchantId, treasury: randomAddress(), usdCents: 500n, confirmations: 1 });
    const [da] = await ctx.deps.sql<{ chain_height: bigint | null }[]>`select chain_height from deposit_addresses where invoice_id = ${inv.invoiceId}`;
    expect(Number(da!.chain_height)).toBe(cursor.height);
    await mine(2);
    const paid = await payToken(env.usdt, inv.address, 5_000_000n);
    await mine(2);
    await endMonitoring(first.invoiceId); // only the new invoice is open
    await forgetCursor();

    await watcher().runOnce();
    expect((await paymentsOf(inv.invoiceId)).map((p) => [p.method, p.amount, Number(p.block_height)])).toEqual([['USDT-ethereum', 5_000_000n, Number(paid.blockNumber)]]);
    expect(await statusOf(inv.invoiceId)).toBe('settled');
    expect(firstScanLogs().at(-1)).toMatchObject({ reason: 'recorded', start: cursor.height, open_addresses: 1 });
    await endMonitoring(inv.invoiceId);
  });

  it('never looks back further than first_scan_lookback_blocks (and says so)', async () => {
    const inv = await insertEvmInvoice(ctx.deps.sql, env, { merchantId, treasury: randomAddress(), usdCents: 500n, confirmations: 1 });
    await payToken(env.usdc, inv.address, 5_000_000n);
    await mine(5);
    await forgetCursor();
    const cfg = { ...env.cfg, first_scan_lookback_blocks: 3 };
    const t = await tip();
    const r = await watcher(cfg).runOnce();
    expect(r.blocks).toBe(3);
    expect(await paymentsOf(inv.invoiceId)).toEqual([]);
    expect(firstScanLogs().at(-1)).toMatchObject({ start: t - 2, lookback: 3, msg: expect.stringContaining('older than first_scan_lookback_blocks') });
    await endMonitoring(inv.invoiceId);
  });

  it('without open invoices the first pass starts at the tip', async () => {
    await forgetCursor();
    const t = await tip();
    const r = await watcher().runOnce();
    expect(r.blocks).toBe(1);
    expect(firstScanLogs().at(-1)).toMatchObject({ reason: 'tip', start: t, open_addresses: 0 });
  });
});

describe('firstScanHeight: the block of an invoice creation time', () => {
  it('finds the last block at least the clock margin before the oldest unrecorded creation', async () => {
    const inv = await insertEvmInvoice(ctx.deps.sql, env, { merchantId, treasury: randomAddress() });
    const created = new Date('2030-01-01T12:00:00Z');
    await ctx.deps.sql`update deposit_addresses set created_at = ${created}, chain_height = null where invoice_id = ${inv.invoiceId}`;
    // a chain of 10-minute blocks, block h at base + 600 h
    const base = Math.floor(created.getTime() / 1000) - 1000 * 600;
    const reads: number[] = [];
    const blockTime = async (h: number) => (reads.push(h), base + 600 * h);
    const r = await firstScanHeight({ db: ctx.deps.sql, chain: EVM_CHAIN, tip: 1100, lookback: 5000, blockTime });
    // last block with time <= created - margin: 1000 - 7200/600 = 988
    expect(CLOCK_MARGIN_SECONDS).toBe(7200);
    expect(r).toEqual({ height: 988, reason: 'time', open: 1 });
    expect(reads.length).toBeLessThan(15); // a binary search, not a walk
    // bounded by the look-back
    expect(await firstScanHeight({ db: ctx.deps.sql, chain: EVM_CHAIN, tip: 1100, lookback: 50, blockTime })).toEqual({ height: 1051, reason: 'lookback', open: 1 });
    await endMonitoring(inv.invoiceId);
  });
});
