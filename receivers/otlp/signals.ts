/**
 * What the OTLP receiver does differently per signal: the gRPC method and
 * HTTP path it serves, how a request is scanned into items, which consumer
 * method takes them, what is counted (spans, log records, metric data points)
 * and how partial_success names its count in OTLP/JSON.
 */
import type { SignalConsumers } from '../../collector/consumer.js';
import { consumeAs } from '../../collector/consumer.js';
import { scanExportRequest } from '../../collector/pdata/spans.js';
import { scanLogsRequest } from '../../collector/pdata/logs.js';
import { scanMetricsRequest } from '../../collector/pdata/metrics.js';
import type { RequestTypeName } from '../../collector/pdata/otlp-json.js';
import type { Signal } from '../../collector/signals.js';
import type { HttpConfig } from './config.js';

/** A scanned request: the items to deliver and the counts the client and the metrics see. */
export interface SignalScan {
  items: object[];
  /** Accepted-side count (spans, log records, data points). */
  count: number;
  rejected: number;
  rejectReason: string;
}

export interface SignalRoute {
  signal: Signal;
  grpcPath: string;
  requestType: RequestTypeName;
  /** OTLP/JSON name of partial_success's count. */
  rejectedJsonKey: string;
  /** Reason label for items rejected at scan. */
  invalidReason: 'invalid_span' | 'invalid_log_record' | 'invalid_metric';
  scan(bytes: Uint8Array): SignalScan;
  httpPath(cfg: HttpConfig): string;
  deliver(consumers: SignalConsumers, items: object[]): Promise<void>;
}

const deliverer = (signal: Signal) => (consumers: SignalConsumers, items: object[]) => consumeAs(signal, consumers[signal]!, items);

export const ROUTES: readonly SignalRoute[] = [
  {
    signal: 'traces',
    grpcPath: '/opentelemetry.proto.collector.trace.v1.TraceService/Export',
    requestType: 'ExportTraceServiceRequest',
    rejectedJsonKey: 'rejectedSpans',
    invalidReason: 'invalid_span',
    scan(bytes) {
      const s = scanExportRequest(bytes);
      return { items: s.spans, count: s.spans.length, rejected: s.rejected, rejectReason: s.rejectReason };
    },
    httpPath: (cfg) => cfg.traces_url_path,
    deliver: deliverer('traces'),
  },
  {
    signal: 'logs',
    grpcPath: '/opentelemetry.proto.collector.logs.v1.LogsService/Export',
    requestType: 'ExportLogsServiceRequest',
    rejectedJsonKey: 'rejectedLogRecords',
    invalidReason: 'invalid_log_record',
    scan(bytes) {
      const s = scanLogsRequest(bytes);
      return { items: s.items, count: s.items.length, rejected: s.rejected, rejectReason: s.rejectReason };
    },
    httpPath: (cfg) => cfg.logs_url_path,
    deliver: deliverer('logs'),
  },
  {
    signal: 'metrics',
    grpcPath: '/opentelemetry.proto.collector.metrics.v1.MetricsService/Export',
    requestType: 'ExportMetricsServiceRequest',
    rejectedJsonKey: 'rejectedDataPoints',
    invalidReason: 'invalid_metric',
    scan(bytes) {
      const s = scanMetricsRequest(bytes);
      return { items: s.items, count: s.points, rejected: s.rejectedPoints, rejectReason: s.rejectReason };
    },
    httpPath: (cfg) => cfg.metrics_url_path,
    deliver: deliverer('metrics'),
  },
];

