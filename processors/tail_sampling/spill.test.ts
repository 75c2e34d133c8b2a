/**
 * The disk spill wired into the tail_sampling processor: decisions and bytes
 * are the same whether a trace was spilled or not; pending traces survive a
 * graceful shutdown and a restart with their original timing; disk faults
 * fall back to the memory-only behaviour, counted.
 */
import fs from 'node:fs';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { makeSpans, type SpanSpec } from '../../test/otlp.js';
import { withDefaults } from '../../config/defaults.js';
import { FakeClock, SinkConsumer } from '../../collector/consumertest.js';
import { Telemetry } from '../../collector/telemetry/metrics.js';
import { silentLogger } from '../../collector/telemetry/logger.js';
import { RetryableError } from '../../collector/errors.js';
import type { Span } from '../../collector/pdata/spans.js';
import { InjectedFault, StorageError } from '../../storage/db.js';
import { tempDir, removeDir, canMountTmpfs, mountTmpfs, unmount } from '../../storage/testdata/helpers.js';
import { TailSamplingConfigSchema } from './config.js';
import { TailSamplingProcessor } from './processor.js';
import { tailSamplingProcessorFactory } from './index.js';

const POLICIES = [
  { name: 'errors', type: 'status_code', status_code: { status_codes: ['ERROR'] } },
  { name: 'slow', type: 'latency', latency: { threshold_ms: 500 } },
  { name: 'pay', type: 'string_attribute', string_attribute: { key: 'http.route', values: ['/pay'] } },
  { name: 'big', type: 'span_count', span_count: { min_spans: 9 } },
  { name: 'some', type: 'probabilistic', probabilistic: { sampling_percentage: 30 } },
];

interface H {
  p: TailSamplingProcessor;
  sink: SinkConsumer;
  tel: Telemetry;
}
const live: TailSamplingProcessor[] = [];
const dirs: string[] = [];
afterEach(async () => {
  for (const p of live.splice(0)) await p.shutdown();
  for (const d of dirs.splice(0)) removeDir(d);
});

function dir(): string {
  const d = tempDir('ts-spill-');
  dirs.push(d);
  return d;
}

function make(clock: FakeClock, cfg: Record<string, unknown>, tel = new Telemetry(), id = 'tail_sampling'): H {
  const sink = new SinkConsumer();
  const config = withDefaults(TailSamplingConfigSchema, { policies: POLICIES, decision_wait: '10s', decision_wait_after_root_received: '3s', ...cfg });
  const p = tailSamplingProcessorFactory.create({ id, logger: silentLogger(), telemetry: tel, clock }, config, sink) as TailSamplingProcessor;
  live.push(p);
  return { p, sink, tel };
}

/** A deterministic pseudo-random generator (mulberry32). */
function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
const hex = (r: () => number, n: number) => Array.from({ length: n }, () => Math.floor(r() * 16).toString(16)).join('');

/**
 * Fixture: `traces` traces whose spans arrive in 1-3 parts over several
 * seconds (children first, the root in a later part for some), from two
 * services, with errors, slow roots and /pay routes mixed in.
 * Returns arrival batches: [atMs offset, spans[]].
 */
function fixture(seed: number, traces: number): Array<[number, Span[]]> {
  const r = rng(seed);
  const byTime = new Map<number, SpanSpec[][]>();
  const routes = ['/cart', '/pay', '/items', '/search', '/home'];
  for (let t = 0; t < traces; t++) {
    const traceId = hex(r, 32);
    const root = hex(r, 16);
    const n = 1 + Math.floor(r() * 12);
    const start = Math.floor(r() * 20_000);
    const route = routes[Math.floor(r() * routes.length)];
    const err = r() < 0.08;
    const slow = r() < 0.1;
    const specs: SpanSpec[] = [];
    for (let k = 0; k < n; k++) {
      specs.push({
        traceId,
        spanId: k === 0 ? root : hex(r, 16),
        parentSpanId: k === 0 ? undefined : root,
        name: k === 0 ? `GET ${route}` : `child ${k}`,
        kind: k === 0 ? 2 : 3,
        startMs: 1_700_000_000_000 + start + k,
        durationMs: k === 0 ? (slow ? 900 : 40) : 5 + k,
        status: err && k === n - 1 ? 2 : 0,
        attributes: { 'http.route': route, seq: k, 'payload': 'x'.repeat(40 + Math.floor(r() * 200)) },
      });
    }
    // Children arrive before the root (as SDKs export them), in up to 3 parts, seconds apart.
    specs.reverse();
    const parts = 1 + Math.floor(r() * 3);
    const per = Math.ceil(specs.length / parts);
    for (let i = 0; i < parts; i++) {
      const part = specs.slice(i * per, (i + 1) * per);
      if (part.length === 0) continue;
      const at = Math.floor(start / 500) * 500 + i * 2500;
      (byTime.get(at) ?? byTime.set(at, []).get(at)!).push(part);
    }
  }
  const out: Array<[number, Span[]]> = [];
  for (const at of [...byTime.keys()].sort((a, b) => a - b)) {
    const svc = at % 1000 === 0 ? 'checkout' : 'payments';
    for (const part of byTime.get(at)!) out.push([at, makeSpans(part, { 'service.name': svc, 'host.name': 'pod-1' })]);
  }
  return out;
}

/** Feeds the fixture through a processor, ticking every 500 ms of fake time, until everything is decided. */
async function run(h: H, clock: FakeClock, batches: Array<[number, Span[]]>, t0: number): Promise<void> {
  let i = 0;
  for (let t = 0; t <= 60_000; t += 500) {
    clock.t = t0 + t;
    while (i < batches.length && batches[i][0] <= t) await h.p.consume(batches[i++][1]);
    await h.p.tick();
  }
}

/** Per kept trace: the sorted hex of its exported spans' bytes. */
function exported(sink: SinkConsumer): Map<string, string[]> {
  const m = new Map<string, string[]>();
  for (const s of sink.spans) {
    const b = Buffer.from(s.buf.subarray(s.off, s.off + s.len)).toString('hex');
    (m.get(s.traceId) ?? m.set(s.traceId, []).get(s.traceId)!).push(b + '|' + Buffer.from(s.scope.header).toString('hex') + '|' + Buffer.from(s.scope.resource.header).toString('hex'));
  }
  for (const v of m.values()) v.sort();
  return m;
}

describe('tail_sampling disk spill', () => {
  it('decides and exports byte for byte the same whether traces were spilled or not', async () => {
    const t0 = 1_700_000_000_000;
    const clockA = new FakeClock(t0);
    const clockB = new FakeClock(t0);
    const a = make(clockA, { buffer: { max_bytes: 40_000, disk: { directory: dir() } } });
    const b = make(clockB, { buffer: { max_bytes: 1 << 30 } });
    await a.p.start();
    await b.p.start();
    await run(a, clockA, fixture(7, 600), t0);
    await run(b, clockB, fixture(7, 600), t0);

    // The small budget really spilled, read back, and split traces between disk and memory.
    expect(await a.tel.total('otelcol_processor_tail_sampling_spilled_traces_total')).toBeGreaterThan(300);
    expect(await a.tel.total('otelcol_processor_tail_sampling_read_back_traces_total')).toBeGreaterThan(300);
    expect(await a.tel.total('otelcol_processor_tail_sampling_traces_decided_early_total')).toBe(0);
    expect(await b.tel.total('otelcol_processor_tail_sampling_traces_decided_early_total')).toBe(0);
    expect(await a.tel.total('otelcol_processor_tail_sampling_sampling_traces_on_disk')).toBe(0);
    expect(a.p.pendingTraces).toBe(0);

    const ea = exported(a.sink);
    const eb = exported(b.sink);
    expect(eb.size).toBeGreaterThan(100);
    expect([...ea.keys()].sort()).toEqual([...eb.keys()].sort());
    for (const [id, spans] of eb) expect(ea.get(id), id).toEqual(spans);
    expect(await a.tel.droppedByReason()).toEqual(await b.tel.droppedByReason());
    for (const d of ['sampled', 'not_sampled']) {
      expect(await a.tel.total('otelcol_processor_tail_sampling_global_count_traces_sampled_total', { decision: d })).toBe(
        await b.tel.total('otelcol_processor_tail_sampling_global_count_traces_sampled_total', { decision: d }),
      );
    }
    // Decision latency: same distribution (timing preserved across the spill).
    const la = await a.tel.registry.getSingleMetric('otelcol_processor_tail_sampling_sampling_decision_latency_seconds')!.get();
    const lb = await b.tel.registry.getSingleMetric('otelcol_processor_tail_sampling_sampling_decision_latency_seconds')!.get();
    expect(la.values).toEqual(lb.values);
  });

  it('graceful shutdown writes pending traces to disk; the next start decides them on their original schedule', async () => {
    const t0 = 1_700_000_000_000;
    const d = dir();
    const batches = fixture(11, 200);
    // Reference: one processor, no restart.
    const refClock = new FakeClock(t0);
    const r = make(refClock, { buffer: { max_bytes: 1 << 30 } });
    await r.p.start();
    await run(r, refClock, fixture(11, 200), t0); // its own copy: kept spans are stamped in place

    // A: receives everything up to 9 s, then SIGTERM.
    const clockA = new FakeClock(t0);
    const a = make(clockA, { buffer: { max_bytes: 1 << 30, disk: { directory: d } } });
    await a.p.start();
    let i = 0;
    for (let t = 0; t <= 9_000; t += 500) {
      clockA.t = t0 + t;
      while (i < batches.length && batches[i][0] <= t) await a.p.consume(batches[i++][1]);
      await a.p.tick();
    }
    const decidedBeforeStop = a.sink.spanCount;
    const pendingAtStop = a.p.pendingTraces;
    expect(pendingAtStop).toBeGreaterThan(30);
    await a.p.shutdown();
    expect(a.sink.spanCount).toBe(decidedBeforeStop); // nothing decided on partial data at shutdown
    expect((await a.tel.droppedByReason()).shutdown).toBeUndefined();
    expect(await a.tel.total('otelcol_processor_tail_sampling_sampling_traces_on_disk')).toBe(pendingAtStop);

    // B: same directory, starts at the next tick (restart within one tick) and gets the rest of the data.
    const clockB = new FakeClock(t0 + 9_500);
    // restore_grace 0: restored traces keep their original schedule (the grace is tested below).
    const b = make(clockB, { buffer: { max_bytes: 1 << 30, disk: { directory: d, restore_grace: 0 } } });
    await b.p.start();
    expect(await b.tel.total('otelcol_processor_tail_sampling_sampling_traces_on_disk')).toBe(pendingAtStop);
    for (let t = 9_500; t <= 60_000; t += 500) {
      clockB.t = t0 + t;
      while (i < batches.length && batches[i][0] <= t) await b.p.consume(batches[i++][1]);
      await b.p.tick();
    }
    // Together A and B kept exactly what the uninterrupted processor kept, byte for byte.
    const both = new SinkConsumer();
    both.batches.push(...a.sink.batches, ...b.sink.batches);
    const got = exported(both);
    const want = exported(r.sink);
    expect([...got.keys()].sort()).toEqual([...want.keys()].sort());
    for (const [id, spans] of want) expect(got.get(id), id).toEqual(spans);
    // and with the original timing: the decision latencies (first span -> decision) match.
    const lat = async (t: Telemetry) =>
      (await t.registry.getSingleMetric('otelcol_processor_tail_sampling_sampling_decision_latency_seconds')!.get()).values.filter((v) => v.metricName?.endsWith('_sum'));
    const sumOf = async (t: Telemetry) => (await lat(t)).reduce((s, v) => s + v.value, 0);
    expect((await sumOf(a.tel)) + (await sumOf(b.tel))).toBeCloseTo(await sumOf(r.tel), 6);
  });

  it('after a restart, traces read back from disk wait restore_grace, so spans the senders re-send join them', async () => {
    const t0 = 1_700_000_000_000;
    const d = dir();
    const a = make(new FakeClock(t0), { buffer: { disk: { directory: d } } });
    await a.p.start();
    const id = 'ab'.repeat(16);
    // The part that reached this instance before it stopped: no error in it.
    await a.p.consume(makeSpans([{ traceId: id, spanId: 'cd'.repeat(8), parentSpanId: 'ef'.repeat(8) }]));
    await a.p.shutdown();
    // Down for a minute: the trace's wait (10 s) passed meanwhile.
    const clockB = new FakeClock(t0 + 60_000);
    const errorsOnly = { policies: [POLICIES[0]], decision_cache: { sampled_cache_size: 100, non_sampled_cache_size: 100 } };
    const b = make(clockB, { ...errorsOnly, buffer: { disk: { directory: d, restore_grace: '5s' } } });
    await b.p.start();
    await b.p.tick();
    expect(b.sink.spanCount).toBe(0); // not decided on the first tick
    // A sender's retry delivers the rest of the trace, with the error span, 1 s after the start.
    clockB.t = t0 + 61_000;
    await b.p.consume(makeSpans([{ traceId: id, spanId: '12'.repeat(8), parentSpanId: 'ef'.repeat(8), status: 2 }]));
    for (const at of [62_000, 64_900]) {
      clockB.t = t0 + at;
      await b.p.tick();
      expect(b.sink.spanCount).toBe(0);
    }
    clockB.t = t0 + 65_000;
    await b.p.tick();
    // One decision, the whole trace, kept for its error; nothing dropped as late.
    expect(b.sink.spans.map((s) => s.traceId)).toEqual([id, id]);
    expect(await b.tel.droppedByReason()).toEqual({});
    // Without the grace the first tick decides the restored part alone (not sampled), and the
    // error span that follows is dropped as late: what the grace prevents.
    const d2 = dir();
    const a2 = make(new FakeClock(t0), { buffer: { disk: { directory: d2 } } }, new Telemetry(), 'tail_sampling/2');
    await a2.p.start();
    await a2.p.consume(makeSpans([{ traceId: id, spanId: 'cd'.repeat(8), parentSpanId: 'ef'.repeat(8) }]));
    await a2.p.shutdown();
    const clockC = new FakeClock(t0 + 60_000);
    const c = make(clockC, { ...errorsOnly, buffer: { disk: { directory: d2, restore_grace: 0 } } }, new Telemetry(), 'tail_sampling/2');
    await c.p.start();
    await c.p.tick();
    clockC.t = t0 + 61_000;
    await c.p.consume(makeSpans([{ traceId: id, spanId: '12'.repeat(8), parentSpanId: 'ef'.repeat(8), status: 2 }]));
    await c.p.tick();
    expect(c.sink.spanCount).toBe(0);
    expect(await c.tel.droppedByReason()).toEqual({ sampled_out: 1, late_not_sampled: 1 });
  });

  it('disk full (ENOSPC): stops spilling, decides early (counted), and spills again once space returns', async () => {
    const t0 = 1_700_000_000_000;
    const clock = new FakeClock(t0);
    const h = make(clock, { buffer: { max_bytes: 30_000, disk: { directory: dir() } } });
    await h.p.start();
    const spill = (h.p as unknown as { disk: { spill: { sdb: { faultHook: (() => Error | undefined) | undefined } } } }).disk.spill;
    spill.sdb.faultHook = () => new InjectedFault('SQLITE_FULL');
    const batches = fixture(3, 200);
    for (const [, s] of batches.slice(0, 60)) await h.p.consume(s);
    const early = await h.tel.total('otelcol_processor_tail_sampling_traces_decided_early_total', { reason: 'buffer_full' });
    expect(early).toBeGreaterThan(0);
    expect(await h.tel.total('otelcol_processor_tail_sampling_spill_errors_total', { kind: 'enospc' })).toBeGreaterThan(0);
    expect(await h.tel.total('otelcol_processor_tail_sampling_spilled_traces_total')).toBe(0);
    // Space comes back; after the pause spilling resumes and early decisions stop.
    spill.sdb.faultHook = undefined;
    clock.advance(2_000);
    for (const [, s] of batches.slice(60, 120)) await h.p.consume(s);
    expect(await h.tel.total('otelcol_processor_tail_sampling_spilled_traces_total')).toBeGreaterThan(0);
    expect(await h.tel.total('otelcol_processor_tail_sampling_traces_decided_early_total', { reason: 'buffer_full' })).toBe(early);
  });

  it('memory and disk both full with when_full: refuse: refuses with a retryable error (counted), accepts again once decisions make room', async () => {
    const t0 = 1_700_000_000_000;
    const clock = new FakeClock(t0);
    const h = make(clock, { buffer: { max_bytes: 20_000, when_full: 'refuse', disk: { directory: dir(), max_bytes: 20_000 } } });
    await h.p.start();
    const batches = fixture(5, 300);
    let accepted = 0;
    let refused = 0;
    let firstRefusal: unknown;
    for (const [, s] of batches) {
      try {
        await h.p.consume(s);
        accepted += s.length;
      } catch (err) {
        firstRefusal ??= err;
        refused += s.length;
      }
    }
    expect(firstRefusal).toBeInstanceOf(RetryableError);
    expect(refused).toBeGreaterThan(0);
    expect(await h.tel.total('otelcol_processor_tail_sampling_refused_spans_total')).toBe(refused);
    expect(await h.tel.total('otelcol_processor_tail_sampling_traces_decided_early_total')).toBe(0);
    expect(await h.tel.total('otelcol_processor_tail_sampling_spill_errors_total', { kind: 'max_bytes' })).toBeGreaterThan(0);
    // Every accepted span is decided in the end: forwarded or counted.
    clock.advance(30_000);
    await h.p.tick();
    const dropped = Object.values(await h.tel.droppedByReason()).reduce((a, b) => a + b, 0);
    expect(h.sink.spanCount + dropped).toBe(accepted);
    await expect(h.p.consume(batches[0][1])).resolves.toBeUndefined();
  });

  it('a directory that cannot be used is a clear error at start', async () => {
    const file = path.join(dir(), 'not-a-dir');
    fs.writeFileSync(file, 'x');
    const h = make(new FakeClock(), { buffer: { disk: { directory: file } } });
    const err = await h.p.start().then(() => undefined, (e: unknown) => e);
    expect(err).toBeInstanceOf(StorageError);
    expect((err as StorageError).code).toBe('ERR_STORAGE_DIR');
    expect((err as Error).message).toContain(file);
  });

  it.runIf(canMountTmpfs())('a read-only directory is a clear error at start', async () => {
    const ro = mountTmpfs('1m', true)!;
    try {
      const h = make(new FakeClock(), { buffer: { disk: { directory: ro } } });
      await expect(h.p.start()).rejects.toThrow(/not writable/);
    } finally {
      unmount(ro);
    }
  });

  it('a corrupt spill file is moved aside and the processor starts with a fresh one', async () => {
    const d = dir();
    fs.writeFileSync(path.join(d, 'spill-tail_sampling.sqlite'), Buffer.alloc(8192, 0x5a));
    const clock = new FakeClock();
    const h = make(clock, { buffer: { max_bytes: 5_000, disk: { directory: d } } });
    await h.p.start();
    expect(await h.tel.total('sidecar_storage_corrupt_files_total')).toBe(1);
    expect(fs.readdirSync(d).some((f) => f.startsWith('spill-tail_sampling.sqlite.corrupt-'))).toBe(true);
    for (const [, s] of fixture(9, 50)) await h.p.consume(s);
    expect(await h.tel.total('otelcol_processor_tail_sampling_spilled_traces_total')).toBeGreaterThan(0);
  });

  it('spilled spans that cannot be read back are counted as storage_error drops', async () => {
    const d = dir();
    const clock = new FakeClock();
    const h = make(clock, { buffer: { max_bytes: 1, disk: { directory: d } }, policies: [{ name: 'all', type: 'always_sample' }] });
    await h.p.start();
    await h.p.consume(makeSpans([{ traceId: 'ef'.repeat(16), spanId: '01'.repeat(8) }, { traceId: 'ef'.repeat(16), spanId: '02'.repeat(8) }]));
    expect(await h.tel.total('otelcol_processor_tail_sampling_sampling_spans_on_disk')).toBe(2);
    const spill = (h.p as unknown as { disk: { spill: { sdb: { db: { exec(sql: string): void } } } } }).disk.spill;
    spill.sdb.db.exec("UPDATE bodies SET body = x'07'");
    clock.advance(30_000);
    await h.p.tick();
    expect(h.sink.spanCount).toBe(0);
    expect(await h.tel.droppedByReason()).toEqual({ storage_error: 2 });
  });

  it('on a reload the new processor takes the spill file over when the old one releases it', async () => {
    const d = dir();
    const clock = new FakeClock();
    const tel = new Telemetry();
    const old = make(clock, { buffer: { disk: { directory: d } }, policies: [{ name: 'all', type: 'always_sample' }] }, tel);
    await old.p.start();
    await old.p.consume(makeSpans([{ traceId: '12'.repeat(16), spanId: '01'.repeat(8) }]));
    const fresh = make(clock, { buffer: { disk: { directory: d } }, policies: [{ name: 'all', type: 'always_sample' }] }, tel);
    await fresh.p.start(); // the file is held: memory-only for now
    await fresh.p.consume(makeSpans([{ traceId: '34'.repeat(16), spanId: '02'.repeat(8) }]));
    await old.p.shutdown(); // writes its pending trace to disk and releases the file
    expect(old.sink.spanCount).toBe(0);
    await fresh.p.tick(); // adopts the file
    clock.advance(30_000);
    await fresh.p.tick();
    expect(new Set(fresh.sink.spans.map((s) => s.traceId))).toEqual(new Set(['12'.repeat(16), '34'.repeat(16)]));
  });

  it('without disk the buffer behaves as before (decide early when full)', async () => {
    const h = make(new FakeClock(), { buffer: { max_bytes: 20_000 } });
    await h.p.start();
    for (const [, s] of fixture(2, 100)) await h.p.consume(s);
    expect(await h.tel.total('otelcol_processor_tail_sampling_traces_decided_early_total', { reason: 'buffer_full' })).toBeGreaterThan(0);
    expect(await h.tel.total('otelcol_processor_tail_sampling_spilled_traces_total')).toBe(0);
  });
});
