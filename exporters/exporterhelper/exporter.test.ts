import { describe, it, expect, afterEach } from 'vitest';
import { Type } from '@sinclair/typebox';
import { QueuedExporter, type SendFn, type SendResult } from './exporter.js';
import { helperProperties } from './config.js';
import { FakeTimers } from './testing.js';
import { CIRCUIT_CLOSED, CIRCUIT_OPEN } from './circuit.js';
import type { ExportRequest } from './queue.js';
import { FakeClock } from '../../collector/consumertest.js';
import { Telemetry } from '../../collector/telemetry/metrics.js';
import { silentLogger } from '../../collector/telemetry/logger.js';
import { CollectorError, InvalidDataError, PermanentError, RetryableError } from '../../collector/errors.js';
import { withDefaults } from '../../config/defaults.js';
import { makeSpans, traceIdHex, spanIdHex } from '../../test/otlp.js';

const schema = Type.Object(helperProperties, { additionalProperties: false, default: {} });

function spans(n: number) {
  const t = traceIdHex();
  return makeSpans(Array.from({ length: n }, () => ({ traceId: t, spanId: spanIdHex() })));
}

/** A scripted backend: each call pops the next behaviour ('ok' when empty), or `hang` waits for the abort. */
class FakeBackend {
  calls: Array<{ at: number; spans: number }> = [];
  script: Array<Error | SendResult | 'hang'> = [];
  fallback: Error | SendResult | 'hang' | undefined = undefined;
  inFlight = 0;
  maxInFlight = 0;
  constructor(private readonly clock: FakeClock) {}
  send: SendFn = (req: ExportRequest, signal: AbortSignal) => {
    this.calls.push({ at: this.clock.now(), spans: req.spans });
    const step = this.script.length > 0 ? this.script.shift()! : (this.fallback ?? {});
    this.inFlight++;
    this.maxInFlight = Math.max(this.maxInFlight, this.inFlight);
    const done = () => this.inFlight--;
    if (step === 'hang') {
      return new Promise((_, reject) => signal.addEventListener('abort', () => (done(), reject(signal.reason)), { once: true }));
    }
    // Answer on a later turn, as a network would: concurrent sends overlap.
    return new Promise((resolve, reject) =>
      setImmediate(() => {
        done();
        if (step instanceof Error) reject(step);
        else resolve(step);
      }),
    );
  };
}

const live: QueuedExporter[] = [];
afterEach(async () => {
  for (const e of live.splice(0)) await e.shutdown(0);
});

function setup(cfg: Record<string, unknown> = {}) {
  const clock = new FakeClock();
  const timers = new FakeTimers(clock);
  const telemetry = new Telemetry();
  const backend = new FakeBackend(clock);
  const exp = new QueuedExporter(
    { id: 'otlp/test', logger: silentLogger(), telemetry, clock },
    withDefaults(schema, cfg),
    backend.send,
    { timers, random: () => 0.5 }, // 0.5 = no jitter: waits are exact
  );
  live.push(exp);
  const metric = (name: string) => telemetry.total(name, { exporter: 'otlp/test' });
  return { clock, timers, telemetry, backend, exp, metric };
}

describe('QueuedExporter retries', () => {
  it('retries a retryable failure with exponential backoff, then succeeds', async () => {
    const { timers, backend, exp, metric, telemetry } = setup();
    backend.script = [new RetryableError('unavailable'), new RetryableError('unavailable')];
    await exp.start();
    await exp.consume(spans(4));
    await timers.until(() => backend.calls.length === 1);
    expect(timers.pendingDelays()).toContain(5000);
    await timers.advance(4999);
    expect(backend.calls.length).toBe(1);
    await timers.advance(1);
    expect(backend.calls.length).toBe(2);
    expect(timers.pendingDelays()).toContain(7500); // 5s * 1.5
    await timers.advance(7500);
    expect(backend.calls.length).toBe(3);
    expect(await metric('otelcol_exporter_sent_spans_total')).toBe(4);
    expect(await metric('sidecar_exporter_retries_total')).toBe(2);
    expect(await telemetry.droppedByReason()).toEqual({});
  });

  it('honours a server-given delay (Retry-After / RetryInfo) longer than the backoff', async () => {
    const { timers, backend, exp, metric } = setup();
    backend.script = [new RetryableError('throttled', 20_000)];
    await exp.start();
    await exp.consume(spans(3));
    await timers.until(() => backend.calls.length === 1);
    await timers.advance(19_999);
    expect(backend.calls.length).toBe(1);
    await timers.advance(1);
    expect(backend.calls.length).toBe(2);
    expect(backend.calls[1].at - backend.calls[0].at).toBe(20_000);
    expect(await metric('otelcol_exporter_sent_spans_total')).toBe(3);
  });

  it('drops a permanent error at once and counts it', async () => {
    const { timers, backend, exp, metric, telemetry } = setup();
    backend.script = [new PermanentError('bad data')];
    await exp.start();
    await exp.consume(spans(5));
    await timers.until(() => backend.calls.length === 1);
    await timers.advance(600_000);
    expect(backend.calls.length).toBe(1);
    expect(await telemetry.droppedByReason()).toEqual({ export_permanent_error: 5 });
    expect(await metric('otelcol_exporter_send_failed_spans_total')).toBe(5);
    expect(await metric('otelcol_exporter_sent_spans_total')).toBe(0);
  });

  it('gives up after max_elapsed_time and counts retries exhausted', async () => {
    const { timers, backend, exp, telemetry, metric } = setup({
      retry_on_failure: { max_elapsed_time: '20s' },
      circuit_breaker: { enabled: false },
    });
    backend.fallback = new RetryableError('down');
    await exp.start();
    await exp.consume(spans(2));
    await timers.advance(60_000);
    // attempts at 0, 5s, 12.5s; the next wait (11.25s) would pass 20s
    expect(backend.calls.map((c) => c.at - backend.calls[0].at)).toEqual([0, 5000, 12_500]);
    expect(await telemetry.droppedByReason()).toEqual({ export_retries_exhausted: 2 });
    expect(await metric('otelcol_exporter_send_failed_spans_total')).toBe(2);
  });

  it('with retries disabled, a retryable failure is dropped as exhausted', async () => {
    const { timers, backend, exp, telemetry } = setup({ retry_on_failure: { enabled: false } });
    backend.script = [new RetryableError('down')];
    await exp.start();
    await exp.consume(spans(1));
    await timers.until(() => backend.calls.length === 1);
    await timers.advance(1000);
    expect(await telemetry.droppedByReason()).toEqual({ export_retries_exhausted: 1 });
  });

  it('aborts an attempt at the timeout and retries it', async () => {
    const { timers, backend, exp, metric } = setup({ timeout: '2s' });
    backend.script = ['hang'];
    await exp.start();
    await exp.consume(spans(1));
    await timers.until(() => backend.calls.length === 1);
    await timers.advance(1999);
    expect(backend.inFlight).toBe(1);
    await timers.advance(1);
    expect(backend.inFlight).toBe(0);
    await timers.advance(5000);
    expect(backend.calls.length).toBe(2);
    expect(await metric('otelcol_exporter_sent_spans_total')).toBe(1);
  });

  it('counts partial_success rejections as backend_rejected drops', async () => {
    const { timers, backend, exp, metric, telemetry } = setup();
    backend.script = [{ rejectedSpans: 2, errorMessage: 'two were too old' }];
    await exp.start();
    await exp.consume(spans(5));
    await timers.until(() => backend.calls.length === 1);
    await timers.advance(0);
    expect(await metric('otelcol_exporter_sent_spans_total')).toBe(3);
    expect(await metric('sidecar_exporter_rejected_spans_total')).toBe(2);
    expect(await telemetry.droppedByReason()).toEqual({ backend_rejected: 2 });
  });
});

describe('QueuedExporter isolation of a batch refused as invalid', () => {
  it('sends the halves with normal retry handling; a half known bad after its sibling went through is split unsent', async () => {
    const { timers, backend, exp, metric, telemetry } = setup();
    // whole batch refused; first half: retryable failure, then accepted; then the fallback (accepted) for what follows.
    backend.script = [new InvalidDataError('HTTP 400: bad span'), new RetryableError('unavailable'), {}];
    await exp.start();
    await exp.consume(spans(4));
    await timers.until(() => backend.calls.length === 2);
    await timers.advance(5000);
    await timers.until(() => exp.pending === 0);
    // [4] refused; [2] failed, retried, accepted; the other [2] holds the bad span: its first [1] is sent and
    // accepted, so the last [1] is dropped without a request of its own.
    expect(backend.calls.map((c) => c.spans)).toEqual([4, 2, 2, 1]);
    expect(await metric('sidecar_exporter_retries_total')).toBe(1);
    expect(await metric('otelcol_exporter_sent_spans_total')).toBe(3);
    expect(await telemetry.droppedByReason()).toEqual({ backend_rejected: 1 });
  });

  it('a single span refused as invalid in a direct send (no queue) is the caller\'s error', async () => {
    const { backend, exp, telemetry } = setup({ sending_queue: { enabled: false } });
    backend.fallback = new InvalidDataError('HTTP 400');
    await exp.start();
    await expect(exp.consume(spans(1))).rejects.toBeInstanceOf(InvalidDataError);
    expect(await telemetry.droppedByReason()).toEqual({});
  });
});

describe('QueuedExporter sending queue', () => {
  it('refuses with a retryable ERR_QUEUE_FULL when full, and counts the refusal', async () => {
    const { timers, backend, exp, metric } = setup({ sending_queue: { queue_size: 2, num_consumers: 1 } });
    backend.fallback = 'hang';
    await exp.start();
    await exp.consume(spans(1)); // taken by the consumer, in flight
    await timers.until(() => backend.calls.length === 1);
    await exp.consume(spans(1));
    await exp.consume(spans(1));
    expect(exp.queue.size).toBe(2);
    expect(await metric('otelcol_exporter_queue_size')).toBe(2);
    expect(await metric('otelcol_exporter_queue_capacity')).toBe(2);
    const err = await exp.consume(spans(3)).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(CollectorError);
    const ce = err as CollectorError;
    expect(ce.code).toBe('ERR_QUEUE_FULL');
    expect(ce.retryable).toBe(true);
    expect(ce.retryAfterMs).toBeGreaterThanOrEqual(1000);
    expect(await metric('otelcol_exporter_enqueue_failed_spans_total')).toBe(3);
  });

  it('bounds the queue in bytes', async () => {
    const one = spans(10);
    const { timers, backend, exp } = setup({ sending_queue: { num_consumers: 1, max_bytes: 1 } });
    backend.fallback = 'hang';
    await exp.start();
    await exp.consume(one);
    await timers.until(() => backend.calls.length === 1);
    await exp.consume(one); // an empty queue takes even an oversized request
    await expect(exp.consume(one)).rejects.toMatchObject({ code: 'ERR_QUEUE_FULL', retryable: true });
  });

  it('with block_on_overflow waits for room, and refuses after block_timeout', async () => {
    const { timers, backend, exp, metric } = setup({
      sending_queue: { queue_size: 1, num_consumers: 1, block_on_overflow: true, block_timeout: '3s' },
      timeout: '5s',
      retry_on_failure: { enabled: false },
    });
    backend.fallback = 'hang';
    await exp.start();
    await exp.consume(spans(1)); // in flight (hangs until its 5s timeout)
    await timers.until(() => backend.calls.length === 1);
    await exp.consume(spans(1)); // queued
    let outcome: unknown = 'pending';
    exp.consume(spans(2)).then(
      () => (outcome = 'queued'),
      (e: unknown) => (outcome = e),
    );
    await timers.advance(2999);
    expect(outcome).toBe('pending');
    await timers.advance(1);
    expect(outcome).toMatchObject({ code: 'ERR_QUEUE_FULL', retryable: true });
    expect(await metric('otelcol_exporter_enqueue_failed_spans_total')).toBe(2);
    // A blocked caller that gets room in time: the hanging send times out at 5s,
    // the consumer takes the queued request, and the blocked request moves in.
    let outcome2: unknown = 'pending';
    exp.consume(spans(4)).then(
      () => (outcome2 = 'queued'),
      (e: unknown) => (outcome2 = e),
    );
    await timers.advance(1999); // t = 4999
    expect(outcome2).toBe('pending');
    await timers.advance(1); // t = 5000
    expect(outcome2).toBe('queued');
    expect(exp.queue.size).toBe(1);
    expect(await metric('otelcol_exporter_enqueue_failed_spans_total')).toBe(2);
  });
});

describe('QueuedExporter circuit breaker', () => {
  it('opens after consecutive failures, probes one request at a time, closes on success', async () => {
    const { timers, backend, exp, metric, telemetry } = setup({
      sending_queue: { num_consumers: 2 },
      circuit_breaker: { failure_threshold: 2 },
      retry_on_failure: { max_elapsed_time: 0 },
    });
    backend.fallback = new RetryableError('down');
    await exp.start();
    for (let i = 0; i < 5; i++) await exp.consume(spans(1));
    await timers.until(() => exp.circuit!.state === CIRCUIT_OPEN);
    expect(backend.calls.length).toBe(2);
    expect(await metric('sidecar_exporter_circuit_state')).toBe(CIRCUIT_OPEN);
    expect(exp.queue.size).toBe(3);

    expect(backend.maxInFlight).toBe(2); // both consumers sent while closed
    // While open: one attempt (a probe) per backoff interval, never two at once.
    const before = backend.calls.length;
    backend.maxInFlight = 0;
    await timers.advance(120_000);
    const probes = backend.calls.slice(before);
    expect(probes.length).toBeGreaterThan(1);
    expect(probes.length).toBeLessThan(12); // 5s, 7.5s, ... capped at 30s: ~8 probes in 2 minutes, not hundreds
    for (let i = 1; i < probes.length; i++) expect(probes[i].at).toBeGreaterThan(probes[i - 1].at);
    expect(backend.maxInFlight).toBe(1);
    expect(exp.queue.size).toBe(3); // queued data waits
    expect(await telemetry.droppedByReason()).toEqual({});

    // Backend recovers: the next probe succeeds, the circuit closes and everything drains.
    backend.fallback = {};
    await timers.advance(31_000);
    await timers.until(() => exp.pending === 0);
    expect(await metric('sidecar_exporter_circuit_state')).toBe(CIRCUIT_CLOSED);
    expect(await metric('otelcol_exporter_sent_spans_total')).toBe(5);
    expect(await telemetry.droppedByReason()).toEqual({});
  });
});

describe('QueuedExporter shutdown', () => {
  it('drains the queue before returning', async () => {
    const { timers, backend, exp, metric, telemetry } = setup({ sending_queue: { num_consumers: 1 } });
    backend.script = [new RetryableError('blip')];
    await exp.start();
    for (let i = 0; i < 4; i++) await exp.consume(spans(2));
    const done = exp.shutdown(10_000);
    await expect(exp.consume(spans(1))).rejects.toMatchObject({ code: 'ERR_SHUTTING_DOWN', retryable: true });
    await timers.advance(5000); // the retry of the first request
    await done;
    expect(await metric('otelcol_exporter_sent_spans_total')).toBe(8);
    expect(await telemetry.droppedByReason()).toEqual({});
  });

  it('at the deadline counts what is left as dropped with reason shutdown', async () => {
    const { timers, backend, exp, metric, telemetry } = setup({ sending_queue: { num_consumers: 1 }, timeout: '60s' });
    backend.fallback = 'hang';
    await exp.start();
    for (let i = 0; i < 3; i++) await exp.consume(spans(2));
    await timers.until(() => backend.calls.length === 1);
    let finished = false;
    const done = exp.shutdown(1000).then(() => (finished = true));
    await timers.advance(999);
    expect(finished).toBe(false);
    await timers.advance(1);
    await done;
    expect(await telemetry.droppedByReason()).toEqual({ shutdown: 6 });
    expect(await metric('otelcol_exporter_send_failed_spans_total')).toBe(6);
    await exp.shutdown(); // idempotent
  });

  it('drops what was queued when shut down before start', async () => {
    const { exp, telemetry } = setup();
    await exp.consume(spans(3));
    await exp.shutdown();
    expect(await telemetry.droppedByReason()).toEqual({ shutdown: 3 });
  });
});

describe('QueuedExporter without a queue', () => {
  it('sends inside consume() and hands a final failure back to the caller (not a drop)', async () => {
    const { backend, exp, telemetry, metric } = setup({ sending_queue: { enabled: false } });
    await exp.start();
    await exp.consume(spans(2));
    expect(await metric('otelcol_exporter_sent_spans_total')).toBe(2);
    backend.script = [new PermanentError('bad')];
    await expect(exp.consume(spans(1))).rejects.toMatchObject({ code: 'ERR_PERMANENT' });
    expect(await telemetry.droppedByReason()).toEqual({});
  });
});
