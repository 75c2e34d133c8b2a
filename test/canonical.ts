/** Canonical per-span view of OTLP requests, to compare what a client sent with what a backend got. */
import { protobufToJsonObject, jsonToProtobuf } from '../collector/pdata/otlp-json.js';

type Obj = Record<string, unknown>;

/** Map of spanId -> canonical JSON of the span with its resource and scope. */
export function canonicalSpans(requests: Array<{ body: Uint8Array; encoding?: 'proto' | 'json' }>): Map<string, string> {
  const out = new Map<string, string>();
  for (const r of requests) {
    const bytes = r.encoding === 'json' ? jsonToProtobuf(r.body) : r.body;
    const req = protobufToJsonObject(bytes) as { resourceSpans?: Obj[] };
    for (const rs of req.resourceSpans ?? []) {
      for (const ss of (rs.scopeSpans as Obj[] | undefined) ?? []) {
        for (const span of (ss.spans as Obj[] | undefined) ?? []) {
          out.set(String(span.spanId), stable({ resource: rs.resource, scope: ss.scope, span }));
        }
      }
    }
  }
  return out;
}

function stable(v: unknown): string {
  return JSON.stringify(sortKeys(v));
}

function sortKeys(v: unknown): unknown {
  if (Array.isArray(v)) return v.map(sortKeys);
  if (v && typeof v === 'object' && !(v instanceof Uint8Array)) {
    const o = v as Obj;
    return Object.fromEntries(
      Object.keys(o)
        .sort()
        .map((k) => [k, sortKeys(o[k])]),
    );
  }
  return v;
}
