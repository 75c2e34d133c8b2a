import { describe, expect, test } from 'vitest';
import { Prng } from './generator/prng.js';
import { CLASS_ERROR, CLASS_RARE, CLASS_SLOW, KIND_SERVER, ServiceGraph, TraceGenerator, type GenTrace } from './generator/model.js';
import { withShapeDefaults } from './generator/shape.js';
import { JsonEncoder, ProtoEncoder, placeTrace, type BatchItem } from './generator/encode.js';
import { rateAt, scheduledSpans, scaleDuration, scaleRates, type TrafficConfig } from './generator/traffic.js';
import { scanExportRequest } from '../collector/pdata/spans.js';
import { spanAttributes, spanName } from '../collector/pdata/attributes.js';
import { jsonToProtobuf, protobufToJsonObject } from '../collector/pdata/otlp-json.js';

const BASE_MS = 1_700_000_000_000;

function draw(seed: string | number, n: number, shape = withShapeDefaults({})): { traces: GenTrace[]; bytes: Buffer; graph: ServiceGraph } {
  const graph = new ServiceGraph(shape, seed);
  const gen = new TraceGenerator(graph, seed);
  const traces: GenTrace[] = [];
  const items: BatchItem[] = [];
  for (let i = 0; i < n; i++) {
    const t = placeTrace(gen.next(), BASE_MS + i);
    traces.push(t);
    for (let s = 0; s < t.spans.length; s++) items.push({ trace: t, span: s });
  }
  return { traces, bytes: new ProtoEncoder(graph).encode(items), graph };
}

function items(traces: GenTrace[]): BatchItem[] {
  return traces.flatMap((t) => t.spans.map((_, s) => ({ trace: placeTrace(t, BASE_MS), span: s })));
}

describe('prng', () => {
  test('same seed, same sequence; different seed, different sequence', () => {
    const a = new Prng('x');
    const b = new Prng('x');
    const c = new Prng('y');
    const sa = Array.from({ length: 50 }, () => a.u32());
    expect(Array.from({ length: 50 }, () => b.u32())).toEqual(sa);
    expect(Array.from({ length: 50 }, () => c.u32())).not.toEqual(sa);
  });
  test('uniform enough: mean of next() near 0.5, ints inside bounds', () => {
    const r = new Prng(3);
    let sum = 0;
    for (let i = 0; i < 20000; i++) {
      sum += r.next();
      const k = r.int(3, 7);
      expect(k >= 3 && k <= 7).toBe(true);
    }
    expect(Math.abs(sum / 20000 - 0.5)).toBeLessThan(0.01);
  });
});

describe('trace generator', () => {
  test('is deterministic by seed: same seed gives identical encoded bytes, another seed differs', () => {
    const a = draw(42, 200);
    const b = draw(42, 200);
    const c = draw(43, 200);
    expect(Buffer.compare(a.bytes, b.bytes)).toBe(0);
    expect(a.traces.map((t) => t.traceIdHex)).toEqual(b.traces.map((t) => t.traceIdHex));
    expect(c.traces.map((t) => t.traceIdHex)).not.toEqual(a.traces.map((t) => t.traceIdHex));
  });

  test('traces are well-formed trees within the configured span count and depth', () => {
    const shape = withShapeDefaults({ spans_per_trace: { min: 1, median: 20, max: 120, sigma: 1.2 }, depth: 5 });
    const { traces } = draw(7, 400, shape);
    const counts = traces.map((t) => t.spans.length);
    expect(Math.min(...counts)).toBeGreaterThanOrEqual(1);
    expect(Math.max(...counts)).toBeLessThanOrEqual(120);
    expect(Math.max(...counts)).toBeGreaterThan(60); // the tail reaches large traces
    expect(counts.filter((n) => n === 1).length).toBeGreaterThan(0);
    for (const t of traces) {
      expect(t.spans[0].parent).toBe(-1);
      expect(t.spans[0].kind).toBe(KIND_SERVER);
      for (let i = 1; i < t.spans.length; i++) {
        const s = t.spans[i];
        expect(s.parent).toBeGreaterThanOrEqual(0);
        expect(s.parent).toBeLessThan(t.spans.length);
        const p = t.spans[s.parent];
        expect(s.startMs).toBeGreaterThanOrEqual(p.startMs);
        expect(s.endMs).toBeLessThanOrEqual(p.endMs + 1e-6);
        let d = 0;
        for (let k = i; t.spans[k].parent >= 0; k = t.spans[k].parent) d++;
        expect(d).toBeLessThanOrEqual(5);
      }
      const ids = new Set<string>();
      for (let i = 0; i < t.spans.length; i++) ids.add(Buffer.from(t.ids.subarray(16 + 8 * i, 24 + 8 * i)).toString('hex'));
      expect(ids.size).toBe(t.spans.length);
    }
  });

  test('class labels match the data: error = a span with status ERROR, slow = duration over threshold, rare = rare route', () => {
    const shape = withShapeDefaults({ error_rate: 0.1, slow: { rate: 0.1, extra_ms: 1200, threshold_ms: 1000 }, rare: { rate: 0.05, route: '/rare/{order_id}' } });
    const { traces } = draw(9, 1000, shape);
    let e = 0;
    let sl = 0;
    let r = 0;
    for (const t of traces) {
      const hasError = t.spans.some((s) => s.status === 2);
      expect((t.classes & CLASS_ERROR) !== 0).toBe(hasError);
      const dur = Math.max(...t.spans.map((s) => s.endMs)) - Math.min(...t.spans.map((s) => s.startMs));
      expect((t.classes & CLASS_SLOW) !== 0).toBe(dur >= 1000);
      expect((t.classes & CLASS_RARE) !== 0).toBe(t.spans[0].name === 'POST /rare/{order_id}');
      if (hasError) e++;
      if (t.classes & CLASS_SLOW) sl++;
      if (t.classes & CLASS_RARE) r++;
    }
    expect(e).toBeGreaterThan(60);
    expect(e).toBeLessThan(140);
    expect(sl).toBeGreaterThan(60);
    expect(r).toBeGreaterThan(25);
  });

  test('encodes valid OTLP that the collector scans back, with Kubernetes resources, old and new semconv, PII-looking values', () => {
    const shape = withShapeDefaults({ pii_rate: 1, old_semconv_fraction: 0.5 });
    const { traces, bytes } = draw(5, 100, shape);
    const scanned = scanExportRequest(bytes);
    expect(scanned.rejected).toBe(0);
    expect(scanned.spans.length).toBe(traces.reduce((n, t) => n + t.spans.length, 0));
    const keys = new Set<string>();
    const values: string[] = [];
    for (const s of scanned.spans) {
      for (const [k, v] of spanAttributes(s)) {
        keys.add(k);
        if (typeof v === 'string') values.push(v);
      }
      expect(spanName(s).length).toBeGreaterThan(0);
    }
    const res = scanned.spans[0].resource.attributes();
    for (const k of ['service.name', 'k8s.pod.name', 'k8s.namespace.name', 'k8s.node.name', 'k8s.deployment.name']) expect(res.has(k)).toBe(true);
    for (const k of ['http.method', 'http.status_code', 'http.url', 'db.statement', 'http.request.method', 'db.query.text']) expect(keys.has(k)).toBe(true);
    expect(values.some((v) => /^[\w.]+@[\w.]+$/.test(v))).toBe(true);
    expect(values.some((v) => v.startsWith('Bearer '))).toBe(true);
    expect(values.some((v) => /^\d{4} \d{4} \d{4} \d{4}$/.test(v))).toBe(true);
    expect(values.some((v) => /\/users\/\d+\/orders\/[0-9a-f]{16}$/.test(v))).toBe(true);
    // span timestamps are the trace base plus offsets, exact to the nanosecond
    const t0 = traces[0];
    const root = scanned.spans.find((s) => s.traceId === t0.traceIdHex && !s.hasParent)!;
    expect(Math.abs(root.endNs / 1e6 - (BASE_MS + t0.spans[0].endMs))).toBeLessThan(0.001);
  });

  test('JSON encoding carries the same data as protobuf', () => {
    const graph = new ServiceGraph(withShapeDefaults({}), 1);
    const gen = new TraceGenerator(graph, 1);
    const its = items(Array.from({ length: 30 }, () => gen.next()));
    const fromProto = protobufToJsonObject(new ProtoEncoder(graph).encode(its));
    const fromJson = protobufToJsonObject(jsonToProtobuf(new JsonEncoder(graph).encode(its).toString('utf8')));
    expect(fromJson).toEqual(fromProto);
  });
});

describe('traffic schedule', () => {
  const base: TrafficConfig = {
    rate: 1000,
    duration_ms: 10_000,
    protocol: 'grpc',
    gzip: false,
    spans_per_request: 100,
    max_in_flight: 4,
    max_queued: 8,
    flush_interval_ms: 200,
    workers: 0,
    seed: 1,
    phases: [],
    bursts: undefined,
    retry: { initial_ms: 10, max_ms: 100, multiplier: 2, max_attempts: 3 },
    timeout_ms: 1000,
    shape: withShapeDefaults({}),
  };
  test('fixed rate, ramp and bursts integrate to the expected span totals', () => {
    expect(scheduledSpans(base)).toBe(10_000);
    const ramp = { ...base, phases: [{ duration_ms: 10_000, rate: 0, ramp_to: 2000 }] };
    expect(scheduledSpans(ramp)).toBeGreaterThan(9_800);
    expect(scheduledSpans(ramp)).toBeLessThan(10_200);
    expect(rateAt(ramp, 5000)).toBeCloseTo(1000, 0);
    const burst = { ...base, bursts: { every_ms: 5000, length_ms: 1000, rate: 11_000 } };
    expect(rateAt(burst, 500)).toBe(11_000);
    expect(rateAt(burst, 1500)).toBe(1000);
    expect(scheduledSpans(burst)).toBe(8 * 1000 + 2 * 11_000);
  });
  test('--rate scales every rate; --duration stretches the timeline', () => {
    const t = { ...base, phases: [{ duration_ms: 5000, rate: 100 }, { duration_ms: 5000, ramp_to: 300 }], bursts: { every_ms: 5000, length_ms: 500, rate: 1000 } };
    const r = scaleRates(t, 2);
    expect(r.phases[0].rate).toBe(200);
    expect(r.phases[1].ramp_to).toBe(600);
    expect(r.bursts!.rate).toBe(2000);
    const d = scaleDuration(t, 2000);
    expect(d.phases.map((p) => p.duration_ms)).toEqual([1000, 1000]);
    expect(d.bursts!.every_ms).toBe(1000);
    expect(d.bursts!.length_ms).toBe(100);
  });
});
