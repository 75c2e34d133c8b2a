/**
 * The trace buffer, behind a small interface so that a store which spills
 * span bytes to disk (a later issue: SQLite overflow) can replace the
 * in-memory one without touching the processor.
 *
 * Contract:
 * - `create(id, now)` starts a trace `get` does not know; `append(t, span)` adds a span to it.
 * - `take(id)` removes a trace and hands back all its spans (a spilling store
 *   reads spilled spans back here).
 * - `oldest()` is the undecided trace whose first span arrived first; the
 *   processor decides it early when `traceCount` or `bytes` is over budget.
 * - `bytes` counts only what is held in memory: a spilling store that moved
 *   spans to disk reports less, so the processor decides early only when the
 *   store itself has no room left.
 *
 * Memory accounting: a buffered span costs its encoded length (`span.len`,
 * its copy in the store's SpanPool) plus SPAN_OVERHEAD_BYTES for the Span
 * index object and its slot in the trace's array; a trace costs
 * TRACE_OVERHEAD_BYTES for its entry (map entry, PendingTrace, arrays, one
 * bucket slot). Resource and scope headers are shared by many spans and are
 * not counted. The constants are for Node 20 on 64-bit (object header plus 8
 * bytes a field, doubles boxed), checked against a heap snapshot of the spill
 * bench (`--heap-snapshot`).
 */
import type { Span } from '../../collector/pdata/spans.js';
import { SpanPool } from './span_pool.js';

/** Span index object (12 fields: 120 B, two boxed doubles: 32 B) plus its array slot. */
export const SPAN_OVERHEAD_BYTES = 160;
/**
 * PendingTrace (120 B) and its three boxed doubles (48 B), the trace id string
 * (48 B), the spans array (32 B) and the slack of its backing store (it grows
 * to 17 slots at the first push: 56 B at 10 spans, more for fewer), the map
 * entry (~40 B) and bucket slot: ~380 B in a heap snapshot at 10 spans a trace
 * (240 B before, which undercounted ~140 B a trace).
 */
export const TRACE_OVERHEAD_BYTES = 384;

export class PendingTrace {
  readonly id: string;
  spans: Span[];
  spanCount: number;
  /** Encoded bytes of the buffered spans (sum of span.len). */
  encodedBytes: number;
  /** Accounted bytes (encoded + overheads). */
  bytes: number;
  /** Clock time (ms) the first span arrived. */
  readonly firstMs: number;
  minStartNs: number;
  maxEndNs: number;
  hasRoot: boolean;
  /** Decision bucket the trace is currently scheduled in. */
  bucket: number;
  /** True when the current schedule comes from decision_wait_after_root_received. */
  dueByRoot: boolean;
  /** True once decided (stale bucket entries skip it). */
  done: boolean;

  constructor(id: string, nowMs: number) {
    this.id = id;
    this.spans = [];
    this.spanCount = 0;
    this.encodedBytes = 0;
    this.bytes = TRACE_OVERHEAD_BYTES;
    this.firstMs = nowMs;
    this.minStartNs = Infinity;
    this.maxEndNs = -Infinity;
    this.hasRoot = false;
    this.bucket = 0;
    this.dueByRoot = false;
    this.done = false;
  }
}

export interface TraceStore {
  readonly traceCount: number;
  /** Accounted bytes held in memory. */
  readonly bytes: number;
  readonly spanCount: number;
  get(id: string): PendingTrace | undefined;
  /** Starts a trace that `get` does not know. */
  create(id: string, nowMs: number): PendingTrace;
  /**
   * Appends a span to a trace of this store. The store may file a copy of
   * the span (then `t.spans` holds the copy; the span given is not changed).
   */
  append(t: PendingTrace, span: Span): void;
  /**
   * A span taken out of this store (by `take`, or a trace handed to a spill)
   * will not be read again at `buf`, the buffer it pointed into while stored:
   * the store may reuse that memory. Once per span; a buffer the store does
   * not own is ignored. `done`: the span object itself is referenced nowhere
   * any more (not handed on), and the store may reuse it.
   */
  release(buf: Uint8Array, done?: Span): void;
  /** Removes a trace and returns it with all its spans. */
  take(id: string): PendingTrace | undefined;
  /** Puts a taken trace back, with its spans (a trace held for a peer's decision); `get` must not know its id. */
  put(t: PendingTrace): void;
  /** The undecided trace that arrived first. */
  oldest(): PendingTrace | undefined;
  /** All undecided traces, oldest first (shutdown). */
  values(): IterableIterator<PendingTrace>;
}

/**
 * Keeps everything in a Map (insertion order = arrival order of each trace's
 * first span). With `copySpans`, spans are filed as copies whose bytes live in
 * a SpanPool (see span_pool.ts): memory is reused as soon as spans leave,
 * which keeps a tight budget tight (disk spill). Without it, buffered spans
 * stay in their request buffers: with a large in-memory budget and no spill,
 * copies cost more than they save (hold-600k: CPU 10.2-10.3 -> 10.7-11.5 % of
 * a core, RSS max 585-590 -> 620-624 MiB; freed request buffers leave holes
 * the 64 KiB slabs cannot use). With disk configured that cost is paid even
 * while nothing spills (tail_sampling README, "Memory while spilling").
 */
export class MemoryTraceStore implements TraceStore {
  private readonly traces = new Map<string, PendingTrace>();
  private readonly pool: SpanPool | undefined;

  constructor(opts: { copySpans?: boolean } = {}) {
    this.pool = opts.copySpans === true ? new SpanPool() : undefined;
  }
  private _bytes = 0;
  private _spans = 0;

  get traceCount(): number {
    return this.traces.size;
  }
  get bytes(): number {
    return this._bytes;
  }
  get spanCount(): number {
    return this._spans;
  }

  get(id: string): PendingTrace | undefined {
    return this.traces.get(id);
  }

  create(id: string, nowMs: number): PendingTrace {
    const t = new PendingTrace(id, nowMs);
    this.traces.set(id, t);
    this._bytes += t.bytes;
    return t;
  }

  append(t: PendingTrace, given: Span): void {
    // One id string per trace, not one per span; a copy also lets the request buffer go.
    let span = given;
    if (this.pool !== undefined) span = this.pool.file(given, t.id);
    else span.traceId = t.id;
    t.spans.push(span);
    t.spanCount++;
    t.encodedBytes += span.len;
    const cost = span.len + SPAN_OVERHEAD_BYTES;
    t.bytes += cost;
    this._bytes += cost;
    this._spans++;
    if (span.startNs < t.minStartNs) t.minStartNs = span.startNs;
    if (span.endNs > t.maxEndNs) t.maxEndNs = span.endNs;
  }

  release(buf: Uint8Array, done?: Span): void {
    this.pool?.release(buf, done);
  }

  take(id: string): PendingTrace | undefined {
    const t = this.traces.get(id);
    if (t === undefined) return undefined;
    this.traces.delete(id);
    this._bytes -= t.bytes;
    this._spans -= t.spanCount;
    return t;
  }

  put(t: PendingTrace): void {
    this.traces.set(t.id, t);
    this._bytes += t.bytes;
    this._spans += t.spanCount;
  }

  oldest(): PendingTrace | undefined {
    for (const t of this.traces.values()) return t;
    return undefined;
  }

  values(): IterableIterator<PendingTrace> {
    return this.traces.values();
  }
}
