/**
 * The settlement rules, table-driven, against the real database: payments are fed in as the chain
 * watchers would (recordObservations + advanceCursor + recompute in one transaction).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestContext, type TestContext } from '../support/db.ts';
import { createPayableMerchant, writeChainsFile } from '../support/merchant.ts';
import type { Observation } from '../../src/settlement/service.ts';

let ctx: TestContext;
let shop: Awaited<ReturnType<typeof createPayableMerchant>>;
let height = 100;

beforeAll(async () => {
  ctx = await createTestContext({ KASSA_CONFIG: writeChainsFile() });
  shop = await createPayableMerchant(ctx.deps);
  await mineBlock('bitcoin', []);
  await mineBlock('ethereum', []);
});
afterAll(async () => ctx?.close());

const USDC = '0x5fbdb2315678afecb367f032d93f642f64180aa3';
let txCounter = 0;
const newTxid = () => (++txCounter).toString(16).padStart(64, '0');
const tips: Record<string, number> = { bitcoin: 100, ethereum: 100 };
/** Block hashes that differ from the default `${chain}-${height}` (blocks of another branch). */
const branches = new Map<string, string>();

/** Applies one block on `chain` containing `obs` (confirmed) and recomputes, like a watcher. */
async function mineBlock(chain: string, obs: Omit<Observation, 'block'>[], time = new Date(), branch = ''): Promise<void> {
  const h = ++tips[chain]!;
  height = h;
  const hashAt = (x: number) => (branches.get(`${chain}:${x}`) ?? `${chain}-${x}`).padEnd(64, '0');
  if (branch) branches.set(`${chain}:${h}`, `${chain}-${branch}-${h}`);
  else branches.delete(`${chain}:${h}`);
  const block = { hash: hashAt(h), height: h, time };
  await ctx.deps.sql.begin(async (tx) => {
    const touched = await ctx.deps.settlement.recordObservations(tx, chain, obs.map((o) => ({ ...o, block })));
    await ctx.deps.settlement.advanceCursor(tx, chain, { height: h, hash: block.hash, prevHash: hashAt(h - 1), time }, 100);
    const waiting = await ctx.deps.settlement.awaitingConfirmations(tx, chain);
    await ctx.deps.settlement.recompute(tx, [...touched, ...waiting]);
  });
}

/** Rolls `chain` back to `height` (a reorg, or the rescan `kassa chains rewind` does) and recomputes. */
async function rescanFrom(chain: string, height: number, stillInMempool: (txid: string) => boolean = () => true): Promise<void> {
  await ctx.deps.sql.begin(async (tx) => {
    const touched = await ctx.deps.settlement.rollbackTo(tx, chain, height, stillInMempool);
    await ctx.deps.settlement.recompute(tx, touched);
  });
  tips[chain] = height;
}

async function seeInMempool(chain: string, obs: Omit<Observation, 'block'>[]): Promise<void> {
  await ctx.deps.sql.begin(async (tx) => {
    const touched = await ctx.deps.settlement.recordObservations(tx, chain, obs.map((o) => ({ ...o, block: null })));
    await ctx.deps.settlement.recompute(tx, touched);
  });
}

async function createInvoice(body: Record<string, unknown>) {
  const merchant = await ctx.deps.merchants.get(ctx.deps.sql, shop.merchant.id);
  return ctx.deps.invoices.create(merchant, { amount: '30.00', currency: 'USD', ...body } as never);
}

async function state(id: string) {
  const inv = await ctx.deps.invoices.get(shop.merchant.id, id);
  const events = await ctx.deps.sql<{ type: string }[]>`select type from events where invoice_id = ${id} order by seq`;
  return { status: inv.status, exception: inv.exception, amount_paid: inv.amount_paid, events: events.map((e) => e.type), inv };
}

const addr = (inv: Awaited<ReturnType<typeof createInvoice>>, method: string) => inv.payment_methods.find((m) => m.method === method)!.address;
const btc = (inv: Awaited<ReturnType<typeof createInvoice>>, sats: bigint) => ({ txid: newTxid(), outputIndex: 0, address: addr(inv, 'BTC'), token: null, amount: sats });
const usdc = (inv: Awaited<ReturnType<typeof createInvoice>>, units: bigint) => ({ txid: '0x' + newTxid(), outputIndex: 3, address: addr(inv, 'USDC-ethereum').toLowerCase(), token: USDC, amount: units });

describe('settlement rules', () => {
  it('exact payment: new → processing on detection → settled at 1 confirmation', async () => {
    const inv = await createInvoice({});
    expect(inv.payment_methods.find((m) => m.method === 'BTC')!.amount_due).toBe('0.00050000');
    await seeInMempool('bitcoin', [btc(inv, 50_000n)]);
    expect(await state(inv.id)).toMatchObject({ status: 'processing', exception: null, amount_paid: '30.00', events: ['invoice.created', 'invoice.payment_detected', 'invoice.processing'] });
    const p = (await ctx.deps.sql`select txid from payments where invoice_id = ${inv.id}`)[0]!;
    await mineBlock('bitcoin', [{ txid: p.txid, outputIndex: 0, address: addr(inv, 'BTC'), token: null, amount: 50_000n }]);
    const s = await state(inv.id);
    expect(s).toMatchObject({ status: 'settled', exception: null, events: ['invoice.created', 'invoice.payment_detected', 'invoice.processing', 'invoice.payment_confirmed', 'invoice.settled'] });
    expect(s.inv.settled_at).not.toBeNull();
  });

  it('a stale mempool sighting of a confirmed payment changes nothing (found by fault seed 301)', async () => {
    const inv = await createInvoice({});
    const pay = btc(inv, 50_000n);
    await seeInMempool('bitcoin', [pay]);
    await mineBlock('bitcoin', [pay]);
    expect((await state(inv.id)).status).toBe('settled');
    const before = await ctx.deps.sql`select status, block_hash, block_height from payments where invoice_id = ${inv.id}`;
    // A watcher whose mempool listing predates the block (or a node mid-reorg) reports it again.
    await seeInMempool('bitcoin', [pay]);
    expect(await ctx.deps.sql`select status, block_hash, block_height from payments where invoice_id = ${inv.id}`).toEqual(before);
    expect(before[0]).toMatchObject({ status: 'confirmed' });
    expect(await state(inv.id)).toMatchObject({
      status: 'settled', events: ['invoice.created', 'invoice.payment_detected', 'invoice.processing', 'invoice.payment_confirmed', 'invoice.settled'],
    });
  });

  it('under within tolerance settles; beyond tolerance stays new (paid_partial) until a top-up', async () => {
    await ctx.deps.merchants.update(ctx.deps.sql, shop.merchant.id, { paymentToleranceBps: 100 }); // 1 %
    const within = await createInvoice({});
    await mineBlock('bitcoin', [btc(within, 49_600n)]); // 29.76 USD ≥ 29.70
    expect(await state(within.id)).toMatchObject({ status: 'settled', exception: null, amount_paid: '29.76' });

    const beyond = await createInvoice({});
    await mineBlock('bitcoin', [btc(beyond, 25_000n)]); // 15.00 USD
    let s = await state(beyond.id);
    expect(s).toMatchObject({ status: 'new', exception: 'paid_partial', amount_paid: '15.00' });
    expect(s.inv.amount_due).toBe('15.00');
    expect(s.inv.payment_methods.find((m) => m.method === 'BTC')!.amount_due).toBe('0.00025000');
    await mineBlock('bitcoin', [btc(beyond, 25_000n)]);
    s = await state(beyond.id);
    expect(s).toMatchObject({ status: 'settled', exception: null, amount_paid: '30.00' });
    await ctx.deps.merchants.update(ctx.deps.sql, shop.merchant.id, { paymentToleranceBps: 0 });
  });

  it('overpayment settles with paid_over and the excess visible', async () => {
    const inv = await createInvoice({});
    await mineBlock('bitcoin', [btc(inv, 60_000n)]);
    expect(await state(inv.id)).toMatchObject({ status: 'settled', exception: 'paid_over', amount_paid: '36.00' });
  });

  it('two methods add up, each at its own locked rate', async () => {
    const inv = await createInvoice({});
    await mineBlock('bitcoin', [btc(inv, 25_000n)]); // 15.00
    await mineBlock('ethereum', [usdc(inv, 15_000_000n)]); // 15.00
    const s = await state(inv.id);
    expect(s).toMatchObject({ status: 'settled', exception: null, amount_paid: '30.00' });
  });

  it('late payment after expiry: recorded, paid_late, stays expired', async () => {
    const inv = await createInvoice({});
    await ctx.deps.sql`update invoices set expires_at = now() - interval '1 minute' where id = ${inv.id}`;
    expect((await state(inv.id)).status).toBe('expired');
    await mineBlock('bitcoin', [btc(inv, 50_000n)]);
    const s = await state(inv.id);
    // Late money does not count toward the price: amount_paid (counted) stays 0.00 (docs/reconciliation.md).
    expect(s).toMatchObject({ status: 'expired', exception: 'paid_late', amount_paid: '0.00' });
    expect(s.events).toEqual(['invoice.created', 'invoice.expired', 'invoice.payment_detected', 'invoice.payment_confirmed', 'invoice.paid_late']);
    const [p] = await ctx.deps.sql`select late from payments where invoice_id = ${inv.id}`;
    expect(p!.late).toBe(true);
  });

  it('a payment found after expiry in a block Kassa recorded before expiry (a rescan) pays the invoice; the block time is ignored', async () => {
    const inv = await createInvoice({});
    await ctx.deps.sql`update invoices set expires_at = now() + interval '1 second' where id = ${inv.id}`;
    await mineBlock('bitcoin', []); // Kassa records this tip before expiry, without matching the payment in it
    const h = tips.bitcoin!;
    await new Promise((r) => setTimeout(r, 1100));
    expect((await state(inv.id)).status).toBe('expired');
    await rescanFrom('bitcoin', h - 1);
    await mineBlock('bitcoin', [btc(inv, 50_000n)], new Date(Date.now() + 3 * 3600_000)); // same block, miner time hours late
    expect(await state(inv.id)).toMatchObject({ status: 'settled', exception: null });
  });

  it('a payment first seen after expiry in a block stamped hours before expiry is late', async () => {
    const inv = await createInvoice({});
    await ctx.deps.sql`update invoices set expires_at = now() - interval '1 second' where id = ${inv.id}`;
    await mineBlock('bitcoin', [btc(inv, 50_000n)], new Date(Date.now() - 3 * 3600_000));
    expect(await state(inv.id)).toMatchObject({ status: 'expired', exception: 'paid_late' });
  });

  it('reorg: a tip recorded before expiry on a branch that left the chain proves nothing about the new branch', async () => {
    const inv = await createInvoice({});
    await ctx.deps.sql`update invoices set expires_at = now() + interval '1 second' where id = ${inv.id}`;
    await mineBlock('bitcoin', []);
    const h = tips.bitcoin!;
    await new Promise((r) => setTimeout(r, 1100));
    await rescanFrom('bitcoin', h - 1);
    // A different block at the same height (another branch), with the payment, stamped before expiry.
    await mineBlock('bitcoin', [btc(inv, 50_000n)], new Date(Date.now() - 3 * 3600_000), 'fork');
    expect(await state(inv.id)).toMatchObject({ status: 'expired', exception: 'paid_late' });
    const [rec] = await ctx.deps.sql<{ height: bigint }[]>`select max(height) as height from chain_tip_observations where chain = 'bitcoin' and observed_at <= (select expires_at from invoices where id = ${inv.id})`;
    expect(Number(rec!.height)).toBe(h - 1); // folded down to the fork point
  });

  it('reorg: a payment Kassa saw before expiry stays on time when re-mined after expiry', async () => {
    const inv = await createInvoice({});
    await ctx.deps.sql`update invoices set expires_at = now() + interval '1 second' where id = ${inv.id}`;
    const pay = btc(inv, 50_000n);
    await mineBlock('bitcoin', [pay]);
    const h = tips.bitcoin!;
    expect((await state(inv.id)).status).toBe('settled');
    await new Promise((r) => setTimeout(r, 1100));
    await rescanFrom('bitcoin', h - 1, () => false); // orphaned, not in the mempool: reorged
    expect((await state(inv.id)).status).toBe('invalid');
    await mineBlock('bitcoin', [pay], new Date(), 'fork'); // re-mined on the new branch, after expiry
    expect(await state(inv.id)).toMatchObject({ status: 'settled', exception: null });
  });

  it('paid after cancel: recorded as late, never lost', async () => {
    const inv = await createInvoice({});
    await ctx.deps.invoices.cancel(shop.merchant.id, inv.id);
    await mineBlock('bitcoin', [btc(inv, 50_000n)]);
    expect(await state(inv.id)).toMatchObject({ status: 'expired', exception: 'paid_late' });
  });

  it('zero-conf policy (high) settles on detection; default policy waits', async () => {
    const fast = await createInvoice({ speed_policy: 'high' });
    await seeInMempool('bitcoin', [btc(fast, 50_000n)]);
    expect((await state(fast.id)).status).toBe('settled');
    const slow = await createInvoice({ speed_policy: 'low' });
    await mineBlock('bitcoin', [btc(slow, 50_000n)]);
    for (let i = 0; i < 4; i++) await mineBlock('bitcoin', []);
    expect((await state(slow.id)).status).toBe('processing');
    await mineBlock('bitcoin', []); // 6th confirmation
    expect((await state(slow.id)).status).toBe('settled');
  });

  it('duplicate delivery of the same payment is counted once', async () => {
    const inv = await createInvoice({});
    const p = btc(inv, 25_000n);
    await seeInMempool('bitcoin', [p]);
    await seeInMempool('bitcoin', [p]);
    await mineBlock('bitcoin', [p]);
    await mineBlock('bitcoin', [p]); // re-applied in a later block delivery: same (chain, txid, vout)
    const rows = await ctx.deps.sql`select count(*)::int as n from payments where invoice_id = ${inv.id}`;
    expect(rows[0]!.n).toBe(1);
    expect((await state(inv.id)).amount_paid).toBe('15.00');
  });

  it('reorg before settlement (tx not re-mined) un-counts the payment', async () => {
    const inv = await createInvoice({ speed_policy: 'low_medium' });
    await mineBlock('bitcoin', [btc(inv, 50_000n)]);
    expect((await state(inv.id)).status).toBe('processing');
    await ctx.deps.sql.begin(async (tx) => {
      const touched = await ctx.deps.settlement.rollbackTo(tx, 'bitcoin', tips.bitcoin! - 1, () => false);
      await ctx.deps.settlement.recompute(tx, touched);
    });
    tips.bitcoin! -= 1;
    const s = await state(inv.id);
    expect(s).toMatchObject({ status: 'invalid', amount_paid: '0.00' });
    expect(s.events).toEqual(['invoice.created', 'invoice.payment_detected', 'invoice.processing', 'invoice.payment_reorged', 'invoice.invalid']);
    const [p] = await ctx.deps.sql`select status from payments where invoice_id = ${inv.id}`;
    expect(p!.status).toBe('reorged');
  });

  it('reorg after settlement: a settled invoice that loses its payment becomes invalid; a re-mined tx counts once', async () => {
    const inv = await createInvoice({});
    const pay = btc(inv, 50_000n);
    await mineBlock('bitcoin', [pay]);
    expect((await state(inv.id)).status).toBe('settled');
    // Reorg where the tx goes back to the mempool: still counted, no invalidation.
    await ctx.deps.sql.begin(async (tx) => {
      const touched = await ctx.deps.settlement.rollbackTo(tx, 'bitcoin', tips.bitcoin! - 1, () => true);
      await ctx.deps.settlement.recompute(tx, touched);
    });
    tips.bitcoin! -= 1;
    expect((await state(inv.id)).status).toBe('settled');
    await mineBlock('bitcoin', [pay]); // re-mined at a new height
    const rows = await ctx.deps.sql`select status, block_height from payments where invoice_id = ${inv.id}`;
    expect(rows).toHaveLength(1);
    expect(rows[0]).toMatchObject({ status: 'confirmed', block_height: BigInt(tips.bitcoin!) });
    // Now a reorg that drops it for good.
    await ctx.deps.sql.begin(async (tx) => {
      const touched = await ctx.deps.settlement.rollbackTo(tx, 'bitcoin', tips.bitcoin! - 1, () => false);
      await ctx.deps.settlement.recompute(tx, touched);
    });
    tips.bitcoin! -= 1;
    expect(await state(inv.id)).toMatchObject({ status: 'invalid' });
  });

  it('a replaced (double-spent) mempool payment is un-counted', async () => {
    const inv = await createInvoice({});
    const p = btc(inv, 50_000n);
    await seeInMempool('bitcoin', [p]);
    expect((await state(inv.id)).status).toBe('processing');
    await ctx.deps.sql.begin(async (tx) => {
      const touched = await ctx.deps.settlement.markVanished(tx, 'bitcoin', [p.txid]);
      await ctx.deps.settlement.recompute(tx, touched);
    });
    expect(await state(inv.id)).toMatchObject({ status: 'invalid', amount_paid: '0.00' });
  });

  it('processing that never confirms before monitoring ends becomes invalid', async () => {
    const inv = await createInvoice({});
    await seeInMempool('bitcoin', [btc(inv, 50_000n)]);
    await ctx.deps.sql`update invoices set monitoring_until = now() - interval '1 second', expires_at = now() - interval '2 seconds' where id = ${inv.id}`;
    expect((await state(inv.id)).status).toBe('invalid');
  });
});

describe('ledger', () => {
  it('every ledger transaction sums to zero per asset, and the database refuses one that does not', async () => {
    const unbalanced = await ctx.deps.sql`select txn_id, asset, sum(amount) as s from ledger_entries group by txn_id, asset having sum(amount) <> 0`;
    expect(unbalanced).toEqual([]);
    await expect(ctx.deps.sql.begin(async (tx) => {
      await tx`insert into ledger_entries (txn_id, merchant_id, kind, account, asset, amount) values ('led_bad', ${shop.merchant.id}, 'test', 'a', 'BTC', 5)`;
    })).rejects.toThrow(/does not balance/);
    await expect(ctx.deps.sql`update ledger_entries set amount = 1`).rejects.toThrow(/append-only/);
  });

  it('confirmed money sits in available, unconfirmed in pending, reversed money leaves the merchant', async () => {
    const balances = await ctx.deps.sql<{ account: string; asset: string; balance: bigint }[]>`
      select account, asset, sum(amount) as balance from ledger_entries where merchant_id = ${shop.merchant.id} group by account, asset`;
    const get = (account: string, asset: string) => balances.find((b) => b.account === account && b.asset === asset)?.balance ?? 0n;
    const live = await ctx.deps.sql<{ method: string; status: string; ledger_state: string; amount: bigint }[]>`
      select method, status, ledger_state, amount from payments where merchant_id = ${shop.merchant.id}`;
    const sum = (state: string, method: string) => live.filter((p) => p.ledger_state === state && p.method === method).reduce((a, p) => a + p.amount, 0n);
    expect(get(`merchant:${shop.merchant.id}:available`, 'BTC')).toBe(sum('available', 'BTC'));
    expect(get(`merchant:${shop.merchant.id}:pending`, 'BTC')).toBe(sum('pending', 'BTC'));
    expect(sum('available', 'BTC')).toBeGreaterThan(0n);
    expect(live.filter((p) => p.status === 'reorged' || p.status === 'replaced').every((p) => p.ledger_state === 'reversed')).toBe(true);
  });
});
