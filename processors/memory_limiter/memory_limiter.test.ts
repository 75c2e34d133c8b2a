import { describe, it, expect, beforeEach } from 'vitest';
import { fileURLToPath } from 'node:url';
import path from 'node:path';
import { Writable } from 'node:stream';
import { pino } from 'pino';
import { memoryLimiterOptions, memoryLimiterProcessorFactory, parseCgroupMemoryValue, readCgroupMemoryLimit, resolveMemoryLimits, memoryTotal, heapSizeForLimit } from './index.js';
import { MemoryLimiter, MEMORY_HARD, MEMORY_OK, MEMORY_SOFT } from './limiter.js';
import { MemoryLimiterConfigSchema, validateMemoryLimiterConfig } from './config.js';
import { readFileSync } from 'node:fs';
import { parse as parseYaml } from 'yaml';
import { withDefaults } from '../../config/defaults.js';
import { FakeClock, SinkConsumer } from '../../collector/consumertest.js';
import { Telemetry } from '../../collector/telemetry/metrics.js';
import { silentLogger } from '../../collector/telemetry/logger.js';
import { CollectorError, MemoryLimitError, RetryableError } from '../../collector/errors.js';
import { processorFactories } from '../../collector/components.js';
import { makeSpans, spanIdHex, traceIdHex } from '../../test/otlp.js';

const MIB = 1024 * 1024;
const testdata = path.join(path.dirname(fileURLToPath(import.meta.url)), 'testdata');
const td = (p: string) => path.join(testdata, p);

function spans(n: number) {
  const specs = [];
  for (let i = 0; i < n; i++) specs.push({ traceId: traceIdHex(), spanId: spanIdHex() });
  return makeSpans(specs);
}

let telemetry: Telemetry;
let clock: FakeClock;
let memory: number;

beforeEach(() => {
  telemetry = new Telemetry();
  clock = new FakeClock();
  memory = 0;
});

function limiter(cfg: Record<string, unknown>, next = new SinkConsumer(), extra: { gc?: (() => void) | null; logger?: pino.Logger } = {}) {
  const config = withDefaults(MemoryLimiterConfigSchema, cfg);
  expect(validateMemoryLimiterConfig(config)).toEqual([]);
  return new MemoryLimiter('memory_limiter', memoryLimiterOptions(config), next, {
    telemetry,
    logger: extra.logger ?? silentLogger(),
    clock,
    readMemory: () => memory,
    gc: extra.gc === undefined ? null : extra.gc,
  });
}

async function outcome(p: Promise<void>): Promise<unknown> {
  try {
    await p;
    return 'ok';
  } catch (e) {
    return e;
  }
}

describe('memory_limiter: refusing and accepting', () => {
  it('refuses above the soft limit with a retryable MemoryLimitError and accepts again below it', async () => {
    const sink = new SinkConsumer();
    // hard 100 MiB, spike 20 -> soft 80 MiB
    const ml = limiter({ limit_mib: 100, spike_limit_mib: 20, check_interval: '1s' }, sink);
    expect(ml.limits).toMatchObject({ hardBytes: 100 * MIB, softBytes: 80 * MIB });

    memory = 50 * MIB;
    expect(ml.check()).toBe(MEMORY_OK);
    expect(await outcome(ml.consume(spans(3)))).toBe('ok');
    expect(sink.spanCount).toBe(3);

    memory = 80 * MIB; // at the soft limit
    expect(ml.check()).toBe(MEMORY_SOFT);
    const err = await outcome(ml.consume(spans(4)));
    expect(err).toBeInstanceOf(MemoryLimitError);
    expect((err as CollectorError).retryable).toBe(true);
    expect((err as CollectorError).code).toBe('ERR_MEMORY_LIMIT');
    expect((err as CollectorError).retryAfterMs).toBe(2000); // two check intervals
    expect(sink.spanCount).toBe(3); // nothing passed on

    memory = 79 * MIB;
    expect(ml.check()).toBe(MEMORY_OK);
    expect(await outcome(ml.consume(spans(2)))).toBe('ok');
    expect(sink.spanCount).toBe(5);

    expect(await telemetry.total('otelcol_processor_refused_spans_total', { reason: 'memory_soft_limit' })).toBe(4);
    expect(await telemetry.total('sidecar_processor_memory_limiter_usage_bytes')).toBe(79 * MIB);
    expect(await telemetry.total('sidecar_processor_memory_limiter_soft_limit_bytes')).toBe(80 * MIB);
    expect(await telemetry.total('sidecar_processor_memory_limiter_hard_limit_bytes')).toBe(100 * MIB);
  });

  it('above the hard limit refuses and warns, at most once per 10 s', async () => {
    const lines: string[] = [];
    const logger = pino(
      { level: 'info' },
      new Writable({
        write(chunk, _enc, cb) {
          lines.push(String(chunk));
          cb();
        },
      }),
    );
    const ml = limiter({ limit_mib: 100 }, new SinkConsumer(), { logger });
    memory = 120 * MIB;
    expect(ml.check()).toBe(MEMORY_HARD);
    const err = await outcome(ml.consume(spans(2)));
    expect(err).toBeInstanceOf(MemoryLimitError);
    expect(await telemetry.total('otelcol_processor_refused_spans_total', { reason: 'memory_hard_limit' })).toBe(2);
    clock.advance(1000);
    ml.check();
    clock.advance(1000);
    ml.check();
    await new Promise((r) => setImmediate(r));
    const warnings = () => lines.filter((l) => l.includes('above the hard limit')).length;
    expect(warnings()).toBe(1);
    clock.advance(10_000);
    ml.check();
    await new Promise((r) => setImmediate(r));
    expect(warnings()).toBe(2);
  });

  it('requests a GC above the soft limit and decides on the reading after it', () => {
    let gcs = 0;
    const ml = limiter({ limit_mib: 100, min_gc_interval_when_soft_limited: '10s' }, new SinkConsumer(), {
      gc: () => {
        gcs++;
        memory = 60 * MIB; // the collection freed enough
      },
    });
    memory = 85 * MIB; // soft is 80 MiB (default spike 20%)
    expect(ml.check()).toBe(MEMORY_OK);
    expect(gcs).toBe(1);
    memory = 85 * MIB;
    clock.advance(5000);
    expect(ml.check()).toBe(MEMORY_SOFT); // no GC within min_gc_interval_when_soft_limited
    expect(gcs).toBe(1);
    clock.advance(5000);
    expect(ml.check()).toBe(MEMORY_OK);
    expect(gcs).toBe(2);
  });

  it('passes downstream errors through while accepting', async () => {
    const downstreamErr = new RetryableError('queue full', 100, 'ERR_QUEUE_FULL');
    const ml = limiter({ limit_mib: 100 }, {
      consume: () => Promise.reject(downstreamErr),
    } as unknown as SinkConsumer);
    ml.check();
    expect(await outcome(ml.consume(spans(1)))).toBe(downstreamErr);
  });

  it('the factory is registered; start measures at once and shutdown is idempotent', async () => {
    expect(processorFactories).toContain(memoryLimiterProcessorFactory);
    const p = memoryLimiterProcessorFactory.create(
      { id: 'memory_limiter/x', logger: silentLogger(), telemetry, clock },
      withDefaults(MemoryLimiterConfigSchema, { limit_mib: 1 }), // 1 MiB: real RSS is far above it
      new SinkConsumer(),
    ) as MemoryLimiter;
    await p.start();
    expect(p.state).toBe(MEMORY_HARD);
    expect(await outcome(p.consume(spans(1)))).toBeInstanceOf(MemoryLimitError);
    await p.shutdown();
    await p.shutdown();
  });
});

describe('memory_limiter: config', () => {
  const problems = (cfg: Record<string, unknown>) => validateMemoryLimiterConfig(withDefaults(MemoryLimiterConfigSchema, cfg));

  it('fills the documented defaults', () => {
    expect(withDefaults(MemoryLimiterConfigSchema, { limit_mib: 200 })).toEqual({
      limit_mib: 200,
      check_interval: '1s',
      min_gc_interval_when_soft_limited: '10s',
      min_gc_interval_when_hard_limited: '0s',
    });
  });

  it('accepts the configs in testdata/config.yaml', () => {
    const doc = parseYaml(readFileSync(td('config.yaml'), 'utf8')) as Record<string, unknown>;
    const mib = withDefaults(MemoryLimiterConfigSchema, doc['memory_limiter/mib']);
    const pct = withDefaults(MemoryLimiterConfigSchema, doc['memory_limiter/percentage']);
    expect(validateMemoryLimiterConfig(mib)).toEqual([]);
    expect(validateMemoryLimiterConfig(pct)).toEqual([]);
    expect(memoryLimiterOptions(mib)).toEqual({
      limits: { hardBytes: 200 * MIB, softBytes: 160 * MIB, source: 'limit_mib' },
      checkIntervalMs: 500,
      minGcIntervalSoftMs: 10_000,
      minGcIntervalHardMs: 0,
    });
    expect(memoryLimiterOptions(pct).minGcIntervalSoftMs).toBe(5000);
  });

  it('needs exactly one of limit_mib and limit_percentage', () => {
    expect(problems({}).map((p) => p.path)).toEqual([['limit_mib']]);
    expect(problems({ limit_mib: 0 }).map((p) => p.path)).toEqual([['limit_mib']]);
    expect(problems({ limit_mib: 100, limit_percentage: 80 }).map((p) => p.path)).toEqual([['limit_percentage']]);
    expect(problems({ limit_mib: 100 })).toEqual([]);
    expect(problems({ limit_percentage: 80, spike_limit_percentage: 20 })).toEqual([]);
  });

  it('a spike at or above the limit is an error naming the key', () => {
    const a = problems({ limit_mib: 100, spike_limit_mib: 100 });
    expect(a.map((p) => p.path)).toEqual([['spike_limit_mib']]);
    expect(a[0].message).toMatch(/spike_limit_mib \(100\) must be smaller than limit_mib \(100\)/);
    const b = problems({ limit_percentage: 50, spike_limit_percentage: 60 });
    expect(b.map((p) => p.path)).toEqual([['spike_limit_percentage']]);
    expect(b[0].message).toMatch(/spike_limit_percentage/);
  });

  it('does not mix MiB and percentage keys', () => {
    expect(problems({ limit_mib: 100, spike_limit_percentage: 10 }).map((p) => p.path)).toEqual([['spike_limit_percentage']]);
    expect(problems({ limit_percentage: 80, spike_limit_mib: 10 }).map((p) => p.path)).toEqual([['spike_limit_mib']]);
  });

  it('check_interval must be greater than 0', () => {
    expect(problems({ limit_mib: 100, check_interval: '0s' }).map((p) => p.path)).toEqual([['check_interval']]);
  });

  it('the schema bounds percentages', async () => {
    const { Value } = await import('@sinclair/typebox/value');
    expect(Value.Check(MemoryLimiterConfigSchema, withDefaults(MemoryLimiterConfigSchema, { limit_percentage: 101 }))).toBe(false);
    expect(Value.Check(MemoryLimiterConfigSchema, withDefaults(MemoryLimiterConfigSchema, { limit_percentage: 75 }))).toBe(true);
    expect(Value.Check(MemoryLimiterConfigSchema, withDefaults(MemoryLimiterConfigSchema, { limit_mib: 1, nope: 1 }))).toBe(false);
  });

  it('resolves limits: MiB with the default 20% spike, percentages of the container limit', () => {
    const cfg = (c: Record<string, unknown>) => withDefaults(MemoryLimiterConfigSchema, c);
    expect(resolveMemoryLimits(cfg({ limit_mib: 500 }))).toEqual({ hardBytes: 500 * MIB, softBytes: 400 * MIB, source: 'limit_mib' });
    const env = { root: td('cgroup2'), procSelfCgroup: td('proc-self-cgroup-root'), systemBytes: 16 * 1024 * MIB };
    // 256 MiB container: 80% hard = 204.8 MiB, spike 20% of the total = 51.2 MiB.
    expect(resolveMemoryLimits(cfg({ limit_percentage: 80, spike_limit_percentage: 20 }), env)).toEqual({
      hardBytes: Math.floor(256 * MIB * 0.8),
      softBytes: Math.floor(256 * MIB * 0.8) - Math.floor(256 * MIB * 0.2),
      source: 'cgroup2',
    });
    // Default spike: 20% of the hard limit.
    const d = resolveMemoryLimits(cfg({ limit_percentage: 50 }), env);
    expect(d.hardBytes).toBe(128 * MIB);
    expect(d.softBytes).toBeCloseTo(128 * MIB * 0.8, 0);
    // No container limit: percentage of system memory.
    const s = resolveMemoryLimits(cfg({ limit_percentage: 50 }), { ...env, root: td('cgroup2-unlimited') });
    expect(s).toMatchObject({ hardBytes: 8 * 1024 * MIB, source: 'system' });
  });
});

describe('memory_limiter: cgroup', () => {
  const none = td('proc-self-cgroup-root');

  it('parses memory.max / memory.limit_in_bytes values', () => {
    expect(parseCgroupMemoryValue('268435456\n')).toBe(268435456);
    expect(parseCgroupMemoryValue('max\n')).toBeUndefined();
    expect(parseCgroupMemoryValue('9223372036854771712')).toBeUndefined(); // v1 "unlimited"
    expect(parseCgroupMemoryValue('')).toBeUndefined();
    expect(parseCgroupMemoryValue('-1')).toBeUndefined();
    expect(parseCgroupMemoryValue('garbage')).toBeUndefined();
  });

  it('reads cgroup v2 memory.max', () => {
    expect(readCgroupMemoryLimit({ root: td('cgroup2'), procSelfCgroup: none })).toMatchObject({ bytes: 256 * MIB, source: 'cgroup2' });
    expect(readCgroupMemoryLimit({ root: td('cgroup2-unlimited'), procSelfCgroup: none })).toMatchObject({ bytes: undefined, source: 'cgroup2' });
    expect(readCgroupMemoryLimit({ root: td('cgroup2-huge'), procSelfCgroup: none }).bytes).toBeUndefined();
  });

  it('reads a nested cgroup v2 group named in /proc/self/cgroup', () => {
    const r = readCgroupMemoryLimit({ root: td('cgroup2-nested'), procSelfCgroup: td('proc-self-cgroup-nested') });
    expect(r).toMatchObject({ bytes: 128 * MIB, source: 'cgroup2' });
    expect(r.file).toContain(path.join('kubepods', 'pod1', 'memory.max'));
  });

  it('a parent group\'s v2 limit binds a nested group without its own', () => {
    const r = readCgroupMemoryLimit({ root: td('cgroup2-nested-parent'), procSelfCgroup: td('proc-self-cgroup-nested') });
    expect(r).toMatchObject({ bytes: 100 * MIB, source: 'cgroup2' });
  });

  it('reads a nested cgroup v1 memory group named in /proc/self/cgroup', () => {
    const r = readCgroupMemoryLimit({ root: td('cgroup1-nested'), procSelfCgroup: td('proc-self-cgroup-v1') });
    expect(r).toMatchObject({ bytes: 300 * MIB, source: 'cgroup1' });
  });

  it('reads cgroup v1 memory.limit_in_bytes, treating the unlimited sentinel as no limit', () => {
    expect(readCgroupMemoryLimit({ root: td('cgroup1'), procSelfCgroup: td('proc-self-cgroup-v1') })).toMatchObject({
      bytes: 512 * MIB,
      source: 'cgroup1',
    });
    expect(readCgroupMemoryLimit({ root: td('cgroup1-unlimited'), procSelfCgroup: none })).toMatchObject({
      bytes: undefined,
      source: 'cgroup1',
    });
  });

  it('falls back to system memory when there is no cgroup, or its limit exceeds physical memory', () => {
    expect(readCgroupMemoryLimit({ root: td('does-not-exist'), procSelfCgroup: none })).toEqual({ bytes: undefined, source: undefined, file: undefined });
    expect(memoryTotal({ root: td('does-not-exist'), procSelfCgroup: none, systemBytes: 1000 * MIB })).toEqual({ bytes: 1000 * MIB, source: 'system' });
    expect(memoryTotal({ root: td('cgroup1'), procSelfCgroup: none, systemBytes: 256 * MIB })).toEqual({ bytes: 256 * MIB, source: 'system' });
    expect(memoryTotal({ root: td('cgroup1'), procSelfCgroup: none, systemBytes: 4096 * MIB })).toEqual({ bytes: 512 * MIB, source: 'cgroup1' });
  });
});

describe('heapSizeForLimit', () => {
  it('gives 75% of the limit minus buffer budgets, in MiB, with a floor', () => {
    expect(heapSizeForLimit(256 * MIB)).toBe(192);
    expect(heapSizeForLimit(256 * MIB, { bufferBytes: 64 * MIB })).toBe(128);
    expect(heapSizeForLimit(1024 * MIB, { fraction: 0.5 })).toBe(512);
    expect(heapSizeForLimit(64 * MIB, { bufferBytes: 60 * MIB })).toBe(64);
    expect(() => heapSizeForLimit(0)).toThrow(RangeError);
  });
});
