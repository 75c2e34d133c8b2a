/**
 * Real OpenTelemetry JS SDK log and metric clients for end-to-end tests, with
 * what the SDK itself encodes for everything it exported (to compare with what
 * reaches the sink).
 */
import { ROOT_CONTEXT, trace, TraceFlags, ValueType } from '@opentelemetry/api';
import { SeverityNumber } from '@opentelemetry/api-logs';
import { resourceFromAttributes } from '@opentelemetry/resources';
import {
  BatchLogRecordProcessor,
  InMemoryLogRecordExporter,
  LoggerProvider,
  SimpleLogRecordProcessor,
  type LogRecordExporter,
} from '@opentelemetry/sdk-logs';
import { AggregationType, MeterProvider, PeriodicExportingMetricReader, type PushMetricExporter, type ResourceMetrics } from '@opentelemetry/sdk-metrics';
import { OTLPLogExporter as GrpcLogs } from '@opentelemetry/exporter-logs-otlp-grpc';
import { OTLPLogExporter as ProtoLogs } from '@opentelemetry/exporter-logs-otlp-proto';
import { OTLPLogExporter as JsonLogs } from '@opentelemetry/exporter-logs-otlp-http';
import { OTLPMetricExporter as GrpcMetrics } from '@opentelemetry/exporter-metrics-otlp-grpc';
import { OTLPMetricExporter as ProtoMetrics } from '@opentelemetry/exporter-metrics-otlp-proto';
import { OTLPMetricExporter as JsonMetrics } from '@opentelemetry/exporter-metrics-otlp-http';
import { ProtobufLogsSerializer, ProtobufMetricsSerializer } from '@opentelemetry/otlp-transformer';
import type { SdkProtocol } from './sdk.js';

const resource = () => resourceFromAttributes({ 'service.name': 'e2e-checkout', 'deployment.environment.name': 'test', 'service.instance.count': 3 });

export function sdkLogExporter(protocol: SdkProtocol, grpcPort: number, httpPort: number): LogRecordExporter {
  switch (protocol) {
    case 'grpc':
      return new GrpcLogs({ url: `http://127.0.0.1:${grpcPort}` });
    case 'http/protobuf':
      return new ProtoLogs({ url: `http://127.0.0.1:${httpPort}/v1/logs` });
    case 'http/json':
      return new JsonLogs({ url: `http://127.0.0.1:${httpPort}/v1/logs` });
  }
}

export function sdkMetricExporter(protocol: SdkProtocol, grpcPort: number, httpPort: number): PushMetricExporter {
  switch (protocol) {
    case 'grpc':
      return new GrpcMetrics({ url: `http://127.0.0.1:${grpcPort}` });
    case 'http/protobuf':
      return new ProtoMetrics({ url: `http://127.0.0.1:${httpPort}/v1/metrics` });
    case 'http/json':
      return new JsonMetrics({ url: `http://127.0.0.1:${httpPort}/v1/metrics` });
  }
}

export interface SdkLogClient {
  provider: LoggerProvider;
  expectedBytes(): Uint8Array;
}

export function sdkLogClient(exporter: LogRecordExporter): SdkLogClient {
  const memory = new InMemoryLogRecordExporter();
  const provider = new LoggerProvider({
    resource: resource(),
    processors: [new BatchLogRecordProcessor({ exporter, scheduledDelayMillis: 50 }), new SimpleLogRecordProcessor({ exporter: memory })],
  });
  return { provider, expectedBytes: () => ProtobufLogsSerializer.serializeRequest(memory.getFinishedLogRecords() as never) as Uint8Array };
}

/** Emits log records with every field: bodies of every shape, attributes of every type, trace context on some. */
export function emitRichLogs(provider: LoggerProvider, n: number): void {
  const logger = provider.getLogger('e2e-logs', '2.0.0');
  const t0 = 1_700_000_000_000 + n * 1000;
  const ctx = trace.setSpanContext(ROOT_CONTEXT, {
    traceId: (0x3000 + n).toString(16).padStart(32, 'a'),
    spanId: (0x4000 + n).toString(16).padStart(16, 'b'),
    traceFlags: TraceFlags.SAMPLED,
  });
  logger.emit({
    timestamp: t0,
    observedTimestamp: t0 + 1,
    severityNumber: SeverityNumber.ERROR,
    severityText: 'ERROR',
    body: `order ${n} failed: grüße ✓`,
    attributes: { 'e2e.int': 7, 'e2e.double': 2.5, 'e2e.bool': true, 'e2e.strings': ['a', 'b'], 'e2e.n': n },
    context: ctx,
  });
  logger.emit({
    timestamp: t0 + 2,
    severityNumber: SeverityNumber.INFO,
    body: { order: n, items: [1, 2], nested: { ok: false, note: 'kv body' } },
    eventName: 'order.placed',
    context: ctx,
  });
  logger.emit({ timestamp: t0 + 3, severityNumber: SeverityNumber.DEBUG, body: `no trace ${n}` });
}

export interface SdkMetricClient {
  provider: MeterProvider;
  /** What the SDK encoded in its exports so far. */
  expectedBytes(): Uint8Array[];
}

export function sdkMetricClient(exporter: PushMetricExporter): SdkMetricClient {
  const exported: ResourceMetrics[] = [];
  const recording: PushMetricExporter = {
    export: (rm, cb) => {
      exported.push(rm);
      exporter.export(rm, cb);
    },
    forceFlush: () => exporter.forceFlush(),
    shutdown: () => exporter.shutdown(),
    selectAggregationTemporality: exporter.selectAggregationTemporality?.bind(exporter),
  };
  const provider = new MeterProvider({
    resource: resource(),
    readers: [new PeriodicExportingMetricReader({ exporter: recording, exportIntervalMillis: 3_600_000 })],
    views: [{ instrumentName: 'e2e.size', aggregation: { type: AggregationType.EXPONENTIAL_HISTOGRAM } }],
  });
  return { provider, expectedBytes: () => exported.map((rm) => ProtobufMetricsSerializer.serializeRequest(rm) as Uint8Array) };
}

/** Records to a counter (sum), an up-down counter, a gauge, a histogram and an exponential histogram. */
export function recordRichMetrics(provider: MeterProvider): void {
  const meter = provider.getMeter('e2e-metrics', '3.0.0');
  const requests = meter.createCounter('e2e.requests', { unit: '1', description: 'requests served' });
  const inflight = meter.createUpDownCounter('e2e.inflight', { valueType: ValueType.INT });
  const temp = meter.createGauge('e2e.temperature', { unit: 'Cel' });
  const latency = meter.createHistogram('e2e.latency', { unit: 'ms', advice: { explicitBucketBoundaries: [1, 10, 100] } });
  const size = meter.createHistogram('e2e.size', { unit: 'By' });
  for (let i = 0; i < 4; i++) {
    const attrs = { route: `/r/${i % 2}`, ok: i % 3 !== 0 };
    requests.add(i + 1, attrs);
    inflight.add(i % 2 === 0 ? 1 : -1, attrs);
    temp.record(20 + i * 0.5, { room: 'a' });
    latency.record(i * 7.5, attrs);
    size.record(2 ** i, attrs);
  }
}
