/**
 * The receiver's logs and metrics paths: partial success with the right
 * counts, and bad input (malformed protobuf and JSON, oversized bodies, gzip
 * bombs) answered with the right code while nothing already accepted changes.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import zlib from 'node:zlib';
import * as grpc from '@grpc/grpc-js';
import { OtlpReceiver } from './receiver.js';
import { OtlpReceiverSchema } from './config.js';
import { withDefaults } from '../../config/defaults.js';
import { Telemetry } from '../../collector/telemetry/metrics.js';
import { silentLogger } from '../../collector/telemetry/logger.js';
import { systemClock } from '../../collector/component.js';
import type { LogRecord } from '../../collector/pdata/logs.js';
import { countPoints, type Metric } from '../../collector/pdata/metrics.js';
import type { Span } from '../../collector/pdata/spans.js';
import { WireWriter } from '../../collector/pdata/wire.js';
import { MemoryLimitError } from '../../collector/errors.js';
import { logsRequest, logsRequestJson, metricsRequest, metricsRequestJson } from '../../test/signals.js';

const T1 = '0af7651916cd43dd8448eb211c80319c';
const LIMIT = 64 * 1024;

const got = { logs: [] as LogRecord[], metrics: [] as Metric[], fail: undefined as Error | undefined };
const telemetry = new Telemetry();
let receiver: OtlpReceiver;
let tracesOnly: OtlpReceiver;
let client: grpc.Client;
let base: string;

beforeAll(async () => {
  const config = withDefaults(OtlpReceiverSchema, {
    protocols: { grpc: { endpoint: '127.0.0.1:0' }, http: { endpoint: '127.0.0.1:0', max_request_body_size: LIMIT } },
  });
  const traces = { consume: async (_s: Span[]) => {} };
  const settings = { id: 'otlp', logger: silentLogger(), telemetry, clock: systemClock };
  receiver = new OtlpReceiver(settings, config, traces, { consumers: {
    traces,
    logs: {
      consumeLogs: async (r) => {
        if (got.fail) throw got.fail;
        got.logs.push(...r);
      },
    },
    metrics: {
      consumeMetrics: async (m) => {
        if (got.fail) throw got.fail;
        got.metrics.push(...m);
      },
    },
  } });
  await receiver.start();
  tracesOnly = new OtlpReceiver({ ...settings, id: 'traces_only', telemetry: new Telemetry() }, config, traces, { consumers: { traces } });
  await tracesOnly.start();
  client = new grpc.Client(`127.0.0.1:${receiver.grpcPort}`, grpc.credentials.createInsecure());
  base = `http://127.0.0.1:${receiver.httpPort}`;
});

afterAll(async () => {
  client.close();
  await receiver.shutdown();
  await tracesOnly.shutdown();
});

const LOGS_METHOD = '/opentelemetry.proto.collector.logs.v1.LogsService/Export';
const METRICS_METHOD = '/opentelemetry.proto.collector.metrics.v1.MetricsService/Export';

function grpcCall(c: grpc.Client, method: string, body: Uint8Array): Promise<{ err: grpc.ServiceError | null; res?: Buffer }> {
  const id = (b: Buffer) => b;
  return new Promise((resolve) => c.makeUnaryRequest(method, id, id, Buffer.from(body), (err: grpc.ServiceError | null, res?: Buffer) => resolve({ err, res })));
}

function post(path: string, body: Uint8Array | string, type = 'application/x-protobuf', headers: Record<string, string> = {}): Promise<Response> {
  return fetch(`${base}${path}`, { method: 'POST', headers: { 'content-type': type, ...headers }, body });
}

/** A log record with a trace id of 5 bytes (invalid) between two good ones. */
function logsWithOneBad(): Uint8Array {
  const good = logsRequest([{ traceId: T1, body: { stringValue: 'a' } }, { body: { stringValue: 'b' } }]);
  const w = new WireWriter();
  w.raw(good);
  const rec = new WireWriter();
  rec.lenField(9, Buffer.from('abcde'), 0, 5);
  const r = rec.finish();
  const wrap = new WireWriter();
  const rl = wrap.beginLen(1);
  const sl = wrap.beginLen(2);
  wrap.lenField(2, r, 0, r.length);
  wrap.endLen(sl);
  wrap.endLen(rl);
  w.raw(wrap.finish());
  return w.finish().slice();
}

function snapshot() {
  return { logs: got.logs.length, points: countPoints(got.metrics) };
}

describe('logs and metrics over OTLP/HTTP and gRPC', () => {
  it('accepts logs and metrics on both transports and counts records and data points', async () => {
    const before = snapshot();
    expect((await post('/v1/logs', logsRequest([{ traceId: T1 }, {}]))).status).toBe(200);
    expect((await post('/v1/metrics', JSON.stringify(metricsRequestJson('a', 3)), 'application/json')).status).toBe(200);
    expect((await grpcCall(client, LOGS_METHOD, logsRequest([{}]))).err).toBeNull();
    expect((await grpcCall(client, METRICS_METHOD, metricsRequest('b', 1))).err).toBeNull();
    expect(snapshot()).toEqual({ logs: before.logs + 3, points: before.points + 7 + 5 });
    expect(await telemetry.total('otelcol_receiver_accepted_log_records_total', { transport: 'http' })).toBeGreaterThanOrEqual(2);
    expect(await telemetry.total('otelcol_receiver_accepted_metric_points_total', { transport: 'grpc' })).toBeGreaterThanOrEqual(5);
  });

  it('rejects an invalid log record through partial_success, named as OTLP names it', async () => {
    const before = snapshot();
    const proto = await post('/v1/logs', logsWithOneBad());
    expect(proto.status).toBe(200);
    const g = await grpcCall(client, LOGS_METHOD, logsWithOneBad());
    expect(g.err).toBeNull();
    expect(g.res!.length).toBeGreaterThan(0); // partial_success { rejected_log_records: 1, ... }
    // A 15-byte trace id is valid hex in JSON and an invalid record: the JSON answer names the count rejectedLogRecords.
    const json = await post('/v1/logs', JSON.stringify(logsRequestJson([{ traceId: 'ab'.repeat(15) }, {}])), 'application/json');
    expect(json.status).toBe(200);
    expect(await json.json()).toEqual({ partialSuccess: { rejectedLogRecords: '1', errorMessage: 'invalid trace_id: 15 bytes, want 16 or none' } });
    expect(snapshot().logs).toBe(before.logs + 2 + 2 + 1);
    expect(await telemetry.total('sidecar_receiver_refused_log_records_total', { reason: 'invalid_log_record' })).toBe(3);
  });

  const paths = [
    ['/v1/logs', LOGS_METHOD],
    ['/v1/metrics', METRICS_METHOD],
  ] as const;

  it.each(paths)('%s: malformed protobuf and JSON, oversized and gzip bombs get 400 / 413 / INVALID_ARGUMENT; nothing accepted changes', async (path, method) => {
    const before = snapshot();
    expect((await post(path, Buffer.from([0x0a, 0x10, 0x01, 0x02]))).status).toBe(400);
    const badJson = await post(path, '{"resourceLogs": [', 'application/json');
    expect(badJson.status).toBe(400);
    expect(((await badJson.json()) as { message: string }).message).toMatch(/malformed Export(Logs|Metrics)ServiceRequest/);
    expect((await post(path, Buffer.alloc(LIMIT + 1, 0x0a))).status).toBe(413);
    const bomb = zlib.gzipSync(Buffer.alloc(LIMIT * 16, 0));
    expect(bomb.length).toBeLessThan(LIMIT);
    expect((await post(path, bomb, 'application/x-protobuf', { 'content-encoding': 'gzip' })).status).toBe(413);
    expect((await post(path, Buffer.from('not gzip'), 'application/x-protobuf', { 'content-encoding': 'gzip' })).status).toBe(400);
    const g = await grpcCall(client, method, Buffer.from([0x0a, 0x10, 0x01]));
    expect(g.err?.code).toBe(grpc.status.INVALID_ARGUMENT);
    expect(snapshot()).toEqual(before);
  });

  it('answers a memory refusal with 429 / RESOURCE_EXHAUSTED and keeps nothing', async () => {
    const before = snapshot();
    got.fail = new MemoryLimitError('full', 1000);
    try {
      expect((await post('/v1/metrics', metricsRequest())).status).toBe(429);
      expect((await grpcCall(client, LOGS_METHOD, logsRequest([{}]))).err?.code).toBe(grpc.status.RESOURCE_EXHAUSTED);
    } finally {
      got.fail = undefined;
    }
    expect(snapshot()).toEqual(before);
  });

  it('a receiver in no logs or metrics pipeline answers 404 and UNIMPLEMENTED for them', async () => {
    const res = await fetch(`http://127.0.0.1:${tracesOnly.httpPort}/v1/logs`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-protobuf' },
      body: logsRequest([{}]),
    });
    expect(res.status).toBe(404);
    const c = new grpc.Client(`127.0.0.1:${tracesOnly.grpcPort}`, grpc.credentials.createInsecure());
    try {
      expect((await grpcCall(c, METRICS_METHOD, metricsRequest())).err?.code).toBe(grpc.status.UNIMPLEMENTED);
    } finally {
      c.close();
    }
  });
});
