/** The fan-out: a consumer that edits spans must never edit the ones another consumer was handed. */
import { describe, expect, test } from 'vitest';
import { FanoutConsumer, type TracesConsumer } from './consumer.js';
import type { Span } from './pdata/spans.js';
import { makeSpans } from '../test/otlp.js';

const T = '0af7651916cd43dd8448eb211c80319c';

/** Holds what it was handed, as a batch processor or exporter queue would. */
class Holder implements TracesConsumer {
  held: Span[] = [];
  constructor(readonly mutatesData = false) {}
  async consume(spans: Span[]): Promise<void> {
    this.held.push(...spans);
    if (this.mutatesData) for (const s of spans) s.setBytes(new Uint8Array([0x0a, 0x00]));
  }
}

function spans(): Span[] {
  return makeSpans([
    { traceId: T, spanId: 'b7ad6b7169203331' },
    { traceId: T, spanId: 'b7ad6b7169203332' },
  ]);
}

describe('FanoutConsumer', () => {
  for (const order of ['reader first', 'editor first'] as const) {
    test(`an editor does not change what a reader holds (${order})`, async () => {
      const reader = new Holder(false);
      const editor = new Holder(true);
      const input = spans();
      const lens = input.map((s) => s.len);
      await new FanoutConsumer(order === 'reader first' ? [reader, editor] : [editor, reader]).consume(input);
      expect(reader.held.map((s) => s.len)).toEqual(lens);
      expect(reader.held.every((s) => s.spanId !== '')).toBe(true);
      expect(editor.held.every((s) => s.len === 2)).toBe(true);
    });
  }

  test('when every consumer edits, each gets its own span objects', async () => {
    const a = new Holder(true);
    const b = new Holder(true);
    await new FanoutConsumer([a, b]).consume(spans());
    for (let i = 0; i < a.held.length; i++) expect(a.held[i]).not.toBe(b.held[i]);
  });

  test('readers share the originals (no copies when nobody edits)', async () => {
    const a = new Holder(false);
    const b = new Holder(false);
    const input = spans();
    await new FanoutConsumer([a, b]).consume(input);
    expect(a.held[0]).toBe(input[0]);
    expect(b.held[0]).toBe(input[0]);
  });
});
