/**
 * TraceSpillStore: pending traces' spans kept on disk while they wait for a
 * sampling decision, so the in-memory buffer can stay small.
 *
 * Layout (one SQLite file, see db.ts), version 2:
 *   headers(id, hash, bytes)      resource and scope headers, deduplicated by SHA-256
 *   spills(seq, trace_id, prev, first_seen_ms, due_ms, span_count, bytes)
 *                                 one row per spill of a trace; `prev` is the seq of
 *                                 the trace's previous spill (0 for its first), indexed on due_ms
 *   bodies(seq, body)             the spill's spans: a compact frame
 *
 * Every insert appends (seq only grows) and the due index grows at its end,
 * so a spill dirties a handful of pages whatever the file size. Version 1 keyed
 * rows by trace id: each spill touched pages all over two random-key b-trees,
 * so the WAL (and every checkpoint) carried several times the span bytes.
 * Finding a trace's rows takes the seq of its last spill, which the caller
 * keeps in its in-memory index (`spill()` returns it, `pendingIndex()` rebuilds
 * it); without it, a scan of the spills table finds it (tests, repairs).
 *
 * A body is: version byte (1), varint run count, then per run of spans that share
 * a scope: varint resource header id, varint scope header id, varint span count,
 * and per span varint length + the span's encoded bytes, verbatim. Reading back
 * points Span objects straight into the row's buffer (no copy) and re-indexes
 * them with `indexSpan`, so they are byte-identical to what was spilled.
 * A spill that carries log records held with the trace writes body version 2:
 * version byte (2), varint log record count, the span runs as in version 1,
 * then the log records' runs in the same run format (re-indexed with
 * `indexLogRecord`). A spill without log records still writes version 1, so
 * the span path is unchanged and a file written before log records were
 * spilled (all version 1 bodies, same tables) is read as it is.
 *
 * Deletes (after `take` / `delete`) are applied in batches: in the next spill
 * transaction or by `flush()` (scheduled at most every `deleteFlushMs`). A trace
 * taken shortly before a crash can therefore come back after restart: it is
 * decided again (a possible duplicate, never a loss).
 */
import { createHash } from 'node:crypto';
import { ResourceRef, ScopeRef, Span, indexSpan } from '../collector/pdata/spans.js';
import { LogRecord, indexLogRecord } from '../collector/pdata/logs.js';
import type { Logger } from 'pino';
import type { Telemetry, Counter, Gauge } from '../collector/telemetry/metrics.js';
import { systemClock, type Clock } from '../collector/component.js';
import type Database from 'better-sqlite3';
import { DiskFullError, openStore, StorageDb, StorageError, type SyncMode } from './db.js';

export interface SpillTrace {
  /** Lowercase hex, 32 characters (Span.traceId). */
  traceId: string;
  /** When the first span of the trace arrived (ms since epoch). */
  firstSeenMs: number;
  /** When its sampling decision is due (ms since epoch). */
  dueMs: number;
  spans: readonly Span[];
  /** Log records held with the trace (written with its spans, in the same body and budget). */
  logs?: readonly LogRecord[];
  /**
   * Seq of the trace's last spill still on disk (what `spill()` returned for
   * it), 0 when it has none. Undefined: the store looks it up (a table scan).
   */
  prevSeq?: number;
}

export interface PendingTrace {
  traceId: string;
  firstSeenMs: number;
  dueMs: number;
  spanCount: number;
  /** Bytes its spill bodies take on disk. */
  bytes: number;
  /** Seq of its last spill (pass it to take / delete / the next spill). */
  lastSeq: number;
}

export interface TraceSpillStoreOptions {
  directory: string;
  /** Default 'spill.sqlite'. */
  file?: string;
  sync: SyncMode;
  /** Budget for stored bodies and headers; a spill beyond it throws DiskFullError('max_bytes'). */
  maxBytes: number;
  logger: Logger;
  telemetry: Telemetry;
  component: string;
  clock?: Clock;
  /** How long after a disk-full failure spills fail fast without touching SQLite (default 1000 ms). */
  diskFullRetryMs?: number;
  /** Pending deletes are flushed at most this long after a take (default 200 ms; 0 = only by flush()/spill). */
  deleteFlushMs?: number;
  cacheKiB?: number;
  checkOnOpen?: boolean;
}

export const SPILL_SCHEMA = {
  store: 'spill',
  version: 2,
  create: [
    'CREATE TABLE headers (id INTEGER PRIMARY KEY, hash BLOB NOT NULL UNIQUE, bytes BLOB NOT NULL)',
    'CREATE TABLE spills (seq INTEGER PRIMARY KEY, trace_id BLOB NOT NULL, prev INTEGER NOT NULL, first_seen_ms INTEGER NOT NULL, due_ms INTEGER NOT NULL, span_count INTEGER NOT NULL, bytes INTEGER NOT NULL)',
    'CREATE INDEX spills_due ON spills (due_ms)',
    'CREATE TABLE bodies (seq INTEGER PRIMARY KEY, body BLOB NOT NULL)',
  ],
};

const BODY_VERSION = 1;
/** A body that also carries log records (see the layout above). */
const BODY_VERSION_LOGS = 2;

/** What a body holds: a span or a log record, under a shared scope. */
interface Item {
  buf: Uint8Array;
  off: number;
  len: number;
  scope: ScopeRef;
}

/** Header ids of one ScopeRef, valid for one header generation. */
interface ScopeIds {
  gen: number;
  res: number;
  scope: number;
}

interface Prepared {
  insHeader: Database.Statement;
  insSpill: Database.Statement;
  insBody: Database.Statement;
  selRow: Database.Statement;
  selMeta: Database.Statement;
  selLastSeq: Database.Statement;
  delSpill: Database.Statement;
  delBody: Database.Statement;
  selDue: Database.Statement;
  selIndex: Database.Statement;
  clearHeaders: Database.Statement;
}

function varintLen(n: number): number {
  let k = 1;
  while (n >= 0x80) {
    n = Math.floor(n / 128);
    k++;
  }
  return k;
}

function putVarint(out: Buffer, p: number, n: number): number {
  while (n >= 0x80) {
    out[p++] = (n & 0x7f) | 0x80;
    n = Math.floor(n / 128);
  }
  out[p++] = n;
  return p;
}

export class TraceSpillStore {
  readonly sdb: StorageDb;
  readonly maxBytes: number;
  private readonly db: Database.Database;
  private readonly st: Prepared;
  private readonly clock: Clock;
  private readonly logger: Logger;
  private readonly component: string;
  private readonly diskFullRetryMs: number;
  private readonly deleteFlushMs: number;
  private readonly spillTxn: (traces: readonly SpillTrace[], bodies: Buffer[], tids: Buffer[], seqs: number[]) => number;
  private readonly flushTxn: () => void;

  // header dedup: content hash -> id, id -> bytes; objects -> ids per generation
  private readonly headerIdByHash = new Map<string, number>();
  private readonly headerBytes = new Map<number, Uint8Array>();
  private readonly idsOfScope = new WeakMap<ScopeRef, ScopeIds>();
  private readonly idOfHeader = new WeakMap<Uint8Array, { gen: number; id: number }>();
  private readonly resourceById = new Map<number, ResourceRef>();
  private readonly scopeByIds = new Map<string, ScopeRef>();
  private gen = 0;
  private headersUsed = 0;
  private nextHeaderId = 1;
  /** Headers first seen by the spill in progress: inserted by its transaction. */
  private newHeaders: Array<{ id: number; hash: Buffer; key: string; bytes: Uint8Array }> = [];

  private used = 0;
  private traces = 0;
  /** Taken or deleted but not yet deleted on disk: hex trace id -> seqs of its rows. */
  private readonly pendingDeletes = new Map<string, number[]>();
  private pendingDeleteRows = 0;
  private flushTimer: NodeJS.Timeout | undefined = undefined;
  private diskFullUntil = 0;
  private readErrorLogged = false;

  private readonly mSpilledSpans: ReturnType<Counter['labels']>;
  private readonly mReadSpans: ReturnType<Counter['labels']>;
  private readonly mRefused: ReturnType<Counter['labels']>;
  private readonly mReadErrors: ReturnType<Counter['labels']>;
  private readonly gBytes: ReturnType<Gauge['labels']>;
  private readonly gTraces: ReturnType<Gauge['labels']>;

  static open(opts: TraceSpillStoreOptions): TraceSpillStore {
    return openStore(opts, 'spill.sqlite', SPILL_SCHEMA, (sdb, file) => new TraceSpillStore(sdb, opts, file));
  }

  private constructor(sdb: StorageDb, opts: TraceSpillStoreOptions, file: string) {
    this.sdb = sdb;
    this.db = sdb.db;
    this.maxBytes = opts.maxBytes;
    this.clock = opts.clock ?? systemClock;
    this.logger = opts.logger;
    this.component = opts.component;
    this.diskFullRetryMs = opts.diskFullRetryMs ?? 1000;
    this.deleteFlushMs = opts.deleteFlushMs ?? 200;
    const db = this.db;
    this.st = {
      insHeader: db.prepare('INSERT INTO headers (id, hash, bytes) VALUES (?, ?, ?)'),
      insSpill: db.prepare('INSERT INTO spills (trace_id, prev, first_seen_ms, due_ms, span_count, bytes) VALUES (?, ?, ?, ?, ?, ?)'),
      insBody: db.prepare('INSERT INTO bodies (seq, body) VALUES (?, ?)'),
      selRow: db.prepare('SELECT s.trace_id, s.prev, b.body, s.first_seen_ms FROM spills s JOIN bodies b ON b.seq = s.seq WHERE s.seq = ?').raw(),
      selMeta: db.prepare('SELECT trace_id, prev, bytes FROM spills WHERE seq = ?').raw(),
      selLastSeq: db.prepare('SELECT max(seq) FROM spills WHERE trace_id = ?').pluck(),
      delSpill: db.prepare('DELETE FROM spills WHERE seq = ?'),
      delBody: db.prepare('DELETE FROM bodies WHERE seq = ?'),
      selDue: db.prepare('SELECT trace_id FROM spills WHERE due_ms <= ? ORDER BY due_ms LIMIT ?').pluck(),
      selIndex: db.prepare('SELECT trace_id, min(first_seen_ms), min(due_ms), sum(span_count), sum(bytes), max(seq) FROM spills GROUP BY trace_id').raw(),
      clearHeaders: db.prepare('DELETE FROM headers'),
    };
    // Appends one row per trace; fills `seqs`; returns how many of the traces are new to the store.
    this.spillTxn = db.transaction((traces: readonly SpillTrace[], bodies: Buffer[], tids: Buffer[], seqs: number[]) => {
      this.applyDeletes();
      for (const h of this.newHeaders) this.st.insHeader.run(h.id, h.hash, h.bytes);
      let added = 0;
      for (let i = 0; i < traces.length; i++) {
        const t = traces[i];
        const n = t.spans.length;
        if (n === 0 && (t.logs === undefined || t.logs.length === 0)) {
          seqs[i] = t.prevSeq ?? 0;
          continue;
        }
        const prev = t.prevSeq ?? ((this.st.selLastSeq.get(tids[i]) as number | null) ?? 0);
        if (prev === 0) added++;
        const seq = Number(this.st.insSpill.run(tids[i], prev, t.firstSeenMs, t.dueMs, n, bodies[i].length).lastInsertRowid);
        this.st.insBody.run(seq, bodies[i]);
        seqs[i] = seq;
      }
      return added;
    });
    this.flushTxn = db.transaction(() => this.applyDeletes());

    const m = opts.telemetry;
    const labels = [opts.component];
    this.mSpilledSpans = m.counter('sidecar_spill_spans_written_total', 'Spans written to the spill store.', ['component']).labels(...labels);
    this.mReadSpans = m.counter('sidecar_spill_spans_read_total', 'Spans read back from the spill store.', ['component']).labels(...labels);
    const refused = m.counter('sidecar_spill_refused_spans_total', 'Spans a spill refused for lack of room, by reason (max_bytes, enospc).', ['component', 'reason']);
    this.mRefused = refused.labels(opts.component, 'max_bytes');
    this.enospcRefused = refused.labels(opts.component, 'enospc');
    this.mReadErrors = m.counter('sidecar_spill_read_errors_total', 'Spill bodies that could not be decoded.', ['component']).labels(...labels);
    this.gBytes = m.gauge('sidecar_spill_bytes', 'Bytes held in the spill store (bodies and headers).', ['component']).labels(...labels);
    this.gTraces = m.gauge('sidecar_spill_traces', 'Traces held in the spill store.', ['component']).labels(...labels);

    // Load headers and totals.
    for (const row of db.prepare('SELECT id, hash, bytes FROM headers').raw().iterate() as Iterable<[number, Buffer, Buffer]>) {
      this.headerIdByHash.set(row[1].toString('base64'), row[0]);
      this.headerBytes.set(row[0], new Uint8Array(row[2]));
      this.headersUsed += row[2].length;
      if (row[0] >= this.nextHeaderId) this.nextHeaderId = row[0] + 1;
    }
    const totals = db.prepare('SELECT count(DISTINCT trace_id), total(bytes) FROM spills').raw().get() as [number, number];
    this.traces = totals[0];
    this.used = totals[1] + this.headersUsed;
    if (this.traces === 0 && this.headerBytes.size > 0) {
      this.st.clearHeaders.run();
      this.resetHeaders();
    }
    this.updateGauges();
    if (this.traces > 0) {
      this.logger.info({ component: this.component, file: sdb.path, traces: this.traces, bytes: this.used }, 'spill store: found pending traces on disk');
    }
  }

  private readonly enospcRefused: ReturnType<Counter['labels']>;

  /** Bytes held (bodies + headers). A taken trace's bytes are released at once, before its rows are deleted. */
  bytesUsed(): number {
    return this.used;
  }

  bytesFree(): number {
    return Math.max(0, this.maxBytes - this.used);
  }

  /** Traces currently held (taken ones excluded). */
  get traceCount(): number {
    return this.traces;
  }

  /**
   * Writes each trace's spans as one body, all in one transaction. All or
   * nothing: throws DiskFullError ('max_bytes' when the budget would be
   * exceeded, 'enospc' when the disk is full; then nothing was written and the
   * spans are still the caller's). Keep one call's bytes to a few MB: the
   * transaction blocks the event loop while it runs. Returns each trace's new
   * last seq (keep it for `take` and the trace's next spill).
   */
  spill(traces: readonly SpillTrace[]): number[] {
    if (traces.length === 0) return [];
    let spanTotal = 0;
    for (let i = 0; i < traces.length; i++) spanTotal += traces[i].spans.length;
    const now = this.clock.now();
    if (now < this.diskFullUntil) {
      this.enospcRefused.inc(spanTotal);
      throw new DiskFullError('enospc', 'spill store: disk full (waiting before the next attempt)');
    }
    this.newHeaders = [];
    let bodies: Buffer[];
    let seqs: number[];
    try {
      bodies = new Array<Buffer>(traces.length);
      let bytes = 0;
      for (let i = 0; i < traces.length; i++) {
        bodies[i] = this.encodeBody(traces[i].spans, traces[i].logs);
        bytes += bodies[i].length;
      }
      let newHeaderBytes = 0;
      for (const h of this.newHeaders) newHeaderBytes += h.bytes.length;
      if (this.used + bytes + newHeaderBytes > this.maxBytes) {
        this.mRefused.inc(spanTotal);
        throw new DiskFullError('max_bytes', `spill store: ${bytes} more bytes would exceed max_bytes ${this.maxBytes} (${this.used} used)`);
      }
      const tids = new Array<Buffer>(traces.length);
      for (let i = 0; i < traces.length; i++) tids[i] = Buffer.from(traces[i].traceId, 'hex');
      seqs = new Array<number>(traces.length);
      this.sdb.describeNext('spill', traces.length + this.pendingDeleteRows, bytes);
      const added = this.sdb.write(this.spillTxn, traces, bodies, tids, seqs);
      this.used += bytes + newHeaderBytes;
      this.headersUsed += newHeaderBytes;
      this.traces += added;
      this.newHeaders = [];
      this.afterDeletesApplied();
    } catch (err) {
      this.forgetNewHeaders();
      if (err instanceof DiskFullError && err.reason === 'enospc') {
        this.diskFullUntil = now + this.diskFullRetryMs;
        this.enospcRefused.inc(spanTotal);
        this.logger.warn({ component: this.component, err: err.message }, 'spill store: disk full; spilling paused');
      }
      throw err;
    }
    this.mSpilledSpans.inc(spanTotal);
    this.updateGauges();
    return seqs;
  }

  /** When the first span of the trace last `take`n arrived (Infinity when nothing was read). */
  lastFirstSeenMs = Infinity;
  /** The log records spilled with the trace last `take`n (in spill order). */
  lastLogs: LogRecord[] = [];
  /** Log records of the trace last `take`n that were written but could not be decoded. */
  lastLogsLost = 0;

  /**
   * Reads back every span spilled for the trace (in spill order) and releases
   * it from the store: one primary-key lookup per spill of the trace (usually
   * one), from its last seq back. The on-disk delete is batched. Returns [] for
   * an unknown trace.
   */
  take(traceId: string, lastSeq?: number): Span[] {
    this.lastFirstSeenMs = Infinity;
    this.lastLogs = [];
    this.lastLogsLost = 0;
    if (this.pendingDeletes.has(traceId)) return [];
    const tid = Buffer.from(traceId, 'hex');
    const bodies: Buffer[] = [];
    const seqs: number[] = [];
    this.sdb.describeNext('take', 1, 0);
    this.sdb.read(() => {
      let seq = lastSeq ?? this.lastSeqOf(tid);
      while (seq > 0) {
        const row = this.st.selRow.get(seq) as [Buffer, number, Buffer, number] | undefined;
        if (row === undefined || !row[0].equals(tid)) break;
        if (row[3] < this.lastFirstSeenMs) this.lastFirstSeenMs = row[3];
        bodies.push(row[2]);
        seqs.push(seq);
        seq = row[1] < seq ? row[1] : 0;
      }
    });
    if (bodies.length === 0) return [];
    const out: Span[] = [];
    let bytes = 0;
    for (let i = bodies.length - 1; i >= 0; i--) {
      bytes += bodies[i].length;
      this.decodeBody(bodies[i], out, this.lastLogs);
    }
    this.markDeleted(traceId, bytes, seqs);
    this.mReadSpans.inc(out.length);
    return out;
  }

  /** Forgets a trace without reading it. Returns false when it was not held. */
  delete(traceId: string, lastSeq?: number): boolean {
    if (this.pendingDeletes.has(traceId)) return false;
    const tid = Buffer.from(traceId, 'hex');
    const seqs: number[] = [];
    let bytes = 0;
    this.sdb.read(() => {
      let seq = lastSeq ?? this.lastSeqOf(tid);
      while (seq > 0) {
        const row = this.st.selMeta.get(seq) as [Buffer, number, number] | undefined;
        if (row === undefined || !row[0].equals(tid)) break;
        bytes += row[2];
        seqs.push(seq);
        seq = row[1] < seq ? row[1] : 0;
      }
    });
    if (seqs.length === 0) return false;
    this.markDeleted(traceId, bytes, seqs);
    return true;
  }

  /** The seq of the trace's last spill, found by a scan (when the caller does not know it). */
  private lastSeqOf(tid: Buffer): number {
    return (this.st.selLastSeq.get(tid) as number | null) ?? 0;
  }

  /** Trace ids whose decision is due at or before `ms`, earliest first. */
  dueBefore(ms: number, limit: number): string[] {
    // A trace spilled in several parts has several rows; taken ones are still there until the flush.
    const want = 2 * limit + this.pendingDeleteRows;
    this.sdb.describeNext('due', want, 0);
    const rows = this.sdb.read(() => this.st.selDue.all(ms, want) as Buffer[]);
    const out: string[] = [];
    const seen = new Set<string>();
    for (let i = 0; i < rows.length && out.length < limit; i++) {
      const id = rows[i].toString('hex');
      if (this.pendingDeletes.has(id) || seen.has(id)) continue;
      seen.add(id);
      out.push(id);
    }
    return out;
  }

  /** Every pending trace, for rebuilding the in-memory index at start. */
  pendingIndex(): PendingTrace[] {
    const out: PendingTrace[] = [];
    this.sdb.read(() => {
      for (const r of this.st.selIndex.iterate() as Iterable<[Buffer, number, number, number, number, number]>) {
        const traceId = r[0].toString('hex');
        if (this.pendingDeletes.has(traceId)) continue;
        out.push({ traceId, firstSeenMs: r[1], dueMs: r[2], spanCount: r[3], bytes: r[4], lastSeq: r[5] });
      }
    });
    return out;
  }

  /** Applies pending deletes now (one transaction). */
  flush(): void {
    if (this.flushTimer !== undefined) {
      clearTimeout(this.flushTimer);
      this.flushTimer = undefined;
    }
    if (this.pendingDeletes.size === 0 || this.sdb.isClosed) return;
    try {
      this.sdb.describeNext('delete', this.pendingDeleteRows, 0);
      // Not fsynced under sync: full: lost in a power cut, these deletes only make decided traces come back.
      this.sdb.writeRelaxed(this.flushTxn);
      this.afterDeletesApplied();
    } catch (err) {
      // Deletes stay pending; they are retried with the next spill or flush.
      this.logger.warn({ component: this.component, err: (err as Error).message }, 'spill store: could not apply deletes; will retry');
      if (!(err instanceof DiskFullError)) throw err;
    }
  }

  /** Flushes pending deletes and closes the file. Idempotent. */
  close(): void {
    if (this.sdb.isClosed) return;
    try {
      this.flush();
    } finally {
      this.sdb.close();
    }
  }

  private markDeleted(traceId: string, bytes: number, seqs: number[]): void {
    this.pendingDeletes.set(traceId, seqs);
    this.pendingDeleteRows += seqs.length;
    this.used -= bytes;
    this.traces--;
    this.updateGauges();
    if (this.flushTimer === undefined && this.deleteFlushMs > 0) {
      this.flushTimer = setTimeout(() => {
        this.flushTimer = undefined;
        try {
          this.flush();
        } catch (err) {
          this.logger.error({ component: this.component, err: (err as Error).message }, 'spill store: flush failed');
        }
      }, this.deleteFlushMs);
      this.flushTimer.unref();
    }
  }

  /** Inside a transaction: deletes rows of traces taken or deleted. */
  private applyDeletes(): void {
    if (this.pendingDeletes.size === 0) return;
    for (const seqs of this.pendingDeletes.values()) {
      for (let i = 0; i < seqs.length; i++) {
        this.st.delSpill.run(seqs[i]);
        this.st.delBody.run(seqs[i]);
      }
    }
  }

  private afterDeletesApplied(): void {
    if (this.pendingDeletes.size === 0) return;
    this.pendingDeletes.clear();
    this.pendingDeleteRows = 0;
    if (this.traces === 0) {
      if (this.headerBytes.size > 0) {
        // Nothing references any header: start a new generation (keeps the table from growing forever).
        try {
          this.sdb.write(() => this.st.clearHeaders.run());
          this.resetHeaders();
        } catch {
          /* harmless: headers stay until next time */
        }
      }
    }
  }

  /** Forgets every header in memory (their rows were just deleted). */
  private resetHeaders(): void {
    this.used -= this.headersUsed;
    this.headersUsed = 0;
    this.headerIdByHash.clear();
    this.headerBytes.clear();
    this.resourceById.clear();
    this.scopeByIds.clear();
    this.gen++;
  }

  private forgetNewHeaders(): void {
    // The spill did not commit: its header rows do not exist.
    for (const h of this.newHeaders) {
      this.headerBytes.delete(h.id);
      this.headerIdByHash.delete(h.key);
    }
    if (this.newHeaders.length > 0) this.gen++; // object caches may hold the forgotten ids
    this.newHeaders = [];
  }

  private updateGauges(): void {
    this.gBytes.set(this.used);
    this.gTraces.set(this.traces);
  }

  /** Header id for bytes; a header seen for the first time is inserted by the spill's transaction. */
  private headerId(bytes: Uint8Array): number {
    const cached = this.idOfHeader.get(bytes);
    if (cached !== undefined && cached.gen === this.gen) return cached.id;
    const hash = createHash('sha256').update(bytes).digest();
    const key = hash.toString('base64');
    let id = this.headerIdByHash.get(key);
    if (id === undefined) {
      id = this.nextHeaderId++;
      const copy = bytes.slice();
      this.headerIdByHash.set(key, id);
      this.headerBytes.set(id, copy);
      this.newHeaders.push({ id, hash, key, bytes: copy });
    }
    this.idOfHeader.set(bytes, { gen: this.gen, id });
    return id;
  }

  private scopeIds(scope: ScopeRef): ScopeIds {
    let ids = this.idsOfScope.get(scope);
    if (ids === undefined || ids.gen !== this.gen) {
      ids = { gen: this.gen, res: this.headerId(scope.resource.header), scope: this.headerId(scope.header) };
      this.idsOfScope.set(scope, ids);
    }
    return ids;
  }

  private encodeBody(spans: readonly Span[], logs: readonly LogRecord[] | undefined): Buffer {
    const withLogs = logs !== undefined && logs.length > 0;
    let size = 1 + this.runsSize(spans);
    if (withLogs) size += varintLen(logs.length) + this.runsSize(logs);
    const out = Buffer.allocUnsafe(size);
    let p = 0;
    out[p++] = withLogs ? BODY_VERSION_LOGS : BODY_VERSION;
    if (withLogs) p = putVarint(out, p, logs.length);
    p = this.writeRuns(out, p, spans);
    if (withLogs) p = this.writeRuns(out, p, logs);
    if (p !== size) throw new Error(`spill body: wrote ${p} bytes, sized ${size}`);
    return out;
  }

  /** Encoded size of items as runs that share a scope (and registers their headers). */
  private runsSize(items: readonly Item[]): number {
    let size = 0;
    let runs = 0;
    let prev: ScopeRef | undefined = undefined;
    let runLen = 0;
    for (let i = 0; i < items.length; i++) {
      const s = items[i];
      if (s.scope !== prev) {
        if (prev !== undefined) size += varintLen(runLen);
        const ids = this.scopeIds(s.scope);
        size += varintLen(ids.res) + varintLen(ids.scope);
        runs++;
        runLen = 0;
        prev = s.scope;
      }
      runLen++;
      size += varintLen(s.len) + s.len;
    }
    if (prev !== undefined) size += varintLen(runLen);
    return size + varintLen(runs);
  }

  private writeRuns(out: Buffer, p: number, items: readonly Item[]): number {
    let runs = 0;
    for (let i = 0; i < items.length; i++) if (i === 0 || items[i].scope !== items[i - 1].scope) runs++;
    p = putVarint(out, p, runs);
    let i = 0;
    while (i < items.length) {
      const scope = items[i].scope;
      let j = i + 1;
      while (j < items.length && items[j].scope === scope) j++;
      const ids = this.idsOfScope.get(scope)!;
      p = putVarint(out, p, ids.res);
      p = putVarint(out, p, ids.scope);
      p = putVarint(out, p, j - i);
      for (let k = i; k < j; k++) {
        const s = items[k];
        p = putVarint(out, p, s.len);
        out.set(s.buf.subarray(s.off, s.off + s.len), p);
        p += s.len;
      }
      i = j;
    }
    return p;
  }

  private scopeFor(resId: number, scopeId: number): ScopeRef {
    const key = resId + ':' + scopeId;
    let scope = this.scopeByIds.get(key);
    if (scope === undefined) {
      let res = this.resourceById.get(resId);
      if (res === undefined) {
        const rb = this.headerBytes.get(resId);
        if (rb === undefined) throw new StorageError('ERR_STORAGE_IO', `spill store: unknown resource header ${resId}`);
        res = new ResourceRef(rb);
        this.resourceById.set(resId, res);
      }
      const sb = this.headerBytes.get(scopeId);
      if (sb === undefined) throw new StorageError('ERR_STORAGE_IO', `spill store: unknown scope header ${scopeId}`);
      scope = new ScopeRef(res, sb);
      this.scopeByIds.set(key, scope);
    }
    return scope;
  }

  private decodeBody(body: Buffer, out: Span[], logsOut: LogRecord[]): void {
    const start = out.length;
    const logStart = logsOut.length;
    let logsWritten = 0;
    try {
      let p = 0;
      const end = body.length;
      const varint = (): number => {
        let v = 0;
        let mul = 1;
        for (;;) {
          if (p >= end) throw new Error('truncated body');
          const b = body[p++];
          v += (b & 0x7f) * mul;
          if (b < 0x80) return v;
          mul *= 128;
        }
      };
      const version = body[p++];
      if (version !== BODY_VERSION && version !== BODY_VERSION_LOGS) throw new Error(`unknown body version ${body[0]}`);
      if (version === BODY_VERSION_LOGS) logsWritten = varint();
      for (let pass = 0; pass < (version === BODY_VERSION_LOGS ? 2 : 1); pass++) {
        const runs = varint();
        for (let r = 0; r < runs; r++) {
          const scope = this.scopeFor(varint(), varint());
          const n = varint();
          for (let k = 0; k < n; k++) {
            const len = varint();
            if (p + len > end) throw new Error(pass === 0 ? 'truncated span' : 'truncated log record');
            if (pass === 0) {
              const span = new Span(body, p, len, scope);
              const problem = indexSpan(span);
              if (problem !== undefined) throw new Error(problem);
              out.push(span);
            } else {
              const rec = new LogRecord(body, p, len, scope);
              const problem = indexLogRecord(rec);
              if (problem !== undefined) throw new Error(problem);
              logsOut.push(rec);
            }
            p += len;
          }
        }
      }
    } catch (err) {
      // Keep what decoded; the rest of this body is lost and counted.
      this.mReadErrors.inc();
      if (!this.readErrorLogged) {
        this.readErrorLogged = true;
        this.logger.error({ component: this.component, err: (err as Error).message, decoded: out.length - start }, 'spill store: a spilled body could not be decoded (further errors are only counted)');
      }
    }
    const logsRead = logsOut.length - logStart;
    if (logsRead < logsWritten) this.lastLogsLost += logsWritten - logsRead;
  }
}
