/**
 * A small Prometheus registry: counters, gauges and histograms with labels,
 * the text exposition format (0.0.4), and the process metrics the README lists.
 *
 * It replaces prom-client, whose import alone (its cluster aggregator pulls in
 * node:cluster, child_process and dgram; @opentelemetry/api for exemplars; its
 * summary and GC-observer machinery) cost about 4 MiB of the collector's idle
 * memory (BENCHMARKS.md, idle RSS). The API is the subset of prom-client's the
 * collector uses, so components and tests read the same: `labels(...)` returns
 * a bound child whose `inc` / `set` / `observe` is a property update, and
 * `get()` returns `{ values: [{ labels, value, metricName? }] }`.
 */
import { monitorEventLoopDelay, type IntervalHistogram } from 'node:perf_hooks';
import { readFileSync } from 'node:fs';

export type LabelValue = string | number;
export type Labels = Record<string, LabelValue>;

export interface MetricValue {
  labels: Labels;
  value: number;
  /** Set on histogram series: `<name>_bucket`, `<name>_sum`, `<name>_count`. */
  metricName?: string;
}

export interface MetricData {
  name: string;
  help: string;
  type: 'counter' | 'gauge' | 'histogram';
  values: MetricValue[];
}

export interface MetricOptions {
  name: string;
  help: string;
  labelNames?: readonly string[];
  registers?: Registry[];
}

function labelsOf(names: readonly string[], values: readonly LabelValue[], metric: string): Labels {
  if (values.length !== names.length) throw new Error(`metric ${metric}: ${names.length} label values expected (${names.join(', ')}), got ${values.length}`);
  const out: Labels = {};
  for (let i = 0; i < names.length; i++) out[names[i]] = values[i];
  return out;
}

function escapeLabel(v: LabelValue): string {
  return String(v).replace(/\\/g, '\\\\').replace(/\n/g, '\\n').replace(/"/g, '\\"');
}

function formatLabels(labels: Labels, extra?: string): string {
  const parts: string[] = [];
  for (const k of Object.keys(labels)) parts.push(`${k}="${escapeLabel(labels[k])}"`);
  if (extra !== undefined) parts.push(extra);
  return parts.length === 0 ? '' : `{${parts.join(',')}}`;
}

function formatValue(v: number): string {
  if (v === Infinity) return '+Inf';
  if (v === -Infinity) return '-Inf';
  return String(v);
}

abstract class Metric<C> {
  readonly name: string;
  readonly help: string;
  readonly labelNames: readonly string[];
  abstract readonly type: MetricData['type'];
  protected readonly children = new Map<string, C>();

  constructor(o: MetricOptions) {
    this.name = o.name;
    this.help = o.help;
    this.labelNames = o.labelNames ?? [];
    for (const r of o.registers ?? []) r.registerMetric(this as unknown as AnyMetric);
  }

  protected abstract newChild(labels: Labels): C;

  /** The child for these label values (in `labelNames` order), created on first use. */
  labels(...values: LabelValue[]): C {
    const key = values.join('\u0000');
    let c = this.children.get(key);
    if (c === undefined) {
      c = this.newChild(labelsOf(this.labelNames, values, this.name));
      this.children.set(key, c);
    }
    return c;
  }

  remove(...values: LabelValue[]): void {
    this.children.delete(values.join('\u0000'));
  }

  /** Forgets every label set (an unlabelled metric goes back to zero). */
  reset(): void {
    this.children.clear();
  }

  /** The child of an unlabelled metric. */
  protected get self(): C {
    return this.labels();
  }

  abstract get(): Promise<MetricData>;
}

/** The state behind one label set of a counter or gauge. */
export class ValueChild {
  value = 0;
  constructor(readonly labelSet: Labels, private readonly counter: string | undefined) {}
  inc(n = 1): void {
    if (this.counter !== undefined && !(n >= 0)) throw new Error(`counter ${this.counter}: cannot increase by ${n}`);
    this.value += n;
  }
  dec(n = 1): void {
    this.value -= n;
  }
  set(v: number): void {
    this.value = v;
  }
}

export interface ValueMetricOptions<M> extends MetricOptions {
  /** Called before every read (exposition and get()) to refresh the values. */
  collect?: (this: M) => void | Promise<void>;
}

abstract class ValueMetric extends Metric<ValueChild> {
  private readonly collectFn: ((this: ValueMetric) => void | Promise<void>) | undefined;
  constructor(o: ValueMetricOptions<never>) {
    super(o);
    this.collectFn = o.collect as ((this: ValueMetric) => void | Promise<void>) | undefined;
    if (this.labelNames.length === 0) this.labels(); // an unlabelled series reads 0 before its first update
  }
  reset(): void {
    super.reset();
    if (this.labelNames.length === 0) this.labels();
  }
  inc(n = 1): void {
    this.self.inc(n);
  }
  async get(): Promise<MetricData> {
    if (this.collectFn) await this.collectFn.call(this);
    const values: MetricValue[] = [];
    for (const c of this.children.values()) values.push({ labels: { ...c.labelSet }, value: c.value });
    return { name: this.name, help: this.help, type: this.type, values };
  }
}

export class Counter extends ValueMetric {
  readonly type = 'counter' as const;
  constructor(o: ValueMetricOptions<Counter>) {
    super(o as ValueMetricOptions<never>);
  }
  protected newChild(labels: Labels): ValueChild {
    return new ValueChild(labels, this.name);
  }
}

export class Gauge extends ValueMetric {
  readonly type = 'gauge' as const;
  constructor(o: ValueMetricOptions<Gauge>) {
    super(o as ValueMetricOptions<never>);
  }
  protected newChild(labels: Labels): ValueChild {
    return new ValueChild(labels, undefined);
  }
  set(v: number): void {
    this.self.set(v);
  }
  dec(n = 1): void {
    this.self.dec(n);
  }
}

/** The state behind one label set of a histogram. */
export class HistogramChild {
  readonly counts: Float64Array;
  sum = 0;
  count = 0;
  constructor(readonly labelSet: Labels, private readonly upper: readonly number[]) {
    this.counts = new Float64Array(upper.length);
  }
  observe(v: number): void {
    const upper = this.upper;
    for (let i = 0; i < upper.length; i++) {
      if (v <= upper[i]) {
        this.counts[i]++;
        break;
      }
    }
    this.sum += v;
    this.count++;
  }
}

export interface HistogramOptions extends MetricOptions {
  buckets: number[];
}

export class Histogram extends Metric<HistogramChild> {
  readonly type = 'histogram' as const;
  private readonly upper: number[];
  constructor(o: HistogramOptions) {
    super(o);
    this.upper = [...o.buckets].sort((a, b) => a - b);
    if (this.labelNames.length === 0) this.labels();
  }
  protected newChild(labels: Labels): HistogramChild {
    return new HistogramChild(labels, this.upper);
  }
  observe(v: number): void {
    this.self.observe(v);
  }
  async get(): Promise<MetricData> {
    const values: MetricValue[] = [];
    for (const c of this.children.values()) {
      let acc = 0;
      for (let i = 0; i < this.upper.length; i++) {
        acc += c.counts[i];
        values.push({ labels: { ...c.labelSet, le: this.upper[i] }, value: acc, metricName: `${this.name}_bucket` });
      }
      values.push({ labels: { ...c.labelSet, le: '+Inf' }, value: c.count, metricName: `${this.name}_bucket` });
      values.push({ labels: { ...c.labelSet }, value: c.sum, metricName: `${this.name}_sum` });
      values.push({ labels: { ...c.labelSet }, value: c.count, metricName: `${this.name}_count` });
    }
    return { name: this.name, help: this.help, type: this.type, values };
  }
}

export type AnyMetric = Counter | Gauge | Histogram;

export class Registry {
  readonly contentType = 'text/plain; version=0.0.4; charset=utf-8';
  private readonly metricsByName = new Map<string, AnyMetric>();

  registerMetric(m: AnyMetric): void {
    if (this.metricsByName.has(m.name)) throw new Error(`a metric named ${m.name} is already registered`);
    this.metricsByName.set(m.name, m);
  }

  getSingleMetric(name: string): AnyMetric | undefined {
    return this.metricsByName.get(name);
  }

  /** The exposition text of every metric. */
  async metrics(): Promise<string> {
    const out: string[] = [];
    for (const m of this.metricsByName.values()) {
      const d = await m.get();
      out.push(`# HELP ${d.name} ${d.help.replace(/\\/g, '\\\\').replace(/\n/g, '\\n')}`, `# TYPE ${d.name} ${d.type}`);
      for (const v of d.values) {
        const name = v.metricName ?? d.name;
        if (v.labels.le !== undefined) {
          const { le, ...rest } = v.labels;
          out.push(`${name}${formatLabels(rest, `le="${formatValue(le === '+Inf' ? Infinity : Number(le))}"`)} ${formatValue(v.value)}`);
        } else out.push(`${name}${formatLabels(v.labels)} ${formatValue(v.value)}`);
      }
    }
    out.push('');
    return out.join('\n');
  }
}

const PAGE_SIZE = 4096;

/** Resident set size in bytes, from /proc (falls back to process.memoryUsage.rss). */
function rssBytes(): number {
  try {
    const statm = readFileSync('/proc/self/statm', 'utf8');
    return Number(statm.split(' ')[1]) * PAGE_SIZE;
  } catch {
    return process.memoryUsage.rss();
  }
}

/**
 * Process metrics under prom-client's names: CPU seconds, resident memory, the
 * V8 heap, event-loop delay (a 20 ms resolution histogram, read and reset at
 * each scrape), start time and Node version. Returns a function that stops
 * the event-loop monitor.
 */
export function registerProcessMetrics(r: Registry): () => void {
  const opts = (name: string, help: string, collect: (this: Gauge) => void): ValueMetricOptions<Gauge> => ({ name, help, registers: [r], collect });
  new Gauge({ name: 'process_start_time_seconds', help: 'Start time of the process since unix epoch in seconds.', registers: [r] }).set(Math.round(Date.now() / 1000 - process.uptime()));
  const cpuTotal = (name: string, help: string, pick: (u: NodeJS.CpuUsage) => number) =>
    new Counter({
      name,
      help,
      registers: [r],
      collect() {
        this.labels().set(pick(process.cpuUsage()) / 1e6);
      },
    });
  cpuTotal('process_cpu_user_seconds_total', 'Total user CPU time spent in seconds.', (u) => u.user);
  cpuTotal('process_cpu_system_seconds_total', 'Total system CPU time spent in seconds.', (u) => u.system);
  cpuTotal('process_cpu_seconds_total', 'Total user and system CPU time spent in seconds.', (u) => u.user + u.system);
  new Gauge(opts('process_resident_memory_bytes', 'Resident memory size in bytes.', function () { this.set(rssBytes()); }));
  new Gauge(opts('nodejs_heap_size_total_bytes', 'Process heap size from Node.js in bytes.', function () { this.set(process.memoryUsage().heapTotal); }));
  new Gauge(opts('nodejs_heap_size_used_bytes', 'Process heap size used from Node.js in bytes.', function () { this.set(process.memoryUsage().heapUsed); }));
  new Gauge(opts('nodejs_external_memory_bytes', 'Node.js external memory size in bytes.', function () { this.set(process.memoryUsage().external); }));
  const version = new Gauge({ name: 'nodejs_version_info', help: 'Node.js version info.', labelNames: ['version'], registers: [r] });
  version.labels(process.version).set(1);

  const h: IntervalHistogram = monitorEventLoopDelay({ resolution: 20 });
  h.enable();
  const lag = (name: string, help: string, read: () => number, reset = false) =>
    new Gauge(
      opts(name, help, function () {
        const v = read();
        this.set(Number.isFinite(v) ? v / 1e9 : 0);
        if (reset) h.reset();
      }),
    );
  lag('nodejs_eventloop_lag_min_seconds', 'The minimum recorded event loop delay.', () => h.min);
  lag('nodejs_eventloop_lag_max_seconds', 'The maximum recorded event loop delay.', () => h.max);
  lag('nodejs_eventloop_lag_mean_seconds', 'The mean of the recorded event loop delays.', () => h.mean);
  lag('nodejs_eventloop_lag_stddev_seconds', 'The standard deviation of the recorded event loop delays.', () => h.stddev);
  lag('nodejs_eventloop_lag_p50_seconds', 'The 50th percentile of the recorded event loop delays.', () => h.percentile(50));
  lag('nodejs_eventloop_lag_p90_seconds', 'The 90th percentile of the recorded event loop delays.', () => h.percentile(90));
  // Registered last, so a scrape reads every figure above before the histogram restarts.
  lag('nodejs_eventloop_lag_p99_seconds', 'The 99th percentile of the recorded event loop delays.', () => h.percentile(99), true);
  return () => h.disable();
}
