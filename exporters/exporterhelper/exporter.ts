/**
 * QueuedExporter: what every network exporter is made of. The exporter
 * supplies one `send(request, signal)` function; this class adds the sending
 * queue, concurrent consumers, per-attempt timeout, retries with backoff and
 * server-given delays, a circuit breaker, partial_success accounting,
 * shutdown draining, and the exporter metrics.
 *
 * Every span handed to `consume()` ends in exactly one of: refused back to the
 * caller (queue full / shutting down: the caller still owns it), sent
 * (otelcol_exporter_sent_spans_total), rejected by the backend through
 * partial_success or isolated as the part of a batch it refuses as invalid
 * (drop reason `backend_rejected`), or dropped with reason
 * `export_permanent_error`, `export_retries_exhausted` or `shutdown`.
 *
 * Isolation: a batch the backend refuses as invalid (InvalidDataError: HTTP
 * 400, gRPC INVALID_ARGUMENT) is split in halves, each sent as a request of
 * its own (retries, circuit breaker and timeout as usual), and a refused half
 * is split again, within `isolate_rejected.max_extra_requests` per batch.
 * When one half is accepted, the other is known to be refused and is split
 * without being sent whole. What is refused at one span, or when the budget
 * is spent, is dropped as `backend_rejected`.
 */
import type { Logger } from 'pino';
import type { Clock, Component, CreateSettings } from '../../collector/component.js';
import type { LogsConsumer, MetricsConsumer, TracesConsumer } from '../../collector/consumer.js';
import type { Span } from '../../collector/pdata/spans.js';
import type { LogRecord } from '../../collector/pdata/logs.js';
import { countFramedMetrics, countPoints, splitMetricsExportRequest, type Metric } from '../../collector/pdata/metrics.js';
import { encodeExportRequest, splitExportRequest } from '../../collector/pdata/encode.js';
import { ITEM, ITEM_TEXT, type Signal } from '../../collector/signals.js';
import { CollectorError, RetryableError } from '../../collector/errors.js';
import type { Telemetry, DropReason } from '../../collector/telemetry/metrics.js';
import { parseDuration } from '../../config/duration.js';
import type { HelperConfig } from './config.js';
import { MemoryQueue, type ExportRequest, type RequestQueue } from './queue.js';
import { DiskRequestQueue } from './disk_queue.js';
import { realTimers, type Timers } from './timers.js';
import { backoffPolicy, jitter, nextInterval, type BackoffPolicy } from './backoff.js';
import { CircuitBreaker, CIRCUIT_CLOSED } from './circuit.js';
import { DrainRate, MAX_HINT_MS } from './drain.js';

/** What a backend said about an accepted request. */
export interface SendResult {
  /** partial_success.rejected_spans */
  rejectedSpans?: number;
  /** partial_success.error_message */
  errorMessage?: string;
}

/**
 * Sends one request. Resolve = accepted (maybe partially). Reject with a
 * CollectorError: `retryable` and `retryAfterMs` decide what happens next;
 * any other error is treated as retryable. Must stop when `signal` aborts.
 */
export type SendFn = (req: ExportRequest, signal: AbortSignal) => Promise<SendResult | void>;

export interface HelperOptions {
  /** Injected waiting (tests pass FakeTimers). */
  timers?: Timers;
  /** Jitter source (tests pass a constant). */
  random?: () => number;
  /** Replaces the memory queue (the seam for a durable queue). */
  queue?: RequestQueue;
  /** Called by start() before consumers run (open connections, read TLS files). */
  onStart?: () => Promise<void>;
  /** Called at the end of shutdown() (close connections, agents). */
  onShutdown?: () => Promise<void>;
  /** Drain deadline when shutdown() is called without one. */
  defaultShutdownTimeoutMs?: number;
  /**
   * The signal this exporter's requests carry (default traces): names its
   * metrics (`otelcol_exporter_sent_log_records_total`, ...), its drop
   * counter and its disk queue file. A multi-signal exporter has one
   * QueuedExporter per signal (signals.ts).
   */
  signal?: Signal;
}

const enum State {
  Created,
  Running,
  Stopping,
  Stopped,
}

const LOG_INTERVAL_MS = 10_000;

/** The state of one refused batch being isolated: requests left, and the last part the backend accepted whole. */
interface Isolation {
  left: number;
  accepted: ExportRequest | undefined;
}

class ShutdownAbort extends Error {}

export class QueuedExporter implements Component, TracesConsumer, LogsConsumer, MetricsConsumer {
  readonly mutatesData = false;
  readonly id: string;
  readonly signal: Signal;
  private readonly log: Logger;
  private readonly telemetry: Telemetry;
  private readonly clock: Clock;
  private readonly timers: Timers;
  private readonly random: () => number;
  private readonly send: SendFn;
  private readonly opts: HelperOptions;

  private readonly timeoutMs: number;
  private readonly retryEnabled: boolean;
  private readonly policy: BackoffPolicy;
  private readonly queueEnabled: boolean;
  private readonly numConsumers: number;
  private readonly blockOnOverflow: boolean;
  private readonly blockTimeoutMs: number;
  private readonly isolateEnabled: boolean;
  private readonly isolateBudget: number;
  readonly queue: RequestQueue;
  readonly circuit: CircuitBreaker | undefined;

  private state = State.Created;
  private consumers: Promise<void>[] = [];
  /** Sends in progress when the queue is disabled (awaited at shutdown). */
  private readonly direct = new Set<Promise<boolean>>();
  private idle: Array<() => void> = [];
  private roomWaiters: Array<() => void> = [];
  /** Aborted at the shutdown deadline: stops every send, sleep and wait. */
  private readonly hardStop = new AbortController();
  private inFlight = 0;
  private avgAttemptMs = 100;
  private readonly drain: DrainRate;
  private lastRejectLog = -Infinity;
  private lastFailLog = -Infinity;
  private lastIsolateLog = -Infinity;
  private shutdownPromise: Promise<void> | undefined;
  /** Set by handOver(): interrupted requests are kept for the taker instead of being counted. */
  private handedBack: ExportRequest[] | undefined;

  // metrics (bound children)
  private readonly mSent;
  private readonly mSendFailed;
  private readonly mEnqueueFailed;
  private readonly mQueueSize;
  private readonly mQueueBytes;
  private readonly mInFlight;
  private readonly mLatencyOk;
  private readonly mLatencyFail;
  private readonly mRetries;
  private readonly mCircuit;
  private readonly mRejected;
  private readonly mIsolateRequests;

  constructor(settings: CreateSettings, cfg: HelperConfig, send: SendFn, opts: HelperOptions = {}) {
    this.id = settings.id;
    this.log = settings.logger;
    this.telemetry = settings.telemetry;
    this.clock = settings.clock;
    this.drain = new DrainRate(settings.clock);
    this.timers = opts.timers ?? realTimers;
    this.random = opts.random ?? Math.random;
    this.send = send;
    this.opts = opts;
    this.signal = opts.signal ?? 'traces';
    const item = ITEM[this.signal];
    const Item = ITEM_TEXT[this.signal][0].toUpperCase() + ITEM_TEXT[this.signal].slice(1);

    this.timeoutMs = parseDuration(cfg.timeout);
    this.retryEnabled = cfg.retry_on_failure.enabled;
    this.policy = backoffPolicy(cfg.retry_on_failure);
    const q = cfg.sending_queue;
    this.queueEnabled = q.enabled;
    this.numConsumers = q.num_consumers;
    this.blockOnOverflow = q.block_on_overflow;
    this.blockTimeoutMs = parseDuration(q.block_timeout);
    // Isolation splits by the request's frame: spans and log records are split and counted one by one; metrics
    // are split by metric (the pipeline's unit, its points stay together) and counted in data points.
    this.isolateEnabled = cfg.isolate_rejected?.enabled ?? true;
    this.isolateBudget = cfg.isolate_rejected?.max_extra_requests ?? 64;
    this.queue =
      opts.queue ?? (q.enabled && q.storage === 'disk' ? DiskRequestQueue.open(settings, q, this.signal) : new MemoryQueue(q.queue_size, q.max_bytes));

    const t = settings.telemetry;
    const L = ['exporter'];
    const id = this.id;
    this.mSent = t.counter(`otelcol_exporter_sent_${item}_total`, `${Item} successfully sent to the destination.`, L).labels(id);
    this.mSendFailed = t
      .counter(`otelcol_exporter_send_failed_${item}_total`, `${Item} the exporter failed to send (permanent error, retries exhausted, shutdown).`, L)
      .labels(id);
    this.mEnqueueFailed = t
      .counter(`otelcol_exporter_enqueue_failed_${item}_total`, `${Item} refused because the sending queue was full or closed.`, L)
      .labels(id);
    // Gauges of one exporter's state carry data_type (traces, logs, metrics), as the Collector's queue metrics do:
    // an exporter id serving several signals has a queue, requests in flight and a circuit per signal.
    const QL = ['exporter', 'data_type'];
    const ql = [id, this.signal];
    this.mQueueSize = t.gauge('otelcol_exporter_queue_size', 'Requests waiting in the sending queue.', QL).labels(...ql);
    t.gauge('otelcol_exporter_queue_capacity', 'Capacity of the sending queue in requests.', QL).labels(...ql).set(this.queue.capacity);
    this.mQueueBytes = t.gauge('sidecar_exporter_queue_size_bytes', 'Encoded bytes waiting in the sending queue.', QL).labels(...ql);
    t.gauge('sidecar_exporter_queue_capacity_bytes', 'Capacity of the sending queue in bytes.', QL).labels(...ql).set(this.queue.capacityBytes);
    this.mInFlight = t.gauge('sidecar_exporter_in_flight_requests', 'Send attempts in progress.', QL).labels(...ql);
    const latency = t
      .histogram('sidecar_exporter_send_latency_seconds', 'Duration of one send attempt.', ['exporter', 'outcome'], [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30]);
    this.mLatencyOk = latency.labels(id, 'success');
    this.mLatencyFail = latency.labels(id, 'failure');
    this.mRetries = t.counter('sidecar_exporter_retries_total', 'Send attempts after the first one for a request.', L).labels(id);
    this.mCircuit = t.gauge('sidecar_exporter_circuit_state', 'Circuit breaker: 0 closed, 1 open, 2 half-open (probing).', QL).labels(...ql);
    this.mRejected = t
      .counter(
        `sidecar_exporter_rejected_${item}_total`,
        `${Item} the backend rejected: through partial_success, or isolated in a batch it refused as invalid.`,
        L,
      )
      .labels(id);
    this.mIsolateRequests = t
      .counter('sidecar_exporter_isolation_requests_total', 'Requests sent to isolate the invalid spans of batches the backend refused (beyond each first attempt).', L)
      .labels(id);
    this.mCircuit.set(CIRCUIT_CLOSED);
    this.mQueueSize.set(0);
    this.mQueueBytes.set(0);
    this.mInFlight.set(0);

    this.circuit = cfg.circuit_breaker.enabled
      ? new CircuitBreaker(cfg.circuit_breaker.failure_threshold, this.policy, this.clock, this.timers, this.random, (s) => this.mCircuit.set(s))
      : undefined;
  }


  async start(): Promise<void> {
    if (this.state !== State.Created) return;
    if (this.opts.onStart) await this.opts.onStart();
    this.state = State.Running;
    if (this.queueEnabled) {
      for (let i = 0; i < this.numConsumers; i++) this.consumers.push(this.runConsumer());
    }
  }

  /** Requests waiting in the queue plus requests being sent. */
  get pending(): number {
    return this.queue.size + this.inFlight;
  }

  consume(spans: Span[]): Promise<void> {
    return this.accept(spans, spans.length);
  }

  /** Log records (on the exporter whose `signal` is logs): one ExportLogsServiceRequest per call. */
  consumeLogs(records: LogRecord[]): Promise<void> {
    return this.accept(records, records.length);
  }

  /** Metrics (on the exporter whose `signal` is metrics); data points are the counted items. */
  consumeMetrics(metrics: Metric[]): Promise<void> {
    return this.accept(metrics, countPoints(metrics));
  }

  /** Encodes items (the export request's frame is the same for every signal) and queues or sends them. */
  private async accept(items: Span[] | LogRecord[] | Metric[], count: number): Promise<void> {
    if (items.length === 0) return;
    if (this.state >= State.Stopping) {
      this.mEnqueueFailed.inc(count);
      throw new CollectorError('ERR_SHUTTING_DOWN', `exporter ${this.id} is shutting down`, true, 1000);
    }
    const req: ExportRequest = { bytes: encodeExportRequest(items), spans: count };
    if (!this.queueEnabled) return this.sendDirect(req);
    const offered = this.queue.offer(req);
    if (offered === true || (offered !== false && (await offered))) {
      this.enqueued();
      return;
    }
    if (this.blockOnOverflow) {
      const deadline = this.clock.now() + this.blockTimeoutMs;
      while (this.state < State.Stopping) {
        const left = deadline - this.clock.now();
        if (left <= 0) break;
        if (!(await this.waitForRoom(left))) break;
        if (this.state >= State.Stopping) break;
        if (await this.queue.offer(req)) {
          this.enqueued();
          return;
        }
      }
    }
    this.mEnqueueFailed.inc(req.spans);
    if (this.state >= State.Stopping) {
      throw new CollectorError('ERR_SHUTTING_DOWN', `exporter ${this.id} is shutting down`, true, 1000);
    }
    throw new RetryableError(
      `sending queue of exporter ${this.id} is full (${this.queue.size} requests, ${this.queue.bytes} bytes)`,
      this.retryAfterHint(req),
      'ERR_QUEUE_FULL',
    );
  }

  /**
   * Stops accepting, lets the consumers drain the queue until `timeoutMs`
   * (default 10 s or the option), then aborts what is still in flight and
   * counts every span left as dropped with reason `shutdown`.
   */
  shutdown(timeoutMs?: number): Promise<void> {
    if (this.shutdownPromise === undefined) this.shutdownPromise = this.doShutdown(timeoutMs ?? this.opts.defaultShutdownTimeoutMs ?? 10_000);
    return this.shutdownPromise;
  }

  /**
   * Stops at once without draining (for a router whose backend left or stays
   * down): new consume() calls are refused (retryable), in-flight attempts and
   * retry waits are aborted, and every request still held (interrupted ones
   * first, then the queue in order) is passed to `take`. A request is finished
   * once `take` resolves (a durable queue deletes it then). When `take`
   * rejects, a durable queue keeps that request and the rest in its file; a
   * memory queue's request is counted as dropped (reason `shutdown`).
   * Resolves when done; the exporter is then shut down.
   */
  async handOver(take: (req: ExportRequest) => Promise<void>): Promise<void> {
    if (this.shutdownPromise !== undefined) return this.shutdownPromise;
    let finish!: () => void;
    this.shutdownPromise = new Promise<void>((r) => (finish = r));
    this.handedBack = [];
    this.state = State.Stopping;
    this.hardStop.abort();
    this.wakeRoomWaiters();
    this.wakeIdle();
    await Promise.allSettled([...this.consumers, ...this.direct]);
    const held = this.handedBack;
    this.handedBack = undefined;
    let refused = false;
    const handle = async (req: ExportRequest) => {
      if (!refused) {
        try {
          await take(req);
          this.queue.done(req);
          return;
        } catch (err) {
          refused = true;
          this.log.warn({ exporter: this.id, err: (err as Error).message }, 'hand-over refused; the rest stays with this exporter');
        }
      }
      if (!this.queue.durable) this.fail(req, 'shutdown', new CollectorError('ERR_SHUTTING_DOWN', 'hand-over refused', true), false);
    };
    for (const req of held) await handle(req);
    for (let req = this.queue.poll(); req !== undefined && !(refused && this.queue.durable); req = this.queue.poll()) await handle(req);
    this.queueChanged();
    this.queue.close();
    if (this.opts.onShutdown) await this.opts.onShutdown();
    this.state = State.Stopped;
    finish();
  }

  private async doShutdown(timeoutMs: number): Promise<void> {
    const wasRunning = this.state === State.Running;
    this.state = State.Stopping;
    this.wakeRoomWaiters(); // blocked producers are refused now
    this.wakeIdle(); // idle consumers see the queue empty and stopping, and exit
    if (wasRunning && (this.consumers.length > 0 || this.direct.size > 0)) {
      const drainCancel = new AbortController();
      const drained = Promise.allSettled([...this.consumers, ...this.direct]).then(() => true);
      if (timeoutMs <= 0) this.hardStop.abort();
      const timedOut = this.timers.sleep(timeoutMs, drainCancel.signal).then(() => false);
      const ok = await Promise.race([drained, timedOut]);
      drainCancel.abort();
      if (!ok) {
        this.hardStop.abort();
        await drained;
      }
    }
    // Anything left in a memory queue (never started, or deadline passed) is lost.
    if (!this.queue.durable) {
      let left = 0;
      for (const r of this.queue.drainAll()) left += r.spans;
      this.queueChanged();
      if (left > 0) {
        this.mSendFailed.inc(left);
        this.telemetry.drop(this.id, 'shutdown', left, this.signal);
        this.log.warn({ exporter: this.id, signal: this.signal, items: left }, `exporter shut down with data still queued; ${ITEM_TEXT[this.signal]} dropped`);
      }
    }
    this.hardStop.abort();
    this.queue.close();
    this.state = State.Stopped;
    if (this.opts.onShutdown) await this.opts.onShutdown();
  }

  // ------------------------------------------------------------ internals

  private enqueued(): void {
    this.queueChanged();
    const w = this.idle.pop();
    if (w) w();
  }

  private queueChanged(): void {
    this.mQueueSize.set(this.queue.size);
    this.mQueueBytes.set(this.queue.bytes);
  }

  private waitForRoom(ms: number): Promise<boolean> {
    return new Promise<boolean>((resolve) => {
      const cancel = new AbortController();
      let done = false;
      const waiter = () => {
        if (done) return;
        done = true;
        cancel.abort();
        resolve(true);
      };
      this.roomWaiters.push(waiter);
      void this.timers.sleep(ms, cancel.signal).then((fired) => {
        if (!fired || done) return;
        done = true;
        const i = this.roomWaiters.indexOf(waiter);
        if (i >= 0) this.roomWaiters.splice(i, 1);
        resolve(false);
      });
    });
  }

  private wakeRoomWaiters(): void {
    const w = this.roomWaiters;
    this.roomWaiters = [];
    for (const f of w) f();
  }

  private wakeIdle(): void {
    const w = this.idle;
    this.idle = [];
    for (const f of w) f();
  }

  private async runConsumer(): Promise<void> {
    for (;;) {
      if (this.hardStop.signal.aborted) return;
      const req = this.queue.poll();
      if (req === undefined) {
        if (this.state >= State.Stopping) return;
        await new Promise<void>((r) => this.idle.push(r));
        continue;
      }
      this.drain.taken(this.queue.size);
      this.queueChanged();
      // One slot freed: let one blocked producer try again.
      const w = this.roomWaiters.shift();
      if (w) w();
      const finished = await this.export(req, false);
      if (finished) this.queue.done(req);
    }
  }

  private async sendDirect(req: ExportRequest): Promise<void> {
    const p = this.export(req, true);
    this.direct.add(p);
    try {
      await p;
    } finally {
      this.direct.delete(p);
    }
  }

  /**
   * Sends one request until it succeeds or fails for good. Returns true when
   * the request is finished (sent or dropped and counted); false when it was
   * interrupted by the shutdown deadline and a durable queue keeps it.
   * With `propagate` (no queue) a final failure is thrown to the caller instead
   * of being counted as a drop. `iso` is set when `req` is a part of a batch
   * being isolated (never propagated: the other parts may be delivered).
   */
  private async export(req: ExportRequest, propagate: boolean, iso?: Isolation): Promise<boolean> {
    const started = this.clock.now();
    let waitedOnCircuit = 0;
    let interval = this.policy.initialMs;
    let attempt = 0;
    const stop = this.hardStop.signal;
    for (;;) {
      if (this.circuit) {
        const t0 = this.clock.now();
        let ok: boolean | Promise<boolean> = this.circuit.acquire(stop);
        if (ok !== true) ok = await ok;
        waitedOnCircuit += this.clock.now() - t0;
        if (!ok) return this.interrupted(req, propagate);
      }
      if (attempt++ > 0) this.mRetries.inc();
      const t0 = this.clock.now();
      this.inFlight++;
      this.mInFlight.set(this.inFlight);
      let result: SendResult | void = undefined;
      let error: CollectorError | undefined;
      try {
        result = await this.attempt(req);
      } catch (e) {
        error = toCollectorError(e);
      }
      this.inFlight--;
      this.mInFlight.set(this.inFlight);
      const took = this.clock.now() - t0;
      this.avgAttemptMs = this.avgAttemptMs * 0.8 + took * 0.2;
      if (error === undefined) {
        this.mLatencyOk.observe(took / 1000);
        this.circuit?.onAnswer();
        this.accountSuccess(req, result);
        if (iso) iso.accepted = req;
        return true;
      }
      this.mLatencyFail.observe(took / 1000);
      if (stop.aborted) {
        this.circuit?.release();
        return this.interrupted(req, propagate);
      }
      if (!error.retryable) {
        this.circuit?.onAnswer();
        // Refused as invalid: find the bad spans (a lone span in a direct send is the caller's to hear about).
        if (error.code === 'ERR_BAD_DATA' && (iso || (this.isolateEnabled && (!propagate || this.splittable(req))))) {
          return this.isolate(req, error, iso ?? { left: this.isolateBudget, accepted: undefined });
        }
        return this.fail(req, 'export_permanent_error', error, propagate);
      }
      this.circuit?.onFailure(error.retryAfterMs);
      if (!this.retryEnabled) return this.fail(req, 'export_retries_exhausted', error, propagate);
      let delay = jitter(interval, this.policy.randomization, this.random);
      interval = nextInterval(interval, this.policy);
      if (error.retryAfterMs !== undefined && error.retryAfterMs > delay) delay = error.retryAfterMs;
      const elapsed = this.clock.now() - started - waitedOnCircuit;
      if (this.policy.maxElapsedMs > 0 && elapsed + delay > this.policy.maxElapsedMs) {
        return this.fail(req, 'export_retries_exhausted', error, propagate);
      }
      if (!(await this.timers.sleep(delay, stop))) return this.interrupted(req, propagate);
    }
  }

  /**
   * `req` was refused as invalid: sends its halves (see the file comment).
   * Returns as export() does; false when the shutdown deadline interrupted a
   * part and a durable queue keeps the whole batch (sent again after a
   * restart: at-least-once).
   */
  private async isolate(req: ExportRequest, err: CollectorError, iso: Isolation): Promise<boolean> {
    let halves: ReturnType<typeof splitExportRequest>;
    try {
      halves = iso.left > 0 ? this.split(req) : undefined;
    } catch {
      halves = undefined; // framing we cannot cut: drop it whole
    }
    if (halves === undefined) return this.rejected(req, err, iso.left === 0 && this.splittable(req));
    const [a, b] = halves;
    iso.left--;
    this.mIsolateRequests.inc();
    if (!(await this.export(a, false, iso))) return false;
    if (iso.accepted === a) {
      // The first half went through, so the second holds what was refused: split it without sending it whole.
      return this.isolate(b, err, iso);
    }
    if (iso.left === 0) return this.rejected(b, err, this.splittable(b));
    iso.left--;
    this.mIsolateRequests.inc();
    return this.export(b, false, iso);
  }

  /** The halves of a request (by span or log record; metrics by metric, counted in data points). */
  private split(req: ExportRequest): ReturnType<typeof splitExportRequest> {
    return this.signal === 'metrics' ? splitMetricsExportRequest(req.bytes, req.spans) : splitExportRequest(req.bytes);
  }

  /** True when a request holds more than one unit of splitting (a metric of many points is one). */
  private splittable(req: ExportRequest): boolean {
    if (this.signal !== 'metrics') return req.spans > 1;
    try {
      return countFramedMetrics(req.bytes) > 1;
    } catch {
      return false;
    }
  }

  /** Spans the backend refused as invalid, isolated as far as the budget allowed: dropped as backend_rejected. */
  private rejected(req: ExportRequest, err: CollectorError, budgetSpent: boolean): boolean {
    this.mSendFailed.inc(req.spans);
    this.mRejected.inc(req.spans);
    this.telemetry.drop(this.id, 'backend_rejected', req.spans, this.signal);
    const now = this.clock.now();
    if (now - this.lastIsolateLog >= LOG_INTERVAL_MS) {
      this.lastIsolateLog = now;
      this.log.warn(
        { exporter: this.id, spans: req.spans, err: err.message, budget_spent: budgetSpent },
        budgetSpent ? 'backend refused spans as invalid; isolation budget spent, part dropped whole' : 'backend refused spans as invalid; dropped',
      );
    }
    return true;
  }

  /** One attempt with its timeout. */
  private async attempt(req: ExportRequest): Promise<SendResult | void> {
    const ac = new AbortController();
    const cancelTimer = new AbortController();
    const stop = this.hardStop.signal;
    const onStop = () => ac.abort(new ShutdownAbort('exporter shut down'));
    stop.addEventListener('abort', onStop, { once: true });
    let rejectAbort!: (e: unknown) => void;
    const aborted = new Promise<never>((_, reject) => (rejectAbort = reject));
    ac.signal.addEventListener('abort', () => rejectAbort(ac.signal.reason), { once: true });
    void this.timers.sleep(this.timeoutMs, cancelTimer.signal).then((fired) => {
      if (fired) ac.abort(new RetryableError(`send timed out after ${this.timeoutMs} ms`, undefined, 'ERR_RETRYABLE'));
    });
    try {
      return await Promise.race([this.send(req, ac.signal), aborted]);
    } finally {
      cancelTimer.abort();
      stop.removeEventListener('abort', onStop);
      aborted.catch(() => {});
    }
  }

  private accountSuccess(req: ExportRequest, result: SendResult | void): void {
    let rejected = result?.rejectedSpans ?? 0;
    if (rejected > req.spans) rejected = req.spans;
    if (rejected < 0) rejected = 0;
    this.mSent.inc(req.spans - rejected);
    if (rejected > 0 || (result?.errorMessage ?? '') !== '') {
      if (rejected > 0) {
        this.mRejected.inc(rejected);
        this.telemetry.drop(this.id, 'backend_rejected', rejected, this.signal);
      }
      const now = this.clock.now();
      if (now - this.lastRejectLog >= LOG_INTERVAL_MS) {
        this.lastRejectLog = now;
        this.log.warn(
          { exporter: this.id, rejected_spans: rejected, message: result?.errorMessage ?? '' },
          'backend partially rejected an export request',
        );
      }
    }
  }

  private fail(req: ExportRequest, reason: DropReason, err: CollectorError, propagate: boolean): boolean {
    this.mSendFailed.inc(req.spans);
    if (propagate) throw err;
    this.telemetry.drop(this.id, reason, req.spans, this.signal);
    const now = this.clock.now();
    if (now - this.lastFailLog >= LOG_INTERVAL_MS) {
      this.lastFailLog = now;
      this.log.error({ exporter: this.id, signal: this.signal, reason, items: req.spans, err: err.message }, `export failed; ${ITEM_TEXT[this.signal]} dropped`);
    }
    return true;
  }

  private interrupted(req: ExportRequest, propagate: boolean): boolean {
    if (this.handedBack !== undefined && !propagate) {
      this.handedBack.push(req); // handOver() passes it on
      return false;
    }
    const err = new CollectorError('ERR_SHUTTING_DOWN', `exporter ${this.id} shut down before the request was sent`, true);
    if (this.queue.durable && !propagate) return false; // stays in the durable queue
    return this.fail(req, 'shutdown', err, propagate);
  }

  /**
   * A retry delay for a refused caller: how long until the queue has room for
   * `req`, from the measured drain rate (drain.ts). Before the drain was ever
   * measured, the time to send what is queued at the average attempt time
   * (at least 1 s). An open circuit breaker's remaining time is a floor.
   */
  private retryAfterHint(req: ExportRequest): number {
    const q = this.queue;
    let need = Math.max(1, q.size + 1 - q.capacity);
    const excessBytes = q.bytes + req.bytes.length - q.capacityBytes;
    if (excessBytes > 0 && q.size > 0) need = Math.max(need, Math.ceil(excessBytes / (q.bytes / q.size)));
    let ms = this.drain.delayFor(need) ?? Math.min(MAX_HINT_MS, Math.max(1_000, Math.ceil(((q.size + this.inFlight) * this.avgAttemptMs) / this.numConsumers)));
    if (this.circuit) ms = Math.min(MAX_HINT_MS, Math.max(ms, this.circuit.remainingMs()));
    return ms;
  }
}

function toCollectorError(e: unknown): CollectorError {
  if (e instanceof CollectorError) return e;
  if (e instanceof ShutdownAbort) return new CollectorError('ERR_SHUTTING_DOWN', e.message, true);
  const msg = e instanceof Error ? e.message : String(e);
  return new RetryableError(msg, undefined, 'ERR_RETRYABLE', { cause: e });
}
