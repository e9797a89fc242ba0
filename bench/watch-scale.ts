/**
 * The watched set at scale (docs/architecture.md §5, "Watched set"): N open invoices seeded by bulk
 * insert, then the cost of keeping a watcher's set of deposit addresses current while new invoices
 * arrive at BENCH_NEW_PER_S (default 10) per second.
 *
 *   npm run bench:watch-scale                      N = 10,000 and 100,000
 *   BENCH_OPEN=10000,100000,1000000 npm run bench:watch-scale
 *
 * For each N it prints two lines, measured in the same run on the same data:
 *   open=<N> mode=full_reload  pass_p50_ms pass_p99_ms heap_mb   (what every 1-second pass did before)
 *   open=<N> mode=incremental  pass_p50_ms pass_p99_ms new_invoice_visible_ms heap_mb initial_load_ms
 * pass = bringing the set up to date and applying the change to the Bitcoin script set
 * (WatchedScripts) the block scanner matches against. Chain RPC is not part of this figure.
 */
import postgres from 'postgres';
import { createSql } from '../src/db/client.ts';
import { migrate } from '../src/db/migrate.ts';
import { createWatchedSet } from '../src/chains/watched-set.ts';
import { WatchedScripts } from '../src/chains/bitcoin/watched.ts';
import { randomBase62 } from '../src/ids.ts';

const PG = process.env.BENCH_PG ?? 'postgres://postgres@127.0.0.1:5432';
const SIZES = (process.env.BENCH_OPEN ?? '10000,100000').split(',').map(Number);
const PASSES = Number(process.env.BENCH_PASSES ?? 30);
const NEW_PER_S = Number(process.env.BENCH_NEW_PER_S ?? 10);
const CHAIN = 'bitcoin';

const pct = (xs: number[], p: number) => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))]!;
};
const heapMb = () => {
  globalThis.gc?.();
  return Math.round(process.memoryUsage().heapUsed / 1e6);
};
const ms = (t0: bigint) => Number(process.hrtime.bigint() - t0) / 1e6;

const dbName = `kassa_bench_${randomBase62(8).toLowerCase()}`;
const admin = postgres(`${PG}/postgres`, { max: 1, onnotice: () => {} });
await admin.unsafe(`create database ${dbName}`);
const sql = createSql(`${PG}/${dbName}`, { max: 4 });
try {
  await migrate(sql);
  const [m] = await sql<{ id: string }[]>`insert into merchants (id, name) values ('mer_bench', 'Bench') returning id`;
  let seeded = 0;
  let seq = 0;

  /** Bulk-inserts `n` open invoices, each with one P2WPKH-like deposit script on the chain. */
  async function seed(n: number): Promise<void> {
    const from = seq;
    seq += n;
    await sql`
      insert into invoices (id, merchant_id, amount, currency, currency_decimals, speed_policy, tolerance_bps, expires_at, monitoring_until)
      select 'inv_b' || g, ${m!.id}, 100, 'USD', 2, 'medium', 0, now() + interval '15 minutes', now() + interval '1 day'
      from generate_series(${from}::bigint, ${seq - 1}::bigint) g`;
    await sql`
      insert into deposit_addresses (chain, address, invoice_id, merchant_id, script)
      select ${CHAIN}, 'bcrt1qbench' || g, 'inv_b' || g, ${m!.id},
             '\\x0014'::bytea || substring(sha256(g::text::bytea) from 1 for 20)
      from generate_series(${from}::bigint, ${seq - 1}::bigint) g`;
  }

  for (const n of SIZES) {
    const t0 = process.hrtime.bigint();
    await seed(n - seeded);
    seeded = n;
    await sql`analyze invoices`;
    await sql`analyze deposit_addresses`;
    console.error(`seeded ${n} open invoices in ${Math.round(ms(t0))} ms`);

    // Before: every pass reloads all open addresses and rebuilds the script set.
    const full: number[] = [];
    const fullPasses = Math.max(3, Math.min(PASSES, Math.ceil(2_000_000 / n)));
    let fullHeap = 0;
    for (let i = 0; i < fullPasses; i++) {
      const t = process.hrtime.bigint();
      const rows = await sql<{ address: string; script: Buffer | null; invoice_id: string }[]>`
        select d.address, d.script, d.invoice_id from deposit_addresses d join invoices i on i.id = d.invoice_id
        where d.chain = ${CHAIN} and i.monitoring_until > now()`;
      const scripts = new WatchedScripts(rows.length);
      for (const r of rows) scripts.add(new Uint8Array(r.script!));
      full.push(ms(t));
      if (i === 0) fullHeap = heapMb();
    }
    console.log(`open=${n} chain=${CHAIN} mode=full_reload pass_p50_ms=${pct(full, 50).toFixed(1)} pass_p99_ms=${pct(full, 99).toFixed(1)} heap_mb=${fullHeap}`);

    // After: one load, then deltas while NEW_PER_S invoices arrive per second.
    const w = createWatchedSet({ sql, chain: CHAIN });
    const scripts = new WatchedScripts(n);
    let t = process.hrtime.bigint();
    await w.refresh();
    for (const r of w.rows()) scripts.add(r.script!);
    const initial = ms(t);
    const passes: number[] = [];
    const visible: number[] = [];
    for (let i = 0; i < PASSES; i++) {
      // One second's worth of new invoices, committed just before the pass.
      const inserted = process.hrtime.bigint();
      await seed(NEW_PER_S);
      seeded += NEW_PER_S;
      t = process.hrtime.bigint();
      const d = await w.refresh();
      if (d.full) {
        scripts.clear();
        for (const r of w.rows()) scripts.add(r.script!);
      } else {
        for (const r of d.added) scripts.add(r.script!);
        for (const r of d.removed) scripts.remove(r.script!);
      }
      passes.push(ms(t));
      visible.push(ms(inserted));
      if (d.added.length !== NEW_PER_S) throw new Error(`pass ${i} saw ${d.added.length} new addresses, expected ${NEW_PER_S}`);
    }
    if (w.size !== seeded) throw new Error(`watched set holds ${w.size} addresses, the database ${seeded}`);
    console.log(
      `open=${n} chain=${CHAIN} mode=incremental pass_p50_ms=${pct(passes, 50).toFixed(2)} pass_p99_ms=${pct(passes, 99).toFixed(2)} ` +
        `new_invoice_visible_ms=${pct(visible, 99).toFixed(1)} heap_mb=${heapMb()} initial_load_ms=${Math.round(initial)} ` +
        `speedup_p50=${(pct(full, 50) / pct(passes, 50)).toFixed(0)}x`,
    );
  }
} finally {
  await sql.end();
  await admin.unsafe(`drop database if exists ${dbName} with (force)`);
  await admin.end();
}
