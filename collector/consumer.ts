/**
 * One interface per signal between pipeline stages (after the Collector's
 * consumer.Traces / consumer.Logs / consumer.Metrics). A stage receives a batch
 * and resolves when it has taken responsibility for it (buffered, queued or
 * sent), or rejects with a CollectorError saying whether the caller may retry.
 * The method names differ per signal so one component (an exporter, the
 * tail_sampling processor) can serve several signals.
 */
import type { Span } from './pdata/spans.js';
import type { LogRecord } from './pdata/logs.js';
import type { Metric } from './pdata/metrics.js';
import type { Signal } from './signals.js';

export interface TracesConsumer {
  consume(spans: Span[]): Promise<void>;
  /**
   * True when the stage changes what it is handed (edits bytes or index).
   * A fan-out gives such a consumer its own copies of the item objects.
   */
  readonly mutatesData?: boolean;
}

export interface LogsConsumer {
  consumeLogs(records: LogRecord[]): Promise<void>;
  readonly mutatesData?: boolean;
}

export interface MetricsConsumer {
  consumeMetrics(metrics: Metric[]): Promise<void>;
  readonly mutatesData?: boolean;
}

/** The consumer of each signal a component is handed (a receiver serves the signals present). */
export interface SignalConsumers {
  traces?: TracesConsumer;
  logs?: LogsConsumer;
  metrics?: MetricsConsumer;
}

/** What a consumer of `signal` is, for code that handles all three alike. */
export type ConsumerOf<S extends Signal> = S extends 'traces' ? TracesConsumer : S extends 'logs' ? LogsConsumer : MetricsConsumer;

/** Hands items to a consumer of the given signal. */
export function consumeAs(signal: Signal, c: TracesConsumer | LogsConsumer | MetricsConsumer, items: unknown[]): Promise<void> {
  if (signal === 'traces') return (c as TracesConsumer).consume(items as Span[]);
  if (signal === 'logs') return (c as LogsConsumer).consumeLogs(items as LogRecord[]);
  return (c as MetricsConsumer).consumeMetrics(items as Metric[]);
}

/** Whether `c` implements the consumer method of `signal`. */
export function serves(signal: Signal, c: object): boolean {
  const m = signal === 'traces' ? 'consume' : signal === 'logs' ? 'consumeLogs' : 'consumeMetrics';
  return typeof (c as Record<string, unknown>)[m] === 'function';
}

/** Shallow copy of an item object (Span, LogRecord, Metric): same bytes, own index. */
function cloneItem<T extends object>(s: T): T {
  const c = Object.create(Object.getPrototypeOf(s)) as T;
  Object.assign(c, s);
  return c;
}

export const cloneSpan: (s: Span) => Span = cloneItem;

/**
 * Calls every consumer of one signal; copies item objects for the ones that
 * mutate. The originals go to every consumer that does not mutate; a mutating
 * one may have them only when all of them mutate, and then only the last.
 */
class Fanout {
  private readonly copies: boolean[];
  constructor(
    private readonly signal: Signal,
    private readonly consumers: Array<TracesConsumer | LogsConsumer | MetricsConsumer>,
  ) {
    const allMutate = consumers.every((c) => c.mutatesData === true);
    this.copies = consumers.map((c, i) => c.mutatesData === true && !(allMutate && i === consumers.length - 1));
  }
  async fan(items: object[]): Promise<void> {
    if (this.consumers.length === 1) return consumeAs(this.signal, this.consumers[0], items);
    const results = await Promise.allSettled(
      this.consumers.map((c, i) => consumeAs(this.signal, c, this.copies[i] ? items.map(cloneItem) : items)),
    );
    for (const r of results) if (r.status === 'rejected') throw r.reason;
  }
}

export class FanoutConsumer implements TracesConsumer {
  private readonly f: Fanout;
  constructor(consumers: TracesConsumer[]) {
    this.f = new Fanout('traces', consumers);
  }
  get mutatesData(): boolean {
    return false;
  }
  consume(spans: Span[]): Promise<void> {
    return this.f.fan(spans);
  }
}

export class LogsFanout implements LogsConsumer {
  readonly mutatesData = false;
  private readonly f: Fanout;
  constructor(consumers: LogsConsumer[]) {
    this.f = new Fanout('logs', consumers);
  }
  consumeLogs(records: LogRecord[]): Promise<void> {
    return this.f.fan(records);
  }
}

export class MetricsFanout implements MetricsConsumer {
  readonly mutatesData = false;
  private readonly f: Fanout;
  constructor(consumers: MetricsConsumer[]) {
    this.f = new Fanout('metrics', consumers);
  }
  consumeMetrics(metrics: Metric[]): Promise<void> {
    return this.f.fan(metrics);
  }
}

/** A fan-out over consumers of `signal` (the one consumer itself when there is one). */
export function fanout(signal: Signal, consumers: Array<TracesConsumer | LogsConsumer | MetricsConsumer>): TracesConsumer | LogsConsumer | MetricsConsumer {
  if (consumers.length === 1) return consumers[0];
  if (signal === 'traces') return new FanoutConsumer(consumers as TracesConsumer[]);
  if (signal === 'logs') return new LogsFanout(consumers as LogsConsumer[]);
  return new MetricsFanout(consumers as MetricsConsumer[]);
}
