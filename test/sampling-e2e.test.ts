/**
 * Tail sampling end to end: an SDK sends a mix of traces (errors, slow, rare,
 * normal) through the collector; exactly the traces the policies select reach
 * the backend, each complete, each marked with the policy that kept it.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { context, trace, SpanStatusCode } from '@opentelemetry/api';
import { Collector } from '../collector/collector.js';
import { loadConfigText } from '../config/load.js';
import { silentLogger } from '../collector/telemetry/logger.js';
import type { OtlpReceiver } from '../receivers/otlp/receiver.js';
import { OtlpTestBackend } from '../loadtest/sink/backend.js';
import { sdkClient, sdkExporter } from './sdk.js';
import { protobufToJsonObject } from '../collector/pdata/otlp-json.js';

let backend: OtlpTestBackend;
beforeAll(async () => {
  backend = new OtlpTestBackend({ keepBodies: true });
  await backend.start();
});
afterAll(() => backend.close());

type Kind = 'normal' | 'error' | 'slow' | 'rare';

describe('tail sampling through the whole collector', () => {
  it('keeps exactly the error, slow and rare traces, each complete', async () => {
    const yaml = `
receivers:
  otlp:
    protocols:
      grpc: { endpoint: "127.0.0.1:0" }
processors:
  tail_sampling:
    decision_wait: 1s
    tick_interval: 100ms
    policies:
      - { name: errors, type: status_code, status_code: { status_codes: [ERROR] } }
      - { name: slow, type: latency, latency: { threshold_ms: 500 } }
      - { name: rare, type: string_attribute, string_attribute: { key: checkout.path, values: [gift-card] } }
  batch: { timeout: 50ms }
exporters:
  otlp: { endpoint: "${backend.grpcEndpoint}", tls: { insecure: true } }
service:
  config_watch: false
  telemetry: { metrics: { address: "127.0.0.1:0" } }
  pipelines:
    traces: { receivers: [otlp], processors: [tail_sampling, batch], exporters: [otlp] }
`;
    const collector = new Collector(loadConfigText(yaml, 'sampling.yaml'), { logger: silentLogger(), processMetrics: false });
    await collector.start();
    const r = collector.service.component('otlp') as OtlpReceiver;
    const client = sdkClient(sdkExporter('grpc', r.grpcPort, r.httpPort));
    const tracer = client.provider.getTracer('checkout');

    const kinds: Kind[] = [];
    for (let i = 0; i < 40; i++) kinds.push((['normal', 'normal', 'error', 'slow', 'rare'] as Kind[])[i % 5]);
    const traceKind = new Map<string, Kind>();
    const t0 = Date.now();
    kinds.forEach((kind, i) => {
      const start = t0 + i;
      const root = tracer.startSpan('POST /checkout', { startTime: start, attributes: kind === 'rare' ? { 'checkout.path': 'gift-card' } : { 'checkout.path': 'card' } });
      const ctx = trace.setSpan(context.active(), root);
      const a = tracer.startSpan('SELECT cart', { startTime: start + 1 }, ctx);
      a.end(start + 5);
      const b = tracer.startSpan('POST /payments', { startTime: start + 6 }, ctx);
      if (kind === 'error') b.setStatus({ code: SpanStatusCode.ERROR, message: 'card declined' });
      b.end(start + 20);
      root.end(start + (kind === 'slow' ? 800 : 30));
      traceKind.set(root.spanContext().traceId, kind);
    });
    await client.provider.forceFlush();
    await client.provider.shutdown();
    const expectedSpans = kinds.filter((k) => k !== 'normal').length * 3;
    await backend.waitForSpans(expectedSpans, 15_000);
    await collector.shutdown(); // decides anything still pending: nothing more may arrive

    const byTrace = new Map<string, { spans: number; policies: Set<string> }>();
    for (const q of backend.received) {
      const req = protobufToJsonObject(q.body!) as { resourceSpans: Array<{ scopeSpans: Array<{ spans: Array<{ traceId: string; attributes?: Array<{ key: string; value: { stringValue?: string } }> }> }> }> };
      for (const rs of req.resourceSpans)
        for (const ss of rs.scopeSpans)
          for (const s of ss.spans) {
            const e = byTrace.get(s.traceId) ?? { spans: 0, policies: new Set<string>() };
            e.spans++;
            const p = s.attributes?.find((a) => a.key === 'tailsampling.policy')?.value.stringValue;
            if (p) e.policies.add(p);
            byTrace.set(s.traceId, e);
          }
    }
    const keptKinds = [...byTrace.keys()].map((id) => traceKind.get(id));
    expect(keptKinds.filter((k) => k === 'normal')).toEqual([]);
    expect(keptKinds.filter((k) => k === 'error')).toHaveLength(8);
    expect(keptKinds.filter((k) => k === 'slow')).toHaveLength(8);
    expect(keptKinds.filter((k) => k === 'rare')).toHaveLength(8);
    for (const [id, e] of byTrace) {
      expect(e.spans, `trace ${id} complete`).toBe(3);
      const want = { error: 'errors', slow: 'slow', rare: 'rare', normal: '' }[traceKind.get(id)!];
      expect([...e.policies]).toEqual([want]);
    }
    expect(backend.stats.acceptedSpans).toBe(expectedSpans);
    // The 16 normal traces were dropped, and counted as such.
    expect(await collector.telemetry.total('sidecar_spans_dropped_total', { reason: 'sampled_out' })).toBe(16 * 3);
  });
});
