import { describe, expect, it } from 'vitest';
import { scanLogsRequest } from './logs.js';
import { scanMetricsRequest } from './metrics.js';
import { encodeExportRequest } from './encode.js';
import { WireWriter, WIRE_LEN, WIRE_I64, WireError } from './wire.js';
import { jsonToProtobuf } from './otlp-json.js';
import { decodeLogs, decodeMetrics, frame, logsRequest, metricsRequest, metricsRequestJson, withUnknownField } from '../../test/signals.js';

const T1 = '0af7651916cd43dd8448eb211c80319c';

describe('log model', () => {
  it('indexes trace id, span id, time and severity; records without a trace id have none', () => {
    const s = scanLogsRequest(
      logsRequest([{ traceId: T1, spanId: 'b7ad6b7169203331', severity: 17, timeMs: 1234 }, { body: { stringValue: 'no trace' } }]),
    );
    expect(s.rejected).toBe(0);
    expect(s.items.map((r) => [r.traceId, r.spanId, r.severity])).toEqual([
      [T1, 'b7ad6b7169203331', 17],
      ['', '', 9],
    ]);
    expect(s.items[0].timeNs).toBe(1234e6);
    expect(s.items[0].resource.serviceName()).toBe('checkout');
  });

  it('re-frames records byte for byte, unknown fields included', () => {
    const one = scanLogsRequest(logsRequest([{ traceId: T1 }])).items[0];
    const rec = withUnknownField(one.bytes(), 77);
    const s = scanLogsRequest(frame(rec));
    expect(s.items).toHaveLength(1);
    const out = encodeExportRequest(s.items);
    expect(Buffer.from(out).includes(Buffer.from(rec))).toBe(true);
    expect(scanLogsRequest(out).items[0].traceId).toBe(T1);
  });

  it('rejects records with bad ids, bad UTF-8 or wrong wire types and keeps the rest', () => {
    const good = scanLogsRequest(logsRequest([{ traceId: T1 }])).items[0].bytes();
    const w = new WireWriter();
    // trace id of 5 bytes
    const badId = new WireWriter();
    badId.lenField(9, Buffer.from('abcde'), 0, 5);
    // body string that is not UTF-8
    const badUtf8 = new WireWriter();
    const body = new WireWriter();
    body.lenField(1, Buffer.from([0xff, 0xfe]), 0, 2);
    const b = body.finish();
    badUtf8.lenField(5, b, 0, b.length);
    // severity_text as a fixed64
    const badType = new WireWriter();
    badType.tag(3, WIRE_I64);
    badType.fixed32(0);
    badType.fixed32(0);
    const r = w.beginLen(1);
    const sc = w.beginLen(2);
    for (const m of [good, badId.finish(), badUtf8.finish(), badType.finish()]) w.lenField(2, m, 0, m.length);
    w.endLen(sc);
    w.endLen(r);
    const s = scanLogsRequest(w.finish());
    expect(s.items).toHaveLength(1);
    expect(s.rejected).toBe(3);
    expect(s.rejectReason).toMatch(/trace_id/);
  });

  it('refuses a malformed request as a whole', () => {
    expect(() => scanLogsRequest(Buffer.from([0x0a, 0x10, 0x01]))).toThrow(WireError);
    expect(() => jsonToProtobuf('{"resourceLogs":[{"scopeLogs":[{"logRecords":[{"traceId":"xyz"}]}]}]}', 'ExportLogsServiceRequest')).toThrow(
      /hex/,
    );
  });
});

describe('metric model', () => {
  it('indexes name, type and data points of every metric type', () => {
    const s = scanMetricsRequest(metricsRequest('checkout', 3));
    expect(s.rejected).toBe(0);
    expect(s.items.map((m) => [m.name, m.type, m.points])).toEqual([
      ['requests', 'sum', 3],
      ['inflight', 'gauge', 1],
      ['latency', 'histogram', 1],
      ['size', 'exponential_histogram', 1],
      ['gc', 'summary', 1],
    ]);
    expect(s.points).toBe(7);
  });

  it('round-trips every field of every type through JSON, scan and re-framing', () => {
    const json = metricsRequestJson('checkout', 2);
    const out = encodeExportRequest(scanMetricsRequest(metricsRequest('checkout', 2)).items);
    expect(decodeMetrics(out)).toEqual(json);
  });

  it('rejects a metric with two data fields or a bad attribute, counting its points', () => {
    const ok = scanMetricsRequest(metricsRequest()).items[1].bytes(); // gauge, 1 point
    const two = new WireWriter();
    two.raw(ok);
    const g = new WireWriter();
    g.lenField(1, Buffer.alloc(0), 0, 0);
    const gb = g.finish();
    two.lenField(7, gb, 0, gb.length); // a sum as well
    const w = new WireWriter();
    const r = w.beginLen(1);
    const sc = w.beginLen(2);
    for (const m of [ok, two.finish()]) w.lenField(2, m, 0, m.length);
    w.endLen(sc);
    w.endLen(r);
    const s = scanMetricsRequest(w.finish());
    expect(s.items).toHaveLength(1);
    expect(s.rejected).toBe(1);
    expect(s.rejectedPoints).toBe(1); // the points indexed before the problem (at least one per rejected metric)
    expect(s.rejectReason).toMatch(/more than one data field/);
  });

  it('keeps unknown fields of a metric', () => {
    const m = scanMetricsRequest(metricsRequest()).items[0].bytes();
    const withU = withUnknownField(m, 5);
    const s = scanMetricsRequest(frame(withU));
    expect(Buffer.from(encodeExportRequest(s.items)).includes(Buffer.from(withU))).toBe(true);
  });
});

describe('logs JSON', () => {
  it('converts every log record field', () => {
    const json = {
      resourceLogs: [
        {
          resource: { attributes: [{ key: 'service.name', value: { stringValue: 'a' } }] },
          scopeLogs: [
            {
              scope: { name: 's' },
              logRecords: [
                {
                  timeUnixNano: '1700000000000000001',
                  observedTimeUnixNano: '1700000000000000002',
                  severityNumber: 13,
                  severityText: 'WARN',
                  body: { arrayValue: { values: [{ stringValue: 'x' }, { kvlistValue: { values: [{ key: 'k', value: { boolValue: true } }] } }] } },
                  attributes: [{ key: 'n', value: { doubleValue: 1.5 } }],
                  droppedAttributesCount: 2,
                  flags: 1,
                  traceId: T1,
                  spanId: 'b7ad6b7169203331',
                  eventName: 'e',
                },
              ],
            },
          ],
        },
      ],
    };
    const bytes = jsonToProtobuf(JSON.stringify(json), 'ExportLogsServiceRequest');
    expect(decodeLogs(encodeExportRequest(scanLogsRequest(bytes).items))).toEqual(json);
  });
});

export { WIRE_LEN };
