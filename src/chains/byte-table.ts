/**
 * `ByteTable`: byte-string keys, each with a byte-string value, held in typed arrays and shared
 * slabs — no JS object, string or ArrayBuffer per entry. Built for ~1,000,000 entries kept for
 * hours, looked up without allocating: the watched set (src/chains/watched-set.ts, keyed by deposit
 * address) and the Bitcoin adapter's `WatchedScripts` (src/chains/bitcoin/watched.ts, keyed by
 * output script, matched against every output of every block).
 *
 * Layout:
 * - an open-addressing hash table (linear probing, load ≤ 0.5, backward-shift deletion) of two
 *   Int32Arrays: the first 32 bits of the key's 64-bit digest (a quick reject) and the entry number;
 * - per entry (dense, 0..size-1: removing an entry moves the last one into its place, and says so):
 *   both halves of the digest, the record's position, the key's and the value's lengths (16 bytes);
 * - the records (key bytes, then value bytes) appended to 256 KiB slabs (a small table's first slab
 *   starts smaller and grows). A slab whose records are all removed is dropped; when dead bytes
 *   outgrow live ones, the records of half-empty slabs move to the current one.
 * Bytes once written are never overwritten (moves copy, slabs are replaced, not reused), so a view
 * of a record (`slab(e).subarray(…)`) handed out earlier keeps its contents.
 *
 * The digest is seeded per instance (random), so nobody can pre-compute colliding keys.
 */

const EMPTY = 0;
const SLAB_BITS = 18;
const SLAB_SIZE = 1 << SLAB_BITS;
const POS_MASK = SLAB_SIZE - 1;
/** Longest key, longest value (16-bit lengths; a record always fits in one slab). */
export const MAX_PART_LENGTH = 0xffff;
const MIN_SLOTS = 16;
const MIN_ENTRIES = 8;
const MIN_SLAB = 256;

function randomSeed(): number {
  const a = new Uint32Array(1);
  globalThis.crypto.getRandomValues(a);
  return a[0]! | 1;
}

export class ByteTable {
  private readonly seedA: number;
  private readonly seedB: number;
  private mask: number;
  private slotHash: Int32Array;
  private slotEntry: Int32Array; // entry index + 1; 0 = empty
  private entHashA: Int32Array;
  private entHashB: Int32Array;
  /** Slab number << SLAB_BITS | position of the record in its slab. */
  private entOff: Uint32Array;
  private entKeyLen: Uint16Array;
  private entValLen: Uint16Array;
  private slabs: (Buffer | null)[] = [];
  /** Live record bytes per slab. */
  private slabLive: number[] = [];
  private freeSlabs: number[] = [];
  private cur = -1;
  private curUsed = 0;
  private liveBytes = 0;
  private slabBytes = 0;
  private count = 0;
  // The digest of the last hashed byte range (avoids allocating a tuple per call).
  private ha = 0;
  private hb = 0;

  /** `expected`: entries to size the table for; `recordBytes`: the expected bytes per record (key + value). */
  constructor(expected = 0, private readonly recordBytes = 32) {
    this.seedA = randomSeed();
    this.seedB = randomSeed();
    let cap = MIN_SLOTS;
    while (cap < expected * 2) cap *= 2;
    this.mask = cap - 1;
    this.slotHash = new Int32Array(cap);
    this.slotEntry = new Int32Array(cap);
    const entries = Math.max(expected, MIN_ENTRIES);
    this.entHashA = new Int32Array(entries);
    this.entHashB = new Int32Array(entries);
    this.entOff = new Uint32Array(entries);
    this.entKeyLen = new Uint16Array(entries);
    this.entValLen = new Uint16Array(entries);
  }

  /** Number of entries. */
  get size(): number {
    return this.count;
  }

  /** Entries the per-entry arrays hold before they grow. */
  get capacity(): number {
    return this.entOff.length;
  }

  /** Bytes held by the typed arrays and slabs backing the table. */
  get byteLength(): number {
    return (
      this.slotHash.byteLength + this.slotEntry.byteLength + this.entHashA.byteLength + this.entHashB.byteLength +
      this.entOff.byteLength + this.entKeyLen.byteLength + this.entValLen.byteLength + this.slabBytes
    );
  }

  /** Bytes of the slabs alone (records, dead ones and free room included). */
  get slabByteLength(): number {
    return this.slabBytes;
  }

  /** The entry whose key is `buf[off, off+len)`, or -1. Allocates nothing. */
  find(buf: Uint8Array, off: number, len: number): number {
    const slot = this.slotOf(buf, off, len);
    return slot < 0 ? -1 : this.slotEntry[slot]! - 1;
  }

  /**
   * Adds the key `buf[off, off+len)` with `valueLength` bytes of value (zeroed; the caller writes
   * them at `valueStart`). Returns the new entry, or -1 when the key is present already.
   */
  add(buf: Uint8Array, off: number, len: number, valueLength = 0): number {
    if (len > MAX_PART_LENGTH || valueLength > MAX_PART_LENGTH) throw new RangeError(`ByteTable keys and values are at most ${MAX_PART_LENGTH} bytes`);
    if (this.slotOf(buf, off, len) >= 0) return -1;
    const ha = this.ha;
    const hb = this.hb;
    if ((this.count + 1) * 2 > this.mask + 1) this.rehash((this.mask + 1) * 2);
    if (this.count === this.entOff.length) this.resizeEntries(this.count * 2);
    const at = this.reserve(len + valueLength);
    const slab = this.slabs[at >>> SLAB_BITS]!;
    const pos = at & POS_MASK;
    slab.set(buf.subarray(off, off + len), pos);
    const e = this.count++;
    this.entOff[e] = at;
    this.entKeyLen[e] = len;
    this.entValLen[e] = valueLength;
    this.entHashA[e] = ha;
    this.entHashB[e] = hb;
    let i = ha & this.mask;
    while (this.slotEntry[i] !== EMPTY) i = (i + 1) & this.mask;
    this.slotHash[i] = ha;
    this.slotEntry[i] = e + 1;
    return e;
  }

  /**
   * Removes entry `e`. The last entry moves into its place: returns the moved entry's former
   * number (the caller moves its own per-entry data from there to `e`), or -1 when none moved.
   */
  removeAt(e: number): number {
    if (e < 0 || e >= this.count) throw new RangeError(`no entry ${e}`);
    this.deleteSlot(this.slotOfEntry(e));
    this.release(e);
    const last = this.count - 1;
    let moved = -1;
    if (e !== last) {
      // Move the last entry into the hole and repoint its slot.
      this.slotEntry[this.slotOfEntry(last)] = e + 1;
      this.entHashA[e] = this.entHashA[last]!;
      this.entHashB[e] = this.entHashB[last]!;
      this.entOff[e] = this.entOff[last]!;
      this.entKeyLen[e] = this.entKeyLen[last]!;
      this.entValLen[e] = this.entValLen[last]!;
      moved = last;
    }
    this.count = last;
    if (this.slabBytes > 2 * this.liveBytes + 4 * SLAB_SIZE) this.compact();
    return moved;
  }

  clear(): void {
    this.slotHash.fill(0);
    this.slotEntry.fill(0);
    this.count = 0;
    this.slabs = [];
    this.slabLive = [];
    this.freeSlabs = [];
    this.cur = -1;
    this.curUsed = 0;
    this.liveBytes = 0;
    this.slabBytes = 0;
  }

  /** Shrinks the per-entry arrays to the entries held plus an eighth (after a bulk load of unknown size). */
  trim(): void {
    const want = Math.max(MIN_ENTRIES, this.count + (this.count >> 3));
    if (this.entOff.length > want + (want >> 2)) this.resizeEntries(want);
  }

  /** The slab holding entry `e`'s record: its key at `keyStart(e)`, then its value at `valueStart(e)`. */
  slab(e: number): Buffer {
    return this.slabs[this.entOff[e]! >>> SLAB_BITS]!;
  }
  keyStart(e: number): number {
    return this.entOff[e]! & POS_MASK;
  }
  keyLength(e: number): number {
    return this.entKeyLen[e]!;
  }
  valueStart(e: number): number {
    return (this.entOff[e]! & POS_MASK) + this.entKeyLen[e]!;
  }
  valueLength(e: number): number {
    return this.entValLen[e]!;
  }

  // -------------------------------------------------------------------------------------------

  /** Computes the two 32-bit halves of the seeded 64-bit digest into this.ha / this.hb. */
  private digest(buf: Uint8Array, off: number, len: number): void {
    let a = this.seedA ^ len;
    let b = this.seedB ^ Math.imul(len, 0x9e3779b1);
    const end = off + len;
    let p = off;
    for (; p + 4 <= end; p += 4) {
      const k = buf[p]! | (buf[p + 1]! << 8) | (buf[p + 2]! << 16) | (buf[p + 3]! << 24);
      let ka = Math.imul(k, 0xcc9e2d51);
      ka = (ka << 15) | (ka >>> 17);
      a ^= Math.imul(ka, 0x1b873593);
      a = (a << 13) | (a >>> 19);
      a = (Math.imul(a, 5) + 0xe6546b64) | 0;
      let kb = Math.imul(k, 0x85ebca6b);
      kb = (kb << 16) | (kb >>> 16);
      b ^= Math.imul(kb, 0xc2b2ae35);
      b = (b << 11) | (b >>> 21);
      b = (Math.imul(b, 9) + 0x7feb352d) | 0;
    }
    let t = 0;
    for (let s = 0; p < end; p++, s += 8) t |= buf[p]! << s;
    a ^= Math.imul(t, 0xcc9e2d51);
    b ^= Math.imul(t, 0x1b873593);
    // fmix32
    a ^= a >>> 16; a = Math.imul(a, 0x85ebca6b); a ^= a >>> 13; a = Math.imul(a, 0xc2b2ae35); a ^= a >>> 16;
    b ^= b >>> 15; b = Math.imul(b, 0x2c1b3c6d); b ^= b >>> 12; b = Math.imul(b, 0x297a2d39); b ^= b >>> 15;
    this.ha = a;
    this.hb = b;
  }

  /** Slot holding the key `buf[off, off+len)`, or -1. Leaves the digest in ha/hb. */
  private slotOf(buf: Uint8Array, off: number, len: number): number {
    this.digest(buf, off, len);
    const ha = this.ha;
    const hb = this.hb;
    const mask = this.mask;
    const slotHash = this.slotHash;
    const slotEntry = this.slotEntry;
    let i = ha & mask;
    for (;;) {
      const e = slotEntry[i]!;
      if (e === EMPTY) return -1;
      if (slotHash[i] === ha && this.entHashB[e - 1] === hb && this.entKeyLen[e - 1] === len) {
        const at = this.entOff[e - 1]!;
        const slab = this.slabs[at >>> SLAB_BITS]!;
        let o = at & POS_MASK;
        let j = off;
        const end = off + len;
        while (j < end && slab[o] === buf[j]) { o++; j++; }
        if (j === end) return i;
      }
      i = (i + 1) & mask;
    }
  }

  private slotOfEntry(e: number): number {
    let i = this.entHashA[e]! & this.mask;
    while (this.slotEntry[i] !== e + 1) i = (i + 1) & this.mask;
    return i;
  }

  /** Backward-shift deletion for linear probing (no tombstones). */
  private deleteSlot(slot: number): void {
    const mask = this.mask;
    let i = slot;
    let j = i;
    for (;;) {
      j = (j + 1) & mask;
      if (this.slotEntry[j] === EMPTY) break;
      const k = this.slotHash[j]! & mask;
      const stays = i <= j ? i < k && k <= j : i < k || k <= j;
      if (stays) continue;
      this.slotEntry[i] = this.slotEntry[j]!;
      this.slotHash[i] = this.slotHash[j]!;
      i = j;
    }
    this.slotEntry[i] = EMPTY;
    this.slotHash[i] = 0;
  }

  private rehash(capacity: number): void {
    this.mask = capacity - 1;
    this.slotHash = new Int32Array(capacity);
    this.slotEntry = new Int32Array(capacity);
    for (let e = 0; e < this.count; e++) {
      const ha = this.entHashA[e]!;
      let i = ha & this.mask;
      while (this.slotEntry[i] !== EMPTY) i = (i + 1) & this.mask;
      this.slotHash[i] = ha;
      this.slotEntry[i] = e + 1;
    }
  }

  private resizeEntries(n: number): void {
    const count = this.count;
    const copy = <T extends Int32Array | Uint32Array | Uint16Array>(a: T, b: T): T => {
      b.set(a.subarray(0, count));
      return b;
    };
    this.entHashA = copy(this.entHashA, new Int32Array(n));
    this.entHashB = copy(this.entHashB, new Int32Array(n));
    this.entOff = copy(this.entOff, new Uint32Array(n));
    this.entKeyLen = copy(this.entKeyLen, new Uint16Array(n));
    this.entValLen = copy(this.entValLen, new Uint16Array(n));
  }

  /** Room for a record of `len` bytes in the current slab (a new one when it is full); returns its position. */
  private reserve(len: number): number {
    const slab = this.cur < 0 ? null : this.slabs[this.cur]!;
    if (slab === null || this.curUsed + len > slab.length) {
      if (slab !== null && slab.length < SLAB_SIZE && this.curUsed + len <= SLAB_SIZE) {
        // A small table's first slab grows (a copy: views of the old one keep their bytes) up to SLAB_SIZE.
        let size = slab.length * 2;
        while (size < this.curUsed + len) size *= 2;
        const next = Buffer.alloc(Math.min(size, SLAB_SIZE));
        next.set(slab.subarray(0, this.curUsed));
        this.slabBytes += next.length - slab.length;
        this.slabs[this.cur] = next;
      } else {
        if (slab !== null && this.slabLive[this.cur] === 0) this.dropSlab(this.cur);
        const first = this.slabs.length === 0;
        let size = first ? Math.min(SLAB_SIZE, Math.max(MIN_SLAB, this.entOff.length * this.recordBytes)) : SLAB_SIZE;
        while (size < len) size *= 2;
        const i = this.freeSlabs.pop() ?? this.slabs.length;
        this.slabs[i] = Buffer.alloc(size);
        this.slabLive[i] = 0;
        this.slabBytes += size;
        this.cur = i;
        this.curUsed = 0;
      }
    }
    const at = (this.cur << SLAB_BITS) | this.curUsed;
    this.curUsed += len;
    this.slabLive[this.cur]! += len;
    this.liveBytes += len;
    return at >>> 0;
  }

  /** Entry `e`'s record is dead: its slab is dropped when nothing in it lives. */
  private release(e: number): void {
    const s = this.entOff[e]! >>> SLAB_BITS;
    const len = this.entKeyLen[e]! + this.entValLen[e]!;
    this.liveBytes -= len;
    const live = (this.slabLive[s]! -= len);
    if (live === 0 && s !== this.cur) this.dropSlab(s);
  }

  private dropSlab(s: number): void {
    this.slabBytes -= this.slabs[s]!.length;
    this.slabs[s] = null;
    this.freeSlabs.push(s);
  }

  /** Moves the records of less than half full slabs (not the current one) into the current slab. */
  private compact(): void {
    for (let e = 0; e < this.count; e++) {
      const from = this.entOff[e]!;
      const s = from >>> SLAB_BITS;
      if (s === this.cur) continue;
      const old = this.slabs[s]!;
      if (this.slabLive[s]! * 2 >= old.length) continue;
      const len = this.entKeyLen[e]! + this.entValLen[e]!;
      const pos = from & POS_MASK;
      const at = this.reserve(len);
      this.slabs[at >>> SLAB_BITS]!.set(old.subarray(pos, pos + len), at & POS_MASK);
      this.release(e);
      this.entOff[e] = at;
    }
  }
}
