/**
 * The span model.
 *
 * A span is kept as its encoded protobuf bytes plus a small index of the fields
 * that routing, buffering and sampling need. Attributes are decoded only when a
 * processor asks (see attributes.ts); a span that nothing changed is exported
 * by re-framing its original bytes, so fields this code does not know survive
 * byte for byte.
 *
 * Memory: a Span costs its share of the request buffer it points into plus
 * about 100 bytes of index. Resource and scope headers are shared by every span
 * of the ResourceSpans / ScopeSpans they came from.
 */
import { WireReader, WireError, WIRE_LEN, WIRE_I64, WIRE_I32, WIRE_VARINT, toHex } from './wire.js';

/** Everything of a ResourceSpans except its scope_spans, as encoded bytes. */
export class ResourceRef {
  /** resource (field 1), schema_url (field 3) and any unknown fields, re-emitted verbatim. */
  readonly header: Uint8Array;
  private _attrs: Map<string, unknown> | undefined;
  constructor(header: Uint8Array) {
    this.header = header;
    this._attrs = undefined;
  }
  /** Resource attributes as plain JS values, decoded once on first use. */
  attributes(): Map<string, unknown> {
    if (this._attrs === undefined) this._attrs = decodeResourceAttributes(this.header);
    return this._attrs;
  }
  serviceName(): string {
    const v = this.attributes().get('service.name');
    return typeof v === 'string' ? v : 'unknown_service';
  }
}

/** Everything of a ScopeSpans except its spans, as encoded bytes. */
export class ScopeRef {
  readonly resource: ResourceRef;
  readonly header: Uint8Array;
  constructor(resource: ResourceRef, header: Uint8Array) {
    this.resource = resource;
    this.header = header;
  }
}

export const STATUS_UNSET = 0;
export const STATUS_OK = 1;
export const STATUS_ERROR = 2;

export class Span {
  /** Encoded Span message is buf[off, off+len). buf may be shared with other spans. */
  buf: Uint8Array;
  off: number;
  len: number;
  /** Lowercase hex, 32 characters. */
  traceId: string;
  /** Offset of the 8 span-id bytes in buf, or -1. */
  spanIdOff: number;
  /** True when parent_span_id is set (non-empty): a span without one is a root. */
  hasParent: boolean;
  /** Unix nanoseconds as doubles (exact to ~256 ns); the exact values stay in the bytes. */
  startNs: number;
  endNs: number;
  statusCode: number;
  kind: number;
  flags: number;
  scope: ScopeRef;

  constructor(buf: Uint8Array, off: number, len: number, scope: ScopeRef) {
    this.buf = buf;
    this.off = off;
    this.len = len;
    this.traceId = '';
    this.spanIdOff = -1;
    this.hasParent = false;
    this.startNs = 0;
    this.endNs = 0;
    this.statusCode = 0;
    this.kind = 0;
    this.flags = 0;
    this.scope = scope;
  }

  get spanId(): string {
    return this.spanIdOff < 0 ? '' : toHex(this.buf, this.spanIdOff, this.spanIdOff + 8);
  }

  get resource(): ResourceRef {
    return this.scope.resource;
  }

  /** The span's encoded bytes (a view, not a copy). */
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

export interface ScanResult {
  spans: Span[];
  /** Spans dropped because they are invalid (bad ids); reported through partial_success. */
  rejected: number;
  rejectReason: string;
  /** Bytes of the request that were scanned. */
  bytes: number;
}

/**
 * Scans an ExportTraceServiceRequest. Throws WireError when the bytes are not
 * a well-formed request; individually invalid spans are counted in `rejected`.
 */
export function scanExportRequest(input: Uint8Array): ScanResult {
  // Spans keep a reference to a Buffer view of the request (native hex for ids).
  const buf = Buffer.isBuffer(input) ? input : Buffer.from(input.buffer, input.byteOffset, input.byteLength);
  const out: ScanResult = { spans: [], rejected: 0, rejectReason: '', bytes: buf.length };
  const r = new WireReader(buf);
  while (!r.done()) {
    const tag = r.uint32();
    if (tag === ((1 << 3) | WIRE_LEN)) {
      const end = r.lenEnd();
      scanResourceSpans(buf, r.pos, end, out);
      r.pos = end;
    } else {
      r.skip(tag & 7);
    }
  }
  return out;
}

function scanResourceSpans(buf: Uint8Array, start: number, end: number, out: ScanResult): void {
  const r = new WireReader(buf, start, end);
  // First pass: find the header fields (everything but scope_spans).
  const headerParts: Array<[number, number]> = [];
  const scopeRanges: Array<[number, number]> = [];
  while (!r.done()) {
    const fieldStart = r.pos;
    const tag = r.uint32();
    if (tag === ((2 << 3) | WIRE_LEN)) {
      const e = r.lenEnd();
      scopeRanges.push([r.pos, e]);
      r.pos = e;
    } else {
      r.skip(tag & 7);
      headerParts.push([fieldStart, r.pos]);
    }
  }
  const resource = new ResourceRef(joinRanges(buf, headerParts));
  for (let i = 0; i < scopeRanges.length; i++) scanScopeSpans(buf, scopeRanges[i][0], scopeRanges[i][1], resource, out);
}

function scanScopeSpans(buf: Uint8Array, start: number, end: number, resource: ResourceRef, out: ScanResult): void {
  const r = new WireReader(buf, start, end);
  const headerParts: Array<[number, number]> = [];
  const spanRanges: number[] = [];
  while (!r.done()) {
    const fieldStart = r.pos;
    const tag = r.uint32();
    if (tag === ((2 << 3) | WIRE_LEN)) {
      const e = r.lenEnd();
      spanRanges.push(r.pos, e);
      r.pos = e;
    } else {
      r.skip(tag & 7);
      headerParts.push([fieldStart, r.pos]);
    }
  }
  const scope = new ScopeRef(resource, joinRanges(buf, headerParts));
  for (let i = 0; i < spanRanges.length; i += 2) {
    const span = new Span(buf, spanRanges[i], spanRanges[i + 1] - spanRanges[i], scope);
    const problem = indexSpan(span);
    if (problem === undefined) out.spans.push(span);
    else {
      out.rejected++;
      if (out.rejectReason === '') out.rejectReason = problem;
    }
  }
}

const ZERO_TRACE = '00000000000000000000000000000000';

/**
 * Fills a span's index from its bytes. Returns a reason when the span is
 * invalid (and must be rejected), undefined when it is fine.
 */
export function indexSpan(span: Span): string | undefined {
  const buf = span.buf;
  const r = new WireReader(buf, span.off, span.off + span.len);
  let traceId = '';
  let spanIdOk = false;
  while (!r.done()) {
    const tag = r.uint32();
    switch (tag) {
      case (1 << 3) | WIRE_LEN: {
        const e = r.lenEnd();
        if (e - r.pos !== 16) return `invalid trace_id: ${e - r.pos} bytes, want 16`;
        traceId = toHex(buf, r.pos, e);
        r.pos = e;
        break;
      }
      case (2 << 3) | WIRE_LEN: {
        const e = r.lenEnd();
        if (e - r.pos !== 8) return `invalid span_id: ${e - r.pos} bytes, want 8`;
        span.spanIdOff = r.pos;
        spanIdOk = true;
        r.pos = e;
        break;
      }
      case (4 << 3) | WIRE_LEN: {
        const e = r.lenEnd();
        span.hasParent = e > r.pos;
        r.pos = e;
        break;
      }
      case (6 << 3) | WIRE_VARINT:
        span.kind = r.uint32();
        break;
      case (7 << 3) | WIRE_I64:
        span.startNs = r.fixed64Number();
        break;
      case (8 << 3) | WIRE_I64:
        span.endNs = r.fixed64Number();
        break;
      case (15 << 3) | WIRE_LEN: {
        const e = r.lenEnd();
        const sr = new WireReader(buf, r.pos, e);
        while (!sr.done()) {
          const st = sr.uint32();
          if (st === ((3 << 3) | WIRE_VARINT)) span.statusCode = sr.uint32();
          else sr.skip(st & 7);
        }
        r.pos = e;
        break;
      }
      case (16 << 3) | WIRE_I32:
        span.flags = r.fixed32();
        break;
      default:
        r.skip(tag & 7);
    }
  }
  if (traceId === '' || traceId === ZERO_TRACE) return 'invalid trace_id: missing or all zero';
  if (!spanIdOk) return 'invalid span_id: missing';
  span.traceId = traceId;
  return undefined;
}

/** Concatenates byte ranges of buf into one new array (a header made of the fields around a nested list). */
export function joinRanges(buf: Uint8Array, parts: Array<[number, number]>): Uint8Array {
  if (parts.length === 0) return EMPTY;
  if (parts.length === 1) return buf.slice(parts[0][0], parts[0][1]);
  let n = 0;
  for (const [s, e] of parts) n += e - s;
  const out = new Uint8Array(n);
  let p = 0;
  for (const [s, e] of parts) {
    out.set(buf.subarray(s, e), p);
    p += e - s;
  }
  return out;
}

const EMPTY = new Uint8Array(0);

function decodeResourceAttributes(header: Uint8Array): Map<string, unknown> {
  const attrs = new Map<string, unknown>();
  const r = new WireReader(header);
  while (!r.done()) {
    const tag = r.uint32();
    if (tag === ((1 << 3) | WIRE_LEN)) {
      const e = r.lenEnd();
      const rr = new WireReader(header, r.pos, e);
      while (!rr.done()) {
        const t = rr.uint32();
        if (t === ((1 << 3) | WIRE_LEN)) {
          const kvEnd = rr.lenEnd();
          const [k, v] = readKeyValuePlain(header, rr.pos, kvEnd);
          attrs.set(k, v);
          rr.pos = kvEnd;
        } else rr.skip(t & 7);
      }
      r.pos = e;
    } else r.skip(tag & 7);
  }
  return attrs;
}

/** Decodes one KeyValue into [key, plain JS value]. Arrays and kvlists become arrays/objects. */
export function readKeyValuePlain(buf: Uint8Array, start: number, end: number): [string, unknown] {
  const r = new WireReader(buf, start, end);
  let key = '';
  let value: unknown = undefined;
  while (!r.done()) {
    const t = r.uint32();
    if (t === ((1 << 3) | WIRE_LEN)) key = r.string();
    else if (t === ((2 << 3) | WIRE_LEN)) {
      const e = r.lenEnd();
      value = readAnyValuePlain(buf, r.pos, e);
      r.pos = e;
    } else r.skip(t & 7);
  }
  return [key, value];
}

/** AnyValue -> string | boolean | number | bigint | Uint8Array | unknown[] | Record<string, unknown> | undefined. */
export function readAnyValuePlain(buf: Uint8Array, start: number, end: number): unknown {
  const r = new WireReader(buf, start, end);
  let value: unknown = undefined;
  while (!r.done()) {
    const t = r.uint32();
    switch (t) {
      case (1 << 3) | WIRE_LEN:
        value = r.string();
        break;
      case (2 << 3) | WIRE_VARINT:
        value = r.uint32() !== 0;
        break;
      case (3 << 3) | WIRE_VARINT: {
        const v = r.int64();
        value = v >= BigInt(Number.MIN_SAFE_INTEGER) && v <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(v) : v;
        break;
      }
      case (4 << 3) | WIRE_I64:
        value = r.double();
        break;
      case (5 << 3) | WIRE_LEN: {
        const e = r.lenEnd();
        const arr: unknown[] = [];
        const ar = new WireReader(buf, r.pos, e);
        while (!ar.done()) {
          const at = ar.uint32();
          if (at === ((1 << 3) | WIRE_LEN)) {
            const ve = ar.lenEnd();
            arr.push(readAnyValuePlain(buf, ar.pos, ve));
            ar.pos = ve;
          } else ar.skip(at & 7);
        }
        value = arr;
        r.pos = e;
        break;
      }
      case (6 << 3) | WIRE_LEN: {
        const e = r.lenEnd();
        const obj: Record<string, unknown> = {};
        const kr = new WireReader(buf, r.pos, e);
        while (!kr.done()) {
          const kt = kr.uint32();
          if (kt === ((1 << 3) | WIRE_LEN)) {
            const ke = kr.lenEnd();
            const [k, v] = readKeyValuePlain(buf, kr.pos, ke);
            obj[k] = v;
            kr.pos = ke;
          } else kr.skip(kt & 7);
        }
        value = obj;
        r.pos = e;
        break;
      }
      case (7 << 3) | WIRE_LEN:
        value = r.bytes();
        break;
      default:
        r.skip(t & 7);
    }
  }
  return value;
}

export { WireError };
