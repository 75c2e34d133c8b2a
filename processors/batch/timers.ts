/**
 * Timers the batch processor schedules through, so tests can drive time by
 * hand. Production uses Node's timers.
 */
import type { Clock } from '../../collector/component.js';

export type TimerHandle = unknown;

export interface Timers {
  setTimeout(fn: () => void, ms: number): TimerHandle;
  clearTimeout(handle: TimerHandle): void;
}

export const realTimers: Timers = {
  setTimeout(fn, ms) {
    // Not unref'd: buffered data should be sent before the process exits.
    return setTimeout(fn, ms);
  },
  clearTimeout(handle) {
    clearTimeout(handle as NodeJS.Timeout);
  },
};

/** The clock's own timers when it has them (a test clock), else Node's. */
export function timersFor(clock: Clock): Timers {
  const c = clock as Partial<Timers>;
  if (typeof c.setTimeout === 'function' && typeof c.clearTimeout === 'function') return c as Timers;
  return realTimers;
}

interface Pending {
  at: number;
  seq: number;
  fn: () => void;
}

/**
 * Timers driven by a clock that tests move (FakeClock): `advance(ms)` moves the
 * clock and runs every timer that falls due, in order.
 */
export class ManualTimers implements Timers {
  private readonly pending = new Set<Pending>();
  private seq = 0;
  constructor(readonly clock: { now(): number; advance(ms: number): void }) {}

  now(): number {
    return this.clock.now();
  }

  setTimeout(fn: () => void, ms: number): TimerHandle {
    const p: Pending = { at: this.clock.now() + Math.max(0, ms), seq: this.seq++, fn };
    this.pending.add(p);
    return p;
  }

  clearTimeout(handle: TimerHandle): void {
    this.pending.delete(handle as Pending);
  }

  /** Number of scheduled timers (tests assert there is never more than one). */
  get size(): number {
    return this.pending.size;
  }

  /** Moves time forward by `ms`, firing due timers at their scheduled times. */
  advance(ms: number): void {
    const target = this.clock.now() + ms;
    for (;;) {
      let next: Pending | undefined;
      for (const p of this.pending) {
        if (p.at <= target && (next === undefined || p.at < next.at || (p.at === next.at && p.seq < next.seq))) next = p;
      }
      if (next === undefined) break;
      this.pending.delete(next);
      if (next.at > this.clock.now()) this.clock.advance(next.at - this.clock.now());
      next.fn();
    }
    if (target > this.clock.now()) this.clock.advance(target - this.clock.now());
  }
}
