/**
 * Reused memory for the bytes of buffered spans.
 *
 * A span handed to tail sampling points into the request buffer it arrived
 * in. Kept that way, every buffered span would keep its whole request buffer
 * alive, and a buffer whose spans were all spilled or decided would stay
 * allocated until V8's next major GC finds its ArrayBuffer dead: under a
 * steady spill that is tens of MB of dead buffers between GCs, which raise the
 * malloc arena's high-water mark for good (glibc does not hand the holes back).
 *
 * So the trace buffer files its own copy of each span: the bytes go into
 * 64 KiB slabs owned here, and the request buffer dies young (a scavenge frees
 * it). Each slab counts the spans that point into it; when the last one is
 * released (spilled, dropped, or re-encoded by stamping), the slab goes back
 * to a short list of spares and is reused at once, with no GC involved. Slabs
 * beyond the spares are left to the GC like any buffer.
 *
 * Span objects are reused the same way (see `release`).
 *
 * The caller must release each filed span exactly once, and only when nothing
 * will read its bytes again.
 */
import { ResourceRef, ScopeRef, Span } from '../../collector/pdata/spans.js';

export const POOL_SLAB_BYTES = 64 * 1024;
/** A span longer than this gets a buffer of its own (not pooled) so it does not waste a slab. */
const POOL_MAX_SPAN = POOL_SLAB_BYTES >>> 3;
/** Empty slabs kept for reuse (1 MiB); more are dropped. */
const MAX_SPARE = 16;
const NO_BYTES = new Uint8Array(0);
/** Released Span objects kept for reuse (~2.5 MB at most); more are left to the GC. */
const MAX_SPARE_SPANS = 16384;

class SlabRec {
  readonly buf: Uint8Array;
  /** Filed spans that still point into buf. */
  live = 0;
  constructor(buf: Uint8Array) {
    this.buf = buf;
  }
}

/** The span's bytes in a buffer of their own (Buffer#slice would return a view). */
function copyOf(span: Span): Uint8Array {
  const b = Buffer.allocUnsafeSlow(span.len);
  b.set(span.buf.subarray(span.off, span.off + span.len), 0);
  return b;
}

export class SpanPool {
  private readonly recs = new Map<Uint8Array, SlabRec>();
  private readonly spare: SlabRec[] = [];
  private cur: SlabRec | undefined = undefined;
  private pos = POOL_SLAB_BYTES;
  /** Slab of the last release (spans of one trace usually share one). */
  private last: SlabRec | undefined = undefined;
  /**
   * The scope (and resource) headers of a request are views into its buffer
   * too (`new Uint8Array(view)` copies; Buffer#slice would not): the last
   * ones seen and their copies (spans come grouped by scope, so
   * each ScopeSpans of a request is copied once and its spans share the copy).
   */
  private scopeIn: ScopeRef | undefined = undefined;
  /**
   * Span objects of released spans, reused by `file`: a buffered span lives
   * long enough to be promoted to V8's old space, and reusing the objects
   * (their number fields are written in place) keeps spilled spans from
   * leaving old-space garbage behind, which is what fragmented that space.
   */
  private readonly spans: Span[] = [];
  private scopeOut: ScopeRef | undefined = undefined;
  private resIn: ResourceRef | undefined = undefined;
  private resOut: ResourceRef | undefined = undefined;

  /** Slabs owned (in use or spare). */
  get slabCount(): number {
    return this.recs.size;
  }

  /** Spare slabs ready for reuse. */
  get spareCount(): number {
    return this.spare.length;
  }

  /**
   * A copy of `span` whose bytes live in the pool, with trace id `traceId`.
   * The span given is not changed (a fan-out may have handed the same object
   * to another consumer).
   */
  file(span: Span, traceId: string): Span {
    const n = span.len;
    const from = span.off;
    let buf: Uint8Array;
    let at: number;
    if (n > POOL_MAX_SPAN) {
      buf = copyOf(span);
      at = 0;
    } else {
      if (this.pos + n > POOL_SLAB_BYTES) this.nextSlab();
      const rec = this.cur!;
      rec.live++;
      buf = rec.buf;
      at = this.pos;
      this.pos = at + n;
      buf.set(span.buf.subarray(from, from + n), at);
    }
    const scope = span.scope === this.scopeIn ? this.scopeOut! : this.ownScope(span.scope);
    let c = this.spans.pop();
    if (c === undefined) c = new Span(buf, at, n, scope);
    else {
      c.buf = buf;
      c.off = at;
      c.len = n;
      c.scope = scope;
    }
    c.traceId = traceId;
    c.spanIdOff = span.spanIdOff < 0 ? -1 : span.spanIdOff - from + at;
    c.hasParent = span.hasParent;
    c.startNs = span.startNs;
    c.endNs = span.endNs;
    c.statusCode = span.statusCode;
    c.kind = span.kind;
    c.flags = span.flags;
    return c;
  }

  /**
   * A filed span no longer needs the bytes at `buf` (the buffer it pointed
   * into when filed). Buffers the pool does not own are ignored, and so is
   * `done` then (only Span objects of spans filed in a slab are reused). `done`: the
   * Span object itself is referenced nowhere any more (spilled or dropped, not
   * handed on), so it may be reused for a span filed later.
   */
  release(buf: Uint8Array, done?: Span): void {
    let rec = this.last;
    if (rec === undefined || rec.buf !== buf) {
      rec = this.recs.get(buf);
      if (rec === undefined) return; // not filed here (or filed in a buffer of its own): nothing to reuse
      this.last = rec;
    }
    if (done !== undefined && this.spans.length < MAX_SPARE_SPANS) {
      // A spare Span must not keep a slab alive that is dropped below.
      done.buf = NO_BYTES;
      this.spans.push(done);
    }
    if (--rec.live > 0) return;
    if (rec === this.cur) {
      // Nothing points into the current slab: fill it again from the start.
      this.pos = 0;
    } else if (this.spare.length < MAX_SPARE) {
      this.spare.push(rec);
    } else {
      this.recs.delete(buf);
      this.last = undefined;
    }
  }

  /**
   * Gives `span` (filed here, not yet released) a buffer of its own, so that
   * its bytes stay valid after the pool's copy is released.
   */
  static detach(span: Span): void {
    const own = copyOf(span);
    if (span.spanIdOff >= 0) span.spanIdOff -= span.off;
    span.setBytes(own);
  }

  private ownScope(scope: ScopeRef): ScopeRef {
    const res = scope.resource;
    if (res !== this.resIn) {
      this.resIn = res;
      this.resOut = new ResourceRef(new Uint8Array(res.header));
    }
    const own = new ScopeRef(this.resOut!, new Uint8Array(scope.header));
    this.scopeIn = scope;
    this.scopeOut = own;
    return own;
  }

  private nextSlab(): void {
    let rec = this.spare.pop();
    if (rec === undefined) {
      rec = new SlabRec(Buffer.allocUnsafeSlow(POOL_SLAB_BYTES));
      this.recs.set(rec.buf, rec);
    }
    const old = this.cur;
    this.cur = rec;
    this.pos = 0;
    // The slab being left may have emptied while it was current.
    if (old !== undefined && old.live === 0) {
      if (this.spare.length < MAX_SPARE) this.spare.push(old);
      else {
        this.recs.delete(old.buf);
        if (this.last === old) this.last = undefined;
      }
    }
  }
}
