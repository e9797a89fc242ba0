/**
 * The incremental watched set against the plain query it replaces (the oracle: every deposit
 * address of the chain whose invoice's monitoring window has not ended), on the real PostgreSQL,
 * including transactions that commit out of order around a refresh — the case a plain
 * "rows with a sequence number above the last one seen" rule gets wrong.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { createTestContext, type TestContext } from '../support/db.ts';
import { createWatchedSet, type WatchedSet } from '../../src/chains/watched-set.ts';
import { randomBase62 } from '../../src/ids.ts';

let ctx: TestContext;
let merchantId: string;

beforeAll(async () => {
  ctx = await createTestContext();
  merchantId = (await ctx.deps.merchants.create(ctx.deps.sql, { name: 'Watched set shop' })).id;
});
afterAll(async () => ctx?.close());

type Q = TestContext['deps']['sql'];

/** Inserts one invoice with one deposit address on `chain`, its window ending in `windowS` seconds. */
async function insertInvoice(q: Q | any, chain: string, windowS: number): Promise<string> {
  const id = `inv_${randomBase62(20)}`;
  const address = `addr_${randomBase62(16).toLowerCase()}`;
  await q`insert into invoices (id, merchant_id, amount, currency, currency_decimals, speed_policy, tolerance_bps, expires_at, monitoring_until)
          values (${id}, ${merchantId}, 100, 'USD', 2, 'medium', 0, now() + interval '15 minutes', now() + ${windowS} * interval '1 second')`;
  await q`insert into deposit_addresses (chain, address, invoice_id, merchant_id) values (${chain}, ${address}, ${id}, ${merchantId})`;
  return address;
}

async function oracle(chain: string): Promise<string[]> {
  const rows = await ctx.deps.sql<{ address: string }[]>`
    select d.address from deposit_addresses d join invoices i on i.id = d.invoice_id
    where d.chain = ${chain} and i.monitoring_until > now()`;
  return rows.map((r) => r.address).sort();
}

const contents = (w: WatchedSet) => [...w.rows()].map((r) => r.address).sort();

describe('incremental watched set', () => {
  it('loads everything first, then only what changed', async () => {
    const chain = `c_${randomBase62(6)}`;
    await insertInvoice(ctx.deps.sql, chain, 3600);
    await insertInvoice(ctx.deps.sql, `${chain}_other`, 3600);
    const w = createWatchedSet({ sql: ctx.deps.sql, chain });
    const first = await w.refresh();
    expect(first.full).toBe(true);
    expect(contents(w)).toEqual(await oracle(chain));
    const a = await insertInvoice(ctx.deps.sql, chain, 3600);
    const second = await w.refresh();
    expect(second.full).toBe(false);
    expect([...second.added].map((r) => r.address)).toEqual([a]);
    expect(contents(w)).toEqual(await oracle(chain));
    const third = await w.refresh();
    expect(third.added).toEqual([]);
    expect(w.stats).toMatchObject({ full: 1, incremental: 2 });
  });

  it('sees a row from a transaction that began before the last refresh and committed after it', async () => {
    const chain = `c_${randomBase62(6)}`;
    const w = createWatchedSet({ sql: ctx.deps.sql, chain });
    await w.refresh();
    const slow = await ctx.deps.sql.reserve();
    try {
      await slow`begin`;
      const late = await insertInvoice(slow, chain, 3600); // gets its xid now, commits later
      const early = await insertInvoice(ctx.deps.sql, chain, 3600); // commits first, with a higher xid
      await w.refresh();
      expect(contents(w)).toEqual([early]);
      await slow`commit`;
      const d = await w.refresh();
      expect([...d.added].map((r) => r.address)).toEqual([late]);
      expect(contents(w)).toEqual([early, late].sort());
    } finally {
      slow.release();
    }
  });

  it('a transaction left open elsewhere does not make every refresh read the same rows again', async () => {
    const chain = `c_${randomBase62(6)}`;
    const w = createWatchedSet({ sql: ctx.deps.sql, chain });
    await w.refresh();
    // An open transaction with an xid (a backup, an idle session) holds every snapshot's xmin back.
    const idle = await ctx.deps.sql.reserve();
    try {
      await idle`begin`;
      await idle`select pg_current_xact_id()`;
      const added = [];
      for (let i = 0; i < 5; i++) added.push(await insertInvoice(ctx.deps.sql, chain, 3600));
      const first = await w.refresh();
      expect([...first.added].map((r) => r.address).sort()).toEqual(added.sort());
      const read = w.stats.rowsRead;
      for (let i = 0; i < 3; i++) expect((await w.refresh()).added).toEqual([]);
      expect(w.stats.rowsRead - read).toBe(0); // the previous snapshot showed them: not read again
      const late = await insertInvoice(ctx.deps.sql, chain, 3600);
      expect([...(await w.refresh()).added].map((r) => r.address)).toEqual([late]);
      expect(contents(w)).toEqual(await oracle(chain));
    } finally {
      await idle`rollback`;
      idle.release();
    }
  });

  it('drops an address when its monitoring window ends, and when the window is shortened', async () => {
    const chain = `c_${randomBase62(6)}`;
    const short = await insertInvoice(ctx.deps.sql, chain, 1);
    const keep = await insertInvoice(ctx.deps.sql, chain, 3600);
    const w = createWatchedSet({ sql: ctx.deps.sql, chain });
    await w.refresh();
    expect(contents(w)).toEqual([short, keep].sort());
    await new Promise((r) => setTimeout(r, 1200));
    const d = await w.refresh();
    expect(d.removed.map((r) => r.address)).toEqual([short]);
    await ctx.deps.sql`update invoices set monitoring_until = now() - interval '1 second'
                       where id = (select invoice_id from deposit_addresses where chain = ${chain} and address = ${keep})`;
    const d2 = await w.refresh();
    expect(d2.removed.map((r) => r.address)).toEqual([keep]);
    expect(contents(w)).toEqual(await oracle(chain));
  });

  it('reloads when the periodic count finds a row it cannot explain', async () => {
    const chain = `c_${randomBase62(6)}`;
    await insertInvoice(ctx.deps.sql, chain, 3600);
    const w = createWatchedSet({ sql: ctx.deps.sql, chain, checkEveryMs: 0 });
    await w.refresh();
    // A row the delta cannot see: its change_xid is forced below the watcher's horizon.
    const hidden = await insertInvoice(ctx.deps.sql, chain, 3600);
    await ctx.deps.sql`update deposit_addresses set change_xid = '1'::xid8 where chain = ${chain} and address = ${hidden}`;
    const d = await w.refresh();
    expect(d.full).toBe(true);
    expect(w.stats.mismatches).toBe(1);
    expect(contents(w)).toEqual(await oracle(chain));
  });

  it('matches the oracle after random interleavings of commits, aborts and window changes', async () => {
    type Op =
      | { kind: 'insert'; window: number }
      | { kind: 'open' }
      | { kind: 'commitOpen'; abort: boolean }
      | { kind: 'shorten' }
      | { kind: 'refresh' };
    const op = fc.oneof(
      fc.record({ kind: fc.constant('insert' as const), window: fc.constantFrom(3600, 7200) }),
      fc.record({ kind: fc.constant('open' as const) }),
      fc.record({ kind: fc.constant('commitOpen' as const), abort: fc.boolean() }),
      fc.record({ kind: fc.constant('shorten' as const) }),
      fc.record({ kind: fc.constant('refresh' as const) }),
    );
    await fc.assert(
      fc.asyncProperty(fc.array(op, { minLength: 1, maxLength: 25 }), async (ops) => {
        const chain = `c_${randomBase62(8)}`;
        const w = createWatchedSet({ sql: ctx.deps.sql, chain, checkEveryMs: 1e9 });
        const open: { conn: Awaited<ReturnType<Q['reserve']>> }[] = [];
        try {
          for (const o of ops) {
            if (o.kind === 'insert') await insertInvoice(ctx.deps.sql, chain, o.window);
            else if (o.kind === 'open' && open.length < 3) {
              const conn = await ctx.deps.sql.reserve();
              await conn`begin`;
              await insertInvoice(conn, chain, 3600);
              open.push({ conn });
            } else if (o.kind === 'commitOpen' && open.length) {
              const { conn } = open.shift()!;
              await conn.unsafe(o.abort ? 'rollback' : 'commit');
              conn.release();
            } else if (o.kind === 'shorten') {
              await ctx.deps.sql`update invoices set monitoring_until = now() - interval '1 second'
                                 where id = (select invoice_id from deposit_addresses where chain = ${chain}
                                             order by address limit 1)`;
            } else if (o.kind === 'refresh') {
              await w.refresh();
              expect(contents(w)).toEqual(await oracle(chain));
            }
          }
          for (const { conn } of open.splice(0)) {
            await conn`commit`;
            conn.release();
          }
          await w.refresh();
          expect(contents(w)).toEqual(await oracle(chain));
          expect(w.stats.full).toBe(1); // never needed the safety net
        } finally {
          for (const { conn } of open) {
            await conn`rollback`;
            conn.release();
          }
        }
      }),
      { numRuns: 40 },
    );
  });
});
