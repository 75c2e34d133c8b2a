/**
 * The disk spill of pending traces (`buffer.disk`): when memory passes its
 * high-water mark the oldest undecided traces move to a SQLite file
 * (storage/spill.ts), keeping a small entry each in memory (SpillIndex); at
 * its due time a trace is read back, merged with the spans that arrived
 * since, and decided as if it had stayed in memory. Log records held with a
 * trace (LogHold) are written with its spans, in the same body and disk
 * budget, and put back in the hold when it is read back; at shutdown the
 * records held for traces already on disk are written too, so they survive a
 * restart with their trace. Every storage call runs
 * on the event loop, so batches are adapted to take a few ms each.
 */
import type { CreateSettings } from '../../collector/component.js';
import type { Span } from '../../collector/pdata/spans.js';
import type { LogRecord } from '../../collector/pdata/logs.js';
import type { LogHold } from './logs.js';
import type { Counter, Gauge } from '../../collector/telemetry/metrics.js';
import { TraceSpillStore, type SpillTrace } from '../../storage/spill.js';
import { DiskFullError, StorageError } from '../../storage/db.js';
import { claimFile, fileNameFor, releaseFile } from '../../storage/registry.js';
import { PendingTrace, SPAN_OVERHEAD_BYTES, type TraceStore } from './store.js';
import { SpillIndex } from './spill_index.js';
import type { DecisionSchedule } from './schedule.js';
import { METRIC_PREFIX, type DecisionReason, type TickWarnings } from './metrics.js';

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
export const SPILL_HIGH_WATER = 0.9;
/** Spilled traces read back per slice of a tick before yielding to the event loop (adapted like spill batches). */
const READ_BACK_MIN = 16;
const READ_BACK_MAX = 256;
/** After a disk error (no space, I/O), spilling is paused this long before it is tried again. */
const SPILL_RETRY_MS = 1000;

/** first_seen_ms and due_ms of a row that only adds log records to a trace already on disk (min() over rows ignores it). */
const NEVER_MS = Number.MAX_SAFE_INTEGER;

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

/** What the spill needs from the processor: deciding a trace whose time has come. */
export type DecideFn = (t: PendingTrace, reason: DecisionReason, now: number, out: Span[]) => void;

export interface DiskSpillOptions {
  directory: string;
  maxBytes: number;
  sync: 'normal' | 'full';
  /** Memory budget (buffer.max_bytes) and trace bound (num_traces) that spilling keeps memory under. */
  memoryMaxBytes: number;
  numTraces: number;
  /** buffer.disk.restore_grace: spilled traces found at start are decided no earlier than start + this. */
  restoreGraceMs: number;
}

type C = ReturnType<Counter['labels']>;
type G = ReturnType<Gauge['labels']>;

export class DiskSpill {
  private readonly file: string;
  private spill: TraceSpillStore | undefined;
  /** Index of spilled traces. */
  private readonly idx = new SpillIndex();
  /** After a start that found traces on disk: no spilled trace is decided before this time. */
  private restoredUntil = 0;
  /** The spill file is held by the previous pipeline (reload): memory-only until it is released. */
  private waitingForFile = false;
  private pausedUntil = 0;
  /** The read-back part of the running tick (shutdown waits for it). */
  private tickWork: Promise<void> | undefined;
  private readErrorLogged = false;
  private batchBytes = 256 * 1024;
  private readBackSlice = 128;
  private readonly m: {
    spilledTraces: C;
    spilledSpans: C;
    spilledBytes: C;
    spilledLogs: C;
    readLogs: C;
    readTraces: C;
    readSpans: C;
    errors: Record<SpillErrorKind, C>;
    tracesOnDisk: G;
    spansOnDisk: G;
    bytesOnDisk: G;
    longest: G;
  };

  constructor(
    private readonly settings: CreateSettings,
    private readonly opts: DiskSpillOptions,
    private readonly store: TraceStore,
    private readonly schedule: DecisionSchedule,
    private readonly warnings: TickWarnings,
    private readonly logs: LogHold,
  ) {
    this.file = fileNameFor('spill', settings.id);
    const t = settings.telemetry;
    const id = settings.id;
    const P = METRIC_PREFIX;
    const errors = t.counter(P + 'spill_errors_total', 'Failed spill writes and read-backs, by kind (max_bytes, enospc, io, read).', ['processor', 'kind']);
    this.m = {
      spilledTraces: t.counter(P + 'spilled_traces_total', 'Pending traces (or parts of them) moved from memory to the spill file.', ['processor']).labels(id),
      spilledSpans: t.counter(P + 'spilled_spans_total', 'Spans moved from memory to the spill file.', ['processor']).labels(id),
      spilledBytes: t.counter(P + 'spilled_bytes_total', 'Encoded span and log record bytes moved to the spill file.', ['processor']).labels(id),
      spilledLogs: t.counter(P + 'spilled_log_records_total', 'Log records held with their trace moved to the spill file.', ['processor']).labels(id),
      readLogs: t.counter(P + 'read_back_log_records_total', 'Spilled log records read back with their trace.', ['processor']).labels(id),
      readTraces: t.counter(P + 'read_back_traces_total', 'Spilled traces read back for their decision.', ['processor']).labels(id),
      readSpans: t.counter(P + 'read_back_spans_total', 'Spilled spans read back for their decision.', ['processor']).labels(id),
      errors: {
        max_bytes: errors.labels(id, 'max_bytes'),
        enospc: errors.labels(id, 'enospc'),
        io: errors.labels(id, 'io'),
        read: errors.labels(id, 'read'),
      },
      tracesOnDisk: t.gauge(P + 'sampling_traces_on_disk', 'Pending traces with spans in the spill file.', ['processor']).labels(id),
      spansOnDisk: t.gauge(P + 'sampling_spans_on_disk', 'Pending spans in the spill file.', ['processor']).labels(id),
      bytesOnDisk: t.gauge(P + 'sampling_bytes_on_disk', 'Bytes the spill file holds for pending traces (bodies and headers).', ['processor']).labels(id),
      longest: t
        .gauge('sidecar_storage_longest_call_seconds', 'Longest single storage call so far (it blocked the event loop this long).', ['component', 'file'])
        .labels(id, this.file),
    };
  }

  /** Memory bytes above which a spill batch is written. */
  get relieveAt(): number {
    return Math.floor(this.opts.memoryMaxBytes * SPILL_HIGH_WATER);
  }

  /** Traces with spans on disk. */
  get size(): number {
    return this.idx.size;
  }

  /** The spill file is open (or is being waited for). */
  get needsOpen(): boolean {
    return this.spill === undefined && !this.waitingForFile;
  }

  /**
   * Whether a trace starting in memory continues one on disk: undefined when
   * it does not, else whether its root span is on disk.
   */
  continues(id: string): boolean | undefined {
    if (this.idx.size > 0 && this.idx.get(id)) return this.idx.lastRoot;
    return undefined;
  }

  /** A trace about to be decided: when part of it is on disk, the whole trace (disk part first); else `mem` itself. */
  whole(mem: PendingTrace): PendingTrace {
    if (this.idx.size > 0 && this.idx.remove(mem.id)) return this.readBack(mem);
    return mem;
  }

  /**
   * Opens the spill file and indexes the traces found in it (a restart: they
   * keep their arrival and due times). At start a bad directory throws (the
   * collector fails to start with the reason); a file still held by the
   * previous pipeline of a reload is taken over on a later tick.
   */
  open(atStart: boolean): void {
    const d = this.opts;
    if (!claimFile(d.directory, this.file)) {
      if (!this.waitingForFile) {
        this.waitingForFile = true;
        this.settings.logger.info(
          { component: this.settings.id, directory: d.directory, file: this.file },
          'tail_sampling: spill file is still held by the previous pipeline; memory-only until it is released',
        );
      }
      return;
    }
    let store: TraceSpillStore;
    try {
      store = TraceSpillStore.open({
        directory: d.directory,
        file: this.file,
        sync: d.sync,
        maxBytes: d.maxBytes,
        logger: this.settings.logger,
        telemetry: this.settings.telemetry,
        component: this.settings.id,
        clock: this.settings.clock,
      });
    } catch (err) {
      releaseFile(d.directory, this.file);
      if (atStart) throw err;
      this.waitingForFile = false;
      this.settings.logger.error({ component: this.settings.id, err: (err as Error).message }, 'tail_sampling: cannot open the spill file; running memory-only');
      return;
    }
    this.waitingForFile = false;
    this.spill = store;
    const idx = this.idx;
    let spans = 0;
    for (const p of store.pendingIndex()) {
      idx.add(p.traceId, p.spanCount, false, false, p.lastSeq);
      spans += p.spanCount;
    }
    if (idx.size > 0) {
      // A restart: their wait mostly passed while we were down, and the senders are about to re-send
      // what they queued meanwhile. Deciding them on the first tick would split those traces.
      if (atStart) this.restoredUntil = this.settings.clock.now() + d.restoreGraceMs; // a reload's new pipeline decides on schedule
      this.settings.logger.info(
        { component: this.settings.id, traces: idx.size, spans, bytes: store.bytesUsed(), grace_ms: d.restoreGraceMs },
        'tail_sampling: resuming pending traces found on disk; deciding them after the restore grace',
      );
    }
  }

  /**
   * A tick's disk work: takes the file over once the previous pipeline let it
   * go, then decides the spilled traces whose due time has come.
   */
  async tick(now: number, out: Span[], forward: (spans: Span[]) => void, decide: DecideFn): Promise<void> {
    if (this.waitingForFile) this.open(false);
    if (this.spill !== undefined && this.idx.size > 0) {
      const p = this.decideDue(now, out, forward, decide);
      this.tickWork = p;
      await p;
      this.tickWork = undefined;
    }
  }

  /** Memory is over the high-water mark (or num_traces): spill batches of the oldest traces while it is over its budget. */
  relieve(now: number): void {
    if (this.spill === undefined || now < this.pausedUntil) return;
    const store = this.store;
    let ok = this.spillOldest(now, false);
    while (ok && (store.traceCount > this.opts.numTraces || store.bytes + this.logs.bytes > this.opts.memoryMaxBytes)) ok = this.spillOldest(now, false);
    // Records that arrived for traces already on disk are what is left in memory: they follow their trace.
    ok = now >= this.pausedUntil;
    while (ok && store.bytes + this.logs.bytes > this.opts.memoryMaxBytes) ok = this.spillHeldLogs(now, false);
  }

  /**
   * Writes the oldest in-memory traces (about batchBytes of spans) in
   * one transaction and drops them from memory, keeping their index entry.
   * Nothing changes when the write fails. False when nothing was written.
   */
  private spillOldest(now: number, shuttingDown: boolean): boolean {
    const spill = this.spill;
    if (spill === undefined) return false;
    const batch: SpillTrace[] = [];
    const traces: PendingTrace[] = [];
    const idx = this.idx;
    let bytes = 0;
    let logCount = 0;
    for (const t of this.store.values()) {
      if (t.done) continue;
      const logs = this.logs.peek(t.id);
      if (t.spanCount === 0 && logs === undefined) continue;
      const prevSeq = idx.size > 0 && idx.get(t.id) ? idx.lastSeq : 0;
      batch.push({ traceId: t.id, firstSeenMs: t.firstMs, dueMs: this.schedule.dueMs(t), spans: t.spans, logs, prevSeq });
      traces.push(t);
      bytes += t.encodedBytes;
      if (logs !== undefined) {
        for (let k = 0; k < logs.length; k++) bytes += logs[k].len;
        logCount += logs.length;
      }
      if (bytes >= this.batchBytes) break;
    }
    if (batch.length === 0) return false;
    const t0 = performance.now();
    let seqs: number[];
    try {
      seqs = spill.spill(batch);
      this.batchBytes = adapt(this.batchBytes, performance.now() - t0, SPILL_BATCH_MIN, SPILL_BATCH_MAX);
    } catch (err) {
      this.failed(err, now, shuttingDown);
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
      if (logCount > 0) this.logs.take(t.id);
    }
    this.schedule.left(traces.length);
    this.m.spilledTraces.inc(traces.length);
    this.m.spilledSpans.inc(spans);
    this.m.spilledBytes.inc(bytes);
    this.m.spilledLogs.inc(logCount);
    return true;
  }

  /**
   * Writes (about batchBytes of) the log records held for traces that are
   * only on disk, as extra rows of those traces, and drops them from memory.
   * Their rows are never due by themselves (the trace's first row carries its
   * due time): they are read back with the trace. False when nothing was written.
   */
  private spillHeldLogs(now: number, shuttingDown: boolean): boolean {
    const spill = this.spill;
    if (spill === undefined || this.idx.size === 0) return false;
    const batch: SpillTrace[] = [];
    let bytes = 0;
    let count = 0;
    for (const id of this.logs.traceIds()) {
      if (this.store.get(id) !== undefined || !this.idx.get(id)) continue;
      const logs = this.logs.peek(id)!;
      batch.push({ traceId: id, firstSeenMs: NEVER_MS, dueMs: NEVER_MS, spans: [], logs, prevSeq: this.idx.lastSeq });
      for (let k = 0; k < logs.length; k++) bytes += logs[k].len;
      count += logs.length;
      if (bytes >= this.batchBytes) break;
    }
    if (batch.length === 0) return false;
    let seqs: number[];
    try {
      seqs = spill.spill(batch);
    } catch (err) {
      this.failed(err, now, shuttingDown);
      return false;
    }
    for (let i = 0; i < batch.length; i++) {
      this.idx.add(batch[i].traceId, 0, false, false, seqs[i]);
      this.logs.take(batch[i].traceId);
    }
    this.m.spilledLogs.inc(count);
    this.m.spilledBytes.inc(bytes);
    return true;
  }

  private failed(err: unknown, now: number, shuttingDown: boolean): void {
    let kind: SpillErrorKind;
    if (err instanceof DiskFullError) kind = err.reason;
    else kind = 'io';
    this.m.errors[kind].inc();
    // The budget frees up as traces are decided: try again next tick. No space / I/O: after a pause.
    this.pausedUntil = now + (kind === 'max_bytes' ? this.schedule.tickMs : SPILL_RETRY_MS);
    if (kind !== 'max_bytes' && this.warnings.first()) {
      this.settings.logger.warn(
        { component: this.settings.id, kind, err: (err as Error).message, shuttingDown },
        'tail_sampling: spilling to disk failed; memory-only behaviour until it works again',
      );
    }
    if (!(err instanceof DiskFullError) && !(err instanceof StorageError)) throw err;
  }

  /**
   * The trace has spans on disk (its index entry was just removed, fields in
   * idx.last*): reads them back in one query and rebuilds the trace
   * from the disk part (arrival order) followed by the in-memory part.
   */
  private readBack(mem: PendingTrace): PendingTrace {
    const idx = this.idx;
    const onDisk = idx.lastSpans;
    const root = idx.lastRoot;
    let disk: Span[] = [];
    let diskLogs: LogRecord[] = [];
    if (this.spill !== undefined) {
      try {
        disk = this.spill.take(mem.id, idx.lastSeq > 0 ? idx.lastSeq : undefined);
        diskLogs = this.spill.lastLogs;
        if (this.spill.lastLogsLost > 0) this.settings.telemetry.drop(this.settings.id, 'storage_error', this.spill.lastLogsLost, 'logs');
      } catch (err) {
        this.m.errors.read.inc();
        if (!this.readErrorLogged) {
          this.readErrorLogged = true;
          this.settings.logger.error({ component: this.settings.id, err: (err as Error).message }, 'tail_sampling: a spilled trace could not be read back (further errors are only counted)');
        }
      }
    }
    if (disk.length < onDisk) {
      // Unreadable rows, or a file that was moved aside: those spans are gone.
      this.settings.telemetry.drop(this.settings.id, 'storage_error', onDisk - disk.length);
    }
    this.m.readTraces.inc();
    this.m.readSpans.inc(disk.length);
    // Its log records wait in the hold again, before those that arrived since: the decision takes them from there.
    this.m.readLogs.inc(diskLogs.length);
    this.logs.restore(mem.id, diskLogs);
    // The first-seen time of the disk part is kept in the file (read by take).
    const t = new PendingTrace(mem.id, disk.length + diskLogs.length > 0 ? Math.min(this.spill!.lastFirstSeenMs, mem.firstMs) : mem.firstMs);
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
  private async decideDue(now: number, out: Span[], forward: (spans: Span[]) => void, decide: DecideFn): Promise<void> {
    if (now < this.restoredUntil) return; // restore grace after a restart (see open)
    const idx = this.idx;
    for (;;) {
      const spill = this.spill;
      if (spill === undefined || idx.size === 0) return;
      let ids: string[];
      try {
        ids = spill.dueBefore(now, this.readBackSlice);
      } catch (err) {
        this.failed(err, now, false);
        return;
      }
      if (ids.length === 0) return;
      for (const id of ids) {
        // Not indexed (should not happen): index it so its spans are read back, not lost.
        if (!idx.get(id)) idx.add(id, 0, false);
        decide(this.store.get(id) ?? new PendingTrace(id, now), idx.lastByRoot ? 'root_received' : 'decision_wait', now, out);
      }
      const t0 = performance.now();
      try {
        spill.flush();
        this.readBackSlice = adapt(this.readBackSlice, performance.now() - t0, READ_BACK_MIN, READ_BACK_MAX);
      } catch (err) {
        this.failed(err, now, false);
      }
      if (ids.length < this.readBackSlice) return;
      if (out.length > 0) forward(out.splice(0));
      await new Promise<void>((r) => setImmediate(r));
    }
  }

  /**
   * Shutdown: writes every trace still in memory to disk (within the time
   * given), so the next start decides them on their original schedule
   * instead of deciding partial traces now.
   */
  async spillAll(now: number, timeoutMs: number): Promise<void> {
    if (this.tickWork !== undefined) await this.tickWork.catch(() => undefined);
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
    // Records that arrived for traces already on disk: written to their trace, so they survive the restart too.
    const logs0 = this.logs.count;
    while (this.logs.count > 0 && performance.now() - t0 < budget) if (!this.spillHeldLogs(now, true)) break;
    const logs = logs0 - this.logs.count;
    const left = this.store.traceCount;
    this.settings.logger.info(
      { component: this.settings.id, traces, spans, logs, left, onDisk: this.idx.size, ms: Math.round(performance.now() - t0) },
      left === 0
        ? 'tail_sampling: wrote pending traces to the spill file; the next start decides them on schedule'
        : 'tail_sampling: could not write every pending trace to disk; the rest is decided now',
    );
  }

  close(): void {
    if (this.spill === undefined) return;
    try {
      this.spill.close();
    } catch (err) {
      this.settings.logger.error({ component: this.settings.id, err: (err as Error).message }, 'tail_sampling: error closing the spill file');
    }
    this.spill = undefined;
    releaseFile(this.opts.directory, this.file);
  }

  updateGauges(): void {
    this.m.tracesOnDisk.set(this.idx.size);
    this.m.spansOnDisk.set(this.idx.spanCount);
    if (this.spill !== undefined) {
      this.m.bytesOnDisk.set(this.spill.bytesUsed());
      this.m.longest.set(Math.max(this.spill.sdb.longestWriteMs, this.spill.sdb.longestReadMs) / 1000);
    }
  }
}
