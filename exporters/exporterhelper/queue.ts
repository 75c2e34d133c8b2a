/**
 * The queue between `consume()` and the senders. `RequestQueue` is the seam a
 * durable (disk) queue plugs into; `MemoryQueue` is a bounded ring buffer.
 */

/**
 * One export request: an encoded export request of the exporter's signal and
 * its item count (spans, log records or metric data points; the field keeps
 * its first name).
 */
export interface ExportRequest {
  bytes: Uint8Array;
  spans: number;
}

export interface RequestQueue {
  /** Requests waiting (not counting the ones being sent). */
  readonly size: number;
  /** Encoded bytes waiting. */
  readonly bytes: number;
  readonly capacity: number;
  readonly capacityBytes: number;
  /**
   * True when queued data survives a restart: at shutdown the helper then
   * leaves what is left in the queue instead of counting it as dropped.
   */
  readonly durable: boolean;
  /**
   * Adds a request; false when it does not fit (the caller refuses or waits).
   * A durable queue answers with a promise that resolves once the request is
   * stored (true) or refused (false); a memory queue answers at once.
   */
  offer(req: ExportRequest): boolean | Promise<boolean>;
  /** Takes the oldest request, or undefined when empty. */
  poll(): ExportRequest | undefined;
  /** A polled request is finished (sent, or dropped and counted). A durable queue deletes it now. */
  done(req: ExportRequest): void;
  /** Removes and returns everything still queued (used at shutdown by a memory queue). */
  drainAll(): ExportRequest[];
  close(): void;
}

/**
 * Ring buffer bounded in requests and bytes. Grows its slot array by doubling
 * up to `capacity`, so a large queue_size costs nothing until it is used.
 * A request larger than `capacityBytes` is still accepted into an empty queue,
 * so an oversized batch cannot wedge the exporter.
 */
export class MemoryQueue implements RequestQueue {
  readonly capacity: number;
  readonly capacityBytes: number;
  readonly durable = false;
  private slots: Array<ExportRequest | undefined>;
  private head = 0;
  private count = 0;
  private byteCount = 0;

  constructor(capacity: number, capacityBytes: number) {
    this.capacity = capacity;
    this.capacityBytes = capacityBytes;
    this.slots = new Array(Math.min(capacity, 16)).fill(undefined);
  }

  get size(): number {
    return this.count;
  }
  get bytes(): number {
    return this.byteCount;
  }

  offer(req: ExportRequest): boolean {
    if (this.count >= this.capacity) return false;
    if (this.count > 0 && this.byteCount + req.bytes.length > this.capacityBytes) return false;
    if (this.count === this.slots.length) this.grow();
    this.slots[(this.head + this.count) % this.slots.length] = req;
    this.count++;
    this.byteCount += req.bytes.length;
    return true;
  }

  poll(): ExportRequest | undefined {
    if (this.count === 0) return undefined;
    const req = this.slots[this.head]!;
    this.slots[this.head] = undefined;
    this.head = (this.head + 1) % this.slots.length;
    this.count--;
    this.byteCount -= req.bytes.length;
    return req;
  }

  done(): void {}

  drainAll(): ExportRequest[] {
    const out: ExportRequest[] = [];
    for (let r = this.poll(); r !== undefined; r = this.poll()) out.push(r);
    return out;
  }

  close(): void {}

  private grow(): void {
    const n = Math.min(this.capacity, this.slots.length * 2);
    const next: Array<ExportRequest | undefined> = new Array(n).fill(undefined);
    for (let i = 0; i < this.count; i++) next[i] = this.slots[(this.head + i) % this.slots.length];
    this.slots = next;
    this.head = 0;
  }
}
