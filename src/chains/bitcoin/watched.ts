/**
 * `WatchedScripts`: the output scripts (scriptPubKeys) Kassa is waiting for, each with its deposit
 * address, built for matching every output of every block against ~1,000,000 open deposit scripts.
 *
 * A `ByteTable` (src/chains/byte-table.ts) keyed by the script bytes, the address as the value: no
 * per-script JS object, string or buffer. Matching (`hasAt`) hashes the output in place and
 * allocates nothing; the address is decoded only for a match (`addressOf`). About 100 bytes per
 * 22-byte script with a 44-character address at 1,000,000 scripts: the 66-byte record, 16 bytes of
 * per-entry arrays, 17 of hash slots (test/chains/watched-set-memory.test.ts measures 106).
 */
import { ByteTable } from '../byte-table.ts';

function hexToBytes(hex: string): Uint8Array {
  if (hex.length % 2 !== 0 || !/^[0-9a-fA-F]*$/.test(hex)) throw new TypeError('script hex must be an even-length hex string');
  return Buffer.from(hex, 'hex');
}

const bytesOf = (script: Uint8Array | string): Uint8Array => (typeof script === 'string' ? hexToBytes(script) : script);

export class WatchedScripts {
  private readonly table: ByteTable;

  /** `expected`: scripts to size the set for. */
  constructor(expected = 0) {
    this.table = new ByteTable(expected, 64);
  }

  /** Number of scripts in the set. */
  get size(): number {
    return this.table.size;
  }

  /** Bytes held by the typed arrays and slabs backing the set. */
  get byteLength(): number {
    return this.table.byteLength;
  }

  /** Adds a script (bytes or hex) with the deposit address it pays. Returns false if it was already present. */
  add(script: Uint8Array | string, address = ''): boolean {
    const s = bytesOf(script);
    const n = Buffer.byteLength(address);
    const e = this.table.add(s, 0, s.length, n);
    if (e < 0) return false;
    if (n > 0) this.table.slab(e).write(address, this.table.valueStart(e), n, 'utf8');
    return true;
  }

  /** True if the script (bytes or hex) is in the set. */
  has(script: Uint8Array | string): boolean {
    const s = bytesOf(script);
    return this.table.find(s, 0, s.length) >= 0;
  }

  /**
   * True if `buf[off, off+len)` is a watched script. The scanner's hot path: no allocation, no
   * copy of the script.
   */
  hasAt(buf: Uint8Array, off: number, len: number): boolean {
    return this.table.find(buf, off, len) >= 0;
  }

  /** The deposit address added with the script; undefined if the script is not watched ('' if added without one). */
  addressOf(script: Uint8Array): string | undefined {
    const e = this.table.find(script, 0, script.length);
    if (e < 0) return undefined;
    const start = this.table.valueStart(e);
    return this.table.slab(e).toString('utf8', start, start + this.table.valueLength(e));
  }

  /** Removes a script. Returns false if it was not present. */
  remove(script: Uint8Array | string): boolean {
    const s = bytesOf(script);
    const e = this.table.find(s, 0, s.length);
    if (e < 0) return false;
    this.table.removeAt(e);
    return true;
  }

  clear(): void {
    this.table.clear();
  }

  /** Iterates over copies of the watched scripts (order unspecified). */
  *scripts(): IterableIterator<Uint8Array> {
    for (let e = 0; e < this.table.size; e++) {
      const start = this.table.keyStart(e);
      yield this.table.slab(e).slice(start, start + this.table.keyLength(e));
    }
  }
}
