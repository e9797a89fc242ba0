/**
 * Issue 14, defect 1: a payment is on time only when Kassa's own records prove it reached the
 * mempool or a block by expires_at — never by the timestamp a miner wrote in its block.
 *
 * Real Bitcoin devnet (started without premine, its clock moved with Core's `setmocktime` so its
 * blocks carry timestamps hours early or hours late), the real bitcoin watcher and PostgreSQL.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { pbkdf2 } from '@noble/hashes/pbkdf2';
import { sha512 } from '@noble/hashes/sha2';
import type { BitcoinChainConfig } from '../../src/config.ts';
import { bip32 } from '../../src/chains/bitcoin/ecc.ts';
import { bitcoinNetwork } from '../../src/chains/bitcoin/networks.ts';
import { parseBitcoinKeySource } from '../../src/chains/bitcoin/descriptor.ts';
import { deriveAddress } from '../../src/chains/bitcoin/derive.ts';
import { createBitcoinNodeClient } from '../../src/chains/bitcoin/client.ts';
import { createSettlementService, type SettlementService } from '../../src/settlement/service.ts';
import { createBitcoinWatcher, type BitcoinWatcher } from '../support/watchers.ts';
import { createTestContext, type TestContext } from '../support/db.ts';
import { startDevnetProcess, type DevnetProcess } from '../support/devnet.ts';
import { insertInvoice } from '../support/fixtures.ts';

const SEED = pbkdf2(sha512, 'abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon about', 'mnemonic', { c: 2048, dkLen: 64 });
const SOURCE = parseBitcoinKeySource(
  { xpub: bip32().fromSeed(SEED, bitcoinNetwork('testnet')).derivePath("m/84'/1'/9'").neutered().toBase58() },
  'regtest',
);
let nextIndex = 0;
const HOUR = 3600;

let dn: DevnetProcess;
let ctx: TestContext;
let settlement: SettlementService;
let w: BitcoinWatcher;
let merchantId: string;

function chainsFile(rpcUrl: string): string {
  const dir = mkdtempSync(path.join(tmpdir(), 'kassa-late-'));
  const file = path.join(dir, 'chains.json');
  writeFileSync(file, JSON.stringify({ chains: { bitcoin: { type: 'bitcoin', network: 'regtest', rpc: { url: rpcUrl, user: 'kassa', password: 'kassa' }, poll_interval_ms: 50, reorg_window: 20 } } }));
  return file;
}

const setNodeClock = (unixSeconds: number) => dn.rpc.call('setmocktime', [unixSeconds]);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function sync(): Promise<void> {
  for (let i = 0; i < 100; i++) if (!(await w.runOnce()).more) return;
  throw new Error('watcher did not reach the tip');
}

/** $60 = 0.001 BTC, 1 confirmation, expiring `expiresInMs` from now. */
async function invoice(expiresInMs: number): Promise<{ id: string; address: string; expiresAt: Date }> {
  const d = deriveAddress(SOURCE, nextIndex++);
  const expiresAt = new Date(Date.now() + expiresInMs);
  const id = await insertInvoice(ctx.deps.sql, {
    merchantId, amount: 6000n, expiresAt,
    methods: [{ method: 'BTC', chain: 'bitcoin', asset: 'BTC', decimals: 8, address: d.address, script: d.scriptPubKey, rate: '60000.00', amountDue: 100_000n, confirmationsRequired: 1 }],
  });
  return { id, address: d.address, expiresAt };
}

async function recompute(id: string): Promise<void> {
  await ctx.deps.sql.begin((tx) => settlement.recompute(tx, [id]));
}

async function state(id: string) {
  const [inv] = await ctx.deps.sql<{ status: string; exception: string | null }[]>`select status, exception from invoices where id = ${id}`;
  const pays = await ctx.deps.sql<{ late: boolean; first_seen_at: Date; block_time: Date | null }[]>`select late, first_seen_at, block_time from payments where invoice_id = ${id}`;
  return { status: inv!.status, exception: inv!.exception, late: pays.map((p) => p.late), pays };
}

beforeAll(async () => {
  dn = await startDevnetProcess({ args: ['--premine', '0'] });
  // Every block from genesis on is stamped 3 hours before real time (a consistent chain: each
  // timestamp is above the median time past, as consensus requires).
  await setNodeClock(Math.floor(Date.now() / 1000) - 3 * HOUR);
  await dn.wallet.mine(101);
  ctx = await createTestContext({ KASSA_CONFIG: chainsFile(dn.rpcUrl) });
  const cfg = ctx.config.chains.bitcoin as BitcoinChainConfig;
  settlement = createSettlementService({
    chains: ctx.config.chains, assets: ctx.deps.assets, logger: ctx.deps.logger, redis: ctx.deps.redis,
    queuePrefix: ctx.config.queuePrefix, publicUrl: ctx.config.publicUrl,
  });
  w = createBitcoinWatcher({
    chain: 'bitcoin', config: cfg, client: createBitcoinNodeClient(cfg, 'bitcoin', { retries: 0 }), sql: ctx.deps.sql, settlement,
    redis: ctx.deps.redis, queuePrefix: ctx.config.queuePrefix, logger: ctx.deps.logger,
  });
  merchantId = (await ctx.deps.merchants.create(ctx.deps.sql, { name: 'late shop' })).id;
  await sync();
}, 120_000);

afterAll(async () => {
  await ctx?.close();
  await dn?.stop();
});

describe('late payments are judged by Kassa\'s clock, never a miner\'s', () => {
  it('sent after expiry, mined in a block stamped hours before expiry: stays expired, paid_late', async () => {
    const seen = await invoice(1500); // Kassa sees this one in the mempool, after expiry
    const unseen = await invoice(1500); // this one only in the block, after expiry
    await sleep(2000);
    await recompute(seen.id);
    await recompute(unseen.id);
    expect((await state(seen.id)).status).toBe('expired');
    expect((await state(unseen.id)).status).toBe('expired');

    await dn.wallet.sendToAddress(seen.address, '0.001');
    await w.runOnce(); // mempool pass
    expect(await state(seen.id)).toMatchObject({ status: 'expired', exception: 'paid_late', late: [true] });
    await dn.wallet.sendToAddress(unseen.address, '0.001');
    const [hash] = await dn.wallet.mine(1);
    const header = await dn.rpc.getBlockHeaderVerbose(hash!);
    // The miner's timestamp claims the block was made hours before the invoices expired.
    expect(header.time * 1000).toBeLessThan(seen.expiresAt.getTime() - 2 * HOUR * 1000);
    await sync();

    for (const inv of [seen, unseen]) {
      const s = await state(inv.id);
      expect(s.pays[0]!.block_time!.getTime()).toBe(header.time * 1000);
      expect(s).toMatchObject({ status: 'expired', exception: 'paid_late', late: [true] });
    }
  }, 60_000);

  it('seen in the mempool before expiry, mined in a block stamped hours after expiry: on time, settles', async () => {
    await setNodeClock(Math.floor(Date.now() / 1000) + 2 * HOUR - 5 * 60); // Core accepts up to 2 h ahead
    const inv = await invoice(3000);
    await dn.wallet.sendToAddress(inv.address, '0.001');
    await w.runOnce(); // Kassa sees it before expiry
    expect(await state(inv.id)).toMatchObject({ status: 'processing', late: [false] });
    await sleep(Math.max(0, inv.expiresAt.getTime() - Date.now()) + 300);
    const [hash] = await dn.wallet.mine(1);
    const header = await dn.rpc.getBlockHeaderVerbose(hash!);
    expect(header.time * 1000).toBeGreaterThan(inv.expiresAt.getTime() + HOUR * 1000);
    await sync();
    expect(await state(inv.id)).toMatchObject({ status: 'settled', exception: null, late: [false] });
  }, 60_000);

  it('found only after expiry in a block stamped hours late, below a tip Kassa recorded before expiry (a rescan): on time', async () => {
    // The block is processed before expiry while the payment is not yet matched (here: the invoice's
    // deposit address row is missing, as with a watcher bug); `kassa chains rewind` re-scans it later.
    const inv = await invoice(60_000);
    const [dep] = await ctx.deps.sql`delete from deposit_addresses where invoice_id = ${inv.id} returning *`;
    await dn.wallet.sendToAddress(inv.address, '0.001');
    const [hash] = await dn.wallet.mine(1);
    const header = await dn.rpc.getBlockHeaderVerbose(hash!);
    expect(header.time * 1000).toBeGreaterThan(inv.expiresAt.getTime() + HOUR * 1000);
    await sync(); // block recorded by Kassa now, before expiry; no payment matched
    expect((await state(inv.id)).pays).toHaveLength(0);
    await ctx.deps.sql`update invoices set expires_at = now() where id = ${inv.id}`;
    await sleep(50);
    await recompute(inv.id);
    expect((await state(inv.id)).status).toBe('expired');
    await ctx.deps.sql`insert into deposit_addresses ${ctx.deps.sql(dep!)}`;
    // Rescan from the block before it, as `kassa chains rewind` does.
    await ctx.deps.sql.begin(async (tx) => {
      const touched = await settlement.rollbackTo(tx, 'bitcoin', header.height - 1, () => true);
      await settlement.recompute(tx, touched);
    });
    await sync();
    const s = await state(inv.id);
    expect(s.pays[0]!.first_seen_at.getTime()).toBeGreaterThan((await ctx.deps.sql<{ e: Date }[]>`select expires_at as e from invoices where id = ${inv.id}`)[0]!.e.getTime());
    expect(s).toMatchObject({ status: 'settled', exception: null, late: [false] });
  }, 60_000);
});
