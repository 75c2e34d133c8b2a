/**
 * Storage scenario for the tail_sampling disk spill (no network):
 *   node --expose-gc dist/processors/tail_sampling/spill_bench.js [--spans 3000000] [--per-trace 10] [--sync normal|full] [--memory 67108864]
 *     [--trace-calls] [--smaps FILE] [--heap-snapshot FILE]
 *
 * 1. hold: feeds N spans (traces of `per-trace` spans, 100 traces a request)
 *    through consume() with a long decision_wait, so everything stays
 *    pending: memory is capped at `--memory` (64 MiB) and the rest spills to
 *    disk. Reports RSS and heap while holding them, spans/s and MB/s written.
 * 2. decide: ticks once a second of fake time from the first due time until
 *    every trace is decided (as in steady state): read-back spans/s and MB/s.
 * Throughout, `perf_hooks.monitorEventLoopDelay` records the event loop's
 * longest stall (load is offered one request per event-loop turn), and the
 * storage layer reports every SQLite call's duration and, for calls over 10 ms,
 * what they were (`slow_calls`; `--trace-calls` adds WAL sizes and the thread's
 * on-CPU / run-queue time per slow call, at a cost per call). `--smaps FILE`
 * writes /proc/self/smaps at the hold point (where the memory is);
 * `--heap-snapshot FILE` writes a V8 heap snapshot there (after the RSS
 * figures are taken: writing one costs memory).
 * Prints one JSON line.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import v8 from 'node:v8';
import { monitorEventLoopDelay, performance } from 'node:perf_hooks';
import { WireWriter, WIRE_I64, WIRE_VARINT } from '../../collector/pdata/wire.js';
import { scanExportRequest, type Span } from '../../collector/pdata/spans.js';
import { Telemetry } from '../../collector/telemetry/metrics.js';
import { silentLogger } from '../../collector/telemetry/logger.js';
import { withDefaults } from '../../config/defaults.js';
import { TailSamplingConfigSchema } from './config.js';
import { TailSamplingProcessor } from './processor.js';
import type { TraceSpillStore } from '../../storage/spill.js';

function arg(name: string, def: string): string {
  const i = process.argv.indexOf(name);
  return i >= 0 ? process.argv[i + 1] : def;
}
const TOTAL = Number(arg('--spans', '3000000'));
const PER = Number(arg('--per-trace', '10'));
const SYNC = arg('--sync', 'normal') as 'normal' | 'full';
const MEMORY = Number(arg('--memory', String(64 * 1024 * 1024)));
const TRACES_PER_REQ = 100;

/** A KeyValue with a string value as field `fieldNo`. */
function stringAttr(w: WireWriter, fieldNo: number, key: string, value: string): void {
  const kv = w.beginLen(fieldNo);
  w.stringField(1, key);
  const v = w.beginLen(2);
  w.stringField(1, value);
  w.endLen(v);
  w.endLen(kv);
}

/**
 * A request template whose trace ids are patched per copy (offsets found once).
 * Encoded here with the collector's own writer: the OTLP/JSON converter would
 * load protobufjs, ~9 MiB of RSS the collector does not carry (it loads it
 * only for OTLP/JSON input), into the process whose RSS this bench reports.
 */
function template(): { bytes: Uint8Array; offsets: number[] } {
  const w = new WireWriter(TRACES_PER_REQ * PER * 300);
  const rs = w.beginLen(1); // ResourceSpans
  const res = w.beginLen(1); // Resource
  stringAttr(w, 1, 'service.name', 'checkout');
  stringAttr(w, 1, 'k8s.pod.name', 'checkout-7d9f-abcde');
  w.endLen(res);
  const ss = w.beginLen(2); // ScopeSpans
  const scope = w.beginLen(1);
  w.stringField(1, 'bench');
  w.stringField(2, '1');
  w.endLen(scope);
  const hex = (s: string) => Buffer.from(s, 'hex');
  for (let t = 0; t < TRACES_PER_REQ; t++) {
    const traceId = hex('f0e1d2c3' + t.toString(16).padStart(8, '0') + 'a5a5a5a5a5a5a5a5');
    for (let k = 0; k < PER; k++) {
      const start = BigInt(1_700_000_000_000 + k) * 1_000_000n;
      const span = w.beginLen(2);
      w.bytesField(1, traceId);
      w.bytesField(2, hex((t * 64 + k + 1).toString(16).padStart(16, '0')));
      if (k > 0) w.bytesField(4, hex((t * 64 + 1).toString(16).padStart(16, '0')));
      w.stringField(5, k === 0 ? 'GET /checkout' : `SELECT items ${k}`);
      w.tag(6, WIRE_VARINT);
      w.uint32(k === 0 ? 2 : 3);
      w.tag(7, WIRE_I64);
      w.fixed64BigInt(start);
      w.tag(8, WIRE_I64);
      w.fixed64BigInt(start + 5_000_000n);
      stringAttr(w, 9, 'http.route', '/checkout');
      stringAttr(w, 9, 'http.request.method', 'GET');
      stringAttr(w, 9, 'db.system', 'postgresql');
      stringAttr(w, 9, 'db.query.text', 'SELECT * FROM items WHERE cart_id = $1 AND tenant = $2 LIMIT 100');
      const status = w.beginLen(15);
      w.tag(3, WIRE_VARINT);
      w.uint32(k === 0 && t % 50 === 0 ? 2 : 0);
      w.endLen(status);
      w.endLen(span);
    }
  }
  w.endLen(ss);
  w.endLen(rs);
  const bytes = w.finish().slice();
  const marker = Buffer.from('a5a5a5a5a5a5a5a5', 'hex');
  const offsets: number[] = [];
  const b = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.length);
  for (let i = b.indexOf(marker); i >= 0; i = b.indexOf(marker, i + 1)) offsets.push(i);
  return { bytes, offsets };
}

/** CPU seconds of this process's main thread and of all its threads, and of the whole machine (busy, /proc/stat). */
function cpuSnapshot(): { main: number; process: number; machine: number } {
  const out = { main: 0, process: 0, machine: 0 };
  try {
    const hz = 100;
    for (const tid of fs.readdirSync('/proc/self/task')) {
      const st = fs.readFileSync(`/proc/self/task/${tid}/stat`, 'latin1');
      const f = st.slice(st.lastIndexOf(')') + 2).split(' ');
      const s = (Number(f[11]) + Number(f[12])) / hz;
      out.process += s;
      if (Number(tid) === process.pid) out.main = s;
    }
    const cpu = fs.readFileSync('/proc/stat', 'latin1').split('\n')[0].split(/\s+/).slice(1).map(Number);
    out.machine = (cpu[0] + cpu[1] + cpu[2] + cpu[5] + cpu[6] + cpu[7]) / hz;
  } catch {
    /* not Linux */
  }
  return out;
}

/** Cores used over `secs`: main thread, the process's other threads (GC helpers, checkpoint worker), other processes. */
function cpuDelta(a: ReturnType<typeof cpuSnapshot>, b: ReturnType<typeof cpuSnapshot>, secs: number): Record<string, number> {
  const main = b.main - a.main;
  const proc = b.process - a.process;
  return { main: +(main / secs).toFixed(2), other_threads: +((proc - main) / secs).toFixed(2), other_processes: +((b.machine - a.machine - proc) / secs).toFixed(2) };
}

/** RssAnon / RssFile of this process in MiB (Linux; 0 elsewhere). */
function procStatus(): { RssAnon: number; RssFile: number } {
  const out = { RssAnon: 0, RssFile: 0 };
  try {
    for (const line of fs.readFileSync('/proc/self/status', 'utf8').split('\n')) {
      const m = /^(RssAnon|RssFile):\s+(\d+) kB/.exec(line);
      if (m) out[m[1] as 'RssAnon' | 'RssFile'] = Math.round(Number(m[2]) / 1024);
    }
  } catch {
    /* not Linux */
  }
  return out;
}

async function main(): Promise<void> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'spill-bench-'));
  const tpl = template();
  const clock = { t: 1_700_000_000_000, now() { return this.t; } };
  const tel = new Telemetry();
  let forwarded = 0;
  const next = { async consume(s: Span[]) { forwarded += s.length; } };
  const cfg = withDefaults(TailSamplingConfigSchema, {
    decision_wait: '600s',
    num_traces: 10_000_000,
    policies: [
      { name: 'errors', type: 'status_code', status_code: { status_codes: ['ERROR'] } },
      { name: 'some', type: 'probabilistic', probabilistic: { sampling_percentage: 10 } },
    ],
    buffer: { max_bytes: MEMORY, disk: { directory: dir, max_bytes: 16 * 1024 ** 3, sync: SYNC } },
  });
  const p = new TailSamplingProcessor({ id: 'tail_sampling', logger: silentLogger(), telemetry: tel, clock }, cfg, next);
  await p.start();
  // The spill store sits in the processor's DiskSpill (disk_spill.ts).
  const spillStore = (p as unknown as { disk: { spill: TraceSpillStore } }).disk.spill;
  const sdb0 = spillStore.sdb;
  if (process.argv.includes('--trace-calls')) sdb0.traceCalls = true;
  const rss0 = process.memoryUsage().rss;
  const tStart = Math.round(performance.now());
  const h = monitorEventLoopDelay({ resolution: 1 });
  h.enable();
  const reqs = Math.ceil(TOTAL / (TRACES_PER_REQ * PER));
  let seq = 0;
  let spans = 0;
  let bytesIn = 0;
  let peakRss = 0;
  const t0 = process.hrtime.bigint();
  const cpu0 = cpuSnapshot();
  for (let r = 0; r < reqs; r++) {
    const copy = new Uint8Array(tpl.bytes);
    // Each trace gets a fresh id: patch the 8 marker bytes of every span with the trace's sequence number.
    for (let i = 0; i < tpl.offsets.length; i++) {
      const traceIdx = Math.floor(i / PER);
      const id = seq + traceIdx;
      const o = tpl.offsets[i];
      copy[o] = 0xa0;
      copy[o + 1] = (id / 2 ** 32) & 0xff;
      copy[o + 2] = (id >>> 24) & 0xff;
      copy[o + 3] = (id >>> 16) & 0xff;
      copy[o + 4] = (id >>> 8) & 0xff;
      copy[o + 5] = id & 0xff;
    }
    seq += TRACES_PER_REQ;
    const batch = scanExportRequest(copy).spans;
    spans += batch.length;
    bytesIn += copy.length;
    await p.consume(batch);
    if (r % 5 === 4) clock.t += 100; // arrivals spread over fake time (3M spans: 60 s)
    // One request per event-loop turn, as a receiver would see them.
    await new Promise<void>((res) => setImmediate(res));
    if (r % 500 === 0) peakRss = Math.max(peakRss, process.memoryUsage().rss);
  }
  const holdSecs = Number(process.hrtime.bigint() - t0) / 1e9;
  const cpu1 = cpuSnapshot();
  const holdLoopMaxMs = h.max / 1e6;
  (globalThis as { gc?: () => void }).gc?.();
  const mem = process.memoryUsage();
  const status = procStatus();
  const oldSpace = v8.getHeapSpaceStatistics().find((sp) => sp.space_name === 'old_space');
  const smapsOut = arg('--smaps', '');
  if (smapsOut !== '') fs.writeFileSync(smapsOut, fs.readFileSync('/proc/self/smaps'));
  const snapOut = arg('--heap-snapshot', '');
  if (snapOut !== '') v8.writeHeapSnapshot(snapOut);
  peakRss = Math.max(peakRss, mem.rss);
  const m = async (name: string) => tel.total(name);
  const onDisk = await m('otelcol_processor_tail_sampling_sampling_spans_on_disk');
  const inMemory = await m('otelcol_processor_tail_sampling_sampling_spans_on_memory');
  const diskBytes = await m('otelcol_processor_tail_sampling_sampling_bytes_on_disk');
  const fileBytes = spillStore.sdb.fileBytes();
  const longestWriteHold = spillStore.sdb.longestWriteMs;
  const ct = spillStore.sdb.callTimes;
  const holdCalls = { count: ct.count, p99_ms: +ct.quantile(0.99).toFixed(1), p999_ms: +ct.quantile(0.999).toFixed(1), max_ms: +ct.maxMs.toFixed(1), over_20ms: ct.over(20) };

  // Decide everything: read back.
  h.reset();
  // Decisions come due as the arrivals did (one tick a second of fake time), as in steady state.
  clock.t = 1_700_000_000_000 + 600_000;
  const t1 = process.hrtime.bigint();
  while ((await m('otelcol_processor_tail_sampling_sampling_traces_on_disk')) + p.pendingTraces > 0) {
    await p.tick();
    clock.t += 1000;
  }
  const decideSecs = Number(process.hrtime.bigint() - t1) / 1e9;
  const cpu2 = cpuSnapshot();
  const decideLoopMaxMs = h.max / 1e6;
  h.disable();
  const readBack = await m('otelcol_processor_tail_sampling_read_back_spans_total');
  const spilledBytes = await m('otelcol_processor_tail_sampling_spilled_bytes_total');
  // Distribution of write-transaction durations (storage layer histogram).
  const wh = (await tel.registry.getSingleMetric('sidecar_storage_write_seconds')!.get()).values;
  const count = wh.find((v) => (v as { metricName?: string }).metricName?.endsWith('_count'))?.value ?? 0;
  const le = (b: number) => wh.find((v) => (v as { metricName?: string }).metricName?.endsWith('_bucket') && Number(v.labels.le) === b)?.value ?? 0;
  const writes = { count, share_le_10ms: +(le(0.01) / count).toFixed(4), share_le_20ms: +(le(0.02) / count).toFixed(4), over_20ms: count - le(0.02) };
  const result = {
    storage_writes: writes,
    spans,
    per_trace: PER,
    sync: SYNC,
    memory_budget_mib: +(MEMORY / 2 ** 20).toFixed(1),
    hold: {
      seconds: +holdSecs.toFixed(2),
      spans_per_sec: Math.round(spans / holdSecs),
      input_mb_per_sec: +(bytesIn / 1e6 / holdSecs).toFixed(1),
      spans_on_disk: onDisk,
      spans_in_memory: inMemory,
      spill_bytes: diskBytes,
      file_bytes: fileBytes,
      rss_mib_baseline: Math.round(rss0 / 2 ** 20),
      rss_mib: Math.round(mem.rss / 2 ** 20),
      rss_mib_peak: Math.round(peakRss / 2 ** 20),
      rss_anon_mib: status.RssAnon,
      rss_file_mib: status.RssFile,
      heap_used_mib: Math.round(mem.heapUsed / 2 ** 20),
      heap_total_mib: Math.round(mem.heapTotal / 2 ** 20),
      // Old space committed vs live after the forced GC: the difference is fragmentation.
      old_space_mib: { committed: +((oldSpace?.space_size ?? 0) / 2 ** 20).toFixed(1), used: +((oldSpace?.space_used_size ?? 0) / 2 ** 20).toFixed(1) },
      external_mib: Math.round(mem.external / 2 ** 20),
      array_buffers_mib: Math.round(mem.arrayBuffers / 2 ** 20),
      event_loop_max_ms: +holdLoopMaxMs.toFixed(1),
      longest_storage_write_ms: +longestWriteHold.toFixed(1),
      storage_calls: holdCalls,
      cpu_cores: cpuDelta(cpu0, cpu1, holdSecs),
    },
    decide: {
      seconds: +decideSecs.toFixed(2),
      read_back_spans: readBack,
      read_back_spans_per_sec: Math.round(readBack / decideSecs),
      read_back_mb_per_sec: +(spilledBytes / 1e6 / decideSecs).toFixed(1),
      forwarded_spans: forwarded,
      event_loop_max_ms: +decideLoopMaxMs.toFixed(1),
      cpu_cores: cpuDelta(cpu1, cpu2, decideSecs),
    },
    // Every storage call of the run (writes, reads, main-thread checkpoints): each blocked the event loop that long.
    storage_calls: { count: ct.count, p99_ms: +ct.quantile(0.99).toFixed(1), p999_ms: +ct.quantile(0.999).toFixed(1), max_ms: +ct.maxMs.toFixed(1), over_20ms: ct.over(20) },
    checkpoints: spillStore.sdb.checkpoints,
    slow_calls: sdb0.slowCalls.map((c) => ({ ...c, atMs: c.atMs - tStart })),
    longest_storage_call_ms: +Math.max(spillStore.sdb.longestWriteMs, spillStore.sdb.longestReadMs).toFixed(1),
  };
  await p.shutdown();
  fs.rmSync(dir, { recursive: true, force: true });
  console.log(JSON.stringify(result));
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
