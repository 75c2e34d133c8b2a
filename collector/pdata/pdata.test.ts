import { describe, expect, it } from 'vitest';
import { scanExportRequest } from './spans.js';
import { encodeExportRequest, splitExportRequest } from './encode.js';
import { spanAttributes, setSpanAttributes, setSpanTraceState, spanTraceState, spanName } from './attributes.js';
import { requestBytes, decodeRequest, makeSpans } from '../../test/otlp.js';
import { WireWriter } from './wire.js';

const T1 = '0af7651916cd43dd8448eb211c80319c';
const T2 = '4bf92f3577b34da6a3ce929d0e0e4736';

describe('span model', () => {
  it('indexes ids, times, status and parentage from the bytes', () => {
    const spans = makeSpans([
      { traceId: T1, spanId: 'b7ad6b7169203331', name: 'root', startMs: 1000, durationMs: 250, status: 2 },
      { traceId: T1, spanId: '00f067aa0ba902b7', parentSpanId: 'b7ad6b7169203331', kind: 3 },
    ]);
    expect(spans).toHaveLength(2);
    expect(spans[0].traceId).toBe(T1);
    expect(spans[0].spanId).toBe('b7ad6b7169203331');
    expect(spans[0].hasParent).toBe(false);
    expect(spans[0].statusCode).toBe(2);
    expect(spans[0].endNs - spans[0].startNs).toBe(250e6);
    expect(spans[1].hasParent).toBe(true);
    expect(spans[1].kind).toBe(3);
    expect(spans[0].resource.serviceName()).toBe('checkout');
    expect(spanName(spans[0])).toBe('root');
  });

  it('rejects spans with a bad trace id but keeps the valid ones', () => {
    const bytes = requestBytes([
      { traceId: T1, spanId: 'b7ad6b7169203331' },
      { traceId: '00000000000000000000000000000000', spanId: 'b7ad6b7169203332' },
      { traceId: 'abcd', spanId: 'b7ad6b7169203333' },
    ]);
    const r = scanExportRequest(bytes);
    expect(r.spans).toHaveLength(1);
    expect(r.rejected).toBe(2);
    expect(r.rejectReason).toMatch(/trace_id/);
  });

  it('re-frames untouched spans byte for byte', () => {
    const bytes = requestBytes([
      { traceId: T1, spanId: 'b7ad6b7169203331', attributes: { a: 1, b: 'x', c: true, d: 1.5 } },
      { traceId: T2, spanId: 'b7ad6b7169203332' },
    ]);
    const out = encodeExportRequest(scanExportRequest(bytes).spans);
    expect(Buffer.from(out).equals(Buffer.from(bytes))).toBe(true);
  });

  it('keeps unknown fields of spans, scopes and resources', () => {
    const bytes = requestBytes([{ traceId: T1, spanId: 'b7ad6b7169203331' }]);
    // Append an unknown field (number 99, string) to the one span by rebuilding the request.
    const r = scanExportRequest(bytes);
    const span = r.spans[0];
    const w = new WireWriter();
    w.raw(span.bytes());
    w.stringField(99, 'future-field');
    span.setBytes(w.finish());
    const again = scanExportRequest(encodeExportRequest([span]));
    expect(Buffer.from(again.spans[0].bytes()).includes(Buffer.from('future-field'))).toBe(true);
    expect(again.spans[0].traceId).toBe(T1);
  });

  it('throws on malformed protobuf', () => {
    expect(() => scanExportRequest(new Uint8Array([0x0a, 0xff, 0xff, 0x01]))).toThrow(/past its parent|truncated/);
  });

  it('edits attributes and trace state without losing other fields', () => {
    const [span] = makeSpans([{ traceId: T1, spanId: 'b7ad6b7169203331', attributes: { keep: 'yes', policy: 'old' }, traceState: 'vendor=1' }]);
    setSpanAttributes(span, { policy: 'errors', SampleRate: 10 });
    setSpanTraceState(span, 'ot=th:c,vendor=1');
    const attrs = spanAttributes(span);
    expect(Object.fromEntries(attrs)).toEqual({ keep: 'yes', policy: 'errors', SampleRate: 10 });
    expect(spanTraceState(span)).toBe('ot=th:c,vendor=1');
    expect(span.spanId).toBe('b7ad6b7169203331');
    const decoded = decodeRequest(encodeExportRequest([span]));
    expect(decoded.resourceSpans?.[0].scopeSpans?.[0].spans?.[0].spanId).toBe('b7ad6b7169203331');
  });
});

describe('google.rpc.Status encoding', () => {
  it('decodes with the reflected schema to the same code and message', async () => {
    const { encodeRpcStatus, RpcStatus } = await import('./otlp-json.js');
    for (const [code, message] of [
      [3, 'malformed ExportTraceServiceRequest: truncated'],
      [8, 'décompressé: ünïcode'],
      [0, ''],
      [-1, 'negative'],
    ] as const) {
      const decoded = RpcStatus.toObject(RpcStatus.decode(encodeRpcStatus(code, message)), { defaults: true }) as { code: number; message: string };
      expect(decoded).toEqual({ code, message });
    }
  });
});

describe('splitExportRequest', () => {
  it('cuts a request in halves by spans, each span under its own resource and scope, bytes unchanged', () => {
    const a = makeSpans([{ traceId: T1, spanId: 'b7ad6b7169203331', name: 'a0' }, { traceId: T1, spanId: 'b7ad6b7169203332', name: 'a1' }], { 'service.name': 'A' });
    const b = makeSpans(
      [
        { traceId: T2, spanId: 'c7ad6b7169203331', name: 'b0' },
        { traceId: T2, spanId: 'c7ad6b7169203332', name: 'b1' },
        { traceId: T2, spanId: 'c7ad6b7169203333', name: 'b2' },
      ],
      { 'service.name': 'B' },
    );
    const all = [...a, ...b];
    const halves = splitExportRequest(encodeExportRequest(all))!;
    expect(halves.map((h) => h.spans)).toEqual([2, 3]);
    // Resource A's second span and resource B's first land in different halves when the cut is inside a resource.
    const three = splitExportRequest(encodeExportRequest(all.slice(1, 4)))!;
    const back = [...three, ...halves].map((h) => scanExportRequest(h.bytes).spans);
    expect(back[0].map((s) => [spanName(s), s.resource.serviceName()])).toEqual([['a1', 'A']]);
    expect(back[1].map((s) => [spanName(s), s.resource.serviceName()])).toEqual([['b0', 'B'], ['b1', 'B']]);
    const rejoined = [...back[2], ...back[3]];
    expect(rejoined.map((s) => Buffer.from(s.bytes()).toString('hex'))).toEqual(all.map((s) => Buffer.from(s.bytes()).toString('hex')));
    expect(rejoined.map((s) => Buffer.from(s.scope.header).toString('hex'))).toEqual(all.map((s) => Buffer.from(s.scope.header).toString('hex')));
    expect(rejoined.map((s) => Buffer.from(s.resource.header).toString('hex'))).toEqual(all.map((s) => Buffer.from(s.resource.header).toString('hex')));
  });

  it('carries spans the scanner would refuse (the backend judges them) and leaves a single span alone', () => {
    const good = makeSpans([{ traceId: T1, spanId: 'b7ad6b7169203331' }]);
    const w = new WireWriter();
    w.bytesField(1, new Uint8Array(3)); // a 3-byte trace id: refused by the scanner
    const bad = scanExportRequest(encodeExportRequest(good)).spans[0];
    bad.setBytes(w.finish());
    const halves = splitExportRequest(encodeExportRequest([good[0], bad]))!;
    expect(halves.map((h) => h.spans)).toEqual([1, 1]);
    expect(scanExportRequest(halves[1].bytes).rejected).toBe(1);
    expect(splitExportRequest(halves[0].bytes)).toBeUndefined();
  });
});
