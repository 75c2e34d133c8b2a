/**
 * The tail_sampling processor: buffers spans by trace id, decides each trace
 * once (after decision_wait, sooner after its root span when configured, at
 * once when it grows past maximum_trace_size_bytes, early when the buffer is
 * full), forwards kept traces and counts everything else.
 *
 * This file only orchestrates; each job is a part with a small interface:
 * the buffer (store.ts, TraceStore), when traces are due (schedule.ts),
 * the disk spill (disk_spill.ts), deciding (decide.ts), stamping kept spans
 * (stamper.ts), the decision cache for late spans (decision_cache.ts),
 * handing spans on with retries (forward.ts) and the metrics (metrics.ts);
 * with `shared_decisions`, the decisions shared with peer sidecars
 * (peer_decisions.ts over a decision_store.ts store). Log records with a
 * trace id are held with their trace and follow its decision (logs.ts:
 * LogHold); the same instance serves a traces and a logs pipeline
 * (`attachLogs`).
 */
import type { Component, CreateSettings } from '../../collector/component.js';
import type { LogsConsumer, TracesConsumer } from '../../collector/consumer.js';
import type { LogRecord } from '../../collector/pdata/logs.js';
import { LogHold, stampLog } from './logs.js';
import { RetryableError } from '../../collector/errors.js';
import type { Span } from '../../collector/pdata/spans.js';
import { parseDuration } from '../../config/duration.js';
import { TAIL_SAMPLING_LIVE_SETTINGS, type TailSamplingConfig } from './config.js';
import { DROPPED, SAMPLED } from './policies.js';
import { MemoryTraceStore, PendingTrace, type TraceStore } from './store.js';
import { SpanPool } from './span_pool.js';
import { DecisionSchedule, type DueBucket } from './schedule.js';
import { DiskSpill } from './disk_spill.js';
import { PolicyDecider, type CompiledPolicy, type DecisionRecord } from './decide.js';
import { SpanStamper } from './stamper.js';
import { DecisionCache } from './decision_cache.js';
import { Forwarder, FORWARD_RETRIES } from './forward.js';
import { TailSamplingMetrics, TickWarnings, type DecisionReason } from './metrics.js';
import { earlyKeepCodes, PeerDecisions } from './peer_decisions.js';
import type { DecisionStore } from './decision_store.js';

export { FORWARD_RETRIES } from './forward.js';
export { ATTR_POLICY, ATTR_COMPOSITE_POLICY, ATTR_SAMPLE_RATE, ATTR_DRY_RUN_DECISION, ATTR_DRY_RUN_POLICY } from './stamper.js';
export type { DecisionRecord } from './decide.js';
export type { DecisionReason } from './metrics.js';

/** A tick decides for about this long before it lets the event loop run (receiving) and continues. */
const DECIDE_SLICE_MS = 5;

export interface TailSamplingDeps {
  /** Replaces the in-memory trace buffer (the disk-spill seam). */
  store?: TraceStore;
  /** The shared decision store (tests); without it, start() connects the one `shared_decisions.redis` names. */
  decisionStore?: DecisionStore;
}

export class TailSamplingProcessor implements Component, TracesConsumer, LogsConsumer {
  readonly mutatesData = true;

  private readonly id: string;
  private readonly settings: CreateSettings;
  private cfg: TailSamplingConfig;
  private readonly store: TraceStore;
  private readonly waitMs: number;
  private readonly rootWaitMs: number;
  private readonly tickMs: number;
  private readonly numTraces: number;
  private readonly maxBytes: number;
  private readonly maxTraceBytes: number;
  private readonly dropPendingOnShutdown: boolean;
  private readonly refuseWhenFull: boolean;
  /** refuse mode: memory (and disk) are full; consume refuses until a tick or decision makes room. */
  private full = false;
  /** Above this many memory bytes a spill batch is written (maxBytes without disk). */
  private readonly relieveAt: number;

  private readonly metrics: TailSamplingMetrics;
  private readonly warnings = new TickWarnings();
  private readonly schedule: DecisionSchedule;
  private readonly disk: DiskSpill | undefined;
  private readonly decider: PolicyDecider;
  private readonly stamper: SpanStamper;
  private readonly cache: DecisionCache;
  private readonly forwarder: Forwarder;
  /** Decisions shared with peer sidecars (shared_decisions); undefined when not configured. */
  private readonly shared: PeerDecisions | undefined;
  /** Status code -> name of a status_code policy that keeps any trace with a span of that status (shared: published at once). */
  private earlyCodes: Array<string | undefined> | undefined;
  private readonly sharedTimeoutMs: number;
  /** Log records of undecided traces, and where kept ones go (set by attachLogs). */
  private readonly logs = new LogHold();
  private logsForwarder: Forwarder | undefined;
  private logsOut: LogRecord[] = [];
  /** Log records dropped since the last flush, by reason. */
  private readonly logDrops = { sampled_out: 0, policy_drop: 0, late_not_sampled: 0 };

  private timer: NodeJS.Timeout | undefined;
  private stopped = false;
  private shutdownPromise: Promise<void> | undefined;
  /** The deciding part of the running tick (it yields between slices; shutdown waits for it). */
  private tickDecisions: Promise<void> | undefined;

  constructor(settings: CreateSettings, cfg: TailSamplingConfig, next: TracesConsumer, deps: TailSamplingDeps = {}) {
    this.settings = settings;
    this.id = settings.id;
    this.cfg = cfg;
    const dc = cfg.buffer.disk;
    const spills = dc.enabled && dc.directory !== '' && deps.store === undefined;
    // With disk spill the buffer files copies in reused memory (see MemoryTraceStore for why, and what it costs).
    this.store = deps.store ?? new MemoryTraceStore({ copySpans: spills });
    this.waitMs = parseDuration(cfg.decision_wait);
    this.rootWaitMs = parseDuration(cfg.decision_wait_after_root_received);
    this.tickMs = Math.max(1, parseDuration(cfg.tick_interval));
    this.numTraces = cfg.num_traces;
    this.maxBytes = cfg.buffer.max_bytes;
    this.maxTraceBytes = cfg.maximum_trace_size_bytes;
    this.dropPendingOnShutdown = cfg.drop_pending_traces_on_shutdown;
    this.refuseWhenFull = cfg.buffer.when_full === 'refuse';

    this.decider = new PolicyDecider(settings.telemetry, this.id, cfg);
    this.metrics = new TailSamplingMetrics(settings.telemetry, this.id);
    this.schedule = new DecisionSchedule(this.tickMs);
    this.stamper = new SpanStamper(cfg.dry_run);
    this.cache = new DecisionCache(cfg.decision_cache.sampled_cache_size, cfg.decision_cache.non_sampled_cache_size);
    this.forwarder = new Forwarder(settings, next, this.tickMs, this.metrics, this.warnings);
    const sd = cfg.shared_decisions;
    if (sd !== undefined) {
      const waitMs = sd.wait !== undefined ? parseDuration(sd.wait) : this.waitMs;
      const opts = { waitMs, ttlSec: Math.ceil(parseDuration(sd.ttl) / 1000), timeoutMs: parseDuration(sd.redis.timeout), tickMs: this.tickMs };
      this.shared = new PeerDecisions(settings, opts, deps.decisionStore);
      this.earlyCodes = earlyKeepCodes(cfg);
      this.sharedTimeoutMs = opts.timeoutMs;
    } else {
      this.shared = undefined;
      this.earlyCodes = undefined;
      this.sharedTimeoutMs = 0;
    }
    if (spills) {
      const opts = {
        directory: dc.directory,
        maxBytes: dc.max_bytes,
        sync: dc.sync,
        memoryMaxBytes: this.maxBytes,
        numTraces: this.numTraces,
        restoreGraceMs: parseDuration(dc.restore_grace),
      };
      this.disk = new DiskSpill(settings, opts, this.store, this.schedule, this.warnings, this.logs);
      this.relieveAt = this.disk.relieveAt;
    } else {
      this.disk = undefined;
      this.relieveAt = this.maxBytes;
    }
  }

  /**
   * Makes this instance carry the log records of a logs pipeline too: records
   * with a trace id wait for their trace's decision, kept ones go to `next`.
   * Returns the logs pipeline's entry (this instance).
   */
  attachLogs(next: LogsConsumer): LogsConsumer {
    this.logsForwarder = new Forwarder(this.settings, next, this.tickMs, this.metrics, this.warnings, 'logs');
    return this;
  }

  /** Memory held: the span buffer and the log records waiting for their traces. */
  private memBytes(): number {
    return this.store.bytes + this.logs.bytes;
  }

  /** The compiled policies, in evaluation order (tests). */
  private get policies(): CompiledPolicy[] {
    return this.decider.policies;
  }

  /**
   * Applies a reloaded config without rebuilding the processor, so buffered
   * traces stay and are decided by the new policies. Only the settings in
   * TAIL_SAMPLING_LIVE_SETTINGS can change this way; any other change returns
   * false and the service rebuilds the pipeline (the old buffer drains).
   */
  reconfigure(config: unknown): boolean {
    const next = config as TailSamplingConfig;
    if (sansLive(next) !== sansLive(this.cfg)) return false;
    this.metrics.flushDrops();
    this.decider.setPolicies(next);
    this.stamper.dryRun = next.dry_run;
    if (this.shared !== undefined) this.earlyCodes = earlyKeepCodes(next);
    this.cfg = next;
    this.settings.logger.info({ policies: this.policies.length }, 'tail_sampling policies replaced live; buffered traces kept');
    return true;
  }

  async start(): Promise<void> {
    if (this.timer !== undefined || this.stopped) return;
    if (this.disk?.needsOpen) {
      this.disk.open(true);
      this.updateGauges();
    }
    if (this.shared !== undefined && !this.shared.hasStore) {
      // Only a config with shared_decisions loads the Redis client (its own chunk in the bundle).
      const { RedisDecisionStore } = await import('./redis_store.js');
      this.shared.attach(RedisDecisionStore.create(this.cfg.shared_decisions!.redis));
    }
    this.timer = setInterval(() => {
      this.tick().catch((err: unknown) => this.settings.logger.error({ err }, 'tail_sampling tick failed'));
    }, this.tickMs);
    this.timer.unref();
    this.settings.logger.info({ policies: this.policies.length }, 'tail_sampling started');
  }

  /** Traces currently buffered (tests, benchmarks). */
  get pendingTraces(): number {
    return this.store.traceCount;
  }

  async consume(spans: Span[]): Promise<void> {
    if (this.stopped) throw new RetryableError(`${this.id}: shutting down`, undefined, 'ERR_SHUTTING_DOWN');
    if (this.forwarder.retryBytes > this.maxBytes / 2) {
      // Kept traces are piling up because the next stage refuses them: push back instead of buffering more.
      throw new RetryableError(`${this.id}: the next stage is refusing data; retry later`, this.tickMs);
    }
    if (this.full && this.refuseWhenFull) {
      if (this.store.bytes > this.maxBytes || this.store.traceCount > this.numTraces) {
        this.metrics.refused.inc(spans.length);
        throw new RetryableError(`${this.id}: trace buffer is full (memory${this.disk !== undefined ? ' and disk' : ''}); retry later`, this.tickMs, 'ERR_QUEUE_FULL');
      }
      this.full = false;
    }
    const now = this.settings.clock.now();
    const store = this.store;
    const out: Span[] = [];
    let oversize: PendingTrace[] | undefined;
    let lateNotSampled = 0;
    let lateSampled = 0;
    let newTraces = 0;
    for (let i = 0; i < spans.length; i++) {
      const span = spans[i];
      const id = span.traceId;
      let t = store.get(id);
      if (t === undefined) {
        const rec = this.cache.get(id);
        // Shared decisions: a late span of a trace this sidecar did not keep starts over, so a peer's later keep can still reach it.
        if (rec !== undefined && (this.shared === undefined || rec.decision === SAMPLED || rec.decision === DROPPED)) {
          this.metrics.lateAge.observe((now - rec.decidedAt) / 1000);
          if (rec.decision === SAMPLED || this.stamper.dryRun) {
            this.stamper.stamp(span, rec);
            out.push(span);
            lateSampled++;
          } else lateNotSampled++;
          continue;
        }
        t = store.create(id, now);
        store.append(t, span);
        this.schedule.schedule(t, now + this.waitMs, false);
        // A trace with spans on disk continues there: not a new trace; its root may be on disk.
        const rootOnDisk = this.disk?.continues(id);
        if (rootOnDisk !== undefined) t.hasRoot = rootOnDisk;
        else newTraces++;
      } else store.append(t, span);
      if (this.earlyCodes !== undefined) {
        const policy = this.earlyCodes[span.statusCode];
        if (policy !== undefined) this.shared!.earlyKeep(id, policy);
      }
      if (!span.hasParent && this.rootWaitMs > 0 && !t.hasRoot) {
        t.hasRoot = true;
        const due = now + this.rootWaitMs;
        if (this.schedule.isEarlier(t, due)) this.schedule.schedule(t, due, true);
      }
      if (this.maxTraceBytes > 0 && t.encodedBytes > this.maxTraceBytes) (oversize ??= []).push(t);
    }
    if (oversize !== undefined) {
      for (const t of oversize) {
        if (t.done) continue;
        this.metrics.early.too_large.inc();
        this.decide(t, 'too_large', now, out);
      }
    }
    if (store.traceCount > this.numTraces || this.memBytes() > this.relieveAt) this.relieve(now, out);
    if (this.metrics.hasDrops) this.metrics.flushDrops();
    if (newTraces > 0) this.metrics.newTraces.inc(newTraces);
    this.metrics.late(lateSampled, lateNotSampled);
    this.updateGauges();
    const logs = this.takeLogsOut();
    if (out.length > 0) await Promise.all([this.forwarder.forward(out), logs]);
    else await logs;
  }

  /**
   * Log records (logs pipeline): a record without a trace id passes through;
   * one whose trace was decided follows the cached decision (late); any other
   * waits with its trace, which it starts when none is buffered yet (decided
   * at decision_wait like any trace, also when no span of it ever comes).
   */
  async consumeLogs(records: LogRecord[]): Promise<void> {
    if (this.stopped) throw new RetryableError(`${this.id}: shutting down`, undefined, 'ERR_SHUTTING_DOWN');
    const fwd = this.logsForwarder;
    if (fwd === undefined) throw new RetryableError(`${this.id}: no logs pipeline attached`, this.tickMs);
    if (this.forwarder.retryBytes + fwd.retryBytes > this.maxBytes / 2) {
      throw new RetryableError(`${this.id}: the next stage is refusing data; retry later`, this.tickMs);
    }
    if (this.full && this.refuseWhenFull && (this.memBytes() > this.maxBytes || this.store.traceCount > this.numTraces)) {
      throw new RetryableError(`${this.id}: trace buffer is full; retry later`, this.tickMs, 'ERR_QUEUE_FULL');
    }
    const now = this.settings.clock.now();
    const out: Span[] = [];
    let newTraces = 0;
    for (let i = 0; i < records.length; i++) {
      const rec = records[i];
      const id = rec.traceId;
      if (id === '') {
        this.logsOut.push(rec);
        continue;
      }
      if (this.store.get(id) !== undefined || this.disk?.continues(id) !== undefined) {
        this.logs.hold(rec);
        continue;
      }
      const cached = this.cache.get(id);
      // As for late spans: with shared decisions a record of a trace this sidecar did not keep starts over (a peer may keep it).
      if (cached !== undefined && (this.shared === undefined || cached.decision === SAMPLED || cached.decision === DROPPED)) {
        if (cached.decision === SAMPLED || this.stamper.dryRun) {
          stampLog(rec, cached, this.stamper.dryRun);
          this.logsOut.push(rec);
        } else this.logDrops.late_not_sampled++;
        continue;
      }
      const t = this.store.create(id, now);
      this.schedule.schedule(t, now + this.waitMs, false);
      newTraces++;
      this.logs.hold(rec);
    }
    if (newTraces > 0) this.metrics.newTraces.inc(newTraces);
    if (this.store.traceCount > this.numTraces || this.memBytes() > this.relieveAt) this.relieve(now, out);
    this.flushLogDrops();
    this.updateGauges();
    const logs = this.takeLogsOut();
    if (out.length > 0) await Promise.all([this.forwarder.forward(out), logs]);
    else await logs;
  }

  /** Hands the kept and passing log records gathered so far to the logs pipeline. */
  private takeLogsOut(): Promise<void> {
    if (this.logsOut.length === 0 || this.logsForwarder === undefined) return Promise.resolve();
    return this.logsForwarder.forward(this.logsOut.splice(0) as never);
  }

  private flushLogDrops(): void {
    const d = this.logDrops;
    const t = this.settings.telemetry;
    if (d.sampled_out > 0) t.drop(this.id, 'sampled_out', d.sampled_out, 'logs');
    if (d.policy_drop > 0) t.drop(this.id, 'policy_drop', d.policy_drop, 'logs');
    if (d.late_not_sampled > 0) t.drop(this.id, 'late_not_sampled', d.late_not_sampled, 'logs');
    d.sampled_out = d.policy_drop = d.late_not_sampled = 0;
  }

  /**
   * Decides every trace whose bucket is due, retries refused batches that
   * are due, and flushes metrics. The ticker calls it; tests call it with a
   * fake clock. Resolves when the kept spans it forwarded are settled.
   */
  async tick(): Promise<void> {
    // The previous tick is still deciding (it yields between slices): this one has nothing to add.
    if (this.tickDecisions !== undefined) return;
    const started = performance.now();
    const now = this.settings.clock.now();
    const out: Span[] = [];
    this.warnings.reset();
    const work: Array<Promise<void>> = [];
    const decisions = this.decideTick(now, out, work);
    this.tickDecisions = decisions;
    try {
      await decisions;
    } finally {
      this.tickDecisions = undefined;
    }
    if (this.full && this.store.bytes <= this.maxBytes && this.store.traceCount <= this.numTraces) this.full = false;
    if (out.length > 0) work.push(this.forwarder.forward(out));
    work.push(this.takeLogsOut());
    if (this.forwarder.hasRetries) work.push(this.forwarder.retryDue(now));
    // Store traffic does not hold the tick up: answers are applied when they arrive (the next tick decides those traces).
    if (this.shared !== undefined) void this.shared.flush(now);
    if (this.logsForwarder?.hasRetries) work.push(this.logsForwarder.retryDue(now));
    this.flushMetrics();
    this.updateGauges();
    this.metrics.tickLatency.observe((performance.now() - started) / 1000);
    await Promise.all(work);
  }

  /** The deciding part of a tick: due buckets, then (with disk) due spilled traces and spilling. */
  private async decideTick(now: number, out: Span[], work: Array<Promise<void>>): Promise<void> {
    if (this.shared !== undefined) this.decideAnswered(now, out);
    const due = this.schedule.takeDue(now);
    if (due.length > 0) await this.decideSliced(due, now, out, work);
    if (this.disk !== undefined) {
      await this.disk.tick(
        now,
        out,
        (spans) => work.push(this.forwarder.forward(spans)),
        (t, reason, at, into) => this.decide(t, reason, at, into),
      );
      if (this.store.traceCount > this.numTraces || this.memBytes() > this.relieveAt) this.relieve(now, out);
    }
  }

  /**
   * Decides the traces of the due buckets in slices of about DECIDE_SLICE_MS:
   * after each slice the kept spans go on and the event loop gets a turn, so
   * receiving does not stall behind a tick that decides many traces.
   */
  private async decideSliced(due: DueBucket[], now: number, out: Span[], work: Array<Promise<void>>): Promise<void> {
    let sliceStart = performance.now();
    let n = 0;
    for (const { b, list } of due) {
      for (let i = 0; i < list.length; i++) {
        const t = list[i];
        if (t.done || t.bucket !== b) continue;
        this.decide(t, t.dueByRoot ? 'root_received' : 'decision_wait', now, out);
        if (++n % 32 === 0 && performance.now() - sliceStart > DECIDE_SLICE_MS) {
          if (out.length > 0) work.push(this.forwarder.forward(out.splice(0)));
          await new Promise<void>((r) => setImmediate(r));
          sliceStart = performance.now();
        }
      }
    }
  }

  /** Held traces whose peer answer came in (a keep, none at the deadline, a store failure): decided now. */
  private decideAnswered(now: number, out: Span[]): void {
    for (const id of this.shared!.takeReady()) {
      const t = this.store.get(id) ?? (this.disk?.continues(id) !== undefined ? new PendingTrace(id, now) : undefined);
      if (t !== undefined && !t.done) this.decide(t, 'decision_wait', now, out);
    }
  }

  /**
   * Memory is over the high-water mark (or num_traces): spill (with disk),
   * and when that is not enough decide the oldest early, or (when_full:
   * refuse) refuse new data until there is room.
   */
  private relieve(now: number, out: Span[]): void {
    const store = this.store;
    this.disk?.relieve(now);
    if (store.traceCount <= this.numTraces && this.memBytes() <= this.maxBytes) return;
    if (this.refuseWhenFull) {
      this.full = true;
      return;
    }
    while (store.traceCount > this.numTraces || this.memBytes() > this.maxBytes) {
      const oldest = store.oldest();
      if (oldest === undefined) break;
      this.metrics.early.buffer_full.inc();
      this.decide(oldest, 'buffer_full', now, out);
    }
  }

  /** Decides one buffered trace: takes it out of the store (and the spill), forwards (into `out`) or counts its spans. */
  private decide(t: PendingTrace, reason: DecisionReason, now: number, out: Span[]): void {
    let taken = this.store.take(t.id) ?? t;
    taken.done = true;
    t.done = true;
    if (this.disk !== undefined) taken = this.disk.whole(taken);
    let rec = (this.shared !== undefined ? this.shared.heldLocal(t.id, taken.spanCount) : undefined) ?? this.decider.decide(taken, now);
    if (this.shared !== undefined) {
      const r = this.shared.resolve(t.id, taken.spanCount, taken.bytes, rec, reason, now);
      if (typeof r === 'number') {
        // Held for a peer's keep: back into the buffer (its budgets and spill apply) until r or an answer.
        taken.done = false;
        this.store.put(taken);
        this.schedule.schedule(taken, r, false);
        return;
      }
      rec = r;
    }
    this.metrics.latencyByReason[reason].observe((now - taken.firstMs) / 1000);
    const d = rec.decision;
    this.metrics.decided(d === SAMPLED ? 'sampled' : d === DROPPED ? 'dropped' : 'not_sampled', taken.spans.length);
    this.cache.remember(t.id, rec);
    this.release(taken, rec, out);
    const logs = this.logs.take(t.id);
    if (logs !== undefined) this.releaseLogs(logs, rec);
  }

  /** A decided trace's log records: kept ones stamped and handed on, the others counted as its spans are. */
  private releaseLogs(logs: LogRecord[], rec: DecisionRecord): void {
    if (rec.decision === SAMPLED || this.stamper.dryRun) {
      for (const r of logs) {
        stampLog(r, rec, this.stamper.dryRun);
        this.logsOut.push(r);
      }
    } else if (rec.decision === DROPPED) this.logDrops.policy_drop += logs.length;
    else this.logDrops.sampled_out += logs.length;
  }

  /** Hands a decided trace's spans on (kept: stamped, into `out`) or counts them as dropped; the store may reuse their memory. */
  private release(taken: PendingTrace, rec: DecisionRecord, out: Span[]): void {
    const spans = taken.spans;
    const n = spans.length;
    const store = this.store;
    if (rec.decision === SAMPLED || this.stamper.dryRun) {
      for (let i = 0; i < n; i++) {
        const s = spans[i];
        const held = s.buf;
        this.stamper.stamp(s, rec);
        // Stamping writes the span anew; should it ever leave the bytes where they were, they move out of the store's memory.
        if (s.buf === held) SpanPool.detach(s);
        store.release(held);
        out.push(s);
      }
    } else {
      for (let i = 0; i < n; i++) store.release(spans[i].buf, spans[i]);
      if (rec.decision === DROPPED) this.metrics.droppedPolicy += n;
      else this.metrics.droppedSampledOut += n;
    }
    taken.spans = [];
  }

  async shutdown(timeoutMs?: number): Promise<void> {
    if (this.shutdownPromise !== undefined) return this.shutdownPromise;
    this.stopped = true;
    this.forwarder.stopped = true;
    if (this.timer !== undefined) clearInterval(this.timer);
    this.timer = undefined;
    this.shutdownPromise = this.drainForShutdown(timeoutMs ?? 10_000);
    return this.shutdownPromise;
  }

  private async drainForShutdown(timeoutMs: number): Promise<void> {
    if (this.tickDecisions !== undefined) await this.tickDecisions.catch(() => undefined);
    const now = this.settings.clock.now();
    const out: Span[] = [];
    if (this.disk !== undefined) await this.disk.spillAll(now, timeoutMs);
    const pending = [...this.store.values()];
    if (this.dropPendingOnShutdown) {
      let n = 0;
      for (const t of pending) {
        this.store.take(t.id);
        t.done = true;
        n += t.spanCount;
      }
      this.settings.telemetry.drop(this.id, 'shutdown', n);
    } else {
      for (const t of pending) this.decide(t, 'shutdown', now, out);
    }
    // Records still held belong to traces dropped above, or to traces on disk whose records could not be
    // written (spillAll writes them with their trace when it can): counted.
    let leftLogs = 0;
    for (const id of this.logs.traceIds()) leftLogs += this.logs.take(id)?.length ?? 0;
    this.settings.telemetry.drop(this.id, 'shutdown', leftLogs, 'logs');
    this.schedule.clear();
    const work: Array<Promise<void>> = [];
    if (out.length > 0) work.push(this.forwarder.forward(out, FORWARD_RETRIES));
    if (this.logsOut.length > 0 && this.logsForwarder !== undefined) work.push(this.logsForwarder.forward(this.logsOut.splice(0) as never, FORWARD_RETRIES));
    work.push(this.forwarder.drain());
    if (this.logsForwarder !== undefined) work.push(this.logsForwarder.drain());
    await Promise.all(work);
    if (this.shared !== undefined) {
      // Keeps decided at shutdown still reach peers (bounded by the store timeout), then the connection closes.
      const flushed = this.shared.flush(this.settings.clock.now());
      await this.shared.settle(this.sharedTimeoutMs);
      void flushed;
      await this.shared.close();
    }
    this.flushMetrics();
    this.updateGauges();
    this.disk?.close();
  }

  private flushMetrics(): void {
    this.metrics.flushDrops();
    this.flushLogDrops();
    this.decider.flush();
  }

  private updateGauges(): void {
    this.metrics.setMemory(
      this.store.traceCount,
      this.store.spanCount,
      this.memBytes() + this.forwarder.retryBytes + (this.logsForwarder?.retryBytes ?? 0),
    );
    this.disk?.updateGauges();
    this.shared?.updateGauges();
  }
}

function sansLive(cfg: TailSamplingConfig): string {
  const rest: Record<string, unknown> = { ...cfg };
  for (const k of TAIL_SAMPLING_LIVE_SETTINGS) delete rest[k];
  return JSON.stringify(rest);
}
