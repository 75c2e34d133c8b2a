/** Debug exporter: one log line per batch (spans, traces, resources; span names at verbosity normal). */
import type { Logger } from 'pino';
import type { Component, CreateSettings } from '../../collector/component.js';
import type { TracesConsumer } from '../../collector/consumer.js';
import type { ResourceRef, Span } from '../../collector/pdata/spans.js';
import { spanName } from '../../collector/pdata/attributes.js';
import type { DebugExporterConfig } from './config.js';

/** Span names listed per line at most (a larger batch says how many were left out). */
export const MAX_NAMES = 100;

export class DebugExporter implements Component, TracesConsumer {
  readonly mutatesData = false;
  private readonly log: Logger;
  private readonly id: string;
  private readonly normal: boolean;
  private readonly mSent;

  constructor(settings: CreateSettings, cfg: DebugExporterConfig) {
    this.log = settings.logger;
    this.id = settings.id;
    this.normal = cfg.verbosity === 'normal';
    this.mSent = settings.telemetry
      .counter('otelcol_exporter_sent_spans_total', 'Spans successfully sent to the destination.', ['exporter'])
      .labels(this.id);
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
