/**
 * EVM refunds end to end on a real hardhat node and PostgreSQL (docs/refunds.md, "EVM refunds"):
 * invoices paid in the test USDC (an ERC-20 deployed by the contracts fixture) and in ETH, recorded
 * by the real watcher; the refund created over the API, claimed by the customer, approved (Kassa
 * answers the exact transaction to send); the merchant's treasury (hardhat account 1, whose key only
 * this test holds) sends it from its own wallet and reports the hash; Kassa checks it on chain and
 * the tracker completes it at the invoice's confirmation policy, and moves it back on a reorg.
 * Transactions that pay the wrong address, amount or asset, or that reverted, are refused and
 * never counted.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestClient, decodeFunctionData, encodeFunctionData, erc20Abi, http, type Address, type Hex } from 'viem';
import { hardhat } from 'viem/chains';
import type { EvmChainConfig } from '../../src/config.ts';
import { createEvmClient } from '../../src/chains/evm/client.ts';
import { testUSDCAbi } from '../../src/sandbox/contract-artifacts.ts';
import { createApp } from '../../src/api/app.ts';
import { refundServiceFor } from '../../src/refunds/service.ts';
import { setupContractsFixture, randomAddress, wallet, mined, type ContractsFixture } from '../contracts/fixture.ts';
import { createEvmWatcher, type EvmWatcher } from '../support/watchers.ts';
import { createTestContext, req, type TestContext } from '../support/db.ts';
import { createPayableMerchant, TEST_TREASURY, writeChainsFile } from '../support/merchant.ts';
import { expectLedgerBalancedIn } from '../support/ledger.ts';
import { expectReportAddsUp } from './report-sums.ts';

let f: ContractsFixture;
let ctx: TestContext;
let app: ReturnType<typeof createApp>;
let w: EvmWatcher;
let secret: string;
let merchantId: string;
let testClient: ReturnType<typeof createTestClient>;
let startedAt: Date;

const customerWallet = () => wallet(f, 0); // holds the test tokens and pays the invoices
const treasury = () => wallet(f, 1); // TEST_TREASURY: the merchant's own wallet

async function api(method: string, path: string, body?: unknown) {
  const res = await app.request(path, req(secret, method, body));
  return { status: res.status, body: await res.json() as Record<string, any> };
}

async function sync(): Promise<void> {
  for (let i = 0; i < 50; i++) if (!(await w.runOnce()).more) return;
  throw new Error('watcher did not reach the tip');
}

/** An invoice of `usd` in `method` (medium speed: 1 confirmation), paid `amount` base units by account 0 and recorded by the watcher. */
async function paidInvoice(usd: string, method: 'USDC-ethereum' | 'ETH-ethereum', amount: bigint): Promise<string> {
  const inv = await api('POST', '/v1/invoices', { amount: usd, currency: 'USD', payment_methods: [method], speed_policy: 'medium' });
  expect(inv.status, JSON.stringify(inv.body)).toBe(201);
  const address = inv.body.payment_methods[0].address as Address;
  if (method === 'USDC-ethereum') await mined(f, customerWallet().writeContract({ address: f.contracts.testUsdc, abi: testUSDCAbi, functionName: 'transfer', args: [address, amount] }));
  else await mined(f, customerWallet().sendTransaction({ to: address, value: amount }));
  await sync();
  return inv.body.id as string;
}

/** Creates a refund, lets the customer claim it with `destination`, approves it. */
async function approvedRefund(invoiceId: string, body: Record<string, unknown>, destination: Address) {
  const created = await api('POST', `/v1/invoices/${invoiceId}/refunds`, body);
  expect(created.status, JSON.stringify(created.body)).toBe(201);
  const token = new URL(created.body.claim_url).pathname.split('/').pop()!;
  const claim = await app.request(`/v1/public/refund_claims/${token}`, req(undefined, 'POST', { destination }));
  expect(claim.status, await claim.clone().text()).toBe(200);
  // fee_rate is for Bitcoin: on an EVM chain the wallet sets the gas price.
  const withFeeRate = await api('POST', `/v1/refunds/${created.body.id}/approve`, { fee_rate: '2' });
  expect(withFeeRate.status).toBe(400);
  expect(withFeeRate.body.error).toMatchObject({ code: 'parameter_invalid', param: 'fee_rate' });
  const approved = await api('POST', `/v1/refunds/${created.body.id}/approve`, {});
  expect(approved.status, JSON.stringify(approved.body)).toBe(200);
  return approved.body;
}

/** Sends a call that will revert and mines it (with automine on, hardhat refuses it at submission instead of mining it). */
async function minedReverting(from: ReturnType<typeof wallet>, to: Address, data: Hex): Promise<Hex> {
  await testClient.setAutomine(false);
  try {
    const hash = await from.sendTransaction({ to, data, gas: 100_000n });
    await testClient.mine({ blocks: 1 });
    return hash;
  } finally {
    await testClient.setAutomine(true);
  }
}

const usdcBalance = (a: Address) => f.publicClient.readContract({ address: f.contracts.testUsdc, abi: erc20Abi, functionName: 'balanceOf', args: [a] });
const refundLedger = (invoiceId: string) => ctx.deps.sql<{ kind: string; account: string; amount: bigint }[]>`
  select kind, account, amount from ledger_entries where invoice_id = ${invoiceId} and kind like 'refund%' order by id`;

beforeAll(async () => {
  startedAt = new Date();
  f = await setupContractsFixture();
  ctx = await createTestContext({
    KASSA_CONFIG: writeChainsFile({ evmRpcUrl: f.node.url, factory: f.contracts.factory, implementation: f.contracts.implementation, usdc: f.contracts.testUsdc, usdt: f.contracts.testUsdt }),
  });
  app = createApp(ctx.deps);
  const m = await createPayableMerchant(ctx.deps, { name: 'EVM refund shop', bitcoin: false });
  secret = m.secret;
  merchantId = m.merchant.id;
  const cfg = ctx.config.chains.ethereum as EvmChainConfig;
  w = createEvmWatcher({
    chain: 'ethereum', config: cfg, client: createEvmClient(cfg, { retryCount: 0 }), sql: ctx.deps.sql, settlement: ctx.deps.settlement,
    redis: ctx.deps.redis, queuePrefix: ctx.config.queuePrefix, logger: ctx.deps.logger, startBlock: Number(await f.publicClient.getBlockNumber()) + 1,
  });
  testClient = createTestClient({ chain: hardhat, mode: 'hardhat', transport: http(f.node.url) });
  // The forwarders' funds reach the treasury through the sweeper; here the treasury simply holds some.
  for (const token of [f.contracts.testUsdc, f.contracts.testUsdt]) {
    await mined(f, customerWallet().writeContract({ address: token, abi: testUSDCAbi, functionName: 'transfer', args: [TEST_TREASURY as Address, 1_000_000_000n] }));
  }
}, 120_000);

afterAll(async () => {
  await ctx?.close();
  await f?.node.stop();
});

describe('EVM refund in an ERC-20 (test USDC)', () => {
  it('answers the exact transfer to send; refuses hashes that pay the wrong address, amount or asset or reverted; accepts the right one once; completes at the invoice policy', async () => {
    const invoiceId = await paidInvoice('10.00', 'USDC-ethereum', 15_000_000n); // 15 USDC for a $10 price
    expect((await api('GET', `/v1/invoices/${invoiceId}`)).body).toMatchObject({ status: 'settled', exception: 'paid_over', amount_paid: '15.00' });
    const customer = randomAddress();
    const refund = await approvedRefund(invoiceId, { amount: 'overpaid' }, customer);
    expect(refund).toMatchObject({ status: 'awaiting_signature', method: 'USDC-ethereum', asset: 'USDC', amount: '5.000000', destination: customer, bitcoin: null });
    const t = refund.evm.transaction as { chain_id: number; from: string; to: Address; value: string; data: Hex };
    expect(t).toMatchObject({ chain_id: 31337, from: TEST_TREASURY, to: f.contracts.testUsdc, value: '0' });
    expect(decodeFunctionData({ abi: erc20Abi, data: t.data })).toEqual({ functionName: 'transfer', args: [customer, 5_000_000n] });
    expect(refund.evm.link).toBe(`ethereum:${f.contracts.testUsdc}@31337/transfer?address=${customer}&uint256=5000000`);

    const report = (txid: string) => api('POST', `/v1/refunds/${refund.id}/transaction`, { txid });
    const refused = async (hash: Hex, code: string) => {
      const r = await report(hash);
      expect(r.status, JSON.stringify(r.body)).toBe(422);
      expect(r.body.error).toMatchObject({ code, param: 'txid' });
      expect(r.body.error.message).toContain(hash);
    };
    const transfer = (token: Address, to: Address, amount: bigint) =>
      treasury().writeContract({ address: token, abi: testUSDCAbi, functionName: 'transfer', args: [to, amount] });
    // The right amount to another address; less than the refund to the customer; the right amount in another token.
    await refused((await mined(f, transfer(f.contracts.testUsdc, randomAddress(), 5_000_000n))).transactionHash, 'transaction_wrong_recipient');
    await refused((await mined(f, transfer(f.contracts.testUsdc, customer, 4_000_000n))).transactionHash, 'transaction_wrong_amount');
    await refused((await mined(f, transfer(f.contracts.testUsdt, customer, 5_000_000n))).transactionHash, 'transaction_wrong_asset');
    // Exactly the prepared call, but from an account without the tokens: mined, reverted, moved nothing.
    const reverted = await minedReverting(wallet(f, 7), t.to, t.data);
    expect((await f.publicClient.waitForTransactionReceipt({ hash: reverted })).status).toBe('reverted');
    await refused(reverted, 'transaction_reverted');
    // A hash the chain does not know; not a hash at all.
    await refused(`0x${'ab'.repeat(32)}`, 'transaction_not_found');
    const bad = await report('0x1234');
    expect(bad.status).toBe(400);
    expect(bad.body.error).toMatchObject({ code: 'txid_invalid', param: 'txid' });
    // None of that was counted.
    expect((await api('GET', `/v1/refunds/${refund.id}`)).body).toMatchObject({ status: 'awaiting_signature', txid: null });
    expect(await refundLedger(invoiceId)).toEqual([]);

    // The merchant's wallet sends exactly the prepared transaction.
    const hash = await treasury().sendTransaction({ to: t.to, data: t.data, value: BigInt(t.value) });
    const receipt = await mined(f, hash);
    const sent = await report(hash);
    expect(sent.status, JSON.stringify(sent.body)).toBe(200);
    expect(sent.body).toMatchObject({ status: 'broadcast', txid: hash, evm: { sender: TEST_TREASURY, block_number: Number(receipt.blockNumber) } });
    // Reported again: nothing changes, booked once.
    expect((await report(hash)).body).toMatchObject({ status: 'broadcast', txid: hash });
    expect(await refundLedger(invoiceId)).toEqual([
      { kind: 'refund_sent', account: 'chain:ethereum:outflow', amount: 5_000_000n },
      { kind: 'refund_sent', account: `merchant:${merchantId}:available`, amount: -5_000_000n },
    ]);
    await expectLedgerBalancedIn(ctx.deps.sql);
    expect(await usdcBalance(customer)).toBe(9_000_000n); // the refund, and the 4 USDC of the refused wrong-amount transfer

    // The transaction is in a block: one confirmation is the invoice's policy (medium).
    expect(await refundServiceFor(ctx.deps).track('ethereum')).toEqual({ completed: 1, reorged: 0, resent: 0, failed: 0 });
    expect((await api('GET', `/v1/refunds/${refund.id}`)).body).toMatchObject({ status: 'completed', txid: hash });

    // One transaction pays one refund: a second refund of the invoice cannot claim the same hash.
    const second = await approvedRefund(invoiceId, { amount: '1.00' }, randomAddress());
    const reused = await api('POST', `/v1/refunds/${second.id}/transaction`, { txid: hash });
    expect(reused.status).toBe(409);
    expect(reused.body.error).toMatchObject({ code: 'transaction_already_used', param: 'txid' });
    expect((await api('POST', `/v1/refunds/${second.id}/cancel`)).body.status).toBe('cancelled');
  });
});

describe('EVM refund in the native coin (ETH)', () => {
  it('a pending transaction is checked by its fields, completes when mined, goes back to broadcast on a reorg and completes again', async () => {
    const invoiceId = await paidInvoice('30.00', 'ETH-ethereum', 10_000_000_000_000_000n); // 0.01 ETH at 3000 USD/ETH
    const customer = randomAddress();
    const refund = await approvedRefund(invoiceId, { amount: '10.00' }, customer); // $10 at the locked rate, rounded down
    expect(refund.amount).toBe('0.003333333333333333');
    const wei = 3_333_333_333_333_333n;
    expect(refund.evm.transaction).toEqual({ chain_id: 31337, from: TEST_TREASURY, to: customer, value: wei.toString(), data: '0x' });
    expect(refund.evm.link).toBe(`ethereum:${customer}@31337?value=${wei}`);
    const report = (txid: string) => api('POST', `/v1/refunds/${refund.id}/transaction`, { txid });

    const wrongAmount = await mined(f, treasury().sendTransaction({ to: customer, value: wei + 1n }));
    expect((await report(wrongAmount.transactionHash)).body.error).toMatchObject({ code: 'transaction_wrong_amount', param: 'txid' });
    const wrongTo = await mined(f, treasury().sendTransaction({ to: randomAddress(), value: wei }));
    expect((await report(wrongTo.transactionHash)).body.error).toMatchObject({ code: 'transaction_wrong_recipient', param: 'txid' });
    // A token transfer for a native refund pays nothing in ETH.
    const token = await mined(f, treasury().sendTransaction({ to: f.contracts.testUsdc, data: encodeFunctionData({ abi: erc20Abi, functionName: 'transfer', args: [customer, 1n] }) }));
    expect((await report(token.transactionHash)).body.error.code).toBe('transaction_wrong_recipient');

    const tracker = refundServiceFor(ctx.deps);
    await testClient.setAutomine(false);
    try {
      // Sent but not mined yet: accepted by its fields (to, value, chain id), not completed.
      const raw = await treasury().signTransaction(await treasury().prepareTransactionRequest({ to: customer, value: wei }));
      const hash = await f.publicClient.sendRawTransaction({ serializedTransaction: raw });
      const sent = await report(hash);
      expect(sent.status, JSON.stringify(sent.body)).toBe(200);
      expect(sent.body).toMatchObject({ status: 'broadcast', txid: hash, evm: { sender: TEST_TREASURY, block_number: null } });
      expect(await tracker.track('ethereum')).toMatchObject({ completed: 0, reorged: 0, failed: 0 });

      const before = await testClient.snapshot();
      await testClient.mine({ blocks: 1 });
      expect(await tracker.track('ethereum')).toMatchObject({ completed: 1 });
      expect((await api('GET', `/v1/refunds/${refund.id}`)).body.status).toBe('completed');
      // A reorg takes the refund's block away: back to broadcast.
      await testClient.revert({ id: before });
      expect(await tracker.track('ethereum')).toMatchObject({ completed: 0, reorged: 1 });
      expect((await api('GET', `/v1/refunds/${refund.id}`)).body.status).toBe('broadcast');
      // The transaction is mined again (re-sent when the reverted node dropped it): completed again.
      if (!(await f.publicClient.getTransaction({ hash }).catch(() => null))) await f.publicClient.sendRawTransaction({ serializedTransaction: raw });
      await testClient.mine({ blocks: 1 });
      expect(await tracker.track('ethereum')).toMatchObject({ completed: 1 });
    } finally {
      await testClient.setAutomine(true);
    }
    expect(await f.publicClient.getBalance({ address: customer })).toBe(wei + wei + 1n); // the refund and the refused wrong-amount transfer
    const events = await ctx.deps.sql<{ type: string }[]>`select type from events where invoice_id = ${invoiceId} and type like 'refund.%' order by seq`;
    expect(events.map((e) => e.type)).toEqual(['refund.created', 'refund.claimed', 'refund.approved', 'refund.broadcast', 'refund.completed', 'refund.reorged', 'refund.completed']);
    expect(await refundLedger(invoiceId)).toEqual([
      { kind: 'refund_sent', account: 'chain:ethereum:outflow', amount: wei },
      { kind: 'refund_sent', account: `merchant:${merchantId}:available`, amount: -wei },
    ]);
    await expectLedgerBalancedIn(ctx.deps.sql);
  });

  it('a transaction that was accepted while pending but reverted when mined fails the refund and reverses its booking', async () => {
    const invoiceId = await paidInvoice('10.00', 'USDC-ethereum', 10_000_000n);
    const refund = await approvedRefund(invoiceId, { amount: 'full' }, randomAddress());
    const t = refund.evm.transaction as { to: Address; data: Hex };
    await testClient.setAutomine(false);
    let hash: Hex;
    try {
      // The prepared call from an account without the tokens: it looks right until it runs.
      hash = await wallet(f, 8).sendTransaction({ to: t.to, data: t.data, gas: 100_000n });
      const sent = await api('POST', `/v1/refunds/${refund.id}/transaction`, { txid: hash });
      expect(sent.status, JSON.stringify(sent.body)).toBe(200);
      expect(sent.body.status).toBe('broadcast');
      await testClient.mine({ blocks: 1 });
    } finally {
      await testClient.setAutomine(true);
    }
    expect(await refundServiceFor(ctx.deps).track('ethereum')).toMatchObject({ failed: 1, completed: 0 });
    const failed = (await api('GET', `/v1/refunds/${refund.id}`)).body;
    expect(failed.status).toBe('failed');
    expect(failed.failure_reason).toContain('reverted');
    const kinds = (await refundLedger(invoiceId)).map((e) => `${e.kind} ${e.amount}`);
    expect(kinds.sort()).toEqual(['refund_sent -10000000', 'refund_sent 10000000', 'refund_sent_reversed -10000000', 'refund_sent_reversed 10000000'].sort());
    await expectLedgerBalancedIn(ctx.deps.sql);
    // The money is free again: a new refund of everything fits.
    expect((await api('POST', `/v1/invoices/${invoiceId}/refunds`, { amount: 'full' })).status).toBe(201);
  });

  it('a replacement of the reported transaction (same sender and nonce) is accepted; another transaction is not', async () => {
    const invoiceId = await paidInvoice('30.00', 'ETH-ethereum', 10_000_000_000_000_000n);
    const customer = randomAddress();
    const refund = await approvedRefund(invoiceId, { amount: '3.00' }, customer);
    const wei = 1_000_000_000_000_000n; // $3 at 3000 USD/ETH
    const report = (txid: string) => api('POST', `/v1/refunds/${refund.id}/transaction`, { txid });
    await testClient.setAutomine(false);
    let replacement: Hex;
    try {
      const nonce = await f.publicClient.getTransactionCount({ address: TEST_TREASURY as Address, blockTag: 'pending' });
      const first = await treasury().sendTransaction({ to: customer, value: wei, nonce, maxFeePerGas: 2_000_000_000n, maxPriorityFeePerGas: 1_000_000_000n });
      expect((await report(first)).body).toMatchObject({ status: 'broadcast', txid: first });
      // The wallet's "speed up": the same nonce at a higher fee.
      replacement = await treasury().sendTransaction({ to: customer, value: wei, nonce, maxFeePerGas: 4_000_000_000n, maxPriorityFeePerGas: 2_000_000_000n });
      const other = await wallet(f, 2).sendTransaction({ to: customer, value: wei }); // right fields, another sender
      const refusedOther = await report(other);
      expect(refusedOther.status).toBe(409);
      expect(refusedOther.body.error).toMatchObject({ code: 'refund_already_broadcast', param: 'txid' });
      expect((await report(replacement)).body).toMatchObject({ status: 'broadcast', txid: replacement });
      await testClient.mine({ blocks: 1 });
    } finally {
      await testClient.setAutomine(true);
    }
    expect(await refundServiceFor(ctx.deps).track('ethereum')).toMatchObject({ completed: 1 });
    expect((await api('GET', `/v1/refunds/${refund.id}`)).body).toMatchObject({ status: 'completed', txid: replacement });
    // Booked once, for the refund (the replacement changed the hash, not the money).
    expect(await refundLedger(invoiceId)).toHaveLength(2);
    const events = await ctx.deps.sql<{ type: string }[]>`select type from events where invoice_id = ${invoiceId} and type like 'refund.%' order by seq`;
    expect(events.map((e) => e.type)).toEqual(['refund.created', 'refund.claimed', 'refund.approved', 'refund.broadcast', 'refund.broadcast', 'refund.completed']);
  });
});

describe('refunds in the reconciliation report', () => {
  it('refund rows in JSON and CSV: net = received + not counted − refunded, per invoice, currency and asset; the ledger agrees', async () => {
    const q = `/v1/reports/reconciliation?from=${startedAt.toISOString()}&to=${new Date(Date.now() + 60_000).toISOString()}`;
    const { json, rows } = await expectReportAddsUp(
      async (format) => (await app.request(`${q}&format=${format}`, req(secret, 'GET'))).text(), ctx.deps.sql, merchantId);
    // Refunds that left the wallet are rows; cancelled and failed ones are not.
    const byNet = json.invoices.map((i: { expected: string; received: string; refunded: string; net_received: string; refunds: { status: string; method: string }[] }) =>
      [i.expected, i.received, i.refunded, i.net_received, i.refunds.map((f) => `${f.method} ${f.status}`)]);
    expect(byNet).toEqual([
      ['10.00', '15.00', '5.00', '10.00', ['USDC-ethereum completed']],
      ['30.00', '30.00', '9.99', '20.01', ['ETH-ethereum completed']], // 0.003333333333333333 ETH at 3000 is 9.999…, rounded down
      ['10.00', '10.00', '0.00', '10.00', []], // its refund failed (reverted)
      ['30.00', '30.00', '3.00', '27.00', ['ETH-ethereum completed']],
    ]);
    expect(json.totals.per_currency).toEqual([{ currency: 'USD', invoices: 4, expected: '80.00', received: '85.00', difference: '5.00', refunded: '17.99', net_received: '67.01' }]);
    const usdc = json.totals.per_asset.find((a: { method: string }) => a.method === 'USDC-ethereum');
    expect(usdc).toMatchObject({ received: '25.000000', refunds: 1, refunded: '5.000000', net_received: '20.000000' });
    const refundRow = rows.find((r) => r.row_type === 'refund' && r.method === 'USDC-ethereum')!;
    expect(refundRow).toMatchObject({ amount: '-5.000000', value: '-5.00', rate: '1', payment_id: '', counted: '', refund_status: 'completed' });
    expect(rows.filter((r) => r.row_type === 'refund_network_fee')).toEqual([]); // the merchant's wallet paid the gas
  });
});
