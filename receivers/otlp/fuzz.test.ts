/**
 * Seeded, structure-aware fuzzing of the OTLP receiver (issue 17): mutated
 * valid requests over HTTP and gRPC, protobuf and JSON, through a real
 * receiver and the batch processor into a capturing sink. Properties:
 *
 * - every answer is 200 / OK, 400 / INVALID_ARGUMENT (or the size codes);
 * - partial success is exact: where the request's framing is intact, accepted
 *   + rejected = the spans in the request (summed over the run against what
 *   reached the sink), and a span known to be bad is never accepted;
 * - everything that reaches the sink, re-framed for export, decodes with
 *   protobufjs (the OTLP schema of collector/pdata/otlp-json.ts) and with the
 *   strict decoder below (wire types, lengths, field 0, ids, UTF-8 of every
 *   string by node:buffer's isUtf8, AnyValue depth), as a strict backend
 *   (protobuf-go, the Collector) would decode it.
 *
 * Seed: FUZZ_SEED (default 17); mutations per transport: FUZZ_N.
 */
import { isUtf8 } from 'node:buffer';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import * as grpc from '@grpc/grpc-js';
import { OtlpReceiver } from './receiver.js';
import { OtlpReceiverSchema } from './config.js';
import { withDefaults } from '../../config/defaults.js';
import { SinkConsumer } from '../../collector/consumertest.js';
import { Telemetry } from '../../collector/telemetry/metrics.js';
import { silentLogger } from '../../collector/telemetry/logger.js';
import { systemClock } from '../../collector/component.js';
import { batchProcessorFactory, BatchConfigSchema } from '../../processors/batch/index.js';
import { encodeExportRequest } from '../../collector/pdata/encode.js';
import { ExportTraceServiceRequest, ExportTraceServiceResponse, jsonToProtobuf } from '../../collector/pdata/otlp-json.js';
import { WireWriter } from '../../collector/pdata/wire.js';
import type { Component } from '../../collector/component.js';
import type { TracesConsumer } from '../../collector/consumer.js';

const SEED = Number(process.env.FUZZ_SEED ?? 17);
const N = Number(process.env.FUZZ_N ?? 1000);
/** Requests in flight at once (answers are checked one by one; the totals are order-independent). */
const PARALLEL = 16;
const MAX_BODY = 256 * 1024;

// ---------------------------------------------------------------- seeded randomness

function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
let rand = mulberry32(SEED);
const int = (n: number) => Math.floor(rand() * n);
const pick = <T>(xs: readonly T[]): T => xs[int(xs.length)];
const hex = (bytes: number) => Array.from({ length: bytes }, () => int(256).toString(16).padStart(2, '0')).join('');

// ---------------------------------------------------------------- valid requests

function anyValue(depth: number): Record<string, unknown> {
  const k = depth > 3 ? int(4) : int(7);
  switch (k) {
    case 0:
      return { stringValue: pick(['GET', '/api/v1/orders/{id}', 'déjà vu — 日本語 😀', '', 'x'.repeat(150) + 'é']) };
    case 1:
      return { boolValue: rand() < 0.5 };
    case 2:
      return { intValue: String(int(1e6) - 5e5) };
    case 3:
      return { doubleValue: rand() * 100 };
    case 4:
      return { arrayValue: { values: Array.from({ length: 1 + int(3) }, () => anyValue(depth + 1)) } };
    case 5:
      return { kvlistValue: { values: Array.from({ length: 1 + int(3) }, (_, i) => ({ key: `k${i}`, value: anyValue(depth + 1) })) } };
    default:
      return { bytesValue: Buffer.from(hex(5), 'hex').toString('base64') };
  }
}
const attrs = (n: number) => Array.from({ length: n }, (_, i) => ({ key: pick(['http.route', 'ключ', 'server.port', `a${i}`]), value: anyValue(1) }));

function validJson(): Record<string, unknown> {
  const now = 1_700_000_000_000_000_000n + BigInt(int(1e9));
  const span = () => ({
    traceId: hex(16),
    spanId: hex(8),
    parentSpanId: rand() < 0.5 ? hex(8) : '',
    traceState: rand() < 0.3 ? 'vendor=1' : '',
    name: pick(['GET /users/{id}', 'SELECT ünïcode', 'op']),
    kind: int(6),
    startTimeUnixNano: now.toString(),
    endTimeUnixNano: (now + BigInt(int(1e9))).toString(),
    attributes: attrs(int(6)),
    events: rand() < 0.4 ? [{ timeUnixNano: now.toString(), name: 'exception', attributes: attrs(2) }] : [],
    links: rand() < 0.3 ? [{ traceId: hex(16), spanId: hex(8), traceState: 'a=b', attributes: attrs(1), flags: 1 }] : [],
    status: { code: int(3), message: rand() < 0.3 ? 'boom ü' : '' },
    flags: int(512),
  });
  return {
    resourceSpans: Array.from({ length: 1 + int(2) }, () => ({
      resource: { attributes: [{ key: 'service.name', value: { stringValue: pick(['checkout', 'caisse-é']) } }, ...attrs(int(3))] },
      schemaUrl: 'https://opentelemetry.io/schemas/1.24.0',
      scopeSpans: Array.from({ length: 1 + int(2) }, () => ({
        scope: { name: 'lib', version: '1.0', attributes: attrs(int(2)) },
        spans: Array.from({ length: 1 + int(4) }, span),
      })),
    })),
  };
}

// ---------------------------------------------------------------- framing (test-side, independent of the scanner)

interface Framed {
  resources: Array<{ header: Uint8Array[]; scopes: Array<{ header: Uint8Array[]; spans: Uint8Array[] }> }>;
}

/** Reads a varint; returns [value, next] or undefined when cut or too long. */
function varint(b: Uint8Array, p: number, end: number): [number, number] | undefined {
  let v = 0;
  for (let i = 0; i < 10; i++) {
    if (p >= end) return undefined;
    const c = b[p++];
    if (i < 7) v += (c & 0x7f) * 2 ** (7 * i);
    else if ((c & 0x7f) !== 0) v = Infinity;
    if (c < 0x80) return [v, p];
  }
  return undefined;
}

/** Splits a container message into fields; undefined when its framing is broken. `lenFields` lists the field numbers that must be length-delimited. */
function fields(b: Uint8Array, p: number, end: number, lenFields: number[]): Array<{ no: number; start: number; body: [number, number]; end: number }> | undefined {
  const out = [];
  while (p < end) {
    const start = p;
    const t = varint(b, p, end);
    if (!t || t[0] >= 2 ** 32) return undefined;
    const no = Math.floor(t[0] / 8);
    const wt = t[0] % 8;
    p = t[1];
    if (no === 0 || (lenFields.includes(no) && wt !== 2)) return undefined;
    let body: [number, number] = [p, p];
    if (wt === 0) {
      const v = varint(b, p, end);
      if (!v) return undefined;
      p = v[1];
    } else if (wt === 1 || wt === 5) p += wt === 1 ? 8 : 4;
    else if (wt === 2) {
      const l = varint(b, p, end);
      if (!l) return undefined;
      body = [l[1], l[1] + l[0]];
      p = body[1];
    } else return undefined;
    if (p > end) return undefined;
    out.push({ no, start, body, end: p });
  }
  return out;
}

function frame(b: Uint8Array): Framed | undefined {
  const top = fields(b, 0, b.length, [1]);
  if (!top) return undefined;
  const res: Framed = { resources: [] };
  for (const f of top) {
    if (f.no !== 1) continue;
    const rsf = fields(b, f.body[0], f.body[1], [1, 2, 3]);
    if (!rsf) return undefined;
    const r = { header: [] as Uint8Array[], scopes: [] as Framed['resources'][0]['scopes'] };
    for (const g of rsf) {
      if (g.no !== 2) {
        r.header.push(b.slice(g.start, g.end));
        continue;
      }
      const ssf = fields(b, g.body[0], g.body[1], [1, 2, 3]);
      if (!ssf) return undefined;
      const s = { header: [] as Uint8Array[], spans: [] as Uint8Array[] };
      for (const h of ssf) {
        if (h.no === 2) s.spans.push(b.slice(h.body[0], h.body[1]));
        else s.header.push(b.slice(h.start, h.end));
      }
      r.scopes.push(s);
    }
    res.resources.push(r);
  }
  return res;
}

function unframe(f: Framed): Uint8Array {
  const w = new WireWriter();
  for (const r of f.resources) {
    const rm = w.beginLen(1);
    for (const h of r.header) w.raw(h);
    for (const s of r.scopes) {
      const sm = w.beginLen(2);
      for (const h of s.header) w.raw(h);
      for (const sp of s.spans) w.bytesField(2, sp);
      w.endLen(sm);
    }
    w.endLen(rm);
  }
  return Buffer.from(w.finish());
}

const spanCount = (f: Framed) => f.resources.reduce((n, r) => n + r.scopes.reduce((m, s) => m + s.spans.length, 0), 0);

// ---------------------------------------------------------------- the strict decoder a backend would be

type Kind = 'string' | 'bytes' | 'varint' | 'fixed64' | 'fixed32' | 'id16' | 'id8' | 'id8?' | 'id16?' | string;
const SCHEMA: Record<string, Record<number, Kind>> = {
  Request: { 1: 'ResourceSpans' },
  ResourceSpans: { 1: 'Resource', 2: 'ScopeSpans', 3: 'string' },
  Resource: { 1: 'KeyValue', 2: 'varint' },
  ScopeSpans: { 1: 'Scope', 2: 'Span', 3: 'string' },
  Scope: { 1: 'string', 2: 'string', 3: 'KeyValue', 4: 'varint' },
  Span: { 1: 'id16', 2: 'id8', 3: 'string', 4: 'id8?', 5: 'string', 6: 'varint', 7: 'fixed64', 8: 'fixed64', 9: 'KeyValue', 10: 'varint', 11: 'Event', 12: 'varint', 13: 'Link', 14: 'varint', 15: 'Status', 16: 'fixed32' },
  Event: { 1: 'fixed64', 2: 'string', 3: 'KeyValue', 4: 'varint' },
  Link: { 1: 'id16?', 2: 'id8?', 3: 'string', 4: 'KeyValue', 5: 'varint', 6: 'fixed32' },
  Status: { 2: 'string', 3: 'varint' },
  KeyValue: { 1: 'string', 2: 'AnyValue' },
  AnyValue: { 1: 'string', 2: 'varint', 3: 'varint', 4: 'fixed64', 5: 'ArrayValue', 6: 'KeyValueList', 7: 'bytes' },
  ArrayValue: { 1: 'AnyValue' },
  KeyValueList: { 1: 'KeyValue' },
};
const WIRE: Record<string, number> = { varint: 0, fixed64: 1, fixed32: 5 };

function strictDecode(b: Uint8Array, p: number, end: number, msg: string, depth: number): void {
  if (msg === 'AnyValue' && depth > 32) throw new Error('AnyValue deeper than 32');
  const seen = new Set<number>();
  while (p < end) {
    const t = varint(b, p, end);
    if (!t || t[0] >= 2 ** 32) throw new Error(`${msg}: bad tag`);
    const no = Math.floor(t[0] / 8);
    const wt = t[0] % 8;
    p = t[1];
    if (no === 0) throw new Error(`${msg}: field 0`);
    const kind = SCHEMA[msg][no];
    const want = kind === undefined ? wt : (WIRE[kind] ?? 2);
    if (wt !== want) throw new Error(`${msg}.${no}: wire type ${wt}, want ${want}`);
    seen.add(no);
    if (wt === 0) {
      const v = varint(b, p, end);
      if (!v) throw new Error(`${msg}.${no}: bad varint`);
      if (v[1] - p === 10 && b[v[1] - 1] > 1) throw new Error(`${msg}.${no}: varint overflow`);
      p = v[1];
    } else if (wt === 1 || wt === 5) p += wt === 1 ? 8 : 4;
    else if (wt === 2) {
      const l = varint(b, p, end);
      if (!l || l[1] + l[0] > end) throw new Error(`${msg}.${no}: length past end`);
      const [s, e] = [l[1], l[1] + l[0]];
      if (kind === 'string' && !isUtf8(b.subarray(s, e))) throw new Error(`${msg}.${no}: invalid UTF-8`);
      if (kind === 'id16' && e - s !== 16) throw new Error(`${msg}: trace_id of ${e - s} bytes`);
      if ((kind === 'id8' || kind === 'id8?') && e - s !== 8 && !(kind === 'id8?' && e === s)) throw new Error(`${msg}: span id of ${e - s} bytes`);
      if (kind === 'id16?' && e - s !== 16 && e !== s) throw new Error(`${msg}: trace id of ${e - s} bytes`);
      if (kind !== undefined && SCHEMA[kind]) strictDecode(b, s, e, kind, msg === 'AnyValue' || kind === 'AnyValue' ? depth + (kind === 'AnyValue' ? 1 : 0) : depth);
      p = e;
    } else throw new Error(`${msg}.${no}: wire type ${wt}`);
    if (p > end) throw new Error(`${msg}.${no}: cut`);
  }
  if (msg === 'Span' && (!seen.has(1) || !seen.has(2))) throw new Error('span without ids');
}

/** What a strict backend does with an exported request: throws if it would refuse it. */
function backendDecode(req: Uint8Array): number {
  strictDecode(req, 0, req.length, 'Request', 0);
  const obj = ExportTraceServiceRequest.toObject(ExportTraceServiceRequest.decode(req)) as { resourceSpans?: Array<{ scopeSpans?: Array<{ spans?: unknown[] }> }> };
  return (obj.resourceSpans ?? []).reduce((n, r) => n + (r.scopeSpans ?? []).reduce((m, s) => m + (s.spans ?? []).length, 0), 0);
}

// ---------------------------------------------------------------- mutations

function pbAnyValue(depth: number): Uint8Array {
  const w = new WireWriter();
  if (depth <= 1) w.stringField(1, 'leaf');
  else {
    const inner = pbAnyValue(depth - 1);
    const a = w.beginLen(5);
    w.bytesField(1, inner);
    w.endLen(a);
  }
  return w.finish();
}
function pbAttr(key: Uint8Array, value: Uint8Array): Uint8Array {
  const w = new WireWriter();
  const kv = w.beginLen(9);
  w.bytesField(1, key);
  w.bytesField(2, value);
  w.endLen(kv);
  return w.finish();
}
const cat = (...parts: Uint8Array[]) => Buffer.concat(parts.map((p) => Buffer.from(p)));
const BAD_UTF8 = [[0xc3, 0x28], [0xed, 0xa0, 0x80], [0xff], [0xe2, 0x82], [0xf4, 0x90, 0x80, 0x80], [0xc0, 0xaf]].map((x) => new Uint8Array(x));

/** Span mutations that keep framing intact; `bad` says whether the result must be rejected. */
const SPAN_MUTATIONS: Array<[string, (s: Uint8Array) => { bytes: Uint8Array; bad: boolean }]> = [
  ['bad UTF-8 in an attribute value', (s) => ({ bytes: cat(s, pbAttr(Buffer.from('k'), cat(new Uint8Array([0x0a, 0x03, 0x61]), pick(BAD_UTF8).subarray(0, 2)))), bad: true })],
  ['bad UTF-8 in the name', (s) => { const b = pick(BAD_UTF8); return { bytes: cat(s, new Uint8Array([0x2a, b.length]), b), bad: true }; }],
  ['field number 0', (s) => ({ bytes: cat(s, new Uint8Array([pick([0x00, 0x02, 0x05]), 0x00, 0, 0, 0])), bad: true })],
  ['group wire type', (s) => ({ bytes: cat(s, new Uint8Array([(20 << 3) | pick([3, 4, 6, 7])])), bad: true })],
  ['known field, wrong wire type', (s) => ({ bytes: cat(s, new Uint8Array([(pick([1, 2, 5, 7, 9, 15]) << 3) | 0, 0x01])), bad: true })],
  ['deep nesting', (s) => { const d = 30 + int(8); return { bytes: cat(s, pbAttr(Buffer.from('deep'), pbAnyValue(d))), bad: d > 32 }; }],
  ['very deep nesting', (s) => ({ bytes: cat(s, pbAttr(Buffer.from('deep'), pbAnyValue(1000))), bad: true })],
  ['cut', (s) => ({ bytes: s.subarray(0, int(s.length)), bad: false })],
  ['bit flip', (s) => { const c = Buffer.from(s); const i = int(c.length); c[i] ^= 1 << int(8); return { bytes: c, bad: false }; }],
  ['random byte', (s) => { const c = Buffer.from(s); c[int(c.length)] = int(256); return { bytes: c, bad: false }; }],
  ['length off by one', (s) => { const c = Buffer.from(s); for (let k = 0; k < 20; k++) { const i = int(c.length - 1); if ((c[i] & 7) === 2 && c[i] >> 3 >= 3 && c[i] >> 3 <= 15 && c[i + 1] < 0x7f && c[i + 1] > 0) { c[i + 1] += pick([1, -1]); break; } } return { bytes: c, bad: false }; }],
  ['unknown fields', (s) => ({ bytes: cat(s, new Uint8Array([0xb8, 0x06, 0x05, 0x9a, 0x06, 0x01, 0x78])), bad: false })],
];

/** Request-level mutations: framing may break. */
const REQUEST_MUTATIONS: Array<[string, (b: Uint8Array) => Uint8Array]> = [
  ['bit flips', (b) => { const c = Buffer.from(b); for (let k = 1 + int(3); k > 0; k--) c[int(c.length)] ^= 1 << int(8); return c; }],
  ['truncation', (b) => b.subarray(0, int(b.length))],
  ['inserted bytes', (b) => { const i = int(b.length); return cat(b.subarray(0, i), Buffer.from(hex(1 + int(4)), 'hex'), b.subarray(i)); }],
  ['outer length +1', (b) => { const c = Buffer.from(b); if (c[1] < 0x7f) c[1]++; return c; }],
  ['container field 0', (b) => cat(new Uint8Array([0x00, 0x01]), b)],
  ['container group', (b) => cat(b, new Uint8Array([(7 << 3) | 3]))],
];

// ---------------------------------------------------------------- the pipeline under test

class Capture implements TracesConsumer {
  readonly sink = new SinkConsumer();
  readonly exported: Uint8Array[] = [];
  async consume(spans: Parameters<SinkConsumer['consume']>[0]): Promise<void> {
    this.exported.push(encodeExportRequest(spans)); // what an exporter sends
    await this.sink.consume(spans);
  }
}

const capture = new Capture();
const telemetry = new Telemetry();
let batch: Component & TracesConsumer;
let receiver: OtlpReceiver;
let client: grpc.Client;
let base: string;
/** Spans each 200/OK answer accepted (request spans minus rejected), summed. */
let expectedAccepted = 0;
const answers = new Map<string, number>();

beforeAll(async () => {
  const settings = { id: 'otlp', logger: silentLogger(), telemetry, clock: systemClock };
  batch = batchProcessorFactory.create({ ...settings, id: 'batch' }, withDefaults(BatchConfigSchema, { timeout: '0s' }), capture) as Component & TracesConsumer;
  await batch.start?.();
  const config = withDefaults(OtlpReceiverSchema, {
    protocols: { grpc: { endpoint: '127.0.0.1:0' }, http: { endpoint: '127.0.0.1:0', max_request_body_size: MAX_BODY } },
  });
  receiver = new OtlpReceiver(settings, config, batch);
  await receiver.start();
  client = new grpc.Client(`127.0.0.1:${receiver.grpcPort}`, grpc.credentials.createInsecure());
  base = `http://127.0.0.1:${receiver.httpPort}`;
});

afterAll(async () => {
  client.close();
  await receiver.shutdown();
  await batch.shutdown();
});

interface Answer {
  status: 'ok' | 'invalid' | 'too_large';
  rejected: number;
  message: string;
}

async function sendHttp(body: Uint8Array, json: boolean): Promise<Answer> {
  const r = await fetch(`${base}/v1/traces`, { method: 'POST', headers: { 'content-type': json ? 'application/json' : 'application/x-protobuf' }, body });
  const buf = Buffer.from(await r.arrayBuffer());
  answers.set(`http ${r.status}`, (answers.get(`http ${r.status}`) ?? 0) + 1);
  if (r.status === 400) return { status: 'invalid', rejected: 0, message: '' };
  if (r.status === 413) return { status: 'too_large', rejected: 0, message: '' };
  expect(r.status, `HTTP answer ${r.status}: ${buf.toString()}`).toBe(200);
  if (json) {
    const ps = (JSON.parse(buf.toString()) as { partialSuccess?: { rejectedSpans?: string; errorMessage?: string } }).partialSuccess;
    return { status: 'ok', rejected: Number(ps?.rejectedSpans ?? 0), message: ps?.errorMessage ?? '' };
  }
  const res = ExportTraceServiceResponse.toObject(ExportTraceServiceResponse.decode(buf), { longs: Number }) as { partialSuccess?: { rejectedSpans?: number; errorMessage?: string } };
  return { status: 'ok', rejected: Number(res.partialSuccess?.rejectedSpans ?? 0), message: res.partialSuccess?.errorMessage ?? '' };
}

function sendGrpc(body: Uint8Array): Promise<Answer> {
  const id = (b: Buffer) => b;
  return new Promise((resolve) => {
    client.makeUnaryRequest('/opentelemetry.proto.collector.trace.v1.TraceService/Export', id, id, Buffer.from(body), (err: grpc.ServiceError | null, res?: Buffer) => {
      const code = err ? err.code : 0;
      answers.set(`grpc ${code}`, (answers.get(`grpc ${code}`) ?? 0) + 1);
      if (err?.code === grpc.status.INVALID_ARGUMENT) return resolve({ status: 'invalid', rejected: 0, message: '' });
      if (err?.code === grpc.status.RESOURCE_EXHAUSTED) return resolve({ status: 'too_large', rejected: 0, message: '' });
      expect(err, `gRPC answer ${err?.code} ${err?.details}`).toBeNull();
      const r = ExportTraceServiceResponse.toObject(ExportTraceServiceResponse.decode(res!), { longs: Number }) as { partialSuccess?: { rejectedSpans?: number; errorMessage?: string } };
      resolve({ status: 'ok', rejected: Number(r.partialSuccess?.rejectedSpans ?? 0), message: r.partialSuccess?.errorMessage ?? '' });
    });
  });
}

/** Sends a protobuf request and checks the answer against what the test knows of it. */
async function checkProtobuf(body: Uint8Array, send: (b: Uint8Array) => Promise<Answer>, knownBad: number, what: string): Promise<void> {
  const framed = frame(body);
  const a = await send(body);
  if (a.status === 'too_large') return;
  if (framed === undefined) {
    expect(a.status, `${what}: broken framing must be refused whole`).toBe('invalid');
    return;
  }
  expect(a.status, `${what}: intact framing must be answered with success (${a.message})`).toBe('ok');
  const n = spanCount(framed);
  expect(a.rejected, `${what}: rejected within the request`).toBeLessThanOrEqual(n);
  expect(a.rejected, `${what}: a span known to be bad was accepted`).toBeGreaterThanOrEqual(knownBad);
  if (a.rejected > 0) expect(a.message).toMatch(/^span \d+: /);
  expectedAccepted += n - a.rejected;
}

/** Valid requests to mutate copies of (building each through protobufjs would dominate the run time). */
const POOL = 48;
let jsonPool: Array<Record<string, unknown>> = [];
let pbPool: Uint8Array[] = [];
function fillPools(): void {
  jsonPool = Array.from({ length: POOL }, () => validJson());
  pbPool = jsonPool.map((j) => jsonToProtobuf(JSON.stringify(j)));
}

function mutateProtobuf(): { body: Uint8Array; knownBad: number; what: string } {
  const valid = pick(pbPool);
  if (rand() < 0.3) {
    const [name, m] = pick(REQUEST_MUTATIONS);
    return { body: m(valid), knownBad: 0, what: name };
  }
  const f = frame(valid)!;
  let knownBad = 0;
  const names: string[] = [];
  for (let k = 1 + int(2); k > 0; k--) {
    const r = pick(f.resources);
    const s = pick(r.scopes);
    const i = int(s.spans.length);
    const [name, m] = pick(SPAN_MUTATIONS);
    const out = m(s.spans[i]);
    // a span already bad stays bad only if this mutation appended to it; count each bad span once
    const wasBad = (s.spans[i] as Uint8Array & { bad?: boolean }).bad === true;
    const appended = out.bytes.length > s.spans[i].length && Buffer.from(out.bytes.subarray(0, s.spans[i].length)).equals(Buffer.from(s.spans[i]));
    const bad = out.bad || (wasBad && appended);
    s.spans[i] = Object.assign(Buffer.from(out.bytes), { bad });
    knownBad += (bad ? 1 : 0) - (wasBad ? 1 : 0);
    names.push(name);
  }
  return { body: unframe(f), knownBad, what: names.join(' + ') };
}

function mutateJson(): { text: string; spans: number; knownBad: number } {
  const obj = structuredClone(pick(jsonPool)) as { resourceSpans: Array<{ scopeSpans: Array<{ spans: Array<Record<string, unknown>> }> }> };
  const spans = obj.resourceSpans.flatMap((r) => r.scopeSpans.flatMap((s) => s.spans));
  let knownBad = 0;
  const k = int(5);
  const span = pick(spans);
  if (k === 0) {
    span.name = pick(['\ud800', '\udfff x', 'a\ud83d']); // lone surrogates: JSON-valid, not UTF-8-encodable
    knownBad = 1;
  } else if (k === 1) {
    const key = pick(['kind', 'startTimeUnixNano', 'status', 'attributes', 'name', 'traceId', 'spanId', 'flags']);
    span[key] = pick([{}, 'abc', true, [1], 1.5, -1e30]);
    knownBad = 0; // some of these are valid for some keys
  } else if (k === 2) {
    let v: unknown = { stringValue: 'x' };
    const d = 30 + int(6);
    for (let i = 1; i < d; i++) v = { arrayValue: { values: [v] } };
    span.attributes = [{ key: 'deep', value: v }];
    knownBad = d > 32 ? 1 : 0;
  } else if (k === 3) {
    span.attributes = [{ key: 'n', value: { intValue: pick(['12x', '1e3', '99999999999999999999']) } }];
    knownBad = 1;
  }
  let text = JSON.stringify(obj);
  if (k === 4) {
    // textual damage: usually invalid JSON
    const i = int(text.length);
    text = text.slice(0, i) + pick(['', '"', '{', ']', ',', 'x']) + text.slice(i + 1);
  }
  return { text, spans: spans.length, knownBad };
}

/** Spans in a parsed OTLP/JSON request (unknown keys ignored, camelCase or snake_case), undefined when its lists are broken. */
function jsonSpanCount(v: unknown): number | undefined {
  const obj = (x: unknown) => x !== null && typeof x === 'object' && !Array.isArray(x);
  const list = (o: Record<string, unknown>, a: string, b: string): unknown[] | undefined => {
    const x = o[a] !== undefined ? o[a] : o[b];
    return x === undefined || x === null ? [] : Array.isArray(x) ? x : undefined;
  };
  if (!obj(v)) return undefined;
  const rs = list(v as Record<string, unknown>, 'resourceSpans', 'resource_spans');
  if (!rs) return undefined;
  let n = 0;
  for (const r of rs) {
    if (!obj(r)) return undefined;
    const ss = list(r as Record<string, unknown>, 'scopeSpans', 'scope_spans');
    if (!ss) return undefined;
    for (const sc of ss) {
      if (!obj(sc)) return undefined;
      const sp = list(sc as Record<string, unknown>, 'spans', 'spans');
      if (!sp) return undefined;
      n += sp.length;
    }
  }
  return n;
}

describe(`fuzzing the receiver (seed ${SEED})`, () => {
  it(`protobuf over HTTP and gRPC: ${N} mutations each`, async () => {
    rand = mulberry32(SEED);
    fillPools();
    for (const [transport, send] of [['http', (b: Uint8Array) => sendHttp(b, false)], ['grpc', sendGrpc]] as const) {
      for (let i = 0; i < N; i += PARALLEL) {
        const batchOf = Array.from({ length: Math.min(PARALLEL, N - i) }, (_, j) => ({ j: i + j, ...mutateProtobuf() }));
        await Promise.all(batchOf.map((m) => checkProtobuf(m.body, send, m.knownBad, `${transport} #${m.j} ${m.what}`)));
      }
    }
  }, 60_000);

  it(`OTLP/JSON over HTTP: ${Math.round(N / 2)} mutations`, async () => {
    rand = mulberry32(SEED + 1);
    const one = async (i: number, m: ReturnType<typeof mutateJson>) => {
      const a = await sendHttp(Buffer.from(m.text), true);
      let parsed = true;
      try {
        JSON.parse(m.text);
      } catch {
        parsed = false;
      }
      const n = parsed ? jsonSpanCount(JSON.parse(m.text)) : undefined;
      if (n === undefined) {
        expect(a.status, `json #${i}: invalid JSON or a broken structure must be refused`).toBe('invalid');
        return;
      }
      expect(a.status, `json #${i}: ${a.message}`).toBe('ok');
      expect(a.rejected).toBeGreaterThanOrEqual(m.knownBad);
      expect(a.rejected).toBeLessThanOrEqual(n);
      expectedAccepted += n - a.rejected;
    };
    for (let i = 0; i < N / 2; i += PARALLEL) {
      const ms = Array.from({ length: Math.min(PARALLEL, N / 2 - i) }, () => mutateJson());
      await Promise.all(ms.map((m, j) => one(i + j, m)));
    }
  }, 60_000);

  it('every accepted span was exported, and every exported request decodes strictly', async () => {
    await batch.shutdown();
    expect(capture.sink.spanCount).toBe(expectedAccepted);
    let decoded = 0;
    for (const req of capture.exported) decoded += backendDecode(req);
    expect(decoded).toBe(expectedAccepted);
    // the run exercised every kind of answer
    expect([...answers.keys()].sort()).toEqual(expect.arrayContaining(['grpc 0', 'grpc 3', 'http 200', 'http 400']));
    expect(expectedAccepted).toBeGreaterThan(N);
  });

  it('the strict decoder used above refuses what the receiver must refuse (self-check)', () => {
    const good = jsonToProtobuf(JSON.stringify(validJson()));
    expect(() => backendDecode(good)).not.toThrow();
    const f = frame(good)!;
    for (const [name, m] of SPAN_MUTATIONS.filter(([n]) => ['bad UTF-8 in the name', 'field number 0', 'group wire type', 'known field, wrong wire type', 'very deep nesting'].includes(n))) {
      const g = frame(good)!;
      g.resources[0].scopes[0].spans[0] = Buffer.from(m(f.resources[0].scopes[0].spans[0]).bytes);
      expect(() => backendDecode(unframe(g)), name).toThrow();
    }
  });
});
