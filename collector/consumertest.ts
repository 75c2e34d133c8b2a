/** Test doubles for the consumer interface (used by component tests; shipped beside the interface). */
import type { TracesConsumer } from './consumer.js';
import type { Span } from './pdata/spans.js';
import { CollectorError } from './errors.js';

/** Records every span it is handed. */
export class SinkConsumer implements TracesConsumer {
  readonly batches: Span[][] = [];
  get spans(): Span[] {
    return this.batches.flat();
  }
  get spanCount(): number {
    let n = 0;
    for (const b of this.batches) n += b.length;
    return n;
  }
  async consume(spans: Span[]): Promise<void> {
    this.batches.push(spans);
  }
  reset(): void {
    this.batches.length = 0;
  }
}

/** Rejects every batch with the given error. */
export class ErrorConsumer implements TracesConsumer {
  constructor(private readonly err: CollectorError) {}
  async consume(): Promise<void> {
    throw this.err;
  }
}

/** A clock tests move by hand. */
export class FakeClock {
  t: number;
  constructor(start = 1_700_000_000_000) {
    this.t = start;
  }
  now(): number {
    return this.t;
  }
  advance(ms: number): void {
    this.t += ms;
  }
}
