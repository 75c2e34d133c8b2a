/**
 * How fast the sending queue drains, for the retry hint given to a refused
 * caller: the delay until the queue will have room for its request.
 *
 * The consumers take a request off the queue whenever one finishes a send,
 * so while requests are waiting the gaps between takes measure the drain
 * (a moving average, weight 0.2 per take). Gaps after a take that left the
 * queue empty measure the arrivals instead and are not used. While the
 * queue is backlogged and nothing is taken (a stalled backend) the time
 * since the last take is a lower bound of the current gap, and is used when
 * larger.
 */
import type { Clock } from '../../collector/component.js';

export const MIN_HINT_MS = 10;
export const MAX_HINT_MS = 30_000;

export class DrainRate {
  private lastTake = -1;
  /** The previous take left requests waiting: the next gap measures the drain. */
  private backlogged = false;
  private gapMs: number | undefined = undefined;

  constructor(private readonly clock: Clock) {}

  /** A consumer took a request; `left` requests still wait. */
  taken(left: number): void {
    const now = this.clock.now();
    if (this.backlogged && this.lastTake >= 0) {
      const gap = now - this.lastTake;
      this.gapMs = this.gapMs === undefined ? gap : this.gapMs * 0.8 + gap * 0.2;
    }
    this.lastTake = now;
    this.backlogged = left > 0;
  }

  /** Milliseconds per request taken, or undefined before a backlog was ever drained. */
  msPerRequest(): number | undefined {
    if (this.gapMs === undefined) return undefined;
    if (!this.backlogged) return this.gapMs;
    return Math.max(this.gapMs, this.clock.now() - this.lastTake);
  }

  /**
   * The delay until `need` more requests have been taken (room for the
   * refused one), bounded to [MIN_HINT_MS, MAX_HINT_MS]; undefined when
   * the drain was never measured.
   */
  delayFor(need: number): number | undefined {
    const per = this.msPerRequest();
    if (per === undefined) return undefined;
    return Math.min(MAX_HINT_MS, Math.max(MIN_HINT_MS, Math.ceil(need * per)));
  }
}
