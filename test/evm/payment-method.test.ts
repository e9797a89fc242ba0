import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { getAddress } from 'viem';
import { createApp } from '../../src/api/app.ts';
import type { EvmChainConfig } from '../../src/config.ts';
import { invoiceSaltFor, predictForwarderAddress } from '../../src/chains/evm/forwarder.ts';
import { evmDepositAddress, getEvmPaymentMethod, parseTreasury } from '../../src/chains/evm/payment-method.ts';
import { createMerchantWithKey, createTestContext, req, type TestContext } from '../support/db.ts';

const FACTORY = '0x5FbDB2315678afecb367f032d93F642f64180aa3';
const IMPL = '0xa16E02E87b7454126E5E10d957A927A7F5B5d2be';
const USDC = '0x9fe46736679d2d9a65f0992f2272de9f3c7fa6e0';
const USDT = '0xcf7ed3acca5a467e9e704c703e8d87f634fb0fc9';
const TREASURY = '0x52908400098527886E0F7030069857D2E4169EE7'; // EIP-55 test vector

let ctx: TestContext;
let app: ReturnType<typeof createApp>;
let a: Awaited<ReturnType<typeof createMerchantWithKey>>;
let b: Awaited<ReturnType<typeof createMerchantWithKey>>;

beforeAll(async () => {
  const dir = mkdtempSync(path.join(tmpdir(), 'kassa-evm-'));
  const file = path.join(dir, 'chains.json');
  writeFileSync(file, JSON.stringify({
    chains: {
      ethereum: {
        type: 'evm', network: 'hardhat', chain_id: 31337, rpc_url: 'http://127.0.0.1:8545', factory: FACTORY, implementation: IMPL,
        tokens: [{ symbol: 'USDC', address: USDC, decimals: 6 }, { symbol: 'USDT', address: USDT, decimals: 6 }],
      },
      base: { type: 'evm', network: 'base-sepolia', chain_id: 84532, rpc_url: 'http://127.0.0.1:8546' },
    },
  }));
  ctx = await createTestContext({ KASSA_CONFIG: file });
  app = createApp(ctx.deps);
  a = await createMerchantWithKey(ctx.deps, { name: 'A' });
  b = await createMerchantWithKey(ctx.deps, { name: 'B' });
}, 60_000);

afterAll(async () => {
  await ctx?.close();
});

const put = (secret: string, chain: string, body: unknown) => app.request(`/v1/merchant/payment_methods/evm/${chain}`, req(secret, 'PUT', body));
const errorOf = async (res: Response) => ((await res.json()) as { error: { code: string; param?: string; type: string } }).error;

describe('PUT /v1/merchant/payment_methods/evm/{chain}: happy', () => {
  it('accepts a checksummed treasury and enables every asset of the chain by default', async () => {
    const res = await put(a.secret, 'ethereum', { treasury: TREASURY });
    expect(res.status).toBe(200);
    expect(await res.json()).toMatchObject({ object: 'evm_payment_method', chain: 'ethereum', treasury: TREASURY, assets: ['ETH', 'USDC', 'USDT'] });
  });

  it('accepts an all-lowercase treasury (unchecksummed input) and returns it checksummed; assets can be narrowed', async () => {
    const res = await put(a.secret, 'ethereum', { treasury: TREASURY.toLowerCase(), assets: ['usdc', 'ETH'] });
    expect(res.status).toBe(200);
    expect(await res.json()).toMatchObject({ treasury: TREASURY, assets: ['USDC', 'ETH'] });
    expect((await getEvmPaymentMethod(ctx.deps.sql, a.merchant.id, 'ethereum'))!.assets).toEqual(['USDC', 'ETH']);
  });

  it('evmDepositAddress predicts the forwarder of (treasury, invoice) and is null when the chain is not set up', async () => {
    const cfg = ctx.config.chains.ethereum as EvmChainConfig;
    const dep = await evmDepositAddress(ctx.deps.sql, { merchantId: a.merchant.id, chain: 'ethereum', invoiceId: 'inv_test1', cfg });
    expect(dep!.address).toBe(predictForwarderAddress({ factory: FACTORY, implementation: IMPL, treasury: TREASURY, invoiceSalt: invoiceSaltFor('inv_test1') }));
    expect(dep!.address).toBe(getAddress(dep!.address));
    expect(dep!.assets).toEqual(['USDC', 'ETH']);
    expect(await evmDepositAddress(ctx.deps.sql, { merchantId: b.merchant.id, chain: 'ethereum', invoiceId: 'inv_test1', cfg })).toBeNull();
  });

  it('evmDepositAddress throws 422 chain_not_deployed when the chain has no factory', async () => {
    expect((await put(a.secret, 'base', { treasury: TREASURY })).status).toBe(200);
    const cfg = ctx.config.chains.base as EvmChainConfig;
    await expect(evmDepositAddress(ctx.deps.sql, { merchantId: a.merchant.id, chain: 'base', invoiceId: 'inv_x', cfg }))
      .rejects.toMatchObject({ code: 'chain_not_deployed', status: 422 });
  });
});

describe('PUT /v1/merchant/payment_methods/evm/{chain}: errors', () => {
  it('rejects a mixed-case treasury with a wrong checksum', async () => {
    const bad = TREASURY.replace('E7', 'e7');
    const res = await put(a.secret, 'ethereum', { treasury: bad });
    expect(res.status).toBe(400);
    expect(await errorOf(res)).toMatchObject({ code: 'address_checksum_invalid', param: 'treasury' });
  });

  it.each([['0x1234'], ['52908400098527886E0F7030069857D2E4169EE7'], ['0xZZ908400098527886E0F7030069857D2E4169EE7'], [42]])('rejects an invalid treasury %s', async (t) => {
    const res = await put(a.secret, 'ethereum', { treasury: t });
    expect(res.status).toBe(400);
    expect((await errorOf(res)).param).toBe('treasury');
  });

  it('rejects the zero address', async () => {
    const res = await put(a.secret, 'ethereum', { treasury: '0x0000000000000000000000000000000000000000' });
    expect(res.status).toBe(400);
    expect(await errorOf(res)).toMatchObject({ code: 'treasury_zero_address', param: 'treasury' });
  });

  it('answers 404 chain_not_configured for an unknown chain', async () => {
    const res = await put(a.secret, 'dogechain', { treasury: TREASURY });
    expect(res.status).toBe(404);
    expect(await errorOf(res)).toMatchObject({ code: 'chain_not_configured', param: 'chain' });
  });

  it('rejects an asset the chain does not have, and an empty list', async () => {
    const res = await put(a.secret, 'ethereum', { treasury: TREASURY, assets: ['ETH', 'DAI'] });
    expect(res.status).toBe(400);
    expect(await errorOf(res)).toMatchObject({ code: 'asset_unsupported', param: 'assets' });
    const empty = await put(a.secret, 'ethereum', { treasury: TREASURY, assets: [] });
    expect(empty.status).toBe(400);
    expect((await errorOf(empty)).param).toBe('assets');
  });

  it('rejects unknown fields (strict body)', async () => {
    const res = await put(a.secret, 'ethereum', { treasury: TREASURY, forwarder: '0x' });
    expect(res.status).toBe(400);
  });

  it('parseTreasury accepts all-uppercase hex as unchecksummed input', () => {
    expect(parseTreasury('0x' + TREASURY.slice(2).toUpperCase())).toBe(TREASURY);
  });
});

describe('PUT /v1/merchant/payment_methods/evm/{chain}: security', () => {
  it('needs an API key', async () => {
    expect((await put(undefined as unknown as string, 'ethereum', { treasury: TREASURY })).status).toBe(401);
  });

  it('a read-only key gets 403', async () => {
    const ro = await ctx.deps.apiKeys.create(ctx.deps.sql, { merchantId: a.merchant.id, scopes: ['invoices:read'] });
    const res = await put(ro.secret, 'ethereum', { treasury: TREASURY });
    expect(res.status).toBe(403);
    expect((await errorOf(res)).type).toBe('permission_error');
  });

  it("one merchant's settings never change another's", async () => {
    const other = '0x8617E340B3D01FA5F11F306F4090FD50E238070D';
    expect((await put(b.secret, 'ethereum', { treasury: other })).status).toBe(200);
    expect((await getEvmPaymentMethod(ctx.deps.sql, a.merchant.id, 'ethereum'))!.treasury).toBe(TREASURY);
    expect((await getEvmPaymentMethod(ctx.deps.sql, b.merchant.id, 'ethereum'))!.treasury).toBe(getAddress(other.toLowerCase()));
  });
});
