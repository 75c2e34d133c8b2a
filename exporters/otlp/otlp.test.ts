import { describe, it, expect, beforeEach, afterEach } from 'vitest';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import net from 'node:net';
import { OtlpTestBackend } from '../../loadtest/sink/backend.js';
import { otlpExporterFactory } from './index.js';
import { createOtlpExporter } from './exporter.js';
import { grpcError } from './sender.js';
import { GrpcCode } from '../../receivers/otlp/grpc-server.js';
import { OtlpExporterConfigSchema } from './config.js';
import { FakeTimers, driveUntil, makeSelfSignedCert, waitFor } from '../exporterhelper/testing.js';
import { encodeRpcStatusWithRetry } from '../exporterhelper/otlpwire.js';
import type { QueuedExporter } from '../exporterhelper/exporter.js';
import { FakeClock } from '../../collector/consumertest.js';
import { Telemetry } from '../../collector/telemetry/metrics.js';
import { silentLogger } from '../../collector/telemetry/logger.js';
import { encodeExportRequest } from '../../collector/pdata/encode.js';
import { scanExportRequest } from '../../collector/pdata/spans.js';
import { withDefaults } from '../../config/defaults.js';
import { makeSpans, traceIdHex, spanIdHex } from '../../test/otlp.js';

function spans(n: number) {
  const t = traceIdHex();
  return makeSpans(Array.from({ length: n }, () => ({ traceId: t, spanId: spanIdHex(), name: 'op', attributes: { 'http.method': 'GET' } })));
}

let backend: OtlpTestBackend;
let exporters: QueuedExporter[] = [];
let tmp: string;

beforeEach(async () => {
  backend = new OtlpTestBackend({ http: false, keepBodies: true });
  await backend.start();
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'otlp-exp-'));
});
afterEach(async () => {
  for (const e of exporters) await e.shutdown(0);
  exporters = [];
  await backend.close();
  fs.rmSync(tmp, { recursive: true, force: true });
});

async function setup(cfg: Record<string, unknown> = {}, b: OtlpTestBackend = backend) {
  const clock = new FakeClock();
  const timers = new FakeTimers(clock);
  const telemetry = new Telemetry();
  const config = withDefaults(OtlpExporterConfigSchema, { endpoint: b.grpcEndpoint, tls: { insecure: true }, ...cfg });
  const exp = createOtlpExporter({ id: 'otlp', logger: silentLogger(), telemetry, clock }, config, { timers, random: () => 0.5 });
  exporters.push(exp);
  await exp.start();
  const metric = (name: string) => telemetry.total(name, { exporter: 'otlp' });
  return { exp, timers, telemetry, metric };
}

describe('otlp exporter (gRPC)', () => {
  it('sends the exact request bytes, unknown fields included', async () => {
    const { exp, metric } = await setup({ compression: 'none' });
    const batch = spans(3);
    // Give the first span an unknown field (number 100, varint 42) the collector does not know.
    const s0 = batch[0];
    s0.setBytes(Buffer.concat([s0.bytes(), Buffer.from([0xa0, 0x06, 0x2a])]));
    const expected = Buffer.from(encodeExportRequest(batch));
    await exp.consume(batch);
    await backend.waitForSpans(3);
    const got = backend.received[0];
    expect(Buffer.from(got.body!).equals(expected)).toBe(true);
    const back = scanExportRequest(got.body!).spans;
    expect(Buffer.from(back[0].bytes()).subarray(-3)).toEqual(Buffer.from([0xa0, 0x06, 0x2a]));
    await waitFor(() => exp.pending === 0);
    expect(await metric('otelcol_exporter_sent_spans_total')).toBe(3);
  });

  it('compresses with gzip by default (fewer bytes on the wire, same request at the backend)', async () => {
    // The grpc-js server hides grpc-encoding from handlers, so count the bytes through a TCP proxy.
    let wireBytes = 0;
    const proxy = net.createServer((client) => {
      const upstream = net.connect(Number(backend.grpcEndpoint.split(':')[1]), '127.0.0.1');
      client.on('data', (d) => (wireBytes += d.length));
      client.pipe(upstream).pipe(client);
      client.on('error', () => upstream.destroy());
      upstream.on('error', () => client.destroy());
    });
    await new Promise<void>((r) => proxy.listen(0, '127.0.0.1', r));
    const endpoint = `127.0.0.1:${(proxy.address() as net.AddressInfo).port}`;
    try {
      const batch = makeSpans(
        Array.from({ length: 200 }, () => ({ traceId: traceIdHex(), spanId: spanIdHex(), name: 'GET /api/v1/orders', attributes: { 'http.url': 'https://example.com/api/v1/orders?page=1&size=100' } })),
      );
      const raw = encodeExportRequest(batch).length;
      const { exp: gz } = await setup({ endpoint });
      await gz.consume(batch);
      await backend.waitForSpans(200);
      const gzBytes = wireBytes;
      expect(Buffer.from(backend.received[0].body!).equals(Buffer.from(encodeExportRequest(batch)))).toBe(true);
      expect(gzBytes).toBeLessThan(raw / 2);
      wireBytes = 0;
      const { exp: plain } = await setup({ endpoint, compression: 'none' });
      await plain.consume(batch);
      await backend.waitForSpans(400);
      expect(wireBytes).toBeGreaterThan(raw);
    } finally {
      for (const e of exporters.splice(0)) await e.shutdown(0);
      await new Promise((r) => proxy.close(r));
    }
  });

  it('retries UNAVAILABLE with backoff and delivers once the backend is back', async () => {
    const { exp, timers, metric, telemetry } = await setup();
    await backend.setMode({ kind: 'down' }, { requests: 2 });
    await exp.consume(spans(4));
    await backend.waitForRequests(1);
    await waitFor(() => timers.pendingDelays().includes(5000));
    await timers.advance(5000);
    await backend.waitForRequests(2);
    await waitFor(() => timers.pendingDelays().includes(7500));
    await timers.advance(7500);
    await backend.waitForSpans(4);
    await waitFor(() => exp.pending === 0);
    expect(backend.stats.requests).toBe(3);
    expect(await metric('sidecar_exporter_retries_total')).toBe(2);
    expect(await metric('otelcol_exporter_sent_spans_total')).toBe(4);
    expect(await telemetry.droppedByReason()).toEqual({});
  });

  it('honours RetryInfo on RESOURCE_EXHAUSTED', async () => {
    const { exp, timers } = await setup();
    await backend.setMode({ kind: 'throttle', retryAfterMs: 42_000 }, { requests: 1 });
    await exp.consume(spans(1));
    await backend.waitForRequests(1);
    await waitFor(() => timers.pendingDelays().includes(42_000));
    await timers.advance(41_999);
    await new Promise((r) => setTimeout(r, 50));
    expect(backend.stats.requests).toBe(1);
    await timers.advance(1);
    await backend.waitForSpans(1);
  });

  it('with isolate_rejected off, drops INVALID_ARGUMENT at once and counts it', async () => {
    const { exp, timers, metric, telemetry } = await setup({ isolate_rejected: { enabled: false } });
    await backend.setMode({ kind: 'permanent', message: 'bad data' });
    await exp.consume(spans(3));
    await backend.waitForRequests(1);
    await waitFor(() => exp.pending === 0);
    await timers.advance(600_000);
    expect(backend.stats.requests).toBe(1);
    expect(await telemetry.droppedByReason()).toEqual({ export_permanent_error: 3 });
    expect(await metric('otelcol_exporter_send_failed_spans_total')).toBe(3);
  });

  it('a backend refusing every part with INVALID_ARGUMENT: halves down to single spans, each counted backend_rejected, never retried', async () => {
    const { exp, timers, metric, telemetry } = await setup();
    await backend.setMode({ kind: 'permanent', message: 'bad data' });
    await exp.consume(spans(3));
    await waitFor(() => exp.pending === 0 && backend.stats.requests === 5);
    await timers.advance(600_000);
    // [3] -> [1] refused, [2] -> [1] refused, [1] refused: 5 requests.
    expect(backend.stats.requests).toBe(5);
    expect(await telemetry.droppedByReason()).toEqual({ backend_rejected: 3 });
    expect(await metric('otelcol_exporter_send_failed_spans_total')).toBe(3);
    expect(await metric('sidecar_exporter_rejected_spans_total')).toBe(3);
    expect(await metric('sidecar_exporter_isolation_requests_total')).toBe(4);
  });

  it('counts partial_success rejections', async () => {
    const { exp, metric, telemetry } = await setup();
    await backend.setMode({ kind: 'partial', rejectSpans: 2, message: 'too old' });
    await exp.consume(spans(5));
    await backend.waitForSpans(3);
    await waitFor(() => exp.pending === 0);
    expect(await metric('sidecar_exporter_rejected_spans_total')).toBe(2);
    expect(await metric('otelcol_exporter_sent_spans_total')).toBe(3);
    expect(await telemetry.droppedByReason()).toEqual({ backend_rejected: 2 });
  });

  it('times out a slow backend and retries', async () => {
    const { exp, timers, metric } = await setup({ timeout: '2s' });
    await backend.setMode({ kind: 'slow', delayMs: 300 }, { requests: 1 });
    await exp.consume(spans(1));
    await backend.waitForRequests(1);
    await timers.advance(2000); // the attempt times out (fake time) while the backend still sleeps
    await waitFor(() => timers.pendingDelays().includes(5000));
    await timers.advance(5000);
    await backend.waitForRequests(2);
    await waitFor(() => exp.pending === 0);
    expect(await metric('sidecar_exporter_retries_total')).toBe(1);
    expect(backend.stats.duplicateSpans).toBe(1); // the slow first copy arrived too: at-least-once
  });

  it('recovers after refused connections', async () => {
    const { exp, timers, telemetry } = await setup({ retry_on_failure: { max_elapsed_time: 0 } });
    await backend.setMode({ kind: 'down', refuse: true });
    await exp.consume(spans(2));
    await waitFor(() => timers.pendingDelays().some((d) => d >= 5000));
    expect(backend.stats.requests).toBe(0);
    await backend.setMode({ kind: 'ok' });
    await driveUntil(timers, () => backend.stats.acceptedSpans >= 2);
    expect(await telemetry.droppedByReason()).toEqual({});
  });

  it('sends headers, re-reading a header file when it changes', async () => {
    const tokenFile = path.join(tmp, 'token');
    fs.writeFileSync(tokenFile, 'Bearer one\n');
    const { exp } = await setup({ headers: { 'X-Tenant': 'acme', authorization: { file: tokenFile } } });
    await exp.consume(spans(1));
    await backend.waitForSpans(1);
    expect(backend.received[0].headers['x-tenant']).toBe('acme');
    expect(backend.received[0].headers['authorization']).toBe('Bearer one');
    fs.writeFileSync(tokenFile, 'Bearer two-rotated\n');
    await exp.consume(spans(1));
    await backend.waitForSpans(2);
    expect(backend.received[1].headers['authorization']).toBe('Bearer two-rotated');
  });

  it('connects over TLS with a CA file', async (ctx) => {
    const cert = await makeSelfSignedCert(tmp);
    if (!cert) {
      ctx.skip('openssl is not available on this machine: TLS test skipped');
      return;
    }
    const tlsBackend = new OtlpTestBackend({ http: false, tls: { cert: cert.cert, key: cert.key } });
    await tlsBackend.start();
    try {
      const { exp } = await setup({ endpoint: tlsBackend.grpcEndpoint, tls: { ca_file: cert.certFile } }, tlsBackend);
      await exp.consume(spans(2));
      await tlsBackend.waitForSpans(2);
      const { exp: skip } = await setup({ endpoint: tlsBackend.grpcEndpoint, tls: { insecure_skip_verify: true } }, tlsBackend);
      await skip.consume(spans(1));
      await tlsBackend.waitForSpans(3);
      // Without the CA the handshake fails: nothing arrives, the failure is retryable (kept for retry).
      const { exp: untrusted, timers, telemetry } = await setup({ endpoint: tlsBackend.grpcEndpoint, tls: {} }, tlsBackend);
      await untrusted.consume(spans(1));
      await waitFor(() => timers.pendingDelays().includes(5000));
      expect(tlsBackend.stats.acceptedSpans).toBe(3);
      expect(await telemetry.droppedByReason()).toEqual({});
    } finally {
      for (const e of exporters.splice(0)) await e.shutdown(0);
      await tlsBackend.close();
    }
  });
});

describe('otlp exporter status mapping', () => {
  it.each([
    ['CANCELLED', true],
    ['DEADLINE_EXCEEDED', true],
    ['ABORTED', true],
    ['OUT_OF_RANGE', true],
    ['UNAVAILABLE', true],
    ['DATA_LOSS', true],
    ['RESOURCE_EXHAUSTED', false],
    ['INVALID_ARGUMENT', false],
    ['UNAUTHENTICATED', false],
    ['PERMISSION_DENIED', false],
    ['UNIMPLEMENTED', false],
    ['INTERNAL', false],
    ['UNKNOWN', false],
  ] as const)('%s retryable=%s', (name, retryable) => {
    const e = grpcError(GrpcCode[name], 'd');
    expect(e.retryable).toBe(retryable);
    expect(e.message).toBe(`gRPC ${name}: d`);
  });
  it('RESOURCE_EXHAUSTED with RetryInfo is retryable after the given delay', () => {
    const e = grpcError(GrpcCode.RESOURCE_EXHAUSTED, 'slow down', encodeRpcStatusWithRetry(8, 'slow down', 2500));
    expect(e.retryable).toBe(true);
    expect(e.retryAfterMs).toBe(2500);
  });
});

describe('otlp exporter config', () => {
  it('has the documented defaults and validates the endpoint', () => {
    const c = withDefaults(OtlpExporterConfigSchema, {});
    expect(c.endpoint).toBe('localhost:4317');
    expect(c.compression).toBe('gzip');
    expect(c.timeout).toBe('5s');
    expect(c.tls.insecure).toBe(false);
    expect(c.sending_queue).toMatchObject({ enabled: true, num_consumers: 2, queue_size: 1000, max_bytes: 64 * 1024 * 1024, block_on_overflow: false });
    expect(c.retry_on_failure).toMatchObject({ enabled: true, initial_interval: '5s', max_interval: '30s', multiplier: 1.5, randomization_factor: 0.5, max_elapsed_time: '300s' });
    expect(otlpExporterFactory.validate!(c)).toEqual([]);
    expect(otlpExporterFactory.validate!(withDefaults(OtlpExporterConfigSchema, { endpoint: 'nope' }))[0].path).toEqual(['endpoint']);
    expect(otlpExporterFactory.validate!(withDefaults(OtlpExporterConfigSchema, { tls: { cert_file: 'a' } }))[0].path).toEqual(['tls', 'key_file']);
  });
});
