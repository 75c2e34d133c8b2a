/**
 * Debug exporter: one log line per batch (spans, traces, resources; span names
 * at verbosity normal; for logs the records, their severities and how many
 * carry a trace id; for metrics the metrics, data points and metric names).
 */
import type { Logger } from 'pino';
import type { Component, CreateSettings } from '../../collector/component.js';
import type { LogsConsumer, MetricsConsumer, TracesConsumer } from '../../collector/consumer.js';
import type { ResourceRef, Span } from '../../collector/pdata/spans.js';
import type { LogRecord } from '../../collector/pdata/logs.js';
import { countPoints, type Metric } from '../../collector/pdata/metrics.js';
import { spanName } from '../../collector/pdata/attributes.js';
import type { DebugExporterConfig } from './config.js';

/** Span names listed per line at most (a larger batch says how many were left out). */
export const MAX_NAMES = 100;

export class DebugExporter implements Component, TracesConsumer, LogsConsumer, MetricsConsumer {
  readonly mutatesData = false;
  private readonly log: Logger;
  private readonly id: string;
  private readonly normal: boolean;
  private readonly mSent;
  private readonly settings: CreateSettings;

  constructor(settings: CreateSettings, cfg: DebugExporterConfig) {
    this.log = settings.logger;
    this.id = settings.id;
    this.settings = settings;
    this.normal = cfg.verbosity === 'normal';
    this.mSent = settings.telemetry
      .counter('otelcol_exporter_sent_spans_total', 'Spans successfully sent to the destination.', ['exporter'])
      .labels(this.id);
  }

  async consumeLogs(records: LogRecord[]): Promise<void> {
    if (records.length === 0) return;
    const resources = new Set<ResourceRef>();
    let withTrace = 0;
    const severities: Record<number, number> = {};
    for (const r of records) {
      resources.add(r.scope.resource);
      if (r.traceId !== '') withTrace++;
      severities[r.severity] = (severities[r.severity] ?? 0) + 1;
    }
    const line: Record<string, unknown> = { exporter: this.id, log_records: records.length, with_trace_id: withTrace, resources: resources.size };
    if (this.normal) line.severity_numbers = severities;
    this.log.info(line, 'LogsExporter');
    this.settings.telemetry
      .counter('otelcol_exporter_sent_log_records_total', 'Log records successfully sent to the destination.', ['exporter'])
      .labels(this.id)
      .inc(records.length);
  }

  async consumeMetrics(metrics: Metric[]): Promise<void> {
    if (metrics.length === 0) return;
    const points = countPoints(metrics);
    const resources = new Set<ResourceRef>();
    for (const m of metrics) resources.add(m.scope.resource);
    const line: Record<string, unknown> = { exporter: this.id, metrics: metrics.length, data_points: points, resources: resources.size };
    if (this.normal) {
      const n = Math.min(metrics.length, MAX_NAMES);
      line.metric_names = metrics.slice(0, n).map((m) => `${m.name} (${m.type})`);
      if (metrics.length > n) line.metric_names_omitted = metrics.length - n;
    }
    this.log.info(line, 'MetricsExporter');
    this.settings.telemetry
      .counter('otelcol_exporter_sent_metric_points_total', 'Metric data points successfully sent to the destination.', ['exporter'])
      .labels(this.id)
      .inc(points);
  }

  async start(): Promise<void> {}
  async shutdown(): Promise<void> {}

  async consume(spans: Span[]): Promise<void> {
    if (spans.length === 0) return;
    const traces = new Set<string>();
    const resources = new Set<ResourceRef>();
    for (const s of spans) {
      traces.add(s.traceId);
      resources.add(s.scope.resource);
    }
    const line: Record<string, unknown> = { exporter: this.id, spans: spans.length, traces: traces.size, resources: resources.size };
    if (this.normal) {
      const n = Math.min(spans.length, MAX_NAMES);
      const names: string[] = new Array(n);
      for (let i = 0; i < n; i++) names[i] = spanName(spans[i]);
      line.span_names = names;
      if (spans.length > n) line.span_names_omitted = spans.length - n;
    }
    this.log.info(line, 'TracesExporter');
    this.mSent.inc(spans.length);
  }
}
