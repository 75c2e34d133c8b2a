/**
 * Refusing cheaply: what the receiver knows, when a request's headers
 * arrive, about whether the pipeline will take it.
 *
 * The pipeline answers only when data is offered, so the receiver remembers
 * the last retryable refusal (with its retry hint) for a short time and
 * refuses requests that arrive meanwhile before reading their bodies. When
 * that time is over, one request (the probe) is let through and read
 * whole, and the others are refused for another hold. The probe's outcome
 * decides: accepted clears the refusal (everything is let through again),
 * refused re-arms it with the fresh hint; a probe that never reaches the
 * pipeline (a cut or malformed request) only costs one hold. Any accepted
 * request clears the refusal too.
 *
 * How long a refusal stands: its hint, at most `maxHoldMs` (200 ms by
 * default): long enough that a retry storm costs one full read per hold,
 * short enough that a pipeline that found room is not left idle for long.
 * The hint given to a refused client is what is left of the pipeline's own
 * hint, so clients that honour it come back when the pipeline expected to
 * have room.
 */
import type { Clock } from '../../collector/component.js';
import { CollectorError } from '../../collector/errors.js';

/** The receiver's view of the pipeline's state. */
export interface Admission {
  /**
   * At a request's headers: the error to answer at once, or undefined to read
   * the request and offer it to the pipeline.
   */
  check(): CollectorError | undefined;
  /** The pipeline took a request that `check()` let through. */
  accepted(): void;
  /** The pipeline refused a request (any error; only retryable ones are remembered). */
  refused(err: unknown): void;
}

export const DEFAULT_MAX_HOLD_MS = 200;
/** The smallest hint given to a client refused from memory, and the step of the hints. */
const MIN_HINT_MS = 10;

export class RefusalMemory implements Admission {
  private refusal: CollectorError | undefined = undefined;
  /** When the pipeline's hint runs out (the client hint counts down to it). */
  private hintUntil = 0;
  /** Until when requests are refused without a probe. */
  private holdUntil = 0;
  /** One error object per hint value, reused while the refusal stands. */
  private answer: CollectorError | undefined = undefined;
  private answerHint = -1;

  /** Told when refusing from memory starts (true) and ends (false). */
  onChange: ((refusing: boolean) => void) | undefined = undefined;

  constructor(
    private readonly clock: Clock,
    private readonly maxHoldMs = DEFAULT_MAX_HOLD_MS,
  ) {}

  check(): CollectorError | undefined {
    const r = this.refusal;
    if (r === undefined) return undefined;
    const now = this.clock.now();
    if (now >= this.holdUntil) {
      this.holdUntil = now + Math.min(this.maxHoldMs, Math.max(MIN_HINT_MS, this.hintUntil - now));
      return undefined; // the probe
    }
    // In steps of MIN_HINT_MS, so one answer object serves many refusals.
    const hint = Math.max(MIN_HINT_MS, Math.ceil((this.hintUntil - now) / MIN_HINT_MS) * MIN_HINT_MS);
    if (hint !== this.answerHint || this.answer === undefined) {
      this.answer = new CollectorError(r.code, r.message, true, hint);
      this.answerHint = hint;
    }
    return this.answer;
  }

  accepted(): void {
    if (this.refusal === undefined) return;
    this.refusal = undefined;
    this.onChange?.(false);
  }

  refused(err: unknown): void {
    if (!(err instanceof CollectorError) || !err.retryable || err.code === 'ERR_SHUTTING_DOWN') return;
    const now = this.clock.now();
    const hint = err.retryAfterMs ?? 1000;
    const first = this.refusal === undefined;
    this.refusal = err;
    this.hintUntil = now + hint;
    this.holdUntil = now + Math.min(hint, this.maxHoldMs);
    if (first) this.onChange?.(true);
  }

  /** True while requests are being refused from memory (for tests and metrics). */
  get refusing(): boolean {
    return this.refusal !== undefined;
  }
}
