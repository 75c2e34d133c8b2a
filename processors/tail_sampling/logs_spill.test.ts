/**
 * Log records held with their trace and the disk spill (`buffer.disk`): they
 * move to the spill file with their trace (in the same memory and disk
 * budgets), are read back with it at its decision, and survive a graceful
 * restart: the kept traces' records arrive once, the dropped traces' never.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { withDefaults } from '../../config/defaults.js';
import { FakeClock, SinkConsumer } from '../../collector/consumertest.js';
import { Telemetry } from '../../collector/telemetry/metrics.js';
import { silentLogger } from '../../collector/telemetry/logger.js';
import { tempDir, removeDir } from '../../storage/testdata/helpers.js';
import { TailSamplingConfigSchema } from './config.js';
import { TailSamplingProcessor } from './processor.js';
import { tailSamplingProcessorFactory } from './index.js';
import { LogSink, attrs, bodies, logs, spans, tid } from './testdata/logs.js';

const ERRORS = { name: 'errors', type: 'status_code', status_code: { status_codes: ['ERROR'] } };
const P = 'otelcol_processor_tail_sampling_';
const T0 = 1_700_000_000_000;

const live: TailSamplingProcessor[] = [];
const dirs: string[] = [];
afterEach(async () => {
  for (const p of live.splice(0)) await p.shutdown();
  for (const d of dirs.splice(0)) removeDir(d);
});

function make(clock: FakeClock, cfg: Record<string, unknown>) {
  const tel = new Telemetry();
  const logSink = new LogSink();
  const config = withDefaults(TailSamplingConfigSchema, { policies: [ERRORS], decision_wait: '10s', ...cfg });
  const p = tailSamplingProcessorFactory.create({ id: 'tail_sampling', logger: silentLogger(), telemetry: tel, clock }, config, new SinkConsumer()) as TailSamplingProcessor;
  p.attachLogs(logSink);
  live.push(p);
  return { p, tel, logSink };
}

const logDrops = (tel: Telemetry, reason: string) => tel.total('sidecar_log_records_dropped_total', { reason });

describe('tail_sampling: log records in the disk spill', () => {
  it('spilled traces keep their logs through a restart', async () => {
    const d = tempDir('ts-logspill-');
    dirs.push(d);
    const clockA = new FakeClock(T0);
    // A small memory budget: most traces and their records move to disk while they arrive.
    const a = make(clockA, { buffer: { max_bytes: 16384, disk: { directory: d } } });
    await a.p.start();
    const ids = Array.from({ length: 40 }, () => tid());
    const kept = ids.filter((_, i) => i % 2 === 0);
    for (let i = 0; i < ids.length; i++) {
      await a.p.consume(spans(ids[i], i % 2 === 0 ? 2 : 0));
      await a.p.consumeLogs(logs([{ traceId: ids[i], body: `${ids[i]}-a` }, { traceId: ids[i], body: `${ids[i]}-b` }]));
    }
    // Records arriving for traces already on disk, and a trace of log records only.
    await a.p.consumeLogs(logs(ids.map((id) => ({ traceId: id, body: `${id}-c` }))));
    const logsOnly = tid();
    await a.p.consumeLogs(logs([{ traceId: logsOnly, body: `${logsOnly}-a` }]));
    expect(await a.tel.total(P + 'spilled_log_records_total')).toBeGreaterThan(40);
    expect(await a.tel.total(P + 'sampling_bytes_on_memory')).toBeLessThanOrEqual(16384);
    clockA.t = T0 + 1_000;
    await a.p.tick();
    await a.p.shutdown();
    // Nothing was decided on partial data, and no record was dropped: they are all in the spill file.
    expect(a.logSink.records).toHaveLength(0);
    expect(await a.tel.total('sidecar_log_records_dropped_total')).toBe(0);
    expect(await a.tel.total('sidecar_spans_dropped_total')).toBe(0);

    // B: the next start, with the senders' re-sent records arriving during the restore grace.
    const clockB = new FakeClock(T0 + 2_000);
    const b = make(clockB, { buffer: { max_bytes: 16384, disk: { directory: d, restore_grace: '2s' } } });
    await b.p.start();
    expect(await b.tel.total(P + 'sampling_traces_on_disk')).toBe(41);
    await b.p.consumeLogs(logs(ids.map((id) => ({ traceId: id, body: `${id}-d` }))));
    clockB.t = T0 + 12_000;
    await b.p.tick();
    expect(b.p.pendingTraces).toBe(0);
    // Exactly the records of kept traces, each once, stamped like their spans; none of the dropped ones.
    const want = kept.flatMap((id) => ['a', 'b', 'c', 'd'].map((k) => `${id}-${k}`)).sort();
    expect(bodies(b.logSink)).toEqual(want);
    for (const r of b.logSink.records) expect(attrs(r)).toMatchObject({ 'tailsampling.policy': 'errors' });
    expect(await logDrops(b.tel, 'sampled_out')).toBe((ids.length - kept.length) * 4 + 1);
    expect(await logDrops(b.tel, 'storage_error')).toBe(0);
    expect(await b.tel.total(P + 'read_back_log_records_total')).toBe(await a.tel.total(P + 'spilled_log_records_total'));
  });

  it('held log records count in the memory budget: over it they move to disk with their trace instead of forcing early decisions', async () => {
    const d = tempDir('ts-logspill-');
    dirs.push(d);
    const clock = new FakeClock(T0);
    const maxBytes = 4096;
    const { p, tel, logSink } = make(clock, { policies: [{ name: 'all', type: 'always_sample' }], buffer: { max_bytes: maxBytes, disk: { directory: d } } });
    await p.start();
    const ids = Array.from({ length: 30 }, () => tid());
    const body = (id: string, k: string) => `${id}-${k}-` + 'x'.repeat(300);
    for (const id of ids) await p.consumeLogs(logs([{ traceId: id, body: body(id, 'a') }]));
    // Records for traces that are now on disk only: they fill memory and follow their traces to disk.
    for (const id of ids) await p.consumeLogs(logs([{ traceId: id, body: body(id, 'b') }]));
    expect(logSink.records).toHaveLength(0); // nothing decided early
    expect(await tel.total(P + 'traces_decided_early_total')).toBe(0);
    expect(await tel.total(P + 'sampling_bytes_on_memory')).toBeLessThanOrEqual(maxBytes);
    const spilled = await tel.total(P + 'spilled_log_records_total');
    expect(spilled).toBeGreaterThan(40);
    // The disk holds their bytes (the same budget as spans).
    expect(await tel.total(P + 'sampling_bytes_on_disk')).toBeGreaterThan(spilled * 300);
    clock.t = T0 + 10_000;
    await p.tick();
    expect(bodies(logSink)).toEqual(ids.flatMap((id) => [body(id, 'a'), body(id, 'b')]).sort());
    expect(await tel.total(P + 'sampling_bytes_on_memory')).toBe(0);
    expect(await tel.total(P + 'sampling_bytes_on_disk')).toBe(0);
  });
});
