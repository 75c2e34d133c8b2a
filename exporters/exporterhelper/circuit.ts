/**
 * Per-exporter circuit breaker. Closed: every consumer sends. After
 * `threshold` consecutive retryable failures it opens: nothing is sent until
 * the probe time, then exactly one request is let through (half-open). If it
 * succeeds the circuit closes and everyone sends again; if it fails the circuit
 * reopens with a longer wait (the retry backoff). Data waits in the queue
 * meanwhile; nothing is dropped by the circuit itself.
 */
import type { Clock } from '../../collector/component.js';
import type { Timers } from './timers.js';
import { jitter, nextInterval, type BackoffPolicy } from './backoff.js';

export const CIRCUIT_CLOSED = 0;
export const CIRCUIT_OPEN = 1;
export const CIRCUIT_HALF_OPEN = 2;

export class CircuitBreaker {
  state = CIRCUIT_CLOSED;
  /** When open: the earliest time a probe may go. */
  openUntil = 0;
  private failures = 0;
  private intervalMs: number;
  private waiters: Array<() => void> = [];

  constructor(
    private readonly threshold: number,
    private readonly policy: BackoffPolicy,
    private readonly clock: Clock,
    private readonly timers: Timers,
    private readonly random: () => number,
    private readonly onState: (state: number) => void,
  ) {
    this.intervalMs = policy.initialMs;
  }

  /**
   * Resolves true when the caller may send (as a probe if the circuit was
   * open), false if `signal` aborted first. Synchronous `true` when closed.
   */
  acquire(signal: AbortSignal): true | Promise<boolean> {
    if (this.state === CIRCUIT_CLOSED) return true;
    return this.acquireSlow(signal);
  }

  private async acquireSlow(signal: AbortSignal): Promise<boolean> {
    for (;;) {
      if (signal.aborted) return false;
      if (this.state === CIRCUIT_CLOSED) return true;
      if (this.state === CIRCUIT_OPEN) {
        const wait = this.openUntil - this.clock.now();
        if (wait <= 0) {
          this.setState(CIRCUIT_HALF_OPEN);
          return true; // this caller is the probe
        }
        if (!(await this.timers.sleep(wait, signal))) return false;
        continue;
      }
      // Half-open: a probe is in flight; wait for its outcome.
      const ok = await new Promise<boolean>((resolve) => {
        const onAbort = () => resolve(false);
        signal.addEventListener('abort', onAbort, { once: true });
        this.waiters.push(() => {
          signal.removeEventListener('abort', onAbort);
          resolve(true);
        });
      });
      if (!ok) return false;
    }
  }

  /** The backend answered (success, or a permanent error about the data). */
  onAnswer(): void {
    this.failures = 0;
    if (this.state !== CIRCUIT_CLOSED) {
      this.intervalMs = this.policy.initialMs;
      this.setState(CIRCUIT_CLOSED);
      this.wake();
    }
  }

  /** A retryable failure (unreachable, timed out, throttled). */
  onFailure(retryAfterMs: number | undefined): void {
    this.failures++;
    if (this.state === CIRCUIT_HALF_OPEN || (this.state === CIRCUIT_CLOSED && this.failures >= this.threshold)) {
      this.open(retryAfterMs);
    } else if (this.state === CIRCUIT_OPEN && retryAfterMs !== undefined) {
      this.openUntil = Math.max(this.openUntil, this.clock.now() + retryAfterMs);
    }
  }

  /** The probe ended without an answer (shutdown abort): let another caller probe. */
  release(): void {
    if (this.state === CIRCUIT_HALF_OPEN) {
      this.state = CIRCUIT_OPEN;
      this.onState(CIRCUIT_OPEN);
      this.wake();
    }
  }

  /** Milliseconds until a probe may go (0 when closed). */
  remainingMs(): number {
    return this.state === CIRCUIT_CLOSED ? 0 : Math.max(0, this.openUntil - this.clock.now());
  }

  private open(retryAfterMs: number | undefined): void {
    let wait = jitter(this.intervalMs, this.policy.randomization, this.random);
    if (retryAfterMs !== undefined && retryAfterMs > wait) wait = retryAfterMs;
    this.intervalMs = nextInterval(this.intervalMs, this.policy);
    this.openUntil = this.clock.now() + wait;
    this.setState(CIRCUIT_OPEN);
    this.wake(); // callers waiting on a probe now wait for openUntil instead
  }

  private setState(s: number): void {
    if (this.state === s) return;
    this.state = s;
    this.onState(s);
  }

  private wake(): void {
    const w = this.waiters;
    this.waiters = [];
    for (const f of w) f();
  }
}
