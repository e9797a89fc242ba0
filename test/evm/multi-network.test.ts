/**
 * One asset on several networks: two real hardhat nodes posing as Base (chain id 8453) and
 * Arbitrum One (42161), configured with the `base` and `arbitrum` presets overriding the RPC URL,
 * the contracts and the token (TestUSDC deployed on each). Both nodes get the same deployer and
 * nonces, so the factory, the token and an invoice's deposit address are the SAME on both chains:
 * a USDC payment must be credited only to the method of the chain it was made on. Invoices go
 * through the real API; each chain's real watcher records the payments.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { createPublicClient, createWalletClient, defineChain, http, type Address } from 'viem';
import { privateKeyToAccount } from 'viem/accounts';
import { deployDevContracts } from '../../src/sandbox/test-tokens.ts';
import { testUSDCAbi } from '../../src/sandbox/contract-artifacts.ts';
import { createEvmClient } from '../../src/chains/evm/client.ts';
import { setEvmPaymentMethod } from '../../src/chains/evm/payment-method.ts';
import type { EvmChainConfig } from '../../src/config.ts';
import { createApp } from '../../src/api/app.ts';
import { createEvmWatcher } from '../support/watchers.ts';
import { startHardhatNode, type HardhatNode } from '../support/hardhat.ts';
import { createMerchantWithKey, createTestContext, req, type TestContext } from '../support/db.ts';
import { TEST_TREASURY } from '../support/merchant.ts';

interface Net {
  key: 'base' | 'arbitrum';
  node: HardhatNode;
  pay(to: Address, amount: bigint): Promise<void>;
  contracts: { factory: Address; implementation: Address; usdc: Address };
}

let ctx: TestContext;
let app: ReturnType<typeof createApp>;
let secret: string;
const nets: Net[] = [];

async function startNet(key: Net['key'], chainId: number): Promise<Net> {
  const node = await startHardhatNode({ chainId });
  const chain = defineChain({ id: chainId, name: key, nativeCurrency: { name: 'Ether', symbol: 'ETH', decimals: 18 }, rpcUrls: { default: { http: [node.url] } } });
  const publicClient = createPublicClient({ chain, transport: http(node.url, { retryCount: 0 }), pollingInterval: 25 });
  const walletClient = createWalletClient({ chain, transport: http(node.url, { retryCount: 0 }), account: privateKeyToAccount(node.accounts[0]!.privateKey), pollingInterval: 25 });
  const c = await deployDevContracts({ walletClient, publicClient });
  return {
    key, node,
    contracts: { factory: c.factory, implementation: c.implementation, usdc: c.testUsdc },
    async pay(to, amount) {
      const hash = await walletClient.writeContract({ address: c.testUsdc, abi: testUSDCAbi, functionName: 'transfer', args: [to, amount] });
      expect((await publicClient.waitForTransactionReceipt({ hash })).status).toBe('success');
    },
  };
}

beforeAll(async () => {
  nets.push(await startNet('base', 8453), await startNet('arbitrum', 42161));
  const file = path.join(mkdtempSync(path.join(tmpdir(), 'kassa-multi-')), 'chains.json');
  const chains: Record<string, unknown> = {};
  for (const n of nets) {
    chains[n.key] = {
      preset: n.key, rpc_url: n.node.url, factory: n.contracts.factory, implementation: n.contracts.implementation,
      tokens: [{ symbol: 'USDC', address: n.contracts.usdc, decimals: 6 }],
      confirmations: { high: 0, medium: 1, low_medium: 1, low: 1 }, poll_interval_ms: 50, reorg_window: 20,
    };
  }
  writeFileSync(file, JSON.stringify({ chains, rates: { providers: ['fixed'], fixed: { 'USDC-USD': '1', 'ETH-USD': '3000.00' } } }));
  ctx = await createTestContext({ KASSA_CONFIG: file });
  app = createApp(ctx.deps);
  const m = await createMerchantWithKey(ctx.deps, { name: 'Two networks shop' });
  secret = m.secret;
  for (const n of nets) await setEvmPaymentMethod(ctx.deps.sql, m.merchant.id, n.key, { treasury: TEST_TREASURY as Address, assets: ['USDC'] });
}, 180_000);

afterAll(async () => {
  await ctx?.close();
  await Promise.all(nets.map((n) => n.node.stop()));
});

function watcherOf(n: Net, startBlock: number) {
  const cfg = ctx.config.chains[n.key] as EvmChainConfig;
  return createEvmWatcher({
    chain: n.key, config: cfg, client: createEvmClient(cfg, { retryCount: 0 }), sql: ctx.deps.sql, settlement: ctx.deps.settlement,
    redis: ctx.deps.redis, queuePrefix: ctx.config.queuePrefix, logger: ctx.deps.logger, startBlock,
  });
}

async function createInvoice() {
  const res = await app.request('/v1/invoices', req(secret, 'POST', { amount: '10.00', currency: 'USD' }));
  expect(res.status).toBe(201);
  return (await res.json()) as { id: string; payment_methods: { method: string; chain: string; network_name: string; chain_id: number; address: string; amount_due: string }[] };
}

const paymentsOf = (id: string) => ctx.deps.sql<{ method: string; chain: string; amount: bigint }[]>`
  select method, chain, amount from payments where invoice_id = ${id} order by seq`;

describe('USDC on Base and on Arbitrum One (two presets, two nodes)', () => {
  it('configures both from presets: real names and chain ids, method ids stay <ASSET>-<chain>', async () => {
    const inv = await createInvoice();
    expect(inv.payment_methods.map((m) => [m.method, m.network_name, m.chain_id])).toEqual([
      ['USDC-arbitrum', 'Arbitrum One', 42161],
      ['USDC-base', 'Base', 8453],
    ]);
    // Same factory, implementation, treasury and invoice salt on both chains: the same address.
    expect(inv.payment_methods[0]!.address).toBe(inv.payment_methods[1]!.address);

    const html = await (await app.request(`/pay/${inv.id}?method=USDC-base`)).text();
    expect(html).toContain('<span class="asset">USDC</span> <span class="on">on Arbitrum One, Base</span>');
    expect(html).toContain('<dd id="network">Base</dd>');
    expect(html).toContain('Send only USDC on Base.');
  });

  it('credits a USDC payment only to the method of the chain it was made on', async () => {
    const starts = await Promise.all(nets.map(async (n) => Number(await createPublicClient({ transport: http(n.node.url) }).getBlockNumber()) + 1));
    const watchers = nets.map((n, i) => watcherOf(n, starts[i]!));
    const onBase = await createInvoice();
    const onArb = await createInvoice();
    const addr = (inv: Awaited<ReturnType<typeof createInvoice>>) => inv.payment_methods[0]!.address as Address;

    await nets[0]!.pay(addr(onBase), 10_000_000n); // 10 USDC on Base
    await nets[1]!.pay(addr(onArb), 10_000_000n); // 10 USDC on Arbitrum One
    for (const w of watchers) await w.runOnce();

    expect(await paymentsOf(onBase.id)).toEqual([{ method: 'USDC-base', chain: 'base', amount: 10_000_000n }]);
    expect(await paymentsOf(onArb.id)).toEqual([{ method: 'USDC-arbitrum', chain: 'arbitrum', amount: 10_000_000n }]);
    for (const inv of [onBase, onArb]) {
      const got = (await (await app.request(`/v1/invoices/${inv.id}`, req(secret, 'GET'))).json()) as { status: string; payment_methods: { method: string; amount_paid: string }[] };
      expect(got.status).toBe('settled');
      const paidOn = inv === onBase ? 'USDC-base' : 'USDC-arbitrum';
      for (const m of got.payment_methods) expect(m.amount_paid, m.method).toBe(m.method === paidOn ? '10.000000' : '0.000000');
    }
  });
});
