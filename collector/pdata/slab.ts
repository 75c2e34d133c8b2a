/**
 * Bump allocator for edited span bytes. Processors that rewrite spans copy the
 * result into shared slabs instead of giving every span its own ArrayBuffer:
 * creating and collecting thousands of small ArrayBuffers a second costs far
 * more than the copy. A slab lives while any span that points into it does,
 * like the request buffers the receiver hands on. The first slab is allocated
 * by the first `reserve()`, so a processor that never edits a span holds none.
 */
const EMPTY = new Uint8Array(0);

export class Slab {
  /** Buffer of the last `reserve()`: the current slab, or a dedicated buffer for a large piece. */
  out: Uint8Array;
  private slab: Uint8Array;
  private pos: number;
  private readonly size: number;

  constructor(size = 64 * 1024) {
    this.size = size;
    this.slab = EMPTY;
    this.pos = size;
    this.out = EMPTY;
  }

  /**
   * Reserves n bytes and returns their offset in `out`. A piece larger than an
   * eighth of the slab gets its own buffer (offset 0) so one large span does
   * not waste a slab.
   */
  reserve(n: number): number {
    if (n > this.size >>> 3) {
      this.out = Buffer.allocUnsafeSlow(n);
      return 0;
    }
    if (this.pos + n > this.size) {
      this.slab = Buffer.allocUnsafeSlow(this.size);
      this.pos = 0;
    }
    const off = this.pos;
    this.pos = off + n;
    this.out = this.slab;
    return off;
  }
}
