/**
 * Self-telemetry: one Prometheus registry per collector process (`prom.ts`). Components
 * declare their metrics at creation (never per item) and keep bound label
 * children so the hot path is a property increment.
 *
 * Names follow the Collector's where one exists (otelcol_receiver_accepted_spans,
 * ...); the registry adds no suffix, so counters are declared with their `_total`.
 */
import { Counter, Gauge, Histogram, Registry, registerProcessMetrics, type ValueChild } from './prom.js';
import { ITEM, ITEM_TEXT, type Signal } from '../signals.js';

export { Counter, Gauge, Histogram };

/** Every way a span (log record, metric data point) can leave the collector without being exported. */
export type DropReason =
  | 'invalid_span' // rejected at the receiver: bad trace or span id
  | 'sampled_out' // tail sampling decided not to keep the trace
  | 'late_not_sampled' // late span of a trace decided not-sampled
  | 'policy_drop' // a drop policy matched
  | 'export_permanent_error' // backend refused the request for good (not as invalid data, or with isolate_rejected off)
  | 'export_retries_exhausted' // retry budget ran out
  | 'queue_full' // exporter queue full and configured to drop
  | 'memory_limit' // refused or evicted for memory
  | 'buffer_full' // tail-sampling buffer overflow with no room anywhere
  | 'disk_full' // disk budget exhausted
  | 'shutdown' // could not be delivered within the shutdown timeout
  | 'backend_rejected' // backend's partial_success rejected_spans, or spans isolated in a batch it refused as invalid
  | 'export_write_error' // the file exporter could not write (disk error)
  | 'normalize_failed' // normalize: nested data could not be decoded (dropped so nothing leaves unredacted)
  | 'storage_error' // spilled spans that could not be read back from disk (unreadable or damaged rows)
  | 'invalid_log_record' // rejected at the receiver: bad ids, bad UTF-8 or wire types in a log record
  | 'invalid_metric'; // rejected at the receiver: a metric that does not decode

export class Telemetry {
  readonly registry: Registry;
  private readonly dropped: Counter;
  /** The drop counter of logs and metrics (`sidecar_log_records_dropped_total`, `sidecar_metric_points_dropped_total`), made on first use. */
  private readonly droppedBySignal = new Map<Signal, Counter>();
  private readonly dropChildren = new Map<string, ValueChild>();
  private stopProcessMetrics: (() => void) | undefined;

  constructor() {
    this.registry = new Registry();
    this.dropped = this.counter(
      'sidecar_spans_dropped_total',
      'Spans that were accepted but will not be exported, by component and reason.',
      ['component', 'reason'],
    );
  }

  counter(name: string, help: string, labelNames: string[] = []): Counter {
    const existing = this.registry.getSingleMetric(name);
    if (existing) return existing as Counter;
    return new Counter({ name, help, labelNames, registers: [this.registry] });
  }

  gauge(name: string, help: string, labelNames: string[] = [], collect?: (this: Gauge) => void): Gauge {
    const existing = this.registry.getSingleMetric(name);
    if (existing) return existing as Gauge;
    return new Gauge({ name, help, labelNames, registers: [this.registry], collect });
  }

  histogram(name: string, help: string, labelNames: string[], buckets: number[]): Histogram {
    const existing = this.registry.getSingleMetric(name);
    if (existing) return existing as Histogram;
    return new Histogram({ name, help, labelNames, buckets, registers: [this.registry] });
  }

  /**
   * Counts items that will not be exported: spans, or with `signal` log records
   * or metric data points (each signal has its own counter). Every drop in the
   * collector goes through here.
   */
  drop(component: string, reason: DropReason, n: number, signal: Signal = 'traces'): void {
    if (n <= 0) return;
    const key = signal + '\u0000' + component + '\u0000' + reason;
    let child = this.dropChildren.get(key);
    if (child === undefined) {
      child = this.dropCounter(signal).labels(component, reason);
      this.dropChildren.set(key, child);
    }
    child.inc(n);
  }

  private dropCounter(signal: Signal): Counter {
    if (signal === 'traces') return this.dropped;
    let c = this.droppedBySignal.get(signal);
    if (c === undefined) {
      c = this.counter(
        `sidecar_${ITEM[signal]}_dropped_total`,
        `${ITEM_TEXT[signal][0].toUpperCase()}${ITEM_TEXT[signal].slice(1)} that were accepted but will not be exported, by component and reason.`,
        ['component', 'reason'],
      );
      this.droppedBySignal.set(signal, c);
    }
    return c;
  }

  /** Total dropped spans so far, by reason (for the periodic log line and tests). */
  async droppedByReason(): Promise<Record<string, number>> {
    const m = await this.dropped.get();
    const out: Record<string, number> = {};
    for (const v of m.values) {
      const r = String(v.labels.reason);
      out[r] = (out[r] ?? 0) + v.value;
    }
    return out;
  }

  /** CPU, memory, heap and event-loop delay of this process (once per process: it starts a monitor). */
  enableProcessMetrics(): void {
    this.stopProcessMetrics ??= registerProcessMetrics(this.registry);
  }

  async metricsText(): Promise<string> {
    return this.registry.metrics();
  }

  get contentType(): string {
    return this.registry.contentType;
  }

  /** Sum of a counter's values (all label sets), for tests and the summary log. */
  async total(name: string, filter?: Record<string, string>): Promise<number> {
    const metric = this.registry.getSingleMetric(name);
    if (!metric) return 0;
    const data = await metric.get();
    let sum = 0;
    for (const v of data.values) {
      if (filter && !Object.entries(filter).every(([k, want]) => String(v.labels[k]) === want)) continue;
      if ((v as { metricName?: string }).metricName && (v as { metricName?: string }).metricName !== name) continue;
      sum += v.value;
    }
    return sum;
  }
}
