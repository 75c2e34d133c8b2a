/**
 * Micro-benchmarks of the log and metric models, as bench.ts measures spans:
 * scan (receive path) and re-frame (export path) per item, and the memory a
 * buffered log record costs relative to its encoded size (goal: at most 1.5x,
 * as for spans).
 *
 *   node --expose-gc dist/collector/pdata/bench_signals.js [--records 1000000]
 *
 * Prints one JSON line per measurement.
 */
import { scanLogsRequest, type LogRecord } from './logs.js';
import { scanMetricsRequest } from './metrics.js';
import { encodeExportRequest } from './encode.js';
import { jsonToProtobuf } from './otlp-json.js';
import { scanExportRequest } from './spans.js';
import { realisticRequest } from './bench.js';

const hex = (n: number, len: number) => n.toString(16).padStart(len, '0');

/** What an SDK's batch log processor sends: 512 records, most with a trace id, an HTTP-service log line and 4 attributes each. */
export function realisticLogsRequest(records: number, seed = 1): Uint8Array {
  const base = 1_700_000_000_000_000_000n;
  const out = [];
  for (let i = 0; i < records; i++) {
    const t = seed * 1_000_003 + Math.floor(i / 24);
    const r: Record<string, unknown> = {
      timeUnixNano: (base + BigInt(i) * 1_000_000n).toString(),
      observedTimeUnixNano: (base + BigInt(i) * 1_000_000n + 5000n).toString(),
      severityNumber: i % 20 === 0 ? 17 : 9,
      severityText: i % 20 === 0 ? 'ERROR' : 'INFO',
      body: { stringValue: `GET /api/v1/orders/${100000 + i} 200 in 12.3 ms user=${i % 977} cache=miss` },
      attributes: [
        { key: 'logger.name', value: { stringValue: 'orders.http' } },
        { key: 'thread.id', value: { intValue: String(i % 64) } },
        { key: 'code.function', value: { stringValue: 'handleGetOrder' } },
        { key: 'http.response.status_code', value: { intValue: '200' } },
      ],
      flags: 1,
    };
    if (i % 10 !== 9) {
      r.traceId = 'a' + hex(t, 31);
      r.spanId = 'b' + hex(seed * 100_000 + i, 15);
    }
    out.push(r);
  }
  const json = {
    resourceLogs: [
      {
        resource: { attributes: [{ key: 'service.name', value: { stringValue: 'orders' } }, { key: 'k8s.pod.name', value: { stringValue: 'orders-7d9f8b6c5-x2x9z' } }] },
        scopeLogs: [{ scope: { name: 'orders.http', version: '1.0.0' }, logRecords: out }],
      },
    ],
  };
  return jsonToProtobuf(JSON.stringify(json), 'ExportLogsServiceRequest');
}

/** A periodic metric export of one service: `metrics` histograms and sums with 4 data points each (distinct routes). */
export function realisticMetricsRequest(metrics: number): Uint8Array {
  const t = (1_700_000_000_000_000_000n).toString();
  const attrs = (j: number) => [
    { key: 'http.route', value: { stringValue: `/api/v1/r${j}` } },
    { key: 'http.request.method', value: { stringValue: 'GET' } },
    { key: 'http.response.status_code', value: { intValue: '200' } },
  ];
  const ms = [];
  for (let i = 0; i < metrics; i++) {
    const points = Array.from({ length: 4 }, (_, j) =>
      i % 2 === 0
        ? { startTimeUnixNano: t, timeUnixNano: t, count: '10', sum: 123.4, bucketCounts: ['1', '2', '3', '4', '0', '0'], explicitBounds: [5, 10, 25, 50, 100], min: 1, max: 49, attributes: attrs(j) }
        : { startTimeUnixNano: t, timeUnixNano: t, asInt: String(1000 + j), attributes: attrs(j) },
    );
    ms.push(
      i % 2 === 0
        ? { name: `http.server.duration.${i}`, unit: 'ms', histogram: { dataPoints: points, aggregationTemporality: 2 } }
        : { name: `http.server.requests.${i}`, unit: '1', sum: { dataPoints: points, aggregationTemporality: 2, isMonotonic: true } },
    );
  }
  const json = {
    resourceMetrics: [{ resource: { attributes: [{ key: 'service.name', value: { stringValue: 'orders' } }] }, scopeMetrics: [{ scope: { name: 'meter' }, metrics: ms }] }],
  };
  return jsonToProtobuf(JSON.stringify(json), 'ExportMetricsServiceRequest');
}

function measure(name: string, iterations: number, itemsPer: number, fn: () => void): Record<string, unknown> {
  for (let i = 0; i < Math.min(50, iterations); i++) fn();
  const t0 = process.hrtime.bigint();
  for (let i = 0; i < iterations; i++) fn();
  const ns = Number(process.hrtime.bigint() - t0);
  const items = iterations * itemsPer;
  return { bench: name, items, ns_per_item: Math.round((ns / items) * 10) / 10, items_per_s: Math.round(items / (ns / 1e9)) };
}

function main(): void {
  const argIdx = process.argv.indexOf('--records');
  const holdRecords = argIdx > 0 ? Number(process.argv[argIdx + 1]) : 1_000_000;
  const logs = realisticLogsRequest(512);
  const records = scanLogsRequest(logs).items;
  console.log(JSON.stringify({ bench: 'logs.request', records: 512, bytes: logs.length, bytes_per_record: Math.round(logs.length / 512) }));
  console.log(JSON.stringify(measure('logs.scan', 2000, 512, () => scanLogsRequest(logs))));
  console.log(JSON.stringify(measure('logs.encode', 2000, 512, () => encodeExportRequest(records))));
  const metrics = realisticMetricsRequest(64);
  const ms = scanMetricsRequest(metrics);
  console.log(JSON.stringify({ bench: 'metrics.request', metrics: 64, points: ms.points, bytes: metrics.length, bytes_per_point: Math.round(metrics.length / ms.points) }));
  console.log(JSON.stringify(measure('metrics.scan', 4000, ms.points, () => scanMetricsRequest(metrics))));
  console.log(JSON.stringify(measure('metrics.encode', 4000, ms.points, () => encodeExportRequest(ms.items))));
  const spans = realisticRequest(512);
  console.log(JSON.stringify(measure('spans.scan (same run)', 2000, 512, () => scanExportRequest(spans))));

  const gc = (globalThis as { gc?: () => void }).gc;
  if (!gc) {
    console.log(JSON.stringify({ bench: 'logs.heap_per_record', skipped: 'run node with --expose-gc' }));
    return;
  }
  gc();
  const before = process.memoryUsage();
  const held: LogRecord[][] = [];
  let encoded = 0;
  const requests = Math.ceil(holdRecords / 512);
  for (let i = 0; i < requests; i++) {
    const s = scanLogsRequest(Buffer.from(logs)).items; // a fresh buffer per request, as the network delivers them
    held.push(s);
    for (const x of s) encoded += x.len;
  }
  gc();
  const after = process.memoryUsage();
  const heap = after.heapUsed - before.heapUsed;
  const external = after.arrayBuffers - before.arrayBuffers;
  const n = requests * 512;
  console.log(
    JSON.stringify({
      bench: 'logs.heap_per_record',
      records: n,
      encoded_bytes_per_record: Math.round(encoded / n),
      index_heap_bytes_per_record: Math.round(heap / n),
      buffer_bytes_per_record: Math.round(external / n),
      ratio_to_encoded: Math.round(((heap + external) / encoded) * 1000) / 1000,
    }),
  );
  if (held.length < 0) console.log(held);
}

if (import.meta.url === `file://${process.argv[1]}`) main();
