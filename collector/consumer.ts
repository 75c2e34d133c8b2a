/**
 * The one interface between pipeline stages. A stage receives a batch of spans
 * and resolves when it has taken responsibility for them (buffered, queued or
 * sent), or rejects with a CollectorError saying whether the caller may retry.
 */
import type { Span } from './pdata/spans.js';

export interface TracesConsumer {
  consume(spans: Span[]): Promise<void>;
  /**
   * True when the stage changes spans it is handed (edits bytes or index).
   * A fan-out gives such a consumer its own copies of the Span objects.
   */
  readonly mutatesData?: boolean;
}

/** Calls every consumer; copies Span objects for the ones that mutate. */
export class FanoutConsumer implements TracesConsumer {
  private readonly consumers: TracesConsumer[];
  /** Per consumer: whether it gets copies. */
  private readonly copies: boolean[];
  constructor(consumers: TracesConsumer[]) {
    this.consumers = consumers;
    // The originals go to every consumer that does not mutate; a mutating one
    // may have them only when all of them mutate, and then only the last.
    const allMutate = consumers.every((c) => c.mutatesData === true);
    this.copies = consumers.map((c, i) => c.mutatesData === true && !(allMutate && i === consumers.length - 1));
  }
  get mutatesData(): boolean {
    return false;
  }
  async consume(spans: Span[]): Promise<void> {
    if (this.consumers.length === 1) return this.consumers[0].consume(spans);
    const results = await Promise.allSettled(
      this.consumers.map((c, i) => c.consume(this.copies[i] ? spans.map(cloneSpan) : spans)),
    );
    for (const r of results) if (r.status === 'rejected') throw r.reason;
  }
}

export function cloneSpan(s: Span): Span {
  const c = Object.create(Object.getPrototypeOf(s)) as Span;
  Object.assign(c, s);
  return c;
}
