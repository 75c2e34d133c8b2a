/**
 * The frame every OTLP export request shares: a list of resource groups
 * (field 1), each a resource header plus a list of scope groups (field 2), each
 * a scope header plus a list of items (field 2): spans, log records or metrics.
 * `scanFramed` walks that frame once and hands each item's byte range to the
 * signal's indexer (logs.ts, metrics.ts); headers are kept as encoded bytes
 * shared by their items, exactly as spans.ts does for spans.
 */
import { WireReader, WireError, WIRE_LEN } from './wire.js';
import { ResourceRef, ScopeRef, joinRanges, splitContainer } from './spans.js';
import { checkResource, checkScope, releaseBuffer } from './validate.js';

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
 * Returns the indexed item, or a string saying why the item is invalid. A
 * WireError thrown for bytes inside the item rejects that item alone (the
 * frame around it was checked).
 */
export type Indexer<T> = (buf: Buffer, off: number, len: number, scope: ScopeRef) => T | string;

/**
 * Scans an export request of `signal` ('logs': ResourceLogs/ScopeLogs,
 * 'metrics': ResourceMetrics/ScopeMetrics). Resource and scope headers are
 * checked as spans' are (validate.ts `checkResource`/`checkScope`, strict
 * UTF-8 schema_url): the items under a header a strict backend would refuse
 * are rejected, each passed to `onHeaderReject` (metrics count their points
 * there), the first reason naming the group and the field. Throws WireError
 * when the frame itself is malformed (the whole request is then refused).
 */
export function scanFramed<T>(
  input: Uint8Array,
  signal: 'logs' | 'metrics',
  index: Indexer<T>,
  onHeaderReject?: (buf: Buffer, off: number, len: number) => void,
): FramedScan<T> {
  const buf = Buffer.isBuffer(input) ? input : Buffer.from(input.buffer, input.byteOffset, input.byteLength);
  const out: FramedScan<T> = { items: [], rejected: 0, rejectReason: '', bytes: buf.length };
  const resourceLabel = `resource_${signal}`;
  const scopeLabel = `scope_${signal}`;
  const resourceNames = ['', 'resource', scopeLabel, 'schema_url'];
  const scopeNames = ['', 'scope', signal === 'logs' ? 'log_records' : 'metrics', 'schema_url'];
  try {
    const r = new WireReader(buf);
    let ri = 0;
    while (!r.done()) {
      const tag = r.uint32();
      const fno = tag >>> 3;
      const wt = tag & 7;
      if (fno === 0) throw new WireError(`${resourceLabel}: field number 0`);
      if (wt === 3 || wt === 4 || wt > 5) throw new WireError(`field ${fno} has wire type ${wt}, which is not allowed`);
      if (fno !== 1) {
        r.skip(wt);
        continue;
      }
      if (wt !== WIRE_LEN) throw new WireError(`${resourceLabel} has wire type ${wt}, want length-delimited`);
      const end = r.lenEnd();
      const what = `${resourceLabel}[${ri++}]`;
      const rs = splitContainer(buf, r.pos, end, resourceNames, resourceLabel, what, checkResource, '');
      const resource = new ResourceRef(joinRanges(buf, rs.headerParts));
      const scopes = rs.children;
      for (let i = 0; i < scopes.length; i += 2) {
        const sw = `${what}.${scopeLabel}[${i / 2}]`;
        const ss = splitContainer(buf, scopes[i], scopes[i + 1], scopeNames, scopeLabel, sw, checkScope, rs.problem);
        const items = ss.children;
        if (ss.problem !== '') {
          // The whole group is refused: name where (the resource's problem is inherited by its scopes).
          const reason = `${rs.problem !== '' ? what : sw}: ${ss.problem}`;
          for (let j = 0; j < items.length; j += 2) {
            out.rejected++;
            if (out.rejectReason === '') out.rejectReason = reason;
            onHeaderReject?.(buf, items[j], items[j + 1] - items[j]);
          }
          continue;
        }
        const scope = new ScopeRef(resource, joinRanges(buf, ss.headerParts));
        for (let j = 0; j < items.length; j += 2) {
          let x: T | string;
          try {
            x = index(buf, items[j], items[j + 1] - items[j], scope);
          } catch (err) {
            if (!(err instanceof WireError)) throw err;
            x = `malformed: ${err.message}`;
          }
          if (typeof x === 'string') {
            out.rejected++;
            if (out.rejectReason === '') out.rejectReason = x;
          } else out.items.push(x);
        }
      }
      r.pos = end;
    }
  } finally {
    releaseBuffer();
  }
  return out;
}
