/**
 * OTLP/JSON <-> OTLP/protobuf conversion through protobufjs reflection.
 *
 * JSON is not the hot path (SDKs default to protobuf; the file exporter writes
 * only what sampling kept), so a reflected schema is fine here. The schema below
 * describes the OTLP trace messages (opentelemetry-proto trace/v1, common/v1,
 * resource/v1, collector/trace/v1) by field number; fields it does not list are
 * dropped on a JSON round trip, as the OTLP/JSON rules allow receivers to do.
 *
 * OTLP/JSON specifics handled here: trace and span ids are hex (other bytes
 * are base64), enums are integers, 64-bit integers may be strings or numbers,
 * field names are lowerCamelCase (snake_case is accepted too).
 *
 * protobufjs is loaded on the first conversion, not at start: a collector whose
 * clients and exporters speak protobuf never pays for it (memory, and ~20 ms
 * of start-up); the first OTLP/JSON request or file export pays the ~20 ms
 * once.
 */
import { createRequire } from 'node:module';
import type protobuf from 'protobufjs';
import { WireError, WireWriter, WIRE_VARINT } from './wire.js';

const F = (id: number, type: string, rule?: 'repeated') => (rule ? { id, type, rule } : { id, type });

const descriptor = {
  nested: {
    otlp: {
      nested: {
        AnyValue: {
          oneofs: { value: { oneof: ['stringValue', 'boolValue', 'intValue', 'doubleValue', 'arrayValue', 'kvlistValue', 'bytesValue'] } },
          fields: {
            stringValue: F(1, 'string'),
            boolValue: F(2, 'bool'),
            intValue: F(3, 'int64'),
            doubleValue: F(4, 'double'),
            arrayValue: F(5, 'ArrayValue'),
            kvlistValue: F(6, 'KeyValueList'),
            bytesValue: F(7, 'bytes'),
          },
        },
        ArrayValue: { fields: { values: F(1, 'AnyValue', 'repeated') } },
        KeyValueList: { fields: { values: F(1, 'KeyValue', 'repeated') } },
        KeyValue: { fields: { key: F(1, 'string'), value: F(2, 'AnyValue') } },
        InstrumentationScope: {
          fields: {
            name: F(1, 'string'),
            version: F(2, 'string'),
            attributes: F(3, 'KeyValue', 'repeated'),
            droppedAttributesCount: F(4, 'uint32'),
          },
        },
        Resource: {
          fields: { attributes: F(1, 'KeyValue', 'repeated'), droppedAttributesCount: F(2, 'uint32') },
        },
        ExportTraceServiceRequest: { fields: { resourceSpans: F(1, 'ResourceSpans', 'repeated') } },
        ExportTraceServiceResponse: { fields: { partialSuccess: F(1, 'ExportTracePartialSuccess') } },
        ExportTracePartialSuccess: { fields: { rejectedSpans: F(1, 'int64'), errorMessage: F(2, 'string') } },
        ResourceSpans: {
          fields: { resource: F(1, 'Resource'), scopeSpans: F(2, 'ScopeSpans', 'repeated'), schemaUrl: F(3, 'string') },
        },
        ScopeSpans: {
          fields: { scope: F(1, 'InstrumentationScope'), spans: F(2, 'Span', 'repeated'), schemaUrl: F(3, 'string') },
        },
        Span: {
          fields: {
            traceId: F(1, 'bytes'),
            spanId: F(2, 'bytes'),
            traceState: F(3, 'string'),
            parentSpanId: F(4, 'bytes'),
            flags: F(16, 'fixed32'),
            name: F(5, 'string'),
            kind: F(6, 'int32'),
            startTimeUnixNano: F(7, 'fixed64'),
            endTimeUnixNano: F(8, 'fixed64'),
            attributes: F(9, 'KeyValue', 'repeated'),
            droppedAttributesCount: F(10, 'uint32'),
            events: F(11, 'Event', 'repeated'),
            droppedEventsCount: F(12, 'uint32'),
            links: F(13, 'Link', 'repeated'),
            droppedLinksCount: F(14, 'uint32'),
            status: F(15, 'Status'),
          },
        },
        Event: {
          fields: {
            timeUnixNano: F(1, 'fixed64'),
            name: F(2, 'string'),
            attributes: F(3, 'KeyValue', 'repeated'),
            droppedAttributesCount: F(4, 'uint32'),
          },
        },
        Link: {
          fields: {
            traceId: F(1, 'bytes'),
            spanId: F(2, 'bytes'),
            traceState: F(3, 'string'),
            attributes: F(4, 'KeyValue', 'repeated'),
            droppedAttributesCount: F(5, 'uint32'),
            flags: F(6, 'fixed32'),
          },
        },
        Status: { fields: { message: F(2, 'string'), code: F(3, 'int32') } },
        RpcStatus: { fields: { code: F(1, 'int32'), message: F(2, 'string') } },
      },
    },
  },
};

let root: protobuf.Root | undefined;

/** The reflected message type, building the schema (and loading protobufjs) on first use. */
function messageType(name: string): protobuf.Type {
  root ??= (createRequire(import.meta.url)('protobufjs') as typeof protobuf).Root.fromJSON(descriptor);
  return root.lookupType(`otlp.${name}`);
}

/** A message type whose schema is built only when one of its methods is first called. */
function lazyType(name: string): protobuf.Type {
  return new Proxy({} as protobuf.Type, {
    get(_, prop) {
      const t = messageType(name);
      const v = (t as unknown as Record<string | symbol, unknown>)[prop];
      return typeof v === 'function' ? (v as (...a: unknown[]) => unknown).bind(t) : v;
    },
  });
}

export const ExportTraceServiceRequest = lazyType('ExportTraceServiceRequest');
export const ExportTraceServiceResponse = lazyType('ExportTraceServiceResponse');
export const RpcStatus = lazyType('RpcStatus');

const ID_FIELDS = new Set(['traceId', 'spanId', 'parentSpanId', 'trace_id', 'span_id', 'parent_span_id']);

function camel(k: string): string {
  return k.includes('_') ? k.replace(/_([a-z])/g, (_, c: string) => c.toUpperCase()) : k;
}

/** Rewrites an OTLP/JSON object into what protobufjs fromObject expects (hex ids -> bytes, camelCase keys). */
function prepareJson(v: unknown, key: string, path: string): unknown {
  if (Array.isArray(v)) return v.map((x, i) => prepareJson(x, key, `${path}[${i}]`));
  if (v !== null && typeof v === 'object') {
    const out: Record<string, unknown> = {};
    for (const [k, x] of Object.entries(v as Record<string, unknown>)) out[camel(k)] = prepareJson(x, k, `${path}.${camel(k)}`);
    return out;
  }
  if (ID_FIELDS.has(key)) {
    if (typeof v !== 'string' || !/^([0-9a-fA-F]{2})*$/.test(v)) {
      throw new WireError(`${path}: ids must be hex strings in OTLP/JSON`);
    }
    return Buffer.from(v, 'hex');
  }
  return v;
}

/** OTLP/JSON text -> ExportTraceServiceRequest protobuf bytes. Throws WireError on bad input. */
export function jsonToProtobuf(text: string | Uint8Array): Uint8Array {
  let parsed: unknown;
  try {
    parsed = JSON.parse(typeof text === 'string' ? text : Buffer.from(text.buffer, text.byteOffset, text.length).toString('utf8'));
  } catch (err) {
    throw new WireError(`invalid JSON: ${(err as Error).message}`);
  }
  if (parsed === null || typeof parsed !== 'object' || Array.isArray(parsed)) {
    throw new WireError('invalid OTLP/JSON: the body must be an ExportTraceServiceRequest object');
  }
  const prepared = prepareJson(parsed, '', '$') as Record<string, unknown>;
  try {
    return ExportTraceServiceRequest.encode(ExportTraceServiceRequest.fromObject(prepared)).finish();
  } catch (e) {
    throw new WireError(`invalid OTLP/JSON: ${(e as Error).message}`);
  }
}

function idsToHex(v: unknown, key: string): unknown {
  if (Array.isArray(v)) return v.map((x) => idsToHex(x, key));
  if (v instanceof Uint8Array) return ID_FIELDS.has(key) ? Buffer.from(v).toString('hex') : Buffer.from(v).toString('base64');
  if (v !== null && typeof v === 'object') {
    const out: Record<string, unknown> = {};
    for (const [k, x] of Object.entries(v as Record<string, unknown>)) out[k] = idsToHex(x, k);
    return out;
  }
  return v;
}

/** ExportTraceServiceRequest protobuf bytes -> OTLP/JSON object (hex ids, string int64s, integer enums). */
export function protobufToJsonObject(bytes: Uint8Array): Record<string, unknown> {
  const msg = ExportTraceServiceRequest.decode(bytes);
  const obj = ExportTraceServiceRequest.toObject(msg, { longs: String, enums: Number, bytes: Buffer as unknown as typeof String, defaults: false, oneofs: false });
  return idsToHex(obj, '') as Record<string, unknown>;
}

export function protobufToJson(bytes: Uint8Array): string {
  return JSON.stringify(protobufToJsonObject(bytes));
}

/** Encodes a google.rpc.Status (for HTTP error bodies). */
export function encodeRpcStatus(code: number, message: string): Uint8Array {
  const w = new WireWriter(16 + message.length * 3);
  if (code !== 0) {
    w.tag(1, WIRE_VARINT);
    if (code < 0) w.int64(BigInt(code)); // int32: negative values take ten bytes
    else w.uint32(code);
  }
  if (message !== '') w.stringField(2, message);
  return w.finish();
}
