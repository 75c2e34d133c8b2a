/**
 * When each buffered trace is due: one ticker walks time-ordered buckets
 * (bucket = ceil(due / tick)); a trace sits in the bucket of its due time, and
 * moving it earlier (root span) just appends it to the earlier bucket: the
 * stale entry is skipped because `trace.bucket` no longer names that bucket.
 * No timer per trace.
 */
import type { PendingTrace } from './store.js';

export interface DueBucket {
  readonly b: number;
  readonly list: PendingTrace[];
}

export class DecisionSchedule {
  private readonly buckets = new Map<number, PendingTrace[]>();
  private nextBucket = Infinity;
  private entries = 0;
  /** Bucket entries of traces that left the buffer (spilled; dead until their bucket fires). */
  private stale = 0;

  constructor(readonly tickMs: number) {}

  /** Puts a trace in the bucket of dueMs (byRoot: the due time comes from decision_wait_after_root_received). */
  schedule(t: PendingTrace, dueMs: number, byRoot: boolean): void {
    const b = Math.ceil(dueMs / this.tickMs);
    t.bucket = b;
    t.dueByRoot = byRoot;
    let list = this.buckets.get(b);
    if (list === undefined) {
      list = [];
      this.buckets.set(b, list);
    }
    list.push(t);
    this.entries++;
    if (b < this.nextBucket) this.nextBucket = b;
  }

  /** True when dueMs falls in an earlier bucket than the trace's current one. */
  isEarlier(t: PendingTrace, dueMs: number): boolean {
    return Math.ceil(dueMs / this.tickMs) < t.bucket;
  }

  /** The due time (ms) of a trace's current bucket. */
  dueMs(t: PendingTrace): number {
    return t.bucket * this.tickMs;
  }

  /**
   * Takes the due buckets out of the schedule (no decision yet) and returns
   * them with their bucket numbers. A trace's entry is live while
   * `!t.done && t.bucket === b`. Anything scheduled into a due bucket
   * afterwards lowers nextBucket again and is found by the next call.
   */
  takeDue(now: number): DueBucket[] {
    const due: DueBucket[] = [];
    if (this.buckets.size === 0) return due;
    const nowB = Math.floor(now / this.tickMs);
    if (nowB < this.nextBucket) return due;
    const take = (b: number) => {
      const list = this.buckets.get(b);
      if (list === undefined) return;
      this.buckets.delete(b);
      this.entries -= list.length;
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
   * n traces left the buffer before their bucket fired (spilled). Their dead
   * entries are dropped once they are a 32nd of the entries (each PendingTrace
   * kept alive there costs far more than its index entry, and keeps an
   * old-space page from being freed: at a half, ~7k of them fragmented V8's
   * old space; a walk costs ~32 entries a spill).
   */
  left(n: number): void {
    this.stale += n;
    if (this.stale > 128 && this.stale * 32 > this.entries) this.compact();
  }

  private compact(): void {
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
    this.entries = n;
    this.stale = 0;
  }

  clear(): void {
    this.buckets.clear();
    this.entries = 0;
    this.stale = 0;
  }
}
