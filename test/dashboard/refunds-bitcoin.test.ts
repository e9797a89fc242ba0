/**
 * A Bitcoin refund through the dashboard forms (HTTP, no browser; the EVM path in Chromium is
 * refunds-browser.test.ts), on the real devnet and PostgreSQL: finance creates the refund of an
 * overpaid invoice, the customer claims it, an owner approves it with a fee rate, downloads the
 * unsigned PSBT as a binary file, signs it with the merchant's own key (from the PSBT's BIP 32
 * derivations) and uploads the signed file: Kassa checks, finalizes and broadcasts it.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import * as bitcoin from 'bitcoinjs-lib';
import type { BitcoinChainConfig } from '../../src/config.ts';
import { bitcoinNetwork } from '../../src/chains/bitcoin/networks.ts';
import { parseBitcoinKeySource } from '../../src/chains/bitcoin/descriptor.ts';
import { setBitcoinKeySource } from '../../src/chains/bitcoin/address-pool.ts';
import { createBitcoinNodeClient } from '../../src/chains/bitcoin/client.ts';
import { createApp } from '../../src/api/app.ts';
import { DASHBOARD_CSP } from '../../src/dashboard/routes.tsx';
import { createBitcoinWatcher, type BitcoinWatcher } from '../support/watchers.ts';
import { createMerchantWithKey, createTestContext, req, type TestContext } from '../support/db.ts';
import { startDevnetProcess, type DevnetProcess } from '../support/devnet.ts';
import { writeChainsFile } from '../support/merchant.ts';
import { testMerchantWallet } from '../support/refund-wallet.ts';
import { signedInOwner, type DashboardClient } from '../api/dashboard-session.ts';

const network = bitcoinNetwork('regtest');
// The merchant's own wallet, known only to this test (another seed than test/refunds/bitcoin-refund.test.ts).
const { root: ROOT, descriptor: DESCRIPTOR } = testMerchantWallet(0x43);

let dn: DevnetProcess;
let ctx: TestContext;
let app: ReturnType<typeof createApp>;
let w: BitcoinWatcher;
let secret: string;
let merchantId: string;

async function sync(): Promise<void> {
  for (let i = 0; i < 100; i++) if (!(await w.runOnce()).more) return;
  throw new Error('watcher did not reach the tip');
}

async function api(method: string, path: string, body?: unknown) {
  const res = await app.request(path, req(secret, method, body));
  return { status: res.status, body: await res.json() as Record<string, any> };
}

/** A multipart form (a file upload) from the signed-in client. */
async function postMultipart(client: DashboardClient, path: string, form: FormData) {
  form.append('_csrf', client.csrf);
  const res = await app.request(path, { method: 'POST', headers: { cookie: [...client.cookies].map(([k, v]) => `${k}=${v}`).join('; ') }, body: form });
  return { res, text: await res.text() };
}

beforeAll(async () => {
  dn = await startDevnetProcess();
  ctx = await createTestContext({ KASSA_CONFIG: writeChainsFile({ bitcoinRpc: { url: dn.rpcUrl, user: 'kassa', password: 'kassa' } }) });
  app = createApp(ctx.deps);
  const m = await createMerchantWithKey(ctx.deps, { name: 'Dashboard refund shop' });
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

describe('a Bitcoin refund in the dashboard', () => {
  it('finance creates, the owner approves, downloads the unsigned PSBT, uploads the signed file; Kassa broadcasts it', async () => {
    const inv = await api('POST', '/v1/invoices', { amount: '60.00', currency: 'USD', payment_methods: ['BTC'], speed_policy: 'medium' });
    await dn.wallet.sendToAddress(inv.body.payment_methods[0].address, '0.0015'); // $90 for $60
    await dn.wallet.mine(1);
    await sync();
    const invoiceId = inv.body.id as string;
    const page = `/dashboard/invoices/${invoiceId}`;

    const { client: finance } = await signedInOwner(app, ctx.deps, merchantId, 'finance@btc.test', 'finance');
    const { client: owner } = await signedInOwner(app, ctx.deps, merchantId, 'owner@btc.test', 'owner');
    await finance.get(page);
    // Bad input shows the page again naming the field, and writes nothing.
    const bad = await finance.post(`${page}/refunds`, { amount_kind: 'decimal', amount: '1.2.3', rate_basis: 'rate_then' });
    expect(bad.res.status).toBe(400);
    expect(bad.text).toContain('(field: amount)');
    expect(await ctx.deps.sql`select 1 from refunds where invoice_id = ${invoiceId}`).toHaveLength(0);
    const created = await finance.post(`${page}/refunds`, { amount_kind: 'overpaid', rate_basis: 'rate_then', reason: 'sent too much' });
    expect(created.res.status, created.text.slice(0, 500)).toBe(303);
    const id = (await ctx.deps.sql<{ id: string }[]>`select id from refunds where invoice_id = ${invoiceId}`)[0]!.id;
    const refund = (await api('GET', `/v1/refunds/${id}`)).body;
    expect(refund).toMatchObject({ status: 'awaiting_destination', amount: '0.00050000' });
    // Finance has no PSBT yet, and may not approve.
    expect((await finance.post(`${page}/refunds/${id}/approve`, { fee_rate: '2' })).res.status).toBe(403);

    const customer = await dn.wallet.getNewAddress();
    const claim = await app.request(new URL(refund.claim_url).pathname, {
      method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: new URLSearchParams({ destination: customer, confirm: 'yes' }).toString(),
    });
    expect(claim.status).toBe(200);

    const shown = await owner.get(page);
    expect(shown.text).toContain(`id="approve-${id}"`);
    expect(shown.text).toContain(`id="fee-rate-${id}"`);
    const approved = await owner.post(`${page}/refunds/${id}/approve`, { fee_rate: '2' });
    expect(approved.res.status, approved.text.slice(0, 500)).toBe(303);
    expect((await api('GET', `/v1/refunds/${id}`)).body.status).toBe('awaiting_signature');
    const signing = await owner.get(page);
    expect(signing.text).toContain(`id="psbt-download-${id}"`);
    // No wallet script on a Bitcoin refund's page.
    expect(signing.res.headers.get('content-security-policy')).toBe(DASHBOARD_CSP);
    expect(signing.text).not.toContain('<script');

    const download = await owner.get(`${page}/refunds/${id}/psbt`);
    expect(download.res.headers.get('content-disposition')).toBe(`attachment; filename="kassa-${id}-unsigned.psbt"`);
    const file = Buffer.from(await (await app.request(`${page}/refunds/${id}/psbt`, { headers: { cookie: [...owner.cookies].map(([k, v]) => `${k}=${v}`).join('; ') } })).arrayBuffer());
    expect(file.subarray(0, 5).toString('latin1')).toBe('psbt\xff');
    const psbt = bitcoin.Psbt.fromBuffer(file, { network });
    expect(psbt.toBase64()).toBe((await api('GET', `/v1/refunds/${id}`)).body.bitcoin.psbt);
    // Another merchant's user finds nothing there.
    const other = await createMerchantWithKey(ctx.deps, { name: 'Other shop' });
    const { client: stranger } = await signedInOwner(app, ctx.deps, other.merchant.id, 'owner@other.test', 'owner');
    expect((await stranger.get(`${page}/refunds/${id}/psbt`)).res.status).toBe(404);

    // An unsigned upload is refused with the service's message; the signed binary file is broadcast.
    const unsigned = new FormData();
    unsigned.append('psbt_file', new Blob([new Uint8Array(file)]), 'unsigned.psbt');
    const refused = await postMultipart(owner, `${page}/refunds/${id}/signed_psbt`, unsigned);
    expect(refused.res.status).toBe(422);
    expect((await api('GET', `/v1/refunds/${id}`)).body.status).toBe('awaiting_signature');
    psbt.signAllInputsHD(ROOT);
    const signed = new FormData();
    signed.append('psbt_file', new Blob([new Uint8Array(psbt.toBuffer())]), 'signed.psbt');
    const sent = await postMultipart(owner, `${page}/refunds/${id}/signed_psbt`, signed);
    expect(sent.res.status, sent.text.slice(0, 500)).toBe(303);
    const done = (await api('GET', `/v1/refunds/${id}`)).body;
    expect(done.status).toBe('broadcast');
    expect(await dn.rpc.call<string[]>('getrawmempool')).toContain(done.txid);
    const audit = await ctx.deps.sql<{ action: string }[]>`select action from audit_log where target = ${`refund:${id}`} order by id`;
    expect(audit.map((a) => a.action)).toEqual(['refund.created', 'refund.approved', 'refund.psbt_uploaded']);
  });
});
