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
import { scanExportRequest, type ScanResult } from './spans.js';
import { MAX_ANY_VALUE_DEPTH } from './validate.js';

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

/** JS nesting (objects and arrays) allowed inside one span or header: AnyValue nesting is checked exactly by the scanner after conversion. */
const MAX_JSON_DEPTH = 4 * MAX_ANY_VALUE_DEPTH + 16;

type JsonKind = 'string' | 'int64' | 'uint32' | 'int32' | 'fixed32' | 'bool' | 'double' | 'bytes' | 'object' | 'array';

/** What each OTLP/JSON trace field must hold (names are unique across the trace messages but for `flags`, fixed32 in both). */
const KINDS: Record<string, JsonKind> = {
  traceState: 'string',
  name: 'string',
  key: 'string',
  stringValue: 'string',
  message: 'string',
  version: 'string',
  schemaUrl: 'string',
  intValue: 'int64',
  startTimeUnixNano: 'int64',
  endTimeUnixNano: 'int64',
  timeUnixNano: 'int64',
  droppedAttributesCount: 'uint32',
  droppedEventsCount: 'uint32',
  droppedLinksCount: 'uint32',
  kind: 'int32',
  code: 'int32',
  flags: 'fixed32',
  boolValue: 'bool',
  doubleValue: 'double',
  bytesValue: 'bytes',
  value: 'object',
  arrayValue: 'object',
  kvlistValue: 'object',
  status: 'object',
  resource: 'object',
  scope: 'object',
  attributes: 'array',
  events: 'array',
  links: 'array',
  values: 'array',
};

const INT_TEXT = /^-?[0-9]+$/;
const BASE64 = /^[A-Za-z0-9+/_-]*={0,2}$/;

/** Why a JSON value does not fit its field, or '' when it does. */
function kindProblem(kind: JsonKind, v: unknown): string {
  switch (kind) {
    case 'string':
      return typeof v === 'string' ? '' : 'a string expected';
    case 'bool':
      return typeof v === 'boolean' ? '' : 'true or false expected';
    case 'object':
      return v !== null && typeof v === 'object' && !Array.isArray(v) ? '' : 'an object expected';
    case 'array':
      return Array.isArray(v) ? '' : 'an array expected';
    case 'bytes':
      return typeof v === 'string' && BASE64.test(v) ? '' : 'base64 text expected';
    case 'double':
      if (typeof v === 'number') return '';
      return typeof v === 'string' && (v === 'NaN' || v === 'Infinity' || v === '-Infinity' || (v.trim() !== '' && Number.isFinite(Number(v)))) ? '' : 'a number expected';
    default: {
      let n: bigint;
      if (typeof v === 'number' && Number.isInteger(v)) n = BigInt(v);
      else if (typeof v === 'string' && INT_TEXT.test(v)) n = BigInt(v);
      else return 'an integer expected';
      const [lo, hi] = kind === 'int64' ? [-(2n ** 63n), 2n ** 64n - 1n] : kind === 'int32' ? [-(2n ** 31n), 2n ** 31n - 1n] : [0n, 2n ** 32n - 1n];
      return n >= lo && n <= hi ? '' : 'integer out of range';
    }
  }
}

/**
 * Rewrites one OTLP/JSON span or header into what protobufjs fromObject
 * expects (hex ids -> bytes, camelCase keys), checking every known field's
 * type on the way: protobufjs would coerce a wrong one silently (a number
 * into a string field, "abc" into int64 0). Throws WireError naming the path.
 */
function prepareJson(v: unknown, key: string, path: string, depth: number): unknown {
  if (depth > MAX_JSON_DEPTH) throw new WireError(`${path}: nested deeper than ${MAX_JSON_DEPTH} levels`);
  const kind = KINDS[key];
  if (kind !== undefined && v !== null) {
    const problem = kindProblem(kind, v);
    if (problem !== '') throw new WireError(`${path}: ${problem}`);
  }
  if (Array.isArray(v)) return v.map((x, i) => prepareJson(x, '', `${path}[${i}]`, depth + 1));
  if (v !== null && typeof v === 'object') {
    const out: Record<string, unknown> = {};
    for (const [k, x] of Object.entries(v as Record<string, unknown>)) {
      const ck = camel(k);
      const at = path === '' ? ck : `${path}.${ck}`;
      out[ck] = ID_FIELDS.has(k) ? hexId(x, at) : prepareJson(x, ck, at, depth + 1);
    }
    return out;
  }
  return v;
}

function hexId(v: unknown, path: string): Buffer {
  if (typeof v !== 'string' || !/^([0-9a-fA-F]{2})*$/.test(v)) throw new WireError(`${path}: ids must be hex strings in OTLP/JSON`);
  return Buffer.from(v, 'hex');
}

function asObject(v: unknown, path: string): Record<string, unknown> {
  if (v === null || typeof v !== 'object' || Array.isArray(v)) throw new WireError(`invalid OTLP/JSON: ${path} must be an object`);
  return v as Record<string, unknown>;
}

function asList(v: unknown, path: string): unknown[] {
  if (v === undefined || v === null) return [];
  if (!Array.isArray(v)) throw new WireError(`invalid OTLP/JSON: ${path} must be an array`);
  return v;
}

function field(o: Record<string, unknown>, camelName: string, snake: string): unknown {
  return o[camelName] !== undefined ? o[camelName] : o[snake];
}

/** An OTLP/JSON request converted to protobuf, with the spans the conversion itself rejected. */
export interface JsonConversion {
  bytes: Uint8Array;
  /** Indices (in request order, ascending) of the spans left out. */
  skipped: number[];
  /** The first of them, as "span N: path: problem". */
  firstProblem: string;
}

/**
 * OTLP/JSON text -> ExportTraceServiceRequest protobuf bytes, span by span:
 * a span (or a resource / scope header, then all its spans) whose values do
 * not fit the schema is left out and reported, the rest converted. Throws
 * WireError when the text is not JSON or the request's structure (the
 * resourceSpans / scopeSpans / spans lists) is broken.
 */
export function convertJsonRequest(text: string | Uint8Array): JsonConversion {
  let parsed: unknown;
  try {
    parsed = JSON.parse(typeof text === 'string' ? text : Buffer.from(text.buffer, text.byteOffset, text.length).toString('utf8'));
  } catch (err) {
    throw new WireError(`invalid JSON: ${(err as Error).message}`);
  }
  const req = asObject(parsed, 'the body (an ExportTraceServiceRequest)');
  const skipped: number[] = [];
  let firstProblem = '';
  let index = 0;
  const reject = (n: number, why: string) => {
    if (firstProblem === '') firstProblem = `span ${index}: ${why}`;
    for (let k = 0; k < n; k++) skipped.push(index++);
  };
  const resourceSpans = asList(field(req, 'resourceSpans', 'resource_spans'), 'resourceSpans').map((rsv, ri) => {
    const rs = asObject(rsv, `resourceSpans[${ri}]`);
    const out: Record<string, unknown> = {};
    let header = '';
    try {
      const r = field(rs, 'resource', 'resource');
      if (r !== undefined) out.resource = messageType('Resource').fromObject(prepareJson(r, 'resource', 'resource', 0) as Record<string, unknown>);
      const su = field(rs, 'schemaUrl', 'schema_url');
      if (su !== undefined) out.schemaUrl = prepareJson(su, 'schemaUrl', 'schemaUrl', 0);
    } catch (err) {
      header = (err as Error).message;
    }
    out.scopeSpans = asList(field(rs, 'scopeSpans', 'scope_spans'), `resourceSpans[${ri}].scopeSpans`).map((ssv, si) => {
      const ss = asObject(ssv, `resourceSpans[${ri}].scopeSpans[${si}]`);
      const spans = asList(ss.spans, `resourceSpans[${ri}].scopeSpans[${si}].spans`);
      const sOut: Record<string, unknown> = {};
      let scopeHeader = header;
      if (scopeHeader === '') {
        try {
          const sc = ss.scope;
          if (sc !== undefined) sOut.scope = messageType('InstrumentationScope').fromObject(prepareJson(sc, 'scope', 'scope', 0) as Record<string, unknown>);
          const su = field(ss, 'schemaUrl', 'schema_url');
          if (su !== undefined) sOut.schemaUrl = prepareJson(su, 'schemaUrl', 'scopeSpans.schemaUrl', 0);
        } catch (err) {
          scopeHeader = (err as Error).message;
        }
      }
      if (scopeHeader !== '') {
        reject(spans.length, scopeHeader);
        sOut.spans = [];
        return sOut;
      }
      const good: unknown[] = [];
      for (const sv of spans) {
        try {
          if (sv === null || typeof sv !== 'object' || Array.isArray(sv)) throw new WireError('a span must be an object');
          good.push(messageType('Span').fromObject(prepareJson(sv, '', '', 0) as Record<string, unknown>));
          index++;
        } catch (err) {
          reject(1, err instanceof WireError ? err.message : `invalid value: ${(err as Error).message}`);
        }
      }
      sOut.spans = good;
      return sOut;
    });
    return out;
  });
  try {
    return { bytes: ExportTraceServiceRequest.encode(ExportTraceServiceRequest.fromObject({ resourceSpans })).finish(), skipped, firstProblem };
  } catch (e) {
    throw new WireError(`invalid OTLP/JSON: ${(e as Error).message}`);
  }
}

/**
 * Scans an OTLP/JSON request (convertJsonRequest, then scanExportRequest on
 * the protobuf): spans the conversion left out count as malformed, and the
 * reason names the first rejected span of the request as the client sent it.
 */
export function scanJsonRequest(text: string | Uint8Array): ScanResult {
  const conv = convertJsonRequest(text);
  const scan = scanExportRequest(conv.bytes, conv.skipped.length > 0 ? conv.skipped : undefined);
  const n = conv.skipped.length;
  if (n > 0) {
    scan.rejected += n;
    scan.malformed += n;
    if (scan.rejectReason === '' || conv.skipped[0] < scan.rejectIndex) scan.rejectReason = conv.firstProblem;
  }
  return scan;
}

/** OTLP/JSON text -> ExportTraceServiceRequest protobuf bytes. Throws WireError on any bad input (no span left out). */
export function jsonToProtobuf(text: string | Uint8Array): Uint8Array {
  const conv = convertJsonRequest(text);
  if (conv.skipped.length > 0) throw new WireError(`invalid OTLP/JSON: ${conv.firstProblem}`);
  return conv.bytes;
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
