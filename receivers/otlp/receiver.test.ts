import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import zlib from 'node:zlib';
import * as grpc from '@grpc/grpc-js';
import { OtlpReceiver } from './receiver.js';
import { OtlpReceiverSchema } from './config.js';
import { withDefaults } from '../../config/defaults.js';
import { SinkConsumer } from '../../collector/consumertest.js';
import { Telemetry } from '../../collector/telemetry/metrics.js';
import { silentLogger } from '../../collector/telemetry/logger.js';
import { systemClock } from '../../collector/component.js';
import type { TracesConsumer } from '../../collector/consumer.js';
import type { Span } from '../../collector/pdata/spans.js';
import { MemoryLimitError, PermanentError, RetryableError } from '../../collector/errors.js';
import { ExportTraceServiceResponse, RpcStatus } from '../../collector/pdata/otlp-json.js';
import { requestBytes, requestJson } from '../../test/otlp.js';
import { WireReader } from '../../collector/pdata/wire.js';
import { MAX_CLIENT_RETRY_MS } from './status.js';

const T1 = '0af7651916cd43dd8448eb211c80319c';

/** A consumer whose behaviour each test switches. */
class Switchable implements TracesConsumer {
  sink = new SinkConsumer();
  fail: Error | undefined;
  async consume(spans: Span[]): Promise<void> {
    if (this.fail) throw this.fail;
    return this.sink.consume(spans);
  }
}

const next = new Switchable();
const telemetry = new Telemetry();
let receiver: OtlpReceiver;
let client: grpc.Client;
let base: string;

beforeAll(async () => {
  const config = withDefaults(OtlpReceiverSchema, {
    protocols: { grpc: { endpoint: '127.0.0.1:0' }, http: { endpoint: '127.0.0.1:0', max_request_body_size: 64 * 1024 } },
  });
  // These tests switch the pipeline's answer from one request to the next:
  // no refusal memory here (admission.test.ts and network.test.ts cover it).
  const admitAll = { check: () => undefined, accepted: () => undefined, refused: () => undefined };
  receiver = new OtlpReceiver({ id: 'otlp', logger: silentLogger(), telemetry, clock: systemClock }, config, next, { admission: admitAll });
  await receiver.start();
  client = new grpc.Client(`127.0.0.1:${receiver.grpcPort}`, grpc.credentials.createInsecure());
  base = `http://127.0.0.1:${receiver.httpPort}`;
});

afterAll(async () => {
  client.close();
  await receiver.shutdown();
});

function grpcExport(body: Uint8Array): Promise<{ err: grpc.ServiceError | null; res?: Buffer }> {
  const id = (b: Buffer) => b;
  return new Promise((resolve) => {
    client.makeUnaryRequest(
      '/opentelemetry.proto.collector.trace.v1.TraceService/Export',
      id,
      id,
      Buffer.from(body),
      (err: grpc.ServiceError | null, res?: Buffer) => resolve({ err, res }),
    );
  });
}

function oneSpan(spanId = 'b7ad6b7169203331') {
  return requestBytes([{ traceId: T1, spanId, attributes: { 'http.route': '/x' } }]);
}

/** Decodes google.rpc.Status details and returns the RetryInfo delay in ms, if any. */
function retryDelayMs(details: Buffer): number | undefined {
  // Status { 3: Any { 1: type_url, 2: value: RetryInfo { 1: Duration { 1: seconds, 2: nanos } } } }
  const st = new WireReader(details);
  while (!st.done()) {
    const tag = st.uint32();
    if (tag !== ((3 << 3) | 2)) {
      st.skip(tag & 7);
      continue;
    }
    const anyEnd = st.lenEnd();
    const any = new WireReader(details, st.pos, anyEnd);
    let typeUrl = '';
    let delay: number | undefined;
    while (!any.done()) {
      const t = any.uint32();
      if (t === ((1 << 3) | 2)) typeUrl = any.string();
      else if (t === ((2 << 3) | 2)) {
        const riEnd = any.lenEnd();
        const ri = new WireReader(details, any.pos, riEnd);
        any.pos = riEnd;
        ri.uint32(); // retry_delay tag
        const durEnd = ri.lenEnd();
        const dur = new WireReader(details, ri.pos, durEnd);
        let ms = 0;
        while (!dur.done()) {
          const dt = dur.uint32();
          if (dt === 8) ms += dur.uint32() * 1000;
          else if (dt === 16) ms += dur.uint32() / 1e6;
          else dur.skip(dt & 7);
        }
        delay = ms;
      } else any.skip(t & 7);
    }
    st.pos = anyEnd;
    if (typeUrl === 'type.googleapis.com/google.rpc.RetryInfo') return delay;
  }
  return undefined;
}

describe('OTLP/gRPC receiver', () => {
  it('accepts a valid request and hands every span on', async () => {
    next.sink.reset();
    const { err, res } = await grpcExport(oneSpan());
    expect(err).toBeNull();
    expect(res?.length).toBe(0); // empty ExportTraceServiceResponse: full success
    expect(next.sink.spanCount).toBe(1);
    expect(next.sink.spans[0].traceId).toBe(T1);
  });

  it('answers malformed protobuf with INVALID_ARGUMENT and keeps serving', async () => {
    const { err } = await grpcExport(new Uint8Array([0x0a, 0xff, 0xff, 0xff, 0x0f, 0x01]));
    expect(err?.code).toBe(grpc.status.INVALID_ARGUMENT);
    expect(err?.details).toMatch(/malformed ExportTraceServiceRequest/);
    expect((await grpcExport(oneSpan())).err).toBeNull();
  });

  it('answers an oversized message with RESOURCE_EXHAUSTED', async () => {
    const { err } = await grpcExport(new Uint8Array(5 * 1024 * 1024));
    expect(err?.code).toBe(grpc.status.RESOURCE_EXHAUSTED);
    expect((await grpcExport(oneSpan())).err).toBeNull();
  });

  it('rejects spans with bad ids through partial_success and passes the valid ones', async () => {
    next.sink.reset();
    const body = requestBytes([
      { traceId: T1, spanId: 'b7ad6b7169203331' },
      { traceId: '00000000000000000000000000000000', spanId: 'b7ad6b7169203332' },
    ]);
    const { err, res } = await grpcExport(body);
    expect(err).toBeNull();
    const decoded = ExportTraceServiceResponse.toObject(ExportTraceServiceResponse.decode(res!), { longs: Number }) as {
      partialSuccess: { rejectedSpans: number; errorMessage: string };
    };
    expect(decoded.partialSuccess.rejectedSpans).toBe(1);
    expect(decoded.partialSuccess.errorMessage).toMatch(/trace_id/);
    expect(next.sink.spanCount).toBe(1);
  });

  it('maps a retryable pipeline error to UNAVAILABLE with RetryInfo', async () => {
    next.fail = new RetryableError('queue full', 2000);
    const { err } = await grpcExport(oneSpan()).finally(() => (next.fail = undefined));
    expect(err?.code).toBe(grpc.status.UNAVAILABLE);
    const details = err?.metadata.get('grpc-status-details-bin')[0] as Buffer;
    expect(retryDelayMs(details)).toBe(2000);
  });

  it('maps a memory refusal to RESOURCE_EXHAUSTED with RetryInfo, and a permanent error to INVALID_ARGUMENT', async () => {
    next.fail = new MemoryLimitError('over soft limit', 1000);
    const a = await grpcExport(oneSpan());
    expect(a.err?.code).toBe(grpc.status.RESOURCE_EXHAUSTED);
    expect(retryDelayMs(a.err?.metadata.get('grpc-status-details-bin')[0] as Buffer)).toBe(1000);
    next.fail = new PermanentError('bad data');
    const b = await grpcExport(oneSpan()).finally(() => (next.fail = undefined));
    expect(b.err?.code).toBe(grpc.status.INVALID_ARGUMENT);
  });
});

async function post(body: Uint8Array | string, headers: Record<string, string>, method = 'POST', path = '/v1/traces') {
  const res = await fetch(base + path, { method, headers, body: method === 'GET' ? undefined : body });
  const buf = Buffer.from(await res.arrayBuffer());
  return { status: res.status, headers: res.headers, body: buf };
}
const PB = { 'content-type': 'application/x-protobuf' };
const JS = { 'content-type': 'application/json' };

describe('OTLP/HTTP receiver', () => {
  it('accepts protobuf, JSON and gzip bodies', async () => {
    next.sink.reset();
    expect((await post(oneSpan(), PB)).status).toBe(200);
    const json = await post(JSON.stringify(requestJson([{ traceId: T1, spanId: 'b7ad6b7169203332' }])), JS);
    expect(json.status).toBe(200);
    expect(JSON.parse(json.body.toString())).toEqual({});
    const gz = await post(zlib.gzipSync(oneSpan('b7ad6b7169203333')), { ...PB, 'content-encoding': 'gzip' });
    expect(gz.status).toBe(200);
    expect(next.sink.spans.map((s) => s.spanId)).toEqual(['b7ad6b7169203331', 'b7ad6b7169203332', 'b7ad6b7169203333']);
  });

  it('answers malformed protobuf with 400 and a protobuf google.rpc.Status', async () => {
    const r = await post(new Uint8Array([0x0a, 0xff, 0xff, 0xff, 0x0f]), PB);
    expect(r.status).toBe(400);
    expect(r.headers.get('content-type')).toBe('application/x-protobuf');
    const st = RpcStatus.decode(r.body) as unknown as { code: number; message: string };
    expect(st.code).toBe(grpc.status.INVALID_ARGUMENT);
    expect(st.message).toMatch(/malformed/);
  });

  it('answers malformed JSON with 400 and a JSON status', async () => {
    const r = await post('{"resourceSpans": [', JS);
    expect(r.status).toBe(400);
    expect(JSON.parse(r.body.toString()).message).toMatch(/invalid JSON/);
    const broken = await post(JSON.stringify({ resourceSpans: [{ scopeSpans: { spans: [] } }] }), JS);
    expect(broken.status).toBe(400);
    expect(JSON.parse(broken.body.toString()).message).toMatch(/scopeSpans must be an array/);
  });

  it('rejects a JSON span with a bad value alone (partial success), accepting the others', async () => {
    const good = requestJson([{ traceId: T1, spanId: '00f067aa0ba902b7' }]).resourceSpans[0].scopeSpans[0].spans[0];
    const spans = [good, { ...good, traceId: 'not-hex' }, { ...good, kind: 'SERVER' }, { ...good, name: '\ud800' }];
    next.sink.reset();
    const r = await post(JSON.stringify({ resourceSpans: [{ scopeSpans: [{ spans }] }] }), JS);
    expect(r.status).toBe(200);
    expect(next.sink.spanCount).toBe(1);
    const ps = JSON.parse(r.body.toString()).partialSuccess;
    expect(ps.rejectedSpans).toBe('3');
    expect(ps.errorMessage).toMatch(/^span 1: traceId: ids must be hex/);
  });

  it('answers bodies over the limit with 413, also after decompression (gzip bomb)', async () => {
    const big = await post(new Uint8Array(100 * 1024), PB);
    expect(big.status).toBe(413);
    const bomb = zlib.gzipSync(Buffer.alloc(10 * 1024 * 1024)); // ~10 KiB compressed, 10 MiB inflated
    expect(bomb.length).toBeLessThan(64 * 1024);
    const r = await post(bomb, { ...PB, 'content-encoding': 'gzip' });
    expect(r.status).toBe(413);
    expect(RpcStatus.decode(r.body).toJSON().message).toMatch(/decompressed body exceeds/);
    expect((await post(oneSpan(), PB)).status).toBe(200);
  });

  it('answers a corrupt gzip body with 400', async () => {
    const r = await post(Buffer.from('not gzip at all'), { ...PB, 'content-encoding': 'gzip' });
    expect(r.status).toBe(400);
  });

  it('answers the wrong content type with 415, the wrong method with 405 and an unknown path with 404', async () => {
    expect((await post('x', { 'content-type': 'text/plain' })).status).toBe(415);
    const m = await post('', PB, 'GET');
    expect(m.status).toBe(405);
    expect(m.headers.get('allow')).toBe('POST');
    expect((await post(oneSpan(), PB, 'POST', '/v1/logs')).status).toBe(404);
    expect((await post(oneSpan(), PB)).status).toBe(200);
  });

  it('maps pipeline errors to 503 / 429 with Retry-After, and 400', async () => {
    next.fail = new RetryableError('queue full', 1500);
    const a = await post(oneSpan(), PB);
    expect(a.status).toBe(503);
    expect(a.headers.get('retry-after')).toBe('2'); // whole seconds, rounded up
    // Hints longer than MAX_CLIENT_RETRY_MS are capped: SDKs give up past their export timeout.
    next.fail = new RetryableError('queue full', 30_000);
    expect((await post(oneSpan(), PB)).headers.get('retry-after')).toBe(String(MAX_CLIENT_RETRY_MS / 1000));
    next.fail = new MemoryLimitError('over soft limit', 1000);
    const b = await post(oneSpan(), PB);
    expect(b.status).toBe(429);
    expect(b.headers.get('retry-after')).toBe('1');
    next.fail = new PermanentError('never');
    const c = await post(oneSpan(), PB).finally(() => (next.fail = undefined));
    expect(c.status).toBe(400);
  });

  it('returns partial_success in JSON for invalid spans', async () => {
    const body = requestJson([
      { traceId: T1, spanId: 'b7ad6b7169203331' },
      { traceId: '00000000000000000000000000000000', spanId: 'b7ad6b7169203332' },
    ]);
    const r = await post(JSON.stringify(body), JS);
    expect(r.status).toBe(200);
    expect(JSON.parse(r.body.toString()).partialSuccess.rejectedSpans).toBe('1');
  });

  it('counts accepted and refused spans by transport', async () => {
    expect(await telemetry.total('otelcol_receiver_accepted_spans_total', { transport: 'http' })).toBeGreaterThan(0);
    expect(await telemetry.total('sidecar_receiver_refused_spans_total', { reason: 'too_large' })).toBeGreaterThanOrEqual(2);
    expect(await telemetry.total('sidecar_receiver_refused_spans_total', { reason: 'invalid_span' })).toBeGreaterThanOrEqual(2);
  });
});
