/**
 * `kassa chains rewind` (src/cli/chains.ts): the recovery from `reorg_too_deep`, on the real devnet
 * and Postgres. A small reorg_window (5) lets a 7-block reorg go deeper than the kept hashes.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { execFile } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { pbkdf2 } from '@noble/hashes/pbkdf2';
import { sha512 } from '@noble/hashes/sha2';
import type { BitcoinChainConfig } from '../../src/config.ts';
import { bip32 } from '../../src/chains/bitcoin/ecc.ts';
import { bitcoinNetwork } from '../../src/chains/bitcoin/networks.ts';
import { parseBitcoinKeySource } from '../../src/chains/bitcoin/descriptor.ts';
import { deriveAddress } from '../../src/chains/bitcoin/derive.ts';
import { createBitcoinNodeClient } from '../../src/chains/bitcoin/client.ts';
import { readChainHealth } from '../../src/chains/health.ts';
import { rewindChain, describeRewind, type RewindResult } from '../../src/cli/chains.ts';
import { createBitcoinWatcher, type BitcoinWatcher } from '../support/watchers.ts';
import { createTestContext, type TestContext } from '../support/db.ts';
import { availableOf, expectLedgerBalancedIn, invoiceRowOf } from '../support/ledger.ts';
import { startDevnetProcess, type DevnetProcess } from '../support/devnet.ts';
import { insertInvoice } from '../support/fixtures.ts';

const execFileP = promisify(execFile);
const BIN = path.resolve('bin/kassa.js');
const SEED = pbkdf2(sha512, 'abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon about', 'mnemonic', { c: 2048, dkLen: 64 });
const SOURCE = parseBitcoinKeySource(
  { xpub: bip32().fromSeed(SEED, bitcoinNetwork('testnet')).derivePath("m/84'/1'/9'").neutered().toBase58() },
  'regtest',
);
const KEEP = 5;
let nextIndex = 0;

let dn: DevnetProcess;
let ctx: TestContext;
let cfg: BitcoinChainConfig;
let chainsFile: string;
let merchantId: string;
let w: BitcoinWatcher;

function watcher(extra: Partial<Parameters<typeof createBitcoinWatcher>[0]> = {}): BitcoinWatcher {
  return createBitcoinWatcher({
    chain: 'bitcoin', config: cfg, client: createBitcoinNodeClient(cfg, 'bitcoin', { retries: 0 }), sql: ctx.deps.sql,
    settlement: ctx.deps.settlement, redis: ctx.deps.redis, queuePrefix: ctx.config.queuePrefix, logger: ctx.deps.logger, ...extra,
  });
}

const rewind = (height: number) =>
  rewindChain({ sql: ctx.deps.sql, settlement: ctx.deps.settlement, chains: ctx.config.chains }, { chain: 'bitcoin', height });

/** A $60 invoice (0.001 BTC at 60,000 USD/BTC, 1 confirmation) with a fresh derived address. */
async function invoice(): Promise<{ id: string; address: string }> {
  const d = deriveAddress(SOURCE, nextIndex++);
  const id = await insertInvoice(ctx.deps.sql, {
    merchantId, amount: 6000n,
    methods: [{ method: 'BTC', chain: 'bitcoin', asset: 'BTC', decimals: 8, address: d.address, script: d.scriptPubKey, rate: '60000.00', amountDue: 100_000n, confirmationsRequired: 1 }],
  });
  return { id, address: d.address };
}

async function payments(invoiceId: string) {
  return ctx.deps.sql<{ id: string; txid: string; status: string; block_height: bigint | null; block_hash: string | null; ledger_state: string }[]>`
    select id, txid, status, block_height, block_hash, ledger_state from payments where invoice_id = ${invoiceId} order by seq`;
}

const invoiceRow = (id: string) => invoiceRowOf(ctx.deps.sql, id);
const availableFor = (invoiceId: string) => availableOf(ctx.deps.sql, merchantId, invoiceId);
const expectLedgerBalanced = () => expectLedgerBalancedIn(ctx.deps.sql);

async function eventTypes(invoiceId: string): Promise<string[]> {
  const rows = await ctx.deps.sql<{ type: string }[]>`select type from events where invoice_id = ${invoiceId} order by created_at, id`;
  return rows.map((r) => r.type);
}

async function cursor() {
  return (await ctx.deps.settlement.cursor(ctx.deps.sql, 'bitcoin'))!;
}

async function sync(x: BitcoinWatcher): Promise<void> {
  for (let i = 0; i < 100; i++) if (!(await x.runOnce()).more) return;
  throw new Error('watcher did not reach the tip');
}

/**
 * Pays the invoices in consecutive blocks from height fork + 1 on and buries them to fork + 7 (the
 * watcher keeps 5 hashes), then orphans block fork + 1 (and so all of them) on the node and mines a
 * longer branch from `fork`. Payments in `doubleSpend` are replaced (inputs re-spent elsewhere)
 * before the new branch is mined; the others are re-mined from the mempool.
 *
 * One payment per block: the devnet's block disconnect restores an output created and spent in the
 * same block, which drops the parent transaction from the mempool on a reorg.
 */
async function deepReorg(invs: { address: string }[], doubleSpend: Set<number> = new Set()) {
  await sync(w);
  const fork = (await cursor()).height;
  const txids: string[] = [];
  const blocks: string[] = [];
  for (const inv of invs) {
    txids.push(await dn.wallet.sendToAddress(inv.address, '0.001'));
    blocks.push(...(await dn.wallet.mine(1)));
  }
  await sync(w);
  await dn.wallet.mine(7 - invs.length);
  await sync(w);
  expect((await cursor()).height).toBe(fork + 7);
  await dn.wallet.invalidateBlock(blocks[0]!);
  const mempool = await dn.rpc.getRawMempool();
  for (const t of txids) expect(mempool).toContain(t);
  for (const i of doubleSpend) await dn.wallet.replace(txids[i]!, await dn.wallet.getNewAddress());
  await dn.wallet.mine(8);
  await expect(w.runOnce()).rejects.toMatchObject({ code: 'reorg_too_deep' });
  return { fork, blocks, txids };
}

beforeAll(async () => {
  dn = await startDevnetProcess();
  const dir = mkdtempSync(path.join(tmpdir(), 'kassa-rewind-'));
  chainsFile = path.join(dir, 'chains.json');
  writeFileSync(chainsFile, JSON.stringify({
    chains: { bitcoin: { type: 'bitcoin', network: 'regtest', rpc: { url: dn.rpcUrl, user: dn.rpcUser, password: dn.rpcPassword }, poll_interval_ms: 50, reorg_window: KEEP } },
  }));
  ctx = await createTestContext({ KASSA_CONFIG: chainsFile });
  cfg = ctx.config.chains.bitcoin as BitcoinChainConfig;
  merchantId = (await ctx.deps.merchants.create(ctx.deps.sql, { name: 'Rewind shop' })).id;
  w = watcher();
  await sync(w);
});

afterAll(async () => {
  await ctx?.close();
  await dn?.stop();
});

describe('kassa chains rewind: after reorg_too_deep (rewindChain)', () => {
  let invA: { id: string; address: string };
  let invB: { id: string; address: string };
  let r: { fork: number; blocks: string[]; txids: string[] };

  it('a reorg deeper than the kept window stops the watcher; its message points at kassa chains rewind', async () => {
    invA = await invoice();
    invB = await invoice();
    r = await deepReorg([invA, invB], new Set([1])); // B's transaction is double-spent on the new branch
    const err = await w.runOnce().catch((e: Error) => e);
    expect((err as Error).message).toContain('kassa chains rewind --chain bitcoin --height <H>');
    expect((await invoiceRow(invA.id)).status).toBe('settled');
    expect((await invoiceRow(invB.id)).status).toBe('settled');
  });

  it('refuses a height above the fork (naming the height), above the cursor, or past a closed monitoring window; nothing changes', async () => {
    const before = await cursor();
    // A kept block hash that the node no longer has.
    await expect(rewind(r.fork + 3)).rejects.toMatchObject({
      code: 'rewind_above_fork',
      message: expect.stringMatching(new RegExp(`^height ${r.fork + 3} is above the fork: Kassa's block at height ${r.fork + 3} .*Pick a height below ${r.fork + 3}\\.$`)),
    });
    // Not kept any more, but the payments' block is known (and orphaned).
    await expect(rewind(r.fork + 1)).rejects.toMatchObject({
      code: 'rewind_above_fork',
      message: expect.stringContaining(`Kassa's block at height ${r.fork + 1} (${r.blocks[0]}, from a confirmed payment) is not in the node's best chain`),
    });
    await expect(rewind(before.height + 1)).rejects.toMatchObject({ code: 'rewind_above_cursor', message: expect.stringContaining(`height ${before.height + 1} is above Kassa's cursor`) });

    const [pay] = await payments(invA.id);
    await ctx.deps.sql`update invoices set monitoring_until = now() - interval '1 minute' where id = ${invA.id}`;
    try {
      await expect(rewind(r.fork)).rejects.toMatchObject({
        code: 'rewind_closes_monitoring',
        message: expect.stringContaining(`would reset payment ${pay!.id} (block ${r.fork + 1}) of invoice ${invA.id}`),
      });
    } finally {
      await ctx.deps.sql`update invoices set monitoring_until = now() + interval '1 day' where id = ${invA.id}`;
    }

    expect(await cursor()).toEqual(before);
    expect((await payments(invA.id))[0]).toMatchObject({ status: 'confirmed', block_hash: r.blocks[0] });
    const leases = await ctx.deps.sql`select * from leases where name = 'watch:bitcoin'`;
    expect(leases).toEqual([]); // released after each refusal
  });

  it('rewinds below the fork in one step; the watcher then re-confirms the re-mined payment and marks the double-spent one replaced', async () => {
    const before = await cursor();
    const res = await rewind(r.fork);
    const forkHash = await dn.rpc.getBlockHash(r.fork);
    expect(res).toMatchObject({
      object: 'chain_rewind', chain: 'bitcoin', type: 'bitcoin',
      previous_cursor: before, cursor: { height: r.fork, hash: forkHash }, blocks_dropped: 7,
    });
    expect(res.payments_reset.map((p) => [p.invoice_id, p.txid, p.block_height, p.status]).sort()).toEqual(
      [[invA.id, r.txids[0], r.fork + 1, 'pending'], [invB.id, r.txids[1], r.fork + 2, 'pending']].sort(),
    );
    expect(res.invoices_recomputed).toEqual(expect.arrayContaining([
      { id: invA.id, status: 'settled', exception: null }, { id: invB.id, status: 'settled', exception: null },
    ]));
    expect(describeRewind(res)).toContain(`Rewound chain "bitcoin" from height ${before.height} to ${r.fork}`);

    // Exactly what the automatic rollback leaves: pending payments, ledger back to pending, events.
    expect(await cursor()).toEqual({ height: r.fork, hash: forkHash });
    const blocks = await ctx.deps.sql<{ height: bigint; hash: string }[]>`select height, hash from chain_blocks where chain = 'bitcoin' and height >= ${r.fork}`;
    expect(blocks).toEqual([{ height: BigInt(r.fork), hash: forkHash }]);
    for (const inv of [invA, invB]) {
      expect(await payments(inv.id)).toMatchObject([{ status: 'pending', block_height: null, block_hash: null, ledger_state: 'pending' }]);
      expect(await availableFor(inv.id)).toBe(0n);
      expect((await eventTypes(inv.id)).filter((t) => t === 'invoice.payment_reorged')).toHaveLength(1);
    }
    await expectLedgerBalanced();

    // Workers start again: a fresh watcher rescans from fork + 1.
    await sync(watcher());
    expect((await cursor()).height).toBe(await dn.rpc.getBlockCount());
    const a = await payments(invA.id);
    expect(a).toHaveLength(1);
    expect(a[0]).toMatchObject({ txid: r.txids[0], status: 'confirmed', ledger_state: 'available' });
    expect(a[0]!.block_hash).not.toBe(r.blocks[0]);
    expect(await dn.rpc.getBlockHash(Number(a[0]!.block_height))).toBe(a[0]!.block_hash);
    expect(await invoiceRow(invA.id)).toMatchObject({ status: 'settled', amount_paid: 6000n });
    expect(await availableFor(invA.id)).toBe(100_000n);

    const b = await payments(invB.id);
    expect(b).toHaveLength(1);
    expect(b[0]).toMatchObject({ txid: r.txids[1], status: 'replaced', ledger_state: 'reversed' });
    expect(await invoiceRow(invB.id)).toMatchObject({ status: 'invalid', amount_paid: 0n });
    expect(await availableFor(invB.id)).toBe(0n);
    expect(await eventTypes(invB.id)).toContain('invoice.invalid');
    await expectLedgerBalanced();

    const h = await readChainHealth(ctx.deps.redis, ctx.config.queuePrefix, 'bitcoin');
    expect(h).toMatchObject({ state: 'ok', lag_blocks: 0, error: null });
  });
});

describe('kassa chains rewind: the command (node bin/kassa.js)', () => {
  const env = () => ({
    ...(process.env as Record<string, string>),
    KASSA_ENV: 'test', DATABASE_URL: ctx.config.databaseUrl, REDIS_URL: ctx.config.redisUrl, KASSA_CONFIG: chainsFile,
    KASSA_QUEUE_PREFIX: ctx.config.queuePrefix, KASSA_SECRET_KEY: '11'.repeat(32), LOG_LEVEL: 'warn',
  });
  // Database commands say which database they use on their first stderr line; the rest is the result.
  const withoutUsing = (s: string) => s.replace(/^kassa: using .*\n/, '');
  async function kassa(args: string[]) {
    try {
      const out = await execFileP('node', [BIN, ...args], { env: env() });
      return { code: 0, stdout: out.stdout, stderr: withoutUsing(out.stderr) };
    } catch (err) {
      const e = err as { code: number; stdout: string; stderr: string };
      return { code: e.code, stdout: e.stdout, stderr: withoutUsing(e.stderr) };
    }
  }

  it('refuses (exit 1, one line on stderr) and then rewinds with --json; the watcher re-confirms the payment once', async () => {
    const inv = await invoice();
    const r = await deepReorg([inv]);

    const refused = await kassa(['chains', 'rewind', '--chain', 'bitcoin', '--height', String(r.fork + 1)]);
    expect(refused.code).toBe(1);
    expect(refused.stdout).toBe('');
    expect(refused.stderr).toMatch(new RegExp(`^kassa: rewind_above_fork: height ${r.fork + 1} is above the fork: .*\\n$`));

    const ok = await kassa(['chains', 'rewind', '--chain', 'bitcoin', '--height', String(r.fork), '--json']);
    expect(ok).toMatchObject({ code: 0, stderr: '' });
    const res = JSON.parse(ok.stdout) as RewindResult;
    expect(res).toMatchObject({ chain: 'bitcoin', cursor: { height: r.fork, hash: await dn.rpc.getBlockHash(r.fork) }, blocks_dropped: 7 });
    expect(res.payments_reset).toMatchObject([{ invoice_id: inv.id, txid: r.txids[0], status: 'pending' }]);
    expect(res.checked_blocks.length).toBeGreaterThan(0); // the earlier payments' blocks, still in the best chain

    await sync(watcher());
    const p = await payments(inv.id);
    expect(p).toHaveLength(1);
    expect(p[0]).toMatchObject({ txid: r.txids[0], status: 'confirmed', ledger_state: 'available' });
    expect(await dn.rpc.getBlockHash(Number(p[0]!.block_height))).toBe(p[0]!.block_hash);
    expect(await invoiceRow(inv.id)).toMatchObject({ status: 'settled', amount_paid: 6000n });
    expect(await availableFor(inv.id)).toBe(100_000n);
    await expectLedgerBalanced();
  }, 90_000); // two CLI processes, each loading the TypeScript sources through tsx
});

describe('kassa chains rewind: single flight', () => {
  it('refuses while a worker watches the chain; once it stops, a rewind of a healthy chain rescans without counting twice', async () => {
    const inv = await invoice();
    await dn.wallet.sendToAddress(inv.address, '0.001');
    await dn.wallet.mine(2);
    await sync(w);
    const paid = await payments(inv.id);
    expect(paid).toMatchObject([{ status: 'confirmed' }]);

    const ac = new AbortController();
    const running = watcher({ lockRetryMs: 50 }).run(ac.signal);
    try {
      for (let i = 0; i < 200; i++) {
        const l = await ctx.deps.sql`select 1 from leases where name = 'watch:bitcoin' and expires_at > now()`;
        if (l.length) break;
        await new Promise((res) => setTimeout(res, 25));
      }
      const before = await cursor();
      await expect(rewind(before.height - 3)).rejects.toMatchObject({
        code: 'chain_watcher_running',
        message: expect.stringMatching(/^a worker is watching chain "bitcoin" \(lease watch:bitcoin held by .*\)\. Stop all workers \(kassa worker\) first; their lease expires up to 20 s after they stop\./),
      });
      expect(await cursor()).toEqual(before);
      expect(await payments(inv.id)).toEqual(paid);
    } finally {
      ac.abort();
      await running;
    }

    // The worker stopped (its lease is released): the rewind runs.
    const before = await cursor();
    const height = Number(paid[0]!.block_height) - 1;
    const res = await rewind(height);
    expect(res.payments_reset).toMatchObject([{ invoice_id: inv.id, status: 'pending' }]);
    await sync(watcher());
    expect(await cursor()).toEqual(before);
    expect(await payments(inv.id)).toEqual(paid);
    expect(await availableFor(inv.id)).toBe(100_000n);
    const [{ n }] = (await ctx.deps.sql<{ n: bigint }[]>`select count(*)::bigint as n from payments`) as unknown as [{ n: bigint }];
    expect(Number(n)).toBe(4);
    await expectLedgerBalanced();
  });
});
