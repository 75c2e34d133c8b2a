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
import { convertJsonRequest, scanJsonRequest, type RequestTypeName } from '../../collector/pdata/otlp-json.js';
import type { Signal } from '../../collector/signals.js';
import type { HttpConfig } from './config.js';

/** A scanned request: the items to deliver and the counts the client and the metrics see. */
export interface SignalScan {
  items: object[];
  /** Accepted-side count (spans, log records, data points). */
  count: number;
  rejected: number;
  /** Of `rejected`, those refused because their values were malformed (the rest had invalid ids or values). */
  malformed: number;
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
  /** OTLP/JSON: converted item by item (items that do not convert are rejected as malformed), then scanned. */
  scanJson(body: Uint8Array): SignalScan;
  httpPath(cfg: HttpConfig): string;
  deliver(consumers: SignalConsumers, items: object[]): Promise<void>;
}

/** Scans a converted JSON request and adds the items the conversion left out as malformed rejections. */
function withSkipped(conv: { bytes: Uint8Array; skipped: number[]; firstProblem: string }, scan: (b: Uint8Array) => SignalScan): SignalScan {
  const s = scan(conv.bytes);
  const n = conv.skipped.length;
  if (n > 0) {
    s.rejected += n;
    s.malformed += n;
    if (s.rejectReason === '') s.rejectReason = conv.firstProblem;
  }
  return s;
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
      return { items: s.spans, count: s.spans.length, rejected: s.rejected, malformed: s.malformed, rejectReason: s.rejectReason };
    },
    scanJson(body) {
      const s = scanJsonRequest(body);
      return { items: s.spans, count: s.spans.length, rejected: s.rejected, malformed: s.malformed, rejectReason: s.rejectReason };
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
      return { items: s.items, count: s.items.length, rejected: s.rejected, malformed: 0, rejectReason: s.rejectReason };
    },
    scanJson(body) {
      return withSkipped(convertJsonRequest(body, 'ExportLogsServiceRequest'), (b) => this.scan(b));
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
      return { items: s.items, count: s.points, rejected: s.rejectedPoints, malformed: 0, rejectReason: s.rejectReason };
    },
    scanJson(body) {
      // A metric left out by the conversion counts as one rejected data point (its points were never read).
      return withSkipped(convertJsonRequest(body, 'ExportMetricsServiceRequest'), (b) => this.scan(b));
    },
    httpPath: (cfg) => cfg.metrics_url_path,
    deliver: deliverer('metrics'),
  },
];

