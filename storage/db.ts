/**
 * Opening a SQLite database (better-sqlite3) for the storage layer.
 *
 * - WAL journal, `synchronous` NORMAL or FULL, a small page cache and no mmap so
 *   the file costs little resident memory.
 * - A `schema_version` table records, per store, the layout version it wrote.
 * - A corrupt or unreadable file (or one written by a newer layout) is moved
 *   aside as `<file>.corrupt-<timestamp>` with one error log line and a count in
 *   `sidecar_storage_corrupt_files_total`, and a fresh file is created: a bad
 *   file never turns into a crash loop.
 * - A directory that cannot be created or written is a `StorageError` at open.
 * - A write that fails for lack of space (ENOSPC, SQLITE_FULL, or the
 *   `max_page_count` cap derived from the byte budget) becomes a `DiskFullError`;
 *   nothing is remembered about it here, so the next write simply tries again.
 *
 * better-sqlite3 is synchronous: every call blocks the event loop for as long as
 * SQLite works. Stores keep transactions small (see `maxTxnBytes`), and every
 * write transaction goes through `StorageDb.write`, which times it into
 * `sidecar_storage_write_seconds` and `callTimes` (every timed call).
 * WAL checkpoints (the copy back into the database file and its fsyncs) run in
 * a worker thread (`checkpointer.ts`), not inside a write on the event loop.
 */
import fs from 'node:fs';
import path from 'node:path';
import { createRequire } from 'node:module';
import { performance } from 'node:perf_hooks';
import type Database from 'better-sqlite3';
import type { Logger } from 'pino';
import { RetryableError } from '../collector/errors.js';
import type { Telemetry, Counter, Histogram } from '../collector/telemetry/metrics.js';
import { systemClock, type Clock } from '../collector/component.js';
import { checkpointClient, checkpointWorkerAvailable, type CheckpointClient, type CheckpointResult } from './checkpointer.js';

export type SyncMode = 'normal' | 'full';

export type StorageErrorCode =
  | 'ERR_STORAGE_DIR' // directory missing, not a directory, or not writable
  | 'ERR_STORAGE_OPEN' // the database could not be opened (after moving a bad file aside)
  | 'ERR_STORAGE_CLOSED' // the store was closed
  | 'ERR_STORAGE_IO'; // any other SQLite failure

/** A storage failure that is not about space. `code` is stable. */
export class StorageError extends Error {
  readonly code: StorageErrorCode;
  constructor(code: StorageErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'StorageError';
    this.code = code;
  }
}

/**
 * No room: the disk is full (`enospc`) or the configured byte budget would be
 * exceeded (`max_bytes`). Retryable: space may come back. Callers fall back to
 * memory-only behaviour and count what they cannot hold.
 */
export class DiskFullError extends RetryableError {
  readonly reason: 'enospc' | 'max_bytes';
  constructor(reason: 'enospc' | 'max_bytes', message: string, options?: { cause?: unknown }) {
    super(message, undefined, 'ERR_RETRYABLE', options);
    this.name = 'DiskFullError';
    this.reason = reason;
  }
}

export interface StoreSchema {
  /** Name of the store in `schema_version` ('spill', 'queue'). */
  store: string;
  version: number;
  /** Statements creating the store's tables (run once, in one transaction). */
  create: string[];
}

/** What the stores (spill, queue) are opened with: a logical byte budget instead of a file cap. */
export type StoreOpenOptions = Omit<OpenOptions, 'file' | 'maxFileBytes' | 'pageSize' | 'walAutocheckpointPages' | 'checkpoint' | 'walCapBytes'> & {
  file?: string;
  /** Logical budget of the store in bytes (0 = none). */
  maxBytes: number;
};

/**
 * Opens a store's database file and hands it to `make`; closes the file if
 * `make` throws. The file gets a hard cap well above the logical budget (free
 * pages, b-tree overhead, headers): 1.5 x the budget + 4 MiB.
 */
export function openStore<T>(opts: StoreOpenOptions, defaultFile: string, schema: StoreSchema, make: (sdb: StorageDb, file: string) => T): T {
  const file = opts.file ?? defaultFile;
  const sdb = StorageDb.open(
    {
      directory: opts.directory,
      file,
      sync: opts.sync,
      logger: opts.logger,
      telemetry: opts.telemetry,
      component: opts.component,
      clock: opts.clock,
      maxFileBytes: opts.maxBytes > 0 ? Math.ceil(opts.maxBytes * 1.5) + 4 * 1024 * 1024 : 0,
      cacheKiB: opts.cacheKiB,
      checkOnOpen: opts.checkOnOpen,
    },
    schema,
  );
  try {
    return make(sdb, file);
  } catch (err) {
    sdb.close();
    throw err;
  }
}

export interface OpenOptions {
  directory: string;
  /** File name inside `directory`. */
  file: string;
  sync: SyncMode;
  logger: Logger;
  telemetry: Telemetry;
  /** Component id, used as the `component` metric label. */
  component: string;
  clock?: Clock;
  /** Hard cap on the database file: `max_page_count` is derived from it (0 = none). */
  maxFileBytes?: number;
  /** Page cache in KiB (default 2048). */
  cacheKiB?: number;
  /** Page size for a new file (default 16384: several ~5 KB trace bodies per page, ~1.15x file overhead). */
  pageSize?: number;
  /** WAL pages written before an automatic checkpoint, when checkpoints cannot run in the worker (default 256). */
  walAutocheckpointPages?: number;
  /** 'worker' (default): checkpoints run in a worker thread; 'auto': SQLite's automatic checkpoint inside writes. */
  checkpoint?: 'worker' | 'auto';
  /**
   * Past this WAL size a closing checkpoint lets the WAL start over (default 32 MiB); a WAL file that
   * grew longer is cut back to it by the checkpoint worker once the WAL restarted.
   */
  walCapBytes?: number;
  /** Run `PRAGMA quick_check` at open (default true; costs a read of the file). */
  checkOnOpen?: boolean;
}

const CORRUPT_CODES = new Set(['SQLITE_NOTADB', 'SQLITE_CORRUPT', 'SQLITE_CORRUPT_VTAB', 'SQLITE_CORRUPT_SEQUENCE', 'SQLITE_CORRUPT_INDEX', 'SQLITE_IOERR_SHORT_READ']);

function errCode(err: unknown): string {
  const c = (err as { code?: unknown } | null)?.code;
  return typeof c === 'string' ? c : '';
}

/** True when the error means "no space" (real ENOSPC or the page cap). */
export function isDiskFull(err: unknown): boolean {
  const c = errCode(err);
  return c === 'SQLITE_FULL' || c === 'ENOSPC' || c === 'EDQUOT' || (c.startsWith('SQLITE_IOERR') && /ENOSPC|disk is full|No space/i.test(String((err as Error).message)));
}

/** Error shape used by the fault-injection hook in tests. */
export class InjectedFault extends Error {
  readonly code: string;
  constructor(code: string) {
    super(`injected fault ${code}`);
    this.code = code;
  }
}

class CorruptFile extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
  }
}

interface StorageMetrics {
  corrupt: Counter;
  diskFull: Counter;
  writeSeconds: Histogram;
}

function storageMetrics(t: Telemetry): StorageMetrics {
  return {
    corrupt: t.counter('sidecar_storage_corrupt_files_total', 'Database files found corrupt or unreadable at open and moved aside.', ['component', 'file']),
    diskFull: t.counter('sidecar_storage_disk_full_total', 'Storage writes refused for lack of space (ENOSPC / SQLITE_FULL / page cap).', ['component', 'file']),
    writeSeconds: t.histogram('sidecar_storage_write_seconds', 'Duration of one storage write transaction (blocks the event loop).', ['component', 'file'], [0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.5]),
  };
}

/** Checks that `dir` exists (creating it) and that a file can be created in it. */
export function ensureWritableDirectory(dir: string): void {
  try {
    fs.mkdirSync(dir, { recursive: true });
  } catch (err) {
    throw new StorageError('ERR_STORAGE_DIR', `storage directory ${dir} cannot be created: ${(err as Error).message}`, { cause: err });
  }
  let st: fs.Stats;
  try {
    st = fs.statSync(dir);
  } catch (err) {
    throw new StorageError('ERR_STORAGE_DIR', `storage directory ${dir} cannot be read: ${(err as Error).message}`, { cause: err });
  }
  if (!st.isDirectory()) throw new StorageError('ERR_STORAGE_DIR', `storage directory ${dir} is not a directory`);
  // access(W_OK) is always true for root; creating a file is the real test
  // (it fails on a read-only mount or without permission).
  const probe = path.join(dir, `.write-probe-${process.pid}`);
  try {
    fs.closeSync(fs.openSync(probe, 'w'));
    fs.unlinkSync(probe);
  } catch (err) {
    throw new StorageError('ERR_STORAGE_DIR', `storage directory ${dir} is not writable: ${(err as Error).message}`, { cause: err });
  }
}

/**
 * Durations of storage calls (each one blocks the event loop): count, max and
 * quantiles from 0.1 ms buckets up to 200 ms (beyond that the max tells).
 */
export class CallTimes {
  private readonly bins = new Uint32Array(2001);
  count = 0;
  maxMs = 0;

  record(ms: number): void {
    this.count++;
    if (ms > this.maxMs) this.maxMs = ms;
    this.bins[Math.min(2000, Math.floor(ms * 10))]++;
  }

  /** Upper bound of the bucket holding quantile `q` (0..1), in ms. */
  quantile(q: number): number {
    if (this.count === 0) return 0;
    const want = Math.ceil(q * this.count);
    let n = 0;
    for (let i = 0; i < this.bins.length; i++) {
      n += this.bins[i];
      if (n >= want) return i === 2000 ? this.maxMs : Math.min(this.maxMs, (i + 1) / 10);
    }
    return this.maxMs;
  }

  /** Calls that took longer than `ms` (to the bucket's 0.1 ms resolution). */
  over(ms: number): number {
    let n = 0;
    for (let i = Math.ceil(ms * 10); i < this.bins.length; i++) n += this.bins[i];
    return n;
  }
}

/** One storage call that took longer than `StorageDb.slowCallMs`, with what was going on (benches, diagnosis). */
export interface SlowCall {
  /** What the store said the call was (`describeNext`), e.g. 'spill', 'delete', 'take'. */
  label: string;
  rows: number;
  bytes: number;
  ms: number;
  /** Of `ms`, time spent waiting for a closing checkpoint pass to release writers. */
  holdWaitMs: number;
  /** A worker checkpoint pass was in flight when the call started / ended. */
  ckptBusy: boolean;
  ckptBusyEnd: boolean;
  /** WAL file size before and after the call (-1 unless `traceCalls`). */
  walBefore: number;
  walAfter: number;
  /** Of `ms`, time the thread ran on a CPU and time it waited for one (from /proc/thread-self/schedstat; -1 unless `traceCalls`). */
  cpuMs: number;
  runqMs: number;
  /** performance.now() at the start of the call. */
  atMs: number;
}

/** Checkpoint bookkeeping of one file (for benches and tests). */
export interface CheckpointStats {
  /** Passes run by the worker, and their longest duration (off the event loop). */
  workerPasses: number;
  workerLongestMs: number;
  /** Closing passes (the WAL was past its cap) and the longest time they held writers. */
  closingPasses: number;
  longestHoldMs: number;
  /** Largest WAL seen after a pass, in frames (pages). */
  maxWalFrames: number;
  /** Passes that cut the WAL file's tail back to the cap, and the bytes cut. */
  walCuts: number;
  walCutBytes: number;
}

export class StorageDb {
  readonly db: Database.Database;
  readonly path: string;
  readonly sync: SyncMode;
  readonly pageSize: number;
  /** Longest write transaction so far, in milliseconds (for benchmarks and logs). */
  longestWriteMs = 0;
  /** Longest read call timed through `timeRead`, in milliseconds. */
  longestReadMs = 0;
  /** Every timed call (writes, reads, main-thread checkpoints). */
  readonly callTimes = new CallTimes();
  readonly checkpoints: CheckpointStats = { workerPasses: 0, workerLongestMs: 0, closingPasses: 0, longestHoldMs: 0, maxWalFrames: 0, walCuts: 0, walCutBytes: 0 };
  /** Calls longer than `slowCallMs` (the first 64), with their context. */
  readonly slowCalls: SlowCall[] = [];
  slowCallMs = 10;
  /** Stat the WAL and read the thread's scheduler times around every call, for `slowCalls` (benches only: syscalls per call). */
  traceCalls = false;
  private sched0 = [0, 0];
  private nextLabel = '';
  private nextRows = 0;
  private nextBytes = 0;
  private readonly ckpt: CheckpointClient | undefined;
  private readonly walCapFrames: number;
  private ckptErrorLogged = false;
  private readonly diskFullChild: ReturnType<Counter['labels']>;
  private readonly writeSecondsChild: ReturnType<Histogram['labels']>;
  private readonly logger: Logger;
  private closed = false;
  /** Test hook: called before every write transaction; a returned error is thrown as if SQLite had. */
  faultHook: (() => Error | undefined) | undefined = undefined;

  private constructor(db: Database.Database, file: string, opts: OpenOptions, m: StorageMetrics) {
    this.db = db;
    this.path = file;
    this.sync = opts.sync;
    this.logger = opts.logger;
    this.pageSize = (db.pragma('page_size', { simple: true }) as number) || 4096;
    this.diskFullChild = m.diskFull.labels(opts.component, opts.file);
    this.writeSecondsChild = m.writeSeconds.labels(opts.component, opts.file);
    this.walCapFrames = Math.max(64, Math.floor(walCapBytes(opts) / this.pageSize));
    this.ckpt = workerCheckpoints(opts)
      ? checkpointClient(file, CHECKPOINT_MIN_INTERVAL_MS, { pageSize: this.pageSize, keepBytes: walCapBytes(opts) }, (r) => this.onCheckpoint(r))
      : undefined;
    if (this.ckpt === undefined && workerCheckpoints(opts)) {
      // The worker could not start after all: let SQLite checkpoint inside writes.
      db.pragma(`wal_autocheckpoint = ${Math.max(16, (opts.walAutocheckpointPages ?? 256) | 0)}`);
    }
  }

  private onCheckpoint(r: CheckpointResult): void {
    const c = this.checkpoints;
    c.workerPasses++;
    if (r.ms > c.workerLongestMs) c.workerLongestMs = r.ms;
    if (r.log > c.maxWalFrames) c.maxWalFrames = r.log;
    if (r.cutBytes > 0) {
      c.walCuts++;
      c.walCutBytes += r.cutBytes;
    }
    if (r.holdMs > 0) {
      c.closingPasses++;
      if (r.holdMs > c.longestHoldMs) c.longestHoldMs = r.holdMs;
    }
    if (r.error !== '' && !this.ckptErrorLogged) {
      this.ckptErrorLogged = true;
      this.logger.warn({ file: this.path, err: r.error }, 'storage: background WAL checkpoint failed (retried after the next write)');
    }
  }

  /**
   * After a write: asks the worker for a checkpoint pass; a closing one when
   * the WAL has grown past its cap (writes never paused long enough for a
   * pass to catch up), so that the next write restarts the WAL.
   */
  private afterWrite(): void {
    const ck = this.ckpt;
    if (ck === undefined || ck.busy) return;
    ck.request(performance.now(), ck.walFrames > this.walCapFrames);
  }

  /**
   * Opens (or creates) `directory/file` and makes sure `schema` is in place.
   * Throws StorageError when the directory is unusable or the file cannot be
   * opened even after moving a bad one aside; DiskFullError when there is no
   * space to create it.
   */
  static open(opts: OpenOptions, schema: StoreSchema): StorageDb {
    ensureWritableDirectory(opts.directory);
    const m = storageMetrics(opts.telemetry);
    const file = path.join(opts.directory, opts.file);
    const clock = opts.clock ?? systemClock;
    for (let attempt = 0; ; attempt++) {
      try {
        const db = openAndPrepare(file, opts, schema);
        return new StorageDb(db, file, opts, m);
      } catch (err) {
        if (isDiskFull(err)) {
          throw new DiskFullError('enospc', `storage: no space to open ${file}: ${(err as Error).message}`, { cause: err });
        }
        const corrupt = err instanceof CorruptFile || CORRUPT_CODES.has(errCode(err)) || (errCode(err) === 'SQLITE_CANTOPEN' && fs.existsSync(file));
        if (!corrupt) {
          if (err instanceof StorageError) throw err;
          throw new StorageError('ERR_STORAGE_OPEN', `storage: cannot open ${file}: ${(err as Error).message}`, { cause: err });
        }
        if (attempt > 0) {
          throw new StorageError('ERR_STORAGE_OPEN', `storage: ${file} is still unusable after moving the bad file aside: ${(err as Error).message}`, { cause: err });
        }
        const movedTo = moveAside(file, clock.now());
        m.corrupt.labels(opts.component, opts.file).inc();
        opts.logger.error(
          { component: opts.component, file, movedTo, reason: (err as Error).message },
          'storage: database file is corrupt or unreadable; moved it aside and starting with an empty one (its contents are lost)',
        );
      }
    }
  }

  /** Names the next call for `slowCalls` (what it is, how many rows and bytes). */
  describeNext(label: string, rows: number, bytes: number): void {
    this.nextLabel = label;
    this.nextRows = rows;
    this.nextBytes = bytes;
  }

  /** [on-CPU ns, run-queue wait ns] of the calling thread. */
  private static schedstat(): number[] {
    try {
      const f = fs.readFileSync('/proc/thread-self/schedstat', 'latin1').split(' ');
      return [Number(f[0]), Number(f[1])];
    } catch {
      return [-1e6, -1e6];
    }
  }

  private walSize(): number {
    try {
      return fs.statSync(this.path + '-wal').size;
    } catch {
      return 0;
    }
  }

  private noteCall(t0: number, ms: number, holdWaitMs: number, ckptBusy: boolean, walBefore: number): void {
    this.callTimes.record(ms);
    if (ms >= this.slowCallMs && this.slowCalls.length < 64) {
      const s1 = this.traceCalls ? StorageDb.schedstat() : [-1e6, -1e6];
      this.slowCalls.push({
        label: this.nextLabel,
        rows: this.nextRows,
        bytes: this.nextBytes,
        ms: +ms.toFixed(2),
        holdWaitMs: +holdWaitMs.toFixed(2),
        ckptBusy,
        ckptBusyEnd: this.ckpt?.busy ?? false,
        walBefore,
        walAfter: this.traceCalls ? this.walSize() : -1,
        cpuMs: this.traceCalls ? +((s1[0] - this.sched0[0]) / 1e6).toFixed(2) : -1,
        runqMs: this.traceCalls ? +((s1[1] - this.sched0[1]) / 1e6).toFixed(2) : -1,
        atMs: Math.round(t0),
      });
    }
    this.nextLabel = '';
    this.nextRows = 0;
    this.nextBytes = 0;
  }

  /**
   * Runs a write transaction function (made with `db.transaction`) and maps
   * failures: no space -> DiskFullError, anything else -> StorageError.
   */
  write<A extends unknown[], R>(txn: (...args: A) => R, ...args: A): R {
    if (this.closed) throw new StorageError('ERR_STORAGE_CLOSED', `storage: ${this.path} is closed`);
    const walBefore = this.traceCalls ? this.walSize() : -1;
    if (this.traceCalls) this.sched0 = StorageDb.schedstat();
    const ckptBusy = this.ckpt?.busy ?? false;
    const t0 = performance.now();
    this.ckpt?.enterWrite();
    const holdWaitMs = performance.now() - t0;
    try {
      const fault = this.faultHook?.();
      if (fault !== undefined) throw fault;
      try {
        return txn(...args);
      } catch (err) {
        // Out of space: the WAL may hold space that a checkpoint gives back to the
        // filesystem (it is truncated afterwards). Try that once, then retry once.
        if (!isDiskFull(err) || !this.checkpointTruncate()) throw err;
        return txn(...args);
      }
    } catch (err) {
      throw this.mapError(err);
    } finally {
      this.ckpt?.exitWrite();
      const ms = performance.now() - t0;
      if (ms > this.longestWriteMs) this.longestWriteMs = ms;
      this.writeSecondsChild.observe(ms / 1000);
      this.noteCall(t0, ms, holdWaitMs, ckptBusy, walBefore);
      if (!this.closed) this.afterWrite();
    }
  }

  /**
   * Like `write`, but with `sync: full` this commit is not fsynced (it becomes
   * durable with the next fsynced commit or checkpoint). For writes whose loss
   * in a power cut only repeats work, such as deleting traces already decided.
   */
  writeRelaxed<A extends unknown[], R>(txn: (...args: A) => R, ...args: A): R {
    if (this.sync !== 'full' || this.closed) return this.write(txn, ...args);
    this.db.pragma('synchronous = NORMAL');
    try {
      return this.write(txn, ...args);
    } finally {
      this.db.pragma('synchronous = FULL');
    }
  }

  /** Copies the WAL into the main file and truncates it. False when it could not complete. */
  checkpointTruncate(): boolean {
    try {
      const r = this.db.pragma('wal_checkpoint(TRUNCATE)') as Array<{ busy: number }>;
      return r.length > 0 && r[0].busy === 0;
    } catch {
      return false;
    }
  }

  /** Times a read call (they block the loop too) and maps failures. */
  read<R>(fn: () => R): R {
    if (this.closed) throw new StorageError('ERR_STORAGE_CLOSED', `storage: ${this.path} is closed`);
    const walBefore = this.traceCalls ? this.walSize() : -1;
    if (this.traceCalls) this.sched0 = StorageDb.schedstat();
    const ckptBusy = this.ckpt?.busy ?? false;
    const t0 = performance.now();
    try {
      return fn();
    } catch (err) {
      throw this.mapError(err);
    } finally {
      const ms = performance.now() - t0;
      if (ms > this.longestReadMs) this.longestReadMs = ms;
      this.noteCall(t0, ms, 0, ckptBusy, walBefore);
    }
  }

  private mapError(err: unknown): Error {
    if (err instanceof DiskFullError || err instanceof StorageError) return err;
    if (isDiskFull(err)) {
      this.diskFullChild.inc();
      return new DiskFullError('enospc', `storage: no space left writing ${this.path}: ${(err as Error).message}`, { cause: err });
    }
    return new StorageError('ERR_STORAGE_IO', `storage: ${this.path}: ${(err as Error).message}`, { cause: err });
  }

  /** Bytes the database occupies on disk: main file plus WAL. */
  fileBytes(): number {
    let n = 0;
    for (const f of [this.path, this.path + '-wal']) {
      try {
        n += fs.statSync(f).size;
      } catch {
        /* absent */
      }
    }
    return n;
  }

  get isClosed(): boolean {
    return this.closed;
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    // Let a checkpoint pass in flight finish, so this connection is the last one.
    this.ckpt?.close();
    try {
      // A clean close checkpoints the WAL into the main file and removes it.
      this.db.close();
    } catch (err) {
      this.logger.warn({ file: this.path, err: (err as Error).message }, 'storage: error closing database');
    }
  }
}

/** A worker checkpoint pass is asked for at most this often per file. */
const CHECKPOINT_MIN_INTERVAL_MS = 50;

function walCapBytes(opts: OpenOptions): number {
  return opts.walCapBytes ?? 32 * 1024 * 1024;
}

function workerCheckpoints(opts: OpenOptions): boolean {
  return (opts.checkpoint ?? 'worker') === 'worker' && checkpointWorkerAvailable();
}

/** better-sqlite3 is loaded when the first store opens: a config without disk storage never loads it. */
let sqlite: typeof Database | undefined;

function openAndPrepare(file: string, opts: OpenOptions, schema: StoreSchema): Database.Database {
  sqlite ??= createRequire(import.meta.url)('better-sqlite3') as typeof Database;
  const db = new sqlite(file);
  try {
    const pageSize = opts.pageSize ?? 16384;
    // page_size only takes effect on an empty file (before WAL is set).
    db.pragma(`page_size = ${pageSize | 0}`);
    // Reading journal_mode reads the header: a file that is not a database fails here (SQLITE_NOTADB).
    const mode = db.pragma('journal_mode = WAL', { simple: true });
    if (String(mode).toLowerCase() !== 'wal') throw new StorageError('ERR_STORAGE_OPEN', `storage: ${file}: cannot use WAL journal (got ${String(mode)})`);
    db.pragma(`synchronous = ${opts.sync === 'full' ? 'FULL' : 'NORMAL'}`);
    db.pragma(`cache_size = -${Math.max(256, (opts.cacheKiB ?? 2048) | 0)}`);
    db.pragma('mmap_size = 0');
    db.pragma('temp_store = FILE');
    // Checkpoints run in the worker (StorageDb.afterWrite); 0 turns off the automatic one inside writes.
    db.pragma(`wal_autocheckpoint = ${workerCheckpoints(opts) ? 0 : Math.max(16, (opts.walAutocheckpointPages ?? 256) | 0)}`);
    // When the WAL starts over, SQLite truncates it to journal_size_limit inside that write, on the event
    // loop. Freeing blocks that a checkpoint has fsynced costs ~0.2 ms per MiB on this disk (10-20 ms, up
    // to 136 ms, for a WAL that overshot the cap under non-stop writes: the longest calls of the spill
    // bench). With worker checkpoints this connection never truncates (-1) and the worker cuts the
    // file back to the cap in small steps after a restart (checkpointer.ts).
    db.pragma(`journal_size_limit = ${workerCheckpoints(opts) ? -1 : 4 * 1024 * 1024}`);
    if (opts.maxFileBytes !== undefined && opts.maxFileBytes > 0) {
      const ps = db.pragma('page_size', { simple: true }) as number;
      db.pragma(`max_page_count = ${Math.max(64, Math.ceil(opts.maxFileBytes / ps))}`);
    }
    if (opts.checkOnOpen ?? true) {
      const r = db.pragma('quick_check(1)', { simple: true });
      if (r !== 'ok') throw new CorruptFile(`quick_check: ${String(r)}`);
    }
    db.exec('CREATE TABLE IF NOT EXISTS schema_version (store TEXT PRIMARY KEY, version INTEGER NOT NULL)');
    const row = db.prepare('SELECT version FROM schema_version WHERE store = ?').pluck().get(schema.store) as number | undefined;
    if (row === undefined) {
      db.transaction(() => {
        for (const sql of schema.create) db.exec(sql);
        db.prepare('INSERT INTO schema_version (store, version) VALUES (?, ?)').run(schema.store, schema.version);
      })();
    } else if (row !== schema.version) {
      // Only version 1 exists; a different number was written by another build.
      throw new CorruptFile(`store ${schema.store} has layout version ${row}, this build reads version ${schema.version}`);
    }
    return db;
  } catch (err) {
    try {
      db.close();
    } catch {
      /* already unusable */
    }
    throw err;
  }
}

/** Renames a bad database (and its WAL) aside; returns the new name. */
function moveAside(file: string, nowMs: number): string {
  const stamp = new Date(nowMs).toISOString().replace(/[:.]/g, '-');
  let target = `${file}.corrupt-${stamp}`;
  for (let i = 1; fs.existsSync(target); i++) target = `${file}.corrupt-${stamp}-${i}`;
  try {
    fs.renameSync(file, target);
    // Keep the WAL next to it under the name SQLite would look for, for forensics.
    if (fs.existsSync(file + '-wal')) fs.renameSync(file + '-wal', target + '-wal');
    fs.rmSync(file + '-shm', { force: true });
    fs.rmSync(file + '-journal', { force: true });
  } catch (err) {
    throw new StorageError('ERR_STORAGE_OPEN', `storage: ${file} is corrupt and could not be moved aside: ${(err as Error).message}`, { cause: err });
  }
  return target;
}
