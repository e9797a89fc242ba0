/**
 * The Bitcoin adapter's memory of the node's mempool (docs/architecture.md §5, "Mempool at mainnet
 * size"), built for a listing of 50,000–300,000 txids read every pass.
 *
 * - `TxidList`: a `getrawmempool` listing as the bytes of the node's JSON reply and the offset of
 *   each txid's 64 hex characters in them (`scanTxidArray`): no JavaScript string per txid.
 * - `MempoolTxids`: every txid of the listings seen, as 32 bytes in one open-addressing hash table
 *   (typed arrays, no object per txid), each with the number of the last listing that held it and
 *   whether it was scanned. A listing is read beside the previous one (`readListing`): an entry
 *   byte-equal to the previous listing's entry at the walk's position is known without a hex
 *   decode or a probe; only the others are decoded and looked up. Membership in the latest listing
 *   is answered from the same table, so no set of the listing is built.
 */

/** `count` txids, each 64 hex characters at `bytes[starts[i]]`. */
export interface TxidList {
  bytes: Uint8Array;
  starts: Uint32Array;
  count: number;
}

const QUOTE = 0x22;
const COMMA = 0x2c;
const OPEN = 0x5b;
const CLOSE = 0x5d;
const isWs = (b: number | undefined) => b === 0x20 || b === 0x0a || b === 0x0d || b === 0x09;

/**
 * Reads the JSON array of txid strings starting at `bytes[pos]` (`[` after optional whitespace):
 * the offsets of the strings, and the position after the closing `]`. Returns null when the array
 * is not exactly that (an element that is not a 64-character string without escapes): the caller
 * then parses the JSON in full. The characters are checked to be hex when decoded
 * (`MempoolTxids.see`).
 */
export function scanTxidArray(bytes: Uint8Array, pos: number): { list: TxidList; end: number } | null {
  const n = bytes.length;
  let p = pos;
  while (isWs(bytes[p])) p++;
  if (bytes[p] !== OPEN) return null;
  p++;
  // Every element takes at least 67 bytes ("…64…" and a separator): an upper bound, no growing.
  let starts = new Uint32Array(Math.max(1, Math.floor((n - p) / 66)));
  let count = 0;
  while (isWs(bytes[p])) p++;
  if (bytes[p] === CLOSE) return { list: { bytes, starts: starts.subarray(0, 0), count: 0 }, end: p + 1 };
  for (;;) {
    if (bytes[p] !== QUOTE || bytes[p + 65] !== QUOTE || p + 66 > n) return null;
    if (count === starts.length) {
      const grown = new Uint32Array(starts.length * 2);
      grown.set(starts);
      starts = grown;
    }
    starts[count++] = p + 1;
    p += 66;
    let b = bytes[p];
    if (b === COMMA) {
      p++;
      continue; // the common case: no whitespace (Bitcoin Core writes none)
    }
    while (isWs(b)) b = bytes[++p];
    if (b === CLOSE) return { list: { bytes, starts: starts.subarray(0, count), count }, end: p + 1 };
    if (b !== COMMA) return null;
    p++;
    while (isWs(bytes[p])) p++;
  }
}

/** A listing given as strings (a client without the byte path, tests): the same `TxidList`. */
export function txidListFromStrings(txids: readonly string[]): TxidList | null {
  for (const t of txids) if (typeof t !== 'string' || t.length !== 64) return null;
  const bytes = Buffer.from(txids.join(''), 'latin1');
  const starts = new Uint32Array(txids.length);
  for (let i = 0; i < starts.length; i++) starts[i] = i * 64;
  return { bytes, starts, count: txids.length };
}

/** Hex digit value by character code, -1 for anything else. */
const NIBBLE = new Int8Array(256).fill(-1);
for (let i = 0; i < 10; i++) NIBBLE[0x30 + i] = i;
for (let i = 0; i < 6; i++) {
  NIBBLE[0x61 + i] = 10 + i;
  NIBBLE[0x41 + i] = 10 + i;
}
const HEX: string[] = Array.from({ length: 16 }, (_, i) => i.toString(16));

/** Slot states in `meta[2 * slot]`: EMPTY; DELETED a removed entry (probing continues past it); else the listing number (≥ 1). */
const EMPTY = 0;
const DELETED = -1;
const LAST_LISTING = 0x7ffffffe;
const SCANNED = 1;

/** Result of `see`. */
export const SEEN_BAD_HEX = -1;
export const SEEN_NEW = 0;
export const SEEN_KNOWN = 1;

/** Do the 64 bytes at `a[ao]` and `b[bo]` match? (16 reads of 4 bytes on each side.) */
function same64(a: DataView<ArrayBufferLike>, ao: number, b: DataView<ArrayBufferLike>, bo: number): boolean {
  for (let k = 0; k < 64; k += 4) if (a.getInt32(ao + k, true) !== b.getInt32(bo + k, true)) return false;
  return true;
}

const viewOf = (bytes: Uint8Array) => new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
const bufferOf = (bytes: Uint8Array) => Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
/** Most entries compared in one native comparison (a run grows to it while entries match). */
const MAX_RUN = 4096;

/**
 * The previous listing, kept to read the next one against it: its bytes, the offset of each txid
 * and the table slot each txid had (kept exact through rehashes; -1 once dropped).
 */
interface PreviousListing {
  number: number;
  view: DataView<ArrayBufferLike>;
  buf: Buffer;
  starts: Uint32Array;
  count: number;
  slots: Int32Array;
}

/**
 * The txids of the mempool listings read so far. Open addressing with linear probing over
 * power-of-two capacity, kept at most 70 % full (deleted slots included). Per slot: the txid's
 * 32 bytes as 8 Int32 words (`keys`), two words of `meta` (the number of the last listing that
 * held it, or EMPTY / DELETED, and its position in that listing) and a flag byte: 41 bytes per
 * slot, ~10.7 MB at 150,000 txids (262,144 slots), against ~18 MB for the same txids as string
 * keys of a Map.
 *
 * Reading a listing (`readListing`) walks it beside the previous one: a node lists a mostly
 * unchanged mempool in a mostly unchanged order (Bitcoin Core sorts it by ancestor count and fee
 * rate), so most entries are byte-equal to the previous listing's entry at the walk's position
 * and take a 64-byte comparison and two writes to `meta` (2 MB, cache-friendly), not a hex decode
 * and a probe of the 8 MB of keys. Any other entry (an arrival, or one that moved) is decoded and
 * looked up (`see`); a known one moves the walk in the previous listing to just after it, so a run
 * of departures (a block) or a moved entry costs one lookup, not a lookup per entry after it. The
 * answer never depends on the order: a byte-equal entry is the txid that slot holds (the slot is
 * checked to still be of the previous listing), anything else is looked up.
 */
export class MempoolTxids {
  private cap = 0;
  private mask = 0;
  private keys = new Int32Array(0);
  private meta = new Int32Array(0);
  private flags = new Uint8Array(0);
  /** Live entries (not empty, not deleted). */
  private live = 0;
  private deleted = 0;
  private scannedCount = 0;
  /** Number of the current listing (1, 2, …); 0 before the first. */
  private current = 0;
  /** Distinct txids of the current listing. */
  private listed = 0;
  /** Index in the current listing of its next entry (kept in `meta[2 * slot + 1]`). */
  private position = 0;
  private readonly w = new Int32Array(8);
  /** The listing being read through `see`, as a DataView (4 characters per read). */
  private bytes: Uint8Array | null = null;
  private view: DataView<ArrayBufferLike> = new DataView(new ArrayBuffer(0));
  /** The last listing read in full by `readListing`, or null (none, or it failed, or was renumbered). */
  private previous: PreviousListing | null = null;
  /**
   * Slots of the previous listing's entries the last `readListing` passed over (-1 for none): every
   * txid that left is among them, so `forgetUnlisted` need not scan the table. Null when unknown.
   */
  private passed: Int32Array | null = null;
  /** Slots of the listing being read by `readListing` (-1 where not yet known), kept exact through rehashes. */
  private reading: Int32Array | null = null;
  private readonly seed = (Math.random() * 0x100000000) | 0;

  constructor(capacity = 1024) {
    this.alloc(Math.max(16, 2 ** Math.ceil(Math.log2(capacity))));
  }

  /** Txids remembered (listed in some listing since and not forgotten). */
  get size(): number {
    return this.live;
  }
  /** Of those, scanned. */
  get scanned(): number {
    return this.scannedCount;
  }
  /** Number of the current listing. */
  get listing(): number {
    return this.current;
  }
  /** Distinct txids of the current listing still remembered (all of them unless some were deleted). */
  get listedCount(): number {
    return this.listed;
  }
  /** Entries of the last `readListing` that were decoded and looked up (not byte-equal to the walk's entry). */
  get lookedUp(): number {
    return this.lookups;
  }

  /** Done reading the current listing through `see`: its bytes are not kept (~10 MB at 150,000 txids). */
  endListing(): void {
    this.bytes = null;
    this.view = new DataView(new ArrayBuffer(0));
  }

  /** Starts reading a new listing through `see`; returns its number. */
  beginListing(): number {
    if (this.current === LAST_LISTING) this.renumber();
    this.listed = 0;
    this.position = 0;
    this.previous = null; // read entry by entry: no walk against it next time
    this.passed = null;
    return ++this.current;
  }

  /**
   * Reads a whole listing (it becomes the current one, numbered `listing`): the offsets in
   * `list.bytes` of the txids not remembered before (remembered now, unscanned), in listing order;
   * or null when an entry is not a hex txid (then nothing of this listing is remembered as new).
   * The listing's bytes are kept until the next one is read.
   */
  readListing(list: TxidList): number[] | null {
    if (this.current === LAST_LISTING) this.renumber();
    const prev = this.previous; // kept as this.previous while reading: a rehash moves its slots
    this.listed = 0;
    this.position = 0;
    this.current++;
    const { bytes, starts, count } = list;
    const view = viewOf(bytes);
    const buf = bufferOf(bytes);
    const slots = new Int32Array(count).fill(-1);
    this.reading = slots;
    const arrivals: number[] = [];
    let done = false;
    this.lookups = 0;
    let j = 0; // the walk's position in the previous listing
    let alt = -1; // where the walk goes on if the last entry looked up ended a run that left (else -1)
    const skipped: number[] = []; // [from, to) ranges of the previous listing the walk passed over
    let run = 2; // entries compared at once next (grows while they match)
    /** Entry `i` of this listing is entry `k` of the previous one, not yet seen in this listing: marks it, returns true. */
    const take = (i: number, k: number): boolean => {
      const s = prev!.slots[k]!;
      if (s < 0 || this.meta[2 * s] !== prev!.number) return false;
      this.meta[2 * s] = this.current;
      this.meta[2 * s + 1] = this.position++;
      this.listed++;
      slots[i] = s;
      return true;
    };
    /** Looks entry `i` up in the table (`see`); false when it is not hex. */
    const lookUp = (i: number): boolean => {
      this.lookups++;
      const at = starts[i]!;
      const seen = this.see(bytes, at);
      if (seen === SEEN_BAD_HEX) return false;
      slots[i] = this.lastSlot;
      if (seen === SEEN_NEW) arrivals.push(at);
      return true;
    };
    const forgetArrivals = () => {
      for (const o of arrivals) {
        this.decode(bytes, o);
        const t = this.find();
        if (t >= 0) this.remove(t);
      }
    };
    try {
      for (let i = 0; i < count; ) {
        if (prev && j < prev.count) {
          // A run of entries byte-equal to the previous listing's from j: one native comparison.
          const k = Math.min(run, count - i, prev.count - j);
          if (k > 1) {
            const from = starts[i]!, to = starts[i + k - 1]! + 64;
            const pFrom = prev.starts[j]!, pTo = prev.starts[j + k - 1]! + 64;
            if (to - from === pTo - pFrom && buf.compare(prev.buf, pFrom, pTo, from, to) === 0) {
              // Same bytes from an entry's start: the same entries, at the same offsets.
              for (let t = 0; t < k; t++) {
                if (!take(i + t, j + t) && !lookUp(i + t)) return forgetArrivals(), null; // moved here, or forgotten since
              }
              i += k;
              j += k;
              alt = -1;
              run = Math.min(run * 2, MAX_RUN);
              continue;
            }
            run = Math.max(1, run >> 2);
          }
          const at = starts[i]!;
          // One entry: the walk's, or (after a lookup) the one after the entry looked up.
          let k1 = same64(view, at, prev.view, prev.starts[j]!) ? j : -1;
          if (k1 < 0 && alt >= 0 && alt < prev.count && same64(view, at, prev.view, prev.starts[alt]!)) k1 = alt;
          if (k1 >= 0) {
            // The same bytes as the previous listing's entry k1: the walk goes on after it, the
            // entry looked up only if its slot was forgotten or it was already seen in this listing.
            if (k1 > j) skipped.push(j, k1);
            if (!take(i, k1) && !lookUp(i)) return forgetArrivals(), null;
            j = k1 + 1;
            i++;
            alt = -1;
            run = Math.max(run, 2);
            continue;
          }
        }
        if (!lookUp(i)) return forgetArrivals(), null;
        // Listed later in the previous listing: either the entries up to it left (a block) and the
        // walk goes on after it, or it moved here and the walk goes on at j. The next entry tells.
        if (prev && this.lastGeneration === prev.number && this.lastPosition >= j) alt = this.lastPosition + 1;
        i++;
      }
      if (prev) {
        // The previous listing's entries the walk passed over or did not reach: what left, plus
        // entries that moved (listed now). `forgetUnlisted` checks these first.
        if (j < prev.count) skipped.push(j, prev.count);
        let n = 0;
        for (let r = 0; r < skipped.length; r += 2) n += skipped[r + 1]! - skipped[r]!;
        const passed = new Int32Array(n);
        n = 0;
        for (let r = 0; r < skipped.length; r += 2) {
          passed.set(prev.slots.subarray(skipped[r]!, skipped[r + 1]!), n);
          n += skipped[r + 1]! - skipped[r]!;
        }
        this.passed = passed;
      } else this.passed = null;
      this.previous = { number: this.current, view, buf, starts, count, slots };
      done = true;
      return arrivals;
    } finally {
      if (!done) {
        this.previous = null;
        this.passed = null;
      }
      this.reading = null;
      this.endListing();
    }
  }

  private lookups = 0;
  /** Slot, and listing number and position before this listing, of the txid of the last `see`. */
  private lastSlot = -1;
  private lastGeneration = 0;
  private lastPosition = 0;

  /**
   * The txid at `bytes[off..off+64)` is in the current listing: SEEN_KNOWN when it was already
   * remembered, SEEN_NEW when it was not (it is remembered now, unscanned), SEEN_BAD_HEX when the
   * 64 characters are not hex.
   */
  see(bytes: Uint8Array, off: number): number {
    if (bytes !== this.bytes) {
      this.bytes = bytes;
      this.view = viewOf(bytes);
    }
    const position = this.position++; // one per entry: the entry's index in the listing
    this.decodeFast(this.view, off);
    let slot = this.find();
    if (slot >= 0) {
      const g = this.meta[2 * slot]!;
      this.lastSlot = slot;
      this.lastGeneration = g;
      this.lastPosition = this.meta[2 * slot + 1]!;
      if (g !== this.current) {
        this.meta[2 * slot] = this.current;
        this.meta[2 * slot + 1] = position;
        this.listed++;
      }
      return SEEN_KNOWN;
    }
    // Only a new txid is checked to be hex: a known one equals a key that was.
    if (!this.decode(bytes, off)) return SEEN_BAD_HEX;
    slot = this.insertSlot();
    this.meta[2 * slot] = this.current;
    this.meta[2 * slot + 1] = position;
    this.flags[slot] = 0;
    this.listed++;
    this.lastSlot = slot;
    this.lastGeneration = EMPTY;
    return SEEN_NEW;
  }

  /** Is `txid` (64 hex characters, either case) in the listing numbered `listing`? */
  inListing(txid: string, listing: number): boolean {
    const slot = this.slotOf(txid);
    return slot >= 0 && this.meta[2 * slot] === listing;
  }

  /** Remembered and scanned? */
  isScanned(txid: string): boolean {
    const slot = this.slotOf(txid);
    return slot >= 0 && (this.flags[slot]! & SCANNED) !== 0;
  }

  /** Records `txid` (remembered) as scanned; false when it is not remembered. */
  markScanned(txid: string): boolean {
    const slot = this.slotOf(txid);
    if (slot < 0) return false;
    if ((this.flags[slot]! & SCANNED) === 0) {
      this.flags[slot] = this.flags[slot]! | SCANNED;
      this.scannedCount++;
    }
    return true;
  }

  /** Forgets `txid` (it is new again in the next listing that holds it). */
  delete(txid: string): boolean {
    const slot = this.slotOf(txid);
    if (slot < 0) return false;
    this.remove(slot);
    return true;
  }

  /** Forgets every txid not in the current listing (what left the mempool); returns how many. */
  forgetUnlisted(): number {
    if (this.live === this.listed) return 0; // every remembered txid is listed: nothing left
    let n = 0;
    const meta = this.meta;
    // First the entries the last listing's walk passed over (what left is among them) …
    const passed = this.passed;
    this.passed = null;
    if (passed) {
      for (let i = 0; i < passed.length; i++) {
        const s = passed[i]!;
        if (s < 0) continue;
        const g = meta[2 * s]!;
        if (g !== EMPTY && g !== DELETED && g !== this.current) {
          this.remove(s);
          n++;
        }
      }
      if (this.live === this.listed) return n;
    }
    // … and the whole table when something else is left (a listing never read against the previous one).
    for (let s = 0; s < this.cap; s++) {
      const g = meta[2 * s]!;
      if (g !== EMPTY && g !== DELETED && g !== this.current) {
        this.remove(s);
        n++;
      }
    }
    return n;
  }

  /** The remembered txid in `slot`, as lowercase hex (tests). */
  private hexAt(slot: number): string {
    let s = '';
    for (let k = 0; k < 8; k++) {
      const w = this.keys[slot * 8 + k]!;
      for (let sh = 28; sh >= 0; sh -= 4) s += HEX[(w >>> sh) & 15];
    }
    return s;
  }

  /** Every remembered txid (tests, diagnostics). */
  toArray(): string[] {
    const out: string[] = [];
    for (let s = 0; s < this.cap; s++) {
      const g = this.meta[2 * s];
      if (g !== EMPTY && g !== DELETED) out.push(this.hexAt(s));
    }
    return out;
  }

  // ---------------------------------------------------------------- table

  private alloc(cap: number): void {
    this.cap = cap;
    this.mask = cap - 1;
    this.keys = new Int32Array(cap * 8);
    this.meta = new Int32Array(cap * 2);
    this.flags = new Uint8Array(cap);
    this.deleted = 0;
  }

  /**
   * Decodes 64 hex characters into `w`, 4 per read: a character's low 4 bits, plus 9 for a letter
   * (bit 6 set), are its value. Exact for [0-9a-fA-F]; anything else gives some value (`decode`
   * checks).
   */
  private decodeFast(v: DataView<ArrayBufferLike>, off: number): void {
    const w = this.w;
    for (let k = 0, p = off; k < 8; k++, p += 8) {
      const a = v.getInt32(p, true), b = v.getInt32(p + 4, true);
      const x = (a & 0x0f0f0f0f) + ((a >> 6) & 0x01010101) * 9; // bytes: nibbles of characters 0..3 (0 lowest)
      const y = (b & 0x0f0f0f0f) + ((b >> 6) & 0x01010101) * 9;
      w[k] = ((x & 0xf) << 28) | (((x >> 8) & 0xf) << 24) | (((x >> 16) & 0xf) << 20) | ((x >>> 24) << 16) |
        ((y & 0xf) << 12) | (((y >> 8) & 0xf) << 8) | (((y >> 16) & 0xf) << 4) | (y >>> 24);
    }
  }

  /** Decodes 64 hex characters into `w`; false if one is not hex. */
  private decode(b: Uint8Array, off: number): boolean {
    const w = this.w;
    let bad = 0;
    for (let k = 0, p = off; k < 8; k++, p += 8) {
      const n0 = NIBBLE[b[p]!]!, n1 = NIBBLE[b[p + 1]!]!, n2 = NIBBLE[b[p + 2]!]!, n3 = NIBBLE[b[p + 3]!]!;
      const n4 = NIBBLE[b[p + 4]!]!, n5 = NIBBLE[b[p + 5]!]!, n6 = NIBBLE[b[p + 6]!]!, n7 = NIBBLE[b[p + 7]!]!;
      bad |= n0 | n1 | n2 | n3 | n4 | n5 | n6 | n7;
      w[k] = (n0 << 28) | (n1 << 24) | (n2 << 20) | (n3 << 16) | (n4 << 12) | (n5 << 8) | (n6 << 4) | n7;
    }
    return bad >= 0;
  }

  private decodeString(txid: string): boolean {
    if (txid.length !== 64) return false;
    const w = this.w;
    for (let k = 0; k < 8; k++) {
      let x = 0;
      for (let j = 0; j < 8; j++) {
        const c = txid.charCodeAt(k * 8 + j);
        const v = c < 256 ? NIBBLE[c]! : -1;
        if (v < 0) return false;
        x = (x << 4) | v;
      }
      w[k] = x;
    }
    return true;
  }

  private slotOf(txid: string): number {
    return this.decodeString(txid) ? this.find() : -1;
  }

  /** Start slot for the key in `w` (all 8 words mixed with a per-process seed: no crafted collisions). */
  private home(w: Int32Array): number {
    let h = this.seed;
    for (let k = 0; k < 8; k++) h = Math.imul(h ^ w[k]!, 0x9e3779b1);
    h ^= h >>> 15;
    h = Math.imul(h, 0x85ebca6b);
    h ^= h >>> 13;
    return h & this.mask;
  }

  /** Slot holding the key in `w`, or -1. */
  private find(): number {
    const w = this.w, keys = this.keys, meta = this.meta, mask = this.mask;
    const w0 = w[0]!, w1 = w[1]!, w2 = w[2]!, w3 = w[3]!, w4 = w[4]!, w5 = w[5]!, w6 = w[6]!, w7 = w[7]!;
    for (let s = this.home(w); ; s = (s + 1) & mask) {
      const g = meta[2 * s]!;
      if (g === EMPTY) return -1;
      const o = s * 8;
      if (g !== DELETED && keys[o] === w0 && keys[o + 1] === w1 && keys[o + 2] === w2 && keys[o + 3] === w3 &&
        keys[o + 4] === w4 && keys[o + 5] === w5 && keys[o + 6] === w6 && keys[o + 7] === w7) return s;
    }
  }

  /** A free slot for the key in `w` (known absent), its key written; grows or cleans the table first when needed. */
  private insertSlot(): number {
    if ((this.live + this.deleted + 1) * 10 > this.cap * 7) this.rehash(this.live * 10 + 10 > this.cap * 4 ? this.cap * 2 : this.cap);
    const w = this.w, mask = this.mask;
    let s = this.home(w);
    while (this.meta[2 * s] !== EMPTY && this.meta[2 * s] !== DELETED) s = (s + 1) & mask;
    if (this.meta[2 * s] === DELETED) this.deleted--;
    this.keys.set(w, s * 8);
    this.live++;
    return s;
  }

  private remove(slot: number): void {
    if ((this.flags[slot]! & SCANNED) !== 0) this.scannedCount--;
    if (this.meta[2 * slot] === this.current) this.listed--;
    this.meta[2 * slot] = DELETED;
    this.flags[slot] = 0;
    this.live--;
    this.deleted++;
  }

  /**
   * Re-inserts every live entry into a table of `cap` slots (drops the deleted ones), and moves
   * the slot numbers the previous listing and the listing being read hold.
   */
  private rehash(cap: number): void {
    const { keys, meta, flags } = this;
    const old = this.cap;
    const moved = new Int32Array(old).fill(-1);
    this.alloc(cap);
    for (let s = 0; s < old; s++) {
      const g = meta[2 * s]!;
      if (g === EMPTY || g === DELETED) continue;
      const w = keys.subarray(s * 8, s * 8 + 8); // not this.w: it holds the key being inserted
      let t = this.home(w);
      while (this.meta[2 * t] !== EMPTY) t = (t + 1) & this.mask;
      this.keys.set(w, t * 8);
      this.meta[2 * t] = g;
      this.meta[2 * t + 1] = meta[2 * s + 1]!;
      this.flags[t] = flags[s]!;
      moved[s] = t;
    }
    for (const list of [this.previous?.slots, this.reading, this.passed]) {
      if (!list) continue;
      for (let i = 0; i < list.length; i++) if (list[i]! >= 0) list[i] = moved[list[i]!]!;
    }
  }

  /** After ~4 billion listings: entries of the current listing become 2, the others 1. */
  private renumber(): void {
    for (let s = 0; s < this.cap; s++) {
      const g = this.meta[2 * s]!;
      if (g !== EMPTY && g !== DELETED) this.meta[2 * s] = g === this.current ? 2 : 1;
    }
    this.current = 2;
    this.previous = null;
    this.passed = null;
  }
}
