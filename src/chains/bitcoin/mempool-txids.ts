/**
 * The Bitcoin adapter's memory of the node's mempool (docs/architecture.md §5, "Mempool at mainnet
 * size"), built for a listing of 50,000–300,000 txids read every pass.
 *
 * - `TxidList`: a `getrawmempool` listing as the bytes of the node's JSON reply and the offset of
 *   each txid's 64 hex characters in them (`scanTxidArray`): no JavaScript string per txid.
 * - `MempoolTxids`: every txid of the listings seen, as 32 bytes in one open-addressing hash table
 *   (typed arrays, no object per txid), each with the number of the last listing that held it and
 *   whether it was scanned. Reading a listing is one hex decode and one probe per txid; membership
 *   in the latest listing is answered from the same table, so no set of the listing is built.
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

/** Words per slot: the listing number (or EMPTY / DELETED), then the txid's 32 bytes as 8 words. */
const STRIDE = 9;
/** Slot states in its first word: EMPTY; DELETED a removed entry (probing continues past it); else the listing number (≥ 1). */
const EMPTY = 0;
const DELETED = -1;
const LAST_LISTING = 0x7ffffffe;
const SCANNED = 1;

/** Result of `see`. */
export const SEEN_BAD_HEX = -1;
export const SEEN_NEW = 0;
export const SEEN_KNOWN = 1;

/**
 * The txids of the mempool listings read so far. Open addressing with linear probing over
 * power-of-two capacity, kept at most 70 % full (deleted slots included). A slot is 9 Int32 words
 * in one array (the listing number next to the key: one memory access per probe) and a flag byte:
 * 37 bytes per slot, ~9.7 MB at 150,000 txids (262,144 slots), against ~18 MB for the same txids
 * as string keys of a Map.
 */
export class MempoolTxids {
  private cap = 0;
  private mask = 0;
  private slots = new Int32Array(0);
  private flags = new Uint8Array(0);
  /** Live entries (not empty, not deleted). */
  private live = 0;
  private deleted = 0;
  private scannedCount = 0;
  /** Number of the current listing (1, 2, …); 0 before the first. */
  private current = 0;
  /** Distinct txids of the current listing. */
  private listed = 0;
  private readonly w = new Int32Array(8);
  /** The listing being read, as a DataView (4 characters per read). */
  private bytes: Uint8Array | null = null;
  private view: DataView<ArrayBufferLike> = new DataView(new ArrayBuffer(0));
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

  /** Done reading the current listing: its bytes are not kept (~10 MB at 150,000 txids). */
  endListing(): void {
    this.bytes = null;
    this.view = new DataView(new ArrayBuffer(0));
  }

  /** Starts reading a new listing; returns its number. */
  beginListing(): number {
    if (this.current === LAST_LISTING) this.renumber();
    this.listed = 0;
    return ++this.current;
  }

  /**
   * The txid at `bytes[off..off+64)` is in the current listing: SEEN_KNOWN when it was already
   * remembered, SEEN_NEW when it was not (it is remembered now, unscanned), SEEN_BAD_HEX when the
   * 64 characters are not hex.
   */
  see(bytes: Uint8Array, off: number): number {
    if (bytes !== this.bytes) {
      this.bytes = bytes;
      this.view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    }
    this.decodeFast(this.view, off);
    let slot = this.find();
    if (slot >= 0) {
      const o = slot * STRIDE;
      if (this.slots[o] !== this.current) {
        this.slots[o] = this.current;
        this.listed++;
      }
      return SEEN_KNOWN;
    }
    // Only a new txid is checked to be hex: a known one equals a key that was.
    if (!this.decode(bytes, off)) return SEEN_BAD_HEX;
    slot = this.insertSlot();
    this.slots[slot * STRIDE] = this.current;
    this.flags[slot] = 0;
    this.listed++;
    return SEEN_NEW;
  }

  /** Is `txid` (64 hex characters, either case) in the listing numbered `listing`? */
  inListing(txid: string, listing: number): boolean {
    const slot = this.slotOf(txid);
    return slot >= 0 && this.slots[slot * STRIDE] === listing;
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
    const slots = this.slots;
    for (let s = 0; s < this.cap; s++) {
      const g = slots[s * STRIDE]!;
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
      const w = this.slots[slot * STRIDE + 1 + k]!;
      for (let sh = 28; sh >= 0; sh -= 4) s += HEX[(w >>> sh) & 15];
    }
    return s;
  }

  /** Every remembered txid (tests, diagnostics). */
  toArray(): string[] {
    const out: string[] = [];
    for (let s = 0; s < this.cap; s++) {
      const g = this.slots[s * STRIDE];
      if (g !== EMPTY && g !== DELETED) out.push(this.hexAt(s));
    }
    return out;
  }

  // ---------------------------------------------------------------- table

  private alloc(cap: number): void {
    this.cap = cap;
    this.mask = cap - 1;
    this.slots = new Int32Array(cap * STRIDE);
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
    const w = this.w, slots = this.slots, mask = this.mask;
    const w0 = w[0]!, w1 = w[1]!, w2 = w[2]!, w3 = w[3]!, w4 = w[4]!, w5 = w[5]!, w6 = w[6]!, w7 = w[7]!;
    for (let s = this.home(w); ; s = (s + 1) & mask) {
      const o = s * STRIDE;
      const g = slots[o]!;
      if (g === EMPTY) return -1;
      if (g !== DELETED && slots[o + 1] === w0 && slots[o + 2] === w1 && slots[o + 3] === w2 && slots[o + 4] === w3 &&
        slots[o + 5] === w4 && slots[o + 6] === w5 && slots[o + 7] === w6 && slots[o + 8] === w7) return s;
    }
  }

  /** A free slot for the key in `w` (known absent), its key written; grows or cleans the table first when needed. */
  private insertSlot(): number {
    if ((this.live + this.deleted + 1) * 10 > this.cap * 7) this.rehash(this.live * 10 + 10 > this.cap * 4 ? this.cap * 2 : this.cap);
    const w = this.w, mask = this.mask;
    let s = this.home(w);
    while (this.slots[s * STRIDE] !== EMPTY && this.slots[s * STRIDE] !== DELETED) s = (s + 1) & mask;
    if (this.slots[s * STRIDE] === DELETED) this.deleted--;
    this.slots.set(w, s * STRIDE + 1);
    this.live++;
    return s;
  }

  private remove(slot: number): void {
    if ((this.flags[slot]! & SCANNED) !== 0) this.scannedCount--;
    if (this.slots[slot * STRIDE] === this.current) this.listed--;
    this.slots[slot * STRIDE] = DELETED;
    this.flags[slot] = 0;
    this.live--;
    this.deleted++;
  }

  /** Re-inserts every live entry into a table of `cap` slots (drops the deleted ones). */
  private rehash(cap: number): void {
    const { slots, flags } = this;
    const old = this.cap;
    this.alloc(cap);
    for (let s = 0; s < old; s++) {
      const g = slots[s * STRIDE]!;
      if (g === EMPTY || g === DELETED) continue;
      const w = slots.subarray(s * STRIDE + 1, s * STRIDE + STRIDE); // not this.w: it holds the key being inserted
      let t = this.home(w);
      while (this.slots[t * STRIDE] !== EMPTY) t = (t + 1) & this.mask;
      this.slots.set(slots.subarray(s * STRIDE, s * STRIDE + STRIDE), t * STRIDE);
      this.flags[t] = flags[s]!;
    }
  }

  /** After ~4 billion listings: entries of the current listing become 2, the others 1. */
  private renumber(): void {
    for (let s = 0; s < this.cap; s++) {
      const g = this.slots[s * STRIDE]!;
      if (g !== EMPTY && g !== DELETED) this.slots[s * STRIDE] = g === this.current ? 2 : 1;
    }
    this.current = 2;
  }
}
