import { describe, it, expect, beforeEach, afterEach } from 'vitest';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { OtlpTestBackend } from '../../loadtest/sink/backend.js';
import { otlpHttpExporterFactory } from './index.js';
import { createOtlpHttpExporter } from './exporter.js';
import { httpError, parseRetryAfter, parsePartialSuccess } from './sender.js';
import { OtlpHttpExporterConfigSchema, tracesUrl } from './config.js';
import { FakeTimers, makeSelfSignedCert, waitFor } from '../exporterhelper/testing.js';
import { encodeExportResponse } from '../exporterhelper/otlpwire.js';
import type { QueuedExporter } from '../exporterhelper/exporter.js';
import { FakeClock } from '../../collector/consumertest.js';
import { Telemetry } from '../../collector/telemetry/metrics.js';
import { silentLogger } from '../../collector/telemetry/logger.js';
import { encodeExportRequest } from '../../collector/pdata/encode.js';
import { withDefaults } from '../../config/defaults.js';
import { makeSpans, traceIdHex, spanIdHex } from '../../test/otlp.js';

function spans(n: number) {
  const t = traceIdHex();
  return makeSpans(Array.from({ length: n }, () => ({ traceId: t, spanId: spanIdHex(), name: 'op', attributes: { n: 1, ok: true, s: 'x' } })));
}

let backend: OtlpTestBackend;
let exporters: QueuedExporter[] = [];
let tmp: string;

beforeEach(async () => {
  backend = new OtlpTestBackend({ grpc: false, keepBodies: true });
  await backend.start();
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'otlphttp-exp-'));
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
  const config = withDefaults(OtlpHttpExporterConfigSchema, { endpoint: b.httpEndpoint, ...cfg });
  const exp = createOtlpHttpExporter({ id: 'otlphttp', logger: silentLogger(), telemetry, clock }, config, { timers, random: () => 0.5 });
  exporters.push(exp);
  await exp.start();
  const metric = (name: string) => telemetry.total(name, { exporter: 'otlphttp' });
  return { exp, timers, telemetry, metric, clock };
}

describe('otlphttp exporter', () => {
  it('POSTs the exact protobuf bytes to /v1/traces, gzip-compressed by default', async () => {
    const { exp, metric } = await setup();
    const batch = spans(3);
    batch[1].setBytes(Buffer.concat([batch[1].bytes(), Buffer.from([0xa0, 0x06, 0x2a])])); // unknown field 100
    await exp.consume(batch);
    await backend.waitForSpans(3);
    const got = backend.received[0];
    expect(got.path).toBe('/v1/traces');
    expect(got.encoding).toBe('proto');
    expect(got.compressed).toBe(true);
    expect(got.headers['content-type']).toBe('application/x-protobuf');
    expect(Buffer.from(got.body!).equals(Buffer.from(encodeExportRequest(batch)))).toBe(true);
    await waitFor(() => exp.pending === 0);
    expect(await metric('otelcol_exporter_sent_spans_total')).toBe(3);
  });

  it('sends OTLP/JSON with encoding: json, uncompressed with compression: none, to traces_endpoint', async () => {
    const { exp } = await setup({ encoding: 'json', compression: 'none', traces_endpoint: backend.httpEndpoint + '/custom/path' });
    const batch = spans(2);
    await exp.consume(batch);
    await backend.waitForSpans(2);
    const got = backend.received[0];
    expect(got.path).toBe('/custom/path');
    expect(got.encoding).toBe('json');
    expect(got.compressed).toBe(false);
    const body = JSON.parse(Buffer.from(got.body!).toString('utf8'));
    const sent = body.resourceSpans[0].scopeSpans[0].spans;
    expect(sent.map((s: { spanId: string }) => s.spanId)).toEqual(batch.map((s) => s.spanId));
    expect(sent[0].traceId).toBe(batch[0].traceId);
    expect([...backend.spanKeys]).toEqual(batch.map((s) => `${s.traceId}:${s.spanId}`));
  });

  it('retries 503 with backoff and delivers', async () => {
    const { exp, timers, metric, telemetry } = await setup();
    await backend.setMode({ kind: 'down' }, { requests: 1 });
    await exp.consume(spans(4));
    await backend.waitForRequests(1);
    await waitFor(() => timers.pendingDelays().includes(5000));
    await timers.advance(5000);
    await backend.waitForSpans(4);
    await waitFor(() => exp.pending === 0);
    expect(await metric('sidecar_exporter_retries_total')).toBe(1);
    expect(await telemetry.droppedByReason()).toEqual({});
  });

  it('honours Retry-After on 429', async () => {
    const { exp, timers } = await setup();
    await backend.setMode({ kind: 'throttle', retryAfterMs: 17_000 }, { requests: 1 });
    await exp.consume(spans(1));
    await backend.waitForRequests(1);
    await waitFor(() => timers.pendingDelays().includes(17_000));
    await timers.advance(16_999);
    await new Promise((r) => setTimeout(r, 50));
    expect(backend.stats.requests).toBe(1);
    await timers.advance(1);
    await backend.waitForSpans(1);
  });

  it('with isolate_rejected off, drops 400 at once and counts it', async () => {
    const { exp, timers, telemetry, metric } = await setup({ isolate_rejected: { enabled: false } });
    await backend.setMode({ kind: 'permanent', message: 'schema violation' });
    await exp.consume(spans(2));
    await waitFor(() => exp.pending === 0 && backend.stats.requests === 1);
    await timers.advance(600_000);
    expect(backend.stats.requests).toBe(1);
    expect(await telemetry.droppedByReason()).toEqual({ export_permanent_error: 2 });
    expect(await metric('otelcol_exporter_send_failed_spans_total')).toBe(2);
  });

  it.each(['proto', 'json'] as const)('counts partial_success from %s responses', async (encoding) => {
    const { exp, metric, telemetry } = await setup({ encoding });
    await backend.setMode({ kind: 'partial', rejectSpans: 1, message: 'one bad' });
    await exp.consume(spans(3));
    await backend.waitForSpans(2);
    await waitFor(() => exp.pending === 0);
    expect(await metric('sidecar_exporter_rejected_spans_total')).toBe(1);
    expect(await metric('otelcol_exporter_sent_spans_total')).toBe(2);
    expect(await telemetry.droppedByReason()).toEqual({ backend_rejected: 1 });
  });

  it('keeps data when the backend refuses connections, and delivers after it returns', async () => {
    const { exp, timers, telemetry } = await setup({ retry_on_failure: { max_elapsed_time: 0 } });
    await backend.setMode({ kind: 'down', refuse: true });
    await exp.consume(spans(2));
    await waitFor(() => timers.pendingDelays().includes(5000));
    await backend.setMode({ kind: 'ok' });
    await timers.advance(5000);
    await backend.waitForSpans(2);
    expect(await telemetry.droppedByReason()).toEqual({});
  });

  it('sends headers, re-reading a header file when it changes', async () => {
    const tokenFile = path.join(tmp, 'token');
    fs.writeFileSync(tokenFile, 'k1');
    const { exp } = await setup({ headers: { 'X-Api-Key': { file: tokenFile }, 'X-Team': 'core' } });
    await exp.consume(spans(1));
    await backend.waitForSpans(1);
    expect(backend.received[0].headers['x-api-key']).toBe('k1');
    expect(backend.received[0].headers['x-team']).toBe('core');
    fs.writeFileSync(tokenFile, 'key-two\n');
    await exp.consume(spans(1));
    await backend.waitForSpans(2);
    expect(backend.received[1].headers['x-api-key']).toBe('key-two');
  });

  it('connects over HTTPS with a CA file, or with insecure_skip_verify', async (ctx) => {
    const cert = await makeSelfSignedCert(tmp);
    if (!cert) {
      ctx.skip('openssl is not available on this machine: TLS test skipped');
      return;
    }
    const tlsBackend = new OtlpTestBackend({ grpc: false, tls: { cert: cert.cert, key: cert.key } });
    await tlsBackend.start();
    try {
      expect(tlsBackend.httpEndpoint.startsWith('https://')).toBe(true);
      const { exp } = await setup({ endpoint: tlsBackend.httpEndpoint, tls: { ca_file: cert.certFile } }, tlsBackend);
      await exp.consume(spans(2));
      await tlsBackend.waitForSpans(2);
      const { exp: skip } = await setup({ endpoint: tlsBackend.httpEndpoint, tls: { insecure_skip_verify: true } }, tlsBackend);
      await skip.consume(spans(1));
      await tlsBackend.waitForSpans(3);
      const { exp: untrusted, timers } = await setup({ endpoint: tlsBackend.httpEndpoint }, tlsBackend);
      await untrusted.consume(spans(1));
      await waitFor(() => timers.pendingDelays().includes(5000)); // certificate not trusted: retried later, not sent
      expect(tlsBackend.stats.acceptedSpans).toBe(3);
    } finally {
      for (const e of exporters.splice(0)) await e.shutdown(0);
      await tlsBackend.close();
    }
  });
});

describe('otlphttp status mapping', () => {
  it.each([
    [429, true],
    [502, true],
    [503, true],
    [504, true],
    [400, false],
    [401, false],
    [403, false],
    [404, false],
    [413, false],
    [500, false],
  ])('HTTP %i retryable=%s', (status, retryable) => {
    expect(httpError(status, undefined, Buffer.alloc(0), '', 0).retryable).toBe(retryable);
  });

  it('parses Retry-After as seconds or an HTTP date', () => {
    const now = Date.parse('2024-01-01T00:00:00Z');
    expect(parseRetryAfter('7', now)).toBe(7000);
    expect(parseRetryAfter('Mon, 01 Jan 2024 00:00:30 GMT', now)).toBe(30_000);
    expect(parseRetryAfter('garbage', now)).toBeUndefined();
    expect(httpError(503, '3', Buffer.alloc(0), '', now).retryAfterMs).toBe(3000);
  });

  it('reads the error message from a JSON or protobuf Status body, and partial_success from both encodings', () => {
    expect(httpError(400, undefined, Buffer.from('{"code":3,"message":"bad span"}'), 'application/json', 0).message).toContain('bad span');
    expect(parsePartialSuccess(Buffer.from(encodeExportResponse(4, 'why')), 'application/x-protobuf')).toEqual({ rejectedSpans: 4, errorMessage: 'why' });
    expect(parsePartialSuccess(Buffer.from('{"partialSuccess":{"rejectedSpans":"5"}}'), 'application/json')).toEqual({ rejectedSpans: 5, errorMessage: '' });
    expect(parsePartialSuccess(Buffer.from('{}'), 'application/json')).toBeUndefined();
  });

  it('builds the traces URL and validates it', () => {
    expect(tracesUrl({ endpoint: 'http://h:4318/' })).toBe('http://h:4318/v1/traces');
    expect(tracesUrl({ endpoint: 'http://h:4318', traces_endpoint: 'https://x/y' })).toBe('https://x/y');
    const c = withDefaults(OtlpHttpExporterConfigSchema, {});
    expect(c.endpoint).toBe('http://localhost:4318');
    expect(c.encoding).toBe('proto');
    expect(otlpHttpExporterFactory.validate!(c)).toEqual([]);
    expect(otlpHttpExporterFactory.validate!(withDefaults(OtlpHttpExporterConfigSchema, { endpoint: 'ftp://x' }))[0].path).toEqual(['endpoint']);
  });
});
