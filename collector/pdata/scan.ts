/**
 * The frame every OTLP export request shares: a list of resource groups
 * (field 1), each a resource header plus a list of scope groups (field 2), each
 * a scope header plus a list of items (field 2): spans, log records or metrics.
 * `scanFramed` walks that frame once and hands each item's byte range to the
 * signal's indexer (logs.ts, metrics.ts); headers are kept as encoded bytes
 * shared by their items, exactly as spans.ts does for spans.
 */
import { WireReader, WIRE_LEN } from './wire.js';
import { ResourceRef, ScopeRef, joinRanges } from './spans.js';

/**
 * What a log record and a metric share: their encoded message is
 * buf[off, off+len) (a view into the request it came in, until an edit gives
 * it bytes of its own) under a shared scope. (Span has the same fields; it is
 * kept apart so the span hot path's object shape stays as it is.)
 */
export class EncodedItem {
  buf: Uint8Array;
  off: number;
  len: number;
  scope: ScopeRef;

  constructor(buf: Uint8Array, off: number, len: number, scope: ScopeRef) {
    this.buf = buf;
    this.off = off;
    this.len = len;
    this.scope = scope;
  }

  get resource(): ResourceRef {
    return this.scope.resource;
  }

  /** The encoded bytes (a view, not a copy). */
  bytes(): Uint8Array {
    return this.buf.subarray(this.off, this.off + this.len);
  }

  /** Replaces the encoded bytes after an edit; index fields are the caller's to keep right. */
  setBytes(b: Uint8Array): void {
    this.buf = b;
    this.off = 0;
    this.len = b.length;
  }
}

export interface FramedScan<T> {
  items: T[];
  /** Items dropped because they are invalid; reported through partial_success. */
  rejected: number;
  rejectReason: string;
  /** Bytes of the request that were scanned. */
  bytes: number;
}

/**
 * Returns the indexed item, or a string saying why the item is invalid. Throws
 * WireError when the bytes are not well-formed protobuf (the whole request is
 * then refused).
 */
export type Indexer<T> = (buf: Buffer, off: number, len: number, scope: ScopeRef) => T | string;

/** Scans an export request of any signal. Throws WireError when the frame is malformed. */
export function scanFramed<T>(input: Uint8Array, index: Indexer<T>): FramedScan<T> {
  const buf = Buffer.isBuffer(input) ? input : Buffer.from(input.buffer, input.byteOffset, input.byteLength);
  const out: FramedScan<T> = { items: [], rejected: 0, rejectReason: '', bytes: buf.length };
  const r = new WireReader(buf);
  while (!r.done()) {
    const tag = r.uint32();
    if (tag === ((1 << 3) | WIRE_LEN)) {
      const end = r.lenEnd();
      const [header, scopes] = splitList(buf, r.pos, end);
      const resource = new ResourceRef(header);
      for (let i = 0; i < scopes.length; i += 2) {
        const [sh, items] = splitList(buf, scopes[i], scopes[i + 1]);
        const scope = new ScopeRef(resource, sh);
        for (let j = 0; j < items.length; j += 2) {
          const x = index(buf, items[j], items[j + 1] - items[j], scope);
          if (typeof x === 'string') {
            out.rejected++;
            if (out.rejectReason === '') out.rejectReason = x;
          } else out.items.push(x);
        }
      }
      r.pos = end;
    } else r.skip(tag & 7);
  }
  return out;
}

/** Splits a message into its header (every field but field 2, re-joined) and the ranges of its field-2 entries. */
function splitList(buf: Uint8Array, start: number, end: number): [Uint8Array, number[]] {
  const r = new WireReader(buf, start, end);
  const headerParts: Array<[number, number]> = [];
  const ranges: number[] = [];
  while (!r.done()) {
    const fieldStart = r.pos;
    const tag = r.uint32();
    if (tag === ((2 << 3) | WIRE_LEN)) {
      const e = r.lenEnd();
      ranges.push(r.pos, e);
      r.pos = e;
    } else {
      r.skip(tag & 7);
      headerParts.push([fieldStart, r.pos]);
    }
  }
  return [joinRanges(buf, headerParts), ranges];
}
