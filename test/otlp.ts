/** Helpers for tests: build OTLP requests from OTLP/JSON-shaped objects and decode them back. */
import { jsonToProtobuf, protobufToJsonObject } from '../collector/pdata/otlp-json.js';
import { scanExportRequest, type Span } from '../collector/pdata/spans.js';

export interface SpanSpec {
  traceId: string;
  spanId: string;
  parentSpanId?: string;
  name?: string;
  kind?: number;
  startMs?: number;
  durationMs?: number;
  /** Exact times in Unix nanoseconds; they win over startMs / durationMs. */
  startNs?: bigint;
  endNs?: bigint;
  status?: number;
  attributes?: Record<string, string | number | boolean>;
  traceState?: string;
}

export function kv(attrs: Record<string, string | number | boolean> = {}) {
  return Object.entries(attrs).map(([key, v]) => ({
    key,
    value:
      typeof v === 'string'
        ? { stringValue: v }
        : typeof v === 'boolean'
          ? { boolValue: v }
          : Number.isInteger(v)
            ? { intValue: String(v) }
            : { doubleValue: v },
  }));
}

export function requestJson(spans: SpanSpec[], resource: Record<string, string | number | boolean> = { 'service.name': 'checkout' }) {
  return {
    resourceSpans: [
      {
        resource: { attributes: kv(resource) },
        scopeSpans: [
          {
            scope: { name: 'test-scope', version: '1.0.0' },
            spans: spans.map((s) => {
              const start = s.startNs ?? BigInt(Math.round((s.startMs ?? 1_700_000_000_000) * 1e6));
              const end = s.endNs ?? start + BigInt(Math.round((s.durationMs ?? 10) * 1e6));
              return {
                traceId: s.traceId,
                spanId: s.spanId,
                parentSpanId: s.parentSpanId ?? '',
                name: s.name ?? 'GET /',
                kind: s.kind ?? 2,
                startTimeUnixNano: start.toString(),
                endTimeUnixNano: end.toString(),
                attributes: kv(s.attributes),
                status: { code: s.status ?? 0 },
                traceState: s.traceState ?? '',
              };
            }),
          },
        ],
      },
    ],
  };
}

/** Encoded ExportTraceServiceRequest for the given spans. */
export function requestBytes(spans: SpanSpec[], resource?: Record<string, string | number | boolean>): Uint8Array {
  return jsonToProtobuf(JSON.stringify(requestJson(spans, resource)));
}

/** Scanned Span objects, as a receiver would hand them on. */
export function makeSpans(spans: SpanSpec[], resource?: Record<string, string | number | boolean>): Span[] {
  return scanExportRequest(requestBytes(spans, resource)).spans;
}

export function decodeRequest(bytes: Uint8Array) {
  return protobufToJsonObject(bytes) as { resourceSpans?: Array<{ resource?: unknown; scopeSpans?: Array<{ spans?: Array<Record<string, unknown>> }> }> };
}

let counter = 0;
/** A fresh, valid, deterministic-per-run 16-byte trace id in hex. */
export function traceIdHex(n = ++counter): string {
  return n.toString(16).padStart(32, '0').replace(/^0/, 'a');
}
export function spanIdHex(n = ++counter): string {
  return n.toString(16).padStart(16, '0').replace(/^0/, 'b');
}
