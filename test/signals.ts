/**
 * Test fixtures for logs and metrics: OTLP/JSON-shaped builders that encode
 * to protobuf with the collector's own converter, and a way to append an
 * unknown field to a message (to check it survives byte for byte).
 */
import { jsonToProtobuf, protobufToJsonObject } from '../collector/pdata/otlp-json.js';
import { WireWriter, WIRE_LEN, WIRE_VARINT } from '../collector/pdata/wire.js';

export interface LogSpec {
  traceId?: string;
  spanId?: string;
  body?: unknown;
  severity?: number;
  timeMs?: number;
  attributes?: Record<string, string>;
}

export function logRecordJson(l: LogSpec): Record<string, unknown> {
  const r: Record<string, unknown> = {
    timeUnixNano: String(BigInt(l.timeMs ?? 1_700_000_000_000) * 1_000_000n),
    severityNumber: l.severity ?? 9,
    severityText: 'INFO',
    body: l.body === undefined ? { stringValue: 'hello' } : l.body,
    attributes: Object.entries(l.attributes ?? {}).map(([key, v]) => ({ key, value: { stringValue: v } })),
  };
  if (l.traceId !== undefined) r.traceId = l.traceId;
  if (l.spanId !== undefined) r.spanId = l.spanId;
  return r;
}

export function logsRequestJson(logs: LogSpec[], service = 'checkout'): Record<string, unknown> {
  return {
    resourceLogs: [
      {
        resource: { attributes: [{ key: 'service.name', value: { stringValue: service } }] },
        scopeLogs: [{ scope: { name: 'test' }, logRecords: logs.map(logRecordJson) }],
      },
    ],
  };
}

export function logsRequest(logs: LogSpec[], service = 'checkout'): Uint8Array {
  return jsonToProtobuf(JSON.stringify(logsRequestJson(logs, service)), 'ExportLogsServiceRequest');
}

/** One metric of each type, with `points` data points on the number types. */
export function metricsRequestJson(service = 'checkout', points = 2): Record<string, unknown> {
  const t = String(1_700_000_000_000n * 1_000_000n);
  const attrs = (i: number) => [{ key: 'route', value: { stringValue: `/r/${i}` } }];
  const numbers = Array.from({ length: points }, (_, i) => ({ timeUnixNano: t, startTimeUnixNano: t, asInt: String(i + 1), attributes: attrs(i) }));
  return {
    resourceMetrics: [
      {
        resource: { attributes: [{ key: 'service.name', value: { stringValue: service } }] },
        scopeMetrics: [
          {
            scope: { name: 'test', version: '1' },
            metrics: [
              { name: 'requests', unit: '1', sum: { dataPoints: numbers, aggregationTemporality: 2, isMonotonic: true } },
              { name: 'inflight', gauge: { dataPoints: [{ timeUnixNano: t, asDouble: 2.5, attributes: attrs(0) }] } },
              {
                name: 'latency',
                histogram: {
                  dataPoints: [{ timeUnixNano: t, count: '3', sum: 1.5, bucketCounts: ['1', '2'], explicitBounds: [0.5], min: 0.1, max: 1, attributes: attrs(0) }],
                  aggregationTemporality: 2,
                },
              },
              {
                name: 'size',
                exponentialHistogram: {
                  dataPoints: [{ timeUnixNano: t, count: '3', sum: 3, scale: 1, zeroCount: '1', positive: { offset: 1, bucketCounts: ['1', '1'] } }],
                  aggregationTemporality: 2,
                },
              },
              { name: 'gc', summary: { dataPoints: [{ timeUnixNano: t, count: '4', sum: 8, quantileValues: [{ quantile: 0.5, value: 2 }] }] } },
            ],
          },
        ],
      },
    ],
  };
}

export function metricsRequest(service = 'checkout', points = 2): Uint8Array {
  return jsonToProtobuf(JSON.stringify(metricsRequestJson(service, points)), 'ExportMetricsServiceRequest');
}

export function decodeLogs(bytes: Uint8Array): Record<string, unknown> {
  return protobufToJsonObject(bytes, 'ExportLogsServiceRequest');
}

export function decodeMetrics(bytes: Uint8Array): Record<string, unknown> {
  return protobufToJsonObject(bytes, 'ExportMetricsServiceRequest');
}

/** message bytes + an unknown varint field (field 1000 = value) */
export function withUnknownField(message: Uint8Array, value = 42): Uint8Array {
  const w = new WireWriter(message.length + 8);
  w.raw(message);
  w.tag(1000, WIRE_VARINT);
  w.uint32(value);
  return w.finish().slice();
}

/** Frames one item message as an export request (resource 1 > scope list 2 > item list 2). */
export function frame(item: Uint8Array): Uint8Array {
  const w = new WireWriter(item.length + 32);
  const r = w.beginLen(1);
  const sc = w.beginLen(2);
  w.lenField(2, item, 0, item.length);
  w.endLen(sc);
  w.endLen(r);
  return w.finish().slice();
}

export { WIRE_LEN };
