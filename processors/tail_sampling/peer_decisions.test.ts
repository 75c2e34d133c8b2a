import { afterEach, describe, expect, it } from 'vitest';
import { makeSpans, type SpanSpec } from '../../test/otlp.js';
import { withDefaults } from '../../config/defaults.js';
import { FakeClock, SinkConsumer } from '../../collector/consumertest.js';
import { Telemetry } from '../../collector/telemetry/metrics.js';
import { silentLogger } from '../../collector/telemetry/logger.js';
import type { Span } from '../../collector/pdata/spans.js';
import { spanAttributes, spanTraceState } from '../../collector/pdata/attributes.js';
import { TailSamplingConfigSchema, validateTailSamplingConfig, type TailSamplingConfig } from './config.js';
import { TailSamplingProcessor } from './processor.js';
import { decodeKeep, DecisionStoreError, encodeKeep, MemoryDecisionStore } from './decision_store.js';
import { earlyKeepCodes } from './peer_decisions.js';
import { SAMPLED } from './policies.js';

// Two sidecars (A and B) sharing one store, one clock; each sees its own part of a trace.
const ERRORS = { name: 'errors', type: 'status_code', status_code: { status_codes: ['ERROR'] } };
const SLOW = { name: 'slow', type: 'latency', latency: { threshold_ms: 500 } };
const BASE = {
  decision_wait: '10s',
  tick_interval: '100ms',
  decision_cache: { sampled_cache_size: 1000, non_sampled_cache_size: 1000 },
  policies: [ERRORS, SLOW],
  shared_decisions: { redis: { endpoint: 'redis://127.0.0.1:1' }, wait: '5s', ttl: '1m' },
};

interface Side {
  p: TailSamplingProcessor;
  sink: SinkConsumer;
  tel: Telemetry;
}
const open: TailSamplingProcessor[] = [];
afterEach(async () => {
  for (const p of open.splice(0)) await p.shutdown();
});

function sidecar(store: MemoryDecisionStore, clock: FakeClock, over: Record<string, unknown> = {}): Side {
  const sink = new SinkConsumer();
  const tel = new Telemetry();
  const cfg = withDefaults(TailSamplingConfigSchema, { ...BASE, ...over }) as TailSamplingConfig;
  const p = new TailSamplingProcessor({ id: 'tail_sampling', logger: silentLogger(), telemetry: tel, clock }, cfg, sink, { decisionStore: store });
  open.push(p);
  return { p, sink, tel };
}

let n = 0;
const tid = () => (++n).toString(16).padStart(32, '0').replace(/^0/, 'f');
const sid = () => (++n).toString(16).padStart(16, '0').replace(/^0/, 'c');
function spans(traceId: string, specs: Array<Partial<SpanSpec>>): Span[] {
  return makeSpans(specs.map((s) => ({ traceId, spanId: sid(), parentSpanId: 'aaaaaaaaaaaaaaaa', ...s }) as SpanSpec));
}
const idsOf = (s: Side) => new Set(s.sink.spans.map((x) => x.traceId));

/** Advances the clock in ticks; each tick decides, then the store answers (a microtask store) before the next. */
async function run(clock: FakeClock, ms: number, ...sides: Side[]): Promise<void> {
  for (let t = 0; t < ms; t += 100) {
    clock.advance(100);
    for (const s of sides) {
      await s.p.tick();
      await s.p['shared']!.settle();
    }
  }
}

describe('shared decisions: the protocol', () => {
  it('a trace one sidecar keeps is kept by the sidecar that would have dropped it, with the keeper\'s policy stamped', async () => {
    const store = new MemoryDecisionStore();
    const storeB = new MemoryDecisionStore(store.data); // the same server, B's connection
    const clock = new FakeClock();
    const a = sidecar(store, clock);
    const b = sidecar(storeB, clock);
    const kept = tid();
    const nobody = tid();
    await a.p.consume(spans(kept, [{ status: 2 }])); // the error is in A's part
    await b.p.consume(spans(kept, [{}, {}]));
    await a.p.consume(spans(nobody, [{}]));
    await b.p.consume(spans(nobody, [{}]));
    await run(clock, 10_100, a, b); // B's read at its decision finds A's keep; the next tick keeps it
    expect(idsOf(a)).toEqual(new Set([kept]));
    expect(idsOf(b)).toEqual(new Set([kept]));
    expect(b.sink.spans.map((s) => spanAttributes(s).get('tailsampling.policy'))).toEqual(['errors', 'errors']);
    // The trace nobody keeps is held until wait, then dropped as sampled_out (on both sides).
    await run(clock, 5_200, a, b);
    expect(idsOf(a).has(nobody)).toBe(false);
    expect(idsOf(b).has(nobody)).toBe(false);
    expect((await a.tel.droppedByReason()).sampled_out).toBe(1);
    expect((await b.tel.droppedByReason()).sampled_out).toBe(1);
    expect(await b.tel.total('otelcol_processor_tail_sampling_shared_keeps_learned_total')).toBe(1);
    expect(await a.tel.total('otelcol_processor_tail_sampling_shared_keeps_published_total')).toBe(1);
    expect(await b.tel.total('otelcol_processor_tail_sampling_shared_traces_held')).toBe(0);
    // One key per kept trace; at most two reads per trace per sidecar.
    expect([...store.data.keys()]).toEqual([kept]);
    for (const s of [store, storeB]) expect(Math.max(...s.readsPerTrace.values())).toBeLessThanOrEqual(2);
    expect(storeB.readsPerTrace.get(nobody)).toBe(2); // once after the local decision, once at the deadline
    expect(storeB.readsPerTrace.get(kept)).toBe(1);
    expect(store.readsPerTrace.has(kept)).toBe(false); // the keeper never reads
  });

  it('publishes an error span\'s keep on the next tick, before the trace is decided', async () => {
    const store = new MemoryDecisionStore();
    const clock = new FakeClock();
    const a = sidecar(store, clock);
    const t = tid();
    await a.p.consume(spans(t, [{ status: 2 }]));
    expect(store.data.size).toBe(0); // nothing on the receive path
    await run(clock, 100, a);
    expect(decodeKeep(store.data.get(t)!, 0)).toMatchObject({ decision: SAMPLED, policy: 'errors', p: 1 });
    expect(a.sink.spanCount).toBe(0);
    await run(clock, 10_000, a);
    expect(a.sink.spanCount).toBe(1);
    expect(store.publishes).toBe(1); // the decision did not write again
  });

  it('a peer\'s keep that arrives just before the deadline keeps the trace; just after, it is dropped', async () => {
    const store = new MemoryDecisionStore();
    const clock = new FakeClock();
    const b = sidecar(store, clock);
    const before = tid();
    const after = tid();
    await b.p.consume([...spans(before, [{}]), ...spans(after, [{}])]);
    await run(clock, 10_000, b); // decided locally: not kept, held 5 s, first read found nothing
    expect(await b.tel.total('otelcol_processor_tail_sampling_shared_traces_held')).toBe(2);
    await run(clock, 4_800, b);
    const keep = encodeKeep({ decision: SAMPLED, policy: 'slow', compositeSub: undefined, p: 1, consistent: false, decidedAt: 0 });
    store.data.set(before, keep); // the peer's keep lands 200 ms before the deadline
    await run(clock, 300, b); // the deadline read finds it
    expect(idsOf(b)).toEqual(new Set([before]));
    expect(spanAttributes(b.sink.spans[0]).get('tailsampling.policy')).toBe('slow');
    store.data.set(after, keep); // lands after the deadline read answered
    await run(clock, 1_000, b);
    expect(idsOf(b)).toEqual(new Set([before]));
    expect((await b.tel.droppedByReason()).sampled_out).toBe(1);
    expect(store.readsPerTrace.get(before)).toBe(2);
    expect(store.readsPerTrace.get(after)).toBe(2);
  });

  it('late spans of a trace a peer kept follow the decision cache; late spans of a dropped trace ask again', async () => {
    const store = new MemoryDecisionStore();
    const clock = new FakeClock();
    const b = sidecar(store, clock);
    const t = tid();
    store.data.set(t, encodeKeep({ decision: SAMPLED, policy: 'errors', compositeSub: undefined, p: 1, consistent: false, decidedAt: 0 }));
    await b.p.consume(spans(t, [{}]));
    await run(clock, 10_200, b);
    expect(b.sink.spanCount).toBe(1);
    await b.p.consume(spans(t, [{}])); // late: forwarded at once
    expect(b.sink.spanCount).toBe(2);
    const d = tid();
    await b.p.consume(spans(d, [{}]));
    await run(clock, 15_300, b);
    expect(idsOf(b).has(d)).toBe(false);
    store.data.set(d, encodeKeep({ decision: SAMPLED, policy: 'errors', compositeSub: undefined, p: 1, consistent: false, decidedAt: 0 }));
    await b.p.consume(spans(d, [{}])); // late, after a drop: held again and kept by the peer's decision
    await run(clock, 10_200, b);
    expect(b.sink.spans.filter((s) => s.traceId === d)).toHaveLength(1);
  });

  it('keeps the keep probability a peer decided: SampleRate and th', async () => {
    const store = new MemoryDecisionStore();
    const clock = new FakeClock();
    const b = sidecar(store, clock);
    const t = tid();
    store.data.set(t, encodeKeep({ decision: SAMPLED, policy: 'baseline', compositeSub: undefined, p: 0.25, consistent: true, decidedAt: 0 }));
    await b.p.consume(spans(t, [{}]));
    await run(clock, 10_200, b);
    const s = b.sink.spans[0];
    expect(Object.fromEntries(spanAttributes(s))).toMatchObject({ 'tailsampling.policy': 'baseline', SampleRate: 4 });
    expect(spanTraceState(s)).toBe('ot=th:c');
  });

  it('a failing store: every trace is decided alone at once and counted, held traces too; it recovers by itself', async () => {
    const store = new MemoryDecisionStore();
    const clock = new FakeClock();
    const b = sidecar(store, clock);
    const heldBefore = tid();
    await b.p.consume(spans(heldBefore, [{}]));
    await run(clock, 10_200, b); // held, first read done
    expect(b.p.pendingTraces).toBe(1);
    store.failWith = new DecisionStoreError('connect ECONNREFUSED', 'connection');
    const err = tid();
    await b.p.consume(spans(err, [{ status: 2 }])); // its keep cannot be published
    await run(clock, 200, b);
    // The failed write marked the store down: the held trace is decided alone at the next tick.
    await run(clock, 100, b);
    expect(b.p.pendingTraces).toBe(1); // only the error trace, waiting for its own decision
    const alone = () => b.tel.total('otelcol_processor_tail_sampling_shared_decisions_without_store_total');
    expect(await alone()).toBe(1);
    const during = tid();
    await b.p.consume(spans(during, [{}]));
    await run(clock, 10_200, b);
    expect(idsOf(b)).toEqual(new Set([err])); // kept alone
    expect(b.p.pendingTraces).toBe(0); // `during`: dropped alone (its one read failed: the store is asked again after each back-off)
    expect(await alone()).toBe(2);
    expect(await b.tel.total('otelcol_processor_tail_sampling_shared_store_errors_total', { kind: 'connection' })).toBeGreaterThanOrEqual(1);
    expect((await b.tel.droppedByReason()).sampled_out).toBe(2);
    // Back: holds resume without a restart.
    store.failWith = undefined;
    const after = tid();
    store.data.set(after, encodeKeep({ decision: SAMPLED, policy: 'errors', compositeSub: undefined, p: 1, consistent: false, decidedAt: 0 }));
    await b.p.consume(spans(after, [{}]));
    await run(clock, 10_300, b);
    expect(idsOf(b).has(after)).toBe(true);
  });

  it('a store that never answers: the trace is decided alone once the deadline read times out', async () => {
    const store = new MemoryDecisionStore();
    const clock = new FakeClock();
    const b = sidecar(store, clock, { shared_decisions: { ...BASE.shared_decisions, redis: { endpoint: 'redis://x:1', timeout: '500ms' } } });
    const t = tid();
    await b.p.consume(spans(t, [{}]));
    store.gate = () => new Promise<void>(() => undefined); // hangs
    for (let i = 0; i < 160; i++) {
      clock.advance(100);
      await b.p.tick(); // never waits for the store
    }
    expect(b.p.pendingTraces).toBe(0);
    expect(await b.tel.total('otelcol_processor_tail_sampling_shared_decisions_without_store_total', { reason: 'timeout' })).toBe(1);
    expect((await b.tel.droppedByReason()).sampled_out).toBe(1);
  });
});

describe('shared decisions: config', () => {
  const problems = (sd: Record<string, unknown>) =>
    validateTailSamplingConfig(withDefaults(TailSamplingConfigSchema, { policies: [ERRORS], shared_decisions: sd }) as TailSamplingConfig).map((p) => [p.path.join('.'), p.message]);
  it('names the key of each problem', () => {
    expect(problems({ redis: {} })).toEqual([['shared_decisions.redis', expect.stringMatching(/one of endpoint .* or cluster/)]]);
    expect(problems({ redis: { endpoint: 'redis://a:1', cluster: ['b:2'] } })).toEqual([['shared_decisions.redis', expect.stringMatching(/exclusive/)]]);
    expect(problems({ redis: { endpoint: 'redis://u:secret@a:1' } })).toEqual([['shared_decisions.redis.endpoint', expect.stringMatching(/password_file/)]]);
    expect(problems({ redis: { endpoint: 'redis://a:1' }, wait: '30s', ttl: '10s' })).toEqual([['shared_decisions.ttl', expect.stringMatching(/at least wait/)]]);
    expect(problems({ redis: { endpoint: 'rediss://a:6380', tls: { ca_file: '/ca.pem' } }, wait: '5s' })).toEqual([]);
  });
  it('publishes early only when no policy can turn a keep into a drop', () => {
    const cfg = (policies: unknown[]) => withDefaults(TailSamplingConfigSchema, { policies }) as TailSamplingConfig;
    expect(earlyKeepCodes(cfg([ERRORS, SLOW]))?.[2]).toBe('errors');
    expect(earlyKeepCodes(cfg([SLOW]))).toBeUndefined();
    expect(earlyKeepCodes(cfg([ERRORS, { name: 'd', type: 'drop', drop: { drop_sub_policy: [SLOW] } }]))).toBeUndefined();
    expect(earlyKeepCodes(cfg([ERRORS, { name: 'h', type: 'string_attribute', string_attribute: { key: 'r', values: ['/h'], invert_match: true } }]))).toBeUndefined();
  });
});
