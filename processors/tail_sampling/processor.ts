/**
 * The tail_sampling processor: buffers spans by trace id, decides each trace
 * once (after decision_wait, sooner after its root span when configured, at
 * once when it grows past maximum_trace_size_bytes, early when the buffer is
 * full), forwards kept traces and counts everything else.
 *
 * One ticker walks time-ordered buckets (bucket = ceil(due / tick)); a trace
 * sits in the bucket of its due time, and moving it earlier (root span) just
 * appends it to the earlier bucket: the stale entry is skipped because
 * `trace.bucket` no longer names that bucket. No timer per trace.
 */
import { BoundedLru } from './lru.js';
import type { Component, CreateSettings } from '../../collector/component.js';
import type { TracesConsumer } from '../../collector/consumer.js';
import { CollectorError, RetryableError } from '../../collector/errors.js';
import type { Span } from '../../collector/pdata/spans.js';
import { encodeKeyValue, setSpanAttributes, setSpanTraceState, spanTraceState, type AttrValue } from '../../collector/pdata/attributes.js';
import { WireWriter } from '../../collector/pdata/wire.js';
import { Slab } from '../../collector/pdata/slab.js';
import { encodeTraceStateField, foundTraceState, scanForStamp, writeStamped } from './stamp.js';
import { AttrKey, findSpanAttr } from './attrs.js';
import type { Counter, Histogram, Gauge, DropReason } from '../../collector/telemetry/metrics.js';
import { parseDuration } from '../../config/duration.js';
import { TAIL_SAMPLING_LIVE_SETTINGS, type TailSamplingConfig } from './config.js';
import {
  compilePolicy,
  DECISION_NAMES,
  DROPPED,
  INVERT_NOT_SAMPLED,
  INVERT_SAMPLED,
  NOT_SAMPLED,
  SAMPLED,
  type Decision,
  type Evaluator,
} from './policies.js';
import { MemoryTraceStore, PendingTrace, SPAN_OVERHEAD_BYTES, type TraceStore } from './store.js';
import { SpillIndex } from './spill_index.js';
import { SpanPool } from './span_pool.js';
import { TraceSpillStore, type SpillTrace } from '../../storage/spill.js';
import { DiskFullError, StorageError } from '../../storage/db.js';
import { claimFile, fileNameFor, releaseFile } from '../../storage/registry.js';
import { adjustedCount, incomingThreshold, MAX_TH, thresholdForProbability, withThreshold } from './tracestate.js';

/**
 * Encoded bytes written to the spill file per transaction (each one blocks the
 * event loop). Adapted between the bounds so one transaction takes about
 * STORAGE_CALL_TARGET_MS (2-8 ms): a large file with random trace ids costs
 * more per trace. Small calls keep a preemption or a GC pause inside one call
 * from adding up to the 20 ms goal (1 MiB and 8 ms: calls of 4-16 ms, maxima
 * 13-21 ms over 8 runs of the spill bench; 512 KiB and 4 ms: 10-19 ms in 14 of
 * 15 runs, see BENCHMARKS.md, issue 6).
 */
const SPILL_BATCH_MIN = 32 * 1024;
const SPILL_BATCH_MAX = 512 * 1024;
const STORAGE_CALL_TARGET_MS = 4;
/** Spilling starts above this share of buffer.max_bytes, one batch per call, so memory rarely reaches the budget. */
const SPILL_HIGH_WATER = 0.9;
/** Spilled traces read back per slice of a tick before yielding to the event loop (adapted like spill batches). */
const READ_BACK_MIN = 16;
const READ_BACK_MAX = 256;
/** After a disk error (no space, I/O), spilling is paused this long before it is tried again. */
const SPILL_RETRY_MS = 1000;

type SpillErrorKind = 'max_bytes' | 'enospc' | 'io' | 'read';

/** Halves a batch size when a storage call took over twice the target, doubles it under half. */
function adapt(size: number, ms: number, min: number, max: number): number {
  if (ms > 2 * STORAGE_CALL_TARGET_MS) return Math.max(min, size >> 1);
  if (ms < STORAGE_CALL_TARGET_MS / 2) return Math.min(max, size * 2);
  return size;
}

/** Adds a span to a trace being rebuilt from spilled and in-memory parts (mirrors MemoryTraceStore.add). */
function addSpanTo(t: PendingTrace, span: Span): void {
  span.traceId = t.id;
  t.spans.push(span);
  t.spanCount++;
  t.encodedBytes += span.len;
  t.bytes += span.len + SPAN_OVERHEAD_BYTES;
  if (span.startNs < t.minStartNs) t.minStartNs = span.startNs;
  if (span.endNs > t.maxEndNs) t.maxEndNs = span.endNs;
  if (!span.hasParent) t.hasRoot = true;
}

/** A tick decides for about this long before it lets the event loop run (receiving) and continues. */
const DECIDE_SLICE_MS = 5;

/** Spans handed to the next stage per consume call at most. */
const FORWARD_CHUNK = 8192;
/** Retries (one per tick) of a batch the next stage refused with a retryable error. */
export const FORWARD_RETRIES = 5;

export const ATTR_POLICY = 'tailsampling.policy';
export const ATTR_COMPOSITE_POLICY = 'tailsampling.composite_policy';
export const ATTR_SAMPLE_RATE = 'SampleRate';
export const ATTR_DRY_RUN_DECISION = 'tailsampling.dry_run.decision';
export const ATTR_DRY_RUN_POLICY = 'tailsampling.dry_run.policy';

const KEY_POLICY = new AttrKey(ATTR_POLICY);
const KEY_COMPOSITE = new AttrKey(ATTR_COMPOSITE_POLICY);
const KEY_SAMPLE_RATE = new AttrKey(ATTR_SAMPLE_RATE);
/** Keys a kept span must not carry already for the append-only stamp (else they are replaced). */
const STAMP_KEYS = [KEY_POLICY.bytes, KEY_COMPOSITE.bytes, KEY_SAMPLE_RATE.bytes];

function encodeAttrs(attrs: Record<string, AttrValue>): Uint8Array {
  const w = new WireWriter(128);
  for (const k of Object.keys(attrs)) encodeKeyValue(w, 9, k, attrs[k]);
  return w.finish();
}

/**
 * Appends pre-encoded span attributes (field 9) to a span: one exact-size
 * copy. Falls back to setSpanAttributes (which replaces existing keys) when
 * the span already carries one of the keys.
 */
function appendAttrs(span: Span, encoded: Uint8Array, attrs: () => Record<string, AttrValue>, hasRate: boolean, hasSub: boolean): void {
  if (findSpanAttr(span, KEY_POLICY) >= 0 || (hasRate && findSpanAttr(span, KEY_SAMPLE_RATE) >= 0) || (hasSub && findSpanAttr(span, KEY_COMPOSITE) >= 0)) {
    setSpanAttributes(span, attrs());
    return;
  }
  const b = new Uint8Array(span.len + encoded.length);
  b.set(span.buf.subarray(span.off, span.off + span.len), 0);
  b.set(encoded, span.len);
  span.setBytes(b);
}

/** tailsampling.policy (and composite_policy) of a decision. */
function policyAttrs(rec: DecisionRecord): Record<string, AttrValue> {
  const a: Record<string, AttrValue> = { [ATTR_POLICY]: rec.policy };
  if (rec.compositeSub !== undefined) a[ATTR_COMPOSITE_POLICY] = rec.compositeSub;
  return a;
}

export type DecisionReason = 'decision_wait' | 'root_received' | 'too_large' | 'buffer_full' | 'shutdown';

/** A decision as remembered for late spans (decision cache) and used to stamp spans. */
export interface DecisionRecord {
  /** Final decision: SAMPLED, NOT_SAMPLED or DROPPED. */
  readonly decision: Decision;
  /** Policy that decided (the first that sampled, or the drop policy); '' when none. */
  readonly policy: string;
  readonly compositeSub: string | undefined;
  /** Keep probability: 1, a known probability, or NaN when unknown. */
  readonly p: number;
  /** True when the randomness behind p is OTEP 235's R (thresholds nest: max), false for an independent hash (product). */
  readonly consistent: boolean;
  readonly decidedAt: number;
  /** The stamped attributes, encoded (cached per policy, sub-policy and SampleRate), on first use. */
  encoded?: Uint8Array;
  /** SampleRate included in `encoded` (0: none). */
  encodedRate?: number;
}

interface CompiledPolicy {
  readonly name: string;
  readonly eval: Evaluator;
}

interface RetryEntry {
  spans: Span[];
  attempts: number;
  notBefore: number;
  bytes: number;
}

function chunkBytes(spans: Span[]): number {
  let n = 0;
  for (let i = 0; i < spans.length; i++) n += spans[i].len + SPAN_OVERHEAD_BYTES;
  return n;
}

export interface TailSamplingDeps {
  /** Replaces the in-memory trace buffer (the disk-spill seam). */
  store?: TraceStore;
}

export class TailSamplingProcessor implements Component, TracesConsumer {
  readonly mutatesData = true;

  private readonly id: string;
  private readonly settings: CreateSettings;
  private cfg: TailSamplingConfig;
  private readonly next: TracesConsumer;
  private readonly store: TraceStore;
  private policies: CompiledPolicy[];
  private readonly waitMs: number;
  private readonly rootWaitMs: number;
  private readonly tickMs: number;
  private readonly numTraces: number;
  private readonly maxBytes: number;
  private readonly maxTraceBytes: number;
  private firstMatch: boolean;
  private dryRun: boolean;
  private readonly dropPendingOnShutdown: boolean;
  private readonly sampledCache: BoundedLru<string, DecisionRecord> | undefined;
  private readonly notSampledCache: BoundedLru<string, DecisionRecord> | undefined;

  private readonly refuseWhenFull: boolean;
  /** refuse mode: memory (and disk) are full; consume refuses until a tick or decision makes room. */
  private full = false;
  /** Above this many memory bytes a spill batch is written (maxBytes without disk). */
  private readonly relieveAt: number;
  private readonly disk: { directory: string; maxBytes: number; sync: 'normal' | 'full'; file: string } | undefined;
  private spill: TraceSpillStore | undefined;
  /** Index of spilled traces; defined whenever disk is configured. */
  private readonly spilledIdx: SpillIndex | undefined;
  /** The spill file is held by the previous pipeline (reload): memory-only until it is released. */
  private waitingForFile = false;
  private spillPausedUntil = 0;
  private spillTickWork: Promise<void> | undefined;
  /** The deciding part of the running tick (it yields between slices; shutdown waits for it). */
  private tickDecisions: Promise<void> | undefined;
  private readErrorLogged = false;
  /** Bucket entries of traces that were spilled (dead until their bucket fires); compacted when they pile up. */
  private staleBucketEntries = 0;
  private spillBatchBytes = 256 * 1024;
  private readBackSlice = 128;
  private bucketEntries = 0;
  private dm:
    | {
        spilledTraces: ReturnType<Counter['labels']>;
        spilledSpans: ReturnType<Counter['labels']>;
        spilledBytes: ReturnType<Counter['labels']>;
        readTraces: ReturnType<Counter['labels']>;
        readSpans: ReturnType<Counter['labels']>;
        errors: Record<SpillErrorKind, ReturnType<Counter['labels']>>;
        tracesOnDisk: ReturnType<Gauge['labels']>;
        spansOnDisk: ReturnType<Gauge['labels']>;
        bytesOnDisk: ReturnType<Gauge['labels']>;
        longest: ReturnType<Gauge['labels']>;
      }
    | undefined;
  private readonly mRefused: ReturnType<Counter['labels']>;

  private readonly buckets = new Map<number, PendingTrace[]>();
  private nextBucket = Infinity;
  private timer: NodeJS.Timeout | undefined;
  private stopped = false;
  private shutdownPromise: Promise<void> | undefined;
  private readonly inflight = new Set<Promise<void>>();
  private retryQueue: RetryEntry[] = [];
  private retryBytes = 0;
  private warnedThisTick = false;

  // Stamping kept spans: one slab for their rewritten bytes; the last trace state worked out (incoming state, p) -> (field, SampleRate).
  private readonly slab = new Slab(256 * 1024);
  private memoTs = '';
  private memoP = NaN;
  private memoConsistent = false;
  private memoTsField: Uint8Array | undefined = undefined;
  private memoRate = 0;
  /** SampleRate worked out by the last nextTraceState (0: none). */
  private stampRate = 0;

  // Per-decision scratch results of makeDecision (no allocation per trace).
  private decPolicy = -1;
  private decP = 1;
  private decConsistent = false;
  private decSub: string | undefined = undefined;

  // Aggregated per-policy counts, flushed to the metrics registry once per tick: [policy][decision] traces and spans.
  private policyTraces: Float64Array;
  private policySpans: Float64Array;
  private policyTraceChildren: Array<ReturnType<Counter['labels']> | undefined>;
  private policySpanChildren: Array<ReturnType<Counter['labels']> | undefined>;
  private evalErrors = 0;
  // Spans counted as dropped since the last flush (one telemetry.drop call per reason per flush).
  private droppedSampledOut = 0;
  private droppedPolicy = 0;
  private readonly latencyByReason: Record<DecisionReason, ReturnType<Histogram['labels']>>;

  private readonly m: {
    globalTraces: Record<'sampled' | 'not_sampled' | 'dropped', ReturnType<Counter['labels']>>;
    globalSpans: Record<'sampled' | 'not_sampled' | 'dropped', ReturnType<Counter['labels']>>;
    early: Record<'buffer_full' | 'too_large', ReturnType<Counter['labels']>>;
    cacheSampled: ReturnType<Counter['labels']>;
    cacheNotSampled: ReturnType<Counter['labels']>;
    newTraces: ReturnType<Counter['labels']>;
    evalErrors: ReturnType<Counter['labels']>;
    forwardRetries: ReturnType<Counter['labels']>;
    latency: Histogram;
    lateAge: ReturnType<Histogram['labels']>;
    tickLatency: ReturnType<Histogram['labels']>;
    traces: ReturnType<Gauge['labels']>;
    spans: ReturnType<Gauge['labels']>;
    bytes: ReturnType<Gauge['labels']>;
  };

  constructor(settings: CreateSettings, cfg: TailSamplingConfig, next: TracesConsumer, deps: TailSamplingDeps = {}) {
    this.settings = settings;
    this.id = settings.id;
    this.next = next;
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
    this.firstMatch = cfg.sample_on_first_match;
    this.dryRun = cfg.dry_run;
    this.dropPendingOnShutdown = cfg.drop_pending_traces_on_shutdown;
    this.refuseWhenFull = cfg.buffer.when_full === 'refuse';
    if (spills) {
      this.disk = { directory: dc.directory, maxBytes: dc.max_bytes, sync: dc.sync, file: fileNameFor('spill', settings.id) };
      this.spilledIdx = new SpillIndex();
      this.relieveAt = Math.floor(this.maxBytes * SPILL_HIGH_WATER);
    } else {
      this.disk = undefined;
      this.spilledIdx = undefined;
      this.relieveAt = this.maxBytes;
    }
    const sc = cfg.decision_cache.sampled_cache_size;
    const nc = cfg.decision_cache.non_sampled_cache_size;
    this.sampledCache = sc > 0 ? new BoundedLru(sc) : undefined;
    this.notSampledCache = nc > 0 ? new BoundedLru(nc) : undefined;

    this.cfg = cfg;
    this.policies = [];
    this.policyTraces = new Float64Array(0);
    this.policySpans = new Float64Array(0);
    this.policyTraceChildren = [];
    this.policySpanChildren = [];
    this.setPolicies(cfg);

    const t = settings.telemetry;
    const P = 'otelcol_processor_tail_sampling_';
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
    this.latencyByReason = {
      decision_wait: latency.labels(this.id, 'decision_wait'),
      root_received: latency.labels(this.id, 'root_received'),
      too_large: latency.labels(this.id, 'too_large'),
      buffer_full: latency.labels(this.id, 'buffer_full'),
      shutdown: latency.labels(this.id, 'shutdown'),
    };
    this.m = {
      globalTraces: {
        sampled: gTraces.labels(this.id, 'true', 'sampled'),
        not_sampled: gTraces.labels(this.id, 'false', 'not_sampled'),
        dropped: gTraces.labels(this.id, 'false', 'dropped'),
      },
      globalSpans: {
        sampled: gSpans.labels(this.id, 'true', 'sampled'),
        not_sampled: gSpans.labels(this.id, 'false', 'not_sampled'),
        dropped: gSpans.labels(this.id, 'false', 'dropped'),
      },
      early: { buffer_full: early.labels(this.id, 'buffer_full'), too_large: early.labels(this.id, 'too_large') },
      cacheSampled: cache.labels(this.id, 'true'),
      cacheNotSampled: cache.labels(this.id, 'false'),
      newTraces: t.counter(P + 'new_trace_id_received_total', 'Traces started in the buffer.', ['processor']).labels(this.id),
      evalErrors: t.counter(P + 'sampling_policy_evaluation_error_total', 'Policy evaluations that failed (counted, policy skipped).', ['processor']).labels(this.id),
      forwardRetries: t.counter(P + 'forward_retries_total', 'Batches of kept spans re-sent after the next stage refused them.', ['processor']).labels(this.id),
      latency,
      lateAge: t
        .histogram(P + 'sampling_late_span_age_seconds', 'Time between a trace decision and a late span of it.', ['processor'], [1, 5, 10, 30, 60, 120, 300, 600, 1800])
        .labels(this.id),
      tickLatency: t
        .histogram(P + 'sampling_decision_timer_latency_seconds', 'Duration of one decision tick.', ['processor'], [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1])
        .labels(this.id),
      traces: t.gauge(P + 'sampling_traces_on_memory', 'Traces buffered awaiting a decision.', ['processor']).labels(this.id),
      spans: t.gauge(P + 'sampling_spans_on_memory', 'Spans buffered awaiting a decision.', ['processor']).labels(this.id),
      bytes: t.gauge(P + 'sampling_bytes_on_memory', 'Accounted bytes of buffered spans (encoded size plus fixed overheads).', ['processor']).labels(this.id),
    };
    this.mRefused = t
      .counter(P + 'refused_spans_total', 'Spans refused with a retryable error because memory (and disk) were full (buffer.when_full: refuse).', ['processor', 'reason'])
      .labels(this.id, 'buffer_full');
    if (this.disk !== undefined) {
      const errors = t.counter(P + 'spill_errors_total', 'Failed spill writes and read-backs, by kind (max_bytes, enospc, io, read).', ['processor', 'kind']);
      this.dm = {
        spilledTraces: t.counter(P + 'spilled_traces_total', 'Pending traces (or parts of them) moved from memory to the spill file.', ['processor']).labels(this.id),
        spilledSpans: t.counter(P + 'spilled_spans_total', 'Spans moved from memory to the spill file.', ['processor']).labels(this.id),
        spilledBytes: t.counter(P + 'spilled_bytes_total', 'Encoded span bytes moved to the spill file.', ['processor']).labels(this.id),
        readTraces: t.counter(P + 'read_back_traces_total', 'Spilled traces read back for their decision.', ['processor']).labels(this.id),
        readSpans: t.counter(P + 'read_back_spans_total', 'Spilled spans read back for their decision.', ['processor']).labels(this.id),
        errors: {
          max_bytes: errors.labels(this.id, 'max_bytes'),
          enospc: errors.labels(this.id, 'enospc'),
          io: errors.labels(this.id, 'io'),
          read: errors.labels(this.id, 'read'),
        },
        tracesOnDisk: t.gauge(P + 'sampling_traces_on_disk', 'Pending traces with spans in the spill file.', ['processor']).labels(this.id),
        spansOnDisk: t.gauge(P + 'sampling_spans_on_disk', 'Pending spans in the spill file.', ['processor']).labels(this.id),
        bytesOnDisk: t.gauge(P + 'sampling_bytes_on_disk', 'Bytes the spill file holds for pending traces (bodies and headers).', ['processor']).labels(this.id),
        longest: t
          .gauge('sidecar_storage_longest_call_seconds', 'Longest single storage call so far (it blocked the event loop this long).', ['component', 'file'])
          .labels(this.id, this.disk.file),
      };
    }
  }

  /** Compiles the policies and binds their per-policy metric children. */
  private setPolicies(cfg: TailSamplingConfig): void {
    // Drop policies first: a Dropped answer wins and stops evaluation (as in the Collector).
    const ordered = [...cfg.policies.filter((p) => p.type === 'drop'), ...cfg.policies.filter((p) => p.type !== 'drop')];
    const policies = ordered.map((p) => ({ name: p.name, eval: compilePolicy(p) }));
    const t = this.settings.telemetry;
    const P = 'otelcol_processor_tail_sampling_';
    const n = policies.length;
    if (this.policyTraces.length > 0) this.flushMetrics(); // counts of the old policies go out under their names
    this.policyTraces = new Float64Array(n * 6);
    this.policySpans = new Float64Array(n * 6);
    const perPolicyTraces = t.counter(P + 'count_traces_sampled_total', 'Traces per policy and the decision the policy gave.', ['processor', 'policy', 'sampled', 'decision']);
    const perPolicySpans = t.counter(P + 'count_spans_sampled_total', 'Spans of the traces per policy and the decision the policy gave.', ['processor', 'policy', 'sampled', 'decision']);
    this.policyTraceChildren = new Array(n * 6).fill(undefined);
    this.policySpanChildren = new Array(n * 6).fill(undefined);
    for (let i = 0; i < n; i++) {
      for (const d of [SAMPLED, NOT_SAMPLED, INVERT_SAMPLED, INVERT_NOT_SAMPLED, DROPPED] as const) {
        const name = DECISION_NAMES[d];
        const sampled = d === SAMPLED || d === INVERT_SAMPLED ? 'true' : 'false';
        this.policyTraceChildren[i * 6 + d] = perPolicyTraces.labels(this.id, policies[i].name, sampled, name);
        this.policySpanChildren[i * 6 + d] = perPolicySpans.labels(this.id, policies[i].name, sampled, name);
      }
    }
    this.policies = policies;
    this.firstMatch = cfg.sample_on_first_match;
    this.dryRun = cfg.dry_run;
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
    this.setPolicies(next);
    this.cfg = next;
    this.settings.logger.info({ policies: this.policies.length }, 'tail_sampling policies replaced live; buffered traces kept');
    return true;
  }

  async start(): Promise<void> {
    if (this.timer !== undefined || this.stopped) return;
    if (this.disk !== undefined && this.spill === undefined && !this.waitingForFile) this.openSpill(true);
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
    if (this.retryBytes > this.maxBytes / 2) {
      // Kept traces are piling up because the next stage refuses them: push back instead of buffering more.
      throw new RetryableError(`${this.id}: the next stage is refusing data; retry later`, this.tickMs);
    }
    if (this.full && this.refuseWhenFull) {
      if (this.store.bytes > this.maxBytes || this.store.traceCount > this.numTraces) {
        this.mRefused.inc(spans.length);
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
        const rec = this.sampledCache?.get(id) ?? this.notSampledCache?.get(id);
        if (rec !== undefined) {
          this.m.lateAge.observe((now - rec.decidedAt) / 1000);
          if (rec.decision === SAMPLED || this.dryRun) {
            this.stamp(span, rec);
            out.push(span);
            lateSampled++;
          } else lateNotSampled++;
          continue;
        }
        t = store.create(id, now);
        store.append(t, span);
        this.schedule(t, now + this.waitMs, false);
        // A trace with spans on disk continues there: not a new trace; its root may be on disk.
        if (this.spilledIdx !== undefined && this.spilledIdx.size > 0 && this.spilledIdx.get(id)) t.hasRoot = this.spilledIdx.lastRoot;
        else newTraces++;
      } else store.append(t, span);
      if (!span.hasParent && this.rootWaitMs > 0 && !t.hasRoot) {
        t.hasRoot = true;
        const due = now + this.rootWaitMs;
        if (Math.ceil(due / this.tickMs) < t.bucket) this.schedule(t, due, true);
      }
      if (this.maxTraceBytes > 0 && t.encodedBytes > this.maxTraceBytes) (oversize ??= []).push(t);
    }
    if (oversize !== undefined) {
      for (const t of oversize) {
        if (t.done) continue;
        this.m.early.too_large.inc();
        this.decide(t, 'too_large', now, out);
      }
    }
    if (store.traceCount > this.numTraces || store.bytes > this.relieveAt) this.relieve(now, out);
    if (this.droppedSampledOut > 0 || this.droppedPolicy > 0) this.flushDrops();
    if (newTraces > 0) this.m.newTraces.inc(newTraces);
    if (lateSampled > 0) this.m.cacheSampled.inc(lateSampled);
    if (lateNotSampled > 0) {
      this.m.cacheNotSampled.inc(lateNotSampled);
      this.settings.telemetry.drop(this.id, 'late_not_sampled', lateNotSampled);
    }
    this.updateGauges();
    if (out.length > 0) await this.forward(out, 0);
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
    this.warnedThisTick = false;
    const work: Array<Promise<void>> = [];
    const decisions = this.decideTick(now, out, work);
    this.tickDecisions = decisions;
    try {
      await decisions;
    } finally {
      this.tickDecisions = undefined;
    }
    if (this.full && this.store.bytes <= this.maxBytes && this.store.traceCount <= this.numTraces) this.full = false;
    if (out.length > 0) work.push(this.forward(out, 0));
    if (this.retryQueue.length > 0) work.push(this.retryDue(now));
    this.flushMetrics();
    this.updateGauges();
    this.m.tickLatency.observe((performance.now() - started) / 1000);
    await Promise.all(work);
  }

  /** The deciding part of a tick: due buckets, then (with disk) due spilled traces and spilling. */
  private async decideTick(now: number, out: Span[], work: Array<Promise<void>>): Promise<void> {
    const due = this.takeDue(now);
    if (due.length > 0) await this.decideSliced(due, now, out, work);
    if (this.disk !== undefined) {
      if (this.waitingForFile) this.openSpill(false);
      if (this.spill !== undefined && this.spilledIdx!.size > 0) {
        const p = this.decideSpilledDue(now, out, work);
        this.spillTickWork = p;
        await p;
        this.spillTickWork = undefined;
      }
      if (this.store.traceCount > this.numTraces || this.store.bytes > this.relieveAt) this.relieve(now, out);
    }
  }

  async shutdown(timeoutMs?: number): Promise<void> {
    if (this.shutdownPromise !== undefined) return this.shutdownPromise;
    this.stopped = true;
    if (this.timer !== undefined) clearInterval(this.timer);
    this.timer = undefined;
    this.shutdownPromise = this.drainForShutdown(timeoutMs ?? 10_000);
    return this.shutdownPromise;
  }

  /**
   * With a spill file: writes every trace still in memory to disk (within
   * the time given), so the next start decides them on their original
   * schedule instead of deciding partial traces now. Returns how many traces
   * were written.
   */
  private async spillAllForShutdown(now: number, timeoutMs: number): Promise<void> {
    if (this.spillTickWork !== undefined) await this.spillTickWork.catch(() => undefined);
    if (this.spill === undefined) return;
    const t0 = performance.now();
    // Leave some of the grace period for what follows (retries, exporters).
    const budget = Math.max(100, timeoutMs * 0.8);
    let traces = 0;
    let spans = 0;
    while (this.store.traceCount > 0 && performance.now() - t0 < budget) {
      const before = this.store.traceCount;
      const n0 = this.store.spanCount;
      if (!this.spillOldest(now, true)) break;
      traces += before - this.store.traceCount;
      spans += n0 - this.store.spanCount;
    }
    const left = this.store.traceCount;
    this.settings.logger.info(
      { component: this.id, traces, spans, left, onDisk: this.spilledIdx!.size, ms: Math.round(performance.now() - t0) },
      left === 0
        ? 'tail_sampling: wrote pending traces to the spill file; the next start decides them on schedule'
        : 'tail_sampling: could not write every pending trace to disk; the rest is decided now',
    );
  }

  private closeSpill(): void {
    if (this.spill === undefined) return;
    try {
      this.spill.close();
    } catch (err) {
      this.settings.logger.error({ component: this.id, err: (err as Error).message }, 'tail_sampling: error closing the spill file');
    }
    this.spill = undefined;
    releaseFile(this.disk!.directory, this.disk!.file);
  }

  private async drainForShutdown(timeoutMs: number): Promise<void> {
    if (this.tickDecisions !== undefined) await this.tickDecisions.catch(() => undefined);
    const now = this.settings.clock.now();
    const out: Span[] = [];
    if (this.disk !== undefined) await this.spillAllForShutdown(now, timeoutMs);
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
    this.buckets.clear();
    this.bucketEntries = 0;
    this.staleBucketEntries = 0;
    const work: Array<Promise<void>> = [];
    if (out.length > 0) work.push(this.forward(out, FORWARD_RETRIES));
    const retries = this.retryQueue;
    this.retryQueue = [];
    this.retryBytes = 0;
    for (const r of retries) work.push(this.forward(r.spans, FORWARD_RETRIES));
    await Promise.all(work);
    while (this.inflight.size > 0) await Promise.all([...this.inflight]);
    this.flushMetrics();
    this.updateGauges();
    this.closeSpill();
  }

  // ------------------------------------------------------------------ disk spill

  /**
   * Opens the spill file and indexes the traces found in it (a restart: they
   * keep their arrival and due times). At start a bad directory throws (the
   * collector fails to start with the reason); a file still held by the
   * previous pipeline of a reload is taken over on a later tick.
   */
  private openSpill(atStart: boolean): void {
    const d = this.disk!;
    if (!claimFile(d.directory, d.file)) {
      if (!this.waitingForFile) {
        this.waitingForFile = true;
        this.settings.logger.info(
          { component: this.id, directory: d.directory, file: d.file },
          'tail_sampling: spill file is still held by the previous pipeline; memory-only until it is released',
        );
      }
      return;
    }
    let store: TraceSpillStore;
    try {
      store = TraceSpillStore.open({
        directory: d.directory,
        file: d.file,
        sync: d.sync,
        maxBytes: d.maxBytes,
        logger: this.settings.logger,
        telemetry: this.settings.telemetry,
        component: this.id,
        clock: this.settings.clock,
      });
    } catch (err) {
      releaseFile(d.directory, d.file);
      if (atStart) throw err;
      this.waitingForFile = false;
      this.settings.logger.error({ component: this.id, err: (err as Error).message }, 'tail_sampling: cannot open the spill file; running memory-only');
      return;
    }
    this.waitingForFile = false;
    this.spill = store;
    const idx = this.spilledIdx!;
    let spans = 0;
    for (const p of store.pendingIndex()) {
      idx.add(p.traceId, p.spanCount, false, false, p.lastSeq);
      spans += p.spanCount;
    }
    if (idx.size > 0) {
      this.settings.logger.info({ component: this.id, traces: idx.size, spans, bytes: store.bytesUsed() }, 'tail_sampling: resuming pending traces found on disk');
    }
    this.updateGauges();
  }

  /**
   * Memory is over the high-water mark (or num_traces): spill one batch of the
   * oldest traces, and more while memory is over its budget. Without disk, or
   * when the disk is full: decide the oldest early, or (when_full: refuse)
   * refuse new data until there is room.
   */
  private relieve(now: number, out: Span[]): void {
    const store = this.store;
    if (this.spill !== undefined && now >= this.spillPausedUntil) {
      let ok = this.spillOldest(now, false);
      while (ok && (store.traceCount > this.numTraces || store.bytes > this.maxBytes)) ok = this.spillOldest(now, false);
    }
    if (store.traceCount <= this.numTraces && store.bytes <= this.maxBytes) return;
    if (this.refuseWhenFull) {
      this.full = true;
      return;
    }
    while (store.traceCount > this.numTraces || store.bytes > this.maxBytes) {
      const oldest = store.oldest();
      if (oldest === undefined) break;
      this.m.early.buffer_full.inc();
      this.decide(oldest, 'buffer_full', now, out);
    }
  }

  /**
   * Writes the oldest in-memory traces (about SPILL_BATCH_BYTES of spans) in
   * one transaction and drops them from memory, keeping their index entry.
   * Nothing changes when the write fails. False when nothing was written.
   */
  private spillOldest(now: number, shuttingDown: boolean): boolean {
    const spill = this.spill;
    if (spill === undefined) return false;
    const batch: SpillTrace[] = [];
    const traces: PendingTrace[] = [];
    const idx = this.spilledIdx!;
    let bytes = 0;
    for (const t of this.store.values()) {
      if (t.done || t.spanCount === 0) continue;
      const prevSeq = idx.size > 0 && idx.get(t.id) ? idx.lastSeq : 0;
      batch.push({ traceId: t.id, firstSeenMs: t.firstMs, dueMs: t.bucket * this.tickMs, spans: t.spans, prevSeq });
      traces.push(t);
      bytes += t.encodedBytes;
      if (bytes >= this.spillBatchBytes) break;
    }
    if (batch.length === 0) return false;
    const t0 = performance.now();
    let seqs: number[];
    try {
      seqs = spill.spill(batch);
      this.spillBatchBytes = adapt(this.spillBatchBytes, performance.now() - t0, SPILL_BATCH_MIN, SPILL_BATCH_MAX);
    } catch (err) {
      this.spillFailed(err, now, shuttingDown);
      return false;
    }
    let spans = 0;
    for (let i = 0; i < traces.length; i++) {
      const t = traces[i];
      this.store.take(t.id);
      t.done = true;
      idx.add(t.id, t.spanCount, t.hasRoot, t.dueByRoot, seqs[i]);
      spans += t.spanCount;
      // The spill file has the bytes now: their memory can hold new spans.
      const held = t.spans;
      for (let k = 0; k < held.length; k++) this.store.release(held[k].buf, held[k]);
      t.spans = [];
    }
    // Spilled traces leave a dead entry in their bucket; drop them once they are a 32nd of the entries
    // (each PendingTrace kept alive there costs far more than its index entry, and keeps an old-space
    // page from being freed: at a half, ~7k of them fragmented V8's old space; a walk costs ~32 entries a spill).
    this.staleBucketEntries += traces.length;
    if (this.staleBucketEntries > 128 && this.staleBucketEntries * 32 > this.bucketEntries) this.compactBuckets();
    const dm = this.dm!;
    dm.spilledTraces.inc(traces.length);
    dm.spilledSpans.inc(spans);
    dm.spilledBytes.inc(bytes);
    return true;
  }

  private compactBuckets(): void {
    let n = 0;
    for (const [b, list] of this.buckets) {
      let w = 0;
      for (let i = 0; i < list.length; i++) {
        const t = list[i];
        if (!t.done && t.bucket === b) list[w++] = t;
      }
      list.length = w;
      n += w;
      if (w === 0) this.buckets.delete(b);
    }
    this.bucketEntries = n;
    this.staleBucketEntries = 0;
  }

  private spillFailed(err: unknown, now: number, shuttingDown: boolean): void {
    const dm = this.dm!;
    let kind: SpillErrorKind;
    if (err instanceof DiskFullError) kind = err.reason;
    else kind = 'io';
    dm.errors[kind].inc();
    // The budget frees up as traces are decided: try again next tick. No space / I/O: after a pause.
    this.spillPausedUntil = now + (kind === 'max_bytes' ? this.tickMs : SPILL_RETRY_MS);
    if (kind !== 'max_bytes' && !this.warnedThisTick) {
      this.warnedThisTick = true;
      this.settings.logger.warn(
        { component: this.id, kind, err: (err as Error).message, shuttingDown },
        'tail_sampling: spilling to disk failed; memory-only behaviour until it works again',
      );
    }
    if (!(err instanceof DiskFullError) && !(err instanceof StorageError)) throw err;
  }

  /**
   * The trace has spans on disk (its index entry was just removed, fields in
   * spilledIdx.last*): reads them back in one query and rebuilds the trace
   * from the disk part (arrival order) followed by the in-memory part.
   */
  private readBack(mem: PendingTrace): PendingTrace {
    const idx = this.spilledIdx!;
    const onDisk = idx.lastSpans;
    const root = idx.lastRoot;
    let disk: Span[] = [];
    if (this.spill !== undefined) {
      try {
        disk = this.spill.take(mem.id, idx.lastSeq > 0 ? idx.lastSeq : undefined);
      } catch (err) {
        this.dm!.errors.read.inc();
        if (!this.readErrorLogged) {
          this.readErrorLogged = true;
          this.settings.logger.error({ component: this.id, err: (err as Error).message }, 'tail_sampling: a spilled trace could not be read back (further errors are only counted)');
        }
      }
    }
    if (disk.length < onDisk) {
      // Unreadable rows, or a file that was moved aside: those spans are gone.
      this.settings.telemetry.drop(this.id, 'storage_error', onDisk - disk.length);
    }
    this.dm!.readTraces.inc();
    this.dm!.readSpans.inc(disk.length);
    // The first-seen time of the disk part is kept in the file (read by take).
    const t = new PendingTrace(mem.id, disk.length > 0 ? Math.min(this.spill!.lastFirstSeenMs, mem.firstMs) : mem.firstMs);
    for (let i = 0; i < disk.length; i++) addSpanTo(t, disk[i]);
    const ms = mem.spans;
    for (let i = 0; i < ms.length; i++) addSpanTo(t, ms[i]);
    if (root || mem.hasRoot) t.hasRoot = true;
    t.done = true;
    mem.spans = [];
    return t;
  }

  /**
   * Decides the spilled traces whose due time has come (the spill file keeps
   * due times in an index), a slice at a time: each slice reads its traces,
   * applies the deletes in one transaction, hands kept spans on, and yields
   * to the event loop before the next.
   */
  private async decideSpilledDue(now: number, out: Span[], work: Array<Promise<void>>): Promise<void> {
    const idx = this.spilledIdx!;
    for (;;) {
      const spill = this.spill;
      if (spill === undefined || idx.size === 0) return;
      let ids: string[];
      try {
        ids = spill.dueBefore(now, this.readBackSlice);
      } catch (err) {
        this.spillFailed(err, now, false);
        return;
      }
      if (ids.length === 0) return;
      for (const id of ids) {
        // Not indexed (should not happen): index it so its spans are read back, not lost.
        if (!idx.get(id)) idx.add(id, 0, false);
        this.decide(this.store.get(id) ?? new PendingTrace(id, now), idx.lastByRoot ? 'root_received' : 'decision_wait', now, out);
      }
      const t0 = performance.now();
      try {
        spill.flush();
        this.readBackSlice = adapt(this.readBackSlice, performance.now() - t0, READ_BACK_MIN, READ_BACK_MAX);
      } catch (err) {
        this.spillFailed(err, now, false);
      }
      if (ids.length < this.readBackSlice) return;
      if (out.length > 0) {
        work.push(this.forward(out.splice(0), 0));
      }
      await new Promise<void>((r) => setImmediate(r));
    }
  }

  // ------------------------------------------------------------------ scheduling

  private schedule(t: PendingTrace, dueMs: number, byRoot: boolean): void {
    const b = Math.ceil(dueMs / this.tickMs);
    t.bucket = b;
    t.dueByRoot = byRoot;
    let list = this.buckets.get(b);
    if (list === undefined) {
      list = [];
      this.buckets.set(b, list);
    }
    list.push(t);
    this.bucketEntries++;
    if (b < this.nextBucket) this.nextBucket = b;
  }

  /**
   * Takes the due buckets out of the schedule (no decision yet) and returns
   * them with their bucket numbers. Anything scheduled into a due bucket
   * afterwards (while the decisions yield) lowers nextBucket again and is
   * found by the next tick.
   */
  private takeDue(now: number): Array<{ b: number; list: PendingTrace[] }> {
    const due: Array<{ b: number; list: PendingTrace[] }> = [];
    if (this.buckets.size === 0) return due;
    const nowB = Math.floor(now / this.tickMs);
    if (nowB < this.nextBucket) return due;
    const take = (b: number) => {
      const list = this.buckets.get(b);
      if (list === undefined) return;
      this.buckets.delete(b);
      this.bucketEntries -= list.length;
      due.push({ b, list });
    };
    if (nowB - this.nextBucket > 4 * this.buckets.size + 64) {
      // The clock jumped far ahead: visit only existing buckets.
      const keys = [...this.buckets.keys()].filter((k) => k <= nowB).sort((x, y) => x - y);
      for (const k of keys) take(k);
    } else {
      for (let b = this.nextBucket; b <= nowB; b++) take(b);
    }
    this.nextBucket = this.buckets.size > 0 ? nowB + 1 : Infinity;
    return due;
  }

  /**
   * Decides the traces of the due buckets in slices of about DECIDE_SLICE_MS:
   * after each slice the kept spans go on and the event loop gets a turn, so
   * receiving does not stall behind a tick that decides many traces.
   */
  private async decideSliced(due: Array<{ b: number; list: PendingTrace[] }>, now: number, out: Span[], work: Array<Promise<void>>): Promise<void> {
    let sliceStart = performance.now();
    let n = 0;
    for (const { b, list } of due) {
      for (let i = 0; i < list.length; i++) {
        const t = list[i];
        if (t.done || t.bucket !== b) continue;
        this.decide(t, t.dueByRoot ? 'root_received' : 'decision_wait', now, out);
        if (++n % 32 === 0 && performance.now() - sliceStart > DECIDE_SLICE_MS) {
          if (out.length > 0) work.push(this.forward(out.splice(0), 0));
          await new Promise<void>((r) => setImmediate(r));
          sliceStart = performance.now();
        }
      }
    }
  }

  // ------------------------------------------------------------------ deciding

  /** Decides one buffered trace: takes it out of the store, forwards (into `out`) or counts its spans. */
  private decide(t: PendingTrace, reason: DecisionReason, now: number, out: Span[]): void {
    let taken = this.store.take(t.id) ?? t;
    taken.done = true;
    t.done = true;
    if (this.spilledIdx !== undefined && this.spilledIdx.size > 0 && this.spilledIdx.remove(t.id)) taken = this.readBack(taken);
    const d = this.makeDecision(taken, now);
    const rec: DecisionRecord = {
      decision: d,
      policy: this.decPolicy >= 0 ? this.policies[this.decPolicy].name : '',
      compositeSub: this.decSub,
      p: this.decP,
      consistent: this.decConsistent,
      decidedAt: now,
    };
    this.latencyByReason[reason].observe((now - taken.firstMs) / 1000);
    const spans = taken.spans;
    const n = spans.length;
    const kind = d === SAMPLED ? 'sampled' : d === DROPPED ? 'dropped' : 'not_sampled';
    this.m.globalTraces[kind].inc();
    this.m.globalSpans[kind].inc(n);
    if (d === SAMPLED) this.sampledCache?.set(t.id, rec);
    else this.notSampledCache?.set(t.id, rec);
    const store = this.store;
    if (d === SAMPLED || this.dryRun) {
      for (let i = 0; i < n; i++) {
        const s = spans[i];
        const held = s.buf;
        this.stamp(s, rec);
        // Stamping writes the span anew; should it ever leave the bytes where they were, they move out of the store's memory.
        if (s.buf === held) SpanPool.detach(s);
        store.release(held);
        out.push(s);
      }
    } else {
      for (let i = 0; i < n; i++) store.release(spans[i].buf, spans[i]);
      if (d === DROPPED) this.droppedPolicy += n;
      else this.droppedSampledOut += n;
    }
    taken.spans = [];
  }

  /**
   * The Collector's makeDecision: Dropped wins; then InvertNotSampled (not
   * sampled); then Sampled; then InvertSampled when no policy said
   * NotSampled; else not sampled. Also works out the keep probability.
   */
  private makeDecision(t: PendingTrace, now: number): Decision {
    const policies = this.policies;
    const n = policies.length;
    let dropIdx = -1;
    let sampledIdx = -1;
    let invSampledIdx = -1;
    let anyNot = false;
    let anyInvNot = false;
    let certain = false;
    let unknown = false;
    let randomCount = 0;
    let randomP = 1;
    let randomConsistent = false;
    let stoppedEarly = false;
    let sub: string | undefined;
    for (let i = 0; i < n; i++) {
      const ev = policies[i].eval;
      let d: Decision;
      try {
        d = ev.evaluate(t, now);
      } catch {
        this.evalErrors++;
        continue;
      }
      this.policyTraces[i * 6 + d]++;
      this.policySpans[i * 6 + d] += t.spanCount;
      if (d === DROPPED) {
        dropIdx = i;
        break;
      }
      if (d === SAMPLED || d === INVERT_SAMPLED) {
        if (d === SAMPLED && sampledIdx < 0) {
          sampledIdx = i;
          sub = ev.lastSub;
        }
        if (d === INVERT_SAMPLED && invSampledIdx < 0) invSampledIdx = i;
        const p = d === INVERT_SAMPLED ? 1 : ev.lastP;
        if (p === 1) certain = true;
        else if (Number.isNaN(p)) unknown = true;
        else {
          randomCount++;
          randomP = p;
          randomConsistent = ev.lastConsistent;
        }
      } else if (d === NOT_SAMPLED) anyNot = true;
      else if (d === INVERT_NOT_SAMPLED) anyInvNot = true;
      if (this.firstMatch && d === SAMPLED) {
        stoppedEarly = i < n - 1;
        break;
      }
    }
    this.decSub = undefined;
    this.decConsistent = false;
    if (dropIdx >= 0) {
      this.decPolicy = dropIdx;
      this.decP = 1;
      return DROPPED;
    }
    let final: Decision = NOT_SAMPLED;
    this.decPolicy = -1;
    if (anyInvNot) final = NOT_SAMPLED;
    else if (sampledIdx >= 0) {
      final = SAMPLED;
      this.decPolicy = sampledIdx;
      this.decSub = sub;
    } else if (invSampledIdx >= 0 && !anyNot) {
      final = SAMPLED;
      this.decPolicy = invSampledIdx;
    }
    if (certain) this.decP = 1;
    else if (unknown || randomCount !== 1 || stoppedEarly) this.decP = NaN;
    else {
      this.decP = randomP;
      this.decConsistent = randomConsistent;
    }
    return final;
  }

  // ------------------------------------------------------------------ stamping

  /**
   * Writes why a span was kept and what it stands for:
   * - `tailsampling.policy` (and `tailsampling.composite_policy`) always;
   * - keep probability 1: the trace state is left alone, no SampleRate;
   * - known probability p < 1: `th` = p's threshold, combined with an incoming
   *   `th` by max (R-consistent policies) or by product (the probabilistic
   *   policy's independent hash), never lower than the incoming one, and
   *   `SampleRate` = the adjusted count of the written threshold;
   * - unknown probability: `th` is erased (no false threshold).
   * In dry_run only the would-be decision and policy are written.
   */
  private stamp(span: Span, rec: DecisionRecord): void {
    if (this.dryRun) {
      setSpanAttributes(span, {
        [ATTR_DRY_RUN_DECISION]: DECISION_NAMES[rec.decision],
        [ATTR_DRY_RUN_POLICY]: rec.policy,
      });
      return;
    }
    if (!scanForStamp(span, STAMP_KEYS)) {
      this.stampSlow(span, rec);
      return;
    }
    if (rec.p === 1) {
      rec.encoded ??= this.encodedAttrs(rec, 0);
      writeStamped(span, undefined, rec.encoded, this.slab);
      return;
    }
    // Spans (and traces) nearly always share their trace state: work the new one out once per (state, probability).
    const ts = foundTraceState(span);
    if (ts !== this.memoTs || !Object.is(rec.p, this.memoP) || rec.consistent !== this.memoConsistent) {
      const next = this.nextTraceState(ts, rec);
      this.memoTs = ts;
      this.memoP = rec.p;
      this.memoConsistent = rec.consistent;
      this.memoTsField = next === ts ? undefined : encodeTraceStateField(next);
      this.memoRate = this.stampRate;
    }
    if (rec.encoded === undefined || rec.encodedRate !== this.memoRate) {
      rec.encoded = this.encodedAttrs(rec, this.memoRate);
      rec.encodedRate = this.memoRate;
    }
    writeStamped(span, this.memoTsField, rec.encoded, this.slab);
  }

  /** The general path (re-encodes the span): replaces stamped keys already present, handles a repeated trace_state. */
  private stampSlow(span: Span, rec: DecisionRecord): void {
    const hasSub = rec.compositeSub !== undefined;
    let rate = 0;
    if (rec.p !== 1) {
      const ts = spanTraceState(span);
      const next = this.nextTraceState(ts, rec);
      if (next !== ts) setSpanTraceState(span, next);
      rate = this.stampRate;
    }
    const attrs = () => (rate === 0 ? policyAttrs(rec) : { ...policyAttrs(rec), [ATTR_SAMPLE_RATE]: rate });
    appendAttrs(span, this.encodedAttrs(rec, rate), attrs, rate !== 0, hasSub);
  }

  /**
   * The trace state a kept span gets for a decision of keep probability
   * rec.p (not 1); sets stampRate to the SampleRate to write (0: none).
   */
  private nextTraceState(ts: string, rec: DecisionRecord): string {
    const p = rec.p;
    this.stampRate = 0;
    if (Number.isNaN(p)) return ts.includes('th:') ? withThreshold(ts, undefined) : ts;
    const tin = ts === '' ? undefined : incomingThreshold(ts);
    let tnew: bigint;
    if (tin === undefined) tnew = thresholdForProbability(p);
    else if (rec.consistent) {
      const own = thresholdForProbability(p);
      tnew = own > tin ? own : tin;
    } else {
      // Independent of R: the probabilities multiply (p kept to 30 bits).
      const keep = ((MAX_TH - tin) * BigInt(Math.round(p * 2 ** 30))) / (1n << 30n);
      tnew = MAX_TH - (keep < 1n ? 1n : keep);
      if (tnew < tin) tnew = tin;
    }
    this.stampRate = Number(adjustedCount(tnew).toPrecision(12));
    return withThreshold(ts, tnew);
  }

  private readonly attrEncodings = new Map<string, Uint8Array>();
  /** Encoded tailsampling.policy (composite_policy) and, when rate > 0, SampleRate; cached per (policy, sub, rate). */
  private encodedAttrs(rec: DecisionRecord, rate: number): Uint8Array {
    const key = rec.policy + '\u0000' + (rec.compositeSub ?? '') + '\u0000' + rate;
    let b = this.attrEncodings.get(key);
    if (b === undefined) {
      b = encodeAttrs(rate === 0 ? policyAttrs(rec) : { ...policyAttrs(rec), [ATTR_SAMPLE_RATE]: rate });
      if (this.attrEncodings.size > 256) this.attrEncodings.clear();
      this.attrEncodings.set(key, b);
    }
    return b;
  }

  // ------------------------------------------------------------------ forwarding

  /** Hands kept spans to the next stage in chunks; refused chunks go to the retry queue. */
  private forward(spans: Span[], attempts: number): Promise<void> {
    const work: Array<Promise<void>> = [];
    for (let i = 0; i < spans.length; i += FORWARD_CHUNK) {
      const chunk = spans.length <= FORWARD_CHUNK ? spans : spans.slice(i, i + FORWARD_CHUNK);
      const p: Promise<void> = this.next.consume(chunk).then(
        () => undefined,
        (err: unknown) => this.onForwardError(chunk, attempts, err),
      );
      const tracked = p.finally(() => this.inflight.delete(tracked));
      this.inflight.add(tracked);
      work.push(tracked);
    }
    return Promise.all(work).then(() => undefined);
  }

  private onForwardError(chunk: Span[], attempts: number, err: unknown): void {
    const retryable = !(err instanceof CollectorError) || err.retryable;
    if (!this.warnedThisTick) {
      this.warnedThisTick = true;
      this.settings.logger.warn({ err: err instanceof Error ? err.message : String(err), retryable }, 'next stage refused kept spans');
    }
    if (retryable && attempts < FORWARD_RETRIES && !this.stopped) {
      const after = err instanceof CollectorError && err.retryAfterMs !== undefined ? err.retryAfterMs : 0;
      const bytes = chunkBytes(chunk);
      this.retryQueue.push({ spans: chunk, attempts: attempts + 1, notBefore: this.settings.clock.now() + Math.max(this.tickMs, after), bytes });
      this.retryBytes += bytes;
      return;
    }
    const reason: DropReason = this.stopped ? 'shutdown' : retryable ? 'export_retries_exhausted' : 'export_permanent_error';
    this.settings.telemetry.drop(this.id, reason, chunk.length);
  }

  private retryDue(now: number): Promise<void> {
    const due: RetryEntry[] = [];
    const keep: RetryEntry[] = [];
    for (const r of this.retryQueue) (r.notBefore <= now ? due : keep).push(r);
    this.retryQueue = keep;
    const work: Array<Promise<void>> = [];
    for (const r of due) {
      this.retryBytes -= r.bytes;
      this.m.forwardRetries.inc();
      work.push(this.forward(r.spans, r.attempts));
    }
    return Promise.all(work).then(() => undefined);
  }

  // ------------------------------------------------------------------ metrics

  private flushDrops(): void {
    if (this.droppedSampledOut > 0) this.settings.telemetry.drop(this.id, 'sampled_out', this.droppedSampledOut);
    if (this.droppedPolicy > 0) this.settings.telemetry.drop(this.id, 'policy_drop', this.droppedPolicy);
    this.droppedSampledOut = 0;
    this.droppedPolicy = 0;
  }

  private flushMetrics(): void {
    this.flushDrops();
    const tr = this.policyTraces;
    const sp = this.policySpans;
    for (let i = 0; i < tr.length; i++) {
      if (tr[i] === 0) continue;
      this.policyTraceChildren[i]?.inc(tr[i]);
      this.policySpanChildren[i]?.inc(sp[i]);
      tr[i] = 0;
      sp[i] = 0;
    }
    if (this.evalErrors > 0) {
      this.m.evalErrors.inc(this.evalErrors);
      this.evalErrors = 0;
    }
  }

  private updateGauges(): void {
    this.m.traces.set(this.store.traceCount);
    this.m.spans.set(this.store.spanCount);
    this.m.bytes.set(this.store.bytes + this.retryBytes);
    if (this.dm !== undefined) {
      this.dm.tracesOnDisk.set(this.spilledIdx!.size);
      this.dm.spansOnDisk.set(this.spilledIdx!.spanCount);
      if (this.spill !== undefined) {
        this.dm.bytesOnDisk.set(this.spill.bytesUsed());
        this.dm.longest.set(Math.max(this.spill.sdb.longestWriteMs, this.spill.sdb.longestReadMs) / 1000);
      }
    }
  }
}

function sansLive(cfg: TailSamplingConfig): string {
  const rest: Record<string, unknown> = { ...cfg };
  for (const k of TAIL_SAMPLING_LIVE_SETTINGS) delete rest[k];
  return JSON.stringify(rest);
}
