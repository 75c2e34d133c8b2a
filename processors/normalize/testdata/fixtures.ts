/**
 * Test fixtures: spans as the OpenTelemetry JS HTTP, pg, mysql, redis and
 * mongodb instrumentations emitted them with the OLD semantic conventions,
 * plus helpers to build and read OTLP requests with any attribute type.
 */
import { jsonToProtobuf, protobufToJsonObject } from '../../../collector/pdata/otlp-json.js';
import { scanExportRequest, type Span } from '../../../collector/pdata/spans.js';
import { encodeExportRequest } from '../../../collector/pdata/encode.js';
import { silentLogger } from '../../../collector/telemetry/logger.js';
import { Telemetry } from '../../../collector/telemetry/metrics.js';
import { FakeClock, SinkConsumer } from '../../../collector/consumertest.js';
import { withDefaults } from '../../../config/defaults.js';
import { NormalizeConfig } from '../config.js';
import { NormalizeProcessor, type NormalizeDeps } from '../processor.js';

export type Plain = string | number | boolean | Plain[] | { [k: string]: Plain } | { bytes: string };

export function anyValue(v: Plain): Record<string, unknown> {
  if (typeof v === 'string') return { stringValue: v };
  if (typeof v === 'boolean') return { boolValue: v };
  if (typeof v === 'number') return Number.isInteger(v) ? { intValue: String(v) } : { doubleValue: v };
  if (Array.isArray(v)) return { arrayValue: { values: v.map(anyValue) } };
  if ('bytes' in v && typeof v.bytes === 'string') return { bytesValue: v.bytes };
  return { kvlistValue: { values: kvs(v as Record<string, Plain>) } };
}

export function kvs(attrs: Record<string, Plain>): Array<Record<string, unknown>> {
  return Object.entries(attrs).map(([key, v]) => ({ key, value: anyValue(v) }));
}

export interface FixtureSpan {
  name: string;
  kind: number;
  attributes: Record<string, Plain>;
  events?: Array<{ name: string; attributes: Record<string, Plain> }>;
  spanId?: string;
}

let seq = 0;
export function requestFor(spans: FixtureSpan[], resource: Record<string, Plain> = { 'service.name': 'shop-api' }): Uint8Array {
  const json = {
    resourceSpans: [
      {
        resource: { attributes: kvs(resource) },
        schemaUrl: 'https://opentelemetry.io/schemas/1.9.0',
        scopeSpans: [
          {
            scope: { name: '@opentelemetry/instrumentation-http', version: '0.41.2' },
            spans: spans.map((s) => {
              seq++;
              return {
                traceId: '5b8efff798038103d269b633813fc60c',
                spanId: s.spanId ?? (0xeee19b7ec3c1b100 + seq).toString(16).padStart(16, '0').slice(-16),
                parentSpanId: '',
                name: s.name,
                kind: s.kind,
                startTimeUnixNano: '1700000000000000000',
                endTimeUnixNano: '1700000000012000000',
                attributes: kvs(s.attributes),
                events: (s.events ?? []).map((e) => ({ timeUnixNano: '1700000000005000000', name: e.name, attributes: kvs(e.attributes) })),
                status: { code: 0 },
              };
            }),
          },
        ],
      },
    ],
  };
  return jsonToProtobuf(JSON.stringify(json));
}

export function spansFor(spans: FixtureSpan[], resource?: Record<string, Plain>): Span[] {
  return scanExportRequest(requestFor(spans, resource)).spans;
}

function plainOf(v: Record<string, unknown> | undefined): Plain {
  if (v === undefined) return '';
  if ('stringValue' in v) return v.stringValue as string;
  if ('boolValue' in v) return v.boolValue as boolean;
  if ('intValue' in v) return Number(v.intValue);
  if ('doubleValue' in v) return Number(v.doubleValue);
  if ('arrayValue' in v) return ((v.arrayValue as { values?: Array<Record<string, unknown>> }).values ?? []).map(plainOf);
  if ('kvlistValue' in v) return attrsOf((v.kvlistValue as { values?: Array<{ key: string; value: Record<string, unknown> }> }).values ?? []);
  if ('bytesValue' in v) return { bytes: String(v.bytesValue) };
  return '';
}

export function attrsOf(list: Array<{ key: string; value?: Record<string, unknown> }> | undefined): Record<string, Plain> {
  const o: Record<string, Plain> = {};
  for (const kv of list ?? []) o[kv.key] = plainOf(kv.value);
  return o;
}

export interface ReadSpan {
  name: string;
  attributes: Record<string, Plain>;
  droppedAttributesCount?: number;
  events?: Array<{ name: string; attributes: Record<string, Plain> }>;
}

/** Decodes spans (through the real encoder) into names and plain attributes. */
export function readSpans(spans: Span[]): { resources: Array<Record<string, Plain>>; spans: ReadSpan[] } {
  const obj = protobufToJsonObject(encodeExportRequest(spans)) as {
    resourceSpans?: Array<{ resource?: { attributes?: Array<{ key: string; value: Record<string, unknown> }> }; scopeSpans?: Array<{ spans?: Array<Record<string, unknown>> }> }>;
  };
  const resources: Array<Record<string, Plain>> = [];
  const out: ReadSpan[] = [];
  for (const rs of obj.resourceSpans ?? []) {
    resources.push(attrsOf(rs.resource?.attributes));
    for (const ss of rs.scopeSpans ?? []) {
      for (const s of ss.spans ?? []) {
        const r: ReadSpan = { name: String(s.name ?? ''), attributes: attrsOf(s.attributes as never) };
        if (s.droppedAttributesCount) r.droppedAttributesCount = Number(s.droppedAttributesCount);
        const evs = s.events as Array<{ name?: string; attributes?: Array<{ key: string; value: Record<string, unknown> }> }> | undefined;
        if (evs && evs.length > 0) r.events = evs.map((e) => ({ name: String(e.name ?? ''), attributes: attrsOf(e.attributes) }));
        out.push(r);
      }
    }
  }
  return { resources, spans: out };
}

export interface Harness {
  proc: NormalizeProcessor;
  sink: SinkConsumer;
  telemetry: Telemetry;
  clock: FakeClock;
  run(spans: Span[]): Promise<Span[]>;
}

export function harness(config: unknown, deps: NormalizeDeps = { env: {} }): Harness {
  const telemetry = new Telemetry();
  const clock = new FakeClock();
  const sink = new SinkConsumer();
  const proc = new NormalizeProcessor(
    { id: 'normalize', logger: silentLogger(), telemetry, clock },
    withDefaults(NormalizeConfig, config),
    sink,
    deps,
  );
  return {
    proc,
    sink,
    telemetry,
    clock,
    async run(spans: Span[]) {
      sink.reset();
      await proc.consume(spans);
      return sink.spans;
    },
  };
}

export const KIND_SERVER = 2;
export const KIND_CLIENT = 3;

/** @opentelemetry/instrumentation-http (semconv 1.7 era) server span. */
export const httpServerSpan: FixtureSpan = {
  name: 'GET /api/users/12345',
  kind: KIND_SERVER,
  attributes: {
    'http.url': 'http://shop.example.com:8080/api/users/12345?page=2&token=s3cr3tT0ken',
    'http.host': 'shop.example.com:8080',
    'net.host.name': 'shop.example.com',
    'http.method': 'GET',
    'http.scheme': 'http',
    'http.target': '/api/users/12345?page=2&token=s3cr3tT0ken',
    'http.user_agent': 'Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36',
    'http.flavor': '1.1',
    'net.transport': 'ip_tcp',
    'net.host.ip': '10.1.2.3',
    'net.host.port': 8080,
    'net.peer.ip': '10.9.8.7',
    'net.peer.port': 53422,
    'http.status_code': 200,
    'http.status_text': 'OK',
    'http.route': '/api/users/:id',
  },
};

/** @opentelemetry/instrumentation-http client span. */
export const httpClientSpan: FixtureSpan = {
  name: 'POST',
  kind: KIND_CLIENT,
  attributes: {
    'http.url': 'https://payments.internal/v1/charges/9f8e7d6c5b4a39281706f5e4d3c2b1a0',
    'http.method': 'POST',
    'http.target': '/v1/charges/9f8e7d6c5b4a39281706f5e4d3c2b1a0',
    'net.peer.name': 'payments.internal',
    'net.peer.ip': '10.0.0.12',
    'net.peer.port': 443,
    'http.host': 'payments.internal:443',
    'http.status_code': 201,
    'http.status_text': 'CREATED',
    'http.flavor': '1.1',
    'http.request_content_length_uncompressed': 512,
  },
};

/** @opentelemetry/instrumentation-pg span. */
export const pgSpan: FixtureSpan = {
  name: 'pg.query:SELECT shop',
  kind: KIND_CLIENT,
  attributes: {
    'db.system': 'postgresql',
    'db.name': 'shop',
    'db.user': 'app',
    'db.connection_string': 'postgresql://db.internal:5432/shop',
    'net.peer.name': 'db.internal',
    'net.peer.port': 5432,
    'db.statement': "SELECT id, name FROM users WHERE email = 'alice@example.com'",
  },
};

/** @opentelemetry/instrumentation-mongodb span. */
export const mongoSpan: FixtureSpan = {
  name: 'mongodb.find',
  kind: KIND_CLIENT,
  attributes: {
    'db.system': 'mongodb',
    'db.name': 'shop',
    'db.mongodb.collection': 'orders',
    'db.operation': 'find',
    'net.peer.name': 'mongo.internal',
    'net.peer.port': 27017,
    'db.statement': '{"customer":"?"}',
  },
};

/** @opentelemetry/instrumentation-redis span. */
export const redisSpan: FixtureSpan = {
  name: 'redis-GET',
  kind: KIND_CLIENT,
  attributes: {
    'db.system': 'redis',
    'db.statement': 'GET session:4711',
    'db.redis.database_index': 2,
    'net.peer.name': 'redis.internal',
    'net.peer.port': 6379,
  },
};

/** An internal span no rule of the preset touches. */
export const cleanSpan: FixtureSpan = {
  name: 'render-invoice',
  kind: 1,
  attributes: {
    'invoice.currency': 'EUR',
    'invoice.lines': 3,
    'code.function': 'renderInvoice',
    'code.filepath': 'src/invoice/render.ts',
  },
};
