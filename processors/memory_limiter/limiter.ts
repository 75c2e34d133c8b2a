/**
 * The memory_limiter processor: measures process RSS every check_interval and,
 * while it is above the soft limit, refuses new data with a retryable
 * MemoryLimitError (receivers answer RESOURCE_EXHAUSTED + RetryInfo / 429 +
 * Retry-After). The hot path is one comparison: the state is decided by the
 * periodic check, never per call.
 */
import type { Logger } from 'pino';
import type { Clock, Component } from '../../collector/component.js';
import type { LogsConsumer, MetricsConsumer, TracesConsumer } from '../../collector/consumer.js';
import type { LogRecord } from '../../collector/pdata/logs.js';
import { countPoints, type Metric } from '../../collector/pdata/metrics.js';
import { ITEM, type Signal } from '../../collector/signals.js';
import { MemoryLimitError } from '../../collector/errors.js';
import type { Span } from '../../collector/pdata/spans.js';
import type { Telemetry } from '../../collector/telemetry/metrics.js';

export const MEMORY_OK = 0;
export const MEMORY_SOFT = 1;
export const MEMORY_HARD = 2;
export type MemoryState = typeof MEMORY_OK | typeof MEMORY_SOFT | typeof MEMORY_HARD;

export interface MemoryLimits {
  hardBytes: number;
  softBytes: number;
  /** Where the limit came from, for the start log: "limit_mib", "cgroup2", "cgroup1", "system". */
  source: string;
}

export interface MemoryLimiterOptions {
  limits: MemoryLimits;
  checkIntervalMs: number;
  minGcIntervalSoftMs: number;
  minGcIntervalHardMs: number;
}

export interface MemoryLimiterDeps {
  telemetry: Telemetry;
  logger: Logger;
  clock: Clock;
  /** Current memory use in bytes. Default: process RSS (`process.memoryUsage.rss()`, cheap). */
  readMemory?: () => number;
  /** Requests a full GC. Default: `global.gc` when Node runs with --expose-gc, else none. */
  gc?: (() => void) | null;
}

const MIB = 1024 * 1024;
/** Least time between two "above the hard limit" warnings. */
const HARD_WARN_INTERVAL_MS = 10_000;

function defaultGc(): (() => void) | null {
  const g = (globalThis as { gc?: () => void }).gc;
  return typeof g === 'function' ? () => g() : null;
}

/**
 * One instance per pipeline (`signal`); every instance measures the same
 * process, so a logs and a traces pipeline refuse together.
 */
export class MemoryLimiter implements TracesConsumer, LogsConsumer, MetricsConsumer, Component {
  readonly mutatesData = false;

  private readonly id: string;
  private readonly next: TracesConsumer;
  private readonly signal: Signal;
  private readonly opts: MemoryLimiterOptions;
  private readonly logger: Logger;
  private readonly clock: Clock;
  private readonly readMemory: () => number;
  private readonly gc: (() => void) | null;

  private _state: MemoryState = MEMORY_OK;
  private _usage = 0;
  private lastGcAt = -Infinity;
  private lastHardWarnAt = -Infinity;
  private interval: NodeJS.Timeout | undefined = undefined;
  private stopped = false;

  private readonly softError: MemoryLimitError;
  private readonly hardError: MemoryLimitError;

  private readonly mRefusedSoft;
  private readonly mRefusedHard;
  private readonly mUsage;
  private readonly mState;
  private readonly mGc;

  constructor(id: string, opts: MemoryLimiterOptions, next: TracesConsumer | LogsConsumer | MetricsConsumer, deps: MemoryLimiterDeps, signal: Signal = 'traces') {
    this.id = id;
    this.next = next as TracesConsumer;
    this.signal = signal;
    this.opts = opts;
    this.logger = deps.logger;
    this.clock = deps.clock;
    this.readMemory = deps.readMemory ?? (() => process.memoryUsage.rss());
    this.gc = deps.gc === undefined ? defaultGc() : deps.gc;

    // Memory is re-measured every check_interval; a retry sooner than that
    // would meet the same answer. Retry-After has whole seconds.
    const retryAfterMs = Math.max(1000, Math.ceil((2 * opts.checkIntervalMs) / 1000) * 1000);
    const { softBytes, hardBytes } = opts.limits;
    this.softError = new MemoryLimitError(
      `${id}: memory use is above the soft limit (${Math.round(softBytes / MIB)} MiB); data refused, retry later`,
      retryAfterMs,
    );
    this.hardError = new MemoryLimitError(
      `${id}: memory use is above the hard limit (${Math.round(hardBytes / MIB)} MiB); data refused, retry later`,
      retryAfterMs,
    );

    const t = deps.telemetry;
    const refused = t.counter(
      `otelcol_processor_refused_${ITEM[signal]}_total`,
      `${signal === 'traces' ? 'Spans' : signal === 'logs' ? 'Log records' : 'Metric data points'} a processor refused (the caller was told to retry), by reason.`,
      ['processor', 'reason'],
    );
    this.mRefusedSoft = refused.labels(id, 'memory_soft_limit');
    this.mRefusedHard = refused.labels(id, 'memory_hard_limit');
    this.mUsage = t
      .gauge('sidecar_processor_memory_limiter_usage_bytes', 'Memory use (process RSS) at the last check.', ['processor'])
      .labels(id);
    t.gauge('sidecar_processor_memory_limiter_soft_limit_bytes', 'Soft limit: above it new data is refused.', ['processor'])
      .labels(id)
      .set(softBytes);
    t.gauge('sidecar_processor_memory_limiter_hard_limit_bytes', 'Hard limit: above it data is refused and a warning logged.', ['processor'])
      .labels(id)
      .set(hardBytes);
    this.mState = t
      .gauge('sidecar_processor_memory_limiter_state', 'Memory state at the last check: 0 below soft, 1 above soft, 2 above hard.', ['processor'])
      .labels(id);
    this.mGc = t
      .counter('sidecar_processor_memory_limiter_gc_total', 'Garbage collections requested by the memory limiter.', ['processor'])
      .labels(id);
    this.mState.set(0);
  }

  get state(): MemoryState {
    return this._state;
  }

  /** Memory use at the last check, in bytes. */
  get usage(): number {
    return this._usage;
  }

  get limits(): MemoryLimits {
    return this.opts.limits;
  }

  async start(): Promise<void> {
    if (this.stopped || this.interval !== undefined) return;
    const { softBytes, hardBytes, source } = this.opts.limits;
    this.logger.info(
      { soft_limit_mib: Math.round(softBytes / MIB), hard_limit_mib: Math.round(hardBytes / MIB), limit_source: source, gc: this.gc !== null },
      'memory limiter started',
    );
    this.check();
    this.interval = setInterval(() => this.check(), this.opts.checkIntervalMs);
    this.interval.unref();
  }

  async shutdown(): Promise<void> {
    this.stopped = true;
    if (this.interval !== undefined) {
      clearInterval(this.interval);
      this.interval = undefined;
    }
  }

  consume(spans: Span[]): Promise<void> {
    const s = this._state;
    if (s === MEMORY_OK) return this.next.consume(spans);
    return this.refuse(s, spans.length);
  }

  consumeLogs(records: LogRecord[]): Promise<void> {
    const s = this._state;
    if (s === MEMORY_OK) return (this.next as unknown as LogsConsumer).consumeLogs(records);
    return this.refuse(s, records.length);
  }

  consumeMetrics(metrics: Metric[]): Promise<void> {
    const s = this._state;
    if (s === MEMORY_OK) return (this.next as unknown as MetricsConsumer).consumeMetrics(metrics);
    return this.refuse(s, countPoints(metrics));
  }

  private refuse(s: MemoryState, n: number): Promise<void> {
    if (s === MEMORY_SOFT) {
      this.mRefusedSoft.inc(n);
      return Promise.reject(this.softError);
    }
    this.mRefusedHard.inc(n);
    return Promise.reject(this.hardError);
  }

  /** Measures memory and updates the state (called every check_interval; tests call it directly). */
  check(): MemoryState {
    let usage = this.readMemory();
    const { softBytes, hardBytes } = this.opts.limits;
    if (usage >= softBytes && this.gc !== null) {
      const now = this.clock.now();
      const minGap = usage >= hardBytes ? this.opts.minGcIntervalHardMs : this.opts.minGcIntervalSoftMs;
      if (now - this.lastGcAt >= minGap) {
        this.lastGcAt = now;
        this.gc();
        this.mGc.inc();
        usage = this.readMemory();
      }
    }
    const next: MemoryState = usage >= hardBytes ? MEMORY_HARD : usage >= softBytes ? MEMORY_SOFT : MEMORY_OK;
    const prev = this._state;
    this._usage = usage;
    this._state = next;
    this.mUsage.set(usage);
    this.mState.set(next);
    if (next === MEMORY_HARD) {
      const now = this.clock.now();
      if (now - this.lastHardWarnAt >= HARD_WARN_INTERVAL_MS) {
        this.lastHardWarnAt = now;
        this.logger.warn(
          { usage_mib: Math.round(usage / MIB), hard_limit_mib: Math.round(hardBytes / MIB) },
          'memory use is above the hard limit; refusing data',
        );
      }
    } else if (next === MEMORY_SOFT && prev === MEMORY_OK) {
      this.logger.info(
        { usage_mib: Math.round(usage / MIB), soft_limit_mib: Math.round(softBytes / MIB) },
        'memory use is above the soft limit; refusing data',
      );
    } else if (next === MEMORY_OK && prev !== MEMORY_OK) {
      this.logger.info({ usage_mib: Math.round(usage / MIB) }, 'memory use is below the soft limit again; accepting data');
    }
    return next;
  }
}
