import { afterEach, describe, expect, it } from 'vitest';
import { decodeRequest, makeSpans, type SpanSpec } from '../../test/otlp.js';
import { encodeExportRequest } from '../../collector/pdata/encode.js';
import { withDefaults } from '../../config/defaults.js';
import { FakeClock, SinkConsumer } from '../../collector/consumertest.js';
import { Telemetry } from '../../collector/telemetry/metrics.js';
import { silentLogger } from '../../collector/telemetry/logger.js';
import { PermanentError, RetryableError } from '../../collector/errors.js';
import type { TracesConsumer } from '../../collector/consumer.js';
import type { Span } from '../../collector/pdata/spans.js';
import { spanAttributes, spanTraceState } from '../../collector/pdata/attributes.js';
import { TailSamplingConfigSchema } from './config.js';
import { FORWARD_RETRIES, TailSamplingProcessor } from './processor.js';
import { CollectorProbabilistic } from './hash.js';
import { tailSamplingProcessorFactory } from './index.js';

const ERRORS = { name: 'errors', type: 'status_code', status_code: { status_codes: ['ERROR'] } };

interface Harness {
  p: TailSamplingProcessor;
  sink: SinkConsumer;
  clock: FakeClock;
  tel: Telemetry;
}
const open: TailSamplingProcessor[] = [];
afterEach(async () => {
  for (const p of open.splice(0)) await p.shutdown();
});

function setup(cfg: Record<string, unknown>, next?: TracesConsumer): Harness {
  const clock = new FakeClock();
  const sink = new SinkConsumer();
  const tel = new Telemetry();
  const config = withDefaults(TailSamplingConfigSchema, { policies: [ERRORS], ...cfg });
  const p = tailSamplingProcessorFactory.create({ id: 'tail_sampling', logger: silentLogger(), telemetry: tel, clock }, config, next ?? sink) as TailSamplingProcessor;
  open.push(p);
  return { p, sink, clock, tel };
}

let n = 0;
const tid = () => (++n).toString(16).padStart(32, '0').replace(/^0/, 'e');
const sid = () => (++n).toString(16).padStart(16, '0').replace(/^0/, 'd');

function spans(traceId: string, specs: Array<Partial<SpanSpec>>): Span[] {
  return makeSpans(specs.map((s) => ({ traceId, spanId: sid(), parentSpanId: 'aaaaaaaaaaaaaaaa', ...s }) as SpanSpec));
}
const idsOf = (sink: SinkConsumer) => new Set(sink.spans.map((s) => s.traceId));

describe('decision timing', () => {
  it('a tick that decides many traces lets receiving run between slices; every trace is decided once', async () => {
    const { p, sink, clock } = setup({ policies: [{ name: 'all', type: 'always_sample' }] });
    const ids = Array.from({ length: 100 }, () => tid());
    for (const id of ids) await p.consume(spans(id, [{}, {}]));
    // A slow policy (1 ms a trace) makes the tick long enough to be sliced.
    const ev = p['policies'][0].eval;
    const evaluate = ev.evaluate.bind(ev);
    ev.evaluate = (t, now) => {
      const until = performance.now() + 1;
      while (performance.now() < until);
      return evaluate(t, now);
    };
    clock.advance(30_000);
    const late = tid();
    let received = false;
    const ticking = p.tick();
    setImmediate(() => {
      // Arrives while the tick is deciding: a span of a trace being decided, and a new trace.
      void p.consume([...spans(ids[99], [{}]), ...spans(late, [{}])]).then(() => (received = true));
    });
    await p.tick(); // a second tick while the first is deciding does nothing
    await ticking;
    expect(received).toBe(true);
    const seen = new Map<string, number>();
    for (const s of sink.spans) seen.set(s.spanId, (seen.get(s.spanId) ?? 0) + 1);
    expect([...seen.values()].every((c) => c === 1)).toBe(true);
    expect(sink.spanCount).toBe(201); // 100 traces x 2, plus the span that arrived for ids[99] before its decision
    expect(p.pendingTraces).toBe(1); // the new trace waits for its own decision_wait
    expect(idsOf(sink).has(late)).toBe(false);
  });

  it('decides decision_wait after the first span, never before', async () => {
    const { p, sink, clock, tel } = setup({});
    const kept = tid();
    const dropped = tid();
    await p.consume(spans(kept, [{ status: 2 }]));
    await p.consume(spans(dropped, [{}]));
    clock.advance(10_000);
    await p.consume(spans(kept, [{}, {}])); // more spans of the same trace: no new schedule
    clock.advance(19_999);
    await p.tick();
    expect(sink.spanCount).toBe(0);
    expect(p.pendingTraces).toBe(2);
    clock.advance(1);
    await p.tick();
    expect(sink.spanCount).toBe(3);
    expect(idsOf(sink)).toEqual(new Set([kept]));
    expect(p.pendingTraces).toBe(0);
    expect((await tel.droppedByReason()).sampled_out).toBe(1);
    expect(await tel.total('otelcol_processor_tail_sampling_global_count_traces_sampled_total', { decision: 'sampled' })).toBe(1);
    expect(await tel.total('otelcol_processor_tail_sampling_count_traces_sampled_total', { policy: 'errors', decision: 'not_sampled' })).toBe(1);
    expect(await tel.total('otelcol_processor_tail_sampling_sampling_traces_on_memory')).toBe(0);
  });

  it('decides decision_wait_after_root_received after the root span arrives', async () => {
    const { p, sink, clock } = setup({ decision_wait_after_root_received: '2s' });
    const t = tid();
    await p.consume(spans(t, [{ status: 2 }]));
    clock.advance(5_000);
    await p.tick();
    expect(sink.spanCount).toBe(0);
    await p.consume(spans(t, [{ parentSpanId: '' }])); // the root
    clock.advance(1_999);
    await p.tick();
    expect(sink.spanCount).toBe(0);
    clock.advance(1);
    await p.tick();
    expect(sink.spanCount).toBe(2);
    const text = await p['settings'].telemetry.metricsText();
    expect(text).toMatch(/sampling_decision_latency_seconds_count\{processor="tail_sampling",reason="root_received"\} 1/);
  });

  it('a trace with no root span waits the full decision_wait', async () => {
    const { p, sink, clock } = setup({ decision_wait_after_root_received: '2s' });
    await p.consume(spans(tid(), [{ status: 2 }, { status: 2 }]));
    clock.advance(29_000);
    await p.tick();
    expect(sink.spanCount).toBe(0);
    clock.advance(1_000);
    await p.tick();
    expect(sink.spanCount).toBe(2);
  });

  it('a root span never delays a decision', async () => {
    const { p, sink, clock } = setup({ decision_wait: '3s', decision_wait_after_root_received: '10s' });
    await p.consume(spans(tid(), [{ parentSpanId: '', status: 2 }]));
    clock.advance(3_000);
    await p.tick();
    expect(sink.spanCount).toBe(1);
  });

  it('the ticker runs on its own after start()', async () => {
    const { p } = setup({ tick_interval: '1s' });
    await p.start();
    expect(p['timer']).toBeDefined();
    await p.shutdown();
    expect(p['timer']).toBeUndefined();
  });
});

describe('late spans', () => {
  it('with the decision cache, late spans follow the decision at once', async () => {
    const { p, sink, clock, tel } = setup({ decision_cache: { sampled_cache_size: 100, non_sampled_cache_size: 100 } });
    const kept = tid();
    const dropped = tid();
    await p.consume([...spans(kept, [{ status: 2 }]), ...spans(dropped, [{}])]);
    clock.advance(30_000);
    await p.tick();
    expect(sink.spanCount).toBe(1);
    clock.advance(5_000);
    await p.consume([...spans(kept, [{}]), ...spans(dropped, [{}, {}])]);
    expect(sink.spanCount).toBe(2); // forwarded without waiting
    expect(sink.spans[1].traceId).toBe(kept);
    expect(spanAttributes(sink.spans[1]).get('tailsampling.policy')).toBe('errors');
    expect(p.pendingTraces).toBe(0);
    expect((await tel.droppedByReason()).late_not_sampled).toBe(2);
    expect(await tel.total('otelcol_processor_tail_sampling_early_releases_from_cache_decision_total', { sampled: 'true' })).toBe(1);
    expect(await tel.total('otelcol_processor_tail_sampling_early_releases_from_cache_decision_total', { sampled: 'false' })).toBe(2);
    expect(await tel.metricsText()).toMatch(/sampling_late_span_age_seconds_sum\{processor="tail_sampling"\} 15/);
  });

  it('without the cache, a late span starts a new trace that is decided on its own (Collector behaviour)', async () => {
    const { p, sink, clock, tel } = setup({});
    const t = tid();
    await p.consume(spans(t, [{ status: 2 }]));
    clock.advance(30_000);
    await p.tick();
    expect(sink.spanCount).toBe(1);
    await p.consume(spans(t, [{}])); // late, no error: a new trace for the buffer
    expect(p.pendingTraces).toBe(1);
    expect(sink.spanCount).toBe(1);
    clock.advance(30_000);
    await p.tick();
    // Second decision on the same trace id: this part has no error, so it is dropped.
    expect(sink.spanCount).toBe(1);
    expect((await tel.droppedByReason()).sampled_out).toBe(1);
    expect(await tel.total('otelcol_processor_tail_sampling_new_trace_id_received_total')).toBe(2);
  });
});

describe('bounded buffer', () => {
  it('decides the oldest traces early when num_traces is exceeded, applying the policies', async () => {
    const { p, sink, clock, tel } = setup({ num_traces: 2 });
    const a = tid();
    const b = tid();
    const c = tid();
    await p.consume(spans(a, [{ status: 2 }]));
    clock.advance(1000);
    await p.consume(spans(b, [{}]));
    await p.consume(spans(c, [{}]));
    expect(p.pendingTraces).toBe(2);
    expect(idsOf(sink)).toEqual(new Set([a])); // the oldest, decided early and kept (it has an error)
    expect(await tel.total('otelcol_processor_tail_sampling_traces_decided_early_total', { reason: 'buffer_full' })).toBe(1);
    await p.consume(spans(tid(), [{}]));
    expect((await tel.droppedByReason()).sampled_out).toBe(1); // b: decided early, no error
    expect(p.pendingTraces).toBe(2);
  });

  it('decides early when buffer.max_bytes is exceeded', async () => {
    const { p, sink, tel } = setup({ buffer: { max_bytes: 3000 } });
    const first = tid();
    await p.consume(spans(first, [{ status: 2, attributes: { pad: 'x'.repeat(800) } }]));
    expect(p.pendingTraces).toBe(1);
    await p.consume(spans(tid(), [{ attributes: { pad: 'y'.repeat(2000) } }]));
    expect(idsOf(sink)).toEqual(new Set([first]));
    expect(p.pendingTraces).toBe(1);
    expect(await tel.total('otelcol_processor_tail_sampling_traces_decided_early_total', { reason: 'buffer_full' })).toBe(1);
    expect(await tel.total('otelcol_processor_tail_sampling_sampling_bytes_on_memory')).toBeLessThanOrEqual(3000);
  });

  it('decides a trace at once when it exceeds maximum_trace_size_bytes', async () => {
    const { p, sink, tel } = setup({ maximum_trace_size_bytes: 1000 });
    const big = tid();
    await p.consume(spans(big, [{ status: 2, attributes: { pad: 'x'.repeat(400) } }]));
    expect(sink.spanCount).toBe(0);
    await p.consume(spans(big, [{ attributes: { pad: 'x'.repeat(700) } }]));
    expect(sink.spanCount).toBe(2); // decided now, by the policies (it has an error)
    expect(p.pendingTraces).toBe(0);
    expect(await tel.total('otelcol_processor_tail_sampling_traces_decided_early_total', { reason: 'too_large' })).toBe(1);
  });
});

describe('decision rules', () => {
  const route = (v: string, invert = false) => ({ type: 'string_attribute', string_attribute: { key: 'route', values: [v], invert_match: invert } });
  async function decideOne(policies: unknown[], specs: Array<Partial<SpanSpec>>, extra: Record<string, unknown> = {}) {
    const h = setup({ policies, ...extra });
    await h.p.consume(spans(tid(), specs));
    h.clock.advance(30_000);
    await h.p.tick();
    return h;
  }
  it('drop beats everything, whatever the order', async () => {
    const { sink, tel } = await decideOne(
      [ERRORS, { name: 'no-health', type: 'drop', drop: { drop_sub_policy: [{ name: 'h', ...route('/health') }] } }],
      [{ status: 2, attributes: { route: '/health' } }],
    );
    expect(sink.spanCount).toBe(0);
    expect((await tel.droppedByReason()).policy_drop).toBe(1);
  });
  it('inverted not-sampled beats sampled', async () => {
    const { sink } = await decideOne([ERRORS, { name: 'inv', ...route('/health', true) }], [{ status: 2, attributes: { route: '/health' } }]);
    expect(sink.spanCount).toBe(0);
  });
  it('inverted sampled keeps only when no policy said not sampled', async () => {
    const a = await decideOne([{ name: 'inv', ...route('/health', true) }], [{ attributes: { route: '/x' } }]);
    expect(a.sink.spanCount).toBe(1);
    expect(spanAttributes(a.sink.spans[0]).get('tailsampling.policy')).toBe('inv');
    const b = await decideOne([{ name: 'inv', ...route('/health', true) }, ERRORS], [{ attributes: { route: '/x' } }]);
    expect(b.sink.spanCount).toBe(0);
  });
  it('the first sampling policy is recorded; sample_on_first_match stops evaluating', async () => {
    const policies = [ERRORS, { name: 'all', type: 'always_sample' }, { name: 'rl', type: 'rate_limiting', rate_limiting: { spans_per_second: 1000 } }];
    const a = await decideOne(policies, [{ status: 2 }]);
    expect(spanAttributes(a.sink.spans[0]).get('tailsampling.policy')).toBe('errors');
    expect(await a.tel.total('otelcol_processor_tail_sampling_count_traces_sampled_total', { policy: 'rl' })).toBe(1);
    const b = await decideOne(policies, [{ status: 2 }], { sample_on_first_match: true });
    expect(b.sink.spanCount).toBe(1);
    expect(await b.tel.total('otelcol_processor_tail_sampling_count_traces_sampled_total', { policy: 'rl' })).toBe(0);
    expect(await b.tel.total('otelcol_processor_tail_sampling_count_traces_sampled_total', { policy: 'all' })).toBe(0);
  });
  it('a policy that throws is counted and skipped', async () => {
    const h = setup({ policies: [ERRORS, { name: 'all', type: 'always_sample' }] });
    h.p['policies'][0].eval.evaluate = () => {
      throw new Error('boom');
    };
    await h.p.consume(spans(tid(), [{}]));
    h.clock.advance(30_000);
    await h.p.tick();
    expect(h.sink.spanCount).toBe(1);
    expect(await h.tel.total('otelcol_processor_tail_sampling_sampling_policy_evaluation_error_total')).toBe(1);
  });
});

describe('stamping kept spans', () => {
  function idKeptAt(pct: number): string {
    const s = new CollectorProbabilistic(pct, '');
    for (;;) {
      const id = tid();
      if (s.sampled(id)) return id;
    }
  }
  async function keep(policies: unknown[], specs: Array<Partial<SpanSpec>>, traceId = tid()) {
    const h = setup({ policies });
    await h.p.consume(spans(traceId, specs));
    h.clock.advance(30_000);
    await h.p.tick();
    expect(h.sink.spanCount).toBe(specs.length);
    return h.sink.spans;
  }
  const prob = (pct: number) => ({ name: 'prob', type: 'probabilistic', probabilistic: { sampling_percentage: pct } });

  it('probabilistic: writes th and SampleRate', async () => {
    const out = await keep([prob(25)], [{}, {}], idKeptAt(25));
    for (const s of out) {
      expect(spanTraceState(s)).toBe('ot=th:c');
      expect(spanAttributes(s).get('SampleRate')).toBe(4);
      expect(spanAttributes(s).get('tailsampling.policy')).toBe('prob');
    }
  });

  it('probabilistic after an incoming threshold: probabilities multiply (independent hash), never lowering it', async () => {
    const out = await keep([prob(25)], [{ traceState: 'vendor=x,ot=th:8;rv:0123456789abcd' }], idKeptAt(25));
    // 50% then 25% = 12.5%: T = 2^56 * 7/8 = 0xe; the ot member moves first, rv and the vendor entry are kept.
    expect(spanTraceState(out[0])).toBe('ot=th:e;rv:0123456789abcd,vendor=x');
    expect(spanAttributes(out[0]).get('SampleRate')).toBe(8);
  });

  it('replaces a tailsampling.policy attribute a span already carries (e.g. from an upstream sampler)', async () => {
    const out = await keep([ERRORS], [{ status: 2, attributes: { 'tailsampling.policy': 'upstream', keep: 'me' } }, { status: 2 }]);
    for (const s of out) expect(spanAttributes(s).get('tailsampling.policy')).toBe('errors');
    expect(spanAttributes(out[0]).get('keep')).toBe('me');
    // Counted on the wire (a Map would hide a duplicate).
    const decoded = decodeRequest(encodeExportRequest([out[0]])).resourceSpans![0].scopeSpans![0].spans![0];
    expect((decoded.attributes as Array<{ key: string }>).filter((a) => a.key === 'tailsampling.policy').length).toBe(1);
  });

  it('a trace kept with probability 1 (status_code) keeps its incoming th and gets no SampleRate', async () => {
    const out = await keep([ERRORS, prob(25)], [{ status: 2, traceState: 'ot=th:8' }]);
    expect(spanTraceState(out[0])).toBe('ot=th:8');
    expect(spanAttributes(out[0]).has('SampleRate')).toBe(false);
  });

  it('a trace kept with unknown probability (rate_limiting) has th erased, other sub-keys kept', async () => {
    const out = await keep([{ name: 'rl', type: 'rate_limiting', rate_limiting: { spans_per_second: 100 } }], [{ traceState: 'ot=th:8;rv:0123456789abcd,v=1' }]);
    expect(spanTraceState(out[0])).toBe('ot=rv:0123456789abcd,v=1');
    expect(spanAttributes(out[0]).has('SampleRate')).toBe(false);
    expect(spanAttributes(out[0]).get('tailsampling.policy')).toBe('rl');
  });

  it('dynamic (R-based) combines with an incoming threshold by max', async () => {
    const dyn = { name: 'dyn', type: 'dynamic', dynamic: { key_fields: ['route'], goal_sample_rate: 2 } };
    // Before the first adjustment every key has rate 1: probability 1, th untouched.
    const out = await keep([dyn], [{ traceState: 'ot=th:4' }]);
    expect(spanTraceState(out[0])).toBe('ot=th:4');
  });

  it('dry_run keeps everything and writes the would-be decision', async () => {
    const h = setup({ dry_run: true });
    const kept = tid();
    const dropped = tid();
    await h.p.consume([...spans(kept, [{ status: 2 }]), ...spans(dropped, [{ traceState: 'ot=th:8' }])]);
    h.clock.advance(30_000);
    await h.p.tick();
    expect(h.sink.spanCount).toBe(2);
    const byId = new Map(h.sink.spans.map((s) => [s.traceId, s]));
    expect(spanAttributes(byId.get(kept)!).get('tailsampling.dry_run.decision')).toBe('sampled');
    expect(spanAttributes(byId.get(kept)!).get('tailsampling.dry_run.policy')).toBe('errors');
    expect(spanAttributes(byId.get(dropped)!).get('tailsampling.dry_run.decision')).toBe('not_sampled');
    expect(spanTraceState(byId.get(dropped)!)).toBe('ot=th:8');
    expect(await h.tel.droppedByReason()).toEqual({});
    expect(await h.tel.total('otelcol_processor_tail_sampling_global_count_traces_sampled_total', { decision: 'not_sampled' })).toBe(1);
  });
});

class FlakyConsumer implements TracesConsumer {
  readonly got: Span[][] = [];
  constructor(public failures: number, private readonly err: Error) {}
  async consume(s: Span[]): Promise<void> {
    if (this.failures > 0) {
      this.failures--;
      throw this.err;
    }
    this.got.push(s);
  }
}

describe('forwarding failures', () => {
  it('retries a refused trace on the next ticks instead of losing it', async () => {
    const next = new FlakyConsumer(2, new RetryableError('busy'));
    const { p, clock, tel } = setup({}, next);
    await p.consume(spans(tid(), [{ status: 2 }]));
    clock.advance(30_000);
    await p.tick(); // refused
    clock.advance(1_000);
    await p.tick(); // refused again
    expect(next.got.length).toBe(0);
    clock.advance(1_000);
    await p.tick();
    expect(next.got.flat().length).toBe(1);
    expect(await tel.total('otelcol_processor_tail_sampling_forward_retries_total')).toBe(2);
    expect(await tel.droppedByReason()).toEqual({});
  });

  it('counts the trace as dropped after the retries run out, or at once on a permanent error', async () => {
    const next = new FlakyConsumer(100, new RetryableError('down'));
    const { p, clock, tel } = setup({}, next);
    await p.consume(spans(tid(), [{ status: 2 }, { status: 2 }]));
    clock.advance(30_000);
    for (let i = 0; i <= FORWARD_RETRIES; i++) {
      await p.tick();
      clock.advance(1_000);
    }
    expect((await tel.droppedByReason()).export_retries_exhausted).toBe(2);

    const perm = setup({}, new FlakyConsumer(1, new PermanentError('bad')));
    await perm.p.consume(spans(tid(), [{ status: 2 }]));
    perm.clock.advance(30_000);
    await perm.p.tick();
    expect((await perm.tel.droppedByReason()).export_permanent_error).toBe(1);
  });

  it('pushes back on new data while refused batches pile up', async () => {
    const next = new FlakyConsumer(1_000, new RetryableError('down'));
    const { p, clock } = setup({ buffer: { max_bytes: 2000 } }, next);
    await p.consume(spans(tid(), [{ status: 2, attributes: { pad: 'x'.repeat(900) } }]));
    clock.advance(30_000);
    await p.tick();
    await expect(p.consume(spans(tid(), [{}]))).rejects.toBeInstanceOf(RetryableError);
  });
});

describe('shutdown', () => {
  it('decides pending traces with the data at hand', async () => {
    const { p, sink } = setup({});
    await p.consume(spans(tid(), [{ status: 2 }]));
    await p.shutdown();
    await p.shutdown(); // idempotent
    expect(sink.spanCount).toBe(1);
    await expect(p.consume(spans(tid(), [{}]))).rejects.toBeInstanceOf(RetryableError);
  });
  it('drop_pending_traces_on_shutdown drops and counts them', async () => {
    const { p, sink, tel } = setup({ drop_pending_traces_on_shutdown: true });
    await p.consume(spans(tid(), [{ status: 2 }, {}]));
    await p.shutdown();
    expect(sink.spanCount).toBe(0);
    expect((await tel.droppedByReason()).shutdown).toBe(2);
  });
});

describe('live reconfiguration (config reload)', () => {
  it('replaces the policies and keeps buffered traces, which the new policies decide', async () => {
    const { p, sink, clock, tel } = setup({});
    const slowOk = tid();
    const error = tid();
    await p.consume(spans(slowOk, [{ durationMs: 2000 }]));
    await p.consume(spans(error, [{ status: 2 }]));
    const next = withDefaults(TailSamplingConfigSchema, {
      policies: [{ name: 'slow', type: 'latency', latency: { threshold_ms: 1000 } }],
    });
    expect(p.reconfigure(next)).toBe(true);
    expect(p.pendingTraces).toBe(2); // nothing decided or lost by the reload
    clock.advance(30_000);
    await p.tick();
    // Decided by the new policy set: the slow trace is kept, the error trace (no errors policy now) is not.
    expect(idsOf(sink)).toEqual(new Set([slowOk]));
    expect(await tel.total('otelcol_processor_tail_sampling_count_traces_sampled_total', { policy: 'slow', decision: 'sampled' })).toBe(1);
  });

  it('refuses a live change to settings outside liveSettings (the service rebuilds instead)', async () => {
    const { p } = setup({});
    const next = withDefaults(TailSamplingConfigSchema, { policies: [ERRORS], decision_wait: '5s' });
    expect(p.reconfigure(next)).toBe(false);
    expect(tailSamplingProcessorFactory.liveSettings).toEqual(['policies', 'sample_on_first_match', 'dry_run']);
  });
});
