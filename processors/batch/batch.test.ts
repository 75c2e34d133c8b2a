import { describe, it, expect, beforeEach } from 'vitest';
import { BatchProcessor, batchOptions, batchProcessorFactory, ManualTimers } from './index.js';
import { BatchConfigSchema, validateBatchConfig } from './config.js';
import { withDefaults } from '../../config/defaults.js';
import { FakeClock, SinkConsumer } from '../../collector/consumertest.js';
import { Telemetry } from '../../collector/telemetry/metrics.js';
import { silentLogger } from '../../collector/telemetry/logger.js';
import { CollectorError, PermanentError, RetryableError } from '../../collector/errors.js';
import type { TracesConsumer } from '../../collector/consumer.js';
import type { Span } from '../../collector/pdata/spans.js';
import { encodeExportRequest, spanWireSize } from '../../collector/pdata/encode.js';
import { processorFactories } from '../../collector/components.js';
import { readFileSync } from 'node:fs';
import { parse as parseYaml } from 'yaml';
import { Value } from '@sinclair/typebox/value';
import { decodeRequest, makeSpans, spanIdHex, traceIdHex } from '../../test/otlp.js';

/** A downstream whose every call waits until the test settles it. */
class DeferredConsumer implements TracesConsumer {
  readonly calls: Array<{ spans: Span[]; resolve: () => void; reject: (e: unknown) => void }> = [];
  consume(spans: Span[]): Promise<void> {
    return new Promise((resolve, reject) => this.calls.push({ spans, resolve, reject }));
  }
  sizes(): number[] {
    return this.calls.map((c) => c.spans.length);
  }
}

function spans(n: number, service = 'checkout', namePrefix = 's'): Span[] {
  const specs = [];
  for (let i = 0; i < n; i++) specs.push({ traceId: traceIdHex(), spanId: spanIdHex(), name: `${namePrefix}${i}` });
  return makeSpans(specs, { 'service.name': service });
}

/** Observes a promise's outcome without awaiting it. */
function track(p: Promise<void>) {
  const t: { state: 'pending' | 'resolved' | 'rejected'; err: unknown } = { state: 'pending', err: undefined };
  p.then(
    () => (t.state = 'resolved'),
    (e) => {
      t.state = 'rejected';
      t.err = e;
    },
  );
  return t;
}

/** Lets queued promise callbacks run (no timers involved). */
async function settle(): Promise<void> {
  await new Promise((r) => setImmediate(r));
}

let telemetry: Telemetry;
let timers: ManualTimers;

function make(cfg: Record<string, unknown>, next: TracesConsumer, id = 'batch') {
  const config = withDefaults(BatchConfigSchema, cfg);
  expect(validateBatchConfig(config)).toEqual([]);
  return new BatchProcessor(id, batchOptions(config), next, { telemetry, timers, logger: silentLogger() });
}

async function metric(name: string): Promise<number> {
  return telemetry.total(name);
}

beforeEach(() => {
  telemetry = new Telemetry();
  timers = new ManualTimers(new FakeClock());
});

describe('batch processor: triggers', () => {
  it('sends once send_batch_size spans are buffered, and callers settle only when that batch settles', async () => {
    const down = new DeferredConsumer();
    const bp = make({ send_batch_size: 10, timeout: '1s' }, down);
    const a = track(bp.consume(spans(4)));
    const b = track(bp.consume(spans(4)));
    expect(down.calls.length).toBe(0);
    expect(timers.size).toBe(1);
    const c = track(bp.consume(spans(4)));
    // No send_batch_max_size: everything buffered goes in one batch.
    expect(down.sizes()).toEqual([12]);
    expect(timers.size).toBe(0);
    await settle();
    expect([a.state, b.state, c.state]).toEqual(['pending', 'pending', 'pending']);
    down.calls[0].resolve();
    await settle();
    expect([a.state, b.state, c.state]).toEqual(['resolved', 'resolved', 'resolved']);
    expect(await metric('otelcol_processor_batch_batch_size_trigger_send_total')).toBe(1);
    expect(await metric('otelcol_processor_batch_timeout_trigger_send_total')).toBe(0);
    expect(bp.pending.spans).toBe(0);
  });

  it('sends on timeout, measured from the first buffered span, with a single timer', async () => {
    const sink = new SinkConsumer();
    const bp = make({ send_batch_size: 100, timeout: '200ms' }, sink);
    const a = track(bp.consume(spans(3)));
    timers.advance(150);
    const b = track(bp.consume(spans(2)));
    expect(timers.size).toBe(1); // not one per input
    timers.advance(49);
    expect(sink.batches.length).toBe(0);
    timers.advance(1); // 200 ms after the first input
    expect(sink.batches.map((x) => x.length)).toEqual([5]);
    await settle();
    expect([a.state, b.state]).toEqual(['resolved', 'resolved']);
    expect(await metric('otelcol_processor_batch_timeout_trigger_send_total')).toBe(1);
    expect(timers.size).toBe(0);
    // The next input starts a fresh timer.
    bp.consume(spans(1));
    expect(timers.size).toBe(1);
    timers.advance(200);
    expect(sink.batches.map((x) => x.length)).toEqual([5, 1]);
  });

  it('leftovers after a size-triggered send go out when the original timer fires (no span waits longer than timeout)', () => {
    const sink = new SinkConsumer();
    const bp = make({ send_batch_size: 4, send_batch_max_size: 4, timeout: '200ms' }, sink);
    bp.consume(spans(2));
    timers.advance(100);
    bp.consume(spans(3)); // 5 buffered: one batch of 4, one left
    expect(sink.batches.map((x) => x.length)).toEqual([4]);
    timers.advance(100);
    expect(sink.batches.map((x) => x.length)).toEqual([4, 1]);
  });

  it('timeout 0 sends every input at once', () => {
    const sink = new SinkConsumer();
    const bp = make({ send_batch_size: 100, timeout: 0 }, sink);
    bp.consume(spans(3));
    expect(sink.batches.map((x) => x.length)).toEqual([3]);
    expect(timers.size).toBe(0);
  });

  it('records spans per batch and bytes per batch', async () => {
    const sink = new SinkConsumer();
    const bp = make({ send_batch_size: 5, timeout: '1s' }, sink);
    const input = spans(5);
    const bytes = input.reduce((n, s) => n + spanWireSize(s), 0);
    bp.consume(input);
    const h = await telemetry.registry.getSingleMetric('otelcol_processor_batch_batch_send_size')!.get();
    expect(h.values.find((v) => (v as { metricName?: string }).metricName?.endsWith('_sum'))!.value).toBe(5);
    const hb = await telemetry.registry.getSingleMetric('otelcol_processor_batch_batch_send_size_bytes')!.get();
    expect(hb.values.find((v) => (v as { metricName?: string }).metricName?.endsWith('_sum'))!.value).toBe(bytes);
  });
});

describe('batch processor: splitting', () => {
  it('splits inputs larger than send_batch_max_size, and the caller gets the combined outcome', async () => {
    const down = new DeferredConsumer();
    const bp = make({ send_batch_size: 5, send_batch_max_size: 5, timeout: '1s' }, down);
    const input = spans(12);
    const a = track(bp.consume(input));
    expect(down.sizes()).toEqual([5, 5]);
    // Both sent parts fail before the rest is even batched: the caller must
    // still wait for its last two spans.
    const early = new RetryableError('early failure', 100);
    down.calls[0].reject(early);
    down.calls[1].resolve();
    await settle();
    expect(a.state).toBe('pending');
    timers.advance(1000);
    expect(down.sizes()).toEqual([5, 5, 2]);
    // Order preserved across the split.
    expect(down.calls.flatMap((c) => c.spans)).toEqual(input);
    await settle();
    expect(a.state).toBe('pending'); // the last part is in flight
    down.calls[2].resolve();
    await settle();
    expect(a.state).toBe('rejected');
    expect(a.err).toBe(early); // one failed part fails the whole input
  });

  it('bounds each batch by send_batch_max_bytes', () => {
    const sink = new SinkConsumer();
    const input = spans(10);
    const per = spanWireSize(input[0]);
    expect(input.every((s) => spanWireSize(s) === per)).toBe(true);
    const bp = make({ send_batch_size: 0, send_batch_max_bytes: per * 3, timeout: '1s' }, sink);
    bp.consume(input);
    // The byte trigger sends whole 3-span batches at once; the rest waits for the timeout.
    expect(sink.batches.map((x) => x.length)).toEqual([3, 3, 3]);
    timers.advance(1000);
    expect(sink.batches.map((x) => x.length)).toEqual([3, 3, 3, 1]);
    for (const b of sink.batches) expect(b.reduce((n, s) => n + spanWireSize(s), 0)).toBeLessThanOrEqual(per * 3);
  });
});

describe('batch processor: resource grouping', () => {
  it('puts spans of one resource together, in arrival order, under one ResourceSpans', () => {
    const sink = new SinkConsumer();
    const bp = make({ send_batch_size: 100, timeout: '1s' }, sink);
    const a1 = spans(2, 'svc-a', 'a1-');
    const b1 = spans(2, 'svc-b', 'b1-');
    const a2 = spans(2, 'svc-a', 'a2-');
    bp.consume(a1);
    bp.consume(b1);
    bp.consume(a2);
    timers.advance(1000);
    expect(sink.batches.length).toBe(1);
    expect(sink.batches[0]).toEqual([...a1, ...a2, ...b1]);
    // Requests a1 and a2 were scanned separately (distinct ResourceRef objects);
    // the export request still carries one ResourceSpans per service.
    const req = decodeRequest(encodeExportRequest(sink.batches[0]));
    expect(req.resourceSpans!.length).toBe(2);
    const names = req.resourceSpans!.map((rs) => rs.scopeSpans!.flatMap((ss) => ss.spans!.map((s) => s.name)));
    expect(names).toEqual([
      ['a1-0', 'a1-1', 'a2-0', 'a2-1'],
      ['b1-0', 'b1-1'],
    ]);
    expect(req.resourceSpans!.every((rs) => rs.scopeSpans!.length === 1)).toBe(true);
  });

  it('cuts batches along resources when splitting', () => {
    const sink = new SinkConsumer();
    const bp = make({ send_batch_size: 6, send_batch_max_size: 6, timeout: '1s' }, sink);
    const a1 = spans(3, 'svc-a');
    const b1 = spans(3, 'svc-b');
    const a2 = spans(3, 'svc-a');
    bp.consume(a1);
    bp.consume(b1);
    expect(sink.batches.length).toBe(1); // 6 buffered -> [a1, b1]
    bp.consume(a2);
    timers.advance(1000);
    expect(sink.batches[0]).toEqual([...a1, ...b1]);
    expect(sink.batches[1]).toEqual(a2);

    const bp2 = make({ send_batch_size: 6, send_batch_max_size: 6, timeout: '1s' }, sink, 'batch/2');
    sink.reset();
    const c1 = spans(3, 'svc-a');
    const d1 = spans(2, 'svc-b');
    const c2 = spans(3, 'svc-a');
    bp2.consume(c1);
    bp2.consume(d1);
    bp2.consume(c2); // 8 buffered, max 6: the svc-a spans go first, together
    expect(sink.batches.length).toBe(1);
    expect(sink.batches[0]).toEqual([...c1, ...c2]);
    timers.advance(1000);
    expect(sink.batches[1]).toEqual(d1);
  });
});

describe('batch processor: errors reach every caller', () => {
  it('rejects each caller whose spans were in a failed batch, and only those', async () => {
    const down = new DeferredConsumer();
    const bp = make({ send_batch_size: 4, send_batch_max_size: 4, timeout: '1s' }, down);
    const c1 = track(bp.consume(spans(3)));
    const c2 = track(bp.consume(spans(3))); // batch 1: c1 x3 + c2 x1
    const c3 = track(bp.consume(spans(3))); // batch 2: c2 x2 + c3 x2
    timers.advance(1000); // batch 3: c3 x1
    expect(down.sizes()).toEqual([4, 4, 1]);
    down.calls[0].resolve();
    down.calls[2].resolve();
    const err = new RetryableError('backend unavailable', 2000);
    down.calls[1].reject(err);
    await settle();
    expect(c1.state).toBe('resolved');
    expect(c2.state).toBe('rejected');
    expect(c3.state).toBe('rejected');
    expect(c2.err).toBe(err);
    expect(c3.err).toBe(err);
    expect((c3.err as CollectorError).retryAfterMs).toBe(2000);
    expect(await metric('sidecar_processor_batch_downstream_failed_spans_total')).toBe(4);
  });

  it('a retryable failure wins over a permanent one for a caller split across both', async () => {
    const down = new DeferredConsumer();
    const bp = make({ send_batch_size: 2, send_batch_max_size: 2, timeout: '1s' }, down);
    const c = track(bp.consume(spans(4)));
    expect(down.sizes()).toEqual([2, 2]);
    down.calls[0].reject(new PermanentError('bad data'));
    const retry = new RetryableError('throttled', 100);
    down.calls[1].reject(retry);
    await settle();
    expect(c.err).toBe(retry);
  });

  it('a downstream that throws synchronously still rejects the callers', async () => {
    const bp = make({ send_batch_size: 2, timeout: '1s' }, {
      consume() {
        throw new PermanentError('sync failure');
      },
    });
    const c = track(bp.consume(spans(2)));
    await settle();
    expect(c.state).toBe('rejected');
    expect((c.err as Error).message).toBe('sync failure');
    expect(bp.pending.spans).toBe(0);
  });
});

describe('batch processor: bounded', () => {
  it('refuses with a retryable error beyond max_pending_spans and accepts again once downstream settles', async () => {
    const down = new DeferredConsumer();
    const bp = make({ send_batch_size: 5, max_pending_spans: 10, timeout: '1s' }, down);
    bp.consume(spans(5));
    bp.consume(spans(5));
    expect(down.sizes()).toEqual([5, 5]);
    expect(bp.pending.spans).toBe(10);
    const refused = track(bp.consume(spans(1)));
    await settle();
    expect(refused.state).toBe('rejected');
    const err = refused.err as CollectorError;
    expect(err).toBeInstanceOf(RetryableError);
    expect(err.retryable).toBe(true);
    expect(err.code).toBe('ERR_QUEUE_FULL');
    expect(err.retryAfterMs).toBeGreaterThan(0);
    expect(await telemetry.total('otelcol_processor_refused_spans_total', { reason: 'batcher_full' })).toBe(1);
    down.calls[0].resolve();
    await settle();
    const ok = track(bp.consume(spans(1)));
    expect(bp.pending.spans).toBe(6);
    timers.advance(1000);
    down.calls[2].resolve();
    await settle();
    expect(ok.state).toBe('resolved');
  });

  it('refuses beyond max_pending_bytes', async () => {
    const down = new DeferredConsumer();
    const input = spans(4);
    const bytes = input.reduce((n, s) => n + spanWireSize(s), 0);
    const bp = make({ send_batch_size: 100, max_pending_bytes: bytes + 10, timeout: '1s' }, down);
    bp.consume(input);
    const refused = track(bp.consume(spans(1)));
    await settle();
    expect(refused.state).toBe('rejected');
    expect((refused.err as CollectorError).code).toBe('ERR_QUEUE_FULL');
  });

  it('takes an input larger than the bound when nothing is pending', async () => {
    const sink = new SinkConsumer();
    const bp = make({ send_batch_size: 4, send_batch_max_size: 4, max_pending_spans: 4, timeout: '1s' }, sink);
    const c = track(bp.consume(spans(10)));
    timers.advance(1000);
    await settle();
    expect(c.state).toBe('resolved');
    expect(sink.batches.map((b) => b.length)).toEqual([4, 4, 2]);
  });
});

describe('batch processor: shutdown', () => {
  it('flushes buffered spans, waits for them downstream, then refuses new data', async () => {
    const down = new DeferredConsumer();
    const bp = make({ send_batch_size: 100, timeout: '10s' }, down);
    const c = track(bp.consume(spans(3)));
    const s = track(bp.shutdown());
    expect(down.sizes()).toEqual([3]);
    expect(timers.size).toBe(0);
    await settle();
    expect(s.state).toBe('pending');
    down.calls[0].resolve();
    await settle();
    expect(c.state).toBe('resolved');
    expect(s.state).toBe('resolved');
    await bp.shutdown(); // idempotent
    const late = track(bp.consume(spans(1)));
    await settle();
    expect((late.err as CollectorError).code).toBe('ERR_SHUTTING_DOWN');
    expect((late.err as CollectorError).retryable).toBe(true);
    expect(await telemetry.total('otelcol_processor_refused_spans_total', { reason: 'shutting_down' })).toBe(1);
  });

  it('shutdown before any data resolves at once', async () => {
    const bp = make({}, new SinkConsumer());
    await bp.shutdown();
    await bp.shutdown();
  });
});

describe('batch processor: config and factory', () => {
  it('fills the documented defaults', () => {
    const c = withDefaults(BatchConfigSchema, {});
    expect(c).toEqual({
      send_batch_size: 8192,
      send_batch_max_size: 0,
      send_batch_max_bytes: 0,
      timeout: '200ms',
      max_pending_spans: 65536,
      max_pending_bytes: 67108864,
    });
    expect(validateBatchConfig(c)).toEqual([]);
  });

  it('accepts every option in testdata/config.yaml', () => {
    const doc = parseYaml(readFileSync(new URL('./testdata/config.yaml', import.meta.url), 'utf8')) as { batch: unknown };
    const c = withDefaults(BatchConfigSchema, doc.batch);
    expect(Value.Check(BatchConfigSchema, c)).toBe(true);
    expect(validateBatchConfig(c)).toEqual([]);
    expect(batchOptions(c)).toEqual({
      sendBatchSize: 1024,
      sendBatchMaxSize: 2048,
      sendBatchMaxBytes: 4194304,
      timeoutMs: 100,
      maxPendingSpans: 32768,
      maxPendingBytes: 33554432,
    });
    expect(Value.Check(BatchConfigSchema, withDefaults(BatchConfigSchema, { send_batch_sise: 10 }))).toBe(false);
  });

  it('names the key of a relation that does not hold', () => {
    const c = withDefaults(BatchConfigSchema, { send_batch_size: 100, send_batch_max_size: 50 });
    expect(validateBatchConfig(c).map((p) => p.path)).toEqual([['send_batch_max_size']]);
    const d = withDefaults(BatchConfigSchema, { send_batch_size: 1000, max_pending_spans: 10 });
    expect(validateBatchConfig(d).map((p) => p.path)).toEqual([['max_pending_spans']]);
    const e = withDefaults(BatchConfigSchema, { send_batch_max_bytes: 1000, max_pending_bytes: 10 });
    expect(validateBatchConfig(e).map((p) => p.path)).toEqual([['max_pending_bytes']]);
  });

  it('is registered and creates a working processor that uses the clock timers', async () => {
    expect(processorFactories).toContain(batchProcessorFactory);
    const sink = new SinkConsumer();
    const p = batchProcessorFactory.create(
      { id: 'batch/x', logger: silentLogger(), telemetry, clock: timers },
      withDefaults(BatchConfigSchema, { timeout: '50ms' }),
      sink,
    );
    await p.start();
    const c = track(p.consume(spans(2)));
    timers.advance(50);
    await settle();
    expect(sink.spanCount).toBe(2);
    expect(c.state).toBe('resolved');
    await p.shutdown();
  });
});
