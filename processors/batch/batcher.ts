/**
 * The batch processor: gathers spans from many small inputs into fewer, larger
 * downstream calls, by count, by encoded bytes and by age.
 *
 * Unlike the Collector's batch processor it does not swallow downstream
 * errors: every caller's promise settles when all the batches holding its
 * spans have settled downstream, and rejects if any of them failed (see
 * `Waiter.fail` for how several outcomes combine).
 *
 * Layout: spans wait in one bucket per resource (keyed by the resource's
 * encoded bytes, not by object identity, so the spans of one service arriving
 * in a thousand requests share one bucket and one ResourceSpans in the export
 * request). Buckets are drained in the order their resource first arrived;
 * spans inside a bucket keep their arrival order. Each bucket also records
 * which caller owns which run of its spans, as run-length entries (one per
 * input and resource, never one per span).
 */
import type { Component } from '../../collector/component.js';
import type { TracesConsumer } from '../../collector/consumer.js';
import { RetryableError, isPermanent } from '../../collector/errors.js';
import { spanWireSize } from '../../collector/pdata/encode.js';
import { ScopeRef, type ResourceRef, type Span } from '../../collector/pdata/spans.js';
import type { Telemetry } from '../../collector/telemetry/metrics.js';
import type { Logger } from 'pino';
import type { TimerHandle, Timers } from './timers.js';

export interface BatchOptions {
  /** Spans at which a batch is sent (0: no size trigger). */
  sendBatchSize: number;
  /** Most spans in one batch (0: no limit). */
  sendBatchMaxSize: number;
  /** Encoded bytes at which a batch is sent, and most bytes in one (0: off). */
  sendBatchMaxBytes: number;
  /** Age of the oldest buffered span at which the buffer is sent (0: send every input at once). */
  timeoutMs: number;
  /** Most spans held (buffered + downstream unsettled) before refusing. */
  maxPendingSpans: number;
  /** Most encoded bytes held before refusing (0: no bound). */
  maxPendingBytes: number;
}

/** One caller's `consume()`: settles once none of its spans is buffered or in flight. */
class Waiter {
  /** Spans of this input not yet placed in a batch. */
  unbatched: number;
  /** Batches holding some of this input's spans that have not settled. */
  inflight: number;
  /** The batch sequence number this waiter was last counted in (dedupes per batch). */
  mark: number;
  err: unknown;
  failed: boolean;
  resolve: () => void;
  reject: (e: unknown) => void;
  constructor(n: number) {
    this.unbatched = n;
    this.inflight = 0;
    this.mark = -1;
    this.err = undefined;
    this.failed = false;
    this.resolve = noop;
    this.reject = noop;
  }

  /**
   * Records a failed batch. When an input's spans went out in several batches
   * and more than one failed, a retryable error wins over a permanent one: the
   * caller then retries, so the part that could still be delivered is not lost
   * (at-least-once; parts that did succeed may arrive twice).
   */
  fail(err: unknown): void {
    if (!this.failed) {
      this.failed = true;
      this.err = err;
    } else if (isPermanent(this.err) && !isPermanent(err)) {
      this.err = err;
    }
  }

  settle(): void {
    if (this.failed) this.reject(this.err);
    else this.resolve();
  }
}

function noop(): void {}

interface Run {
  waiter: Waiter;
  count: number;
}

/** Spans of one resource waiting to be batched, and who owns them. */
class Bucket {
  spans: Array<Span | undefined> = [];
  head = 0;
  runs: Array<Run | undefined> = [];
  runHead = 0;

  get size(): number {
    return this.spans.length - this.head;
  }

  /** Drops consumed slots once they are most of the arrays (amortised O(1)). */
  compact(): void {
    if (this.head >= 1024 && this.head * 2 >= this.spans.length) {
      this.spans = this.spans.slice(this.head);
      this.head = 0;
    }
    if (this.runHead >= 256 && this.runHead * 2 >= this.runs.length) {
      this.runs = this.runs.slice(this.runHead);
      this.runHead = 0;
    }
  }
}

interface CanonResource {
  ref: ResourceRef;
  scopes: Map<string, ScopeRef>;
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

function headerKey(h: Uint8Array): string {
  return Buffer.from(h.buffer, h.byteOffset, h.byteLength).toString('latin1');
}

export class BatchProcessor implements TracesConsumer, Component {
  /** Swaps a span's ScopeRef for a byte-identical shared one; the data is unchanged. */
  readonly mutatesData = false;

  private readonly next: TracesConsumer;
  private readonly timers: Timers;
  private readonly logger: Logger;
  private readonly sizeTrigger: number;
  private readonly maxSpans: number;
  private readonly maxBytes: number;
  private readonly timeoutMs: number;
  private readonly maxPendingSpans: number;
  private readonly maxPendingBytes: number;

  private readonly buckets = new Map<ResourceRef, Bucket>();
  private readonly canon = new Map<string, CanonResource>();
  private bufferedSpans = 0;
  private bufferedBytes = 0;
  /** Buffered plus handed downstream and not settled. */
  private pendingSpans = 0;
  private pendingBytes = 0;
  private timer: TimerHandle | undefined = undefined;
  private batchSeq = 0;
  private inflightBatches = 0;
  private drained: (() => void) | undefined = undefined;
  private stopped = false;
  private shutdownPromise: Promise<void> | undefined = undefined;

  private readonly fullError: RetryableError;
  private readonly stoppedError: RetryableError;

  // Metrics (bound children).
  private readonly mSendSize;
  private readonly mSendBytes;
  private readonly mTimeoutTrigger;
  private readonly mSizeTrigger;
  private readonly mRefusedFull;
  private readonly mRefusedShutdown;
  private readonly mPendingSpans;
  private readonly mPendingBytes;
  private readonly mFailedSpans;

  constructor(
    id: string,
    opts: BatchOptions,
    next: TracesConsumer,
    deps: { telemetry: Telemetry; timers: Timers; logger: Logger },
  ) {
    this.next = next;
    this.timers = deps.timers;
    this.logger = deps.logger;
    this.maxSpans = opts.sendBatchMaxSize > 0 ? opts.sendBatchMaxSize : Infinity;
    this.sizeTrigger = opts.sendBatchSize > 0 ? opts.sendBatchSize : this.maxSpans;
    this.maxBytes = opts.sendBatchMaxBytes > 0 ? opts.sendBatchMaxBytes : Infinity;
    this.timeoutMs = opts.timeoutMs;
    this.maxPendingSpans = opts.maxPendingSpans;
    this.maxPendingBytes = opts.maxPendingBytes > 0 ? opts.maxPendingBytes : Infinity;

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
      'otelcol_processor_refused_spans_total',
      'Spans a processor refused (the caller was told to retry), by reason.',
      ['processor', 'reason'],
    );
    this.mRefusedFull = refused.labels(id, 'batcher_full');
    this.mRefusedShutdown = refused.labels(id, 'shutting_down');
    this.mPendingSpans = t
      .gauge('sidecar_processor_batch_pending_spans', 'Spans held by the batch processor (buffered + in flight downstream).', ['processor'])
      .labels(id);
    this.mPendingBytes = t
      .gauge('sidecar_processor_batch_pending_bytes', 'Encoded span bytes held by the batch processor (buffered + in flight downstream).', ['processor'])
      .labels(id);
    this.mFailedSpans = t
      .counter(
        'sidecar_processor_batch_downstream_failed_spans_total',
        'Spans in batches the next stage rejected (the error went back to each caller).',
        ['processor'],
      )
      .labels(id);
  }

  async start(): Promise<void> {}

  /** Spans held now (buffered + in flight); for tests and the summary log. */
  get pending(): { spans: number; bytes: number; buffered: number; inflightBatches: number } {
    return { spans: this.pendingSpans, bytes: this.pendingBytes, buffered: this.bufferedSpans, inflightBatches: this.inflightBatches };
  }

  consume(spans: Span[]): Promise<void> {
    const n = spans.length;
    if (n === 0) return RESOLVED;
    if (this.stopped) {
      this.mRefusedShutdown.inc(n);
      return Promise.reject(this.stoppedError);
    }
    let bytes = 0;
    for (let i = 0; i < n; i++) bytes += spanWireSize(spans[i]);
    // Something pending: refuse what would pass the bound. Nothing pending: take
    // any input, so one input larger than the bound can still make progress
    // (the receivers bound request sizes).
    if (this.pendingSpans > 0 && (this.pendingSpans + n > this.maxPendingSpans || this.pendingBytes + bytes > this.maxPendingBytes)) {
      this.mRefusedFull.inc(n);
      return Promise.reject(this.fullError);
    }

    const waiter = new Waiter(n);
    const promise = new Promise<void>((resolve, reject) => {
      waiter.resolve = resolve;
      waiter.reject = reject;
    });
    this.append(spans, waiter);
    this.bufferedSpans += n;
    this.bufferedBytes += bytes;
    this.pendingSpans += n;
    this.pendingBytes += bytes;

    if (this.timeoutMs <= 0) {
      while (this.bufferedSpans > 0) this.sendOne('size');
    } else {
      while (this.bufferedSpans > 0 && (this.bufferedSpans >= this.sizeTrigger || this.bufferedBytes >= this.maxBytes)) {
        this.sendOne('size');
      }
      // One timer for the current buffer, started when it stops being empty. It
      // is not restarted after a size-triggered send: whatever is left arrived
      // after it started, so no span waits longer than `timeout`.
      if (this.bufferedSpans === 0) this.stopTimer();
      else if (this.timer === undefined) this.timer = this.timers.setTimeout(this.onTimeout, this.timeoutMs);
    }
    this.mPendingSpans.set(this.pendingSpans);
    this.mPendingBytes.set(this.pendingBytes);
    return promise;
  }

  /** Flushes what is buffered, waits for every batch in flight, refuses new data. Idempotent. */
  shutdown(): Promise<void> {
    if (this.shutdownPromise === undefined) {
      this.stopped = true;
      this.stopTimer();
      while (this.bufferedSpans > 0) this.sendOne('shutdown');
      this.shutdownPromise =
        this.inflightBatches === 0
          ? RESOLVED
          : new Promise<void>((resolve) => {
              this.drained = resolve;
            });
    }
    return this.shutdownPromise;
  }

  private readonly onTimeout = (): void => {
    this.timer = undefined;
    while (this.bufferedSpans > 0) this.sendOne('timeout');
    this.mPendingSpans.set(this.pendingSpans);
    this.mPendingBytes.set(this.pendingBytes);
  };

  private stopTimer(): void {
    if (this.timer !== undefined) {
      this.timers.clearTimeout(this.timer);
      this.timer = undefined;
    }
  }

  /** Puts an input's spans into their resources' buckets. */
  private append(spans: Span[], waiter: Waiter): void {
    let lastScope: ScopeRef | undefined = undefined;
    let canonScope: ScopeRef | undefined = undefined;
    let bucket: Bucket | undefined = undefined;
    let run: Run | undefined = undefined;
    for (let i = 0; i < spans.length; i++) {
      const s = spans[i];
      if (s.scope !== lastScope) {
        lastScope = s.scope;
        canonScope = this.canonicalScope(s.scope);
        const res = canonScope.resource;
        let b = this.buckets.get(res);
        if (b === undefined) {
          b = new Bucket();
          this.buckets.set(res, b);
        }
        if (b !== bucket) {
          bucket = b;
          const last = b.runs.length > b.runHead ? b.runs[b.runs.length - 1] : undefined;
          if (last !== undefined && last.waiter === waiter) run = last;
          else {
            run = { waiter, count: 0 };
            b.runs.push(run);
          }
        }
      }
      if (canonScope !== s.scope) s.scope = canonScope!;
      bucket!.spans.push(s);
      run!.count++;
    }
  }

  /**
   * The shared ScopeRef for a scope's bytes under its resource's bytes, so
   * spans from many requests of one service group under one ResourceSpans.
   */
  private canonicalScope(scope: ScopeRef): ScopeRef {
    const res = scope.resource;
    const rk = headerKey(res.header);
    let entry = this.canon.get(rk);
    if (entry === undefined) {
      if (this.canon.size >= MAX_CANON_RESOURCES) this.canon.clear();
      entry = { ref: res, scopes: new Map() };
      this.canon.set(rk, entry);
    }
    const sk = headerKey(scope.header);
    let cs = entry.scopes.get(sk);
    if (cs === undefined) {
      if (entry.scopes.size >= MAX_CANON_SCOPES) entry.scopes.clear();
      cs = res === entry.ref ? scope : new ScopeRef(entry.ref, scope.header);
      entry.scopes.set(sk, cs);
    }
    return cs;
  }

  /** Takes one batch off the buffer (resources in arrival order) and sends it. */
  private sendOne(trigger: Trigger): void {
    const seq = ++this.batchSeq;
    const batch: Span[] = [];
    const waiters: Waiter[] = [];
    let bytes = 0;
    let full = false;
    for (const [res, b] of this.buckets) {
      const spans = b.spans;
      while (b.head < spans.length) {
        if (batch.length >= this.maxSpans) {
          full = true;
          break;
        }
        const s = spans[b.head]!;
        const sz = spanWireSize(s);
        if (batch.length > 0 && bytes + sz > this.maxBytes) {
          full = true;
          break;
        }
        batch.push(s);
        bytes += sz;
        spans[b.head++] = undefined;
        const run = b.runs[b.runHead]!;
        const w = run.waiter;
        if (w.mark !== seq) {
          w.mark = seq;
          w.inflight++;
          waiters.push(w);
        }
        w.unbatched--;
        if (--run.count === 0) b.runs[b.runHead++] = undefined;
      }
      if (b.head >= spans.length) this.buckets.delete(res); // safe while iterating a Map
      else b.compact();
      if (full) break;
    }
    this.bufferedSpans -= batch.length;
    this.bufferedBytes -= bytes;
    this.mSendSize.observe(batch.length);
    this.mSendBytes.observe(bytes);
    if (trigger === 'size') this.mSizeTrigger.inc();
    else if (trigger === 'timeout') this.mTimeoutTrigger.inc();
    this.dispatch(batch, bytes, waiters);
  }

  private dispatch(batch: Span[], bytes: number, waiters: Waiter[]): void {
    this.inflightBatches++;
    let p: Promise<void>;
    try {
      p = this.next.consume(batch);
    } catch (e) {
      p = Promise.reject(e);
    }
    p.then(
      () => this.settle(batch.length, bytes, waiters, undefined, false),
      (e: unknown) => this.settle(batch.length, bytes, waiters, e, true),
    );
  }

  private settle(n: number, bytes: number, waiters: Waiter[], err: unknown, failed: boolean): void {
    this.pendingSpans -= n;
    this.pendingBytes -= bytes;
    this.mPendingSpans.set(this.pendingSpans);
    this.mPendingBytes.set(this.pendingBytes);
    if (failed) this.mFailedSpans.inc(n);
    for (let i = 0; i < waiters.length; i++) {
      const w = waiters[i];
      if (failed) w.fail(err);
      if (--w.inflight === 0 && w.unbatched === 0) w.settle();
    }
    if (--this.inflightBatches === 0 && this.drained !== undefined) {
      const d = this.drained;
      this.drained = undefined;
      this.logger.debug('batch processor drained');
      d();
    }
  }
}
