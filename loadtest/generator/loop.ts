/**
 * One generator's send loop: follows the rate schedule (its share of it),
 * draws and encodes traces, sends them with SDK-like retries, and keeps the
 * ground truth (per trace: span count, classes, spans the collector accepted).
 *
 * Runs inside a worker thread (worker.ts) or, for tests, in the calling thread.
 */
import fs from 'node:fs';
import { performance, type EventLoopUtilization } from 'node:perf_hooks';
import { ServiceGraph, TraceGenerator } from './model.js';
import { JsonEncoder, ProtoEncoder, placeTrace, type BatchItem, type SentTrace } from './encode.js';
import { createTransport, type AttemptResult, type Transport } from './transport.js';
import { rateAt, type TrafficConfig } from './traffic.js';
import { ReplayRewriter, buildReplayPool } from './replay.js';

export interface LoopConfig {
  traffic: TrafficConfig;
  endpoint: string;
  index: number;
  count: number;
  /** Wall-clock ms at which the schedule starts (shared by all workers). */
  startAt: number;
  /** Wall-clock ms after which nothing is retried and queued requests are abandoned. */
  hardDeadline: number;
  recordTruth: boolean;
}

export interface GenStats {
  elapsed_ms: number;
  target_spans: number;
  generated_spans: number;
  generated_traces: number;
  offered_spans: number;
  offered_requests: number;
  accepted_spans: number;
  accepted_requests: number;
  /** partial_success.rejected_spans summed. */
  partial_rejected_spans: number;
  /** Spans of requests that finally failed, by the last attempt's code. */
  refused_spans: Record<string, number>;
  /** Spans of every failed attempt, by code (what the collector's refused counter sees). */
  failed_attempt_spans: Record<string, number>;
  retries: number;
  /** Spans discarded before sending because the client queue was full (backpressure). */
  client_dropped_spans: number;
  bytes_sent: number;
  in_flight: number;
  queued: number;
  /** How far generation fell behind the schedule (generator CPU), worst and at the end. */
  max_lag_ms: number;
  lag_ms: number;
  /** Time spent generating and encoding. */
  busy_ms: number;
  /** Wall time the loop's event loop was busy (generation, encoding, the client's sends); counts waits for a CPU too. */
  loop_active_ms: number;
  /** CPU time of the loop's thread (Linux /proc/thread-self; 0 elsewhere). In-thread runs include whatever else the thread does. */
  cpu_ms: number;
  /** Request round-trip times (log2 ms buckets, bucket i holds [2^(i-1), 2^i) ms). */
  rtt_buckets: number[];
}

export function emptyStats(): GenStats {
  return {
    elapsed_ms: 0,
    target_spans: 0,
    generated_spans: 0,
    generated_traces: 0,
    offered_spans: 0,
    offered_requests: 0,
    accepted_spans: 0,
    accepted_requests: 0,
    partial_rejected_spans: 0,
    refused_spans: {},
    failed_attempt_spans: {},
    retries: 0,
    client_dropped_spans: 0,
    bytes_sent: 0,
    in_flight: 0,
    queued: 0,
    max_lag_ms: 0,
    lag_ms: 0,
    busy_ms: 0,
    loop_active_ms: 0,
    cpu_ms: 0,
    rtt_buckets: new Array(24).fill(0),
  };
}

export function addStats(a: GenStats, b: GenStats): GenStats {
  const out = emptyStats();
  for (const k of Object.keys(out) as Array<keyof GenStats>) {
    const x = a[k];
    const y = b[k];
    if (typeof x === 'number' && typeof y === 'number') {
      (out as unknown as Record<string, number>)[k] = k === 'max_lag_ms' || k === 'lag_ms' || k === 'elapsed_ms' ? Math.max(x, y) : x + y;
    }
  }
  for (const k of ['refused_spans', 'failed_attempt_spans'] as const) {
    for (const src of [a[k], b[k]]) for (const [c, n] of Object.entries(src)) out[k][c] = (out[k][c] ?? 0) + n;
  }
  out.rtt_buckets = a.rtt_buckets.map((v, i) => v + (b.rtt_buckets[i] ?? 0));
  return out;
}

/** Ground truth per generated trace (compact, transferable). */
export interface Truth {
  count: number;
  /** 16 bytes per trace. */
  ids: Uint8Array;
  spans: Int32Array;
  accepted: Int32Array;
  classes: Uint8Array;
  durationMs: Float32Array;
  /** 1 when a partial_success touched a request holding spans of this trace (which spans is unknown). */
  uncertain: Uint8Array;
}

class TruthBuilder {
  count = 0;
  ids = new Uint8Array(16 * 1024);
  spans = new Int32Array(1024);
  accepted = new Int32Array(1024);
  classes = new Uint8Array(1024);
  durationMs = new Float32Array(1024);
  uncertain = new Uint8Array(1024);

  add(t: SentTrace): number {
    if (this.count === this.spans.length) this.grow();
    const i = this.count++;
    this.ids.set(t.ids.subarray(0, 16), 16 * i);
    this.spans[i] = t.spans.length;
    this.classes[i] = t.classes;
    this.durationMs[i] = t.durationMs;
    return i;
  }
  /** A replayed trace; the caller writes its 16 id bytes at `ids[16 * i]`. */
  addReplayed(spans: number, classes: number, durationMs: number): number {
    if (this.count === this.spans.length) this.grow();
    const i = this.count++;
    this.spans[i] = spans;
    this.classes[i] = classes;
    this.durationMs[i] = durationMs;
    return i;
  }
  private grow(): void {
    const n = this.spans.length * 2;
    const g = <T extends Int32Array | Uint8Array | Float32Array>(a: T, size: number): T => {
      const b = new (a.constructor as new (n: number) => T)(size);
      b.set(a);
      return b;
    };
    this.ids = g(this.ids, 16 * n);
    this.spans = g(this.spans, n);
    this.accepted = g(this.accepted, n);
    this.classes = g(this.classes, n);
    this.durationMs = g(this.durationMs, n);
    this.uncertain = g(this.uncertain, n);
  }
  build(): Truth {
    const n = this.count;
    return {
      count: n,
      ids: this.ids.slice(0, 16 * n),
      spans: this.spans.slice(0, n),
      accepted: this.accepted.slice(0, n),
      classes: this.classes.slice(0, n),
      durationMs: this.durationMs.slice(0, n),
      uncertain: this.uncertain.slice(0, n),
    };
  }
}

interface Request {
  body: Buffer;
  spans: number;
  /** Pairs (truth index, spans of that trace in this request). */
  traces: number[];
}

/** CPU time (user + system) of the calling thread in ms, from /proc/thread-self/stat; 0 where that does not exist. */
function threadCpuMs(): number {
  try {
    const stat = fs.readFileSync('/proc/thread-self/stat', 'utf8');
    const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    // fields 14 and 15 of stat (utime, stime) in clock ticks (100 per second on Linux)
    return (Number(f[11]) + Number(f[12])) * 10;
  } catch {
    return 0;
  }
}

const TICK_MS = 5;
const MAX_WORK_PER_TICK_MS = 25;

export class GeneratorLoop {
  readonly stats = emptyStats();
  private readonly cfg: LoopConfig;
  private readonly t: TrafficConfig;
  private readonly gen: TraceGenerator;
  private readonly encode: (items: readonly BatchItem[]) => Buffer;
  private readonly transport: Transport;
  private readonly truth = new TruthBuilder();
  private pending: BatchItem[] = [];
  private pendingSince = 0;
  private readonly queue: Request[] = [];
  private inFlight = 0;
  private due = 0;
  private lastTick = 0;
  private stopped = false;
  private finished = false;
  private resolveDone: (() => void) | undefined;
  private readonly traceIndex = new Map<SentTrace, number>();
  /** Replay mode: the pool's rewriter, the next entry, cycles done, truth index per pool trace this cycle. */
  private readonly replay: ReplayRewriter | undefined;
  private replayPos = 0;
  private replayCycle = 0;
  private replayTruth: Int32Array = new Int32Array(0);

  constructor(cfg: LoopConfig) {
    this.cfg = cfg;
    this.t = cfg.traffic;
    const graph = new ServiceGraph(this.t.shape, this.t.seed);
    this.gen = new TraceGenerator(graph, `${this.t.seed}:${cfg.index}`);
    if (this.t.replay) {
      if (this.t.protocol === 'http/json') throw new Error('traffic.replay works only with protobuf encodings (grpc, http/protobuf), not http/json');
      const pool = buildReplayPool(this.gen, new ProtoEncoder(graph), this.t.spans_per_request, this.t.replay_pool ?? 64, Date.now());
      this.replay = new ReplayRewriter(pool);
      this.replayTruth = new Int32Array(pool.traces.length).fill(-1);
    }
    if (this.t.protocol === 'http/json') {
      const je = new JsonEncoder(graph);
      this.encode = (items) => je.encode(items);
    } else {
      const pe = new ProtoEncoder(graph);
      this.encode = (items) => pe.encode(items);
    }
    this.transport = createTransport({
      protocol: this.t.protocol,
      endpoint: cfg.endpoint,
      gzip: this.t.gzip,
      timeoutMs: this.t.timeout_ms,
      maxSockets: this.t.max_in_flight,
    });
  }

  /** Asks the loop to stop generating now (it still drains what it has). */
  stop(): void {
    this.stopped = true;
  }

  run(onProgress?: (s: GenStats) => void, progressEveryMs = 500): Promise<{ stats: GenStats; truth: Truth }> {
    return new Promise((resolve) => {
      let lastProgress = 0;
      const wait = Math.max(0, this.cfg.startAt - Date.now());
      let elu0: EventLoopUtilization | undefined;
      let cpu0 = 0;
      const measure = () => {
        if (elu0 === undefined) return;
        this.stats.loop_active_ms = performance.eventLoopUtilization(elu0).active;
        const c = threadCpuMs();
        if (c > 0) this.stats.cpu_ms = c - cpu0;
      };
      this.resolveDone = () => {
        measure();
        this.transport.close();
        this.stats.in_flight = 0;
        this.stats.queued = 0;
        resolve({ stats: this.stats, truth: this.truth.build() });
      };
      const tick = () => {
        const now = Date.now();
        this.step(now);
        if (onProgress !== undefined && now - lastProgress >= progressEveryMs) {
          lastProgress = now;
          measure();
          onProgress(this.snapshot());
        }
        if (!this.finished) setTimeout(tick, TICK_MS);
      };
      setTimeout(() => {
        this.lastTick = this.cfg.startAt;
        elu0 = performance.eventLoopUtilization();
        cpu0 = threadCpuMs();
        tick();
      }, wait);
    });
  }

  snapshot(): GenStats {
    return { ...this.stats, refused_spans: { ...this.stats.refused_spans }, failed_attempt_spans: { ...this.stats.failed_attempt_spans }, rtt_buckets: this.stats.rtt_buckets.slice() };
  }

  private step(now: number): void {
    const t = this.t;
    const elapsed = now - this.cfg.startAt;
    const share = 1 / this.cfg.count;
    const generating = !this.stopped && elapsed < t.duration_ms;
    if (generating) {
      // Integrate the schedule up to now.
      for (let x = this.lastTick; x < now; x += TICK_MS) {
        const dt = Math.min(TICK_MS, now - x);
        this.due += (rateAt(t, x - this.cfg.startAt) * share * dt) / 1000;
      }
      this.lastTick = now;
      this.stats.target_spans = Math.round(this.due);
      const workStart = performance.now();
      if (this.replay !== undefined) {
        while (this.stats.generated_spans < this.due && performance.now() - workStart < MAX_WORK_PER_TICK_MS) this.replayOne(now);
      } else {
        while (this.stats.generated_spans < this.due && performance.now() - workStart < MAX_WORK_PER_TICK_MS) {
          this.generateOne(now);
        }
      }
      this.stats.busy_ms += performance.now() - workStart;
      const behind = this.due - this.stats.generated_spans;
      const r = rateAt(t, elapsed) * share;
      this.stats.lag_ms = behind > 0 && r > 0 ? (behind / r) * 1000 : 0;
      if (this.stats.lag_ms > this.stats.max_lag_ms) this.stats.max_lag_ms = this.stats.lag_ms;
      if (this.pending.length > 0 && now - this.pendingSince >= t.flush_interval_ms) this.flush();
    } else {
      if (this.pending.length > 0) this.flush();
      if (this.replay !== undefined) this.replayCloseTraces(now);
      if (elapsed >= t.duration_ms || this.stopped) this.stats.lag_ms = 0;
      if (now > this.cfg.hardDeadline) {
        // Abandon what is still queued (never offered): counted as dropped by the client.
        for (const q of this.queue.splice(0)) this.stats.client_dropped_spans += q.spans;
      }
      if (this.inFlight === 0 && this.queue.length === 0) {
        this.finished = true;
        this.stats.elapsed_ms = now - this.cfg.startAt;
        this.resolveDone?.();
        return;
      }
    }
    this.stats.elapsed_ms = now - this.cfg.startAt;
    this.stats.in_flight = this.inFlight;
    this.stats.queued = this.queue.length;
  }

  private generateOne(now: number): void {
    // Wall-clock times are set when the trace's first batch is sent (see flush).
    const t = this.gen.next() as SentTrace;
    t.baseMs = NaN;
    this.stats.generated_traces++;
    this.stats.generated_spans += t.spans.length;
    if (this.pending.length === 0) this.pendingSince = now;
    for (let i = 0; i < t.spans.length; i++) {
      this.pending.push({ trace: t, span: i });
      if (this.pending.length >= this.t.spans_per_request) {
        this.flush();
        this.pendingSince = now;
      }
    }
  }

  /** Replay mode: sends the next pool entry with this cycle's ids and times (whole requests, no flush timer). */
  private replayOne(now: number): void {
    const rw = this.replay!;
    const pool = rw.pool;
    const e = pool.entries[this.replayPos];
    if (this.replayPos === 0) {
      // Unique per (worker, cycle): every id of this pass over the pool is new.
      rw.setKey((this.replayCycle * this.cfg.count + this.cfg.index) >>> 0);
      this.replayCycle++;
    }
    const traces: number[] = [];
    const tr = e.traces;
    for (let k = 0; k < tr.length; k += 2) {
      const ti = tr[k];
      const pt = pool.traces[ti];
      if (pt.firstEntry === this.replayPos) {
        // The trace starts in this request: its root ends now, as in the normal loop.
        rw.startTrace(ti, now);
        this.stats.generated_traces++;
        let idx = -1;
        if (this.cfg.recordTruth) {
          idx = this.truth.addReplayed(pt.spans, pt.classes, pt.durationMs);
          rw.traceId(ti, this.truth.ids, 16 * idx);
        }
        this.replayTruth[ti] = idx;
      }
      traces.push(this.replayTruth[ti], tr[k + 1]);
    }
    this.stats.generated_spans += e.spans;
    this.replayPos = (this.replayPos + 1) % pool.entries.length;
    if (this.queue.length >= this.t.max_queued) {
      this.stats.client_dropped_spans += e.spans;
      return;
    }
    this.queue.push({ body: rw.render(e), spans: e.spans, traces });
    this.pump();
  }

  /** Replay mode, at the end: sends the rest of the trace(s) cut by the last request, as the normal loop flushes. */
  private replayCloseTraces(now: number): void {
    const pool = this.replay!.pool;
    while (this.replayPos !== 0 && pool.traces[pool.entries[this.replayPos].traces[0]].firstEntry < this.replayPos) this.replayOne(now);
  }

  private flush(): void {
    const items = this.pending;
    this.pending = [];
    if (items.length === 0) return;
    const traces: number[] = [];
    let last: SentTrace | undefined;
    const now = Date.now();
    for (const it of items) {
      if (it.trace !== last) {
        last = it.trace;
        // The root span ends as its first batch leaves: what the sink sees after that is pipeline latency.
        if (Number.isNaN(last.baseMs)) placeTrace(last, now - last.durationMs);
        let idx = this.traceIndex.get(last);
        if (idx === undefined && this.cfg.recordTruth) {
          idx = this.truth.add(last);
          this.traceIndex.set(last, idx);
        }
        traces.push(idx ?? -1, 0);
      }
      traces[traces.length - 1]++;
    }
    // Only the trace being cut by this batch can appear in the next one.
    const tail = items[items.length - 1].trace;
    const tailIdx = this.traceIndex.get(tail);
    this.traceIndex.clear();
    if (tailIdx !== undefined) this.traceIndex.set(tail, tailIdx);
    if (this.queue.length >= this.t.max_queued) {
      // The client's queue is full: drop, as an SDK does, and count it (truth keeps accepted = 0).
      this.stats.client_dropped_spans += items.length;
      return;
    }
    const req: Request = { body: this.encode(items), spans: items.length, traces };
    this.queue.push(req);
    this.pump();
  }

  private pump(): void {
    while (this.inFlight < this.t.max_in_flight && this.queue.length > 0) {
      const req = this.queue.shift()!;
      this.inFlight++;
      this.stats.offered_spans += req.spans;
      this.stats.offered_requests++;
      void this.deliver(req).finally(() => {
        this.inFlight--;
        this.pump();
      });
    }
  }

  private async deliver(req: Request): Promise<void> {
    const r = this.t.retry;
    let delay = r.initial_ms;
    for (let attempt = 1; ; attempt++) {
      const t0 = performance.now();
      this.stats.bytes_sent += req.body.length;
      const res: AttemptResult = await this.transport.send(req.body);
      const rtt = performance.now() - t0;
      this.stats.rtt_buckets[Math.min(23, Math.max(0, Math.ceil(Math.log2(Math.max(rtt, 0.5))) + 1))]++;
      if (res.ok) {
        const rejected = Math.min(req.spans, res.rejectedSpans);
        this.stats.accepted_spans += req.spans - rejected;
        this.stats.partial_rejected_spans += rejected;
        this.stats.accepted_requests++;
        if (this.cfg.recordTruth) {
          for (let k = 0; k < req.traces.length; k += 2) {
            const idx = req.traces[k];
            if (idx < 0) continue;
            this.truth.accepted[idx] += req.traces[k + 1];
            if (rejected > 0) this.truth.uncertain[idx] = 1;
          }
        }
        return;
      }
      this.stats.failed_attempt_spans[res.code] = (this.stats.failed_attempt_spans[res.code] ?? 0) + req.spans;
      const wait = res.retryAfterMs !== undefined && !r.ignore_hints ? Math.max(res.retryAfterMs, 0) : delay * (0.8 + 0.4 * Math.random());
      if (!res.retryable || attempt >= r.max_attempts || Date.now() + wait > this.cfg.hardDeadline) {
        this.refuse(req, res.code);
        return;
      }
      this.stats.retries++;
      await new Promise((resolve) => setTimeout(resolve, Math.min(wait, Math.max(0, this.cfg.hardDeadline - Date.now()))));
      delay = Math.min(r.max_ms, delay * r.multiplier);
    }
  }

  private refuse(req: Request, code: string): void {
    this.stats.refused_spans[code] = (this.stats.refused_spans[code] ?? 0) + req.spans;
  }
}
