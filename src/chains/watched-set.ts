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
 *
 * Memory (1,000,000 open invoices): the set is columnar, no JS object or string per address. A
 * `ByteTable` (./byte-table.ts) keyed by the address holds, per address, one record in shared slabs
 * (the address, the script, the invoice id: bytes) and a few typed-array cells; the monitoring
 * deadlines are a Float64Array beside it, ordered by a min-heap of Int32 entry numbers. Rows are
 * made as objects only when handed out (`get`, `rows()`, a delta), one at a time: the full load
 * reads the database through a cursor and its delta is an iterable over the set, not an array of
 * every row.
 */
import type { Sql } from '../db/client.ts';
import type { Logger } from '../logger.ts';
import { ByteTable } from './byte-table.ts';

export interface WatchedAddressRow {
  /** Canonical deposit address (bech32 lowercase, or lowercase hex on EVM). */
  address: string;
  /** The output script on Bitcoin when stored (a read-only view of the set's storage, whose bytes never change); null elsewhere. */
  script: Uint8Array | null;
  invoiceId: string;
}

export interface WatchedSetDelta {
  /** True when the whole set was (re)loaded: consumers rebuild from `added` (every row) instead of applying a change. */
  full: boolean;
  /**
   * The rows added; after a full load, every row of the set, made one at a time as the iterable is
   * walked (it can be walked again; it reads the set, so walk it before the next refresh).
   */
  added: Iterable<WatchedAddressRow>;
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
  /** Every address currently watched (rows made as iterated; don't refresh meanwhile). */
  rows(): IterableIterator<WatchedAddressRow>;
  get(address: string): WatchedAddressRow | undefined;
  readonly size: number;
  /** Bytes held by the set's typed arrays and slabs. */
  readonly byteLength: number;
  /** Forces the next refresh to reload everything (after a reorg or an error, for example). */
  invalidate(): void;
  /** How many full reloads and incremental refreshes ran, and the rows incremental refreshes read (for metrics and tests). */
  readonly stats: { full: number; incremental: number; checks: number; mismatches: number; rowsRead: number };
}

interface RawRow {
  address: string;
  script: Buffer | null;
  invoice_id: string;
  /** monitoring_until in ms since the epoch, with its microseconds (float8): compares as the database does. */
  until: number;
}

/** Rows per round trip of the full load's cursor. */
const LOAD_BATCH = 5_000;
/** Script length written for a row without a script. */
const NO_SCRIPT = 0xffff;

/** xid8 values and snapshot bounds fit in 64 bits: compare them as bigint. */
function parseSnapshot(s: string): { xmin: bigint; xmax: bigint; text: string } {
  const [xmin, xmax] = s.split(':');
  return { xmin: BigInt(xmin!), xmax: BigInt(xmax!), text: s };
}

/**
 * The set's storage. Entry e (0..size-1; removing one moves the last entry into its place) has a
 * record in `keys` — key: the address (UTF-8); value: the script's length (u16 LE, 0xffff = none),
 * the script, the invoice id (UTF-8) — and a deadline `until[e]`. `heap` is a binary min-heap of
 * entry numbers by deadline; `place[e]` is entry e's position in it.
 */
export class AddressTable {
  private readonly keys: ByteTable;
  private until: Float64Array;
  private heap: Int32Array;
  private place: Int32Array;
  /** A string encoded for a lookup (no allocation per lookup). */
  private scratch = Buffer.alloc(256);

  constructor(expected = 0) {
    this.keys = new ByteTable(expected, 96);
    const n = this.keys.capacity;
    this.until = new Float64Array(n);
    this.heap = new Int32Array(n);
    this.place = new Int32Array(n);
  }

  get size(): number {
    return this.keys.size;
  }

  get byteLength(): number {
    return this.keys.byteLength + this.until.byteLength + this.heap.byteLength + this.place.byteLength;
  }

  /** The entry watching `address`, or -1. Leaves the address encoded in `scratch`. */
  find(address: string): number {
    return this.keys.find(this.scratch, 0, this.encode(address));
  }

  untilOf(e: number): number {
    return this.until[e]!;
  }

  /** True if entry e's invoice id is `invoiceId` (compared as bytes). */
  invoiceIs(e: number, invoiceId: string): boolean {
    const { slab, invoiceStart, end } = this.layout(e);
    const n = this.encode(invoiceId);
    if (n !== end - invoiceStart) return false;
    for (let i = 0; i < n; i++) if (slab[invoiceStart + i] !== this.scratch[i]) return false;
    return true;
  }

  /**
   * Adds a row whose address is not in the table. `bulk`: during a full load, the deadlines are
   * ordered once at the end (`finishLoad`).
   */
  add(address: string, script: Uint8Array | null, invoiceId: string, until: number, bulk = false): number {
    const n = this.encode(address);
    const scriptLen = script ? script.length : 0;
    const invoiceLen = Buffer.byteLength(invoiceId);
    const e = this.keys.add(this.scratch, 0, n, 2 + scriptLen + invoiceLen);
    if (e < 0) return -1;
    if (this.until.length < this.keys.capacity) this.resizeColumns(this.keys.capacity);
    const slab = this.keys.slab(e);
    let p = this.keys.valueStart(e);
    slab.writeUInt16LE(script ? scriptLen : NO_SCRIPT, p);
    p += 2;
    if (script) slab.set(script, p);
    slab.write(invoiceId, p + scriptLen, invoiceLen, 'utf8');
    this.until[e] = until;
    this.heap[e] = e;
    this.place[e] = e;
    if (!bulk) this.siftUp(e);
    return e;
  }

  /** After the `bulk` adds of a full load: orders the deadlines and gives back the arrays' growth slack. */
  finishLoad(): void {
    for (let i = (this.size >> 1) - 1; i >= 0; i--) this.siftDown(i);
    this.keys.trim();
    if (this.until.length > this.keys.capacity) this.resizeColumns(this.keys.capacity);
  }

  setUntil(e: number, until: number): void {
    const old = this.until[e]!;
    this.until[e] = until;
    if (until < old) this.siftUp(this.place[e]!);
    else this.siftDown(this.place[e]!);
  }

  removeAt(e: number): void {
    // Out of the heap: the heap's last element takes e's place.
    const i = this.place[e]!;
    const last = this.size - 1;
    if (i !== last) {
      const x = this.heap[last]!;
      this.heap[i] = x;
      this.place[x] = i;
      this.siftDown(i);
      this.siftUp(this.place[x]!);
    }
    // Out of the table: its last entry takes number e.
    const moved = this.keys.removeAt(e);
    if (moved >= 0) {
      this.until[e] = this.until[moved]!;
      this.place[e] = this.place[moved]!;
      this.heap[this.place[e]!] = e;
    }
  }

  /** The entry with the earliest deadline, or -1. */
  earliest(): number {
    return this.size > 0 ? this.heap[0]! : -1;
  }

  row(e: number): WatchedAddressRow {
    const { slab, keyStart, scriptStart, scriptLen, invoiceStart, end } = this.layout(e);
    return {
      address: slab.toString('utf8', keyStart, scriptStart - 2),
      script: scriptLen === NO_SCRIPT ? null : new Uint8Array(slab.buffer, slab.byteOffset + scriptStart, scriptLen),
      invoiceId: slab.toString('utf8', invoiceStart, end),
    };
  }

  *rows(): IterableIterator<WatchedAddressRow> {
    for (let e = 0; e < this.size; e++) yield this.row(e);
  }

  // -------------------------------------------------------------------------------------------

  private layout(e: number) {
    const slab = this.keys.slab(e);
    const keyStart = this.keys.keyStart(e);
    const valueStart = this.keys.valueStart(e);
    const scriptLen = slab.readUInt16LE(valueStart);
    const scriptStart = valueStart + 2;
    const invoiceStart = scriptStart + (scriptLen === NO_SCRIPT ? 0 : scriptLen);
    return { slab, keyStart, scriptStart, scriptLen, invoiceStart, end: valueStart + this.keys.valueLength(e) };
  }

  /** Writes `s` as UTF-8 into `scratch`; returns its length in bytes. */
  private encode(s: string): number {
    if (s.length * 3 > this.scratch.length) this.scratch = Buffer.alloc(s.length * 3);
    return this.scratch.write(s, 0, 'utf8');
  }

  private resizeColumns(n: number): void {
    const size = this.size;
    const until = new Float64Array(n);
    until.set(this.until.subarray(0, size));
    const heap = new Int32Array(n);
    heap.set(this.heap.subarray(0, size));
    const place = new Int32Array(n);
    place.set(this.place.subarray(0, size));
    this.until = until;
    this.heap = heap;
    this.place = place;
  }

  private siftUp(i: number): void {
    const { heap, place, until } = this;
    const x = heap[i]!;
    const key = until[x]!;
    while (i > 0) {
      const p = (i - 1) >> 1;
      const y = heap[p]!;
      if (until[y]! <= key) break;
      heap[i] = y;
      place[y] = i;
      i = p;
    }
    heap[i] = x;
    place[x] = i;
  }

  private siftDown(i: number): void {
    const { heap, place, until } = this;
    const n = this.size;
    const x = heap[i]!;
    const key = until[x]!;
    for (;;) {
      const l = 2 * i + 1;
      if (l >= n) break;
      const r = l + 1;
      const c = r < n && until[heap[r]!]! < until[heap[l]!]! ? r : l;
      const y = heap[c]!;
      if (until[y]! >= key) break;
      heap[i] = y;
      place[y] = i;
      i = c;
    }
    heap[i] = x;
    place[x] = i;
  }
}

export function createWatchedSet(opts: WatchedSetOptions): WatchedSet {
  const { sql, chain } = opts;
  const checkEveryMs = opts.checkEveryMs ?? 5 * 60_000;
  let table = new AddressTable();
  let snapshot: { xmin: bigint; xmax: bigint; text: string } | null = null;
  let lastCheck = 0;
  const stats = { full: 0, incremental: 0, checks: 0, mismatches: 0, rowsRead: 0 };

  async function read(since: { xmin: bigint; text: string }, count: boolean): Promise<{ rows: RawRow[]; snap: string; nowMs: number; count: number | null }> {
    // One statement, one round trip (a transaction took four, each a chance to wait behind other
    // work): a statement reads one snapshot, the one pg_current_snapshot() reports, with one now(),
    // so the delta, the snapshot remembered for the next refresh and the count agree. The first
    // row carries the snapshot even when the delta is empty.
    const counted = count
      ? sql`(select count(*) from deposit_addresses d join invoices i on i.id = d.invoice_id
             where d.chain = ${chain} and i.monitoring_until > now())::text`
      : sql`null::text`;
    const out = await sql<(Partial<RawRow> & { snap: string; now_ms: number; n: string | null })[]>`
      select m.snap, m.now_ms, m.n, d.address, d.script, d.invoice_id, d.until
      from (select pg_current_snapshot()::text as snap, (extract(epoch from now()) * 1000)::float8 as now_ms, ${counted} as n) m
      left join lateral (
        select d.address, d.script, d.invoice_id, (extract(epoch from i.monitoring_until) * 1000)::float8 as until
        from deposit_addresses d join invoices i on i.id = d.invoice_id
        where d.chain = ${chain} and d.change_xid >= ${since.xmin.toString()}::xid8
          and not pg_visible_in_snapshot(d.change_xid, ${since.text}::pg_snapshot)
      ) d on true`;
    const first = out[0]!;
    const rows = out.filter((r): r is typeof r & RawRow => r.address != null);
    return { rows, snap: first.snap, nowMs: first.now_ms, count: first.n === null ? null : Number(first.n) };
  }

  async function fullLoad(): Promise<WatchedSetDelta> {
    // The previous contents go first (not kept beside the new ones at 1,000,000 addresses). If the
    // load fails the set stays empty and unsynchronised: the next refresh loads again.
    snapshot = null;
    table = new AddressTable();
    const t = table;
    const snap = await sql.begin('isolation level repeatable read read only', async (tx) => {
      const [meta] = await tx<{ snap: string }[]>`select pg_current_snapshot()::text as snap`;
      // A cursor: LOAD_BATCH rows in memory at a time, not every open address at once.
      await tx<RawRow[]>`
        select d.address, d.script, d.invoice_id, (extract(epoch from i.monitoring_until) * 1000)::float8 as until
        from deposit_addresses d join invoices i on i.id = d.invoice_id
        where d.chain = ${chain} and i.monitoring_until > now()`.cursor(LOAD_BATCH, (rows) => {
        for (const r of rows) t.add(r.address, r.script, r.invoice_id, r.until, true);
      });
      return meta!.snap;
    });
    t.finishLoad();
    snapshot = parseSnapshot(snap);
    lastCheck = Date.now();
    stats.full++;
    return { full: true, added: { [Symbol.iterator]: () => t.rows() }, removed: [] };
  }

  return {
    get size() {
      return table.size;
    },
    get byteLength() {
      return table.byteLength;
    },
    stats,
    rows: () => table.rows(),
    get(address) {
      const e = table.find(address);
      return e < 0 ? undefined : table.row(e);
    },
    invalidate() {
      snapshot = null;
    },
    async refresh() {
      if (!snapshot) return fullLoad();
      const prev = snapshot;
      const check = Date.now() - lastCheck >= checkEveryMs;
      const { rows, snap, nowMs, count } = await read(prev, check);
      const next = parseSnapshot(snap);
      if (next.xmax < prev.xmax) {
        opts.logger?.warn({ chain, previous: prev.xmax.toString(), now: next.xmax.toString() }, 'database transaction ids went backwards (restore or fail-over?): reloading the watched set');
        return fullLoad();
      }
      snapshot = next;
      stats.incremental++;
      const added: WatchedAddressRow[] = [];
      const removed: WatchedAddressRow[] = [];
      stats.rowsRead += rows.length;
      for (const r of rows) {
        const e = table.find(r.address);
        if (r.until <= nowMs) {
          if (e >= 0) {
            removed.push(table.row(e));
            table.removeAt(e);
          }
          continue;
        }
        if (e < 0) {
          added.push(table.row(table.add(r.address, r.script, r.invoice_id, r.until)));
        } else if (!table.invoiceIs(e, r.invoice_id)) {
          // The address now belongs to another invoice: the row is replaced (the script is the same).
          table.removeAt(e);
          table.add(r.address, r.script, r.invoice_id, r.until);
        } else if (table.untilOf(e) !== r.until) {
          table.setUntil(e, r.until);
        } // else seen already
      }
      for (let e = table.earliest(); e >= 0 && table.untilOf(e) <= nowMs; e = table.earliest()) {
        removed.push(table.row(e));
        table.removeAt(e);
      }
      if (count !== null) {
        lastCheck = Date.now();
        stats.checks++;
        if (count !== table.size) {
          stats.mismatches++;
          opts.logger?.warn({ chain, in_memory: table.size, in_database: count }, 'watched set differs from the database: reloading it');
          return fullLoad();
        }
      }
      return { full: false, added, removed };
    },
  };
}
