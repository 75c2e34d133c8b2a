import { describe, expect, it } from 'vitest';
import { makeSpans, spanIdHex, traceIdHex, type SpanSpec } from '../../test/otlp.js';
import { encodeExportRequest } from '../../collector/pdata/encode.js';
import { scanExportRequest, type Span } from '../../collector/pdata/spans.js';
import { POOL_SLAB_BYTES, SpanPool } from './span_pool.js';
import { MemoryTraceStore } from './store.js';

function specs(n: number, trace = traceIdHex()): SpanSpec[] {
  return Array.from({ length: n }, (_, i) => ({ traceId: trace, spanId: spanIdHex(), name: `op-${i}`, startMs: 1000 + i, durationMs: 5, status: i % 3, kind: 2, attributes: { 'k.i': i } }));
}

const hex = (b: Uint8Array) => Buffer.from(b).toString('hex');

describe('SpanPool', () => {
  it('files a copy with the same bytes and index; the given span and its request buffer are untouched', () => {
    const given = makeSpans(specs(3), { 'service.name': 'svc' });
    const before = given.map((s) => hex(s.bytes()));
    const pool = new SpanPool();
    const filed = given.map((s) => pool.file(s, s.traceId));
    for (let i = 0; i < given.length; i++) {
      const g = given[i];
      const f = filed[i];
      expect(f).not.toBe(g);
      expect(hex(f.bytes())).toBe(before[i]);
      expect(hex(g.bytes())).toBe(before[i]);
      expect(f.buf.buffer).not.toBe(g.buf.buffer);
      expect(f.spanId).toBe(g.spanId);
      expect([f.traceId, f.hasParent, f.startNs, f.endNs, f.statusCode, f.kind, f.flags]).toEqual([g.traceId, g.hasParent, g.startNs, g.endNs, g.statusCode, g.kind, g.flags]);
      // Scope and resource headers are copies too (the request's were views into its buffer).
      expect(f.scope.header.buffer).not.toBe(g.buf.buffer);
      expect(f.resource.header.buffer).not.toBe(g.buf.buffer);
      expect(hex(f.scope.header)).toBe(hex(g.scope.header));
      expect(f.resource.serviceName()).toBe('svc');
    }
    // Spans of one ScopeSpans share one copied scope, so they are exported as one group.
    expect(filed[1].scope).toBe(filed[0].scope);
    expect(hex(encodeExportRequest(filed))).toBe(hex(encodeExportRequest(given)));
  });

  it('reuses a slab once every span in it is released, never while one is live', () => {
    const pool = new SpanPool();
    const perSlab = (n: number) => Math.floor(POOL_SLAB_BYTES / n);
    const src = makeSpans(specs(1))[0];
    const fill = (count: number) => Array.from({ length: count }, () => pool.file(src, src.traceId));
    // Fill two slabs and start a third.
    const first = fill(perSlab(src.len));
    const second = fill(perSlab(src.len));
    const third = fill(1);
    expect(pool.slabCount).toBe(3);
    expect(new Set(first.map((s) => s.buf)).size).toBe(1);
    const slabA = first[0].buf;
    // All of slab A but one span released: nothing may land on the live one.
    for (let i = 1; i < first.length; i++) pool.release(first[i].buf);
    expect(pool.spareCount).toBe(0);
    const more = fill(perSlab(src.len));
    expect(more.some((s) => s.buf === slabA)).toBe(false);
    expect(hex(first[0].bytes())).toBe(hex(src.bytes()));
    // The last one released: slab A is spare and the next new slab is A itself.
    pool.release(first[0].buf);
    expect(pool.spareCount).toBe(1);
    const slabsBefore = pool.slabCount;
    const later = fill(perSlab(src.len) + 1);
    expect(later.some((s) => s.buf === slabA)).toBe(true);
    expect(pool.slabCount).toBe(slabsBefore);
    for (const s of [...second, ...third, ...more, ...later]) expect(hex(s.bytes())).toBe(hex(src.bytes()));
  });

  it('ignores buffers it does not own, and detach moves a span out of the pool', () => {
    const pool = new SpanPool();
    const src = makeSpans(specs(2));
    const a = pool.file(src[0], src[0].traceId);
    const b = pool.file(src[1], src[1].traceId);
    pool.release(src[0].buf); // not the pool's: no effect
    const want = hex(a.bytes());
    const spanId = a.spanId;
    const held = a.buf;
    SpanPool.detach(a);
    expect(a.buf).not.toBe(held);
    expect(a.buf.buffer).not.toBe(held.buffer);
    expect(hex(a.bytes())).toBe(want);
    expect(a.spanId).toBe(spanId);
    pool.release(held);
    pool.release(b.buf);
    // The slab is free now: overwrite it and check the detached span kept its bytes.
    const big = makeSpans(specs(40));
    for (const s of big) pool.file(s, s.traceId);
    expect(hex(a.bytes())).toBe(want);
  });

  it('reuses a released Span object only when told it is done, with every field of the new span', () => {
    const pool = new SpanPool();
    const [a, b] = makeSpans([...specs(1), { ...specs(1)[0], parentSpanId: spanIdHex(), status: 2, kind: 3, startMs: 5000 }]);
    const first = pool.file(a, 'x'.repeat(32));
    pool.release(first.buf);
    const second = pool.file(b, b.traceId);
    expect(second).not.toBe(first);
    pool.release(second.buf, second);
    const reused = pool.file(b, b.traceId);
    expect(reused).toBe(second);
    // Every own field equals what a fresh copy gets (a field added to Span and not set here would show).
    const fresh = new SpanPool().file(b, b.traceId);
    const view = (s: Span) => Object.fromEntries(Object.keys(s).map((k) => [k, k === 'buf' ? hex(s.bytes()) : k === 'off' || k === 'spanIdOff' ? (s as unknown as Record<string, number>)[k] - s.off : k === 'scope' ? hex(s.scope.header) : (s as unknown as Record<string, unknown>)[k]]));
    expect(Object.keys(reused).sort()).toEqual(Object.keys(fresh).sort());
    expect(view(reused)).toEqual(view(fresh));
    expect(reused.spanId).toBe(b.spanId);
  });

  it('gives a span larger than an eighth of a slab its own buffer', () => {
    const pool = new SpanPool();
    const [s] = makeSpans([{ traceId: traceIdHex(), spanId: spanIdHex(), attributes: { big: 'x'.repeat(POOL_SLAB_BYTES / 4) } }]);
    const f = pool.file(s, s.traceId);
    expect(f.off).toBe(0);
    expect(f.buf.length).toBe(s.len);
    expect(pool.slabCount).toBe(0);
    expect(hex(f.bytes())).toBe(hex(s.bytes()));
  });

  it('round-trips a whole request', () => {
    const req = encodeExportRequest(makeSpans(specs(5)));
    const spans: Span[] = scanExportRequest(req).spans;
    const pool = new SpanPool();
    expect(hex(encodeExportRequest(spans.map((s) => pool.file(s, s.traceId))))).toBe(hex(req));
  });

  it('MemoryTraceStore files copies only with copySpans, each with the trace id', () => {
    for (const copySpans of [true, false]) {
      const store = new MemoryTraceStore({ copySpans });
      const given = makeSpans(specs(2));
      const id = given[0].traceId.slice(0, 16) + given[0].traceId.slice(16);
      const t = store.create(id, 0);
      for (const g of given) store.append(t, g);
      expect(t.spans.every((s) => s.traceId === id)).toBe(true);
      expect(t.encodedBytes).toBe(given[0].len + given[1].len);
      for (let i = 0; i < given.length; i++) {
        expect(hex(t.spans[i].bytes())).toBe(hex(given[i].bytes()));
        if (copySpans) {
          expect(t.spans[i]).not.toBe(given[i]);
          expect(t.spans[i].buf.buffer).not.toBe(given[i].buf.buffer);
        } else expect(t.spans[i]).toBe(given[i]);
      }
    }
  });
  it('does not reuse a Span object it did not file', () => {
    const [viewSpan] = makeSpans(specs(1));
    const pool = new SpanPool();
    pool.release(viewSpan.buf, viewSpan); // a span kept in its request buffer, spilled
    const [next] = makeSpans(specs(1));
    const filed = pool.file(next, next.traceId);
    expect(filed).not.toBe(viewSpan);
    expect(viewSpan.buf.length).toBeGreaterThan(0); // left as it was
  });
});
