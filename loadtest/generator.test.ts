import { describe, expect, test } from 'vitest';
import { Prng } from './generator/prng.js';
import { CLASS_ERROR, CLASS_RARE, CLASS_SLOW, KIND_SERVER, ServiceGraph, TraceGenerator, type GenTrace } from './generator/model.js';
import { withShapeDefaults } from './generator/shape.js';
import { JsonEncoder, ProtoEncoder, placeTrace, type BatchItem } from './generator/encode.js';
import { rateAt, scheduledSpans, scaleDuration, scaleRates, type TrafficConfig } from './generator/traffic.js';
import { scanExportRequest } from '../collector/pdata/spans.js';
import { spanAttributes, spanName } from '../collector/pdata/attributes.js';
import { jsonToProtobuf, protobufToJsonObject } from '../collector/pdata/otlp-json.js';
import { ReplayRewriter, buildReplayPool } from './generator/replay.js';
import { decodeRequest } from '../test/otlp.js';

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

describe('replay mode', () => {
  const SEED = 11;
  const SPR = 100;
  function makePool(size: number) {
    const graph = new ServiceGraph(withShapeDefaults({}), SEED);
    return buildReplayPool(new TraceGenerator(graph, SEED), new ProtoEncoder(graph), SPR, size, BASE_MS);
  }
  /** Independent reference for the rewrite: the first 4 id bytes XOR the key (big-endian). */
  function xorHex(hex: string, key: number): string {
    const b = Buffer.from(hex, 'hex');
    b.writeUInt32BE((b.readUInt32BE(0) ^ key) >>> 0, 0);
    return b.toString('hex');
  }
  type JSpan = { traceId: string; spanId: string; parentSpanId?: string; startTimeUnixNano: string; endTimeUnixNano: string; events?: Array<{ timeUnixNano: string }> };
  const spansOf = (bytes: Uint8Array): JSpan[] =>
    (decodeRequest(bytes).resourceSpans ?? []).flatMap((rs) => (rs.scopeSpans ?? []).flatMap((ss) => (ss.spans ?? []) as unknown as JSpan[]));

  test('the pool is the model batched as the loop does, ending at a trace boundary', () => {
    const pool = makePool(6);
    const graph = new ServiceGraph(withShapeDefaults({}), SEED);
    const ref = new TraceGenerator(graph, SEED);
    const total = pool.entries.reduce((n, e) => n + e.spans, 0);
    expect(pool.entries.length).toBeGreaterThanOrEqual(6);
    expect(pool.entries.length).toBeLessThanOrEqual(7);
    for (const e of pool.entries.slice(0, 6)) expect(e.spans).toBe(SPR);
    expect(pool.traces.reduce((n, t) => n + t.spans, 0)).toBe(total);
    for (const t of pool.traces) {
      const g = ref.next();
      expect(Buffer.from(t.id).toString('hex')).toBe(g.traceIdHex);
      expect([t.spans, t.classes, t.durationMs]).toEqual([g.spans.length, g.classes, g.durationMs]);
    }
    // the offsets cover every id: one trace id and one span id per span, plus one per parent
    for (const e of pool.entries) {
      const spans = spansOf(e.body);
      expect(e.traceIdOffs.length).toBe(spans.length);
      expect(e.spanIdOffs.length).toBe(spans.length + spans.filter((s) => s.parentSpanId).length);
    }
  });

  test('sends: unique ids, parent links inside the trace, shifted times, valid for the scanner, truth matches', () => {
    const pool = makePool(5);
    const rw = new ReplayRewriter(pool);
    const workers = 2;
    const worker = 1;
    const seen = new Set<string>();
    const sentTraceIds = new Set<string>();
    let sentSpans = 0;
    for (let cycle = 0; cycle < 6; cycle++) {
      const key = (cycle * workers + worker) >>> 0;
      rw.setKey(key);
      const truth = new Map<string, { spans: number; classes: number }>();
      const rootEnd = new Map<number, number>();
      const spanIdsByTrace = new Map<string, Set<string>>();
      const parents: Array<[string, string]> = [];
      const perTrace = new Map<string, number>();
      pool.entries.forEach((e, ei) => {
        for (let k = 0; k < e.traces.length; k += 2) {
          const ti = e.traces[k];
          if (pool.traces[ti].firstEntry !== ei) continue;
          const end = BASE_MS + 60_000 * (cycle + 1) + 7 * ei;
          rw.startTrace(ti, end);
          rootEnd.set(ti, end);
          const id = new Uint8Array(16);
          rw.traceId(ti, id);
          truth.set(Buffer.from(id).toString('hex'), { spans: pool.traces[ti].spans, classes: pool.traces[ti].classes });
        }
        const body = rw.render(e);
        expect(Buffer.compare(body, e.body)).not.toBe(0); // the template is untouched, the copy differs
        const scanned = scanExportRequest(body);
        expect(scanned.rejected).toBe(0);
        expect(scanned.spans.length).toBe(e.spans);
        const sent = spansOf(body);
        const tmpl = spansOf(e.body);
        expect(sent.length).toBe(tmpl.length);
        // spans are grouped by resource and scope, not by trace: find each span's pool trace by id
        const byId = new Map<string, number>();
        const inEntry = new Map<number, number>();
        for (let k = 0; k < e.traces.length; k += 2) byId.set(Buffer.from(pool.traces[e.traces[k]].id).toString('hex'), e.traces[k]);
        for (let i = 0; i < sent.length; i++) {
          const s = sent[i];
          const t = tmpl[i];
          expect(scanned.spans[i].traceId).toBe(s.traceId);
          // exactly the template after the same rewrite
          expect(s.traceId).toBe(xorHex(t.traceId, key));
          expect(s.spanId).toBe(xorHex(t.spanId, key));
          expect(s.parentSpanId ?? '').toBe(t.parentSpanId ? xorHex(t.parentSpanId, key) : '');
          const ti = byId.get(t.traceId)!;
          expect(ti).toBeDefined();
          inEntry.set(ti, (inEntry.get(ti) ?? 0) + 1);
          const shift = BigInt(rootEnd.get(ti)! - BASE_MS) * 1_000_000n;
          expect(BigInt(s.startTimeUnixNano)).toBe(BigInt(t.startTimeUnixNano) + shift);
          expect(BigInt(s.endTimeUnixNano)).toBe(BigInt(t.endTimeUnixNano) + shift);
          for (let v = 0; v < (s.events ?? []).length; v++) expect(BigInt(s.events![v].timeUnixNano)).toBe(BigInt(t.events![v].timeUnixNano) + shift);
          // the root span ends when its trace is sent
          if (!s.parentSpanId) expect(Math.abs(Number(BigInt(s.endTimeUnixNano) / 1000n) / 1000 - rootEnd.get(ti)!)).toBeLessThan(1);
          const k = `${s.traceId}:${s.spanId}`;
          expect(seen.has(k)).toBe(false);
          seen.add(k);
          let ids = spanIdsByTrace.get(s.traceId);
          if (ids === undefined) spanIdsByTrace.set(s.traceId, (ids = new Set()));
          ids.add(s.spanId);
          if (s.parentSpanId) parents.push([s.traceId, s.parentSpanId]);
          perTrace.set(s.traceId, (perTrace.get(s.traceId) ?? 0) + 1);
          sentSpans++;
        }
        for (let k = 0; k < e.traces.length; k += 2) expect(inEntry.get(e.traces[k])).toBe(e.traces[k + 1]);
      });
      // every parent is a span of the same trace (traces may cross requests, never cycles)
      for (const [traceId, parent] of parents) expect(spanIdsByTrace.get(traceId)!.has(parent)).toBe(true);
      // the truth (rewritten ids, span counts) is what was sent; no trace id repeats across cycles
      expect([...perTrace.keys()].sort()).toEqual([...truth.keys()].sort());
      for (const [id, n] of perTrace) {
        expect(n).toBe(truth.get(id)!.spans);
        expect(sentTraceIds.has(id)).toBe(false);
        sentTraceIds.add(id);
      }
    }
    expect(seen.size).toBe(sentSpans);
    expect(sentTraceIds.size).toBe(6 * pool.traces.length);
  });
});
