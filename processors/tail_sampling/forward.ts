/**
 * Handing kept spans to the next stage: in chunks, with refused chunks kept
 * (bounded by the caller through `retryBytes`) and re-sent on a later tick,
 * every span that cannot be delivered counted with its reason.
 */
import type { CreateSettings } from '../../collector/component.js';
import { consumeAs, type LogsConsumer, type TracesConsumer } from '../../collector/consumer.js';
import type { Signal } from '../../collector/signals.js';
import { CollectorError } from '../../collector/errors.js';
import type { Span } from '../../collector/pdata/spans.js';
import type { DropReason } from '../../collector/telemetry/metrics.js';
import { SPAN_OVERHEAD_BYTES } from './store.js';
import type { TailSamplingMetrics, TickWarnings } from './metrics.js';

/** Spans handed to the next stage per consume call at most. */
const FORWARD_CHUNK = 8192;
/** Retries (one per tick) of a batch the next stage refused with a retryable error. */
export const FORWARD_RETRIES = 5;

/** Spans, or the log records of kept traces (a Forwarder made with signal `logs`). */
interface RetryEntry {
  spans: Span[];
  attempts: number;
  notBefore: number;
  bytes: number;
}

function chunkBytes(spans: Span[]): number {
  let n = 0;
  for (let i = 0; i < spans.length; i++) n += spans[i].len + SPAN_OVERHEAD_BYTES;
  return n;
}

export class Forwarder {
  private readonly inflight = new Set<Promise<void>>();
  private retryQueue: RetryEntry[] = [];
  /** Accounted bytes of refused spans awaiting a retry. */
  retryBytes = 0;
  /** Once set (shutdown), refused spans are no longer queued for a retry. */
  stopped = false;

  constructor(
    private readonly settings: CreateSettings,
    private readonly next: TracesConsumer | LogsConsumer,
    private readonly tickMs: number,
    private readonly metrics: TailSamplingMetrics,
    private readonly warnings: TickWarnings,
    private readonly signal: Signal = 'traces',
  ) {}

  get hasRetries(): boolean {
    return this.retryQueue.length > 0;
  }

  /** Hands kept spans to the next stage in chunks; refused chunks go to the retry queue. */
  forward(spans: Span[], attempts = 0): Promise<void> {
    const work: Array<Promise<void>> = [];
    for (let i = 0; i < spans.length; i += FORWARD_CHUNK) {
      const chunk = spans.length <= FORWARD_CHUNK ? spans : spans.slice(i, i + FORWARD_CHUNK);
      const sent = this.signal === 'traces' ? (this.next as TracesConsumer).consume(chunk) : consumeAs(this.signal, this.next, chunk);
      const p: Promise<void> = sent.then(
        () => undefined,
        (err: unknown) => this.onError(chunk, attempts, err),
      );
      const tracked = p.finally(() => this.inflight.delete(tracked));
      this.inflight.add(tracked);
      work.push(tracked);
    }
    return Promise.all(work).then(() => undefined);
  }

  private onError(chunk: Span[], attempts: number, err: unknown): void {
    const retryable = !(err instanceof CollectorError) || err.retryable;
    if (this.warnings.first()) {
      this.settings.logger.warn({ err: err instanceof Error ? err.message : String(err), retryable, signal: this.signal }, 'next stage refused kept data');
    }
    if (retryable && attempts < FORWARD_RETRIES && !this.stopped) {
      const after = err instanceof CollectorError && err.retryAfterMs !== undefined ? err.retryAfterMs : 0;
      const bytes = chunkBytes(chunk);
      this.retryQueue.push({ spans: chunk, attempts: attempts + 1, notBefore: this.settings.clock.now() + Math.max(this.tickMs, after), bytes });
      this.retryBytes += bytes;
      return;
    }
    const reason: DropReason = this.stopped ? 'shutdown' : retryable ? 'export_retries_exhausted' : 'export_permanent_error';
    this.settings.telemetry.drop(this.settings.id, reason, chunk.length, this.signal);
  }

  /** Re-sends the refused batches whose retry time has come. */
  retryDue(now: number): Promise<void> {
    const due: RetryEntry[] = [];
    const keep: RetryEntry[] = [];
    for (const r of this.retryQueue) (r.notBefore <= now ? due : keep).push(r);
    this.retryQueue = keep;
    const work: Array<Promise<void>> = [];
    for (const r of due) {
      this.retryBytes -= r.bytes;
      this.metrics.forwardRetries.inc();
      work.push(this.forward(r.spans, r.attempts));
    }
    return Promise.all(work).then(() => undefined);
  }

  /** Shutdown: sends every queued retry one last time (no further retries) and waits for everything in flight. */
  async drain(): Promise<void> {
    const retries = this.retryQueue;
    this.retryQueue = [];
    this.retryBytes = 0;
    await Promise.all(retries.map((r) => this.forward(r.spans, FORWARD_RETRIES)));
    while (this.inflight.size > 0) await Promise.all([...this.inflight]);
  }
}
