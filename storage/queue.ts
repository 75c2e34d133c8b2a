/**
 * DurableQueue: export requests (encoded bytes + span count) kept in SQLite in
 * arrival order, for `sending_queue.storage: disk`.
 *
 * - `enqueue` resolves once the item is committed (group commit: every enqueue
 *   made in the same turn of the event loop, up to `maxTxnBytes`, shares one
 *   transaction). With `sync: full` committed means fsynced; with `sync: normal`
 *   it means written to the WAL (survives a process crash, not a power loss).
 * - `lease(n)` hands out the oldest items not already leased; `ack(id)` removes
 *   one (the delete is committed with the next group commit), `nack(id)` puts it
 *   back in order.
 * - After a restart every item not acked (leased or not) is delivered again, in
 *   id order: at-least-once. Items that had been leased before the restart are
 *   flagged `redelivered` and counted in `sidecar_queue_redelivered_total`.
 * - Bounded by `maxBytes` (sum of item bytes). When an item does not fit:
 *   `refuse` rejects it with a retryable QueueFullError; `drop_oldest` drops the
 *   oldest items not leased, counting their spans through
 *   `telemetry.drop(component, 'queue_full', n)`, and refuses only when that
 *   cannot make room.
 */
import type Database from 'better-sqlite3';
import type { Logger } from 'pino';
import { RetryableError } from '../collector/errors.js';
import type { Telemetry, Counter, Gauge } from '../collector/telemetry/metrics.js';
import { systemClock, type Clock } from '../collector/component.js';
import { DiskFullError, openStore, StorageDb, StorageError, type SyncMode } from './db.js';

export type QueueFullPolicy = 'refuse' | 'drop_oldest';

/** The queue's byte budget is reached (retryable: the queue drains). */
export class QueueFullError extends RetryableError {
  constructor(message: string) {
    super(message, undefined, 'ERR_QUEUE_FULL');
    this.name = 'QueueFullError';
  }
}

export interface QueueItem {
  id: number;
  /** The encoded export request, as enqueued. */
  body: Buffer;
  spanCount: number;
  /** True when this item had been leased before a restart (it may have reached the backend already). */
  redelivered: boolean;
}

export interface DurableQueueOptions {
  directory: string;
  /** Default 'queue.sqlite'. */
  file?: string;
  sync: SyncMode;
  maxBytes: number;
  whenFull: QueueFullPolicy;
  logger: Logger;
  telemetry: Telemetry;
  component: string;
  clock?: Clock;
  /** A group commit is cut when its items reach this many bytes (default 2 MiB). */
  maxTxnBytes?: number;
  /** After a disk-full failure, enqueues fail fast for this long (default 1000 ms). */
  diskFullRetryMs?: number;
  cacheKiB?: number;
  checkOnOpen?: boolean;
}

export const QUEUE_SCHEMA = {
  store: 'queue',
  version: 1,
  create: [
    'CREATE TABLE items (id INTEGER PRIMARY KEY, span_count INTEGER NOT NULL, bytes INTEGER NOT NULL, body BLOB NOT NULL)',
    'CREATE TABLE queue_meta (key TEXT PRIMARY KEY, value INTEGER NOT NULL)',
  ],
};

interface Meta {
  bytes: number;
  spans: number;
  leased: boolean;
  redelivered: boolean;
}

interface Pending {
  body: Uint8Array;
  spans: number;
  resolve: (id: number) => void;
  reject: (err: Error) => void;
}

export class DurableQueue {
  readonly sdb: StorageDb;
  readonly maxBytes: number;
  readonly whenFull: QueueFullPolicy;
  private readonly db: Database.Database;
  private readonly logger: Logger;
  private readonly telemetry: Telemetry;
  private readonly component: string;
  private readonly clock: Clock;
  private readonly maxTxnBytes: number;
  private readonly diskFullRetryMs: number;

  private readonly insItem: Database.Statement;
  private readonly delItem: Database.Statement;
  private readonly selBody: Database.Statement;
  private readonly setMeta: Database.Statement;
  private readonly commitTxn: (batch: Pending[], ids: number[]) => void;

  private readonly items = new Map<number, Meta>();
  /** Ids ready to lease, ascending, from `head`. */
  private ready: number[] = [];
  private head = 0;
  private used = 0;
  private spans = 0;
  private pending: Pending[] = [];
  private pendingBytes = 0;
  private pendingDeletes: number[] = [];
  private scheduled = false;
  private maxLeased = 0;
  private maxLeasedSaved = 0;
  /** Items with id <= this were in the file at open and had been leased before. */
  private readonly leasedBeforeRestart: number;
  private diskFullUntil = 0;
  private closed = false;

  private readonly mRedelivered: ReturnType<Counter['labels']>;
  private readonly mEnqueued: ReturnType<Counter['labels']>;
  private readonly mRefused: ReturnType<Counter['labels']>;
  private readonly gItems: ReturnType<Gauge['labels']>;
  private readonly gBytes: ReturnType<Gauge['labels']>;

  static open(opts: DurableQueueOptions): DurableQueue {
    return openStore(opts, 'queue.sqlite', QUEUE_SCHEMA, (sdb) => new DurableQueue(sdb, opts));
  }

  private constructor(sdb: StorageDb, opts: DurableQueueOptions) {
    this.sdb = sdb;
    this.db = sdb.db;
    this.maxBytes = opts.maxBytes;
    this.whenFull = opts.whenFull;
    this.logger = opts.logger;
    this.telemetry = opts.telemetry;
    this.component = opts.component;
    this.clock = opts.clock ?? systemClock;
    this.maxTxnBytes = opts.maxTxnBytes ?? 2 * 1024 * 1024;
    this.diskFullRetryMs = opts.diskFullRetryMs ?? 1000;
    const db = this.db;
    this.insItem = db.prepare('INSERT INTO items (span_count, bytes, body) VALUES (?, ?, ?)');
    this.delItem = db.prepare('DELETE FROM items WHERE id = ?');
    this.selBody = db.prepare('SELECT body FROM items WHERE id = ?').pluck();
    this.setMeta = db.prepare('INSERT INTO queue_meta (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value');
    this.commitTxn = db.transaction((batch: Pending[], ids: number[]) => {
      ids.length = 0; // the transaction may be retried after a checkpoint
      for (let i = 0; i < this.pendingDeletes.length; i++) this.delItem.run(this.pendingDeletes[i]);
      for (let i = 0; i < batch.length; i++) {
        const p = batch[i];
        ids.push(Number(this.insItem.run(p.spans, p.body.length, p.body).lastInsertRowid));
      }
      if (this.maxLeased !== this.maxLeasedSaved) this.setMeta.run('max_leased', this.maxLeased);
    });

    const t = opts.telemetry;
    this.mRedelivered = t.counter('sidecar_queue_redelivered_total', 'Queue items delivered again after a restart (they may be duplicates at the backend).', ['component']).labels(opts.component);
    this.mEnqueued = t.counter('sidecar_queue_enqueued_items_total', 'Items committed to the durable queue.', ['component']).labels(opts.component);
    this.mRefused = t.counter('sidecar_queue_refused_items_total', 'Enqueues refused (queue full, or disk full).', ['component']).labels(opts.component);
    this.gItems = t.gauge('sidecar_queue_items', 'Items in the durable queue (including leased ones).', ['component']).labels(opts.component);
    this.gBytes = t.gauge('sidecar_queue_bytes', 'Bytes of items in the durable queue.', ['component']).labels(opts.component);

    const saved = db.prepare("SELECT value FROM queue_meta WHERE key = 'max_leased'").pluck().get() as number | undefined;
    this.leasedBeforeRestart = saved ?? 0;
    this.maxLeased = this.maxLeasedSaved = saved ?? 0;
    let redeliver = 0;
    for (const r of db.prepare('SELECT id, span_count, bytes FROM items ORDER BY id').raw().iterate() as Iterable<[number, number, number]>) {
      const wasLeased = r[0] <= this.leasedBeforeRestart;
      if (wasLeased) redeliver++;
      this.items.set(r[0], { bytes: r[2], spans: r[1], leased: false, redelivered: wasLeased });
      this.ready.push(r[0]);
      this.used += r[2];
      this.spans += r[1];
    }
    this.updateGauges();
    if (this.items.size > 0) {
      this.logger.info(
        { component: this.component, file: sdb.path, items: this.items.size, spans: this.spans, bytes: this.used, redeliver },
        'durable queue: resuming items found on disk',
      );
    }
  }

  /** Items not yet acked (ready + leased), committed ones only. */
  get size(): number {
    return this.items.size;
  }

  /** Items ready to lease. */
  get readyCount(): number {
    return this.ready.length - this.head;
  }

  get spanCount(): number {
    return this.spans;
  }

  /** Bytes of committed and in-flight (being committed) items. */
  bytesUsed(): number {
    return this.used + this.pendingBytes;
  }

  /**
   * Persists one item. Resolves with its id once committed; rejects with
   * QueueFullError (no room per policy), DiskFullError (disk full) or
   * StorageError (closed or I/O failure).
   */
  enqueue(body: Uint8Array, spanCount: number): Promise<number> {
    if (this.closed) return Promise.reject(new StorageError('ERR_STORAGE_CLOSED', 'durable queue is closed'));
    const size = body.length;
    if (this.clock.now() < this.diskFullUntil) {
      this.mRefused.inc();
      return Promise.reject(new DiskFullError('enospc', 'durable queue: disk full (waiting before the next attempt)'));
    }
    if (this.used + this.pendingBytes + size > this.maxBytes) {
      if (this.whenFull === 'drop_oldest' && size <= this.maxBytes) this.dropOldestFor(size);
      if (this.used + this.pendingBytes + size > this.maxBytes) {
        this.mRefused.inc();
        return Promise.reject(
          new QueueFullError(`durable queue full: ${this.used + this.pendingBytes} of ${this.maxBytes} bytes used, item of ${size} bytes does not fit`),
        );
      }
    }
    return new Promise<number>((resolve, reject) => {
      this.pending.push({ body, spans: spanCount, resolve, reject });
      this.pendingBytes += size;
      if (this.pendingBytes >= this.maxTxnBytes) this.commit();
      else this.schedule();
    });
  }

  /** Oldest ready items, without leasing them. */
  peek(n: number): QueueItem[] {
    const out: QueueItem[] = [];
    for (let i = this.head; i < this.ready.length && out.length < n; i++) out.push(this.load(this.ready[i]));
    return out;
  }

  /** Hands out up to `n` oldest ready items; each must be acked or nacked. */
  lease(n: number): QueueItem[] {
    const out: QueueItem[] = [];
    while (out.length < n && this.head < this.ready.length) {
      const id = this.ready[this.head++];
      const item = this.load(id);
      this.items.get(id)!.leased = true;
      if (item.redelivered) this.mRedelivered.inc();
      if (id > this.maxLeased) this.maxLeased = id;
      out.push(item);
    }
    this.compactReady();
    if (out.length > 0 && this.maxLeased !== this.maxLeasedSaved) this.schedule();
    return out;
  }

  /** Removes a delivered item. Returns false for an unknown or not leased id. */
  ack(id: number): boolean {
    const m = this.items.get(id);
    if (m === undefined || !m.leased) return false;
    this.items.delete(id);
    this.used -= m.bytes;
    this.spans -= m.spans;
    this.pendingDeletes.push(id);
    this.updateGauges();
    this.schedule();
    return true;
  }

  /** Returns a leased item to the queue, in id order. */
  nack(id: number): boolean {
    const m = this.items.get(id);
    if (m === undefined || !m.leased) return false;
    m.leased = false;
    // Binary search for the insertion point in ready[head..].
    let lo = this.head;
    let hi = this.ready.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (this.ready[mid] < id) lo = mid + 1;
      else hi = mid;
    }
    if (lo === this.head && this.head > 0) this.ready[--this.head] = id;
    else this.ready.splice(lo, 0, id);
    return true;
  }

  /** Commits pending enqueues, acks and drops now. */
  async flush(): Promise<void> {
    this.commit();
  }

  /** Commits what is pending and closes. Leased items not acked stay on disk. Idempotent. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.commit();
    this.closed = true;
    this.sdb.close();
  }

  private load(id: number): QueueItem {
    const m = this.items.get(id)!;
    const body = this.sdb.read(() => this.selBody.get(id) as Buffer | undefined);
    if (body === undefined) throw new StorageError('ERR_STORAGE_IO', `durable queue: item ${id} missing from ${this.sdb.path}`);
    return { id, body, spanCount: m.spans, redelivered: m.redelivered };
  }

  private dropOldestFor(size: number): void {
    let dropped = 0;
    let droppedSpans = 0;
    while (this.used + this.pendingBytes + size > this.maxBytes && this.head < this.ready.length) {
      const id = this.ready[this.head++];
      const m = this.items.get(id)!;
      this.items.delete(id);
      this.used -= m.bytes;
      this.spans -= m.spans;
      droppedSpans += m.spans;
      dropped++;
      this.pendingDeletes.push(id);
    }
    if (dropped > 0) {
      this.compactReady();
      this.telemetry.drop(this.component, 'queue_full', droppedSpans);
      this.updateGauges();
    }
  }

  private compactReady(): void {
    if (this.head > 1024 && this.head * 2 > this.ready.length) {
      this.ready = this.ready.slice(this.head);
      this.head = 0;
    }
  }

  private schedule(): void {
    if (this.scheduled || this.closed) return;
    this.scheduled = true;
    setImmediate(() => {
      this.scheduled = false;
      this.commit();
    });
  }

  /** One transaction: pending deletes, pending items, the lease mark. Synchronous. */
  private commit(): void {
    if (this.closed) return;
    if (this.pending.length === 0 && this.pendingDeletes.length === 0 && this.maxLeased === this.maxLeasedSaved) return;
    const batch = this.pending;
    this.pending = [];
    this.pendingBytes = 0;
    const ids: number[] = [];
    const leaseMark = this.maxLeased;
    try {
      this.sdb.write(this.commitTxn, batch, ids);
    } catch (err) {
      // Nothing of this transaction happened. Deletes stay pending; items are refused.
      const e = err instanceof Error ? err : new Error(String(err));
      if (e instanceof DiskFullError) {
        this.diskFullUntil = this.clock.now() + this.diskFullRetryMs;
        this.logger.warn({ component: this.component, err: e.message }, 'durable queue: disk full; enqueues are refused until space returns');
      } else {
        this.logger.error({ component: this.component, err: e.message }, 'durable queue: commit failed');
      }
      this.mRefused.inc(batch.length);
      for (const p of batch) p.reject(e);
      return;
    }
    this.pendingDeletes = [];
    this.maxLeasedSaved = leaseMark;
    for (let i = 0; i < batch.length; i++) {
      const id = ids[i];
      const p = batch[i];
      this.items.set(id, { bytes: p.body.length, spans: p.spans, leased: false, redelivered: false });
      this.ready.push(id);
      this.used += p.body.length;
      this.spans += p.spans;
      p.resolve(id);
    }
    if (batch.length > 0) this.mEnqueued.inc(batch.length);
    this.updateGauges();
  }

  private updateGauges(): void {
    this.gItems.set(this.items.size);
    this.gBytes.set(this.used);
  }
}
