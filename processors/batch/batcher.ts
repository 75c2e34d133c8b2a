/**
 * The batch processor: gathers spans from many small inputs into fewer, larger
 * downstream calls, by count, by encoded bytes and by age.
 *
 * Acknowledgement: a caller's `consume()` resolves as soon as its spans are in
 * the buffer; from then on the processor owns them. It refuses new data with a
 * retryable error (so the receiver answers UNAVAILABLE / 503 with a delay)
 * while its pending bound is full and while the next stage is refusing. A
 * batch the next stage refused with a retryable error is held and re-sent,
 * oldest first and before any newer batch, with a backoff; a batch refused
 * permanently is counted as dropped. Nothing accepted leaves without either
 * reaching the next stage or going through `telemetry.drop`.
 *
 * Layout: spans wait in one bucket per resource (keyed by the resource's
 * encoded bytes, not by object identity, so the spans of one service arriving
 * in a thousand requests share one bucket and one ResourceSpans in the export
 * request). Buckets are drained in the order their resource first arrived;
 * spans inside a bucket keep their arrival order.
 *
 * Timers: one for the current buffer's age, one for the retry backoff (and,
 * during shutdown, the buffer's timer is replaced by the shutdown deadline).
 */
import type { Clock, Component } from '../../collector/component.js';
import { consumeAs, type LogsConsumer, type MetricsConsumer, type TracesConsumer } from '../../collector/consumer.js';
import type { LogRecord } from '../../collector/pdata/logs.js';
import type { Metric } from '../../collector/pdata/metrics.js';
import { ITEM, type Signal } from '../../collector/signals.js';
import { RetryableError, isPermanent, type CollectorError } from '../../collector/errors.js';
import { spanWireSize } from '../../collector/pdata/encode.js';
import { ScopeRef, type ResourceRef, type Span } from '../../collector/pdata/spans.js';
import type { Telemetry } from '../../collector/telemetry/metrics.js';
import type { Logger } from 'pino';
import type { TimerHandle, Timers } from './timers.js';
import { BytesTable } from './bytes_table.js';

export interface BatchOptions {
  /** Spans at which a batch is sent (0: no size trigger). */
  sendBatchSize: number;
  /** Most spans in one batch (0: no limit). */
  sendBatchMaxSize: number;
  /** Encoded bytes at which a batch is sent, and most bytes in one (0: off). */
  sendBatchMaxBytes: number;
  /** Age of the oldest buffered span at which the buffer is sent (0: send every input at once). */
  timeoutMs: number;
  /** Most spans held (buffered + in flight downstream + held for retry) before refusing. */
  maxPendingSpans: number;
  /** Most encoded bytes held before refusing (0: no bound). */
  maxPendingBytes: number;
}

/** Longest wait between two re-sends of a held batch. */
export const MAX_RETRY_BACKOFF_MS = 1000;
/** Shortest first wait before re-sending a held batch. */
export const MIN_RETRY_BACKOFF_MS = 100;
/** Default time `shutdown()` keeps re-sending held batches. */
export const DEFAULT_SHUTDOWN_TIMEOUT_MS = 10_000;
/** At most one log line per this interval for each kind of downstream failure. */
const LOG_INTERVAL_MS = 10_000;

/** Spans of one resource waiting to be batched. */
class Bucket {
  spans: Array<Span | undefined> = [];
  head = 0;

  /** Drops consumed slots once they are most of the array (amortised O(1)). */
  compact(): void {
    if (this.head >= 1024 && this.head * 2 >= this.spans.length) {
      this.spans = this.spans.slice(this.head);
      this.head = 0;
    }
  }
}

/** One batch cut from the buffer; kept until the next stage has taken it (or it is dropped). */
interface Batch {
  /** Cut order; held batches are re-sent in this order. */
  readonly seq: number;
  readonly spans: Span[];
  /** Items counted (spans, log records, metric data points). */
  readonly count: number;
  readonly bytes: number;
  /** Times handed to the next stage so far. */
  sends: number;
}

interface CanonResource {
  ref: ResourceRef;
  scopes: BytesTable<ScopeRef>;
}

/** Bounds the map of resources seen; it only affects grouping, so it is simply cleared. */
const MAX_CANON_RESOURCES = 1024;
const MAX_CANON_SCOPES = 1024;

type Trigger = 'size' | 'timeout' | 'shutdown';

const RESOLVED: Promise<void> = Promise.resolve();

export const SEND_SIZE_BUCKETS = [
  10, 25, 50, 75, 100, 250, 500, 750, 1000, 2000, 3000, 4000, 5000, 6000, 7000, 8000, 9000, 10000, 20000, 30000, 50000,
  100000,
];
export const SEND_BYTES_BUCKETS = [
  1000, 5000, 10000, 50000, 100_000, 250_000, 500_000, 1_000_000, 2_000_000, 4_000_000, 8_000_000, 16_000_000, 32_000_000,
  64_000_000,
];

function errMessage(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}

/**
 * Batches one signal. The same code batches spans, log records and metrics
 * (each kept as bytes under a scope); what differs is the next stage's method
 * and what counts as an item: a span, a log record, or a metric's data points
 * (a metric is never split, so a batch may pass send_batch_max_size by the
 * points of its last metric). Options named after spans apply to the items.
 */
export class BatchProcessor implements TracesConsumer, LogsConsumer, MetricsConsumer, Component {
  /** Swaps a span's ScopeRef for a byte-identical shared one; the data is unchanged. */
  readonly mutatesData = false;

  private readonly id: string;
  private readonly next: TracesConsumer | LogsConsumer | MetricsConsumer;
  private readonly signal: Signal;
  /** Items in one object: 1, or a metric's data points. */
  private readonly weight: (item: Span) => number;
  private readonly timers: Timers;
  private readonly clock: Clock;
  private readonly logger: Logger;
  private readonly telemetry: Telemetry;
  private readonly sizeTrigger: number;
  private readonly maxSpans: number;
  private readonly maxBytes: number;
  private readonly timeoutMs: number;
  private readonly maxPendingSpans: number;
  private readonly maxPendingBytes: number;
  private readonly initialBackoffMs: number;

  private readonly buckets = new Map<ResourceRef, Bucket>();
  /** Resource header bytes -> the first ResourceRef seen with them, and its scopes by header bytes. */
  private readonly canon = new BytesTable<CanonResource>();
  private bufferedSpans = 0;
  private bufferedBytes = 0;
  /** Buffered + handed downstream and not settled + held for retry. */
  private pendingSpans = 0;
  private pendingBytes = 0;
  /** Spans in held batches, including the one being re-sent. */
  private heldSpans = 0;
  /** Batches waiting to be (re)sent, by `seq`: failed ones and the ones cut behind them. */
  private readonly held: Batch[] = [];
  /** The held batch now being re-sent (at most one at a time). */
  private resending: Batch | undefined = undefined;
  /** Set by a retryable downstream failure; new data is refused with it until a send succeeds. */
  private refusal: RetryableError | undefined = undefined;
  private backoffMs: number;
  private timer: TimerHandle | undefined = undefined;
  private retryTimer: TimerHandle | undefined = undefined;
  private batchSeq = 0;
  private inflightBatches = 0;

  private stopped = false;
  /** Past the shutdown deadline: nothing is re-sent any more, late failures are dropped. */
  private abandoned = false;
  private shutdownPromise: Promise<void> | undefined = undefined;
  private drained: (() => void) | undefined = undefined;
  private deadlineTimer: TimerHandle | undefined = undefined;

  private lastPermanentLog = -Infinity;
  private permanentSinceLog = 0;
  private lastRefusingLog = -Infinity;

  private readonly fullError: RetryableError;
  private readonly stoppedError: RetryableError;

  // Metrics (bound children).
  private readonly mSendSize;
  private readonly mSendBytes;
  private readonly mTimeoutTrigger;
  private readonly mSizeTrigger;
  private readonly mRefusedFull;
  private readonly mRefusedDownstream;
  private readonly mRefusedShutdown;
  private readonly mPendingSpans;
  private readonly mPendingBytes;
  private readonly mHeldSpans;
  private readonly mFailedSpans;
  private readonly mRetries;

  constructor(
    id: string,
    opts: BatchOptions,
    next: TracesConsumer | LogsConsumer | MetricsConsumer,
    deps: { telemetry: Telemetry; timers: Timers; logger: Logger; clock?: Clock },
    signal: Signal = 'traces',
  ) {
    this.id = id;
    this.next = next;
    this.signal = signal;
    // A metric without data points still weighs 1 here, so the buffer's count never hides it.
    this.weight = signal === 'metrics' ? (m) => Math.max(1, (m as unknown as Metric).points) : () => 1;
    // Gauges are per instance: a logs or metrics instance names its own (the item in place of "spans").
    const own = (name: string) => (signal === 'traces' ? name : name.replace(/spans|bytes$/, (w) => (w === 'spans' ? ITEM[signal] : `${ITEM[signal]}_bytes`)));
    this.timers = deps.timers;
    this.clock = deps.clock ?? clockOf(deps.timers);
    this.logger = deps.logger;
    this.telemetry = deps.telemetry;
    this.maxSpans = opts.sendBatchMaxSize > 0 ? opts.sendBatchMaxSize : Infinity;
    this.sizeTrigger = opts.sendBatchSize > 0 ? opts.sendBatchSize : this.maxSpans;
    this.maxBytes = opts.sendBatchMaxBytes > 0 ? opts.sendBatchMaxBytes : Infinity;
    this.timeoutMs = opts.timeoutMs;
    this.maxPendingSpans = opts.maxPendingSpans;
    this.maxPendingBytes = opts.maxPendingBytes > 0 ? opts.maxPendingBytes : Infinity;
    this.initialBackoffMs = Math.min(MAX_RETRY_BACKOFF_MS, Math.max(MIN_RETRY_BACKOFF_MS, this.timeoutMs));
    this.backoffMs = this.initialBackoffMs;

    const retryAfter = Math.max(1000, Math.ceil(this.timeoutMs));
    this.fullError = new RetryableError(
      `${id}: too much data pending (max_pending_spans ${opts.maxPendingSpans}, max_pending_bytes ${opts.maxPendingBytes})`,
      retryAfter,
      'ERR_QUEUE_FULL',
    );
    this.stoppedError = new RetryableError(`${id}: shutting down`, retryAfter, 'ERR_SHUTTING_DOWN');

    const t = deps.telemetry;
    this.mSendSize = t
      .histogram('otelcol_processor_batch_batch_send_size', 'Number of spans in each batch sent downstream.', ['processor'], SEND_SIZE_BUCKETS)
      .labels(id);
    this.mSendBytes = t
      .histogram(
        'otelcol_processor_batch_batch_send_size_bytes',
        'Encoded bytes of the spans in each batch sent downstream.',
        ['processor'],
        SEND_BYTES_BUCKETS,
      )
      .labels(id);
    this.mTimeoutTrigger = t
      .counter('otelcol_processor_batch_timeout_trigger_send_total', 'Batches sent because the timeout fired.', ['processor'])
      .labels(id);
    this.mSizeTrigger = t
      .counter(
        'otelcol_processor_batch_batch_size_trigger_send_total',
        'Batches sent because they reached send_batch_size, send_batch_max_size or send_batch_max_bytes.',
        ['processor'],
      )
      .labels(id);
    const refused = t.counter(
      `otelcol_processor_refused_${ITEM[signal]}_total`,
      `${signal === 'traces' ? 'Spans' : signal === 'logs' ? 'Log records' : 'Metric data points'} a processor refused (the caller was told to retry), by reason.`,
      ['processor', 'reason'],
    );
    this.mRefusedFull = refused.labels(id, 'batcher_full');
    this.mRefusedDownstream = refused.labels(id, 'downstream_refusing');
    this.mRefusedShutdown = refused.labels(id, 'shutting_down');
    this.mPendingSpans = t
      .gauge(
        own('sidecar_processor_batch_pending_spans'),
        'Spans held by the batch processor (buffered + in flight downstream + held for retry).',
        ['processor'],
      )
      .labels(id);
    this.mPendingBytes = t
      .gauge(
        own('sidecar_processor_batch_pending_bytes'),
        'Encoded span bytes held by the batch processor (buffered + in flight downstream + held for retry).',
        ['processor'],
      )
      .labels(id);
    this.mHeldSpans = t
      .gauge(
        own('sidecar_processor_batch_held_spans'),
        'Spans in batches held for re-sending after the next stage refused one (including batches queued behind them).',
        ['processor'],
      )
      .labels(id);
    this.mFailedSpans = t
      .counter(
        'sidecar_processor_batch_downstream_failed_spans_total',
        'Spans in batch sends the next stage rejected (each failed attempt counts).',
        ['processor'],
      )
      .labels(id);
    this.mRetries = t
      .counter('sidecar_processor_batch_send_retries_total', 'Re-sends of batches the next stage had refused with a retryable error.', ['processor'])
      .labels(id);
    this.mPendingSpans.set(0);
    this.mPendingBytes.set(0);
    this.mHeldSpans.set(0);
  }

  async start(): Promise<void> {}

  /** What the processor holds now; for tests and the summary log. */
  get pending(): { spans: number; bytes: number; buffered: number; held: number; inflightBatches: number; refusing: boolean } {
    return {
      spans: this.pendingSpans,
      bytes: this.pendingBytes,
      buffered: this.bufferedSpans,
      held: this.heldSpans,
      inflightBatches: this.inflightBatches,
      refusing: this.refusal !== undefined,
    };
  }

  consumeLogs(records: LogRecord[]): Promise<void> {
    return this.consume(records as unknown as Span[]);
  }

  consumeMetrics(metrics: Metric[]): Promise<void> {
    return this.consume(metrics as unknown as Span[]);
  }

  /** Takes a batch of the processor's signal (spans, or log records / metrics through the methods above). */
  consume(spans: Span[]): Promise<void> {
    if (spans.length === 0) return RESOLVED;
    let n = spans.length;
    if (this.signal === 'metrics') {
      n = 0;
      for (let i = 0; i < spans.length; i++) n += this.weight(spans[i]);
    }
    if (this.stopped) {
      this.mRefusedShutdown.inc(n);
      return Promise.reject(this.stoppedError);
    }
    if (this.refusal !== undefined) {
      this.mRefusedDownstream.inc(n);
      return Promise.reject(this.refusal);
    }
    let bytes = 0;
    for (let i = 0; i < spans.length; i++) bytes += spanWireSize(spans[i]);
    // Something pending: refuse what would pass the bound. Nothing pending: take
    // any input, so one input larger than the bound can still make progress
    // (the receivers bound request sizes).
    if (this.pendingSpans > 0 && (this.pendingSpans + n > this.maxPendingSpans || this.pendingBytes + bytes > this.maxPendingBytes)) {
      this.mRefusedFull.inc(n);
      return Promise.reject(this.fullError);
    }

    this.append(spans);
    this.bufferedSpans += n;
    this.bufferedBytes += bytes;
    this.pendingSpans += n;
    this.pendingBytes += bytes;

    if (this.timeoutMs <= 0) {
      while (this.bufferedSpans > 0) this.cut('size');
    } else {
      while (this.bufferedSpans > 0 && (this.bufferedSpans >= this.sizeTrigger || this.bufferedBytes >= this.maxBytes)) {
        this.cut('size');
      }
      // One timer for the current buffer, started when it stops being empty. It
      // is not restarted after a size-triggered send: whatever is left arrived
      // after it started, so no span waits longer than `timeout`.
      if (this.bufferedSpans === 0) this.stopTimer();
      else if (this.timer === undefined) this.timer = this.timers.setTimeout(this.onTimeout, this.timeoutMs);
    }
    this.updateGauges();
    return RESOLVED;
  }

  /**
   * Sends what is buffered, keeps re-sending held batches until they are taken
   * or `timeoutMs` (default 10 s) has passed, then counts whatever is still
   * held as dropped (`shutdown`) and resolves. From the first call on, new data
   * is refused with a retryable `ERR_SHUTTING_DOWN`. Idempotent.
   */
  shutdown(timeoutMs?: number): Promise<void> {
    if (this.shutdownPromise === undefined) {
      this.stopped = true;
      this.stopTimer();
      while (this.bufferedSpans > 0) this.cut('shutdown');
      this.updateGauges();
      if (this.pendingSpans === 0) {
        this.shutdownPromise = RESOLVED;
      } else {
        this.shutdownPromise = new Promise<void>((resolve) => {
          this.drained = resolve;
        });
        const ms = Math.max(0, timeoutMs ?? DEFAULT_SHUTDOWN_TIMEOUT_MS);
        this.deadlineTimer = this.timers.setTimeout(this.onDeadline, ms);
      }
    }
    return this.shutdownPromise;
  }

  private readonly onTimeout = (): void => {
    this.timer = undefined;
    while (this.bufferedSpans > 0) this.cut('timeout');
    this.updateGauges();
  };

  private readonly onRetryTimer = (): void => {
    this.retryTimer = undefined;
    this.resendOldest();
    this.updateGauges();
  };

  /** Shutdown ran out of time: drop what is still held, stop re-sending, resolve. */
  private readonly onDeadline = (): void => {
    this.deadlineTimer = undefined;
    this.abandoned = true;
    if (this.retryTimer !== undefined) {
      this.timers.clearTimeout(this.retryTimer);
      this.retryTimer = undefined;
    }
    let dropped = 0;
    for (let i = 0; i < this.held.length; i++) {
      const b = this.held[i];
      dropped += b.count;
      this.release(b);
      this.heldSpans -= b.count;
    }
    this.held.length = 0;
    this.refusal = undefined;
    this.telemetry.drop(this.id, 'shutdown', dropped, this.signal);
    this.logger.warn(
      { processor: this.id, droppedSpans: dropped, inFlightSpans: this.pendingSpans, inFlightBatches: this.inflightBatches },
      'batch processor: shutdown timeout reached; dropped held spans (spans still in flight downstream are counted if they fail)',
    );
    this.updateGauges();
    this.finishShutdown();
  };

  private stopTimer(): void {
    if (this.timer !== undefined) {
      this.timers.clearTimeout(this.timer);
      this.timer = undefined;
    }
  }

  /** Puts an input's spans into their resources' buckets. */
  private append(spans: Span[]): void {
    let lastScope: ScopeRef | undefined = undefined;
    let canonScope: ScopeRef | undefined = undefined;
    let bucket: Bucket | undefined = undefined;
    for (let i = 0; i < spans.length; i++) {
      const s = spans[i];
      if (s.scope !== lastScope) {
        lastScope = s.scope;
        canonScope = this.canonicalScope(s.scope);
        const res = canonScope.resource;
        bucket = this.buckets.get(res);
        if (bucket === undefined) {
          bucket = new Bucket();
          this.buckets.set(res, bucket);
        }
      }
      if (canonScope !== s.scope) s.scope = canonScope!;
      bucket!.spans.push(s);
    }
  }

  /**
   * The shared ScopeRef for a scope's bytes under its resource's bytes, so
   * spans from many requests of one service group under one ResourceSpans.
   * (Spans of one ScopeSpans arrive side by side, so append() asks once per run of them.)
   */
  private canonicalScope(scope: ScopeRef): ScopeRef {
    const res = scope.resource;
    let entry = this.canon.get(res.header);
    if (entry === undefined) {
      if (this.canon.size >= MAX_CANON_RESOURCES) this.canon.clear();
      entry = { ref: res, scopes: new BytesTable() };
      this.canon.set(res.header, entry);
    }
    let cs = entry.scopes.get(scope.header);
    if (cs === undefined) {
      if (entry.scopes.size >= MAX_CANON_SCOPES) entry.scopes.clear();
      cs = res === entry.ref ? scope : new ScopeRef(entry.ref, scope.header);
      entry.scopes.set(scope.header, cs);
    }
    return cs;
  }

  /**
   * Takes one batch off the buffer (resources in arrival order) and sends it,
   * or queues it behind the held batches so it cannot overtake them.
   */
  private cut(trigger: Trigger): void {
    const spansOut: Span[] = [];
    let bytes = 0;
    let count = 0;
    let full = false;
    for (const [res, b] of this.buckets) {
      const spans = b.spans;
      while (b.head < spans.length) {
        if (count >= this.maxSpans) {
          full = true;
          break;
        }
        const s = spans[b.head]!;
        const sz = spanWireSize(s);
        if (spansOut.length > 0 && bytes + sz > this.maxBytes) {
          full = true;
          break;
        }
        spansOut.push(s);
        bytes += sz;
        count += this.weight(s);
        spans[b.head++] = undefined;
      }
      if (b.head >= spans.length) this.buckets.delete(res); // safe while iterating a Map
      else b.compact();
      if (full) break;
    }
    this.bufferedSpans -= count;
    this.bufferedBytes -= bytes;
    this.mSendSize.observe(count);
    this.mSendBytes.observe(bytes);
    if (trigger === 'size') this.mSizeTrigger.inc();
    else if (trigger === 'timeout') this.mTimeoutTrigger.inc();
    const batch: Batch = { seq: ++this.batchSeq, spans: spansOut, count, bytes, sends: 0 };
    if (this.held.length > 0 || this.resending !== undefined) {
      // Behind a refused batch: wait for it (the retry timer or the re-send in
      // flight drives the held queue).
      this.held.push(batch);
      this.heldSpans += count;
    } else {
      this.dispatch(batch);
    }
  }

  private dispatch(b: Batch): void {
    this.inflightBatches++;
    b.sends++;
    let p: Promise<void>;
    try {
      p = this.signal === 'traces' ? (this.next as TracesConsumer).consume(b.spans) : consumeAs(this.signal, this.next, b.spans);
    } catch (e) {
      p = Promise.reject(e);
    }
    p.then(
      () => this.onSent(b),
      (e: unknown) => this.onFailed(b, e),
    );
  }

  /** Re-sends the oldest held batch, unless one is already being re-sent. */
  private resendOldest(): void {
    if (this.abandoned || this.resending !== undefined || this.held.length === 0) return;
    const b = this.held.shift()!;
    this.resending = b;
    if (b.sends > 0) this.mRetries.inc();
    this.dispatch(b);
  }

  /** The next stage took a batch. */
  private onSent(b: Batch): void {
    this.inflightBatches--;
    this.release(b);
    if (this.resending === b) {
      this.resending = undefined;
      this.heldSpans -= b.count;
    }
    // The next stage takes data again: accept new data, and send the held
    // batches now rather than after the backoff.
    this.refusal = undefined;
    this.backoffMs = this.initialBackoffMs;
    if (this.held.length > 0 && this.resending === undefined && !this.abandoned) {
      if (this.retryTimer !== undefined) {
        this.timers.clearTimeout(this.retryTimer);
        this.retryTimer = undefined;
      }
      this.resendOldest();
    }
    this.updateGauges();
    this.finishShutdown();
  }

  /** The next stage refused a batch (or threw). */
  private onFailed(b: Batch, e: unknown): void {
    this.inflightBatches--;
    const n = b.count;
    this.mFailedSpans.inc(n);
    const wasResending = this.resending === b;
    if (wasResending) this.resending = undefined;

    if (isPermanent(e)) {
      this.release(b);
      if (wasResending) this.heldSpans -= n;
      this.telemetry.drop(this.id, 'export_permanent_error', n, this.signal);
      this.logPermanent(e, n);
      // Not a capacity problem: go on with the next held batch at once (a
      // direct batch failing leaves the held queue to its retry timer).
      if (wasResending) this.resendOldest();
    } else if (this.abandoned) {
      this.release(b);
      if (wasResending) this.heldSpans -= n;
      this.telemetry.drop(this.id, 'shutdown', n, this.signal);
    } else {
      // Retryable: hold it, in cut order, and refuse new data until a send succeeds.
      if (!wasResending) this.heldSpans += n;
      let i = this.held.length;
      while (i > 0 && this.held[i - 1].seq > b.seq) i--;
      this.held.splice(i, 0, b);
      this.refuseAfter(e);
      if (this.resending === undefined && this.retryTimer === undefined) {
        const hint = (e as CollectorError | undefined)?.retryAfterMs ?? 0;
        const delay = Math.max(this.backoffMs, Math.min(hint, MAX_RETRY_BACKOFF_MS));
        this.backoffMs = Math.min(MAX_RETRY_BACKOFF_MS, this.backoffMs * 2);
        this.retryTimer = this.timers.setTimeout(this.onRetryTimer, delay);
      }
    }
    // A batch refused for good leaves nothing to wait for: stop refusing.
    if (this.held.length === 0 && this.resending === undefined) this.refusal = undefined;
    this.updateGauges();
    this.finishShutdown();
  }

  private refuseAfter(e: unknown): void {
    const hint = (e as CollectorError | undefined)?.retryAfterMs;
    const retryAfter = Math.max(hint ?? 1000, Math.ceil(this.timeoutMs), 1);
    const first = this.refusal === undefined;
    this.refusal = new RetryableError(
      `${this.id}: the next stage is refusing data (${errMessage(e)}); ${this.heldSpans} spans held for re-sending`,
      retryAfter,
      'ERR_QUEUE_FULL',
      { cause: e },
    );
    const now = this.clock.now();
    if (first && now - this.lastRefusingLog >= LOG_INTERVAL_MS) {
      this.lastRefusingLog = now;
      this.logger.warn(
        { processor: this.id, err: errMessage(e), heldSpans: this.heldSpans },
        'batch processor: next stage refused a batch; holding it for re-sending and refusing new data until a send succeeds',
      );
    }
  }

  private logPermanent(e: unknown, n: number): void {
    this.permanentSinceLog += n;
    const now = this.clock.now();
    if (now - this.lastPermanentLog < LOG_INTERVAL_MS) return;
    this.lastPermanentLog = now;
    this.logger.warn(
      { processor: this.id, err: errMessage(e), droppedSpans: this.permanentSinceLog },
      'batch processor: next stage rejected a batch permanently; spans dropped (export_permanent_error)',
    );
    this.permanentSinceLog = 0;
  }

  private release(b: Batch): void {
    this.pendingSpans -= b.count;
    this.pendingBytes -= b.bytes;
  }

  private finishShutdown(): void {
    if (this.drained === undefined) return;
    if (this.pendingSpans > 0 && !this.abandoned) return;
    const d = this.drained;
    this.drained = undefined;
    if (this.deadlineTimer !== undefined) {
      this.timers.clearTimeout(this.deadlineTimer);
      this.deadlineTimer = undefined;
    }
    this.logger.debug({ processor: this.id }, 'batch processor drained');
    d();
  }

  private updateGauges(): void {
    this.mPendingSpans.set(this.pendingSpans);
    this.mPendingBytes.set(this.pendingBytes);
    this.mHeldSpans.set(this.heldSpans);
  }
}

/** The timers' own clock when they have one (test timers), else the system clock. */
function clockOf(timers: Timers): Clock {
  const t = timers as Partial<Clock>;
  if (typeof t.now === 'function') return timers as unknown as Clock;
  return { now: () => Date.now() };
}
