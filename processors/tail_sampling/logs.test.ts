/**
 * Log records through tail_sampling: held with their trace (one instance for
 * the traces and the logs pipeline), kept with kept traces (stamped like their
 * spans), dropped with dropped ones (counted sampled_out), late records follow
 * the cached decision, records without a trace id pass through, and held
 * records count against the buffer.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { withDefaults } from '../../config/defaults.js';
import { FakeClock, SinkConsumer } from '../../collector/consumertest.js';
import { Telemetry } from '../../collector/telemetry/metrics.js';
import { silentLogger } from '../../collector/telemetry/logger.js';
import { TailSamplingConfigSchema } from './config.js';
import { TailSamplingProcessor } from './processor.js';
import { tailSamplingProcessorFactory } from './index.js';
import { LogSink, attrs, body, bodies, logs, spans, tid } from './testdata/logs.js';

const ERRORS = { name: 'errors', type: 'status_code', status_code: { status_codes: ['ERROR'] } };

const open: TailSamplingProcessor[] = [];
afterEach(async () => {
  for (const p of open.splice(0)) await p.shutdown();
});

function setup(cfg: Record<string, unknown> = {}) {
  const clock = new FakeClock();
  const sink = new SinkConsumer();
  const logSink = new LogSink();
  const tel = new Telemetry();
  const config = withDefaults(TailSamplingConfigSchema, { policies: [ERRORS], decision_wait: '10s', ...cfg });
  const p = tailSamplingProcessorFactory.create({ id: 'tail_sampling', logger: silentLogger(), telemetry: tel, clock }, config, sink) as TailSamplingProcessor;
  expect(p.attachLogs(logSink)).toBe(p);
  open.push(p);
  return { p, sink, logSink, clock, tel };
}

describe('logs with their traces', () => {
  it('keeps exactly the logs of kept traces, stamped, drops those of dropped traces, and passes logs without a trace id', async () => {
    const { p, sink, logSink, clock, tel } = setup();
    const kept = tid();
    const dropped = tid();
    await p.consume([...spans(kept, 2), ...spans(dropped, 0)]);
    await p.consumeLogs(logs([{ traceId: kept, body: 'k1' }, { traceId: dropped, body: 'd1' }, { body: 'free' }]));
    expect(bodies(logSink)).toEqual(['free']); // the others wait for their traces
    await p.consumeLogs(logs([{ traceId: kept, body: 'k2' }]));
    clock.advance(10_000);
    await p.tick();
    expect(new Set(sink.spans.map((s) => s.traceId))).toEqual(new Set([kept]));
    expect(bodies(logSink)).toEqual(['free', 'k1', 'k2']);
    const k1 = logSink.records.find((r) => body(r) === 'k1')!;
    expect(attrs(k1)['tailsampling.policy']).toBe('errors');
    expect(k1.traceId).toBe(kept); // the index survives the stamp
    expect(await tel.total('sidecar_log_records_dropped_total', { reason: 'sampled_out' })).toBe(1);
    expect(await tel.total('sidecar_spans_dropped_total', { reason: 'sampled_out' })).toBe(2);
  });

  it('late log records follow the cached decision; none arrives twice', async () => {
    const { p, logSink, clock, tel } = setup({ decision_cache: { sampled_cache_size: 100, non_sampled_cache_size: 100 } });
    const kept = tid();
    const dropped = tid();
    await p.consume([...spans(kept, 2), ...spans(dropped, 0)]);
    await p.consumeLogs(logs([{ traceId: kept, body: 'early' }]));
    clock.advance(10_000);
    await p.tick();
    await p.consumeLogs(logs([{ traceId: kept, body: 'late-kept' }, { traceId: dropped, body: 'late-dropped' }]));
    clock.advance(10_000);
    await p.tick();
    expect(bodies(logSink)).toEqual(['early', 'late-kept']);
    expect(attrs(logSink.records[1])['tailsampling.policy']).toBe('errors');
    expect(await tel.total('sidecar_log_records_dropped_total', { reason: 'late_not_sampled' })).toBe(1);
  });

  it('a log record that arrives before any span of its trace waits for the trace; a trace of logs only is decided too', async () => {
    const { p, logSink, clock, tel } = setup();
    const first = tid();
    const alone = tid();
    await p.consumeLogs(logs([{ traceId: first, body: 'before-spans' }, { traceId: alone, body: 'alone' }]));
    expect(p.pendingTraces).toBe(2);
    await p.consume(spans(first, 2));
    clock.advance(10_000);
    await p.tick();
    expect(bodies(logSink)).toEqual(['before-spans']);
    expect(p.pendingTraces).toBe(0);
    expect(await tel.total('sidecar_log_records_dropped_total', { reason: 'sampled_out' })).toBe(1);
  });

  it('held log records count against buffer.max_bytes: over it, the oldest traces are decided early with their logs', async () => {
    const { p, logSink, tel } = setup({ buffer: { max_bytes: 4096 }, policies: [{ name: 'all', type: 'always_sample' }] });
    const ids = Array.from({ length: 20 }, () => tid());
    for (const id of ids) await p.consumeLogs(logs([{ traceId: id, body: 'x'.repeat(100) + id }]));
    // 20 records of ~150 B plus overheads do not fit 4 KiB: the oldest traces went early, with their records.
    expect(logSink.records.length).toBeGreaterThan(0);
    expect(p.pendingTraces).toBeLessThan(20);
    await p.shutdown();
    expect(bodies(logSink)).toHaveLength(20); // shutdown decides the rest: every record kept, none twice
  });

  it('dry run: every log record goes on with the would-be decision', async () => {
    const { p, logSink, clock } = setup({ dry_run: true });
    const t = tid();
    await p.consume(spans(t, 0));
    await p.consumeLogs(logs([{ traceId: t, body: 'dry' }]));
    clock.advance(10_000);
    await p.tick();
    expect(attrs(logSink.records[0])).toMatchObject({ 'tailsampling.dry_run.decision': 'not_sampled' });
  });
});
