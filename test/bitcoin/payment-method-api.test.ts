import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { pbkdf2 } from '@noble/hashes/pbkdf2';
import { sha512 } from '@noble/hashes/sha2';
import { createApp } from '../../src/api/app.ts';
import { bip32 } from '../../src/chains/bitcoin/ecc.ts';
import { bitcoinNetwork } from '../../src/chains/bitcoin/networks.ts';
import { base58CheckDecode, base58CheckEncode } from '../../src/chains/bitcoin/base58.ts';
import { addDescriptorChecksum, parseBitcoinKeySource } from '../../src/chains/bitcoin/descriptor.ts';
import { deriveAddress } from '../../src/chains/bitcoin/derive.ts';
import { allocateBitcoinAddress } from '../../src/chains/bitcoin/address-pool.ts';
import type { Deps } from '../../src/deps.ts';
import { createMerchantWithKey, createTestContext, req, type TestContext } from '../support/db.ts';

const SEED = pbkdf2(sha512, 'abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon about', 'mnemonic', { c: 2048, dkLen: 64 });
const ROOT_MAIN = bip32().fromSeed(SEED, bitcoinNetwork('mainnet'));
const ROOT_TEST = bip32().fromSeed(SEED, bitcoinNetwork('testnet'));

function withVersion(key: string, version: number): string {
  const d = base58CheckDecode(key);
  if (!d.ok) throw new Error('bad test key');
  const p = new Uint8Array(d.payload);
  new DataView(p.buffer).setUint32(0, version);
  return base58CheckEncode(p);
}

// BIP-84 vectors (mainnet) and the matching test-network account keys.
const BIP84_ZPUB = 'zpub6rFR7y4Q2AijBEqTUquhVz398htDFrtymD9xYYfG1m4wAcvPhXNfE3EfH1r1ADqtfSdVCToUG868RvUUkgDKf31mGDtKsAYz2oz2AGutZYs';
const TPUB = ROOT_TEST.derivePath("m/84'/1'/0'").neutered().toBase58();
const VPUB = withVersion(TPUB, 0x045f1cf6);
const TPRV = ROOT_TEST.derivePath("m/84'/1'/0'").toBase58();
const XPRV = ROOT_MAIN.derivePath("m/84'/0'/0'").toBase58();
const WIF = ROOT_TEST.derivePath("m/84'/1'/0'/0/0").toWIF();
const TR_DESCRIPTOR = addDescriptorChecksum(`tr([73c5da0a/86'/1'/0']${ROOT_TEST.derivePath("m/86'/1'/0'").neutered().toBase58()}/0/*)`);

const PATH = '/v1/merchant/payment_methods/bitcoin';

let ctx: TestContext;
let app: ReturnType<typeof createApp>;
let a: Awaited<ReturnType<typeof createMerchantWithKey>>;
let b: Awaited<ReturnType<typeof createMerchantWithKey>>;

function chainsFile(network: string): string {
  const dir = mkdtempSync(path.join(tmpdir(), 'kassa-btc-pm-'));
  const file = path.join(dir, 'chains.json');
  writeFileSync(file, JSON.stringify({ chains: { bitcoin: { type: 'bitcoin', network, rpc: { url: 'http://127.0.0.1:1/' } } } }));
  return file;
}

function appWithChains(chains: Deps['config']['chains']) {
  const deps: Deps = { ...ctx.deps, config: { ...ctx.deps.config, chains } };
  return createApp(deps);
}

async function put(secret: string | undefined, body: unknown, on = app) {
  const res = await on.request(PATH, req(secret, 'PUT', body));
  return { status: res.status, body: (await res.json()) as Record<string, any> };
}

beforeAll(async () => {
  ctx = await createTestContext({ KASSA_CONFIG: chainsFile('regtest') });
  app = createApp(ctx.deps);
  a = await createMerchantWithKey(ctx.deps, { name: 'Merchant A' });
  b = await createMerchantWithKey(ctx.deps, { name: 'Merchant B' });
});
afterAll(async () => ctx?.close());

describe('PUT /v1/merchant/payment_methods/bitcoin: happy path', () => {
  it('accepts a vpub and shows the canonical descriptor and the first three receive addresses', async () => {
    const { status, body } = await put(a.secret, { xpub: VPUB });
    expect(status).toBe(200);
    const expected = parseBitcoinKeySource({ xpub: VPUB }, 'regtest');
    expect(body).toMatchObject({
      object: 'payment_method', method: 'BTC', chain: 'bitcoin', network: 'regtest', address_type: 'p2wpkh', descriptor: expected.descriptor,
    });
    expect(body.first_addresses).toEqual([0, 1, 2].map((i) => ({ index: i, address: deriveAddress(expected, i).address })));
    expect(body.first_addresses[0].address).toMatch(/^bcrt1q/);
    // the pool is ready: the first invoice gets index 0
    const got = await ctx.deps.sql.begin((tx) => allocateBitcoinAddress(tx, a.merchant.id, 'bitcoin'));
    expect(got!.address).toBe(body.first_addresses[0].address);
  });

  it('accepts a tpub with address_type and a tr() descriptor with origin and checksum', async () => {
    const r1 = await put(a.secret, { xpub: TPUB, address_type: 'p2sh-p2wpkh' });
    expect(r1.status).toBe(200);
    expect(r1.body.address_type).toBe('p2sh-p2wpkh');
    expect(r1.body.first_addresses[0].address).toMatch(/^2/);
    const r2 = await put(a.secret, { descriptor: TR_DESCRIPTOR });
    expect(r2.status).toBe(200);
    expect(r2.body.address_type).toBe('p2tr');
    expect(r2.body.descriptor).toMatch(/^tr\(\[73c5da0a\/86h\/1h\/0h\]tpub.*\/0\/\*\)#[a-z0-9]{8}$/);
    expect(r2.body.first_addresses[0].address).toMatch(/^bcrt1p/);
  });

  it('accepts a zpub when the deployment runs mainnet (BIP-84 vector addresses)', async () => {
    const main = appWithChains({ bitcoin: { type: 'bitcoin', network: 'mainnet', rpc: { url: 'http://127.0.0.1:1/' }, poll_interval_ms: 1000, reorg_window: 100 } });
    const { status, body } = await put(b.secret, { xpub: BIP84_ZPUB }, main);
    expect(status).toBe(200);
    expect(body.network).toBe('mainnet');
    expect(body.first_addresses.map((x: { address: string }) => x.address)).toEqual([
      'bc1qcr8te4kr609gcawutmrza0j4xv80jy8z306fyu',
      'bc1qnjg0jd8228aq7egyzacy8cys3knf9xvrerkf9g',
      'bc1qp59yckz4ae5c4efgw2s5wfyvrz0ala7rgvuz8z',
    ]);
  });
});

describe('PUT /v1/merchant/payment_methods/bitcoin: errors', () => {
  it.each([
    ['tprv', { xpub: TPRV }, 'xpub'],
    ['xprv', { xpub: XPRV }, 'xpub'],
    ['WIF', { xpub: WIF }, 'xpub'],
    ['descriptor with a tprv', { descriptor: `wpkh(${TPRV}/0/*)` }, 'descriptor'],
  ])('rejects a private key (%s) with 400 private_key_not_allowed', async (_name, body, param) => {
    const r = await put(a.secret, body);
    expect(r.status).toBe(400);
    expect(r.body.error).toMatchObject({ code: 'private_key_not_allowed', param });
    expect(JSON.stringify(r.body)).not.toContain(TPRV);
    expect(JSON.stringify(r.body)).not.toContain(XPRV);
    expect(JSON.stringify(r.body)).not.toContain(WIF);
  });

  it('rejects a mainnet key on a regtest deployment with 400 network_mismatch', async () => {
    const r = await put(a.secret, { xpub: BIP84_ZPUB });
    expect(r.status).toBe(400);
    expect(r.body.error).toMatchObject({ code: 'network_mismatch', param: 'xpub' });
  });

  it('rejects a descriptor with a wrong checksum (400, param descriptor)', async () => {
    const good = addDescriptorChecksum(`wpkh(${TPUB}/0/*)`);
    const bad = good.slice(0, -1) + (good.endsWith('q') ? 'p' : 'q');
    const r = await put(a.secret, { descriptor: bad });
    expect(r.status).toBe(400);
    expect(r.body.error.param).toBe('descriptor');
    expect(r.body.error.code).toMatch(/checksum/);
  });

  it('rejects unknown fields, empty bodies and both descriptor and xpub', async () => {
    expect((await put(a.secret, { xpub: VPUB, network: 'mainnet' })).status).toBe(400);
    expect((await put(a.secret, {})).status).toBe(400);
    const both = await put(a.secret, { xpub: VPUB, descriptor: addDescriptorChecksum(`wpkh(${TPUB}/0/*)`) });
    expect(both.status).toBe(400);
    expect((await put(a.secret, { xpub: 'not a key' })).status).toBe(400);
  });

  it('answers 422 chain_not_configured when the deployment has no Bitcoin chain', async () => {
    const none = appWithChains({});
    const r = await put(a.secret, { xpub: VPUB }, none);
    expect(r.status).toBe(422);
    expect(r.body.error.code).toBe('chain_not_configured');
  });
});

describe('PUT /v1/merchant/payment_methods/bitcoin: security', () => {
  it('needs an API key', async () => {
    expect((await put(undefined, { xpub: VPUB })).status).toBe(401);
  });

  it('a read-only key gets 403 and changes nothing', async () => {
    const ro = await ctx.deps.apiKeys.create(ctx.deps.sql, { merchantId: a.merchant.id, scopes: ['invoices:read'] });
    const [before] = await ctx.deps.sql`select id, descriptor from bitcoin_key_sources where merchant_id = ${a.merchant.id} and active`;
    const r = await put(ro.secret, { xpub: TPUB });
    expect(r.status).toBe(403);
    const [after] = await ctx.deps.sql`select id, descriptor from bitcoin_key_sources where merchant_id = ${a.merchant.id} and active`;
    expect(after).toEqual(before);
  });

  it("merchant A's change leaves merchant B's settings and pool alone", async () => {
    // B's own key (a key A used is refused: see test/bitcoin/shared-key.test.ts)
    const rb = await put(b.secret, { xpub: ROOT_TEST.derivePath("m/84'/1'/7'").neutered().toBase58() });
    expect(rb.status).toBe(200);
    const bBefore = await ctx.deps.sql`select id, descriptor, next_index from bitcoin_key_sources where merchant_id = ${b.merchant.id} and active`;
    expect(bBefore).toHaveLength(1);
    expect((await put(a.secret, { xpub: TPUB, address_type: 'p2tr' })).status).toBe(200);
    const bAfter = await ctx.deps.sql`select id, descriptor, next_index from bitcoin_key_sources where merchant_id = ${b.merchant.id} and active`;
    expect(bAfter).toEqual(bBefore);
    const got = await ctx.deps.sql.begin((tx) => allocateBitcoinAddress(tx, b.merchant.id, 'bitcoin'));
    expect(got!.address).toBe(rb.body.first_addresses[0].address);
  });

  it('never logs key material and never echoes a private key', async () => {
    await put(a.secret, { xpub: TPRV });
    const logs = ctx.logs.text();
    expect(logs).not.toContain(TPRV);
    expect(logs).not.toContain(TPUB);
    expect(logs).not.toContain(VPUB);
  });
});
