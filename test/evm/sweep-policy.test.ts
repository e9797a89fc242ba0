/**
 * The sweeper's per-chain policy against a real hardhat node (docs/evm.md, "Sweep policy"): dust
 * is skipped and reported, a worthwhile forwarder is swept, deployed forwarders are flushed in one
 * batch transaction, and a sweeper key low on gas shows in /metrics and /health.
 */
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseEther, type Address } from 'viem';
import { generatePrivateKey, privateKeyToAccount } from 'viem/accounts';
import { createWalletClient, http } from 'viem';
import { hardhat } from 'viem/chains';
import { testUSDCAbi } from '../../src/sandbox/contract-artifacts.ts';
import { createEvmClient } from '../../src/chains/evm/client.ts';
import { createSweeper, sweepPolicyOf, worthSweeping, type Sweeper } from '../../src/chains/evm/sweeper.ts';
import { reportChainHealth } from '../../src/chains/health.ts';
import { createApp } from '../../src/api/app.ts';
import type { EvmChainConfig } from '../../src/config.ts';
import { createAssetRegistry } from '../../src/money/assets.ts';
import { createSettlementService } from '../../src/settlement/service.ts';
import { runSweeper } from '../../workers/processors.ts';
import { createEvmWatcher, type EvmWatcher } from '../support/watchers.ts';
import { createTestContext, type TestContext } from '../support/db.ts';
import { EVM_CHAIN, evmChainsConfig, insertEvmInvoice, setupEvm, type EvmTestEnv, type EvmInvoice } from '../support/evm.ts';
import { mined, randomAddress, wallet } from '../contracts/fixture.ts';

const SWEEPER_KEY = generatePrivateKey();
// k = 100 keeps the test independent of hardhat's gas price (1–3 gwei): a first sweep (~100k gas)
// costs 1e14–3e14 wei, so native is worth sweeping from 0.01–0.03 ETH; 0.001 ETH is dust, 0.05 is not.
const POLICY = { min_gas_multiple: 100, token_minimums: { USDC: '1000000' }, batch_size: 20, low_balance: '1000000000000000000', recheck_minutes: 60 };

let ctx: TestContext;
let env: EvmTestEnv;
let cfg: EvmChainConfig;
let w: EvmWatcher;
let sweeper: Sweeper;
let merchantId: string;

beforeAll(async () => {
  env = await setupEvm({ sweep: POLICY, sweeper_private_key: SWEEPER_KEY });
  cfg = env.cfg;
  const dir = mkdtempSync(path.join(tmpdir(), 'kassa-sweep-'));
  const file = path.join(dir, 'chains.json');
  writeFileSync(file, JSON.stringify({ chains: { [EVM_CHAIN]: { ...cfg } } }));
  ctx = await createTestContext({ KASSA_CONFIG: file });
  const settlement = createSettlementService({
    chains: env.chains, assets: createAssetRegistry(env.chains), logger: ctx.deps.logger, queuePrefix: ctx.config.queuePrefix, publicUrl: 'http://kassa.test',
  });
  w = createEvmWatcher({
    chain: EVM_CHAIN, config: cfg, client: createEvmClient(cfg, { retryCount: 0 }), sql: ctx.deps.sql, settlement,
    queuePrefix: ctx.config.queuePrefix, logger: ctx.deps.logger,
  });
  await w.runOnce();
  merchantId = (await ctx.deps.merchants.create(ctx.deps.sql, { name: 'Policy shop' })).id;
  // The sweeper key holds 0.02 ETH: enough for the sweeps, below the 1 ETH alert threshold.
  await mined(env.f, wallet(env.f, 0).sendTransaction({ to: privateKeyToAccount(SWEEPER_KEY).address, value: parseEther('0.02') }));
  sweeper = createSweeper({
    chain: EVM_CHAIN, cfg, sql: ctx.deps.sql, logger: ctx.deps.logger, publicClient: env.f.publicClient,
    walletClient: createWalletClient({ chain: hardhat, transport: http(env.f.node.url, { retryCount: 0 }), account: privateKeyToAccount(SWEEPER_KEY), pollingInterval: 25 }),
  });
}, 120_000);

afterAll(async () => {
  await ctx?.close();
  await env?.stop();
});

const usdcOf = (a: Address) => env.f.publicClient.readContract({ address: env.usdc, abi: testUSDCAbi, functionName: 'balanceOf', args: [a] });
const ethOf = (a: Address) => env.f.publicClient.getBalance({ address: a });
const payEth = (to: Address, eth: string) => mined(env.f, wallet(env.f, 1).sendTransaction({ to, value: parseEther(eth) }));
const payUsdc = (to: Address, units: bigint) => mined(env.f, wallet(env.f, 0).writeContract({ address: env.usdc, abi: testUSDCAbi, functionName: 'transfer', args: [to, units] }));
const statusOf = async (id: string) => (await ctx.deps.sql<{ status: string }[]>`select status from invoices where id = ${id}`)[0]!.status;
const sweepRows = (id: string) => ctx.deps.sql<{ tx_hash: string | null; status: string }[]>`select tx_hash, status from evm_sweeps where invoice_id = ${id} order by id`;

describe('sweep rule (one function)', () => {
  it('native: balance ≥ k × gas cost; tokens: a non-zero balance at or above the token minimum', () => {
    const policy = sweepPolicyOf(cfg);
    const usdc = env.usdc.toLowerCase();
    const none = new Map<string, bigint>([[usdc, 0n]]);
    expect(worthSweeping({ native: 100n * 7n, tokens: none }, 7n, policy)).toBe(true);
    expect(worthSweeping({ native: 100n * 7n - 1n, tokens: none }, 7n, policy)).toBe(false);
    expect(worthSweeping({ native: 0n, tokens: new Map([[usdc, 1_000_000n]]) }, 7n, policy)).toBe(true);
    expect(worthSweeping({ native: 0n, tokens: new Map([[usdc, 999_999n]]) }, 7n, policy)).toBe(false);
    // USDT has no minimum in this policy: any balance is worth it.
    expect(worthSweeping({ native: 0n, tokens: new Map([[env.usdt.toLowerCase(), 1n]]) }, 7n, policy)).toBe(true);
  });
});

describe('sweep policy on hardhat', () => {
  let ethDust: EvmInvoice;
  let ethWorth: EvmInvoice;
  let usdcDust: EvmInvoice;
  let usdcWorth: EvmInvoice;
  const treasury = randomAddress();

  it('skips and reports dust forwarders, sweeps the worthwhile ones', async () => {
    ethDust = await insertEvmInvoice(ctx.deps.sql, env, { merchantId, treasury, usdCents: 100n }); // 0.001 ETH
    ethWorth = await insertEvmInvoice(ctx.deps.sql, env, { merchantId, treasury, usdCents: 5000n }); // 0.05 ETH
    usdcDust = await insertEvmInvoice(ctx.deps.sql, env, { merchantId, treasury, usdCents: 50n }); // 0.50 USDC
    usdcWorth = await insertEvmInvoice(ctx.deps.sql, env, { merchantId, treasury, usdCents: 200n }); // 2 USDC
    await payEth(ethDust.address, '0.001');
    await payEth(ethWorth.address, '0.05');
    await payUsdc(usdcDust.address, 500_000n);
    await payUsdc(usdcWorth.address, 2_000_000n);
    await w.runOnce();
    for (const inv of [ethDust, ethWorth, usdcDust, usdcWorth]) expect(await statusOf(inv.invoiceId)).toBe('settled');

    const gasPrice = await env.f.publicClient.getGasPrice();
    const run = await sweeper.sweepRun(50);
    expect(run.dust.map((d) => d.invoiceId).sort()).toEqual([ethDust.invoiceId, usdcDust.invoiceId].sort());
    const dustEth = run.dust.find((d) => d.invoiceId === ethDust.invoiceId)!;
    expect(dustEth.native).toBe(parseEther('0.001'));
    // The reported cost is this gas price × a plausible sweep gas; the balance is under 100 × it.
    expect(dustEth.gasCost % gasPrice).toBe(0n);
    expect(dustEth.gasCost / gasPrice).toBeGreaterThan(50_000n);
    expect(dustEth.gasCost / gasPrice).toBeLessThan(200_000n);
    expect(dustEth.native).toBeLessThan(100n * dustEth.gasCost);
    expect(run.dust.find((d) => d.invoiceId === usdcDust.invoiceId)!.tokens[env.usdc.toLowerCase()]).toBe(500_000n);

    expect(run.swept.map((s) => s.invoiceId).sort()).toEqual([ethWorth.invoiceId, usdcWorth.invoiceId].sort());
    expect(run.transactions).toBe(2); // first sweeps deploy their forwarder: one deployAndFlush each
    expect(await ethOf(treasury)).toBe(parseEther('0.05'));
    expect(await usdcOf(treasury)).toBe(2_000_000n);
    expect(await ethOf(ethDust.address)).toBe(parseEther('0.001')); // left where it is
    expect(await usdcOf(usdcDust.address)).toBe(500_000n);
    expect(await sweepRows(ethDust.invoiceId)).toEqual([]);
    expect(await sweepRows(usdcDust.invoiceId)).toEqual([]);
    expect(sweeper.dustPending()).toBe(2);
    expect(ctx.logs.lines.some((l) => l.includes('not swept: worth less than the sweep (dust)') && l.includes(ethDust.invoiceId))).toBe(true);

    // Until their recheck time the dust forwarders are not looked at again (no RPC, no report).
    const again = await sweeper.sweepRun(50);
    expect(again).toEqual({ swept: [], dust: [], transactions: 0 });
  }, 60_000);

  it('a new payment brings a dust forwarder back; deployed forwarders are flushed in one batch transaction', async () => {
    await payUsdc(usdcDust.address, 1_000_000n); // now 1.5 USDC ≥ the 1 USDC minimum
    await payEth(ethWorth.address, '0.05');
    await payUsdc(usdcWorth.address, 3_000_000n);
    await w.runOnce();

    const run = await sweeper.sweepRun(50);
    expect(run.dust).toEqual([]);
    const byId = new Map(run.swept.map((s) => [s.invoiceId, s]));
    expect([...byId.keys()].sort()).toEqual([usdcDust.invoiceId, ethWorth.invoiceId, usdcWorth.invoiceId].sort());
    expect(byId.get(usdcDust.invoiceId)!.tokenAmounts).toEqual({ [env.usdc.toLowerCase()]: 1_500_000n });
    // ethWorth and usdcWorth were deployed by their first sweep: one flushMany for both.
    const a = byId.get(ethWorth.invoiceId)!;
    const b = byId.get(usdcWorth.invoiceId)!;
    expect(a.txHash).toBe(b.txHash);
    expect(a.batchSize).toBe(2);
    expect(a.nativeAmount).toBe(parseEther('0.05'));
    expect(b.tokenAmounts).toEqual({ [env.usdc.toLowerCase()]: 3_000_000n });
    expect(run.transactions).toBe(2);
    expect(sweeper.dustPending()).toBe(1); // ethDust still waits
    expect((await sweepRows(ethWorth.invoiceId)).map((r) => r.tx_hash)).toContain(a.txHash);
    expect((await sweepRows(usdcWorth.invoiceId)).map((r) => r.tx_hash)).toContain(a.txHash);
    expect(await ethOf(treasury)).toBe(parseEther('0.1'));
    expect(await usdcOf(treasury)).toBe(6_500_000n);
  }, 60_000);

  it('a sweeper key below sweep.low_balance shows in /metrics and makes /health degraded (still 200)', async () => {
    const app = createApp(ctx.deps);
    // The chain watcher is healthy: only the sweeper check can degrade /health here.
    await reportChainHealth(ctx.deps.redis, ctx.config.queuePrefix, EVM_CHAIN, { state: 'ok', tip_height: 1, lag_blocks: 0, error: null });
    const result = await runSweeper(ctx.deps, EVM_CHAIN, sweeper, ctx.deps.logger);
    expect(result).toMatchObject({ low: true });

    const health = await app.request('/health');
    expect(health.status).toBe(200);
    const body = (await health.json()) as { status: string; checks: Record<string, { ok: boolean; detail: Record<string, unknown> }> };
    expect(body.status).toBe('degraded');
    expect(body.checks[`chain:${EVM_CHAIN}`]!.ok).toBe(true);
    const check = body.checks[`sweeper:${EVM_CHAIN}`]!;
    expect(check.ok).toBe(false);
    expect(check.detail).toMatchObject({ state: 'low_balance', low: true, low_balance: '1000000000000000000', dust_forwarders: 1, address: privateKeyToAccount(SWEEPER_KEY).address });
    expect(BigInt(check.detail.balance as string)).toBe(await ethOf(privateKeyToAccount(SWEEPER_KEY).address));

    const metrics = await (await app.request('/metrics')).text();
    expect(metrics).toMatch(new RegExp(`^kassa_sweeper_balance_low\\{chain="${EVM_CHAIN}"\\} 1$`, 'm'));
    expect(metrics).toMatch(new RegExp(`^kassa_sweeper_dust_forwarders\\{chain="${EVM_CHAIN}"\\} 1$`, 'm'));
    const shown = Number(/^kassa_sweeper_balance\{chain="ethereum"\} (\S+)$/m.exec(metrics)![1]);
    expect(shown).toBeGreaterThan(0.01);
    expect(shown).toBeLessThan(0.02);

    // Topped up above the threshold: the next run clears it.
    await mined(env.f, wallet(env.f, 0).sendTransaction({ to: privateKeyToAccount(SWEEPER_KEY).address, value: parseEther('1') }));
    expect(await runSweeper(ctx.deps, EVM_CHAIN, sweeper, ctx.deps.logger)).toMatchObject({ low: false });
    const healthy = (await (await app.request('/health')).json()) as { status: string; checks: Record<string, { ok: boolean }> };
    expect(healthy.status).toBe('ok');
    expect(healthy.checks[`sweeper:${EVM_CHAIN}`]!.ok).toBe(true);
    await new Promise((r) => setTimeout(r, 5100)); // the scrape-time series are cached 5 s
    expect(await (await app.request('/metrics')).text()).toMatch(new RegExp(`^kassa_sweeper_balance_low\\{chain="${EVM_CHAIN}"\\} 0$`, 'm'));
  }, 60_000);

  it('a critical check still makes /health 503', async () => {
    const app = createApp(ctx.deps);
    await reportChainHealth(ctx.deps.redis, ctx.config.queuePrefix, EVM_CHAIN, { state: 'error', tip_height: 1, lag_blocks: 0, error: 'node down' });
    const res = await app.request('/health');
    expect(res.status).toBe(503);
    expect(((await res.json()) as { status: string }).status).toBe('degraded');
  });
});

describe('sweep policy config', () => {
  it('a preset fills in its defaults; the entry overrides field by field and token by token', async () => {
    const { parseChainsFile, DEFAULT_SWEEP_POLICY } = await import('../../src/config.ts');
    const chains = parseChainsFile({
      chains: {
        eth: { preset: 'ethereum', rpc_url: 'http://127.0.0.1:1' },
        base: { preset: 'base', rpc_url: 'http://127.0.0.1:2', sweep: { min_gas_multiple: 5, token_minimums: { USDC: '250000' } } },
        local: { type: 'evm', network: 'dev', chain_id: 1337, rpc_url: 'http://127.0.0.1:3' },
      },
    }).chains;
    expect((chains.eth as EvmChainConfig).sweep).toEqual({
      min_gas_multiple: 3, token_minimums: { USDC: '5000000', USDT: '5000000' }, batch_size: 20, low_balance: '50000000000000000', recheck_minutes: 10,
    });
    expect((chains.base as EvmChainConfig).sweep).toEqual({
      min_gas_multiple: 5, token_minimums: { USDC: '250000' }, batch_size: 20, low_balance: '2000000000000000', recheck_minutes: 10,
    });
    expect((chains.local as EvmChainConfig).sweep).toBeUndefined();
    expect(sweepPolicyOf(chains.local as EvmChainConfig)).toMatchObject({ minGasMultiple: 3n, lowBalance: BigInt(DEFAULT_SWEEP_POLICY.low_balance) });
    expect(() => parseChainsFile({ chains: { b: { preset: 'base', rpc_url: 'http://127.0.0.1:2', sweep: { low_balance: '0.5' } } } }))
      .toThrow(/chains\.b\.sweep\.low_balance: a whole number of base units/);
  });
});
