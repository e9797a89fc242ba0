/**
 * Bitcoin payouts end to end on the real devnet and PostgreSQL (docs/refunds.md, "Payouts"): two
 * invoices paid by the devnet wallet and recorded by the real watcher; a payout created over the
 * API (Idempotency-Key), approved (an unsigned PSBT over the merchant's own unspent outputs, with
 * their BIP 32 derivations), signed by this test's own key from the PSBT's derivations alone,
 * uploaded, finalized and broadcast; tracked to completed and back on a reorg; a second payout
 * reported by the txid of a transaction the merchant's wallet sent itself; bad input, another
 * merchant, scopes; payouts in the reconciliation report apart from the invoices' money.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import * as bitcoin from 'bitcoinjs-lib';
import type { BitcoinChainConfig } from '../../src/config.ts';
import { bitcoinNetwork } from '../../src/chains/bitcoin/networks.ts';
import { parseBitcoinKeySource } from '../../src/chains/bitcoin/descriptor.ts';
import { setBitcoinKeySource } from '../../src/chains/bitcoin/address-pool.ts';
import { createBitcoinNodeClient } from '../../src/chains/bitcoin/client.ts';
import { createApp } from '../../src/api/app.ts';
import { payoutServiceFor } from '../../src/payouts/service.ts';
import { createBitcoinWatcher, type BitcoinWatcher } from '../support/watchers.ts';
import { createMerchantWithKey, createTestContext, req, type TestContext } from '../support/db.ts';
import { startDevnetProcess, type DevnetProcess } from '../support/devnet.ts';
import { writeChainsFile } from '../support/merchant.ts';
import { expectLedgerBalancedIn } from '../support/ledger.ts';
import { parseCsv } from '../support/csv.ts';
import { testMerchantWallet } from '../support/refund-wallet.ts';

const network = bitcoinNetwork('regtest');
// The merchant's own wallet, known only to this test: Kassa gets the account tpub with its key origin.
const { root: ROOT, fingerprint: FINGERPRINT, descriptor: DESCRIPTOR } = testMerchantWallet(0x17);

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

/** A $60 invoice paid `btc` by the devnet wallet, confirmed and recorded. */
async function paidInvoice(btc: string): Promise<string> {
  const inv = await api('POST', '/v1/invoices', { amount: '60.00', currency: 'USD', payment_methods: ['BTC'], speed_policy: 'medium' });
  expect(inv.status, JSON.stringify(inv.body)).toBe(201);
  await dn.wallet.sendToAddress(inv.body.payment_methods[0].address as string, btc);
  await dn.wallet.mine(1);
  await sync();
  return inv.body.id as string;
}

const sats = (btc: string) => BigInt(btc.replace('.', ''));

beforeAll(async () => {
  dn = await startDevnetProcess();
  ctx = await createTestContext({ KASSA_CONFIG: writeChainsFile({ bitcoinRpc: { url: dn.rpcUrl, user: 'kassa', password: 'kassa' } }) });
  app = createApp(ctx.deps);
  const m = await createMerchantWithKey(ctx.deps, { name: 'Payout shop' });
  secret = m.secret;
  merchantId = m.merchant.id;
  await ctx.deps.sql.begin((tx) => setBitcoinKeySource(tx, merchantId, 'bitcoin', parseBitcoinKeySource({ descriptor: DESCRIPTOR }, 'regtest')));
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

describe('bitcoin payout, end to end', () => {
  it('create (idempotent) → approve (PSBT over the merchant\'s own outputs) → signed → broadcast → completed; a reorg moves it back; ledger balances', async () => {
    const first = await paidInvoice('0.001');
    const second = await paidInvoice('0.002');
    const supplier = await dn.wallet.getNewAddress();

    const body = { chain: 'bitcoin', asset: 'BTC', amount: '0.0025', destination: supplier, reference: 'SUP-17', description: 'Boxes' };
    const created = await api('POST', '/v1/payouts', body, secret, { 'Idempotency-Key': 'payout-1' });
    expect(created.status, JSON.stringify(created.body)).toBe(201);
    expect(created.body).toMatchObject({
      object: 'payout', status: 'awaiting_approval', chain: 'bitcoin', asset: 'BTC', method: 'BTC', amount: '0.00250000',
      destination: supplier, reference: 'SUP-17', confirmations_required: 1, bitcoin: { psbt: null }, evm: null, txid: null,
    });
    const id = created.body.id as string;
    expect(id).toMatch(/^po_/);
    // The same Idempotency-Key replays the same payout; another body with it is refused.
    expect((await api('POST', '/v1/payouts', body, secret, { 'Idempotency-Key': 'payout-1' })).body.id).toBe(id);
    expect((await api('POST', '/v1/payouts', { ...body, amount: '0.003' }, secret, { 'Idempotency-Key': 'payout-1' })).status).toBe(409);
    expect((await api('GET', '/v1/payouts')).body.data.map((p: { id: string }) => p.id)).toEqual([id]);

    // Uploading or approving out of order is refused; the devnet has no fee estimate, so fee_rate is named.
    expect((await api('POST', `/v1/payouts/${id}/signed_psbt`, { psbt: 'cHNidP8B' })).body.error.code).toBe('payout_state_invalid');
    const noFee = await api('POST', `/v1/payouts/${id}/approve`, {});
    expect(noFee.status).toBe(422);
    expect(noFee.body.error).toMatchObject({ code: 'fee_rate_unavailable', param: 'fee_rate' });

    const approved = await api('POST', `/v1/payouts/${id}/approve`, { fee_rate: '2' });
    expect(approved.status, JSON.stringify(approved.body)).toBe(200);
    expect(approved.body).toMatchObject({ status: 'awaiting_signature', bitcoin: { fee_rate: '2' } });
    const psbt = bitcoin.Psbt.fromBase64(approved.body.bitcoin.psbt, { network });
    // 0.0025 BTC needs both received outputs (largest first); each input carries its BIP 32 derivation.
    const paid = await ctx.deps.sql<{ txid: string; output_index: number; invoice_id: string }[]>`
      select txid, output_index, invoice_id from payments where invoice_id in (${first}, ${second}) order by amount desc`;
    expect(psbt.txInputs.map((i) => `${Buffer.from(i.hash).reverse().toString('hex')}:${i.index}`)).toEqual(paid.map((p) => `${p.txid}:${p.output_index}`));
    expect(psbt.data.inputs.map((i) => i.bip32Derivation![0]!.path)).toEqual(["m/84'/1'/0'/0/1", "m/84'/1'/0'/0/0"]);
    expect(Buffer.from(psbt.data.inputs[0]!.bip32Derivation![0]!.masterFingerprint).toString('hex')).toBe(FINGERPRINT);
    const outs = psbt.txOutputs.map((o) => ({ address: bitcoin.address.fromOutputScript(o.script, network), value: o.value }));
    expect(outs[0]).toEqual({ address: supplier, value: 250_000n });
    const networkFee = sats(approved.body.bitcoin.network_fee);
    expect(outs[1]!.value).toBe(300_000n - 250_000n - networkFee);
    expect(psbt.data.outputs[1]!.bip32Derivation).toHaveLength(1); // the change goes to the merchant's next address

    // A tampered PSBT (another amount) is refused; then the merchant signs with their master key only.
    const tampered = bitcoin.Psbt.fromBase64(approved.body.bitcoin.psbt, { network });
    (tampered.data.globalMap.unsignedTx as unknown as { tx: bitcoin.Transaction }).tx.outs[0]!.value = 240_000n;
    expect((await api('POST', `/v1/payouts/${id}/signed_psbt`, { psbt: tampered.toBase64() })).body.error).toMatchObject({ code: 'psbt_mismatch', param: 'psbt' });
    expect((await api('POST', `/v1/payouts/${id}/signed_psbt`, { psbt: psbt.toBase64() })).body.error.code).toBe('psbt_not_signed');
    psbt.signAllInputsHD(ROOT);
    const sent = await api('POST', `/v1/payouts/${id}/signed_psbt`, { psbt: psbt.toBase64() }, secret, { 'Idempotency-Key': 'payout-1-signed' });
    expect(sent.status, JSON.stringify(sent.body)).toBe(200);
    expect(sent.body).toMatchObject({ status: 'broadcast', bitcoin: { psbt: null } });
    const txid = sent.body.txid as string;
    expect(await dn.rpc.call<string[]>('getrawmempool')).toContain(txid);
    // Uploading it again re-sends it and books nothing twice.
    expect((await api('POST', `/v1/payouts/${id}/signed_psbt`, { psbt: psbt.toBase64() })).body.txid).toBe(txid);
    const booked = await ctx.deps.sql<{ kind: string; account: string; amount: bigint; invoice_id: string | null }[]>`
      select kind, account, amount, invoice_id from ledger_entries where kind like 'payout%' order by id`;
    expect(booked).toEqual([
      { kind: 'payout_sent', account: 'chain:bitcoin:outflow', amount: 250_000n, invoice_id: null },
      { kind: 'payout_sent', account: `merchant:${merchantId}:available`, amount: -250_000n, invoice_id: null },
      { kind: 'payout_network_fee', account: 'chain:bitcoin:outflow', amount: networkFee, invoice_id: null },
      { kind: 'payout_network_fee', account: `merchant:${merchantId}:available`, amount: -networkFee, invoice_id: null },
    ]);
    await expectLedgerBalancedIn(ctx.deps.sql);
    expect((await api('POST', `/v1/payouts/${id}/cancel`)).body.error.code).toBe('payout_state_invalid');

    // Tracking: completed at one confirmation, back to broadcast when its block goes, completed again.
    const payouts = payoutServiceFor(ctx.deps);
    const status = async () => (await api('GET', `/v1/payouts/${id}`)).body.status;
    expect(await payouts.track('bitcoin')).toEqual({ completed: 0, reorged: 0, resent: 0, failed: 0 });
    const [block] = await dn.wallet.mine(1);
    expect(await payouts.track('bitcoin')).toEqual({ completed: 1, reorged: 0, resent: 0, failed: 0 });
    expect(await status()).toBe('completed');
    await dn.wallet.invalidateBlock(block!);
    expect(await payouts.track('bitcoin')).toEqual({ completed: 0, reorged: 1, resent: 0, failed: 0 });
    expect(await status()).toBe('broadcast');
    await dn.wallet.reconsiderBlock(block!);
    expect(await payouts.track('bitcoin')).toEqual({ completed: 1, reorged: 0, resent: 0, failed: 0 });

    const events = await ctx.deps.sql<{ type: string; invoice_id: string | null; payload: { object: Record<string, unknown> } }[]>`
      select type, invoice_id, payload from events where type like 'payout.%' order by seq`;
    expect(events.map((e) => e.type)).toEqual(['payout.created', 'payout.approved', 'payout.broadcast', 'payout.completed', 'payout.reorged', 'payout.completed']);
    expect(events.every((e) => e.invoice_id === null)).toBe(true);
    expect(events.at(-1)!.payload.object).toEqual((await api('GET', `/v1/payouts/${id}`)).body);
    const listed = await api('GET', '/v1/events?type=payout.broadcast');
    expect(listed.body.data.map((e: { data: { object: { id: string } } }) => e.data.object.id)).toEqual([id]);

    // Those outputs are spent now: a payout of more than is left finds too little to spend.
    const tooMuch = (await api('POST', '/v1/payouts', { chain: 'bitcoin', asset: 'BTC', amount: '0.001', destination: supplier })).body;
    const short = await api('POST', `/v1/payouts/${tooMuch.id}/approve`, { fee_rate: '2' });
    expect(short.status).toBe(422);
    expect(short.body.error.code).toBe('nothing_to_spend');
    expect((await api('POST', `/v1/payouts/${tooMuch.id}/cancel`)).body.status).toBe('cancelled');
  });

  it('a transaction the merchant\'s wallet sent itself is accepted by its txid only when it pays the destination the amount', async () => {
    const supplier = await dn.wallet.getNewAddress();
    const p = (await api('POST', '/v1/payouts', { chain: 'bitcoin', asset: 'BTC', amount: '0.0004', destination: supplier })).body;
    // Reporting before approval is refused.
    expect((await api('POST', `/v1/payouts/${p.id}/transaction`, { txid: 'ab'.repeat(32) })).body.error.code).toBe('payout_state_invalid');
    await paidInvoice('0.001');
    expect((await api('POST', `/v1/payouts/${p.id}/approve`, { fee_rate: '1' })).body.status).toBe('awaiting_signature');
    // The wallet paid the wrong amount first, then the right one.
    const wrong = await dn.wallet.sendToAddress(supplier, '0.0003');
    const right = await dn.wallet.sendToAddress(supplier, '0.0004');
    const bad = await api('POST', `/v1/payouts/${p.id}/transaction`, { txid: wrong });
    expect(bad.status).toBe(422);
    expect(bad.body.error).toMatchObject({ code: 'transaction_wrong_amount', param: 'txid' });
    expect((await api('POST', `/v1/payouts/${p.id}/transaction`, { txid: '0x' + 'ab'.repeat(32) })).body.error).toMatchObject({ code: 'txid_invalid', param: 'txid' });
    expect((await api('POST', `/v1/payouts/${p.id}/transaction`, { txid: 'cd'.repeat(32) })).body.error).toMatchObject({ code: 'transaction_not_found', param: 'txid' });
    expect((await api('GET', `/v1/payouts/${p.id}`)).body.status).toBe('awaiting_signature');
    const ok = await api('POST', `/v1/payouts/${p.id}/transaction`, { txid: right });
    expect(ok.status, JSON.stringify(ok.body)).toBe(200);
    expect(ok.body).toMatchObject({ status: 'broadcast', txid: right, bitcoin: { psbt: null } });
    // Its network fee was not Kassa's PSBT's (the wallet paid it): only the amount is booked.
    expect(ok.body.bitcoin.network_fee).toBeNull();
    const booked = await ctx.deps.sql<{ kind: string; n: number }[]>`select kind, count(*)::int as n from ledger_entries where kind like 'payout%' group by kind order by kind`;
    expect(booked).toEqual([{ kind: 'payout_network_fee', n: 2 }, { kind: 'payout_sent', n: 4 }]);
    await dn.wallet.mine(1);
    expect(await payoutServiceFor(ctx.deps).track('bitcoin')).toMatchObject({ completed: 1 });
    expect((await api('GET', `/v1/payouts/${p.id}`)).body.status).toBe('completed');
    await expectLedgerBalancedIn(ctx.deps.sql);
  });

  it('bad input is a 4xx naming the field, with nothing written; another merchant sees nothing; scopes are enforced', async () => {
    const before = await ctx.deps.sql`select count(*)::int as n from payouts`;
    const bad = async (body: Record<string, unknown>, status: number, code: string, param: string) => {
      const r = await api('POST', '/v1/payouts', { chain: 'bitcoin', asset: 'BTC', amount: '0.0001', destination: 'bcrt1qw508d6qejxtdg4y5r3zarvary0c5xw7kygt080', ...body });
      expect(r.status, JSON.stringify(r.body)).toBe(status);
      expect(r.body.error, JSON.stringify(body)).toMatchObject({ code, param });
    };
    await bad({ amount: 0.0001 }, 400, 'amount_invalid', 'amount');
    await bad({ amount: '-1' }, 400, 'amount_invalid', 'amount');
    await bad({ amount: '0.000000001' }, 400, 'amount_invalid', 'amount');
    await bad({ chain: 'dogecoin' }, 400, 'chain_invalid', 'chain');
    await bad({ asset: 'ETH' }, 400, 'asset_invalid', 'asset');
    await bad({ destination: 'bc1qw508d6qejxtdg4y5r3zarvary0c5xw7kv8f3t4' }, 400, 'destination_invalid', 'destination'); // mainnet on regtest
    await bad({ destination: '' }, 400, 'destination_missing', 'destination');
    await bad({ colour: 'red' }, 400, 'parameter_unknown', 'colour');
    await bad({ reference: 'x'.repeat(201) }, 400, 'parameter_invalid', 'reference');
    const own = (await ctx.deps.sql<{ address: string }[]>`select address from deposit_addresses where merchant_id = ${merchantId} limit 1`)[0]!.address;
    await bad({ destination: own }, 400, 'destination_is_deposit_address', 'destination');
    expect(await ctx.deps.sql`select count(*)::int as n from payouts`).toEqual(before);
    expect((await api('POST', '/v1/payouts/po_nope/approve', { fee_rate: 'fast' })).status).toBe(404);

    const mine = (await api('POST', '/v1/payouts', { chain: 'bitcoin', asset: 'BTC', amount: '0.0001', destination: await dn.wallet.getNewAddress() })).body;
    expect((await api('POST', `/v1/payouts/${mine.id}/approve`, { fee_rate: '0.5' })).body.error).toMatchObject({ code: 'fee_rate_invalid', param: 'fee_rate' });
    // An output below the dust limit would be refused by every node: approval says so, naming amount.
    const dust = (await api('POST', '/v1/payouts', { chain: 'bitcoin', asset: 'BTC', amount: '0.000001', destination: await dn.wallet.getNewAddress() })).body;
    const dustApproval = await api('POST', `/v1/payouts/${dust.id}/approve`, { fee_rate: '1' });
    expect(dustApproval.status).toBe(422);
    expect(dustApproval.body.error).toMatchObject({ code: 'amount_below_dust', param: 'amount' });
    expect((await api('GET', `/v1/payouts/${dust.id}`)).body.status).toBe('awaiting_approval');
    const other = await createMerchantWithKey(ctx.deps, { name: 'Other shop' });
    expect((await api('GET', `/v1/payouts/${mine.id}`, undefined, other.secret)).status).toBe(404);
    expect((await api('POST', `/v1/payouts/${mine.id}/approve`, { fee_rate: '2' }, other.secret)).status).toBe(404);
    expect((await api('POST', `/v1/payouts/${mine.id}/cancel`, undefined, other.secret)).status).toBe(404);
    expect((await api('GET', '/v1/payouts', undefined, other.secret)).body.data).toEqual([]);
    // Another merchant's payout never spends this merchant's outputs: with its own key source, it finds none.
    const otherDescriptor = testMerchantWallet(0x18).descriptor;
    await ctx.deps.sql.begin((tx) => setBitcoinKeySource(tx, other.merchant.id, 'bitcoin', parseBitcoinKeySource({ descriptor: otherDescriptor }, 'regtest')));
    const theirs = (await api('POST', '/v1/payouts', { chain: 'bitcoin', asset: 'BTC', amount: '0.0001', destination: await dn.wallet.getNewAddress() }, other.secret)).body;
    expect((await api('POST', `/v1/payouts/${theirs.id}/approve`, { fee_rate: '2' }, other.secret)).body.error.code).toBe('nothing_to_spend');
    expect((await api('GET', `/v1/payouts/${mine.id}`)).body.status).toBe('awaiting_approval');

    const refundsOnly = await createMerchantWithKey(ctx.deps, { scopes: ['refunds:read', 'refunds:write'] });
    const denied = await api('GET', '/v1/payouts', undefined, refundsOnly.secret);
    expect(denied.status).toBe(403);
    expect(denied.body.error.message).toContain('payouts:read');
    expect((await api('POST', '/v1/payouts', {}, refundsOnly.secret)).status).toBe(403);
  });
});

describe('payouts in the reconciliation report', () => {
  it('are rows of their own, not subtracted from what the invoices received', async () => {
    const q = `/v1/reports/reconciliation?from=${startedAt.toISOString()}&to=${new Date(Date.now() + 60_000).toISOString()}`;
    const json = await (await app.request(`${q}&format=json`, req(secret, 'GET'))).json() as Record<string, any>;
    const sent = await ctx.deps.sql<{ id: string }[]>`select id from payouts where merchant_id = ${merchantId} and status in ('broadcast', 'completed') order by seq`;
    expect(json.payouts.map((p: { payout_id: string }) => p.payout_id)).toEqual(sent.map((p) => p.id));
    const btc = json.totals.payouts_per_asset.find((a: { method: string }) => a.method === 'BTC');
    expect(btc).toMatchObject({ payouts: 2, sent: '0.00290000' });
    // The invoices' own figures are untouched by payouts.
    expect(json.totals.per_asset.find((a: { method: string }) => a.method === 'BTC')).toMatchObject({ refunded: '0.00000000', net_received: json.totals.per_asset[0].received });
    const rows = parseCsv(await (await app.request(`${q}&format=csv`, req(secret, 'GET'))).text()) as Record<string, string>[];
    const payoutRows = rows.filter((r) => r.row_type === 'payout');
    expect(payoutRows.map((r) => r.payout_id)).toEqual(sent.map((p) => p.id));
    expect(payoutRows.map((r) => r.amount)).toEqual(['-0.00250000', '-0.00040000']);
    expect(payoutRows.every((r) => r.invoice_id === '')).toBe(true);
  });
});
