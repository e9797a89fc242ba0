/**
 * Bitcoin refunds end to end on the real devnet and PostgreSQL (docs/refunds.md): an overpaid
 * invoice paid by the devnet wallet and recorded by the real watcher; the refund created over the
 * API, claimed on the claim page, approved (unsigned PSBT), signed by this test's own key from the
 * PSBT's BIP 32 derivations alone (signAllInputsHD with the test's master key), uploaded, finalized
 * and broadcast into the devnet mempool; then the invariants and the refusals.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import * as bitcoin from 'bitcoinjs-lib';
import type { BitcoinChainConfig } from '../../src/config.ts';
import { bitcoinNetwork } from '../../src/chains/bitcoin/networks.ts';
import { parseBitcoinKeySource } from '../../src/chains/bitcoin/descriptor.ts';
import { setBitcoinKeySource } from '../../src/chains/bitcoin/address-pool.ts';
import { createBitcoinNodeClient } from '../../src/chains/bitcoin/client.ts';
import { createApp } from '../../src/api/app.ts';
import { createBitcoinWatcher, type BitcoinWatcher } from '../support/watchers.ts';
import { createMerchantWithKey, createTestContext, req, type TestContext } from '../support/db.ts';
import { startDevnetProcess, type DevnetProcess } from '../support/devnet.ts';
import { writeChainsFile } from '../support/merchant.ts';
import { expectLedgerBalancedIn } from '../support/ledger.ts';
import { testMerchantWallet } from '../support/refund-wallet.ts';
import { createRefundService, refundServiceFor } from '../../src/refunds/service.ts';
import { UpstreamError } from '../../src/errors.ts';
import { expectReportAddsUp } from './report-sums.ts';

const network = bitcoinNetwork('regtest');
// The merchant's own wallet, known only to this test: Kassa gets the account tpub with its key origin.
const { root: ROOT, fingerprint: FINGERPRINT, descriptor: DESCRIPTOR } = testMerchantWallet(0x42);

let dn: DevnetProcess;
let ctx: TestContext;
let app: ReturnType<typeof createApp>;
let w: BitcoinWatcher;
let secret: string;
let merchantId: string;
const startedAt = new Date();

async function sync(): Promise<void> {
  for (let i = 0; i < 100; i++) if (!(await w.runOnce()).more) return;
  throw new Error('watcher did not reach the tip');
}

async function api(method: string, path: string, body?: unknown, key = secret, headers: Record<string, string> = {}) {
  const res = await app.request(path, req(key, method, body, headers));
  return { status: res.status, body: await res.json() as Record<string, any> };
}

/** A $60 invoice (0.001 BTC at 60,000 USD/BTC, 1 confirmation), paid `btc` by the devnet wallet and confirmed. */
async function paidInvoice(btc: string): Promise<{ id: string; address: string }> {
  const inv = await api('POST', '/v1/invoices', { amount: '60.00', currency: 'USD', payment_methods: ['BTC'], speed_policy: 'medium' });
  expect(inv.status, JSON.stringify(inv.body)).toBe(201);
  const address = inv.body.payment_methods[0].address as string;
  await dn.wallet.sendToAddress(address, btc);
  await dn.wallet.mine(1);
  await sync();
  return { id: inv.body.id, address };
}

function tokenOf(claimUrl: string): string {
  return new URL(claimUrl).pathname.split('/').pop()!;
}

async function claimOnPage(claimUrl: string, destination: string, extra: Record<string, string> = { confirm: 'yes' }) {
  const res = await app.request(new URL(claimUrl).pathname, {
    method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({ destination, ...extra }).toString(),
  });
  return { status: res.status, html: await res.text(), headers: res.headers };
}

beforeAll(async () => {
  dn = await startDevnetProcess();
  ctx = await createTestContext({ KASSA_CONFIG: writeChainsFile({ bitcoinRpc: { url: dn.rpcUrl, user: 'kassa', password: 'kassa' } }) });
  app = createApp(ctx.deps);
  const m = await createMerchantWithKey(ctx.deps, { name: 'Refund shop' });
  secret = m.secret;
  merchantId = m.merchant.id;
  const source = parseBitcoinKeySource({ descriptor: DESCRIPTOR }, 'regtest');
  await ctx.deps.sql.begin((tx) => setBitcoinKeySource(tx, merchantId, 'bitcoin', source));
  const cfg = ctx.config.chains.bitcoin as BitcoinChainConfig;
  w = createBitcoinWatcher({
    chain: 'bitcoin', config: cfg, client: createBitcoinNodeClient(cfg, 'bitcoin', { retries: 0 }), sql: ctx.deps.sql,
    settlement: ctx.deps.settlement, redis: ctx.deps.redis, queuePrefix: ctx.config.queuePrefix, logger: ctx.deps.logger,
  });
  await sync();
}, 60_000);

afterAll(async () => {
  await ctx?.close();
  await dn?.stop();
});

describe('bitcoin refund of an overpayment, end to end', () => {
  it('create → claim page → approve (PSBT) → signed by the merchant key → broadcast; accepted once; ledger balances', async () => {
    const inv = await paidInvoice('0.0015'); // $90 received for a $60 price
    const row = (await api('GET', `/v1/invoices/${inv.id}`)).body;
    expect(row).toMatchObject({ status: 'settled', exception: 'paid_over', amount_paid: '90.00' });

    const created = await api('POST', `/v1/invoices/${inv.id}/refunds`, { amount: 'overpaid', reason: 'sent too much' }, secret, { 'Idempotency-Key': 'refund-1' });
    expect(created.status, JSON.stringify(created.body)).toBe(201);
    expect(created.body).toMatchObject({
      object: 'refund', invoice_id: inv.id, status: 'awaiting_destination', method: 'BTC', asset: 'BTC',
      amount: '0.00050000', fee: '0.00000000', rate_basis: 'rate_then', rate: '60000.00', requested: { kind: 'overpaid' },
    });
    const refundId = created.body.id as string;
    // The same Idempotency-Key replays the same refund instead of creating a second one.
    const again = await api('POST', `/v1/invoices/${inv.id}/refunds`, { amount: 'overpaid', reason: 'sent too much' }, secret, { 'Idempotency-Key': 'refund-1' });
    expect(again.body.id).toBe(refundId);
    expect((await api('GET', `/v1/invoices/${inv.id}/refunds`)).body.data).toHaveLength(1);

    // Approving before the customer gave an address is refused.
    expect((await api('POST', `/v1/refunds/${refundId}/approve`, { fee_rate: '2' })).body.error.code).toBe('refund_state_invalid');

    // The claim page: same look (the checkout stylesheet), strict CSP that lets the form post to itself.
    const page = await app.request(new URL(created.body.claim_url).pathname, { headers: { 'accept-language': 'zh-CN' } });
    expect(page.status).toBe(200);
    const pageHtml = await page.text();
    expect(pageHtml).toContain('0.0005 BTC');
    expect(pageHtml).toContain('退款');
    expect(page.headers.get('content-security-policy')).toContain("form-action 'self'");
    expect(page.headers.get('content-security-policy')).toContain("script-src 'self'");

    // A mainnet address on a regtest refund is refused, naming the problem; the refund stays open.
    const wrong = await claimOnPage(created.body.claim_url, 'bc1qw508d6qejxtdg4y5r3zarvary0c5xw7kv8f3t4');
    expect(wrong.status).toBe(400);
    expect(wrong.html).toContain('not a valid address');
    // One of the shop's own deposit addresses is refused too.
    expect((await claimOnPage(created.body.claim_url, inv.address)).html).toContain('payment address of the shop');
    expect((await api('GET', `/v1/refunds/${refundId}`)).body.status).toBe('awaiting_destination');

    const customer = await dn.wallet.getNewAddress();
    const claimed = await claimOnPage(created.body.claim_url, customer);
    expect(claimed.status, claimed.html).toBe(200);
    let refund = (await api('GET', `/v1/refunds/${refundId}`)).body;
    expect(refund).toMatchObject({ status: 'awaiting_approval', destination: customer, claim_url: null });
    expect(refund.rate_locked_at).not.toBeNull();
    // A second claim with another address changes nothing.
    expect((await claimOnPage(created.body.claim_url, await dn.wallet.getNewAddress())).status).toBe(409);
    expect((await api('GET', `/v1/refunds/${refundId}`)).body.destination).toBe(customer);

    // The devnet has no estimatesmartfee: approval without fee_rate says so instead of guessing.
    const noFee = await api('POST', `/v1/refunds/${refundId}/approve`, {});
    expect(noFee.status).toBe(422);
    expect(noFee.body.error).toMatchObject({ code: 'fee_rate_unavailable', param: 'fee_rate' });

    const approved = await api('POST', `/v1/refunds/${refundId}/approve`, { fee_rate: '2' });
    expect(approved.status, JSON.stringify(approved.body)).toBe(200);
    expect(approved.body).toMatchObject({ status: 'awaiting_signature', bitcoin: { fee_rate: '2' } });
    const psbt = bitcoin.Psbt.fromBase64(approved.body.bitcoin.psbt, { network });
    // It spends exactly the invoice's received output, pays the customer 50,000 sat and returns the change.
    expect(psbt.inputCount).toBe(1);
    expect(psbt.data.inputs[0]!.bip32Derivation![0]!.path).toBe("m/84'/1'/0'/0/0");
    expect(Buffer.from(psbt.data.inputs[0]!.bip32Derivation![0]!.masterFingerprint).toString('hex')).toBe(FINGERPRINT);
    const outs = psbt.txOutputs.map((o) => ({ address: bitcoin.address.fromOutputScript(o.script, network), value: o.value }));
    expect(outs[0]).toEqual({ address: customer, value: 50_000n });
    const networkFee = BigInt(Math.round(Number(approved.body.bitcoin.network_fee) * 1e8));
    expect(outs[1]!.value).toBe(150_000n - 50_000n - networkFee);
    expect(psbt.data.outputs[1]!.bip32Derivation).toHaveLength(1); // the change is recognisably the merchant's

    // An unsigned upload and a tampered one are refused.
    expect((await api('POST', `/v1/refunds/${refundId}/signed_psbt`, { psbt: psbt.toBase64() })).body.error.code).toBe('psbt_not_signed');
    const tampered = bitcoin.Psbt.fromBase64(approved.body.bitcoin.psbt, { network });
    (tampered.data.globalMap.unsignedTx as unknown as { tx: bitcoin.Transaction }).tx.outs[0]!.value = 140_000n;
    expect((await api('POST', `/v1/refunds/${refundId}/signed_psbt`, { psbt: tampered.toBase64() })).body.error.code).toBe('psbt_mismatch');

    // The merchant signs with nothing but the derivation paths in the PSBT and their master key.
    psbt.signAllInputsHD(ROOT);
    const signed = psbt.toBase64();
    const sent = await api('POST', `/v1/refunds/${refundId}/signed_psbt`, { psbt: signed });
    expect(sent.status, JSON.stringify(sent.body)).toBe(200);
    expect(sent.body.status).toBe('broadcast');
    const txid = sent.body.txid as string;
    expect(await dn.rpc.call<string[]>('getrawmempool')).toContain(txid);
    const tx = bitcoin.Transaction.fromHex(await dn.rpc.call<string>('getrawtransaction', [txid, false]));
    expect(tx.ins.map((i) => Buffer.from(i.hash).reverse().toString('hex'))).toEqual([(await ctx.deps.sql<{ txid: string }[]>`select txid from payments where invoice_id = ${inv.id}`)[0]!.txid]);

    // Uploading it again re-sends the same transaction and books nothing twice.
    const ledgerBefore = await ctx.deps.sql`select count(*)::int as n from ledger_entries where kind like 'refund%'`;
    const resent = await api('POST', `/v1/refunds/${refundId}/signed_psbt`, { psbt: signed });
    expect(resent.status, JSON.stringify(resent.body)).toBe(200);
    expect(resent.body.txid).toBe(txid);
    expect(await ctx.deps.sql`select count(*)::int as n from ledger_entries where kind like 'refund%'`).toEqual(ledgerBefore);
    const booked = await ctx.deps.sql<{ kind: string; account: string; amount: bigint }[]>`
      select kind, account, amount from ledger_entries where invoice_id = ${inv.id} and kind like 'refund%' order by id`;
    expect(booked).toContainEqual({ kind: 'refund_sent', account: `merchant:${merchantId}:available`, amount: -50_000n });
    expect(booked).toContainEqual({ kind: 'refund_sent', account: 'chain:bitcoin:outflow', amount: 50_000n });
    expect(booked).toContainEqual({ kind: 'refund_network_fee', account: `merchant:${merchantId}:available`, amount: -networkFee });
    await expectLedgerBalancedIn(ctx.deps.sql);

    // Cancelling a broadcast refund is refused; the claim page now says it was sent.
    expect((await api('POST', `/v1/refunds/${refundId}/cancel`)).body.error.code).toBe('refund_state_invalid');
    const after = await app.request(new URL(created.body.claim_url).pathname);
    expect(await after.text()).toContain(txid);

    // Tracking: unconfirmed stays broadcast; one block (the invoice's policy) completes it; a reorg
    // of that block moves it back; the block returning completes it again.
    const refunds = refundServiceFor(ctx.deps);
    const statusNow = async () => (await api('GET', `/v1/refunds/${refundId}`)).body.status;
    expect(await refunds.track('bitcoin')).toEqual({ completed: 0, reorged: 0, resent: 0, failed: 0 });
    expect(await statusNow()).toBe('broadcast');
    const [block] = await dn.wallet.mine(1);
    const utxo = await dn.rpc.call<{ value: number } | null>('gettxout', [txid, 0, true]);
    expect(utxo?.value).toBe(0.0005); // the customer's wallet sees the money
    expect(await refunds.track('bitcoin')).toEqual({ completed: 1, reorged: 0, resent: 0, failed: 0 });
    expect(await statusNow()).toBe('completed');
    await dn.wallet.invalidateBlock(block!);
    expect(await refunds.track('bitcoin')).toEqual({ completed: 0, reorged: 1, resent: 0, failed: 0 });
    expect(await statusNow()).toBe('broadcast');
    await dn.wallet.reconsiderBlock(block!);
    expect(await refunds.track('bitcoin')).toEqual({ completed: 1, reorged: 0, resent: 0, failed: 0 });
    expect((await api('GET', `/v1/refunds/${refundId}`)).body).toMatchObject({ status: 'completed', txid });

    // Every move wrote its event (outbox) with the refund as it stood; the last one equals GET.
    const events = await ctx.deps.sql<{ type: string; payload: { object: Record<string, unknown> } }[]>`
      select type, payload from events where invoice_id = ${inv.id} and type like 'refund.%' order by seq`;
    expect(events.map((e) => e.type)).toEqual([
      'refund.created', 'refund.claimed', 'refund.approved', 'refund.broadcast', 'refund.completed', 'refund.reorged', 'refund.completed',
    ]);
    expect(events[0]!.payload.object).toMatchObject({ id: refundId, status: 'awaiting_destination', claim_url: created.body.claim_url });
    expect(events.at(-1)!.payload.object).toEqual((await api('GET', `/v1/refunds/${refundId}`)).body);
    const listed = await api('GET', `/v1/events?type=refund.broadcast`);
    expect(listed.body.data.map((e: { data: { object: { id: string } } }) => e.data.object.id)).toEqual([refundId]);
  });
});

describe('a bitcoin refund paid from the merchant\'s own wallet and reported by txid', () => {
  it('accepted only when it pays the customer exactly the refund; books no network fee; one txid per refund; completed by tracking', async () => {
    const inv = await paidInvoice('0.0015');
    const refundId = (await api('POST', `/v1/invoices/${inv.id}/refunds`, { amount: 'overpaid' })).body.id as string;
    // Reporting before approval is refused.
    const early = await api('POST', `/v1/refunds/${refundId}/transaction`, { txid: 'ab'.repeat(32) });
    expect(early.status).toBe(409);
    expect(early.body.error.code).toBe('refund_state_invalid');
    const customer = await dn.wallet.getNewAddress();
    const claimUrl = (await api('GET', `/v1/refunds/${refundId}`)).body.claim_url as string;
    expect((await claimOnPage(claimUrl, customer)).status).toBe(200);
    expect((await api('POST', `/v1/refunds/${refundId}/approve`, { fee_rate: '2' })).body.status).toBe('awaiting_signature');

    // Not a txid; one the node does not know; the invoice's own payment (pays someone else); too little.
    expect((await api('POST', `/v1/refunds/${refundId}/transaction`, { txid: '0x1234' })).body.error).toMatchObject({ code: 'txid_invalid', param: 'txid' });
    expect((await api('POST', `/v1/refunds/${refundId}/transaction`, { txid: 'cd'.repeat(32) })).body.error).toMatchObject({ code: 'transaction_not_found', param: 'txid' });
    const paymentTxid = (await ctx.deps.sql<{ txid: string }[]>`select txid from payments where invoice_id = ${inv.id}`)[0]!.txid;
    expect((await api('POST', `/v1/refunds/${refundId}/transaction`, { txid: paymentTxid })).body.error).toMatchObject({ code: 'transaction_wrong_recipient', param: 'txid' });
    const short = await dn.wallet.sendToAddress(customer, '0.0004');
    expect((await api('POST', `/v1/refunds/${refundId}/transaction`, { txid: short })).body.error).toMatchObject({ code: 'transaction_wrong_amount', param: 'txid' });
    expect((await api('GET', `/v1/refunds/${refundId}`)).body.status).toBe('awaiting_signature');

    // The merchant pays from another wallet of theirs (not the PSBT Kassa built): accepted, no fee booked.
    const txid = await dn.wallet.sendToAddress(customer, '0.0005');
    const reported = await api('POST', `/v1/refunds/${refundId}/transaction`, { txid });
    expect(reported.status, JSON.stringify(reported.body)).toBe(200);
    expect(reported.body).toMatchObject({ status: 'broadcast', txid, bitcoin: { network_fee: null } });
    const booked = await ctx.deps.sql<{ kind: string; amount: bigint }[]>`
      select kind, amount from ledger_entries where invoice_id = ${inv.id} and kind like 'refund%' and account = ${`merchant:${merchantId}:available`}`;
    expect(booked).toEqual([{ kind: 'refund_sent', amount: -50_000n }]);
    await expectLedgerBalancedIn(ctx.deps.sql);
    // The same txid again changes nothing; another one is refused: a Bitcoin transaction cannot be replaced.
    expect((await api('POST', `/v1/refunds/${refundId}/transaction`, { txid })).body.status).toBe('broadcast');
    const other = await api('POST', `/v1/refunds/${refundId}/transaction`, { txid: short });
    expect(other.status).toBe(409);
    expect(other.body.error.code).toBe('refund_already_broadcast');
    expect(await ctx.deps.sql`select count(*)::int as n from ledger_entries where invoice_id = ${inv.id} and kind like 'refund%'`).toEqual([{ n: 2 }]);

    // One confirmation (the invoice's policy) completes it.
    const refunds = refundServiceFor(ctx.deps);
    await dn.wallet.mine(1);
    expect((await refunds.track('bitcoin')).completed).toBe(1);
    expect((await api('GET', `/v1/refunds/${refundId}`)).body).toMatchObject({ status: 'completed', txid });
  });
});

describe('refund invariants', () => {
  it('never more than received per invoice and asset, also under concurrent requests', async () => {
    const inv = await paidInvoice('0.001');
    // A decimal in the asset above what arrived is refused, naming amount.
    const tooMuch = await api('POST', `/v1/invoices/${inv.id}/refunds`, { amount: '0.0011', amount_currency: 'BTC' });
    expect(tooMuch.status).toBe(422);
    expect(tooMuch.body.error).toMatchObject({ code: 'refund_exceeds_received', param: 'amount' });
    // Not overpaid: "overpaid" is refused.
    expect((await api('POST', `/v1/invoices/${inv.id}/refunds`, { amount: 'overpaid' })).body.error.code).toBe('invoice_not_overpaid');
    // Ten concurrent "full" refunds: exactly one gets the money. The test holds a lock that blocks
    // inserts into refunds until all ten are inside their transactions, so without the invoice row
    // lock every one of them would have read the same room and inserted.
    const holder = await ctx.deps.sql.reserve();
    await holder`begin`;
    await holder`lock table refunds in share mode`;
    const pending = Promise.all(Array.from({ length: 10 }, () => api('POST', `/v1/invoices/${inv.id}/refunds`, { amount: 'full', fee: '0.00001' })));
    await new Promise((r) => setTimeout(r, 1500));
    await holder`commit`;
    holder.release();
    const results = await pending;
    expect(results.filter((r) => r.status === 201)).toHaveLength(1);
    expect(results.filter((r) => r.status === 422).every((r) => r.body.error.code === 'nothing_left_to_refund')).toBe(true);
    const live = await ctx.deps.sql<{ s: bigint }[]>`select coalesce(sum(amount + fee), 0)::numeric as s from refunds where invoice_id = ${inv.id} and status not in ('cancelled', 'failed')`;
    expect(BigInt(live[0]!.s)).toBe(100_000n);
    // Cancelling gives the room back: a $30 refund (rate_then: 0.0005 BTC) now fits.
    const full = results.find((r) => r.status === 201)!.body;
    expect((await api('POST', `/v1/refunds/${full.id}/cancel`)).body.status).toBe('cancelled');
    const half = await api('POST', `/v1/invoices/${inv.id}/refunds`, { amount: '30.00' });
    expect(half.status, JSON.stringify(half.body)).toBe(201);
    expect(half.body).toMatchObject({ amount: '0.00050000', requested: { kind: 'decimal', amount: '30.00', currency: 'USD' } });
  });

  it('at most one refund per invoice awaits a signature (service check and partial unique index)', async () => {
    const inv = await paidInvoice('0.002');
    const a = (await api('POST', `/v1/invoices/${inv.id}/refunds`, { amount: '0.0003', amount_currency: 'BTC' })).body;
    const b = (await api('POST', `/v1/invoices/${inv.id}/refunds`, { amount: '0.0004', amount_currency: 'BTC' })).body;
    for (const r of [a, b]) expect((await claimOnPage(r.claim_url, await dn.wallet.getNewAddress())).status).toBe(200);
    expect((await api('POST', `/v1/refunds/${a.id}/approve`, { fee_rate: '1' })).body.status).toBe('awaiting_signature');
    const second = await api('POST', `/v1/refunds/${b.id}/approve`, { fee_rate: '1' });
    expect(second.status).toBe(409);
    expect(second.body.error.code).toBe('refund_awaiting_signature_exists');
    // The database refuses it even when the service is bypassed.
    await expect(ctx.deps.sql`update refunds set status = 'awaiting_signature', approved_at = now() where id = ${b.id}`).rejects.toThrow(/refunds_one_awaiting_signature/);
    // After cancelling the first, the second can be approved.
    expect((await api('POST', `/v1/refunds/${a.id}/cancel`)).body.status).toBe('cancelled');
    const approvedB = await api('POST', `/v1/refunds/${b.id}/approve`, { fee_rate: '1' });
    expect(approvedB.body.status).toBe('awaiting_signature');

    // A crash after Kassa recorded the signed transaction but before the node got it (here: the
    // node unreachable at that moment) loses nothing: the refund is broadcast with its raw
    // transaction, and the tracker sends it. Concurrent uploads of the signed PSBT book once.
    const psbt = bitcoin.Psbt.fromBase64(approvedB.body.bitcoin.psbt, { network });
    psbt.signAllInputsHD(ROOT);
    const real = dn.rpc;
    const unreachable = createRefundService({
      sql: ctx.deps.sql, chains: ctx.config.chains, assets: ctx.deps.assets, rates: ctx.deps.rates, secretKey: ctx.config.secretKey,
      publicUrl: ctx.config.publicUrl, logger: ctx.deps.logger,
      bitcoinRpc: () => ({ ...real, sendRawTransaction: async () => { throw new UpstreamError('bitcoin_node_unreachable', 'connection refused'); } }),
    });
    const uploads = await Promise.allSettled([1, 2, 3].map(() => unreachable.submitSignedPsbt(merchantId, b.id, psbt.toBase64())));
    expect(uploads.every((u) => u.status === 'rejected' && (u.reason as { code: string }).code === 'bitcoin_node_unreachable')).toBe(true);
    const recorded = (await api('GET', `/v1/refunds/${b.id}`)).body;
    expect(recorded.status).toBe('broadcast');
    expect(await dn.rpc.call<string[]>('getrawmempool')).not.toContain(recorded.txid);
    const sentRows = await ctx.deps.sql`select 1 from ledger_entries where invoice_id = ${inv.id} and kind = 'refund_sent'`;
    expect(sentRows).toHaveLength(2); // one balanced posting (two entries), not three
    expect(await refundServiceFor(ctx.deps).track('bitcoin')).toMatchObject({ resent: 1 });
    expect(await dn.rpc.call<string[]>('getrawmempool')).toContain(recorded.txid);
    await expectLedgerBalancedIn(ctx.deps.sql);
  });

  it('bad input is a 4xx naming the field; another merchant sees nothing; scopes are enforced', async () => {
    const inv = await paidInvoice('0.001');
    const bad = async (body: unknown, code: string, param: string) => {
      const r = await api('POST', `/v1/invoices/${inv.id}/refunds`, body);
      expect(r.status, JSON.stringify(r.body)).toBe(400);
      expect(r.body.error, JSON.stringify(body)).toMatchObject({ code, param });
    };
    await bad({ amount: 0.0001 }, 'amount_invalid', 'amount');
    await bad({ amount: '-1' }, 'amount_invalid', 'amount');
    await bad({ amount: '1.001' }, 'amount_invalid', 'amount');
    await bad({ amount: '1', amount_currency: 'EUR' }, 'amount_currency_invalid', 'amount_currency');
    await bad({ amount: 'full', rate_basis: 'fixed' }, 'parameter_missing', 'rate');
    await bad({ amount: '1', rate_basis: 'fixed', rate: '1e5' }, 'rate_invalid', 'rate');
    await bad({ amount: 'full', fee: '0.000000001' }, 'amount_invalid', 'fee');
    await bad({ amount: 'full', method: 'DOGE' }, 'method_invalid', 'method');
    await bad({ amount: 'full', colour: 'red' }, 'parameter_unknown', 'colour');
    await bad({}, 'parameter_missing', 'amount');
    const evm = await api('POST', `/v1/invoices/${inv.id}/refunds`, { amount: '1', method: 'ETH-ethereum' });
    expect(evm.status).toBe(422);
    expect(evm.body.error).toMatchObject({ code: 'method_not_paid', param: 'method' });
    expect((await api('POST', `/v1/invoices/${inv.id}/refunds`, { amount: 'full', fee: '0.001' })).body.error).toMatchObject({ code: 'fee_too_large', param: 'fee' });
    expect((await api('POST', '/v1/refunds/ref_nope/approve', { fee_rate: 'fast' })).status).toBe(404);

    const mine = (await api('POST', `/v1/invoices/${inv.id}/refunds`, { amount: '10.00' })).body;
    expect((await api('POST', `/v1/refunds/${mine.id}/approve`, { fee_rate: '2' })).body.error.code).toBe('refund_state_invalid');
    // A Bitcoin txid is 64 hex characters (no 0x).
    const byHash = await api('POST', `/v1/refunds/${mine.id}/transaction`, { txid: `0x${'ab'.repeat(32)}` });
    expect(byHash.status).toBe(400);
    expect(byHash.body.error).toMatchObject({ code: 'txid_invalid', param: 'txid' });
    const other = await createMerchantWithKey(ctx.deps, { name: 'Other shop' });
    expect((await api('GET', `/v1/refunds/${mine.id}`, undefined, other.secret)).status).toBe(404);
    expect((await api('POST', `/v1/refunds/${mine.id}/cancel`, undefined, other.secret)).status).toBe(404);
    expect((await api('POST', `/v1/invoices/${inv.id}/refunds`, { amount: 'full' }, other.secret)).status).toBe(404);
    expect((await api('GET', `/v1/invoices/${inv.id}/refunds`, undefined, other.secret)).status).toBe(404);
    expect((await api('GET', '/v1/refunds', undefined, other.secret)).body.data).toEqual([]);
    expect((await api('GET', `/v1/refunds/${mine.id}`)).body.status).toBe('awaiting_destination');

    const readOnly = await createMerchantWithKey(ctx.deps, { scopes: ['invoices:read', 'invoices:write'] });
    const denied = await api('GET', '/v1/refunds', undefined, readOnly.secret);
    expect(denied.status).toBe(403);
    expect(denied.body.error.message).toContain('refunds:read');

    // The public claim API checks the address the same way, naming destination.
    const token = tokenOf(mine.claim_url);
    const pub = await app.request(`/v1/public/refund_claims/${token}`, req(undefined, 'POST', { destination: 'bcrt1qnotanaddress' }));
    expect(pub.status).toBe(400);
    expect((await pub.json()).error).toMatchObject({ code: 'destination_invalid', param: 'destination' });
    expect((await app.request('/v1/public/refund_claims/AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA')).status).toBe(404);
    const view = await (await app.request(`/v1/public/refund_claims/${token}`)).json();
    expect(view).toMatchObject({ object: 'refund_claim', status: 'awaiting_destination', asset: 'BTC', network: 'regtest', amount: '0.00016666' });
  });
});

describe('bitcoin refunds in the reconciliation report', () => {
  it('a refund row and its network fee row; net = received − refunded adds up in JSON, CSV and the ledger', async () => {
    const q = `/v1/reports/reconciliation?from=${startedAt.toISOString()}&to=${new Date(Date.now() + 60_000).toISOString()}`;
    const { json, rows } = await expectReportAddsUp(
      async (format) => (await app.request(`${q}&format=${format}`, req(secret, 'GET'))).text(), ctx.deps.sql, merchantId);
    // The overpaid invoice of the first test: $90 received, 0.0005 BTC ($30.00) sent back plus the network fee.
    const first = json.invoices[0];
    expect(first).toMatchObject({ received: '90.00', refunds: [{ status: 'completed', amount: '0.00050000', value: '30.00', rate: '60000.00' }] });
    const fee = first.refunds[0];
    expect(fee.network_fee).not.toBe('0.00000000');
    const mine = rows.filter((r) => r.invoice_id === first.invoice_id && r.row_type!.startsWith('refund'));
    expect(mine.map((r) => [r.row_type, r.amount, r.value])).toEqual([
      ['refund', '-0.00050000', '-30.00'],
      ['refund_network_fee', `-${fee.network_fee}`, `-${fee.network_fee_value}`],
    ]);
    // The refund paid from the merchant's own wallet (second test): a refund row, no network fee row.
    const second = json.invoices[1];
    expect(second.refunds).toMatchObject([{ status: 'completed', amount: '0.00050000', network_fee: '0.00000000' }]);
    expect(rows.filter((r) => r.invoice_id === second.invoice_id && r.row_type!.startsWith('refund')).map((r) => [r.row_type, r.amount])).toEqual([['refund', '-0.00050000']]);
    // Only refunds whose money left the wallet are rows: the broadcast one of the fourth invoice, not the cancelled or unclaimed ones.
    expect(json.invoices.flatMap((i: { refunds: { status: string }[] }) => i.refunds.map((f) => f.status))).toEqual(['completed', 'completed', 'broadcast']);
  });
});
