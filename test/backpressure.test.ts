/**
 * Backpressure end to end with a real SDK client: while the backend is down
 * the collector's small queue fills, the SDK receives retryable codes (and
 * retries), and after the backend returns every span the SDK produced
 * arrives; nothing was refused with a permanent code and nothing was dropped.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Collector } from '../collector/collector.js';
import { loadConfigText } from '../config/load.js';
import { silentLogger } from '../collector/telemetry/logger.js';
import type { OtlpReceiver } from '../receivers/otlp/receiver.js';
import { OtlpTestBackend } from '../loadtest/sink/backend.js';
import { BasicTracerProvider, BatchSpanProcessor, InMemorySpanExporter, SimpleSpanProcessor } from '@opentelemetry/sdk-trace-base';
// The HTTP exporter: the JS SDK's gRPC exporter (0.223) does not retry at all, on any code.
import { OTLPTraceExporter } from '@opentelemetry/exporter-trace-otlp-proto';

let backend: OtlpTestBackend;
let collector: Collector;
beforeAll(async () => {
  backend = new OtlpTestBackend();
  await backend.start();
});
afterAll(async () => {
  await collector?.shutdown();
  await backend.close();
});

describe('backpressure with an SDK client', () => {
  it('pushes back with retryable codes during an outage and delivers everything afterwards', async () => {
    const yaml = `
receivers:
  otlp:
    protocols:
      http: { endpoint: "127.0.0.1:0" }
processors:
  batch: { send_batch_size: 100, timeout: 50ms, max_pending_spans: 300 }
exporters:
  otlp:
    endpoint: ${backend.grpcEndpoint}
    tls: { insecure: true }
    timeout: 2s
    sending_queue: { queue_size: 8, num_consumers: 2 }
    retry_on_failure: { initial_interval: 100ms, max_interval: 500ms, max_elapsed_time: 60s }
service:
  config_watch: false
  telemetry: { metrics: { address: "127.0.0.1:0" } }
  pipelines:
    traces: { receivers: [otlp], processors: [batch], exporters: [otlp] }
`;
    collector = new Collector(loadConfigText(yaml, 'backpressure.yaml'), { logger: silentLogger(), processMetrics: false });
    await collector.start();
    const r = collector.service.component('otlp') as OtlpReceiver;
    await backend.setMode({ kind: 'down' });

    const memory = new InMemorySpanExporter();
    const provider = new BasicTracerProvider({
      spanProcessors: [
        new BatchSpanProcessor(new OTLPTraceExporter({ url: `http://127.0.0.1:${r.httpPort}/v1/traces`, timeoutMillis: 10_000 }), {
          scheduledDelayMillis: 50,
          maxExportBatchSize: 50,
          maxQueueSize: 100_000,
        }),
        new SimpleSpanProcessor(memory),
      ],
    });
    const tracer = provider.getTracer('steady');
    // 30 spans every 50 ms for 3 s; the backend comes back after 2 s.
    for (let tick = 0; tick < 60; tick++) {
      for (let i = 0; i < 30; i++) tracer.startSpan(`op-${tick}-${i}`).end();
      if (tick === 40) await backend.setMode({ kind: 'ok' });
      await new Promise((res) => setTimeout(res, 50));
    }
    await provider.forceFlush();
    const produced = memory.getFinishedSpans().map((s) => `${s.spanContext().traceId}:${s.spanContext().spanId}`);
    expect(produced).toHaveLength(1800);
    await backend.waitForSpans(1800, 20_000).catch(async (e) => {
      const t = collector.telemetry;
      console.log(JSON.stringify({
        accepted: await t.total('otelcol_receiver_accepted_spans_total'),
        refused: await t.total('sidecar_receiver_refused_spans_total'),
        refusedRetryable: await t.total('sidecar_receiver_refused_spans_total', { reason: 'retryable' }),
        dropped: await t.droppedByReason(),
        sent: await t.total('otelcol_exporter_sent_spans_total'),
        backend: backend.stats,
      }));
      throw e;
    });
    await provider.shutdown();

    const t = collector.telemetry;
    // The client was pushed back, only ever with retryable codes.
    const refused = await t.total('sidecar_receiver_refused_spans_total');
    expect(refused).toBeGreaterThan(0);
    expect(await t.total('sidecar_receiver_refused_spans_total', { reason: 'retryable' })).toBe(refused);
    // Every span the SDK produced arrived, exactly once; none was dropped anywhere.
    expect(produced.every((k) => backend.spanKeys.has(k))).toBe(true);
    expect(backend.stats.acceptedSpans).toBe(1800);
    expect(backend.stats.duplicateSpans).toBe(0);
    expect(await t.total('otelcol_receiver_accepted_spans_total')).toBe(1800);
    expect(await t.total('sidecar_spans_dropped_total')).toBe(0);
  });
});
