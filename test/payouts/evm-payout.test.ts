/**
 * EVM payouts end to end on a real hardhat node and PostgreSQL (docs/refunds.md, "Payouts"): a
 * payout in the test USDC and one in ETH created over the API, approved (Kassa answers the exact
 * transaction to send from the treasury and its EIP-681 link), sent by the treasury (hardhat
 * account 1, whose key only this test holds) and reported by hash; Kassa checks it on chain,
 * refuses transactions that pay the wrong address, amount or asset, completes it at the chain's
 * confirmation policy and moves it back on a reorg. Also: idempotency, one transaction pays one
 * payout or refund, another merchant sees nothing.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestClient, decodeFunctionData, erc20Abi, http, type Address, type Hex } from 'viem';
import { hardhat } from 'viem/chains';
import { testUSDCAbi } from '../../src/sandbox/contract-artifacts.ts';
import { createApp } from '../../src/api/app.ts';
import { payoutServiceFor } from '../../src/payouts/service.ts';
import { setupContractsFixture, randomAddress, wallet, mined, type ContractsFixture } from '../contracts/fixture.ts';
import { createMerchantWithKey, createTestContext, req, type TestContext } from '../support/db.ts';
import { createPayableMerchant, TEST_TREASURY, writeChainsFile } from '../support/merchant.ts';
import { expectLedgerBalancedIn } from '../support/ledger.ts';

let f: ContractsFixture;
let ctx: TestContext;
let app: ReturnType<typeof createApp>;
let secret: string;
let merchantId: string;
let testClient: ReturnType<typeof createTestClient>;

const treasury = () => wallet(f, 1); // TEST_TREASURY: the merchant's own wallet

async function api(method: string, path: string, body?: unknown, key = secret, headers: Record<string, string> = {}) {
  const res = await app.request(path, req(key, method, body, headers));
  return { status: res.status, body: await res.json() as Record<string, any> };
}

const payoutLedger = () => ctx.deps.sql<{ kind: string; account: string; amount: bigint }[]>`
  select kind, account, amount from ledger_entries where merchant_id = ${merchantId} and kind like 'payout%' order by id`;

beforeAll(async () => {
  f = await setupContractsFixture();
  ctx = await createTestContext({
    KASSA_CONFIG: writeChainsFile({ evmRpcUrl: f.node.url, factory: f.contracts.factory, implementation: f.contracts.implementation, usdc: f.contracts.testUsdc, usdt: f.contracts.testUsdt }),
  });
  app = createApp(ctx.deps);
  const m = await createPayableMerchant(ctx.deps, { name: 'EVM payout shop', bitcoin: false });
  secret = m.secret;
  merchantId = m.merchant.id;
  testClient = createTestClient({ chain: hardhat, mode: 'hardhat', transport: http(f.node.url) });
  // The swept money sits in the treasury; here the customer account simply gives it some tokens.
  for (const token of [f.contracts.testUsdc, f.contracts.testUsdt]) {
    await mined(f, wallet(f, 0).writeContract({ address: token, abi: testUSDCAbi, functionName: 'transfer', args: [TEST_TREASURY as Address, 1_000_000_000n] }));
  }
}, 120_000);

afterAll(async () => {
  await ctx?.close();
  await f?.node.stop();
});

describe('EVM payout in an ERC-20 (test USDC)', () => {
  it('answers the transfer to send from the treasury; refuses transactions that pay something else; accepts the right one once; completes; idempotent creation', async () => {
    const supplier = randomAddress();
    const body = { chain: 'ethereum', asset: 'USDC', amount: '250.5', destination: supplier.toLowerCase(), reference: 'SUP-2026-11' };
    const created = await api('POST', '/v1/payouts', body, secret, { 'Idempotency-Key': 'evm-payout-1' });
    expect(created.status, JSON.stringify(created.body)).toBe(201);
    // The address is kept in its EIP-55 form; the amount in the token's 6 decimals.
    expect(created.body).toMatchObject({ object: 'payout', status: 'awaiting_approval', method: 'USDC-ethereum', amount: '250.500000', destination: supplier, bitcoin: null, evm: { transaction: null } });
    expect((await api('POST', '/v1/payouts', body, secret, { 'Idempotency-Key': 'evm-payout-1' })).body.id).toBe(created.body.id);
    expect((await api('GET', '/v1/payouts?chain=ethereum')).body.data).toHaveLength(1);

    // fee_rate is Bitcoin's; a PSBT is not how an EVM payout is sent.
    expect((await api('POST', `/v1/payouts/${created.body.id}/approve`, { fee_rate: '2' })).body.error).toMatchObject({ code: 'parameter_invalid', param: 'fee_rate' });
    const approved = await api('POST', `/v1/payouts/${created.body.id}/approve`);
    expect(approved.status, JSON.stringify(approved.body)).toBe(200);
    const p = approved.body;
    const t = p.evm.transaction as { chain_id: number; from: string; to: Address; value: string; data: Hex };
    expect(t).toMatchObject({ chain_id: 31337, from: TEST_TREASURY, to: f.contracts.testUsdc, value: '0' });
    expect(decodeFunctionData({ abi: erc20Abi, data: t.data })).toEqual({ functionName: 'transfer', args: [supplier, 250_500_000n] });
    expect(p.evm.link).toBe(`ethereum:${f.contracts.testUsdc}@31337/transfer?address=${supplier}&uint256=250500000`);
    expect((await api('POST', `/v1/payouts/${p.id}/signed_psbt`, { psbt: 'cHNidP8B' })).body.error).toMatchObject({ code: 'signed_psbt_unsupported', param: 'psbt' });

    const report = (txid: string) => api('POST', `/v1/payouts/${p.id}/transaction`, { txid });
    const transfer = (token: Address, to: Address, amount: bigint) =>
      treasury().writeContract({ address: token, abi: testUSDCAbi, functionName: 'transfer', args: [to, amount] });
    for (const [hash, code] of [
      [(await mined(f, transfer(f.contracts.testUsdc, randomAddress(), 250_500_000n))).transactionHash, 'transaction_wrong_recipient'],
      [(await mined(f, transfer(f.contracts.testUsdc, supplier, 250_000_000n))).transactionHash, 'transaction_wrong_amount'],
      [(await mined(f, transfer(f.contracts.testUsdt, supplier, 250_500_000n))).transactionHash, 'transaction_wrong_asset'],
      [`0x${'ab'.repeat(32)}`, 'transaction_not_found'],
    ] as const) {
      const r = await report(hash);
      expect(r.status, JSON.stringify(r.body)).toBe(422);
      expect(r.body.error).toMatchObject({ code, param: 'txid' });
    }
    expect((await report('0x1234')).body.error).toMatchObject({ code: 'txid_invalid', param: 'txid' });
    expect((await api('GET', `/v1/payouts/${p.id}`)).body).toMatchObject({ status: 'awaiting_signature', txid: null });
    expect(await payoutLedger()).toEqual([]);

    const hash = await treasury().sendTransaction({ to: t.to, data: t.data, value: BigInt(t.value) });
    const receipt = await mined(f, hash);
    const sent = await report(hash);
    expect(sent.status, JSON.stringify(sent.body)).toBe(200);
    expect(sent.body).toMatchObject({ status: 'broadcast', txid: hash, evm: { sender: TEST_TREASURY, block_number: Number(receipt.blockNumber) } });
    expect((await report(hash)).body).toMatchObject({ status: 'broadcast', txid: hash }); // again: nothing changes
    expect(await payoutLedger()).toEqual([
      { kind: 'payout_sent', account: 'chain:ethereum:outflow', amount: 250_500_000n },
      { kind: 'payout_sent', account: `merchant:${merchantId}:available`, amount: -250_500_000n },
    ]);
    await expectLedgerBalancedIn(ctx.deps.sql);
    expect(await payoutServiceFor(ctx.deps).track('ethereum')).toEqual({ completed: 1, reorged: 0, resent: 0, failed: 0 });
    expect((await api('GET', `/v1/payouts/${p.id}`)).body.status).toBe('completed');

    // One transaction pays one payout: another payout cannot claim the same hash.
    const second = await api('POST', '/v1/payouts', { ...body, amount: '250.5' });
    await api('POST', `/v1/payouts/${second.body.id}/approve`);
    expect((await api('POST', `/v1/payouts/${second.body.id}/transaction`, { txid: hash })).body.error).toMatchObject({ code: 'transaction_already_used', param: 'txid' });
    expect((await api('POST', `/v1/payouts/${second.body.id}/cancel`)).body.status).toBe('cancelled');
    const types = await ctx.deps.sql<{ type: string }[]>`select type from events where merchant_id = ${merchantId} and type like 'payout.%' and payload->'object'->>'id' = ${p.id} order by seq`;
    expect(types.map((e) => e.type)).toEqual(['payout.created', 'payout.approved', 'payout.broadcast', 'payout.completed']);
  });
});

describe('EVM payout in ETH', () => {
  it('a plain transfer from the treasury; completed at the chain policy; a reorg moves it back; another merchant sees nothing', async () => {
    const supplier = randomAddress();
    const created = await api('POST', '/v1/payouts', { chain: 'ethereum', asset: 'ETH', amount: '0.75', destination: supplier });
    expect(created.status, JSON.stringify(created.body)).toBe(201);
    const p = (await api('POST', `/v1/payouts/${created.body.id}/approve`)).body;
    expect(p.evm.transaction).toMatchObject({ to: supplier, value: '750000000000000000', data: '0x' });
    expect(p.evm.link).toBe(`ethereum:${supplier}@31337?value=750000000000000000`);

    const other = await createMerchantWithKey(ctx.deps, { name: 'Other shop' });
    expect((await api('GET', `/v1/payouts/${p.id}`, undefined, other.secret)).status).toBe(404);
    expect((await api('POST', `/v1/payouts/${p.id}/transaction`, { txid: `0x${'ab'.repeat(32)}` }, other.secret)).status).toBe(404);
    expect((await api('GET', '/v1/payouts', undefined, other.secret)).body.data).toEqual([]);

    const tracker = payoutServiceFor(ctx.deps);
    const wrong = await mined(f, treasury().sendTransaction({ to: supplier, value: 750_000_000_000_000_001n }));
    expect((await api('POST', `/v1/payouts/${p.id}/transaction`, { txid: wrong.transactionHash })).body.error).toMatchObject({ code: 'transaction_wrong_amount', param: 'txid' });
    await testClient.setAutomine(false);
    try {
      const raw = await treasury().signTransaction(await treasury().prepareTransactionRequest({ to: supplier, value: 750_000_000_000_000_000n }));
      const hash = await f.publicClient.sendRawTransaction({ serializedTransaction: raw });
      const sent = await api('POST', `/v1/payouts/${p.id}/transaction`, { txid: hash });
      expect(sent.body).toMatchObject({ status: 'broadcast', txid: hash, evm: { block_number: null } });
      expect(await tracker.track('ethereum')).toMatchObject({ completed: 0, reorged: 0, failed: 0 });
      const before = await testClient.snapshot();
      await testClient.mine({ blocks: 1 });
      expect(await tracker.track('ethereum')).toMatchObject({ completed: 1 });
      await testClient.revert({ id: before });
      expect(await tracker.track('ethereum')).toMatchObject({ reorged: 1 });
      expect((await api('GET', `/v1/payouts/${p.id}`)).body.status).toBe('broadcast');
      if (!(await f.publicClient.getTransaction({ hash }).catch(() => null))) await f.publicClient.sendRawTransaction({ serializedTransaction: raw });
      await testClient.mine({ blocks: 1 });
      expect(await tracker.track('ethereum')).toMatchObject({ completed: 1 });
    } finally {
      await testClient.setAutomine(true);
    }
    expect((await api('GET', `/v1/payouts/${p.id}`)).body.status).toBe('completed');
    await expectLedgerBalancedIn(ctx.deps.sql);
  });
});
