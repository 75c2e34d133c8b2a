import { describe, expect, it } from 'vitest';
import { decodeRequest, makeSpans, type SpanSpec } from '../../test/otlp.js';
import { encodeKeyValue, setSpanTraceState, spanTraceState } from '../../collector/pdata/attributes.js';
import { encodeExportRequest } from '../../collector/pdata/encode.js';
import { Slab } from '../../collector/pdata/slab.js';
import { indexSpan, ResourceRef, ScopeRef, Span } from '../../collector/pdata/spans.js';
import { WireWriter, utf8Encode } from '../../collector/pdata/wire.js';
import { encodeTraceStateField, foundTraceState, scanForStamp, writeStamped } from './stamp.js';

const KEYS = ['tailsampling.policy', 'tailsampling.composite_policy', 'SampleRate'].map(utf8Encode);

function attrsBytes(attrs: Record<string, string | number>): Uint8Array {
  const w = new WireWriter();
  for (const [k, v] of Object.entries(attrs)) encodeKeyValue(w, 9, k, v);
  return w.finish().slice();
}

/** The general path: re-encode with the new trace state, then append the attributes. */
function slowStamp(span: Span, ts: string | undefined, attrs: Uint8Array): Uint8Array {
  if (ts !== undefined && ts !== spanTraceState(span)) setSpanTraceState(span, ts);
  const b = new Uint8Array(span.len + attrs.length);
  b.set(span.bytes(), 0);
  b.set(attrs, span.len);
  return b;
}

/** Stamps a copy of `make()` both ways; returns [fast, slow] bytes and the fast span. */
function both(make: () => Span, ts: string | undefined, attrs: Uint8Array, slab = new Slab(4096)) {
  const fast = make();
  const spanId = fast.spanId;
  expect(scanForStamp(fast, KEYS)).toBe(true);
  const tsField = ts === undefined || ts === foundTraceState(fast) ? undefined : encodeTraceStateField(ts);
  writeStamped(fast, tsField, attrs, slab);
  const slow = slowStamp(make(), ts, attrs);
  expect(fast.spanId).toBe(spanId);
  return { fast, bytes: fast.bytes(), slow };
}

/** A span with its fields in an unusual order: trace_state before span_id, and an unknown field 99 at the end. */
function oddSpan(ts: string): Span {
  const w = new WireWriter();
  w.bytesField(1, Uint8Array.from({ length: 16 }, (_, i) => i + 1));
  if (ts !== '') w.stringField(3, ts);
  w.bytesField(2, Uint8Array.from({ length: 8 }, (_, i) => 0xa0 + i));
  w.stringField(5, 'odd');
  w.tag(99, 0);
  w.uint32(4242);
  const bytes = Buffer.from(w.finish());
  const span = new Span(bytes, 0, bytes.length, new ScopeRef(new ResourceRef(new Uint8Array(0)), new Uint8Array(0)));
  expect(indexSpan(span)).toBeUndefined();
  return span;
}

function decodedSpan(span: Span): Record<string, unknown> {
  return decodeRequest(encodeExportRequest([span])).resourceSpans![0].scopeSpans![0].spans![0];
}

const spec = (s: Partial<SpanSpec>): SpanSpec => ({ traceId: 'ab'.repeat(16), spanId: 'cd'.repeat(8), name: 'GET /x', attributes: { 'http.route': '/x' }, ...s });

describe('stamping a kept span by appending (stamp.ts)', () => {
  const attrs = attrsBytes({ 'tailsampling.policy': 'baseline', SampleRate: 10 });

  it('gives exactly the bytes of the re-encoding path', () => {
    const cases: Array<[() => Span, string | undefined]> = [
      [() => makeSpans([spec({})])[0], undefined],
      [() => makeSpans([spec({})])[0], 'ot=th:e6666666666666'],
      [() => makeSpans([spec({ traceState: 'vendor=x,ot=th:8;rv:0123456789abcd' })])[0], 'ot=th:e;rv:0123456789abcd,vendor=x'],
      [() => makeSpans([spec({ traceState: 'ot=th:8;rv:0123456789abcd' })])[0], 'ot=rv:0123456789abcd'],
      [() => makeSpans([spec({ traceState: 'ot=th:8' })])[0], ''],
      [() => oddSpan('ot=th:8,v=1'), 'ot=th:c,v=1'],
      [() => oddSpan('ot=th:8'), ''],
      [() => oddSpan(''), 'ot=th:c'],
    ];
    for (const [make, ts] of cases) {
      const { bytes, slow } = both(make, ts, attrs);
      expect(Buffer.from(bytes).equals(Buffer.from(slow))).toBe(true);
    }
  });

  it('decodes (protobufjs) to the original span plus the stamped attributes and trace state', () => {
    const orig = decodedSpan(makeSpans([spec({ traceState: 'vendor=x,ot=th:8' })])[0]);
    const { fast } = both(() => makeSpans([spec({ traceState: 'vendor=x,ot=th:8' })])[0], 'ot=th:f,vendor=x', attrs);
    const got = decodedSpan(fast);
    expect(got.traceState).toBe('ot=th:f,vendor=x');
    expect(got.attributes).toEqual([
      { key: 'http.route', value: { stringValue: '/x' } },
      { key: 'tailsampling.policy', value: { stringValue: 'baseline' } },
      { key: 'SampleRate', value: { intValue: '10' } },
    ]);
    expect({ ...got, traceState: undefined, attributes: undefined }).toEqual({ ...orig, traceState: undefined, attributes: undefined });
  });

  it('keeps unknown fields and the span id when trace_state comes before span_id', () => {
    const { fast, bytes } = both(() => oddSpan('ot=th:8,v=1'), 'ot=th:c,v=1', attrs);
    expect(fast.spanId).toBe('a0a1a2a3a4a5a6a7');
    expect(Buffer.from(bytes).includes(Buffer.from([0x98, 0x06, 0x92, 0x21]))).toBe(true); // field 99 varint 4242
    const d = decodedSpan(fast);
    expect(d.traceState).toBe('ot=th:c,v=1');
    expect(d.name).toBe('odd');
  });

  it('declines when a stamped key is already there (it must be replaced, not duplicated) or trace_state is repeated', () => {
    expect(scanForStamp(makeSpans([spec({ attributes: { 'tailsampling.policy': 'upstream' } })])[0], KEYS)).toBe(false);
    expect(scanForStamp(makeSpans([spec({ attributes: { SampleRate: 3 } })])[0], KEYS)).toBe(false);
    expect(scanForStamp(makeSpans([spec({ attributes: { 'tailsampling.policyX': 'a', SampleRat: 1 } })])[0], KEYS)).toBe(true);
    const w = new WireWriter();
    w.bytesField(1, new Uint8Array(16).fill(1));
    w.bytesField(2, new Uint8Array(8).fill(2));
    w.stringField(3, 'a=1');
    w.stringField(3, 'b=2');
    const b = Buffer.from(w.finish());
    const span = new Span(b, 0, b.length, new ScopeRef(new ResourceRef(new Uint8Array(0)), new Uint8Array(0)));
    expect(scanForStamp(span, KEYS)).toBe(false);
  });

  it('many stamped spans share slabs and each stays intact', () => {
    const slab = new Slab(4096);
    const out: Span[] = [];
    for (let i = 0; i < 200; i++) {
      const s = makeSpans([spec({ spanId: (i + 1).toString(16).padStart(16, '0'), traceState: i % 2 ? 'ot=th:8' : '' })])[0];
      expect(scanForStamp(s, KEYS)).toBe(true);
      writeStamped(s, encodeTraceStateField('ot=th:c'), attrs, slab);
      out.push(s);
    }
    expect(new Set(out.map((s) => s.buf)).size).toBeGreaterThan(1);
    expect(new Set(out.map((s) => s.buf)).size).toBeLessThan(out.length);
    for (let i = 0; i < out.length; i++) {
      expect(out[i].spanId).toBe((i + 1).toString(16).padStart(16, '0'));
      const d = decodedSpan(out[i]);
      expect(d.traceState).toBe('ot=th:c');
      expect((d.attributes as unknown[]).length).toBe(3);
    }
  });
});
