import { describe, it, expect, beforeEach } from 'vitest';
import { pino, type Logger } from 'pino';
import { batchOptions, batchProcessorFactory } from './index.js';
import { BatchProcessor } from './batcher.js';
import { ManualTimers } from './timers.js';
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

/**
 * A downstream that answers at once: the next queued outcome (an error to
 * reject with), else `failAlways` when set, else success. Records every call
 * and, separately, the spans it took.
 */
class ScriptedConsumer implements TracesConsumer {
  readonly calls: Span[][] = [];
  readonly delivered: Span[] = [];
  failures: unknown[] = [];
  failAlways: unknown = undefined;
  consume(spans: Span[]): Promise<void> {
    this.calls.push(spans);
    const f = this.failures.length > 0 ? this.failures.shift() : this.failAlways;
    if (f !== undefined) return Promise.reject(f);
    this.delivered.push(...spans);
    return Promise.resolve();
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

/** A logger whose warn-and-above lines the test can read. */
function capturingLogger(): { logger: Logger; lines: Array<Record<string, unknown>> } {
  const lines: Array<Record<string, unknown>> = [];
  const logger = pino({ level: 'warn' }, { write: (s: string) => lines.push(JSON.parse(s) as Record<string, unknown>) });
  return { logger, lines };
}

let telemetry: Telemetry;
let timers: ManualTimers;

function make(cfg: Record<string, unknown>, next: TracesConsumer, id = 'batch', logger: Logger = silentLogger()) {
  const config = withDefaults(BatchConfigSchema, cfg);
  expect(validateBatchConfig(config)).toEqual([]);
  return new BatchProcessor(id, batchOptions(config), next, { telemetry, timers, logger });
}

async function metric(name: string): Promise<number> {
  return telemetry.total(name);
}

function dropped(reason: string): Promise<number> {
  return telemetry.total('sidecar_spans_dropped_total', { reason });
}

beforeEach(() => {
  telemetry = new Telemetry();
  timers = new ManualTimers(new FakeClock());
});

describe('batch processor: acknowledgement', () => {
  it('resolves a caller once its spans are buffered: before the timeout fires, with downstream not yet called', async () => {
    const down = new DeferredConsumer();
    const bp = make({ send_batch_size: 100, timeout: '1s' }, down);
    const c = track(bp.consume(spans(3)));
    await settle();
    expect(c.state).toBe('resolved');
    expect(down.calls.length).toBe(0);
    expect(bp.pending).toMatchObject({ spans: 3, buffered: 3, held: 0, inflightBatches: 0 });
    timers.advance(1000);
    expect(down.sizes()).toEqual([3]);
    // Downstream has not settled: the spans still count as pending.
    expect(bp.pending).toMatchObject({ spans: 3, buffered: 0, inflightBatches: 1 });
    down.calls[0].resolve();
    await settle();
    expect(bp.pending.spans).toBe(0);
  });
});

describe('batch processor: triggers', () => {
  it('sends once send_batch_size spans are buffered; callers do not wait for the batch to settle', async () => {
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
    expect([a.state, b.state, c.state]).toEqual(['resolved', 'resolved', 'resolved']);
    expect(bp.pending.spans).toBe(12);
    down.calls[0].resolve();
    await settle();
    expect(await metric('otelcol_processor_batch_batch_size_trigger_send_total')).toBe(1);
    expect(await metric('otelcol_processor_batch_timeout_trigger_send_total')).toBe(0);
    expect(bp.pending.spans).toBe(0);
  });

  it('sends on timeout, measured from the first buffered span, with a single timer', async () => {
    const sink = new SinkConsumer();
    const bp = make({ send_batch_size: 100, timeout: '200ms' }, sink);
    bp.consume(spans(3));
    timers.advance(150);
    bp.consume(spans(2));
    expect(timers.size).toBe(1); // not one per input
    timers.advance(49);
    expect(sink.batches.length).toBe(0);
    timers.advance(1); // 200 ms after the first input
    expect(sink.batches.map((x) => x.length)).toEqual([5]);
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
  it('splits inputs larger than send_batch_max_size, keeping order', async () => {
    const down = new DeferredConsumer();
    const bp = make({ send_batch_size: 5, send_batch_max_size: 5, timeout: '1s' }, down);
    const input = spans(12);
    const a = track(bp.consume(input));
    expect(down.sizes()).toEqual([5, 5]);
    await settle();
    expect(a.state).toBe('resolved');
    timers.advance(1000);
    expect(down.sizes()).toEqual([5, 5, 2]);
    expect(down.calls.flatMap((c) => c.spans)).toEqual(input);
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

describe('batch processor: a refusing next stage', () => {
  it('refuses new data with the next stage\'s retryAfterMs while it refuses, and accepts again once a send succeeds', async () => {
    const down = new DeferredConsumer();
    const bp = make({ send_batch_size: 100, timeout: '200ms' }, down);
    bp.consume(spans(2));
    timers.advance(200);
    expect(down.sizes()).toEqual([2]);
    const cause = new RetryableError('sending queue full', 3000, 'ERR_QUEUE_FULL');
    down.calls[0].reject(cause);
    await settle();
    expect(bp.pending).toMatchObject({ spans: 2, held: 2, refusing: true });

    const refused = track(bp.consume(spans(1)));
    await settle();
    expect(refused.state).toBe('rejected');
    const err = refused.err as CollectorError;
    expect(err).toBeInstanceOf(RetryableError);
    expect(err.code).toBe('ERR_QUEUE_FULL');
    expect(err.retryAfterMs).toBe(3000);
    expect(err.cause).toBe(cause);
    expect(await telemetry.total('otelcol_processor_refused_spans_total', { reason: 'downstream_refusing' })).toBe(1);
    expect(bp.pending.spans).toBe(2); // the refused span was not taken

    // The backoff honours the downstream's hint (3 s > the first backoff of 200 ms), up to 1 s.
    timers.advance(999);
    expect(down.calls.length).toBe(1);
    timers.advance(1);
    expect(down.calls.length).toBe(2);
    expect(down.calls[1].spans).toEqual(down.calls[0].spans);
    // Still refusing while the re-send is unsettled.
    const stillRefused = track(bp.consume(spans(1)));
    await settle();
    expect(stillRefused.state).toBe('rejected');

    down.calls[1].resolve();
    await settle();
    expect(bp.pending).toMatchObject({ spans: 0, held: 0, refusing: false });
    const ok = track(bp.consume(spans(1)));
    await settle();
    expect(ok.state).toBe('resolved');
    expect(await telemetry.total('sidecar_processor_batch_held_spans')).toBe(0);
  });

  it('asks callers to wait at least the batch timeout, or 1 s when the next stage gives no delay', async () => {
    const short = new ScriptedConsumer();
    short.failAlways = new RetryableError('throttled', 50);
    const bp = make({ send_batch_size: 1, timeout: '300ms' }, short);
    bp.consume(spans(1));
    await settle();
    const r1 = track(bp.consume(spans(1)));
    await settle();
    expect((r1.err as CollectorError).retryAfterMs).toBe(300);

    const none = new ScriptedConsumer();
    none.failAlways = new Error('connection reset'); // not a CollectorError: retryable
    const bp2 = make({ send_batch_size: 1, timeout: '300ms' }, none, 'batch/2');
    bp2.consume(spans(1));
    await settle();
    const r2 = track(bp2.consume(spans(1)));
    await settle();
    expect((r2.err as CollectorError).code).toBe('ERR_QUEUE_FULL');
    expect((r2.err as CollectorError).retryAfterMs).toBe(1000);
    expect(await dropped('export_permanent_error')).toBe(0);
  });

  it('holds a refused batch and re-sends it with a doubling backoff, ahead of newer batches; each span arrives once, in order', async () => {
    const down = new ScriptedConsumer();
    const retry = new RetryableError('unavailable');
    down.failures = [retry, retry];
    const bp = make({ send_batch_size: 3, send_batch_max_size: 3, timeout: '200ms' }, down);
    const first = spans(3, 'svc', 'first-');
    const second = spans(2, 'svc', 'second-');
    bp.consume(first); // sent at once (size trigger), and refused
    bp.consume(second); // buffered, before the refusal is known
    await settle();
    expect(down.calls.length).toBe(1);
    expect(bp.pending).toMatchObject({ spans: 5, buffered: 2, held: 3, refusing: true });
    expect(timers.size).toBe(2); // the buffer's timer and the retry timer, nothing per item

    // t=200: the buffer's timer cuts `second`, which queues behind the held
    // batch; then the first re-send (backoff starts at the timeout) is refused.
    timers.advance(200);
    await settle();
    expect(down.calls.length).toBe(2);
    expect(down.calls[1]).toEqual(first);
    expect(bp.pending).toMatchObject({ buffered: 0, held: 5 });
    expect(timers.size).toBe(1);

    // The backoff doubled: the next re-send is 400 ms later.
    timers.advance(399);
    await settle();
    expect(down.calls.length).toBe(2);
    timers.advance(1);
    await settle();
    // It succeeds, and the batch queued behind it goes at once.
    expect(down.calls.length).toBe(4);
    expect(down.delivered).toEqual([...first, ...second]);
    expect(new Set(down.delivered).size).toBe(5);
    expect(await metric('sidecar_processor_batch_send_retries_total')).toBe(2);
    expect(await metric('sidecar_processor_batch_downstream_failed_spans_total')).toBe(6);
    expect(bp.pending).toMatchObject({ spans: 0, held: 0, refusing: false });
    expect(timers.size).toBe(0);
    expect(await metric('sidecar_spans_dropped_total')).toBe(0);

    // New data goes straight through again.
    bp.consume(spans(3));
    await settle();
    expect(down.calls.length).toBe(5);
  });

  it('backs off from the timeout (at least 100 ms), doubling up to 1 s, with one retry timer', async () => {
    const down = new ScriptedConsumer();
    down.failAlways = new RetryableError('down');
    const bp = make({ send_batch_size: 1, timeout: '10ms' }, down);
    bp.consume(spans(1));
    await settle();
    const sendTimes: number[] = [];
    const t0 = timers.now();
    for (let ms = 0; ms < 20_000; ms += 10) {
      const before = down.calls.length;
      timers.advance(10);
      await settle();
      if (down.calls.length > before) sendTimes.push(timers.now() - t0);
      expect(timers.size).toBeLessThanOrEqual(1);
    }
    const gaps = sendTimes.map((t, i) => t - (i === 0 ? 0 : sendTimes[i - 1]));
    expect(gaps.slice(0, 6)).toEqual([100, 200, 400, 800, 1000, 1000]);
    expect(bp.pending).toMatchObject({ spans: 1, held: 1, refusing: true });
  });

  it('re-sends held batches in the order they were cut, even when they failed in the other order', async () => {
    const down = new DeferredConsumer();
    const bp = make({ send_batch_size: 2, send_batch_max_size: 2, timeout: '200ms' }, down);
    const input = spans(4);
    bp.consume(input);
    expect(down.sizes()).toEqual([2, 2]);
    down.calls[1].reject(new RetryableError('full'));
    await settle();
    down.calls[0].reject(new RetryableError('full'));
    await settle();
    expect(bp.pending.held).toBe(4);
    timers.advance(200);
    expect(down.calls.length).toBe(3);
    expect(down.calls[2].spans).toEqual(input.slice(0, 2));
    down.calls[2].resolve();
    await settle();
    expect(down.calls.length).toBe(4);
    expect(down.calls[3].spans).toEqual(input.slice(2));
    down.calls[3].resolve();
    await settle();
    expect(bp.pending).toMatchObject({ spans: 0, held: 0 });
  });

  it('re-sends held batches at once when another send succeeds (no need to wait out the backoff)', async () => {
    const down = new DeferredConsumer();
    const bp = make({ send_batch_size: 2, send_batch_max_size: 2, timeout: '200ms' }, down);
    const input = spans(4);
    bp.consume(input);
    down.calls[0].reject(new RetryableError('full', 5000));
    await settle();
    expect(timers.size).toBe(1);
    down.calls[1].resolve();
    await settle();
    expect(timers.size).toBe(0);
    expect(down.calls.length).toBe(3);
    expect(down.calls[2].spans).toEqual(input.slice(0, 2));
    expect(bp.pending.refusing).toBe(false);
  });

  it('counts a batch refused permanently as dropped, logs at most once per 10 s, and goes on', async () => {
    const down = new ScriptedConsumer();
    const bad = new PermanentError('invalid data');
    down.failures = [bad, bad];
    const { logger, lines } = capturingLogger();
    const bp = make({ send_batch_size: 3, timeout: '1s' }, down, 'batch', logger);
    bp.consume(spans(3));
    await settle();
    expect(await dropped('export_permanent_error')).toBe(3);
    expect(bp.pending).toMatchObject({ spans: 0, held: 0, refusing: false });
    bp.consume(spans(3));
    await settle();
    expect(await dropped('export_permanent_error')).toBe(6);
    expect(lines.length).toBe(1);
    expect(lines[0].processor).toBe('batch');

    // Not refused, not retried: the next input is delivered.
    const ok = track(bp.consume(spans(3)));
    await settle();
    expect(ok.state).toBe('resolved');
    expect(down.delivered.length).toBe(3);
    expect(down.calls.length).toBe(3);
    expect(await metric('sidecar_processor_batch_send_retries_total')).toBe(0);

    timers.advance(10_000);
    down.failures = [bad];
    bp.consume(spans(3));
    await settle();
    expect(await dropped('export_permanent_error')).toBe(9);
    expect(lines.length).toBe(2);
  });

  it('a held batch refused permanently on re-send is dropped and the next held batch goes at once', async () => {
    const down = new ScriptedConsumer();
    down.failures = [new RetryableError('full'), new RetryableError('full'), new PermanentError('bad')];
    const bp = make({ send_batch_size: 2, send_batch_max_size: 2, timeout: '200ms' }, down);
    const input = spans(4);
    bp.consume(input); // two batches, both refused
    await settle();
    expect(bp.pending.held).toBe(4);
    timers.advance(200); // re-send of batch 1: permanent -> dropped; batch 2 follows at once
    await settle();
    expect(await dropped('export_permanent_error')).toBe(2);
    expect(down.delivered).toEqual(input.slice(2));
    expect(bp.pending).toMatchObject({ spans: 0, held: 0, refusing: false });
  });

  it('a downstream that throws synchronously is handled like a rejection', async () => {
    const bp = make({ send_batch_size: 2, timeout: '1s' }, {
      consume() {
        throw new PermanentError('sync failure');
      },
    });
    const c = track(bp.consume(spans(2)));
    await settle();
    expect(c.state).toBe('resolved');
    expect(await dropped('export_permanent_error')).toBe(2);
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
    expect(err.retryAfterMs).toBe(1000);
    expect(await telemetry.total('otelcol_processor_refused_spans_total', { reason: 'batcher_full' })).toBe(1);
    down.calls[0].resolve();
    await settle();
    const ok = track(bp.consume(spans(1)));
    await settle();
    expect(ok.state).toBe('resolved');
    expect(bp.pending.spans).toBe(6);
  });

  it('counts held spans against the bound', async () => {
    const down = new DeferredConsumer();
    const bp = make({ send_batch_size: 5, send_batch_max_size: 5, max_pending_spans: 10, timeout: '1s' }, down);
    bp.consume(spans(5));
    bp.consume(spans(5));
    down.calls[0].reject(new RetryableError('full'));
    await settle();
    down.calls[1].resolve(); // a success: no longer refusing, and batch 1 is re-sent at once
    await settle();
    expect(down.calls.length).toBe(3);
    expect(bp.pending).toMatchObject({ spans: 5, held: 5, refusing: false });
    const refused = track(bp.consume(spans(6)));
    const ok = track(bp.consume(spans(5)));
    await settle();
    expect((refused.err as CollectorError).code).toBe('ERR_QUEUE_FULL');
    expect(ok.state).toBe('resolved');
    // The new batch waits behind the held one.
    expect(down.calls.length).toBe(3);
    down.calls[2].resolve();
    await settle();
    expect(down.calls.length).toBe(4);
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
  it('flushes buffered spans, resolves once downstream took them, then refuses new data', async () => {
    const down = new DeferredConsumer();
    const bp = make({ send_batch_size: 100, timeout: '10s' }, down);
    bp.consume(spans(3));
    const s = track(bp.shutdown());
    expect(down.sizes()).toEqual([3]);
    expect(timers.size).toBe(1); // the shutdown deadline only
    await settle();
    expect(s.state).toBe('pending');
    down.calls[0].resolve();
    await settle();
    expect(s.state).toBe('resolved');
    expect(timers.size).toBe(0);
    await bp.shutdown(); // idempotent
    const late = track(bp.consume(spans(1)));
    await settle();
    expect((late.err as CollectorError).code).toBe('ERR_SHUTTING_DOWN');
    expect((late.err as CollectorError).retryable).toBe(true);
    expect(await telemetry.total('otelcol_processor_refused_spans_total', { reason: 'shutting_down' })).toBe(1);
    expect(await metric('sidecar_spans_dropped_total')).toBe(0);
  });

  it('keeps re-sending held batches during shutdown and delivers them once the next stage recovers', async () => {
    const down = new ScriptedConsumer();
    down.failures = [new RetryableError('full'), new RetryableError('full')];
    const bp = make({ send_batch_size: 100, timeout: '200ms' }, down);
    const input = spans(3);
    bp.consume(input);
    const s = track(bp.shutdown(5000));
    await settle();
    expect(s.state).toBe('pending');
    timers.advance(200); // refused again
    await settle();
    expect(s.state).toBe('pending');
    timers.advance(400); // taken
    await settle();
    expect(s.state).toBe('resolved');
    expect(down.delivered).toEqual(input);
    expect(await metric('sidecar_spans_dropped_total')).toBe(0);
    expect(timers.size).toBe(0);
  });

  it('counts what is still held when the time given runs out as dropped (shutdown), and resolves', async () => {
    const down = new ScriptedConsumer();
    down.failAlways = new RetryableError('down');
    const bp = make({ send_batch_size: 100, timeout: '200ms' }, down);
    bp.consume(spans(3));
    timers.advance(200); // sent, refused
    await settle();
    bp.consume(spans(2)).catch(() => undefined); // refused: not counted anywhere but the refusal metric
    const s = track(bp.shutdown(1000));
    // Re-sends at +200 (t=400) and +400 (t=800); the next would be at t=1600.
    for (let i = 0; i < 10; i++) {
      timers.advance(100);
      await settle();
    }
    expect(down.calls.length).toBe(3);
    expect(s.state).toBe('resolved');
    expect(await dropped('shutdown')).toBe(3);
    expect(await metric('sidecar_processor_batch_send_retries_total')).toBe(2);
    expect(bp.pending).toMatchObject({ spans: 0, held: 0 });
    expect(timers.size).toBe(0);
    timers.advance(10_000);
    await settle();
    expect(down.calls.length).toBe(3); // nothing re-sent after the deadline
  });

  it('does not wait forever for a next stage that never settles (default 10 s); a late failure is counted', async () => {
    const down = new DeferredConsumer();
    const bp = make({ send_batch_size: 100, timeout: '200ms' }, down);
    bp.consume(spans(3));
    const s = track(bp.shutdown());
    timers.advance(9999);
    await settle();
    expect(s.state).toBe('pending');
    timers.advance(1);
    await settle();
    expect(s.state).toBe('resolved');
    expect(await metric('sidecar_spans_dropped_total')).toBe(0); // still downstream's to answer
    down.calls[0].reject(new RetryableError('gave up'));
    await settle();
    expect(await dropped('shutdown')).toBe(3);
    expect(down.calls.length).toBe(1);
    expect(bp.pending.spans).toBe(0);
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
