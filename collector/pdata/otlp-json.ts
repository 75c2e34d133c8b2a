/**
 * OTLP/JSON <-> OTLP/protobuf conversion through protobufjs reflection.
 *
 * JSON is not the hot path (SDKs default to protobuf; the file exporter writes
 * only what sampling kept), so a reflected schema is fine here. The schema below
 * describes the OTLP messages of all three signals (opentelemetry-proto trace/v1,
 * logs/v1, metrics/v1, common/v1, resource/v1 and their collector services) by
 * field number; fields it does not list are dropped on a JSON round trip, as the
 * OTLP/JSON rules allow receivers to do.
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
        ...logsDescriptor(),
        ...metricsDescriptor(),
      },
    },
  },
};

/** opentelemetry-proto logs/v1 and collector/logs/v1, by field number. */
function logsDescriptor(): Record<string, unknown> {
  return {
    ExportLogsServiceRequest: { fields: { resourceLogs: F(1, 'ResourceLogs', 'repeated') } },
    ExportLogsServiceResponse: { fields: { partialSuccess: F(1, 'ExportLogsPartialSuccess') } },
    ExportLogsPartialSuccess: { fields: { rejectedLogRecords: F(1, 'int64'), errorMessage: F(2, 'string') } },
    ResourceLogs: { fields: { resource: F(1, 'Resource'), scopeLogs: F(2, 'ScopeLogs', 'repeated'), schemaUrl: F(3, 'string') } },
    ScopeLogs: { fields: { scope: F(1, 'InstrumentationScope'), logRecords: F(2, 'LogRecord', 'repeated'), schemaUrl: F(3, 'string') } },
    LogRecord: {
      fields: {
        timeUnixNano: F(1, 'fixed64'),
        observedTimeUnixNano: F(11, 'fixed64'),
        severityNumber: F(2, 'int32'),
        severityText: F(3, 'string'),
        body: F(5, 'AnyValue'),
        attributes: F(6, 'KeyValue', 'repeated'),
        droppedAttributesCount: F(7, 'uint32'),
        flags: F(8, 'fixed32'),
        traceId: F(9, 'bytes'),
        spanId: F(10, 'bytes'),
        eventName: F(12, 'string'),
      },
    },
  };
}

/** opentelemetry-proto metrics/v1 and collector/metrics/v1, by field number. */
function metricsDescriptor(): Record<string, unknown> {
  const opt = (id: number, type: string) => ({ id, type, options: { proto3_optional: true } });
  return {
    ExportMetricsServiceRequest: { fields: { resourceMetrics: F(1, 'ResourceMetrics', 'repeated') } },
    ExportMetricsServiceResponse: { fields: { partialSuccess: F(1, 'ExportMetricsPartialSuccess') } },
    ExportMetricsPartialSuccess: { fields: { rejectedDataPoints: F(1, 'int64'), errorMessage: F(2, 'string') } },
    ResourceMetrics: { fields: { resource: F(1, 'Resource'), scopeMetrics: F(2, 'ScopeMetrics', 'repeated'), schemaUrl: F(3, 'string') } },
    ScopeMetrics: { fields: { scope: F(1, 'InstrumentationScope'), metrics: F(2, 'Metric', 'repeated'), schemaUrl: F(3, 'string') } },
    Metric: {
      oneofs: { data: { oneof: ['gauge', 'sum', 'histogram', 'exponentialHistogram', 'summary'] } },
      fields: {
        name: F(1, 'string'),
        description: F(2, 'string'),
        unit: F(3, 'string'),
        gauge: F(5, 'Gauge'),
        sum: F(7, 'Sum'),
        histogram: F(9, 'Histogram'),
        exponentialHistogram: F(10, 'ExponentialHistogram'),
        summary: F(11, 'Summary'),
        metadata: F(12, 'KeyValue', 'repeated'),
      },
    },
    Gauge: { fields: { dataPoints: F(1, 'NumberDataPoint', 'repeated') } },
    Sum: { fields: { dataPoints: F(1, 'NumberDataPoint', 'repeated'), aggregationTemporality: F(2, 'int32'), isMonotonic: F(3, 'bool') } },
    Histogram: { fields: { dataPoints: F(1, 'HistogramDataPoint', 'repeated'), aggregationTemporality: F(2, 'int32') } },
    ExponentialHistogram: { fields: { dataPoints: F(1, 'ExponentialHistogramDataPoint', 'repeated'), aggregationTemporality: F(2, 'int32') } },
    Summary: { fields: { dataPoints: F(1, 'SummaryDataPoint', 'repeated') } },
    NumberDataPoint: {
      oneofs: { value: { oneof: ['asDouble', 'asInt'] } },
      fields: {
        attributes: F(7, 'KeyValue', 'repeated'),
        startTimeUnixNano: F(2, 'fixed64'),
        timeUnixNano: F(3, 'fixed64'),
        asDouble: F(4, 'double'),
        asInt: F(6, 'sfixed64'),
        exemplars: F(5, 'Exemplar', 'repeated'),
        flags: F(8, 'uint32'),
      },
    },
    HistogramDataPoint: {
      oneofs: { _sum: { oneof: ['sum'] }, _min: { oneof: ['min'] }, _max: { oneof: ['max'] } },
      fields: {
        attributes: F(9, 'KeyValue', 'repeated'),
        startTimeUnixNano: F(2, 'fixed64'),
        timeUnixNano: F(3, 'fixed64'),
        count: F(4, 'fixed64'),
        sum: opt(5, 'double'),
        bucketCounts: F(6, 'fixed64', 'repeated'),
        explicitBounds: F(7, 'double', 'repeated'),
        exemplars: F(8, 'Exemplar', 'repeated'),
        flags: F(10, 'uint32'),
        min: opt(11, 'double'),
        max: opt(12, 'double'),
      },
    },
    ExponentialHistogramDataPoint: {
      oneofs: { _sum: { oneof: ['sum'] }, _min: { oneof: ['min'] }, _max: { oneof: ['max'] } },
      fields: {
        attributes: F(1, 'KeyValue', 'repeated'),
        startTimeUnixNano: F(2, 'fixed64'),
        timeUnixNano: F(3, 'fixed64'),
        count: F(4, 'fixed64'),
        sum: opt(5, 'double'),
        scale: F(6, 'sint32'),
        zeroCount: F(7, 'fixed64'),
        positive: F(8, 'Buckets'),
        negative: F(9, 'Buckets'),
        flags: F(10, 'uint32'),
        exemplars: F(11, 'Exemplar', 'repeated'),
        min: opt(12, 'double'),
        max: opt(13, 'double'),
        zeroThreshold: F(14, 'double'),
      },
    },
    Buckets: { fields: { offset: F(1, 'sint32'), bucketCounts: F(2, 'uint64', 'repeated') } },
    SummaryDataPoint: {
      fields: {
        attributes: F(7, 'KeyValue', 'repeated'),
        startTimeUnixNano: F(2, 'fixed64'),
        timeUnixNano: F(3, 'fixed64'),
        count: F(4, 'fixed64'),
        sum: F(5, 'double'),
        quantileValues: F(6, 'ValueAtQuantile', 'repeated'),
        flags: F(8, 'uint32'),
      },
    },
    ValueAtQuantile: { fields: { quantile: F(1, 'double'), value: F(2, 'double') } },
    Exemplar: {
      oneofs: { value: { oneof: ['asDouble', 'asInt'] } },
      fields: {
        filteredAttributes: F(7, 'KeyValue', 'repeated'),
        timeUnixNano: F(2, 'fixed64'),
        asDouble: F(3, 'double'),
        asInt: F(6, 'sfixed64'),
        spanId: F(4, 'bytes'),
        traceId: F(5, 'bytes'),
      },
    },
  };
}

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
function prepareJson(v: unknown, key: string, path: string, depth: number, kinds: Record<string, JsonKind> = KINDS): unknown {
  if (depth > MAX_JSON_DEPTH) throw new WireError(`${path}: nested deeper than ${MAX_JSON_DEPTH} levels`);
  const kind = kinds[key];
  if (kind !== undefined && v !== null) {
    const problem = kindProblem(kind, v);
    if (problem !== '') throw new WireError(`${path}: ${problem}`);
  }
  if (Array.isArray(v)) return v.map((x, i) => prepareJson(x, '', `${path}[${i}]`, depth + 1, kinds));
  if (v !== null && typeof v === 'object') {
    const out: Record<string, unknown> = {};
    for (const [k, x] of Object.entries(v as Record<string, unknown>)) {
      const ck = camel(k);
      const at = path === '' ? ck : `${path}.${ck}`;
      out[ck] = ID_FIELDS.has(k) ? hexId(x, at) : prepareJson(x, ck, at, depth + 1, kinds);
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

/** An OTLP/JSON request converted to protobuf, with the items (spans, log records, metrics) the conversion itself rejected. */
export interface JsonConversion {
  bytes: Uint8Array;
  /** Indices (in request order, ascending) of the items left out. */
  skipped: number[];
  /** The first of them, as "span N: path: problem". */
  firstProblem: string;
}

/** The export request message of each signal. */
export type RequestTypeName = 'ExportTraceServiceRequest' | 'ExportLogsServiceRequest' | 'ExportMetricsServiceRequest';

/** Field kinds of log records on top of the shared ones (`flags` is fixed32 there too). */
const LOG_KINDS: Record<string, JsonKind> = {
  ...KINDS,
  observedTimeUnixNano: 'int64',
  severityNumber: 'int32',
  severityText: 'string',
  eventName: 'string',
  body: 'object',
};

/**
 * Metrics reuse names with other meanings (`value` is a double in a quantile,
 * `sum` an object in a Metric and a double in a data point, `flags` a uint32):
 * those are left to protobufjs; the rest is checked as for traces.
 */
const METRIC_KINDS: Record<string, JsonKind> = (() => {
  const k: Record<string, JsonKind> = { ...KINDS, description: 'string', unit: 'string', count: 'int64', zeroCount: 'int64', asDouble: 'double', asInt: 'int64' };
  for (const name of ['value', 'flags', 'sum', 'status', 'code', 'kind']) delete k[name];
  return k;
})();

interface JsonShape {
  resources: [string, string];
  scopes: [string, string];
  items: [string, string];
  itemType: string;
  /** What an item is called in messages. */
  item: string;
  kinds: Record<string, JsonKind>;
}

const SHAPES: Record<RequestTypeName, JsonShape> = {
  ExportTraceServiceRequest: { resources: ['resourceSpans', 'resource_spans'], scopes: ['scopeSpans', 'scope_spans'], items: ['spans', 'spans'], itemType: 'Span', item: 'span', kinds: KINDS },
  ExportLogsServiceRequest: { resources: ['resourceLogs', 'resource_logs'], scopes: ['scopeLogs', 'scope_logs'], items: ['logRecords', 'log_records'], itemType: 'LogRecord', item: 'log record', kinds: LOG_KINDS },
  ExportMetricsServiceRequest: { resources: ['resourceMetrics', 'resource_metrics'], scopes: ['scopeMetrics', 'scope_metrics'], items: ['metrics', 'metrics'], itemType: 'Metric', item: 'metric', kinds: METRIC_KINDS },
};

/**
 * OTLP/JSON text -> export request protobuf bytes (traces by default, or the
 * request `type`), item by item: an item (or a resource / scope header, then
 * all its items) whose values do not fit the schema is left out and reported,
 * the rest converted. Throws WireError when the text is not JSON or the
 * request's structure (the resource / scope / item lists) is broken.
 */
export function convertJsonRequest(text: string | Uint8Array, type: RequestTypeName = 'ExportTraceServiceRequest'): JsonConversion {
  const shape = SHAPES[type];
  const [rk, rks] = shape.resources;
  const [sk, sks] = shape.scopes;
  const [ik, iks] = shape.items;
  let parsed: unknown;
  try {
    parsed = JSON.parse(typeof text === 'string' ? text : Buffer.from(text.buffer, text.byteOffset, text.length).toString('utf8'));
  } catch (err) {
    throw new WireError(`invalid JSON: ${(err as Error).message}`);
  }
  const req = asObject(parsed, `the body (an ${type})`);
  const skipped: number[] = [];
  let firstProblem = '';
  let index = 0;
  const reject = (n: number, why: string) => {
    if (firstProblem === '') firstProblem = `${shape.item} ${index}: ${why}`;
    for (let k = 0; k < n; k++) skipped.push(index++);
  };
  const resources = asList(field(req, rk, rks), rk).map((rsv, ri) => {
    const rs = asObject(rsv, `${rk}[${ri}]`);
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
    out[sk] = asList(field(rs, sk, sks), `${rk}[${ri}].${sk}`).map((ssv, si) => {
      const ss = asObject(ssv, `${rk}[${ri}].${sk}[${si}]`);
      const items = asList(field(ss, ik, iks), `${rk}[${ri}].${sk}[${si}].${ik}`);
      const sOut: Record<string, unknown> = {};
      let scopeHeader = header;
      if (scopeHeader === '') {
        try {
          const sc = ss.scope;
          if (sc !== undefined) sOut.scope = messageType('InstrumentationScope').fromObject(prepareJson(sc, 'scope', 'scope', 0) as Record<string, unknown>);
          const su = field(ss, 'schemaUrl', 'schema_url');
          if (su !== undefined) sOut.schemaUrl = prepareJson(su, 'schemaUrl', `${sk}.schemaUrl`, 0);
        } catch (err) {
          scopeHeader = (err as Error).message;
        }
      }
      if (scopeHeader !== '') {
        reject(items.length, scopeHeader);
        sOut[ik] = [];
        return sOut;
      }
      const good: unknown[] = [];
      for (const sv of items) {
        try {
          if (sv === null || typeof sv !== 'object' || Array.isArray(sv)) throw new WireError(`a ${shape.item} must be an object`);
          good.push(messageType(shape.itemType).fromObject(prepareJson(sv, '', '', 0, shape.kinds) as Record<string, unknown>));
          index++;
        } catch (err) {
          reject(1, err instanceof WireError ? err.message : `invalid value: ${(err as Error).message}`);
        }
      }
      sOut[ik] = good;
      return sOut;
    });
    return out;
  });
  try {
    const t = messageType(type);
    return { bytes: t.encode(t.fromObject({ [rk]: resources })).finish(), skipped, firstProblem };
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

/** OTLP/JSON text -> ExportTraceServiceRequest (or the request `type`) protobuf bytes. Throws WireError on any bad input (no item left out). */
export function jsonToProtobuf(text: string | Uint8Array, type: RequestTypeName = 'ExportTraceServiceRequest'): Uint8Array {
  const conv = convertJsonRequest(text, type);
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

/** ExportTraceServiceRequest (or the request `type`) protobuf bytes -> OTLP/JSON object (hex ids, string int64s, integer enums). */
export function protobufToJsonObject(bytes: Uint8Array, type: RequestTypeName = 'ExportTraceServiceRequest'): Record<string, unknown> {
  const t = messageType(type);
  const msg = t.decode(bytes);
  const obj = t.toObject(msg, { longs: String, enums: Number, bytes: Buffer as unknown as typeof String, defaults: false, oneofs: false });
  return idsToHex(obj, '') as Record<string, unknown>;
}

export function protobufToJson(bytes: Uint8Array, type: RequestTypeName = 'ExportTraceServiceRequest'): string {
  return JSON.stringify(protobufToJsonObject(bytes, type));
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
