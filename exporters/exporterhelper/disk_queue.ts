/**
 * `sending_queue.storage: disk`: the RequestQueue seam over storage/'s
 * DurableQueue (SQLite). One file per exporter, named after its id
 * (`queue-otlp_backend.sqlite`), so two exporters never share one.
 *
 * - `offer` resolves once the request is committed (group commit of one
 *   event-loop turn), so `consume()` acknowledges only what is on disk.
 * - `poll` leases the oldest committed request; `done` deletes it. A request
 *   that was being sent when the process died is sent again after the restart
 *   (at-least-once; counted in `sidecar_queue_redelivered_total`).
 * - `close` (exporter shutdown) hands requests that were leased but not
 *   finished back to the queue and releases the file: nothing queued is lost.
 * - Bounded by `max_bytes`; `when_full` refuses (retryable) or drops the
 *   oldest requests not being sent (counted as `queue_full` drops).
 */
import type { Logger } from 'pino';
import type { CreateSettings } from '../../collector/component.js';
import type { Gauge } from '../../collector/telemetry/metrics.js';
import { DurableQueue, QueueFullError } from '../../storage/queue.js';
import { DiskFullError } from '../../storage/db.js';
import { acquireQueue, fileNameFor, releaseQueue } from '../../storage/registry.js';
import type { QueueConfig } from './config.js';
import type { ExportRequest, RequestQueue } from './queue.js';

const LOG_INTERVAL_MS = 10_000;

export class DiskRequestQueue implements RequestQueue {
  readonly durable = true;
  /** Not bounded in requests: max_bytes bounds the file. */
  readonly capacity = Infinity;
  readonly capacityBytes: number;
  readonly file: string;
  readonly durableQueue: DurableQueue;
  private readonly leased = new Map<ExportRequest, number>();
  private readonly log: Logger;
  private readonly id: string;
  private readonly longest: ReturnType<Gauge['labels']>;
  private lastRefusalLog = -Infinity;
  private closed = false;

  /** Opens (creating if needed) the exporter's queue file; throws StorageError for an unusable directory. */
  /** One file per exporter and signal: traces keep the exporter's own name, logs and metrics add theirs. */
  static open(settings: CreateSettings, cfg: QueueConfig, signal: 'traces' | 'logs' | 'metrics' = 'traces'): DiskRequestQueue {
    const file = fileNameFor('queue', signal === 'traces' ? settings.id : `${settings.id}.${signal}`);
    const q = acquireQueue({
      directory: cfg.directory,
      file,
      sync: cfg.sync,
      maxBytes: cfg.max_bytes,
      whenFull: cfg.when_full,
      logger: settings.logger,
      telemetry: settings.telemetry,
      component: settings.id,
      clock: settings.clock,
    });
    return new DiskRequestQueue(settings, q, file, cfg.max_bytes);
  }

  private constructor(settings: CreateSettings, q: DurableQueue, file: string, maxBytes: number) {
    this.durableQueue = q;
    this.file = file;
    this.capacityBytes = maxBytes;
    this.log = settings.logger;
    this.id = settings.id;
    this.longest = settings.telemetry
      .gauge('sidecar_storage_longest_call_seconds', 'Longest single storage call so far (it blocked the event loop this long).', ['component', 'file'])
      .labels(settings.id, file);
  }

  get size(): number {
    return this.durableQueue.readyCount;
  }

  /** Bytes of the requests on disk (waiting and being sent). */
  get bytes(): number {
    return this.durableQueue.bytesUsed();
  }

  offer(req: ExportRequest): Promise<boolean> {
    if (this.closed) return Promise.resolve(false);
    return this.durableQueue.enqueue(req.bytes, req.spans).then(
      () => {
        this.updateLongest();
        return true;
      },
      (err: unknown) => {
        this.refused(err);
        return false;
      },
    );
  }

  poll(): ExportRequest | undefined {
    if (this.closed) return undefined;
    for (let attempt = 0; attempt < 8; attempt++) {
      let items;
      try {
        items = this.durableQueue.lease(1);
      } catch (err) {
        // An unreadable item is skipped (it stays in the file for forensics); try the next.
        this.log.error({ exporter: this.id, err: (err as Error).message }, 'durable queue: could not read a queued request; skipped');
        continue;
      }
      this.updateLongest();
      if (items.length === 0) return undefined;
      const it = items[0];
      const req: ExportRequest = { bytes: it.body, spans: it.spanCount };
      this.leased.set(req, it.id);
      return req;
    }
    return undefined;
  }

  done(req: ExportRequest): void {
    const id = this.leased.get(req);
    if (id === undefined) return;
    this.leased.delete(req);
    this.durableQueue.ack(id);
  }

  /** Nothing is drained: what is queued stays on disk for the next start. */
  drainAll(): ExportRequest[] {
    return [];
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    // Interrupted sends go back in order (another user of the file, after a reload, sends them; else the next start).
    for (const id of this.leased.values()) this.durableQueue.nack(id);
    this.leased.clear();
    releaseQueue(this.durableQueue).catch((err: unknown) =>
      this.log.error({ exporter: this.id, err: (err as Error).message }, 'durable queue: error closing the queue file'),
    );
  }

  private updateLongest(): void {
    const s = this.durableQueue.sdb;
    this.longest.set(Math.max(s.longestWriteMs, s.longestReadMs) / 1000);
  }

  private refused(err: unknown): void {
    if (err instanceof QueueFullError) return; // the exporter answers ERR_QUEUE_FULL; counted there and by the queue
    const now = Date.now();
    if (now - this.lastRefusalLog < LOG_INTERVAL_MS) return;
    this.lastRefusalLog = now;
    this.log.warn(
      { exporter: this.id, err: (err as Error).message, diskFull: err instanceof DiskFullError },
      'durable queue: could not store a request; refusing new data until it works again',
    );
  }
}
