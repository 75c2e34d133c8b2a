/**
 * The tail sampler's own metrics (`otelcol_processor_tail_sampling_*`), bound
 * to the processor id once, and the spans it dropped, counted per tick into
 * `sidecar_spans_dropped_total` (one telemetry.drop call per reason per flush).
 */
import type { Telemetry, Counter, Histogram, Gauge } from '../../collector/telemetry/metrics.js';

export type DecisionReason = 'decision_wait' | 'root_received' | 'too_large' | 'buffer_full' | 'shutdown';
export type DecisionKind = 'sampled' | 'not_sampled' | 'dropped';

export const METRIC_PREFIX = 'otelcol_processor_tail_sampling_';

type C = ReturnType<Counter['labels']>;
type H = ReturnType<Histogram['labels']>;
type G = ReturnType<Gauge['labels']>;

export class TailSamplingMetrics {
  readonly globalTraces: Record<DecisionKind, C>;
  readonly globalSpans: Record<DecisionKind, C>;
  readonly early: Record<'buffer_full' | 'too_large', C>;
  readonly cacheSampled: C;
  readonly cacheNotSampled: C;
  readonly newTraces: C;
  readonly forwardRetries: C;
  readonly latency: Histogram;
  readonly latencyByReason: Record<DecisionReason, H>;
  readonly lateAge: H;
  readonly tickLatency: H;
  readonly traces: G;
  readonly spans: G;
  readonly bytes: G;
  readonly refused: C;
  /** Spans dropped since the last flush, by reason. */
  droppedSampledOut = 0;
  droppedPolicy = 0;

  constructor(
    private readonly telemetry: Telemetry,
    private readonly id: string,
  ) {
    const t = telemetry;
    const P = METRIC_PREFIX;
    const gTraces = t.counter(P + 'global_count_traces_sampled_total', 'Final decisions on traces.', ['processor', 'sampled', 'decision']);
    const gSpans = t.counter(P + 'global_count_spans_sampled_total', 'Spans of decided traces, by final decision.', ['processor', 'sampled', 'decision']);
    const early = t.counter(P + 'traces_decided_early_total', 'Traces decided before their wait was over, by reason.', ['processor', 'reason']);
    const cache = t.counter(
      P + 'early_releases_from_cache_decision_total',
      'Late spans that followed a cached decision (forwarded when sampled=true, dropped when false).',
      ['processor', 'sampled'],
    );
    const latency = t.histogram(
      P + 'sampling_decision_latency_seconds',
      'Time from the first span of a trace to its decision, by what triggered the decision.',
      ['processor', 'reason'],
      [0.1, 0.5, 1, 2, 5, 10, 15, 20, 30, 45, 60, 120],
    );
    this.latency = latency;
    this.latencyByReason = {
      decision_wait: latency.labels(id, 'decision_wait'),
      root_received: latency.labels(id, 'root_received'),
      too_large: latency.labels(id, 'too_large'),
      buffer_full: latency.labels(id, 'buffer_full'),
      shutdown: latency.labels(id, 'shutdown'),
    };
    this.globalTraces = {
      sampled: gTraces.labels(id, 'true', 'sampled'),
      not_sampled: gTraces.labels(id, 'false', 'not_sampled'),
      dropped: gTraces.labels(id, 'false', 'dropped'),
    };
    this.globalSpans = {
      sampled: gSpans.labels(id, 'true', 'sampled'),
      not_sampled: gSpans.labels(id, 'false', 'not_sampled'),
      dropped: gSpans.labels(id, 'false', 'dropped'),
    };
    this.early = { buffer_full: early.labels(id, 'buffer_full'), too_large: early.labels(id, 'too_large') };
    this.cacheSampled = cache.labels(id, 'true');
    this.cacheNotSampled = cache.labels(id, 'false');
    this.newTraces = t.counter(P + 'new_trace_id_received_total', 'Traces started in the buffer.', ['processor']).labels(id);
    this.forwardRetries = t.counter(P + 'forward_retries_total', 'Batches of kept spans re-sent after the next stage refused them.', ['processor']).labels(id);
    this.lateAge = t
      .histogram(P + 'sampling_late_span_age_seconds', 'Time between a trace decision and a late span of it.', ['processor'], [1, 5, 10, 30, 60, 120, 300, 600, 1800])
      .labels(id);
    this.tickLatency = t
      .histogram(P + 'sampling_decision_timer_latency_seconds', 'Duration of one decision tick.', ['processor'], [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1])
      .labels(id);
    this.traces = t.gauge(P + 'sampling_traces_on_memory', 'Traces buffered awaiting a decision.', ['processor']).labels(id);
    this.spans = t.gauge(P + 'sampling_spans_on_memory', 'Spans buffered awaiting a decision.', ['processor']).labels(id);
    this.bytes = t.gauge(P + 'sampling_bytes_on_memory', 'Accounted bytes of buffered spans (encoded size plus fixed overheads).', ['processor']).labels(id);
    this.refused = t
      .counter(P + 'refused_spans_total', 'Spans refused with a retryable error because memory (and disk) were full (buffer.when_full: refuse).', ['processor', 'reason'])
      .labels(id, 'buffer_full');
  }

  /** Counts one final decision on a trace of n spans. */
  decided(kind: DecisionKind, spans: number): void {
    this.globalTraces[kind].inc();
    this.globalSpans[kind].inc(spans);
  }

  /** Late spans that followed a cached decision. */
  late(sampled: number, notSampled: number): void {
    if (sampled > 0) this.cacheSampled.inc(sampled);
    if (notSampled > 0) {
      this.cacheNotSampled.inc(notSampled);
      this.telemetry.drop(this.id, 'late_not_sampled', notSampled);
    }
  }

  get hasDrops(): boolean {
    return this.droppedSampledOut > 0 || this.droppedPolicy > 0;
  }

  flushDrops(): void {
    if (this.droppedSampledOut > 0) this.telemetry.drop(this.id, 'sampled_out', this.droppedSampledOut);
    if (this.droppedPolicy > 0) this.telemetry.drop(this.id, 'policy_drop', this.droppedPolicy);
    this.droppedSampledOut = 0;
    this.droppedPolicy = 0;
  }

  /** Memory gauges: what the buffer holds plus the kept spans awaiting a retry. */
  setMemory(traces: number, spans: number, bytes: number): void {
    this.traces.set(traces);
    this.spans.set(spans);
    this.bytes.set(bytes);
  }
}

/** One warning per tick, shared by the parts that may warn (forwarding, spilling). */
export class TickWarnings {
  private warned = false;
  /** True the first time in a tick (the caller logs), false after. */
  first(): boolean {
    if (this.warned) return false;
    this.warned = true;
    return true;
  }
  reset(): void {
    this.warned = false;
  }
}
