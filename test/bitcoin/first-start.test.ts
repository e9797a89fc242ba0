/**
 * Issue 14 defect 8, Bitcoin side: the watcher's first pass (no cursor) started at the node's tip,
 * so a payment mined before the first worker start was never scanned. It now starts low enough to
 * cover every open invoice (src/chains/start-height.ts, shared with the EVM watcher).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { BitcoinChainConfig } from '../../src/config.ts';
import { bip32 } from '../../src/chains/bitcoin/ecc.ts';
import { bitcoinNetwork } from '../../src/chains/bitcoin/networks.ts';
import { parseBitcoinKeySource } from '../../src/chains/bitcoin/descriptor.ts';
import { deriveAddress } from '../../src/chains/bitcoin/derive.ts';
import { createBitcoinNodeClient } from '../../src/chains/bitcoin/client.ts';
import { createSettlementService, type SettlementService } from '../../src/settlement/service.ts';
import { createBitcoinWatcher } from '../support/watchers.ts';
import { createTestContext, type TestContext } from '../support/db.ts';
import { startDevnetProcess, type DevnetProcess } from '../support/devnet.ts';
import { insertInvoice } from '../support/fixtures.ts';

const SOURCE = parseBitcoinKeySource({ xpub: bip32().fromSeed(Buffer.alloc(32, 9), bitcoinNetwork('testnet')).derivePath("m/84'/1'/0'").neutered().toBase58() }, 'regtest');

let dn: DevnetProcess;
let ctx: TestContext;
let cfg: BitcoinChainConfig;
let settlement: SettlementService;

beforeAll(async () => {
  dn = await startDevnetProcess();
  const file = path.join(mkdtempSync(path.join(tmpdir(), 'kassa-btc-first-')), 'chains.json');
  writeFileSync(file, JSON.stringify({ chains: { bitcoin: { type: 'bitcoin', network: 'regtest', rpc: { url: dn.rpcUrl, user: 'kassa', password: 'kassa' }, poll_interval_ms: 50, reorg_window: 20 } } }));
  ctx = await createTestContext({ KASSA_CONFIG: file });
  cfg = ctx.config.chains.bitcoin as BitcoinChainConfig;
  settlement = createSettlementService({
    chains: ctx.config.chains, assets: ctx.deps.assets, logger: ctx.deps.logger, redis: ctx.deps.redis,
    queuePrefix: ctx.config.queuePrefix, publicUrl: ctx.config.publicUrl,
  });
});

afterAll(async () => {
  await ctx?.close();
  await dn?.stop();
});

describe('bitcoin watcher: the first pass covers open invoices', () => {
  it('credits a payment mined before the first watcher start', async () => {
    const merchantId = (await ctx.deps.merchants.create(ctx.deps.sql, { name: 'BTC first start' })).id;
    const d = deriveAddress(SOURCE, 0);
    const id = await insertInvoice(ctx.deps.sql, {
      merchantId, amount: 6000n, speedPolicy: 'low',
      methods: [{ method: 'BTC', chain: 'bitcoin', asset: 'BTC', decimals: 8, address: d.address, script: d.scriptPubKey, rate: '60000.00', amountDue: 100_000n, confirmationsRequired: 1 }],
    });
    const txid = await dn.wallet.sendToAddress(d.address, '0.001');
    const [hash] = await dn.wallet.mine(1);
    await dn.wallet.mine(3);
    const paidAt = (await dn.rpc.getBlockCount()) - 3;

    const w = createBitcoinWatcher({
      chain: 'bitcoin', config: cfg, client: createBitcoinNodeClient(cfg, 'bitcoin', { retries: 0 }), sql: ctx.deps.sql, settlement,
      redis: ctx.deps.redis, queuePrefix: ctx.config.queuePrefix, logger: ctx.deps.logger,
    });
    for (let i = 0; i < 20 && (await w.runOnce()).more; i++);

    const rows = await ctx.deps.sql<{ txid: string; amount: bigint; status: string; block_hash: string; block_height: bigint }[]>`
      select txid, amount, status, block_hash, block_height from payments where invoice_id = ${id}`;
    expect(rows.map((p) => [p.txid, p.amount, p.status, p.block_hash, Number(p.block_height)])).toEqual([[txid, 100_000n, 'confirmed', hash, paidAt]]);
    const [inv] = await ctx.deps.sql<{ status: string }[]>`select status from invoices where id = ${id}`;
    expect(inv!.status).toBe('settled');
    const log = ctx.logs.lines.filter((l) => l.includes('first scan')).map((l) => JSON.parse(l) as Record<string, unknown>).at(-1);
    expect(log).toMatchObject({ reason: 'time', open_addresses: 1 });
    expect(Number(log!.start)).toBeLessThanOrEqual(paidAt);
  }, 60_000);
});
