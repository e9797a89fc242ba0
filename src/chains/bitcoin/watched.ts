/**
 * `WatchedScripts`: the set of output scripts (scriptPubKeys) Kassa is waiting for, built for
 * matching every output of every block against ~1,000,000 open deposit scripts.
 *
 * Layout (no per-script JS objects, no strings):
 * - an open-addressing hash table (linear probing, load ≤ 0.5) of two Int32Arrays: the first
 *   32 bits of the script's 64-bit digest (for a quick reject) and the entry number;
 * - per entry: the second 32 bits of the digest, and offset/length of the script bytes in one
 *   shared byte arena. A digest hit is confirmed by comparing the full script bytes.
 * About 50 bytes per 22-byte script at 1M scripts (hash slots + entries + arena, with growth slack).
 *
 * The digest is seeded per instance (random), so nobody can pre-compute colliding scripts.
 */

const EMPTY = 0;
const MIN_CAPACITY = 1024;

function hexToBytes(hex: string): Uint8Array {
  if (hex.length % 2 !== 0 || !/^[0-9a-fA-F]*$/.test(hex)) throw new TypeError('script hex must be an even-length hex string');
  const out = new Uint8Array(hex.length / 2);
  for (let i = 0; i < out.length; i++) out[i] = parseInt(hex.substr(i * 2, 2), 16);
  return out;
}

function randomSeed(): number {
  const a = new Uint32Array(1);
  globalThis.crypto.getRandomValues(a);
  return a[0]! | 1;
}

export class WatchedScripts {
  private readonly seedA: number;
  private readonly seedB: number;
  private mask: number;
  private slotHash: Int32Array;
  private slotEntry: Int32Array; // entry index + 1; 0 = empty
  private entHashA: Int32Array;
  private entHashB: Int32Array;
  private entOff: Uint32Array;
  private entLen: Uint32Array;
  private arena: Uint8Array;
  private arenaUsed = 0;
  private arenaWasted = 0;
  private count = 0;
  // Scratch for the digest of the last hashed byte range (avoids allocating a tuple per call).
  private ha = 0;
  private hb = 0;

  constructor(expected = 0) {
    this.seedA = randomSeed();
    this.seedB = randomSeed();
    let cap = MIN_CAPACITY;
    while (cap < expected * 2) cap *= 2;
    this.mask = cap - 1;
    this.slotHash = new Int32Array(cap);
    this.slotEntry = new Int32Array(cap);
    const entries = Math.max(expected, 512);
    this.entHashA = new Int32Array(entries);
    this.entHashB = new Int32Array(entries);
    this.entOff = new Uint32Array(entries);
    this.entLen = new Uint32Array(entries);
    this.arena = new Uint8Array(Math.max(expected * 23, 16 * 1024));
  }

  /** Number of scripts in the set. */
  get size(): number {
    return this.count;
  }

  /** Bytes held by the typed arrays backing the set. */
  get byteLength(): number {
    return (
      this.slotHash.byteLength + this.slotEntry.byteLength + this.entHashA.byteLength + this.entHashB.byteLength +
      this.entOff.byteLength + this.entLen.byteLength + this.arena.byteLength
    );
  }

  /** Adds a script (bytes or hex). Returns false if it was already present. */
  add(script: Uint8Array | string): boolean {
    const s = typeof script === 'string' ? hexToBytes(script) : script;
    if (this.indexAt(s, 0, s.length) >= 0) return false;
    if ((this.count + 1) * 2 > this.mask + 1) this.rehash((this.mask + 1) * 2);
    if (this.count === this.entOff.length) this.growEntries(this.count * 2);
    if (this.arenaUsed + s.length > this.arena.length) this.growArena(s.length);
    const e = this.count++;
    this.arena.set(s, this.arenaUsed);
    this.entOff[e] = this.arenaUsed;
    this.entLen[e] = s.length;
    this.arenaUsed += s.length;
    this.entHashA[e] = this.ha;
    this.entHashB[e] = this.hb;
    let i = this.ha & this.mask;
    while (this.slotEntry[i] !== EMPTY) i = (i + 1) & this.mask;
    this.slotHash[i] = this.ha;
    this.slotEntry[i] = e + 1;
    return true;
  }

  /** True if the script (bytes or hex) is in the set. */
  has(script: Uint8Array | string): boolean {
    const s = typeof script === 'string' ? hexToBytes(script) : script;
    return this.indexAt(s, 0, s.length) >= 0;
  }

  /**
   * True if `buf[off, off+len)` is a watched script. The scanner's hot path: no allocation, no
   * copy of the script.
   */
  hasAt(buf: Uint8Array, off: number, len: number): boolean {
    return this.indexAt(buf, off, len) >= 0;
  }

  /** Removes a script. Returns false if it was not present. */
  remove(script: Uint8Array | string): boolean {
    const s = typeof script === 'string' ? hexToBytes(script) : script;
    const slot = this.slotOf(s, 0, s.length);
    if (slot < 0) return false;
    const e = this.slotEntry[slot]! - 1;
    this.deleteSlot(slot);
    this.arenaWasted += this.entLen[e]!;
    const last = this.count - 1;
    if (e !== last) {
      // Move the last entry into the hole and repoint its slot.
      const ha = this.entHashA[last]!;
      let i = ha & this.mask;
      while (this.slotEntry[i] !== last + 1) i = (i + 1) & this.mask;
      this.slotEntry[i] = e + 1;
      this.entHashA[e] = ha;
      this.entHashB[e] = this.entHashB[last]!;
      this.entOff[e] = this.entOff[last]!;
      this.entLen[e] = this.entLen[last]!;
    }
    this.count = last;
    if (this.arenaWasted > 64 * 1024 && this.arenaWasted * 2 > this.arenaUsed) this.compactArena(this.arena.length);
    return true;
  }

  clear(): void {
    this.slotHash.fill(0);
    this.slotEntry.fill(0);
    this.count = 0;
    this.arenaUsed = 0;
    this.arenaWasted = 0;
  }

  /** Iterates over copies of the watched scripts (order unspecified). */
  *scripts(): IterableIterator<Uint8Array> {
    for (let e = 0; e < this.count; e++) {
      const off = this.entOff[e]!;
      yield this.arena.slice(off, off + this.entLen[e]!);
    }
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

  /** Slot holding `buf[off, off+len)`, or -1. Leaves the digest in ha/hb. */
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
      if (slotHash[i] === ha && this.entHashB[e - 1] === hb && this.entLen[e - 1] === len) {
        const arena = this.arena;
        let o = this.entOff[e - 1]!;
        let j = off;
        const end = off + len;
        while (j < end && arena[o] === buf[j]) { o++; j++; }
        if (j === end) return i;
      }
      i = (i + 1) & mask;
    }
  }

  private indexAt(buf: Uint8Array, off: number, len: number): number {
    const slot = this.slotOf(buf, off, len);
    return slot < 0 ? -1 : this.slotEntry[slot]! - 1;
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

  private growEntries(n: number): void {
    const grow = <T extends Int32Array | Uint32Array>(a: T, make: (n: number) => T): T => {
      const b = make(n);
      b.set(a);
      return b;
    };
    this.entHashA = grow(this.entHashA, (k) => new Int32Array(k));
    this.entHashB = grow(this.entHashB, (k) => new Int32Array(k));
    this.entOff = grow(this.entOff, (k) => new Uint32Array(k));
    this.entLen = grow(this.entLen, (k) => new Uint32Array(k));
  }

  private growArena(need: number): void {
    if (this.arenaWasted * 2 > this.arenaUsed && this.arenaUsed - this.arenaWasted + need <= this.arena.length) {
      this.compactArena(this.arena.length);
      return;
    }
    let size = this.arena.length * 2;
    while (size < this.arenaUsed + need) size *= 2;
    this.compactArena(size);
  }

  private compactArena(size: number): void {
    const next = new Uint8Array(size);
    let used = 0;
    for (let e = 0; e < this.count; e++) {
      const off = this.entOff[e]!;
      const len = this.entLen[e]!;
      next.set(this.arena.subarray(off, off + len), used);
      this.entOff[e] = used;
      used += len;
    }
    this.arena = next;
    this.arenaUsed = used;
    this.arenaWasted = 0;
  }
}
