/**
 * Re-frames spans into an ExportTraceServiceRequest: spans are grouped under
 * their original resource and scope headers, and every byte of each span is
 * copied as it is. One exact-size allocation per request.
 *
 * The three OTLP export requests have the same frame (resource list = field 1;
 * resource and scope header fields, nested list = field 2 at both levels), so
 * the same code re-frames log records (ExportLogsServiceRequest) and metrics
 * (ExportMetricsServiceRequest): anything `Framed` can be encoded.
 */
import { varintSize, WireReader } from './wire.js';
import { ResourceRef, ScopeRef, Span } from './spans.js';

/** An item kept as encoded bytes under a scope: a Span, a LogRecord or a Metric. */
export interface Framed {
  scope: ScopeRef;
  buf: Uint8Array;
  off: number;
  len: number;
}

interface ScopeGroup {
  scope: ScopeRef;
  spans: Framed[];
  size: number; // payload size of the ScopeSpans message
}
interface ResourceGroup {
  resource: ResourceRef;
  scopes: ScopeGroup[];
  size: number; // payload size of the ResourceSpans message
}

function fieldSize(payload: number): number {
  // tag (field numbers 1 and 2 fit in one byte) + length varint + payload
  return 1 + varintSize(payload) + payload;
}

export function groupSpans(spans: readonly Framed[]): ResourceGroup[] {
  const byResource = new Map<ResourceRef, ResourceGroup>();
  const byScope = new Map<ScopeRef, ScopeGroup>();
  const groups: ResourceGroup[] = [];
  for (let i = 0; i < spans.length; i++) {
    const span = spans[i];
    let sg = byScope.get(span.scope);
    if (sg === undefined) {
      sg = { scope: span.scope, spans: [], size: span.scope.header.length };
      byScope.set(span.scope, sg);
      const res = span.scope.resource;
      let rg = byResource.get(res);
      if (rg === undefined) {
        rg = { resource: res, scopes: [], size: res.header.length };
        byResource.set(res, rg);
        groups.push(rg);
      }
      rg.scopes.push(sg);
    }
    sg.spans.push(span);
    sg.size += fieldSize(span.len);
  }
  return groups;
}

/** Encodes spans as an ExportTraceServiceRequest (log records and metrics as their export requests). */
export function encodeExportRequest(spans: readonly Framed[]): Uint8Array {
  const groups = groupSpans(spans);
  let total = 0;
  for (const rg of groups) {
    for (const sg of rg.scopes) rg.size += fieldSize(sg.size);
    total += fieldSize(rg.size);
  }
  const out = Buffer.allocUnsafe(total);
  let p = 0;
  const writeLen = (tag: number, n: number) => {
    out[p++] = tag;
    while (n >= 0x80) {
      out[p++] = (n & 0x7f) | 0x80;
      n >>>= 7;
    }
    out[p++] = n;
  };
  for (const rg of groups) {
    writeLen(0x0a, rg.size); // ResourceSpans: field 1, LEN
    out.set(rg.resource.header, p);
    p += rg.resource.header.length;
    for (const sg of rg.scopes) {
      writeLen(0x12, sg.size); // scope_spans: field 2, LEN
      out.set(sg.scope.header, p);
      p += sg.scope.header.length;
      for (const span of sg.spans) {
        writeLen(0x12, span.len); // spans: field 2, LEN
        out.set(span.buf.subarray(span.off, span.off + span.len), p);
        p += span.len;
      }
    }
  }
  if (p !== total) throw new Error(`encodeExportRequest: wrote ${p} bytes, sized ${total}`);
  return out;
}

/** Encoded size of the request encodeExportRequest would produce (for byte-based batching). */
export function spanWireSize(span: Framed): number {
  return 1 + varintSize(span.len) + span.len;
}

/** Every field of message buf[start, end) except its field-2 messages, and those as [start, end) pairs. */
function splitChildren(buf: Uint8Array, start: number, end: number): { header: Uint8Array; children: number[] } {
  const r = new WireReader(buf, start, end);
  const children: number[] = [];
  const parts: number[] = [];
  let total = 0;
  while (!r.done()) {
    const fieldStart = r.pos;
    const tag = r.uint32();
    if (tag === 0x12) {
      const e = r.lenEnd();
      children.push(r.pos, e);
      r.pos = e;
    } else {
      r.skip(tag & 7);
      parts.push(fieldStart, r.pos);
      total += r.pos - fieldStart;
    }
  }
  const header = new Uint8Array(total);
  for (let i = 0, p = 0; i < parts.length; i += 2) {
    header.set(buf.subarray(parts[i], parts[i + 1]), p);
    p += parts[i + 1] - parts[i];
  }
  return { header, children };
}

/**
 * The spans of an encoded ExportTraceServiceRequest, cut by its framing alone
 * (resource_spans 1 > scope_spans 2 > spans 2), under their resource and scope
 * headers, in order. Nothing is indexed or checked: a span the scanner would
 * refuse is still carried. For re-framing parts of a request already built.
 */
export function frameSpans(bytes: Uint8Array): Span[] {
  return frameItems(bytes, (buf, off, len, scope) => new Span(buf, off, len, scope));
}

/**
 * The items of any encoded OTLP export request (the three share their frame:
 * resource list 1 > scope list 2 > items 2), each made by `make` over its bytes
 * under its resource and scope headers, in order. Throws WireError when the
 * framing is broken.
 */
export function frameItems<T>(bytes: Uint8Array, make: (buf: Uint8Array, off: number, len: number, scope: ScopeRef) => T): T[] {
  const items: T[] = [];
  const r = new WireReader(bytes);
  while (!r.done()) {
    const tag = r.uint32();
    if (tag !== 0x0a) {
      r.skip(tag & 7);
      continue;
    }
    const end = r.lenEnd();
    const rs = splitChildren(bytes, r.pos, end);
    const resource = new ResourceRef(rs.header);
    for (let i = 0; i < rs.children.length; i += 2) {
      const ss = splitChildren(bytes, rs.children[i], rs.children[i + 1]);
      const scope = new ScopeRef(resource, ss.header);
      for (let j = 0; j < ss.children.length; j += 2) items.push(make(bytes, ss.children[j], ss.children[j + 1] - ss.children[j], scope));
    }
    r.pos = end;
  }
  return items;
}

/** An encoded request and how many spans it holds. */
export interface EncodedPart {
  bytes: Uint8Array;
  spans: number;
}

/**
 * Splits an encoded ExportTraceServiceRequest into two requests of half its
 * spans each (the first half first), every span under its original resource
 * and scope. Undefined when the request holds fewer than two spans. Throws
 * WireError when the framing itself is broken.
 */
export function splitExportRequest(bytes: Uint8Array): [EncodedPart, EncodedPart] | undefined {
  const spans = frameSpans(bytes);
  if (spans.length < 2) return undefined;
  const mid = spans.length >>> 1;
  const a = spans.slice(0, mid);
  const b = spans.slice(mid);
  return [
    { bytes: encodeExportRequest(a), spans: a.length },
    { bytes: encodeExportRequest(b), spans: b.length },
  ];
}
