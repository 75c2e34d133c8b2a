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
import { varintSize } from './wire.js';
import type { ResourceRef, ScopeRef } from './spans.js';

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
