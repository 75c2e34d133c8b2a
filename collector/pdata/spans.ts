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
import { checkResource, checkScope, checkSpan, isValidUtf8, lastProblem, releaseBuffer, SPAN_MALFORMED, SPAN_OK } from './validate.js';

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
  /** Spans rejected alone (reported through partial_success): `malformed` of them plus those with an invalid id. */
  rejected: number;
  /** Of `rejected`, the spans whose bytes (or whose resource or scope header) a strict decoder refuses. */
  malformed: number;
  /** The first problem, naming the span by its index in the request ("span 3: attributes[2].value: ..."). */
  rejectReason: string;
  /** Index of the span `rejectReason` names, -1 when none was rejected. */
  rejectIndex: number;
  /** Bytes of the request that were scanned. */
  bytes: number;
}

/**
 * Scans an ExportTraceServiceRequest, validating every span completely
 * (validate.ts) without decoding it.
 *
 * Throws WireError when the request's framing is broken: a bad tag, wire type
 * or length in the ExportTraceServiceRequest, ResourceSpans or ScopeSpans
 * messages themselves (then the span boundaries cannot be trusted and the
 * request is refused whole). A span that fails is rejected alone and counted
 * in `rejected`; a resource or scope header that fails (its attributes, names,
 * schema_url) rejects every span under it, since none of them can be exported
 * under a header a backend refuses.
 *
 * `skipped` lists (ascending) the indices of spans removed before the scan
 * (the OTLP/JSON conversion rejects some), so that reasons name spans by their
 * index in the request the client sent.
 */
export function scanExportRequest(input: Uint8Array, skipped?: readonly number[]): ScanResult {
  // Spans keep a reference to a Buffer view of the request (native hex for ids).
  const buf = Buffer.isBuffer(input) ? input : Buffer.from(input.buffer, input.byteOffset, input.byteLength);
  const st = new ScanState(buf, skipped);
  const end = buf.length;
  let p = 0;
  let i = 0;
  while (p < end) {
    p = container(buf, p, end, REQUEST_NAMES, 'resource_spans');
    const t = containerTag;
    if (t === 0x0a) {
      scanResourceSpans(buf, containerStart, p, st, i);
      i++;
    }
  }
  releaseBuffer();
  return st.out;
}

class ScanState {
  readonly buf: Buffer;
  readonly out: ScanResult;
  private readonly skipped: readonly number[] | undefined;
  private skippedNext = 0;
  /** Index (in the client's request) of the next span. */
  private index = 0;
  constructor(buf: Buffer, skipped: readonly number[] | undefined) {
    this.buf = buf;
    this.out = { spans: [], rejected: 0, malformed: 0, rejectReason: '', rejectIndex: -1, bytes: buf.length };
    this.skipped = skipped;
  }
  /** The index of the span about to be looked at. */
  nextIndex(): number {
    const sk = this.skipped;
    if (sk !== undefined) while (this.skippedNext < sk.length && sk[this.skippedNext] === this.index) {
      this.skippedNext++;
      this.index++;
    }
    return this.index++;
  }
  reject(index: number, malformed: boolean, reason: string): void {
    this.out.rejected++;
    if (malformed) this.out.malformed++;
    if (this.out.rejectIndex < 0) {
      this.out.rejectIndex = index;
      this.out.rejectReason = `span ${index}: ${reason}`;
    }
  }
}

const REQUEST_NAMES = ['', 'resource_spans'];
const RESOURCE_SPANS_NAMES = ['', 'resource', 'scope_spans', 'schema_url'];
const SCOPE_SPANS_NAMES = ['', 'scope', 'spans', 'schema_url'];

/** The tag and payload start of the field container() last read. */
let containerTag = 0;
let containerStart = 0;

/**
 * Reads one field of a container message (request, ResourceSpans, ScopeSpans),
 * whose known fields are all length-delimited; returns the end of the field.
 * Throws WireError on anything that breaks framing.
 */
function container(buf: Uint8Array, p: number, end: number, names: readonly string[], what: string): number {
  const r = new WireReader(buf, p, end);
  let tag: number;
  try {
    tag = r.uint32();
  } catch {
    throw new WireError(`${what}: truncated tag`);
  }
  const fno = tag >>> 3;
  const wt = tag & 7;
  if (fno === 0) throw new WireError(`${what}: field number 0`);
  if (fno < names.length && wt !== WIRE_LEN) throw new WireError(`${what}: ${names[fno]} has wire type ${wt}, want length-delimited`);
  containerTag = tag;
  containerStart = r.pos;
  if (wt === 3 || wt === 4 || wt > 5) throw new WireError(`${what}: field ${fno} has wire type ${wt}, which is not allowed`);
  try {
    if (wt === WIRE_LEN) {
      const e = r.lenEnd();
      containerStart = r.pos;
      return e;
    }
    r.skip(wt);
    return r.pos;
  } catch (err) {
    throw new WireError(`${what}: field ${fno}: ${(err as Error).message}`);
  }
}

export interface Split {
  /** Every field but the children, as [start, end) ranges: the header re-emitted verbatim. */
  headerParts: Array<[number, number]>;
  /** The children's payloads (field 2) as start, end pairs. */
  children: number[];
  /** Why the header (field 1, checked by `check`, or the schema_url, field 3) is refused; '' when it is fine. */
  problem: string;
}

/**
 * Splits a ResourceSpans or ScopeSpans message into its header and its
 * children (field 2), checking the header's contents unless an enclosing
 * header already failed (`inherited`).
 */
export function splitContainer(buf: Buffer, start: number, end: number, names: readonly string[], label: string, what: string, check: (b: Uint8Array, s: number, e: number) => number, inherited: string): Split {
  const out: Split = { headerParts: [], children: [], problem: inherited };
  let p = start;
  while (p < end) {
    const fieldStart = p;
    p = container(buf, p, end, names, what);
    if (containerTag === 0x12) {
      out.children.push(containerStart, p);
      continue;
    }
    out.headerParts.push([fieldStart, p]);
    if (out.problem !== '') continue;
    if (containerTag === 0x0a) {
      if (check(buf, containerStart, p) < 0) out.problem = `${names[1]}: ${lastProblem()}`;
    } else if (containerTag === 0x1a) {
      if (!isValidUtf8(buf, containerStart, p)) out.problem = `invalid UTF-8 in ${label}.schema_url`;
    }
  }
  return out;
}

function scanResourceSpans(buf: Buffer, start: number, end: number, st: ScanState, ri: number): void {
  const what = `resource_spans[${ri}]`;
  const split = splitContainer(buf, start, end, RESOURCE_SPANS_NAMES, 'resource_spans', what, checkResource, '');
  const resource = new ResourceRef(joinRanges(buf, split.headerParts));
  const scopes = split.children;
  for (let i = 0; i < scopes.length; i += 2) {
    scanScopeSpans(buf, scopes[i], scopes[i + 1], resource, st, `${what}.scope_spans[${i / 2}]`, split.problem);
  }
}

function scanScopeSpans(buf: Buffer, start: number, end: number, resource: ResourceRef, st: ScanState, what: string, resourceProblem: string): void {
  const { headerParts, children: spanRanges, problem: headerProblem } = splitContainer(buf, start, end, SCOPE_SPANS_NAMES, 'scope_spans', what, checkScope, resourceProblem);
  if (headerProblem !== '') {
    for (let i = 0; i < spanRanges.length; i += 2) st.reject(st.nextIndex(), true, headerProblem);
    return;
  }
  const scope = new ScopeRef(resource, joinRanges(buf, headerParts));
  const out = st.out;
  for (let i = 0; i < spanRanges.length; i += 2) {
    const index = st.nextIndex();
    const span = new Span(buf, spanRanges[i], spanRanges[i + 1] - spanRanges[i], scope);
    const res = checkSpan(span);
    if (res === SPAN_OK) out.spans.push(span);
    else st.reject(index, res === SPAN_MALFORMED, lastProblem());
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
