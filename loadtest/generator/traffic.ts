/** Traffic configuration (the `traffic:` block of a scenario) and the rate profile over time. */
import type { Protocol } from './transport.js';
import type { ShapeConfig } from './shape.js';

export interface Phase {
  duration_ms: number;
  /** Constant rate in this phase (spans/s). */
  rate?: number;
  /** Linear ramp from the previous rate (or `rate`) to this one over the phase. */
  ramp_to?: number;
}

export interface TrafficConfig {
  /** Base rate in spans per second. */
  rate: number;
  duration_ms: number;
  protocol: Protocol;
  gzip: boolean;
  spans_per_request: number;
  /** Concurrent requests per worker (like parallel exporters). */
  max_in_flight: number;
  /** Requests waiting for a slot before new ones are dropped client-side (as an SDK's full queue does). */
  max_queued: number;
  /** A partial batch is sent after this long (the SDK batch processor's schedule delay). */
  flush_interval_ms: number;
  /** Worker threads; 0 runs in the calling thread (tests). */
  workers: number;
  seed: string | number;
  phases: Phase[];
  /** Periodic bursts: for `length_ms` of every `every_ms`, the rate is `rate`. */
  bursts: { every_ms: number; length_ms: number; rate: number } | undefined;
  /** `ignore_hints`: retry on the own backoff whatever RetryInfo / Retry-After say (a misbehaving client, for retry storms). */
  retry: { initial_ms: number; max_ms: number; multiplier: number; max_attempts: number; ignore_hints?: boolean };
  timeout_ms: number;
  shape: ShapeConfig;
  /**
   * Replay mode (protobuf only): each worker encodes `replay_pool` requests at
   * start and re-sends copies with fresh ids and times (see replay.ts). Cheap,
   * for throughput; attribute values repeat.
   */
  replay?: boolean;
  /** Requests in the replay pool (default 64). */
  replay_pool?: number;
}

/** Spans per second at `tMs` after the start. */
export function rateAt(t: TrafficConfig, tMs: number): number {
  let r = t.rate;
  if (t.phases.length > 0) {
    let start = 0;
    let prev = t.phases[0].rate ?? t.rate;
    let found = false;
    for (const p of t.phases) {
      const from = p.rate ?? prev;
      const to = p.ramp_to ?? from;
      if (tMs < start + p.duration_ms) {
        r = from + ((to - from) * (tMs - start)) / Math.max(1, p.duration_ms);
        found = true;
        break;
      }
      start += p.duration_ms;
      prev = to;
    }
    if (!found) r = prev;
  }
  const b = t.bursts;
  if (b !== undefined && b.every_ms > 0 && tMs % b.every_ms < b.length_ms) r = b.rate;
  return r;
}

/** Spans the schedule asks for over [0, durationMs). */
export function scheduledSpans(t: TrafficConfig): number {
  let n = 0;
  const step = 10;
  for (let x = 0; x < t.duration_ms; x += step) n += (rateAt(t, x) * Math.min(step, t.duration_ms - x)) / 1000;
  return Math.round(n);
}

/** Scales every rate by `factor` (the runner's --rate). */
export function scaleRates(t: TrafficConfig, factor: number): TrafficConfig {
  return {
    ...t,
    rate: t.rate * factor,
    phases: t.phases.map((p) => ({ ...p, rate: p.rate === undefined ? undefined : p.rate * factor, ramp_to: p.ramp_to === undefined ? undefined : p.ramp_to * factor })),
    bursts: t.bursts ? { ...t.bursts, rate: t.bursts.rate * factor } : undefined,
  };
}

/** Stretches or shrinks the timeline to a new duration (the runner's --duration). */
export function scaleDuration(t: TrafficConfig, durationMs: number): TrafficConfig {
  const f = durationMs / t.duration_ms;
  return {
    ...t,
    duration_ms: durationMs,
    phases: t.phases.map((p) => ({ ...p, duration_ms: p.duration_ms * f })),
    bursts: t.bursts ? { ...t.bursts, every_ms: t.bursts.every_ms * f, length_ms: t.bursts.length_ms * f } : undefined,
  };
}
