/**
 * Logs and metrics end to end with the OpenTelemetry JS SDK's own exporters:
 * SDK -> collector (otlp receiver, memory_limiter, batch) -> each exporter ->
 * a sink. Every record and data point arrives with every field intact
 * (compared with what the SDK itself encodes), summaries and unknown fields
 * included (sent as raw OTLP, since the SDK has no summary instrument).
 */
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Collector } from '../collector/collector.js';
import { loadConfigText } from '../config/load.js';
import { silentLogger } from '../collector/telemetry/logger.js';
import { Telemetry } from '../collector/telemetry/metrics.js';
import { systemClock } from '../collector/component.js';
import { OtlpReceiver } from '../receivers/otlp/receiver.js';
import { withDefaults } from '../config/defaults.js';
import { OtlpReceiverSchema } from '../receivers/otlp/config.js';
import { encodeExportRequest } from '../collector/pdata/encode.js';
import { scanLogsRequest, type LogRecord } from '../collector/pdata/logs.js';
import { scanMetricsRequest, type Metric } from '../collector/pdata/metrics.js';
import { protobufToJsonObject, jsonToProtobuf, type RequestTypeName } from '../collector/pdata/otlp-json.js';
import type { Span } from '../collector/pdata/spans.js';
import type { SdkProtocol } from './sdk.js';
import { emitRichLogs, recordRichMetrics, sdkLogClient, sdkLogExporter, sdkMetricClient, sdkMetricExporter } from './sdk-signals.js';
import { frame, metricsRequestJson, withUnknownField } from './signals.js';

/** A sink: our own OTLP receiver recording the bytes of every item it gets. */
class Sink {
  logs: Uint8Array[] = [];
  metrics: Uint8Array[] = [];
  readonly receiver: OtlpReceiver;
  constructor() {
    const settings = { id: 'sink', logger: silentLogger(), telemetry: new Telemetry(), clock: systemClock };
    const cfg = withDefaults(OtlpReceiverSchema, { protocols: { grpc: { endpoint: '127.0.0.1:0' }, http: { endpoint: '127.0.0.1:0' } } });
    const traces = { consume: async (_s: Span[]) => {} };
    this.receiver = new OtlpReceiver(settings, cfg, traces, { consumers: {
      traces,
      logs: { consumeLogs: async (r: LogRecord[]) => void this.logs.push(encodeExportRequest(r)) },
      metrics: { consumeMetrics: async (m: Metric[]) => void this.metrics.push(encodeExportRequest(m)) },
    } });
  }
}

/** Each leaf item (log record, metric) with its resource and scope, as sorted JSON strings: the comparison unit. */
function canonical(bodies: Uint8Array[], type: RequestTypeName): string[] {
  const [rk, sk, ik] = type === 'ExportLogsServiceRequest' ? ['resourceLogs', 'scopeLogs', 'logRecords'] : ['resourceMetrics', 'scopeMetrics', 'metrics'];
  const out: string[] = [];
  for (const b of bodies) {
    const o = protobufToJsonObject(b, type) as Record<string, Array<Record<string, unknown>>>;
    for (const r of o[rk] ?? []) {
      for (const s of (r[sk] as Array<Record<string, unknown>>) ?? []) {
        for (const item of (s[ik] as unknown[]) ?? []) {
          out.push(JSON.stringify({ resource: r.resource, rs: r.schemaUrl, scope: s.scope, ss: s.schemaUrl, item }));
        }
      }
    }
  }
  return out.sort();
}

/** The item bytes of each request (log records or metrics), hex, sorted: equal means byte for byte. */
function itemBytes(bodies: Uint8Array[], signal: 'logs' | 'metrics'): string[] {
  const out: string[] = [];
  for (const b of bodies) {
    const items = signal === 'logs' ? scanLogsRequest(b).items : scanMetricsRequest(b).items;
    for (const i of items) out.push(Buffer.from(i.bytes()).toString('hex'));
  }
  return out.sort();
}

let sink: Sink;
let tmp: string;
const collectors: Collector[] = [];

beforeAll(async () => {
  sink = new Sink();
  await sink.receiver.start();
  tmp = mkdtempSync(path.join(os.tmpdir(), 'signals-e2e-'));
});
afterEach(async () => {
  await Promise.all(collectors.splice(0).map((c) => c.shutdown()));
  sink.logs = [];
  sink.metrics = [];
});
afterAll(async () => {
  await sink.receiver.shutdown();
  rmSync(tmp, { recursive: true, force: true });
});

type ExporterKind = 'otlp' | 'otlphttp/proto' | 'otlphttp/json' | 'file';

function exporterYaml(kind: ExporterKind, file: string): string {
  switch (kind) {
    case 'otlp':
      return `otlp:\n    endpoint: 127.0.0.1:${sink.receiver.grpcPort}\n    tls: { insecure: true }`;
    case 'otlphttp/proto':
      return `otlphttp:\n    endpoint: http://127.0.0.1:${sink.receiver.httpPort}\n    encoding: proto`;
    case 'otlphttp/json':
      return `otlphttp:\n    endpoint: http://127.0.0.1:${sink.receiver.httpPort}\n    encoding: json`;
    case 'file':
      return `file:\n    path: ${file}`;
  }
}

async function startCollector(exporter: ExporterKind, file: string): Promise<Collector> {
  const id = exporter.split('/')[0];
  const yaml = `
receivers:
  otlp:
    protocols:
      grpc: { endpoint: "127.0.0.1:0" }
      http: { endpoint: "127.0.0.1:0" }
processors:
  memory_limiter: { limit_mib: 100000 }
  batch: { timeout: 20ms }
exporters:
  ${exporterYaml(exporter, file)}
service:
  config_watch: false
  telemetry:
    metrics: { address: "127.0.0.1:0" }
  pipelines:
    logs:
      receivers: [otlp]
      processors: [memory_limiter, batch]
      exporters: [${id}]
    metrics:
      receivers: [otlp]
      processors: [memory_limiter, batch]
      exporters: [${id}]
`;
  const c = new Collector(loadConfigText(yaml, 'e2e.yaml'), { logger: silentLogger(), processMetrics: false });
  collectors.push(c);
  await c.start();
  return c;
}

async function waitFor(cond: () => boolean, what: string, timeoutMs = 10_000): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

const cases: Array<[SdkProtocol, ExporterKind]> = [
  ['grpc', 'otlp'],
  ['http/protobuf', 'otlphttp/proto'],
  ['http/json', 'otlp'],
  ['grpc', 'otlphttp/json'],
  ['http/protobuf', 'file'],
];

async function arrived(c: Collector, exporter: ExporterKind, file: string, logs: number, metrics: number): Promise<{ logs: Uint8Array[]; metrics: Uint8Array[] }> {
  if (exporter === 'file') {
    await c.shutdown();
    const lines = readFileSync(file, 'utf8').trim().split('\n');
    const out = { logs: [] as Uint8Array[], metrics: [] as Uint8Array[] };
    for (const l of lines) {
      if (l.startsWith('{"resourceLogs"')) out.logs.push(jsonToProtobuf(l, 'ExportLogsServiceRequest'));
      else out.metrics.push(jsonToProtobuf(l, 'ExportMetricsServiceRequest'));
    }
    return out;
  }
  const count = (bs: Uint8Array[], s: 'logs' | 'metrics') => itemBytes(bs, s).length;
  await waitFor(() => count(sink.logs, 'logs') >= logs && count(sink.metrics, 'metrics') >= metrics, 'logs and metrics at the sink');
  return { logs: sink.logs, metrics: sink.metrics };
}

describe('SDK logs and metrics -> collector -> sink keep every field', () => {
  it.each(cases)('%s receiver -> %s exporter', async (protocol, exporter) => {
    const file = path.join(tmp, `${protocol.replace('/', '-')}-${exporter.replace('/', '-')}.jsonl`);
    const c = await startCollector(exporter, file);
    const r = c.service.component('otlp') as OtlpReceiver;

    const logClient = sdkLogClient(sdkLogExporter(protocol, r.grpcPort, r.httpPort));
    for (let i = 0; i < 3; i++) emitRichLogs(logClient.provider, i);
    await logClient.provider.forceFlush();
    const metricClient = sdkMetricClient(sdkMetricExporter(protocol, r.grpcPort, r.httpPort));
    recordRichMetrics(metricClient.provider);
    await metricClient.provider.forceFlush();

    const sdkLogBytes = logClient.expectedBytes();
    const wantLogs = canonical([sdkLogBytes], 'ExportLogsServiceRequest');
    expect(wantLogs).toHaveLength(9);
    // Shutting the SDK down closes its connections (a collector shutdown need not wait for them);
    // the meter provider exports once more as it stops (cumulative: the same five metrics again).
    await logClient.provider.shutdown();
    await metricClient.provider.shutdown();
    const wantMetrics = canonical(metricClient.expectedBytes(), 'ExportMetricsServiceRequest');
    expect(wantMetrics).toHaveLength(10);
    const got = await arrived(c, exporter, file, 9, 10);
    expect(canonical(got.logs, 'ExportLogsServiceRequest')).toEqual(wantLogs);
    expect(canonical(got.metrics, 'ExportMetricsServiceRequest')).toEqual(wantMetrics);
    if (protocol !== 'http/json' && exporter !== 'otlphttp/json' && exporter !== 'file') {
      // Protobuf all the way: every record and metric arrives byte for byte.
      expect(itemBytes(got.logs, 'logs')).toEqual(itemBytes([sdkLogBytes], 'logs'));
      expect(itemBytes(got.metrics, 'metrics')).toEqual(itemBytes(metricClient.expectedBytes(), 'metrics'));
    }
    // The comparison saw what matters, not just "something equal".
    const all = wantLogs.join('\n') + wantMetrics.join('\n');
    for (const needle of ['kvlistValue', 'grüße', 'order.placed', '"traceId"', '"sum"', '"gauge"', '"histogram"', '"exponentialHistogram"', '"isMonotonic":true']) {
      expect(all).toContain(needle);
    }
  });
});

describe('raw OTLP', () => {
  it('summaries and unknown fields survive to the sink byte for byte', async () => {
    const c = await startCollector('otlp', '');
    const r = c.service.component('otlp') as OtlpReceiver;
    const summary = scanMetricsRequest(jsonToProtobuf(JSON.stringify(metricsRequestJson()), 'ExportMetricsServiceRequest')).items.find(
      (m) => m.type === 'summary',
    )!;
    const metric = withUnknownField(summary.bytes(), 9);
    const log = withUnknownField(scanLogsRequest(jsonToProtobuf(JSON.stringify({ resourceLogs: [{ scopeLogs: [{ logRecords: [{ body: { stringValue: 'u' } }] }] }] }), 'ExportLogsServiceRequest')).items[0].bytes(), 11);
    for (const [p, body] of [
      ['/v1/metrics', frame(metric)],
      ['/v1/logs', frame(log)],
    ] as const) {
      const res = await fetch(`http://127.0.0.1:${r.httpPort}${p}`, { method: 'POST', headers: { 'content-type': 'application/x-protobuf' }, body });
      expect(res.status).toBe(200);
    }
    await waitFor(() => sink.logs.length > 0 && sink.metrics.length > 0, 'both at the sink');
    expect(itemBytes(sink.metrics, 'metrics')).toEqual([Buffer.from(metric).toString('hex')]);
    expect(itemBytes(sink.logs, 'logs')).toEqual([Buffer.from(log).toString('hex')]);
    const text = await (await fetch(`http://127.0.0.1:${c.telemetryServer.port}/metrics`)).text();
    expect(text).toMatch(/otelcol_receiver_accepted_log_records_total\{receiver="otlp",transport="http"\} 1/);
    expect(text).toMatch(/otelcol_receiver_accepted_metric_points_total\{receiver="otlp",transport="http"\} 1/);
    expect(text).not.toMatch(/otelcol_exporter_send_failed_log_records_total\{exporter="otlp"\} [1-9]/);
  });
});
