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
import { readChainHealth } from '../../src/chains/health.ts';
import { createSettlementService, type SettlementService } from '../../src/settlement/service.ts';
import { createBitcoinWatcher, type BitcoinWatcher } from '../support/watchers.ts';
import { createTestContext, type TestContext } from '../support/db.ts';
import { availableOf, expectLedgerBalancedIn, invoiceRowOf } from '../support/ledger.ts';
import { startDevnetProcess, type DevnetProcess } from '../support/devnet.ts';
import { insertInvoice } from '../support/fixtures.ts';

const SEED = pbkdf2(sha512, 'abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon about', 'mnemonic', { c: 2048, dkLen: 64 });
const SOURCE = parseBitcoinKeySource(
  { xpub: bip32().fromSeed(SEED, bitcoinNetwork('testnet')).derivePath("m/84'/1'/7'").neutered().toBase58() },
  'regtest',
);
let nextIndex = 0;

let dn: DevnetProcess;
let ctx: TestContext;
let cfg: BitcoinChainConfig;
let settlement: SettlementService;
let merchantId: string;

function chainsFile(rpcUrl: string): string {
  const dir = mkdtempSync(path.join(tmpdir(), 'kassa-btc-watch-'));
  const file = path.join(dir, 'chains.json');
  writeFileSync(
    file,
    JSON.stringify({ chains: { bitcoin: { type: 'bitcoin', network: 'regtest', rpc: { url: rpcUrl, user: 'kassa', password: 'kassa' }, poll_interval_ms: 50, reorg_window: 20 } } }),
  );
  return file;
}

function watcher(extra: Partial<Parameters<typeof createBitcoinWatcher>[0]> = {}): BitcoinWatcher {
  return createBitcoinWatcher({
    chain: 'bitcoin', config: cfg, client: createBitcoinNodeClient(cfg, 'bitcoin', { retries: 0 }), sql: ctx.deps.sql, settlement,
    redis: ctx.deps.redis, queuePrefix: ctx.config.queuePrefix, logger: ctx.deps.logger, ...extra,
  });
}

/** A 'low' (6 conf) invoice of $60 = 0.001 BTC at 60,000 USD/BTC, with a fresh derived deposit address. */
async function invoice(opts: { confirmations?: number; amountDue?: bigint } = {}): Promise<{ id: string; address: string }> {
  const d = deriveAddress(SOURCE, nextIndex++);
  const id = await insertInvoice(ctx.deps.sql, {
    merchantId, amount: 6000n, speedPolicy: 'low',
    methods: [{
      method: 'BTC', chain: 'bitcoin', asset: 'BTC', decimals: 8, address: d.address, script: d.scriptPubKey, rate: '60000.00',
      amountDue: opts.amountDue ?? 100_000n, confirmationsRequired: opts.confirmations ?? 6,
    }],
  });
  return { id, address: d.address };
}

async function payments(invoiceId: string) {
  return ctx.deps.sql<{ txid: string; output_index: number; amount: bigint; status: string; block_height: bigint | null; block_hash: string | null; ledger_state: string }[]>`
    select txid, output_index, amount, status, block_height, block_hash, ledger_state from payments where invoice_id = ${invoiceId} order by seq`;
}

const invoiceRow = (id: string) => invoiceRowOf(ctx.deps.sql, id);
const availableFor = (invoiceId: string) => availableOf(ctx.deps.sql, merchantId, invoiceId);
const expectLedgerBalanced = () => expectLedgerBalancedIn(ctx.deps.sql);

/** Passes until the watcher is at the node's tip. */
async function sync(w: BitcoinWatcher): Promise<number> {
  let blocks = 0;
  for (let i = 0; i < 100; i++) {
    const r = await w.runOnce();
    blocks += r.blocks;
    if (!r.more) return blocks;
  }
  throw new Error('watcher did not reach the tip');
}

let w: BitcoinWatcher;

beforeAll(async () => {
  dn = await startDevnetProcess();
  ctx = await createTestContext({ KASSA_CONFIG: chainsFile(dn.rpcUrl) });
  cfg = ctx.config.chains.bitcoin as BitcoinChainConfig;
  settlement = createSettlementService({
    chains: ctx.config.chains, assets: ctx.deps.assets, logger: ctx.deps.logger, redis: ctx.deps.redis,
    queuePrefix: ctx.config.queuePrefix, publicUrl: ctx.config.publicUrl,
  });
  merchantId = (await ctx.deps.merchants.create(ctx.deps.sql, { name: 'BTC shop' })).id;
  w = watcher();
});

afterAll(async () => {
  await ctx?.close();
  await dn?.stop();
});

describe('bitcoin watcher: payments', () => {
  it('starts at the node tip on first run and reports healthy', async () => {
    const tip = await dn.rpc.getBlockCount();
    const r = await w.runOnce();
    expect(r.blocks).toBe(1); // the tip block itself
    expect(await settlement.cursor(ctx.deps.sql, 'bitcoin')).toEqual({ height: tip, hash: await dn.rpc.getBestBlockHash() });
    const h = await readChainHealth(ctx.deps.redis, ctx.config.queuePrefix, 'bitcoin');
    expect(h).toMatchObject({ state: 'ok', tip_height: tip, lag_blocks: 0, error: null });
  });

  it('mempool → pending, 1 block → confirmed, 6 blocks → a low-speed invoice settles; ledger balances', async () => {
    const inv = await invoice();
    const txid = await dn.wallet.sendToAddress(inv.address, '0.001');
    await w.runOnce();
    let p = await payments(inv.id);
    expect(p).toHaveLength(1);
    expect(p[0]).toMatchObject({ txid, amount: 100_000n, status: 'pending', block_height: null, ledger_state: 'pending' });
    expect((await invoiceRow(inv.id)).status).toBe('processing');

    const [hash] = await dn.wallet.mine(1);
    const height = await dn.rpc.getBlockCount();
    expect((await w.runOnce()).blocks).toBe(1);
    p = await payments(inv.id);
    expect(p[0]).toMatchObject({ status: 'confirmed', block_height: BigInt(height), block_hash: hash });
    expect((await invoiceRow(inv.id)).status).toBe('processing');

    await dn.wallet.mine(4);
    await sync(w);
    expect((await invoiceRow(inv.id)).status).toBe('processing'); // 5 confirmations
    await dn.wallet.mine(1);
    await sync(w);
    const row = await invoiceRow(inv.id);
    expect(row).toMatchObject({ status: 'settled', amount_paid: 6000n, exception: null });
    expect((await payments(inv.id))[0]!.ledger_state).toBe('available');
    await expectLedgerBalanced();
  });

  it('two outputs to one address in one tx, and two txs to one address, all count (distinct vout / txid)', async () => {
    const inv = await invoice({ confirmations: 1, amountDue: 100_000n });
    const tx1 = await dn.wallet.sendOutputs([[inv.address, '0.0003'], [inv.address, '0.0003']]);
    const tx2 = await dn.wallet.sendToAddress(inv.address, '0.0004');
    await dn.wallet.mine(1);
    await sync(w);
    const p = await payments(inv.id);
    expect(p).toHaveLength(3);
    const keys = p.map((x) => `${x.txid}:${x.output_index}`);
    expect(new Set(keys).size).toBe(3);
    expect(p.filter((x) => x.txid === tx1)).toHaveLength(2);
    expect(p.filter((x) => x.txid === tx2)).toHaveLength(1);
    expect(p.reduce((s, x) => s + x.amount, 0n)).toBe(100_000n);
    expect(p.every((x) => x.status === 'confirmed')).toBe(true);
    expect((await invoiceRow(inv.id)).status).toBe('settled');
    await expectLedgerBalanced();
  });

  it('processing the same block or mempool twice counts once', async () => {
    const inv = await invoice({ confirmations: 1 });
    await dn.wallet.sendToAddress(inv.address, '0.001');
    await w.runOnce();
    await watcher().runOnce(); // a fresh watcher (empty mempool cache) sees the same tx again
    expect(await payments(inv.id)).toHaveLength(1);
    const [hash] = await dn.wallet.mine(1);
    await sync(w);
    // re-apply the block: roll the cursor back by one and run again
    const cur = (await settlement.cursor(ctx.deps.sql, 'bitcoin'))!;
    expect(cur.hash).toBe(hash);
    await ctx.deps.sql.begin(async (tx) => settlement.recompute(tx, await settlement.rollbackTo(tx, 'bitcoin', cur.height - 1, () => true)));
    expect((await payments(inv.id))[0]!.status).toBe('pending');
    await sync(w);
    await sync(watcher());
    const p = await payments(inv.id);
    expect(p).toHaveLength(1);
    expect(p[0]).toMatchObject({ status: 'confirmed', block_hash: hash });
    expect((await invoiceRow(inv.id)).status).toBe('settled');
    expect(await availableFor(inv.id)).toBe(100_000n);
    await expectLedgerBalanced();
  });
});

describe('bitcoin watcher: invoices created while a pass runs', () => {
  /** The real devnet client, with `before` run once right before the first call of `method`. */
  function hookedClient(method: 'getRawMempoolTxids' | 'getBestBlockHash', before: () => Promise<void>) {
    const real = createBitcoinNodeClient(cfg, 'bitcoin', { retries: 0 });
    let fired = false;
    const hooked = Object.create(real) as typeof real;
    (hooked as unknown as Record<string, unknown>)[method] = async () => {
      if (!fired) {
        fired = true;
        await before();
      }
      return (real[method] as () => Promise<unknown>).call(real);
    };
    return hooked;
  }

  it('a payment in the mempool to an invoice created mid-pass is counted (mempool listed before the addresses load)', async () => {
    await sync(w);
    let inv: { id: string; address: string } | undefined;
    const client = hookedClient('getRawMempoolTxids', async () => { // the adapter's listing call
      inv = await invoice({ confirmations: 1 });
      await dn.wallet.sendToAddress(inv.address, '0.001');
    });
    const mid = watcher({ client });
    await mid.runOnce();
    await mid.runOnce();
    expect(inv).toBeDefined();
    expect(await payments(inv!.id)).toMatchObject([{ amount: 100_000n, status: 'pending' }]);
    await dn.wallet.mine(1);
    await sync(mid);
    expect(await payments(inv!.id)).toMatchObject([{ amount: 100_000n, status: 'confirmed' }]);
    expect((await invoiceRow(inv!.id)).status).toBe('settled');
  });

  it('a payment mined in a block to an invoice created mid-pass is counted (tip read before the addresses load)', async () => {
    await sync(w);
    let inv: { id: string; address: string } | undefined;
    let hash = '';
    const client = hookedClient('getBestBlockHash', async () => {
      inv = await invoice({ confirmations: 1 });
      await dn.wallet.sendToAddress(inv.address, '0.001');
      hash = (await dn.wallet.mine(1))[0]!;
    });
    await sync(watcher({ client }));
    expect(inv).toBeDefined();
    expect(await payments(inv!.id)).toMatchObject([{ amount: 100_000n, status: 'confirmed', block_hash: hash }]);
    expect((await invoiceRow(inv!.id)).status).toBe('settled');
    await expectLedgerBalanced();
  });
});

describe('bitcoin watcher: reorgs', () => {
  it('a tx re-mined on the new branch is counted once at its new block', async () => {
    const inv = await invoice({ confirmations: 1 });
    const txid = await dn.wallet.sendToAddress(inv.address, '0.001');
    const [b1] = await dn.wallet.mine(1);
    await sync(w);
    expect((await payments(inv.id))[0]).toMatchObject({ txid, status: 'confirmed', block_hash: b1 });
    expect((await invoiceRow(inv.id)).status).toBe('settled');

    await dn.wallet.invalidateBlock(b1!);
    expect(await dn.rpc.getRawMempool()).toContain(txid); // back in the mempool, like Core
    await dn.wallet.mine(2); // a longer branch that re-mines the tx from the mempool
    const r = await w.runOnce();
    expect(r.reorgs).toBe(1);
    await sync(w);
    const p = await payments(inv.id);
    expect(p).toHaveLength(1);
    const newHash = p[0]!.block_hash!;
    expect(newHash).not.toBe(b1);
    expect(await dn.rpc.getBlockHash(Number(p[0]!.block_height))).toBe(newHash);
    expect(p[0]!.status).toBe('confirmed');
    expect((await invoiceRow(inv.id)).status).toBe('settled');
    const events = await ctx.deps.sql`select type from events where invoice_id = ${inv.id} and type = 'invoice.payment_reorged'`;
    expect(events.length).toBe(1);
    expect(await availableFor(inv.id)).toBe(100_000n);
    await expectLedgerBalanced();
  });

  it('a double-spend replacement on the new branch un-counts the payment; the invoice is not paid', async () => {
    const inv = await invoice({ confirmations: 1 });
    const txid = await dn.wallet.sendToAddress(inv.address, '0.001');
    const [b1] = await dn.wallet.mine(1);
    await sync(w);
    expect((await invoiceRow(inv.id)).status).toBe('settled');

    await dn.wallet.invalidateBlock(b1!);
    const replacement = await dn.wallet.replace(txid, await dn.wallet.getNewAddress());
    expect(replacement).not.toBe(txid);
    await dn.wallet.mine(2);
    await sync(w);
    const p = await payments(inv.id);
    expect(p).toHaveLength(1);
    expect(['reorged', 'replaced']).toContain(p[0]!.status);
    expect(p[0]!.ledger_state).toBe('reversed');
    const row = await invoiceRow(inv.id);
    expect(row.amount_paid).toBe(0n);
    expect(row.status).not.toBe('settled');
    expect(await availableFor(inv.id)).toBe(0n);
    await expectLedgerBalanced();
  });

  it('a pending payment replaced in the mempool becomes replaced', async () => {
    const inv = await invoice({ confirmations: 1 });
    const txid = await dn.wallet.sendToAddress(inv.address, '0.001');
    await w.runOnce();
    expect((await payments(inv.id))[0]!.status).toBe('pending');
    await dn.wallet.replace(txid, await dn.wallet.getNewAddress());
    await w.runOnce();
    expect((await payments(inv.id))[0]!.status).toBe('replaced');
    await dn.wallet.mine(1);
    await sync(w);
    expect((await payments(inv.id))[0]!.status).toBe('replaced');
    expect((await invoiceRow(inv.id)).amount_paid).toBe(0n);
    await expectLedgerBalanced();
  });

  it('a pending payment double-spent by a transaction in the next block is marked replaced by that block', async () => {
    const inv = await invoice({ confirmations: 1 });
    const txid = await dn.wallet.sendToAddress(inv.address, '0.001');
    await w.runOnce();
    expect((await payments(inv.id))[0]!.status).toBe('pending');
    const conflict = await dn.wallet.replace(txid, await dn.wallet.getNewAddress());
    const [hash] = await dn.wallet.mine(1);
    const block = await dn.rpc.call<{ tx: string[] }>('getblock', [hash, 1]).catch(() => null);
    if (block) expect(block.tx).toContain(conflict);
    const r = await w.runOnce();
    expect(r.blocks).toBe(1);
    expect((await payments(inv.id))[0]!.status).toBe('replaced');
    expect((await invoiceRow(inv.id)).amount_paid).toBe(0n);
    expect(ctx.logs.text()).toMatch(/"double_spent":1/);
    await expectLedgerBalanced();
  });

  it('runs unchanged against the Esplora backend', async () => {
    const ew = watcher({ client: dn.esplora });
    const inv = await invoice({ confirmations: 1 });
    const txid = await dn.wallet.sendToAddress(inv.address, '0.001');
    await ew.runOnce();
    expect((await payments(inv.id))[0]).toMatchObject({ txid, status: 'pending' });
    await dn.wallet.mine(1);
    await sync(ew);
    expect((await payments(inv.id))[0]).toMatchObject({ txid, status: 'confirmed' });
    expect((await invoiceRow(inv.id)).status).toBe('settled');
  });

  it('a reorg deeper than the kept window stops the watcher loudly', async () => {
    // Fake history: the stored hashes no longer match anything on the node.
    const cur = (await settlement.cursor(ctx.deps.sql, 'bitcoin'))!;
    const saved = await ctx.deps.sql`select * from chain_blocks where chain = 'bitcoin' order by height`;
    const savedState = await ctx.deps.sql`select * from chain_state where chain = 'bitcoin'`;
    await ctx.deps.sql`update chain_blocks set hash = md5(hash) || md5(hash) where chain = 'bitcoin'`;
    await ctx.deps.sql`update chain_state set tip_hash = (select hash from chain_blocks where chain = 'bitcoin' and height = ${cur.height}) where chain = 'bitcoin'`;
    await dn.wallet.mine(1);
    await expect(w.runOnce()).rejects.toMatchObject({ code: 'reorg_too_deep' });
    const ac = new AbortController();
    await expect(watcher().run(ac.signal)).rejects.toMatchObject({ code: 'reorg_too_deep' });
    const h = await readChainHealth(ctx.deps.redis, ctx.config.queuePrefix, 'bitcoin');
    expect(h?.state).toBe('error');
    expect(h?.error).toMatch(/reorganised deeper than the kept window/);
    // restore
    await ctx.deps.sql`delete from chain_blocks where chain = 'bitcoin'`;
    for (const b of saved) await ctx.deps.sql`insert into chain_blocks ${ctx.deps.sql(b as Record<string, unknown>)}`;
    await ctx.deps.sql`update chain_state set tip_hash = ${savedState[0]!.tip_hash as string} where chain = 'bitcoin'`;
    await sync(w);
  });
});

describe('bitcoin watcher: restarts, single flight, node failures', () => {
  it('restart mid catch-up: every payment is recorded exactly once', async () => {
    const invs = [];
    const txids: string[] = [];
    for (let i = 0; i < 6; i++) {
      const inv = await invoice({ confirmations: 1 });
      invs.push(inv);
      txids.push(await dn.wallet.sendToAddress(inv.address, '0.001'));
      await dn.wallet.mine(1);
    }
    await dn.wallet.mine(2);
    const first = watcher({ maxBlocksPerPass: 3 });
    const r1 = await first.runOnce();
    expect(r1).toMatchObject({ blocks: 3, more: true });
    // a run() that is aborted after its first block commits
    const ac = new AbortController();
    const cursorBefore = (await settlement.cursor(ctx.deps.sql, 'bitcoin'))!.height;
    const running = watcher({ maxBlocksPerPass: 1 }).run(ac.signal);
    for (let i = 0; i < 200 && (await settlement.cursor(ctx.deps.sql, 'bitcoin'))!.height === cursorBefore; i++) await new Promise((r) => setTimeout(r, 20));
    ac.abort();
    await running;
    expect((await settlement.cursor(ctx.deps.sql, 'bitcoin'))!.height).toBeGreaterThan(cursorBefore);
    await sync(watcher());
    for (const [i, inv] of invs.entries()) {
      const p = await payments(inv.id);
      expect(p).toHaveLength(1);
      expect(p[0]).toMatchObject({ txid: txids[i], status: 'confirmed' });
      expect((await invoiceRow(inv.id)).status).toBe('settled');
    }
    const ids = invs.map((i) => i.id);
    const [{ n }] = (await ctx.deps.sql<{ n: bigint }[]>`
      select count(*)::bigint as n from payments where invoice_id = any(${ids})`) as unknown as [{ n: bigint }];
    expect(Number(n)).toBe(6);
    const ledger = await ctx.deps.sql<{ payment_id: string; n: bigint }[]>`
      select payment_id, count(distinct txn_id)::bigint as n from ledger_entries where invoice_id = any(${ids}) group by payment_id`;
    expect(ledger).toHaveLength(6);
    // same booking path for each payment (pending → available, or straight to available)
    expect(new Set(ledger.map((l) => Number(l.n))).size).toBe(1);
    await expectLedgerBalanced();
  });

  it('two watchers on one chain: only one holds the lock; the standby takes over when it stops', async () => {
    const a = new AbortController();
    const b = new AbortController();
    const inv1 = await invoice({ confirmations: 1 });
    const runA = watcher({ lockRetryMs: 50 }).run(a.signal);
    await new Promise((r) => setTimeout(r, 300));
    const runB = watcher({ lockRetryMs: 50 }).run(b.signal);
    await new Promise((r) => setTimeout(r, 200));
    const leases = await ctx.deps.sql<{ n: bigint }[]>`select count(*)::bigint as n from leases where name = 'watch:bitcoin' and expires_at > now()`;
    expect(Number(leases[0]!.n)).toBe(1);
    expect(ctx.logs.text()).toContain('another process watches this chain: standing by');
    await dn.wallet.sendToAddress(inv1.address, '0.001');
    await dn.wallet.mine(1);
    const waitFor = async (pred: () => Promise<boolean>) => {
      for (let i = 0; i < 200; i++) {
        if (await pred()) return;
        await new Promise((r) => setTimeout(r, 25));
      }
      throw new Error('timed out');
    };
    await waitFor(async () => (await invoiceRow(inv1.id)).status === 'settled');
    a.abort();
    await runA;
    // B takes over and follows the chain
    const inv2 = await invoice({ confirmations: 1 });
    await dn.wallet.sendToAddress(inv2.address, '0.001');
    await dn.wallet.mine(1);
    await waitFor(async () => (await invoiceRow(inv2.id)).status === 'settled');
    b.abort();
    await runB;
    expect(await payments(inv1.id)).toHaveLength(1);
    expect(await payments(inv2.id)).toHaveLength(1);
  });

  it('an unreachable node: health shows the error naming the node, and the loop keeps retrying', async () => {
    const bad: BitcoinChainConfig = { ...cfg, rpc: { url: 'http://127.0.0.1:1/', user: 'kassa', password: 'secret-pw' } };
    const client = createBitcoinNodeClient(bad, 'bitcoin', { retries: 0, timeoutMs: 500 });
    let calls = 0;
    const counting = { ...client, getBestBlockHash: () => { calls++; return client.getBestBlockHash(); } };
    const ac = new AbortController();
    const running = createBitcoinWatcher({
      chain: 'bitcoin', config: bad, client: counting, sql: ctx.deps.sql, settlement, redis: ctx.deps.redis,
      queuePrefix: ctx.config.queuePrefix, logger: ctx.deps.logger, backoffMinMs: 20, backoffMaxMs: 80,
    }).run(ac.signal);
    for (let i = 0; i < 200 && calls < 4; i++) await new Promise((r) => setTimeout(r, 20));
    const h = await readChainHealth(ctx.deps.redis, ctx.config.queuePrefix, 'bitcoin');
    ac.abort();
    await running;
    expect(calls).toBeGreaterThanOrEqual(4);
    expect(h?.state).toBe('error');
    expect(h?.error).toMatch(/Bitcoin node "bitcoin" \(http:\/\/127\.0\.0\.1:1\/\)/);
    expect(h?.error).not.toContain('secret-pw');
    expect(ctx.logs.text()).not.toContain('secret-pw');
    // recovers with a working node
    await sync(w);
    expect((await readChainHealth(ctx.deps.redis, ctx.config.queuePrefix, 'bitcoin'))?.state).toBe('ok');
  });
});
