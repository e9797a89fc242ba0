/**
 * The incremental watched set of one chain: the deposit addresses whose invoices are still inside
 * their monitoring window (docs/architecture.md §5, "Watched set").
 *
 * The first `refresh()` loads every open address under a REPEATABLE READ snapshot S and remembers S.
 * Later refreshes read only the rows whose `change_xid` (the transaction that created the row or last
 * changed its invoice's monitoring window) is >= xmin(S): a row changed by a transaction below xmin(S)
 * had committed or aborted before S was taken, so S already showed it. Of those, rows whose
 * `change_xid` S already showed (`pg_visible_in_snapshot`) are skipped too: S's refresh read them.
 * So a transaction left open somewhere in the cluster (which holds xmin back) does not make every
 * refresh read again all rows written since it began. Applying a row again is idempotent anyway.
 * Addresses leave the set when their monitoring window ends, by the database's clock (`now()` of
 * the refresh's snapshot).
 *
 * Safety nets: a snapshot whose xmax is below the previous one (a restored or failed-over database)
 * and a periodic count comparison each force a full reload, logged. Watching an address a little
 * longer than needed is harmless (settlement decides what a payment means); missing one is not, so
 * every doubt resolves to a full reload.
 */
import type { Sql } from '../db/client.ts';
import type { Logger } from '../logger.ts';

export interface WatchedAddressRow {
  /** Canonical deposit address (bech32 lowercase, or lowercase hex on EVM). */
  address: string;
  /** The output script on Bitcoin when stored; null elsewhere. */
  script: Uint8Array | null;
  invoiceId: string;
}

export interface WatchedSetDelta {
  /** True when the whole set was (re)loaded: consumers rebuild from `rows()` instead of applying the delta. */
  full: boolean;
  added: WatchedAddressRow[];
  removed: WatchedAddressRow[];
}

export interface WatchedSetOptions {
  sql: Sql;
  chain: string;
  logger?: Logger;
  /** Compare the in-memory size with the database's count every this many ms (default 5 minutes). */
  checkEveryMs?: number;
}

export interface WatchedSet {
  /** Brings the set up to date with the database; returns what changed. */
  refresh(): Promise<WatchedSetDelta>;
  /** Every address currently watched. */
  rows(): IterableIterator<WatchedAddressRow>;
  get(address: string): WatchedAddressRow | undefined;
  readonly size: number;
  /** Forces the next refresh to reload everything (after a reorg or an error, for example). */
  invalidate(): void;
  /** How many full reloads and incremental refreshes ran, and the rows incremental refreshes read (for metrics and tests). */
  readonly stats: { full: number; incremental: number; checks: number; mismatches: number; rowsRead: number };
}

interface Entry extends WatchedAddressRow {
  until: number;
}

interface RawRow {
  address: string;
  script: Buffer | null;
  invoice_id: string;
  monitoring_until: Date;
}

/** xid8 values and snapshot bounds fit in 64 bits: compare them as bigint. */
function parseSnapshot(s: string): { xmin: bigint; xmax: bigint; text: string } {
  const [xmin, xmax] = s.split(':');
  return { xmin: BigInt(xmin!), xmax: BigInt(xmax!), text: s };
}

export function createWatchedSet(opts: WatchedSetOptions): WatchedSet {
  const { sql, chain } = opts;
  const checkEveryMs = opts.checkEveryMs ?? 5 * 60_000;
  const entries = new Map<string, Entry>();
  /** Monitoring deadlines (a min-heap): addresses leave the set when theirs has passed. */
  const deadlines = new DeadlineHeap();
  let snapshot: { xmin: bigint; xmax: bigint; text: string } | null = null;
  let lastCheck = 0;
  const stats = { full: 0, incremental: 0, checks: 0, mismatches: 0, rowsRead: 0 };

  /**
   * Scripts are copied into shared 64 KiB slabs, one ArrayBuffer per ~3,000 scripts rather than one
   * each (which costs ~170 bytes per address in buffer bookkeeping). A slab is freed once no entry
   * points into it; addresses leave roughly in the order they came, so slabs empty as a whole.
   */
  let slab = new Uint8Array(0);
  let slabUsed = 0;
  const copyScript = (b: Uint8Array): Uint8Array => {
    if (slabUsed + b.length > slab.length) {
      slab = new Uint8Array(Math.max(64 * 1024, b.length));
      slabUsed = 0;
    }
    const view = slab.subarray(slabUsed, slabUsed + b.length);
    view.set(b);
    slabUsed += b.length;
    return view;
  };
  const toRow = (r: RawRow): Entry => ({
    address: r.address,
    script: r.script ? copyScript(r.script) : null,
    invoiceId: r.invoice_id,
    until: r.monitoring_until.getTime(),
  });

  async function read(since: { xmin: bigint; text: string } | null, count = false): Promise<{ rows: RawRow[]; snap: string; now: Date; count: number | null }> {
    // The result leaves the transaction in a box emptied right after: postgres.js keeps a
    // transaction's result reachable from its connection until that connection runs another
    // transaction, and a full load is every open address (~0.4 GB of rows at 1,000,000).
    const box = (await sql.begin('isolation level repeatable read read only', async (tx) => {
      const [meta] = await tx<{ snap: string; now: Date }[]>`select pg_current_snapshot()::text as snap, now() as now`;
      const rows =
        since === null
          ? await tx<RawRow[]>`
              select d.address, d.script, d.invoice_id, i.monitoring_until
              from deposit_addresses d join invoices i on i.id = d.invoice_id
              where d.chain = ${chain} and i.monitoring_until > now()`
          : await tx<RawRow[]>`
              select d.address, d.script, d.invoice_id, i.monitoring_until
              from deposit_addresses d join invoices i on i.id = d.invoice_id
              where d.chain = ${chain} and d.change_xid >= ${since.xmin.toString()}::xid8
                and not pg_visible_in_snapshot(d.change_xid, ${since.text}::pg_snapshot)`;
      let n: number | null = null;
      if (count) {
        // Same snapshot, same now(): after the delta is applied the set must hold exactly this many.
        const [c] = await tx<{ n: string }[]>`
          select count(*)::text as n from deposit_addresses d join invoices i on i.id = d.invoice_id
          where d.chain = ${chain} and i.monitoring_until > now()`;
        n = Number(c!.n);
      }
      return { value: { rows, snap: meta!.snap, now: meta!.now, count: n } as { rows: RawRow[]; snap: string; now: Date; count: number | null } | null };
    })) as { value: { rows: RawRow[]; snap: string; now: Date; count: number | null } | null };
    const out = box.value!;
    box.value = null;
    return out;
  }

  function dropExpired(nowMs: number, removed: WatchedAddressRow[]): void {
    for (let e = deadlines.peek(); e && e.until <= nowMs; e = deadlines.peek()) {
      deadlines.pop();
      // The heap may hold superseded entries (a changed deadline): only the current one removes.
      if (entries.get(e.address) === e) {
        entries.delete(e.address);
        removed.push(e);
      }
    }
  }

  async function fullLoad(): Promise<WatchedSetDelta> {
    const { rows, snap } = await read(null);
    entries.clear();
    const all: Entry[] = new Array(rows.length);
    for (let i = 0; i < rows.length; i++) {
      const e = toRow(rows[i]!);
      entries.set(e.address, e);
      all[i] = e;
    }
    deadlines.reset(all);
    snapshot = parseSnapshot(snap);
    lastCheck = Date.now();
    stats.full++;
    return { full: true, added: [...entries.values()], removed: [] };
  }

  return {
    get size() {
      return entries.size;
    },
    stats,
    rows: () => entries.values(),
    get: (address) => entries.get(address),
    invalidate() {
      snapshot = null;
    },
    async refresh() {
      if (!snapshot) return fullLoad();
      const prev = snapshot;
      const check = Date.now() - lastCheck >= checkEveryMs;
      const { rows, snap, now, count } = await read(prev, check);
      const next = parseSnapshot(snap);
      if (next.xmax < prev.xmax) {
        opts.logger?.warn({ chain, previous: prev.xmax.toString(), now: next.xmax.toString() }, 'database transaction ids went backwards (restore or fail-over?): reloading the watched set');
        return fullLoad();
      }
      snapshot = next;
      stats.incremental++;
      const nowMs = now.getTime();
      const added: WatchedAddressRow[] = [];
      const removed: WatchedAddressRow[] = [];
      stats.rowsRead += rows.length;
      for (const r of rows) {
        const old = entries.get(r.address);
        const until = r.monitoring_until.getTime();
        if (until <= nowMs) {
          if (old) {
            entries.delete(r.address);
            removed.push(old);
          }
          continue;
        }
        if (old && old.until === until && old.invoiceId === r.invoice_id) continue; // seen already
        const e = toRow(r);
        entries.set(e.address, e);
        deadlines.push(e);
        if (!old) added.push(e);
      }
      dropExpired(nowMs, removed);
      if (count !== null) {
        lastCheck = Date.now();
        stats.checks++;
        if (count !== entries.size) {
          stats.mismatches++;
          opts.logger?.warn({ chain, in_memory: entries.size, in_database: count }, 'watched set differs from the database: reloading it');
          return fullLoad();
        }
      }
      return { full: false, added, removed };
    },
  };
}

/** A binary min-heap of entries by monitoring deadline. */
class DeadlineHeap {
  private a: Entry[] = [];
  reset(items: Entry[]): void {
    this.a = items.sort((x, y) => x.until - y.until); // a sorted array is a valid heap
  }
  peek(): Entry | undefined {
    return this.a[0];
  }
  push(e: Entry): void {
    const a = this.a;
    let i = a.push(e) - 1;
    while (i > 0) {
      const p = (i - 1) >> 1;
      if (a[p]!.until <= e.until) break;
      a[i] = a[p]!;
      i = p;
    }
    a[i] = e;
  }
  pop(): Entry | undefined {
    const a = this.a;
    const top = a[0];
    const last = a.pop();
    if (a.length && last) {
      let i = 0;
      for (;;) {
        const l = 2 * i + 1;
        if (l >= a.length) break;
        const r = l + 1;
        const c = r < a.length && a[r]!.until < a[l]!.until ? r : l;
        if (a[c]!.until >= last.until) break;
        a[i] = a[c]!;
        i = c;
      }
      a[i] = last;
    }
    return top;
  }
}
