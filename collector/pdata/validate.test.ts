import { isUtf8 } from 'node:buffer';
import { describe, expect, it } from 'vitest';
import { scanExportRequest } from './spans.js';
import { encodeExportRequest } from './encode.js';
import { isValidUtf8, MAX_ANY_VALUE_DEPTH } from './validate.js';
import { WireWriter, WIRE_I32, WIRE_I64, WIRE_LEN, WIRE_VARINT } from './wire.js';
import { scanJsonRequest } from './otlp-json.js';
import { requestJson } from '../../test/otlp.js';

const TRACE = new Uint8Array(16).fill(0xab);
const SPAN = new Uint8Array(8).fill(0xcd);

type Build = (w: WireWriter) => void;

/** Span bytes: valid ids, a name, then whatever `extra` writes. */
function span(extra: Build = () => {}): Uint8Array {
  const w = new WireWriter();
  w.bytesField(1, TRACE);
  w.bytesField(2, SPAN);
  w.stringField(5, 'op');
  extra(w);
  return w.finish();
}

function msg(build: Build): Uint8Array {
  const w = new WireWriter();
  build(w);
  return w.finish();
}

/** ExportTraceServiceRequest { resource_spans { resource?; scope_spans { scope?; spans... } } } */
function request(spans: Uint8Array[], header: { resource?: Uint8Array; scope?: Uint8Array; rsExtra?: Build; ssExtra?: Build } = {}): Uint8Array {
  const w = new WireWriter();
  const rs = w.beginLen(1);
  if (header.resource) w.bytesField(1, header.resource);
  header.rsExtra?.(w);
  const ss = w.beginLen(2);
  if (header.scope) w.bytesField(1, header.scope);
  header.ssExtra?.(w);
  for (const s of spans) w.bytesField(2, s);
  w.endLen(ss);
  w.endLen(rs);
  return w.finish();
}

/** KeyValue bytes. */
function kv(key: Uint8Array | string, value?: Uint8Array): Uint8Array {
  return msg((w) => {
    if (typeof key === 'string') w.stringField(1, key);
    else w.bytesField(1, key);
    if (value) w.bytesField(2, value);
  });
}
const strValue = (b: Uint8Array | string) => msg((w) => (typeof b === 'string' ? w.stringField(1, b) : w.bytesField(1, b)));
const attr = (k: Uint8Array | string, v?: Uint8Array): Build => (w) => w.bytesField(9, kv(k, v));

/** AnyValue nested `levels` deep through array values (level 1 is the attribute's value). */
function nested(levels: number): Uint8Array {
  let v = strValue('leaf');
  for (let i = 1; i < levels; i++) {
    const inner = v;
    v = msg((w) => w.bytesField(5, msg((a) => a.bytesField(1, inner))));
  }
  return v;
}

function scanOne(extra: Build) {
  return scanExportRequest(request([span(), span(extra), span()]));
}

describe('full span validation on receipt', () => {
  it('accepts every valid shape: all AnyValue kinds, events, links, status, unknown fields, non-ASCII UTF-8', () => {
    const s = span((w) => {
      w.stringField(3, 'vendor=é');
      attr('ключ', strValue('значение — 日本語 😀'))(w);
      attr('b', msg((v) => { v.tag(2, WIRE_VARINT); v.uint32(1); }))(w);
      attr('i', msg((v) => { v.tag(3, WIRE_VARINT); v.int64(-5n); }))(w);
      attr('d', msg((v) => { v.tag(4, WIRE_I64); v.double(1.5); }))(w);
      attr('bytes', msg((v) => v.bytesField(7, new Uint8Array([0xff, 0xfe, 0x00]))))(w);
      attr('kv', msg((v) => v.bytesField(6, msg((l) => l.bytesField(1, kv('inner', strValue('x')))))))(w);
      attr('deep', nested(MAX_ANY_VALUE_DEPTH))(w);
      w.bytesField(11, msg((e) => { e.tag(1, WIRE_I64); e.fixed64BigInt(5n); e.stringField(2, 'ev'); e.bytesField(3, kv('a', strValue('b'))); e.tag(4, WIRE_VARINT); e.uint32(1); }));
      w.bytesField(13, msg((l) => { l.bytesField(1, TRACE); l.bytesField(2, SPAN); l.stringField(3, 'x=1'); l.bytesField(4, kv('a')); l.tag(5, WIRE_VARINT); l.uint32(0); l.tag(6, WIRE_I32); l.fixed32(1); }));
      w.bytesField(15, msg((st) => { st.stringField(2, 'boom'); st.tag(3, WIRE_VARINT); st.uint32(2); }));
      w.tag(16, WIRE_I32);
      w.fixed32(0x101);
      w.tag(99, WIRE_VARINT); // unknown fields of every allowed wire type
      w.uint32(7);
      w.tag(100, WIRE_I64);
      w.fixed64BigInt(1n);
      w.tag(101, WIRE_I32);
      w.fixed32(1);
      w.stringField(102, 'future');
    });
    const req = request([s], { resource: msg((r) => r.bytesField(1, kv('service.name', strValue('svc')))), scope: msg((sc) => { sc.stringField(1, 'lib'); sc.stringField(2, '1.0'); }) });
    const r = scanExportRequest(req);
    expect(r.rejectReason).toBe('');
    expect(r.spans).toHaveLength(1);
    expect(r.spans[0].statusCode).toBe(2);
    expect(r.spans[0].flags).toBe(0x101);
    // unknown fields are carried byte for byte
    expect(Buffer.from(encodeExportRequest(r.spans)).equals(Buffer.from(req))).toBe(true);
  });

  const cases: Array<[string, Build, RegExp, boolean]> = [
    ['invalid UTF-8 in an attribute value', attr('k', strValue(new Uint8Array([0x61, 0xc3, 0x28]))), /^span 1: attributes\[0\]\.value: invalid UTF-8 in string_value$/, true],
    ['a UTF-16 surrogate encoded in UTF-8', attr('k', strValue(new Uint8Array([0xed, 0xa0, 0x80]))), /invalid UTF-8 in string_value/, true],
    ['an overlong encoding in a key', attr(new Uint8Array([0xc0, 0xaf])), /attributes\[0\]: invalid UTF-8 in key/, true],
    ['invalid UTF-8 in the name', (w) => w.bytesField(5, new Uint8Array([0xff])), /^span 1: invalid UTF-8 in name$/, true],
    ['field number 0', (w) => { w.tag(0, WIRE_VARINT); w.uint32(1); }, /field number 0/, true],
    ['a group wire type', (w) => w.uint32((50 << 3) | 3), /group start is not allowed/, true],
    ['wire type 6', (w) => w.uint32((50 << 3) | 6), /wire type 6/, true],
    ['a known field with the wrong wire type', (w) => { w.tag(7, WIRE_VARINT); w.uint32(1); }, /start_time_unix_nano: varint, want fixed64/, true],
    ['a wrong wire type inside an AnyValue', attr('k', msg((v) => { v.tag(3, WIRE_LEN); v.uint32(0); })), /attributes\[0\]\.value: int_value: length-delimited, want varint/, true],
    ['a length past the end of an event', (w) => w.bytesField(11, new Uint8Array([0x12, 0x09, 0x61])), /events\[0\]\.name: length 9 runs past/, true],
    ['a truncated double', attr('k', new Uint8Array([0x21, 1, 2, 3])), /truncated double_value/, true],
    ['a varint longer than 10 bytes', attr('k', new Uint8Array([0x18, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x01])), /varint/, true],
    ['bad UTF-8 in a kvlist key', attr('k', msg((v) => v.bytesField(6, msg((l) => l.bytesField(1, kv(new Uint8Array([0xfe]))))))), /kvlist_value\.values\[0\]: invalid UTF-8 in key/, true],
    ['bad UTF-8 in a link trace_state', (w) => w.bytesField(13, msg((l) => l.bytesField(3, new Uint8Array([0x80])))), /links\[0\]: invalid UTF-8 in trace_state/, true],
    ['bad UTF-8 in the status message', (w) => w.bytesField(15, msg((s) => s.bytesField(2, new Uint8Array([0xc3])))), /status: invalid UTF-8 in message/, true],
    [`AnyValue nesting of ${MAX_ANY_VALUE_DEPTH + 1} levels`, attr('deep', nested(MAX_ANY_VALUE_DEPTH + 1)), /nested deeper than 32 levels/, true],
    ['a link span id of 3 bytes', (w) => w.bytesField(13, msg((l) => l.bytesField(2, new Uint8Array(3)))), /links\[0\]: invalid span_id: 3 bytes, want 8 or none/, false],
    ['a parent span id of 4 bytes', (w) => w.bytesField(4, new Uint8Array(4)), /invalid parent_span_id: 4 bytes/, false],
  ];
  for (const [what, extra, reason, malformed] of cases) {
    it(`rejects the span alone for ${what}`, () => {
      const r = scanOne(extra);
      expect(r.spans).toHaveLength(2);
      expect(r.rejected).toBe(1);
      expect(r.malformed).toBe(malformed ? 1 : 0);
      expect(r.rejectIndex).toBe(1);
      expect(r.rejectReason).toMatch(reason);
    });
  }

  it('rejects every span under a bad resource or scope header, and only those', () => {
    const bad = request([span(), span()], { resource: msg((r) => r.bytesField(1, kv('service.name', strValue(new Uint8Array([0xff]))))) });
    const good = request([span()]);
    const both = new Uint8Array([...good, ...bad]);
    const r = scanExportRequest(both);
    expect(r.spans).toHaveLength(1);
    expect(r.rejected).toBe(2);
    expect(r.malformed).toBe(2);
    expect(r.rejectReason).toBe('span 1: resource: attributes[0].value: invalid UTF-8 in string_value');
    const s = scanExportRequest(request([span()], { scope: msg((sc) => sc.bytesField(2, new Uint8Array([0xc0]))) }));
    expect(s.rejected).toBe(1);
    expect(s.rejectReason).toBe('span 0: scope: invalid UTF-8 in version');
    const url = scanExportRequest(request([span()], { ssExtra: (w) => w.bytesField(3, new Uint8Array([0xc0])) }));
    expect(url.rejectReason).toMatch(/schema_url/);
  });

  it('refuses the whole request when its framing is broken', () => {
    const ok = request([span()]);
    expect(() => scanExportRequest(ok.subarray(0, ok.length - 1))).toThrow(/resource_spans|runs past/);
    expect(() => scanExportRequest(new Uint8Array([0x08, 0x01]))).toThrow(/resource_spans: resource_spans has wire type 0/);
    expect(() => scanExportRequest(new Uint8Array([0x00, 0x01]))).toThrow(/field number 0/);
    expect(() => scanExportRequest(request([], { rsExtra: (w) => w.uint32((9 << 3) | 3) }))).toThrow(/wire type 3/);
    expect(() => scanExportRequest(request([], { ssExtra: (w) => { w.tag(2, WIRE_VARINT); w.uint32(1); } }))).toThrow(/spans has wire type 0/);
  });

  it('validates UTF-8 exactly as node:buffer isUtf8 does (random and edge sequences)', () => {
    let seed = 7;
    const rnd = () => (seed = (Math.imul(seed, 1103515245) + 12345) >>> 0) >>> 24;
    const b = new Uint8Array(300);
    for (let k = 0; k < 20000; k++) {
      const n = k % 7 === 0 ? 130 + (k % 150) : 1 + (k % 9);
      for (let i = 0; i < n; i++) b[i] = k % 3 === 0 ? rnd() & 0x7f : rnd() & 1 ? rnd() : 0x80 | (rnd() & 0x3f);
      if (k % 5 === 0) b[0] = 0xc0 + (rnd() & 0x3f);
      const off = k % 4;
      expect(isValidUtf8(b, off, n)).toBe(isUtf8(b.subarray(off, n)));
    }
    for (const s of ['', 'a', 'é', '€', '😀', '\u{10FFFF}', 'x'.repeat(200) + 'é']) expect(isValidUtf8(Buffer.from(s), 0, Buffer.byteLength(s))).toBe(true);
    for (const bad of [[0xf4, 0x90, 0x80, 0x80], [0xe0, 0x80, 0x80], [0xf0, 0x80, 0x80, 0x80], [0xc1, 0xbf], [0xe2, 0x82]]) {
      expect(isValidUtf8(new Uint8Array(bad), 0, bad.length)).toBe(false);
    }
  });
});

describe('OTLP/JSON: a span with a bad value is rejected alone', () => {
  const base = requestJson([{ traceId: '0af7651916cd43dd8448eb211c80319c', spanId: 'b7ad6b7169203331' }]);
  const good = base.resourceSpans[0].scopeSpans[0].spans[0];
  const withSpans = (spans: unknown[]) => JSON.stringify({ resourceSpans: [{ resource: base.resourceSpans[0].resource, scopeSpans: [{ spans }] }] });

  it('names the first problem by the span index the client sent, across conversion and scan', () => {
    const spans = [
      good,
      { ...good, name: '\ud800' }, // a lone surrogate: JSON parses, protobuf would carry invalid UTF-8
      { ...good, attributes: [{ key: 'n', value: { intValue: 'abc' } }] },
      { ...good, status: 'bad' },
      { ...good, spanId: 'zz' },
      good,
    ];
    const r = scanJsonRequest(withSpans(spans));
    expect(r.spans).toHaveLength(2);
    expect(r.rejected).toBe(4);
    expect(r.malformed).toBe(4);
    expect(r.rejectReason).toBe('span 1: invalid UTF-8 in name');
    const later = scanJsonRequest(withSpans([good, good, { ...good, attributes: [{ key: 'n', value: { intValue: 'abc' } }] }, { ...good, name: '\udc00' }]));
    expect(later.rejectReason).toBe('span 2: attributes[0].value.intValue: an integer expected');
    expect(later.rejected).toBe(2);
  });

  it('rejects the spans of a bad resource header and refuses a broken structure whole', () => {
    const r = scanJsonRequest(JSON.stringify({ resourceSpans: [{ resource: { attributes: 'x' }, scopeSpans: [{ spans: [good, good] }] }, { scopeSpans: [{ spans: [good] }] }] }));
    expect(r.spans).toHaveLength(1);
    expect(r.rejected).toBe(2);
    expect(r.rejectReason).toBe('span 0: resource.attributes: an array expected');
    expect(() => scanJsonRequest('{"resourceSpans": {}}')).toThrow(/resourceSpans must be an array/);
    expect(() => scanJsonRequest('[1]')).toThrow(/must be an object/);
  });

  it('rejects deep nesting without overflowing the stack', () => {
    const deep = '{"arrayValue":{"values":['.repeat(20000) + '{"stringValue":"x"}' + ']}}'.repeat(20000);
    const text = withSpans([good, { ...good, attributes: [{ key: 'deep', value: 'DEEP' }] }]).replace('"DEEP"', deep);
    const r = scanJsonRequest(text);
    expect(r.spans).toHaveLength(1);
    expect(r.rejectReason).toMatch(/^span 1: .*nested deeper than/);
  });
});
