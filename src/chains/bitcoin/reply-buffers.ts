/**
 * Reused buffers for the Bitcoin adapter's mempool listings (docs/architecture.md §5, "Mempool at
 * mainnet size").
 */

/**
 * Two buffers, grown as needed and reused, that large replies are read into in turn (a
 * mainnet-size `getrawmempool` is ~10 MB every pass): no new 10 MB allocation and copy per reply,
 * which would push the garbage collector into a full collection nearly every pass. A reply read
 * with `read` is overwritten by the next `read` unless `keep` was called; once kept, it stays
 * valid until the second reply kept after it (the adapter reads each listing against the previous
 * one).
 */
export class ReplyBuffers {
  private readonly bufs = [new Uint8Array(0), new Uint8Array(0)];
  private turn = 0;

  async read(body: ReadableStream<Uint8Array>): Promise<Uint8Array> {
    let b = this.bufs[this.turn]!;
    let n = 0;
    const reader = body.getReader();
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      if (n + value.length > b.length) {
        const grown = new Uint8Array(Math.max(2 * b.length, n + value.length, 64 * 1024));
        grown.set(b.subarray(0, n));
        b = grown;
        this.bufs[this.turn] = b;
      }
      b.set(value, n);
      n += value.length;
    }
    return b.subarray(0, n);
  }

  /** The last reply read stays valid through the next one (its reader decides: the adapter, once the listing is read). */
  keep(): void {
    this.turn ^= 1;
  }
}
