/**
 * Records what reaches the sink, on top of OtlpTestBackend: the backend hands
 * each request's scanned spans to this recorder as it arrives (one scan per
 * request, no kept body), which counts spans per trace and the latency from
 * each span's end time to its arrival.
 */
import { OtlpTestBackend, type BackendMode, type ReceivedRequest } from './sink/backend.js';
import type { Span } from '../collector/pdata/spans.js';
import type { Fault } from './scenario.js';

/** Log-spaced latency histogram: bucket i covers [BASE*R^(i-1), BASE*R^i) ms. */
export class LatencyHistogram {
  static readonly BASE = 0.05;
  static readonly R = 1.1;
  readonly buckets = new Float64Array(200);
  count = 0;
  max = 0;
  sum = 0;
  add(ms: number, n = 1): void {
    const v = ms < 0 ? 0 : ms;
    const i = v <= LatencyHistogram.BASE ? 0 : Math.min(199, 1 + Math.floor(Math.log(v / LatencyHistogram.BASE) / Math.log(LatencyHistogram.R)));
    this.buckets[i] += n;
    this.count += n;
    this.sum += v * n;
    if (v > this.max) this.max = v;
  }
  /** Upper edge of the bucket holding quantile q (within 10%). */
  quantile(q: number): number {
    if (this.count === 0) return NaN;
    const target = q * this.count;
    let acc = 0;
    for (let i = 0; i < this.buckets.length; i++) {
      acc += this.buckets[i];
      if (acc >= target) return Math.min(this.max, LatencyHistogram.BASE * Math.pow(LatencyHistogram.R, i));
    }
    return this.max;
  }
  summary(): { p50: number; p90: number; p99: number; max: number; mean: number; count: number } {
    return { p50: this.quantile(0.5), p90: this.quantile(0.9), p99: this.quantile(0.99), max: this.max, mean: this.count ? this.sum / this.count : NaN, count: this.count };
  }
}

export class SinkRecorder {
  readonly backend: OtlpTestBackend;
  /** Spans accepted by the sink per trace id (hex). */
  readonly perTrace = new Map<string, number>();
  readonly latency = new LatencyHistogram();
  readonly rootLatency = new LatencyHistogram();
  /** Accepted spans per second since t0 (index = second). */
  readonly perSecond: number[] = [];
  acceptedSpans = 0;
  rejectedSpans = 0;
  /** Spans in requests the sink answered with an error (each attempt). */
  failedAttemptSpans = 0;
  requests = 0;
  failedRequests = 0;
  undecodable = 0;
  private timer: NodeJS.Timeout | undefined;
  private t0 = Date.now();
  private faultTimer: NodeJS.Timeout | undefined;
  currentFault = 'ok';

  /** Counts only (scenario `sink.record: counts`): no per-trace arrivals, no latency. */
  readonly countOnly: boolean;

  constructor(opts: { recordIds?: boolean; countOnly?: boolean } = {}) {
    this.countOnly = opts.countOnly ?? false;
    this.backend = new OtlpTestBackend({
      recordIds: opts.recordIds ?? false,
      countOnly: this.countOnly,
      onRequest: (r, spans, rejected, undecodable) => this.onRequest(r, spans, rejected, undecodable),
    });
  }

  async start(t0 = Date.now()): Promise<void> {
    this.t0 = t0;
    await this.backend.start();
    this.timer = setInterval(() => this.drain(), 100);
    this.timer.unref();
  }

  setT0(t0: number): void {
    this.t0 = t0;
  }

  get grpcPort(): number {
    return Number(this.backend.grpcEndpoint.split(':').pop());
  }
  get httpPort(): number {
    return Number(this.backend.httpEndpoint.split(':').pop());
  }

  private onRequest(r: ReceivedRequest, spans: readonly Span[] | undefined, rejected: number, undecodable: boolean): void {
    this.requests++;
    if (r.outcome === 'error') {
      this.failedRequests++;
      this.failedAttemptSpans += r.spans;
      if (undecodable) this.undecodable++;
      return;
    }
    this.rejectedSpans += rejected;
    const sec = Math.max(0, Math.floor((r.at - this.t0) / 1000));
    while (this.perSecond.length <= sec) this.perSecond.push(0);
    this.perSecond[sec] += r.spans - rejected;
    this.acceptedSpans += r.spans - rejected;
    if (spans === undefined) return;
    for (let i = rejected; i < spans.length; i++) {
      const s = spans[i];
      this.perTrace.set(s.traceId, (this.perTrace.get(s.traceId) ?? 0) + 1);
      const lat = r.at - s.endNs / 1e6;
      this.latency.add(lat);
      if (!s.hasParent) this.rootLatency.add(lat);
    }
  }

  /** Lets go of the backend's per-request records (everything was counted on arrival). */
  drain(): void {
    const rx = this.backend.received;
    if (rx.length > 10_000) rx.length = 0;
  }

  /** Switches the sink's mode. Requests recorded so far are processed first, under the mode they met. */
  setMode(mode: BackendMode): void {
    void this.backend.setMode(mode);
  }

  /** Applies a scenario's fault schedule relative to `startAt` (ms epoch). */
  scheduleFaults(faults: Fault[], startAt: number, endAt: number): void {
    if (faults.length === 0) return;
    if (this.faultTimer) clearInterval(this.faultTimer); // a later call re-anchors the schedule
    const tick = () => {
      // Faults at 0s are in place before the first request.
      const t = Math.max(0, Date.now() - startAt);
      let active: Fault | undefined;
      for (const f of faults) if (t >= f.at_ms && (f.for_ms === undefined || t < f.at_ms + f.for_ms)) active = f;
      const key = active ? JSON.stringify(active) : 'ok';
      if (Date.now() >= endAt) {
        // Keep the mode: the generator may still be sending its last requests. The
        // runner calls clearFaults() once the generator is done (then the drain starts).
        if (this.faultTimer) clearInterval(this.faultTimer);
        this.faultTimer = undefined;
        return;
      }
      if (key !== this.currentFault) {
        this.currentFault = key;
        this.setMode(faultMode(active));
      }
    };
    tick();
    this.faultTimer = setInterval(tick, 50);
    this.faultTimer.unref();
  }

  /** Stops the schedule and puts the sink back to accepting everything. */
  clearFaults(): void {
    if (this.faultTimer) clearInterval(this.faultTimer);
    this.faultTimer = undefined;
    if (this.currentFault !== 'ok') {
      this.currentFault = 'ok';
      this.setMode({ kind: 'ok' });
    }
  }

  faultLabel(): string {
    if (this.currentFault === 'ok') return 'ok';
    const f = JSON.parse(this.currentFault) as Fault;
    return f.mode;
  }

  async close(): Promise<void> {
    this.clearFaults();
    if (this.timer) clearInterval(this.timer);
    this.drain();
    await this.backend.close();
  }
}

export function faultMode(f: Fault | undefined): BackendMode {
  if (f === undefined) return { kind: 'ok' };
  switch (f.mode) {
    case 'ok':
      return { kind: 'ok' };
    case 'slow':
      return { kind: 'slow', delayMs: f.delay_ms ?? 500 };
    case 'down':
      return { kind: 'down', refuse: f.refuse === true };
    case '503':
      return { kind: 'down' };
    case '429':
      return { kind: 'throttle', retryAfterMs: (f.retry_after_s ?? 1) * 1000 };
    case 'partial':
      return { kind: 'partial', rejectSpans: f.reject ?? 1 };
    case 'permanent':
      return { kind: 'permanent' };
  }
}
