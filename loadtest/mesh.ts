/**
 * Multi-sidecar load test: one sidecar process per service of the
 * generator's service graph, each receiving only its own service's spans (as
 * in a mesh), one sink, and (with `mesh.shared`) one redis-server for shared
 * tail-sampling decisions. The same traffic runs twice, with and without
 * shared decisions, and the report puts them side by side: completeness of
 * kept traces by category, volume reduction, store commands and keys per
 * 1,000 spans, bytes held waiting for peers, the sidecars' and Redis' CPU.
 *
 * `startSidecars` is the reusable part: N sidecars, each with the config a
 * function gives it.
 */
import fs from 'node:fs';
import path from 'node:path';
import { CollectorProcess, freePort } from './collector.js';
import { OtlpTestBackend } from './sink/backend.js';
import { Metrics } from './prom.js';
import { RedisServer } from './redis.js';
import { collectorConfig, type MeshSpec, type Ports, type Scenario } from './scenario.js';
import { ServiceGraph, TraceGenerator, CLASS_ERROR, CLASS_RARE, CLASS_SLOW, type GenTrace } from './generator/model.js';
import { ProtoEncoder, placeTrace, type BatchItem, type SentTrace } from './generator/encode.js';
import { createTransport, type Transport } from './generator/transport.js';
import { machineInfo, type Machine } from './report.js';

type Obj = Record<string, unknown>;

export interface MeshSidecar {
  service: string;
  proc: CollectorProcess;
  ports: Ports;
}

/**
 * Starts one sidecar per entry of `services`, each with `configFor(service,
 * ports)` (the harness's ports filled in: receiver, metrics, the sink's), and
 * waits until all are ready. The sidecars' CPU and RSS are sampled from /proc.
 */
export async function startSidecars(opts: {
  services: string[];
  bin: string;
  workDir: string;
  sink: { grpcPort: number; httpPort: number };
  configFor: (service: string, ports: Ports) => Obj;
  memoryLimitMiB?: number;
}): Promise<MeshSidecar[]> {
  const started: MeshSidecar[] = [];
  try {
    await Promise.all(
      opts.services.map(async (service) => {
        const ports: Ports = { grpc: await freePort(), http: await freePort(), metrics: await freePort(), sinkGrpc: opts.sink.grpcPort, sinkHttp: opts.sink.httpPort };
        const proc = new CollectorProcess({
          kind: 'sidecar',
          bin: opts.bin,
          config: opts.configFor(service, ports),
          workDir: path.join(opts.workDir, service),
          metricsPort: ports.metrics,
          grpcPort: ports.grpc,
          memoryLimitMiB: opts.memoryLimitMiB,
          t0: 0,
        });
        const s = { service, proc, ports };
        started.push(s);
        await proc.start();
      }),
    );
  } catch (e) {
    await stopSidecars(started);
    throw e;
  }
  return opts.services.map((svc) => started.find((s) => s.service === svc)!);
}

export async function stopSidecars(sidecars: MeshSidecar[]): Promise<void> {
  await Promise.all(sidecars.map((s) => s.proc.stop()));
}

/** Trace categories the report gives completeness for. */
export const CATEGORIES = ['error_root', 'error_middle', 'error_leaf', 'slow', 'rare'] as const;
export type Category = (typeof CATEGORIES)[number];

interface TraceTruth {
  spans: number;
  services: number;
  categories: Category[];
  /** Requests of this trace not accepted (the trace is left out of fidelity). */
  failed: boolean;
}

/** Where the error of an error trace started: the error span none of whose children failed. */
function errorCategory(t: GenTrace): Category | undefined {
  for (let i = 0; i < t.spans.length; i++) {
    const s = t.spans[i];
    if (s.status !== 2 || s.children.some((c) => t.spans[c].status === 2)) continue;
    if (s.parent < 0) return 'error_root';
    return s.children.length === 0 ? 'error_leaf' : 'error_middle';
  }
  return undefined;
}

/** Sends generated traces, each span to the sidecar of its service, at a steady rate. */
class MeshTraffic {
  private readonly gen: TraceGenerator;
  private readonly enc: ProtoEncoder;
  readonly truth = new Map<string, TraceTruth>();
  private readonly buffers: BatchItem[][];
  private readonly transports: Transport[];
  private readonly pending = new Set<Promise<void>>();
  offered = 0;
  accepted = 0;
  refused = 0;

  constructor(
    private readonly graph: ServiceGraph,
    seed: string | number,
    private readonly sidecars: MeshSidecar[],
    private readonly spansPerRequest: number,
  ) {
    this.gen = new TraceGenerator(graph, seed);
    this.enc = new ProtoEncoder(graph);
    this.buffers = sidecars.map(() => []);
    this.transports = sidecars.map((s) => createTransport({ protocol: 'grpc', endpoint: `127.0.0.1:${s.ports.grpc}`, gzip: false, timeoutMs: 10_000, maxSockets: 1 }));
  }

  async run(rate: number, durationMs: number, flushMs: number): Promise<void> {
    const t0 = Date.now();
    let sent = 0;
    let lastFlush = t0;
    for (;;) {
      const now = Date.now();
      const elapsed = now - t0;
      if (elapsed >= durationMs) break;
      const due = (rate * elapsed) / 1000;
      while (sent < due) sent += this.add(this.gen.next(), now);
      if (now - lastFlush >= flushMs) {
        for (let i = 0; i < this.buffers.length; i++) this.flush(i);
        lastFlush = now;
      }
      await new Promise((r) => setTimeout(r, 10));
    }
    for (let i = 0; i < this.buffers.length; i++) this.flush(i);
    while (this.pending.size > 0) await Promise.all([...this.pending]);
    for (const t of this.transports) t.close();
  }

  private add(t: GenTrace, now: number): number {
    // The trace ends now: its root span's end is when its spans leave.
    const st = placeTrace(t, now - t.durationMs) as SentTrace;
    const cats: Category[] = [];
    const ec = t.classes & CLASS_ERROR ? errorCategory(t) : undefined;
    if (ec !== undefined) cats.push(ec);
    if (t.classes & CLASS_SLOW) cats.push('slow');
    if (t.classes & CLASS_RARE) cats.push('rare');
    const services = new Set<number>();
    for (let i = 0; i < t.spans.length; i++) {
      const svc = t.spans[i].pod.service.index;
      services.add(svc);
      const buf = this.buffers[svc];
      buf.push({ trace: st, span: i });
      if (buf.length >= this.spansPerRequest) this.flush(svc);
    }
    this.truth.set(t.traceIdHex, { spans: t.spans.length, services: services.size, categories: cats, failed: false });
    return t.spans.length;
  }

  private flush(i: number): void {
    const items = this.buffers[i];
    if (items.length === 0) return;
    this.buffers[i] = [];
    const body = this.enc.encode(items);
    this.offered += items.length;
    const p = this.transports[i].send(body).then(
      (r) => {
        if (r.ok) this.accepted += items.length - r.rejectedSpans;
        else this.fail(items);
      },
      () => this.fail(items),
    );
    const tracked = p.finally(() => this.pending.delete(tracked));
    this.pending.add(tracked);
  }

  private fail(items: BatchItem[]): void {
    this.refused += items.length;
    for (const it of items) {
      const tt = this.truth.get(it.trace.traceIdHex);
      if (tt) tt.failed = true;
    }
  }
}

export interface CategoryFigure {
  traces: number;
  kept: number;
  complete: number;
}

export interface MeshRun {
  label: string;
  shared: boolean;
  sidecars: number;
  offered: number;
  accepted: number;
  refused: number;
  exported: number;
  dropped: number;
  loss: number;
  volumeReduction: number;
  /** Traces that crossed more than one sidecar. */
  crossTraces: number;
  keptTraces: number;
  keptComplete: number;
  categories: Record<Category, CategoryFigure>;
  store?: {
    commands: Record<string, number>;
    commandsPer1kSpans: number;
    commandsPer1kSpansPerSidecar: number;
    keysWritten: number;
    keysRead: number;
    keysPer1kSpansPerSidecar: number;
    roundTrips: number;
    redisCpuPercent: number;
    /** Time Redis spent executing the commands (INFO commandstats usec), per 1,000 accepted spans: no network I/O. */
    redisCommandUsPer1kSpans: number;
    keysInRedis: number;
    withoutStore: number;
    learned: number;
    /** Mean time a held trace waited until a peer's keep was learned (s). */
    peerWaitMeanS: number;
  };
  heldBytes: { avg: number; max: number };
  heldTraces: { max: number };
  cpu: { sumAvg: number; perSidecarAvg: number; perSidecarMax: number };
  rss: { perSidecarAvg: number; perSidecarMax: number };
  /** The sampling-tier run: its tier processes. */
  tier?: { instances: number; cpuPerInstanceAvg: number; cpuPerInstanceMax: number; rssPerInstanceMax: number; accepted: number };
  durationMs: number;
}

export interface MeshReport {
  scenario: string;
  description: string;
  command: string;
  startedAt: string;
  machine: Machine;
  rate: number;
  durationMs: number;
  runs: MeshRun[];
}

function parseInfo(text: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const line of text.split(/\r?\n/)) {
    const i = line.indexOf(':');
    if (i > 0) out[line.slice(0, i)] = line.slice(i + 1);
  }
  return out;
}

async function redisCounters(r: RedisServer): Promise<{ cpu: number; calls: Record<string, number>; usec: Record<string, number> }> {
  const cpu = parseInfo(await r.command('INFO', 'cpu'));
  const stats = parseInfo(await r.command('INFO', 'commandstats'));
  const calls: Record<string, number> = {};
  const usec: Record<string, number> = {};
  for (const [k, v] of Object.entries(stats)) {
    if (!k.startsWith('cmdstat_')) continue;
    const m = /calls=(\d+),usec=(\d+)/.exec(v);
    if (m) {
      calls[k.slice(8)] = Number(m[1]);
      usec[k.slice(8)] = Number(m[2]);
    }
  }
  return { cpu: Number(cpu.used_cpu_sys) + Number(cpu.used_cpu_user), calls, usec };
}

async function scrapeAll(sidecars: MeshSidecar[]): Promise<Metrics[]> {
  return (await Promise.all(sidecars.map((s) => s.proc.scrape()))).map((m) => m ?? new Metrics([]));
}

const P = 'otelcol_processor_tail_sampling_';

/** The sidecar's config in the sampling-tier run: no tail sampling, routed by trace id to the tier. */
function routingSidecarConfig(s: Scenario, ports: Ports, tiers: MeshSidecar[]): Obj {
  const c = collectorConfig(s, ports) as { processors: Record<string, Obj>; exporters: Obj; service: { pipelines: { traces: Obj } } };
  const processors = Object.keys(c.processors).filter((id) => id.split('/')[0] !== 'tail_sampling');
  c.processors = Object.fromEntries(processors.map((id) => [id, c.processors[id]]));
  c.exporters = {
    loadbalancing: {
      protocol: { otlp: { tls: { insecure: true }, compression: 'none', ...s.collector.exporter_config } },
      resolver: { static: { hostnames: tiers.map((t) => `127.0.0.1:${t.ports.grpc}`) } },
    },
  };
  c.service.pipelines.traces = { receivers: ['otlp'], processors, exporters: ['loadbalancing'] };
  return c;
}

async function runMeshOnce(
  s: Scenario,
  mesh: MeshSpec,
  shared: boolean,
  o: { bin: string; workDir: string; log: (l: string) => void },
  tierInstances = 0,
): Promise<MeshRun> {
  const shape = s.traffic.shape;
  const graph = new ServiceGraph(shape, s.traffic.seed);
  const services = graph.services.map((x) => x.name);
  const label = tierInstances > 0 ? `tier_${tierInstances}` : shared ? 'shared_decisions' : 'alone';
  const sink = new OtlpTestBackend({ http: false });
  await sink.start();
  const redis = shared ? await RedisServer.start() : undefined;
  let sidecars: MeshSidecar[] = [];
  let tiers: MeshSidecar[] = [];
  try {
    if (tierInstances > 0) {
      tiers = await startSidecars({
        services: Array.from({ length: tierInstances }, (_, i) => `tier-${i}`),
        bin: o.bin,
        workDir: path.join(o.workDir, label),
        sink: { grpcPort: Number(sink.grpcEndpoint.split(':')[1]), httpPort: 0 },
        memoryLimitMiB: s.collector.memory_limit_mib,
        configFor: (_service, ports) => collectorConfig(s, ports),
      });
    }
    sidecars = await startSidecars({
      services,
      bin: o.bin,
      workDir: path.join(o.workDir, label),
      sink: { grpcPort: Number(sink.grpcEndpoint.split(':')[1]), httpPort: 0 },
      memoryLimitMiB: s.collector.memory_limit_mib,
      configFor: (_service, ports) => {
        if (tiers.length > 0) return routingSidecarConfig(s, ports, tiers);
        const c = collectorConfig(s, ports) as { processors: Record<string, Obj> };
        const ts = c.processors.tail_sampling;
        if (shared && ts !== undefined) {
          // A copy: the scenario's own processor config stays as it is for the run without sharing.
          const sd = mesh.shared as { redis?: Obj };
          c.processors.tail_sampling = { ...ts, shared_decisions: { ...sd, redis: { ...(sd.redis ?? {}), endpoint: redis!.url, key_prefix: 'tsd:loadtest:' } } };
        }
        return c;
      },
    });
    const before = redis ? await redisCounters(redis) : undefined;
    o.log(`[${s.name}/${label}] ${sidecars.length} sidecars ready (${services.join(', ')}); ${s.traffic.rate} spans/s for ${s.traffic.duration_ms / 1000} s`);
    const traffic = new MeshTraffic(graph, s.traffic.seed, sidecars, s.traffic.spans_per_request);
    const held: number[] = [];
    let heldTracesMax = 0;
    const t0 = Date.now();
    let scraping = true;
    const scraper = (async () => {
      while (scraping) {
        const ms = await scrapeAll(sidecars);
        held.push(ms.reduce((n, m) => n + m.sum(P + 'shared_bytes_held'), 0));
        heldTracesMax = Math.max(heldTracesMax, ms.reduce((n, m) => n + m.sum(P + 'shared_traces_held'), 0));
        await new Promise((r) => setTimeout(r, 1000));
      }
    })();
    await traffic.run(s.traffic.rate, s.traffic.duration_ms, s.traffic.flush_interval_ms);
    const trafficMs = Date.now() - t0;
    // Drain: every trace decided (held ones too) and exported.
    const deadline = Date.now() + s.collector.drain_timeout_ms;
    for (;;) {
      const ms = await scrapeAll([...sidecars, ...tiers]);
      const pending = ms.reduce((n, m) => n + m.sum(P + 'sampling_traces_on_memory') + m.sum(P + 'sampling_traces_on_disk'), 0);
      const open = ms.reduce((n, m) => n + m.sum('otelcol_receiver_accepted_spans_total') - m.sum('otelcol_exporter_sent_spans_total') - m.sum('sidecar_spans_dropped_total'), 0);
      if ((pending === 0 && open === 0) || Date.now() > deadline) break;
      await new Promise((r) => setTimeout(r, 250));
    }
    scraping = false;
    await scraper;
    const ms = await scrapeAll(sidecars);
    const tms = await scrapeAll(tiers);
    const after = redis ? await redisCounters(redis) : undefined;
    const keysInRedis = redis ? Number((await redis.command('DBSIZE')).replace(/^:/, '')) : 0;
    const accepted = ms.reduce((n, m) => n + m.sum('otelcol_receiver_accepted_spans_total'), 0);
    // With a tier, what leaves the collectors is what the tier exports; drops are counted on both sides.
    const exported = (tiers.length > 0 ? tms : ms).reduce((n, m) => n + m.sum('otelcol_exporter_sent_spans_total'), 0);
    const dropped = [...ms, ...tms].reduce((n, m) => n + m.sum('sidecar_spans_dropped_total'), 0);

    // Arrivals per trace at the sink.
    const arrived = new Map<string, number>();
    for (const k of sink.spanKeys) {
      const id = k.slice(0, k.indexOf(':'));
      arrived.set(id, (arrived.get(id) ?? 0) + 1);
    }
    const categories = Object.fromEntries(CATEGORIES.map((c) => [c, { traces: 0, kept: 0, complete: 0 }])) as Record<Category, CategoryFigure>;
    let keptTraces = 0;
    let keptComplete = 0;
    let crossTraces = 0;
    for (const [id, t] of traffic.truth) {
      if (t.failed) continue;
      if (t.services > 1) crossTraces++;
      const n = arrived.get(id) ?? 0;
      if (n > 0) {
        keptTraces++;
        if (n >= t.spans) keptComplete++;
      }
      for (const c of t.categories) {
        const f = categories[c];
        f.traces++;
        if (n > 0) f.kept++;
        if (n >= t.spans) f.complete++;
      }
    }
    const cpuSamples = sidecars.map((x) => x.proc.sampler?.samples ?? []);
    const avg = (xs: number[]) => (xs.length === 0 ? 0 : xs.reduce((a, b) => a + b, 0) / xs.length);
    // CPU while the traffic ran (samples are stamped in epoch ms: t0 0).
    const cpuAvgs = cpuSamples.map((xs) => avg(xs.filter((x) => x.t > t0 && x.t <= t0 + trafficMs).map((x) => x.cpu)));
    const rss = cpuSamples.map((xs) => xs.map((x) => x.rssMiB));
    const run: MeshRun = {
      label,
      shared,
      sidecars: sidecars.length,
      offered: traffic.offered,
      accepted,
      refused: traffic.refused,
      exported,
      dropped,
      loss: accepted - exported - dropped,
      volumeReduction: exported > 0 ? accepted / exported : 0,
      crossTraces,
      keptTraces,
      keptComplete,
      categories,
      heldBytes: { avg: avg(held), max: Math.max(0, ...held) },
      heldTraces: { max: heldTracesMax },
      cpu: { sumAvg: cpuAvgs.reduce((a, b) => a + b, 0), perSidecarAvg: avg(cpuAvgs), perSidecarMax: Math.max(...cpuAvgs) },
      rss: { perSidecarAvg: avg(rss.map(avg)), perSidecarMax: Math.max(0, ...rss.flat()) },
      durationMs: trafficMs,
    };
    if (tiers.length > 0) {
      const tcpu = tiers.map((x) => avg((x.proc.sampler?.samples ?? []).filter((y) => y.t > t0 && y.t <= t0 + trafficMs).map((y) => y.cpu)));
      run.tier = {
        instances: tiers.length,
        cpuPerInstanceAvg: avg(tcpu),
        cpuPerInstanceMax: Math.max(...tcpu),
        rssPerInstanceMax: Math.max(0, ...tiers.flatMap((x) => (x.proc.sampler?.samples ?? []).map((y) => y.rssMiB))),
        accepted: tms.reduce((n, m) => n + m.sum('otelcol_receiver_accepted_spans_total'), 0),
      };
    }
    if (before && after) {
      const commands: Record<string, number> = {};
      for (const [k, v] of Object.entries(after.calls)) {
        if (k === 'info' || k === 'dbsize' || k.startsWith('client') || k === 'command' || k.startsWith('command|')) continue;
        const d = v - (before.calls[k] ?? 0);
        if (d > 0) commands[k] = d;
      }
      const total = Object.values(commands).reduce((a, b) => a + b, 0);
      let usec = 0;
      for (const k of Object.keys(commands)) usec += (after.usec[k] ?? 0) - (before.usec[k] ?? 0);
      const keysWritten = ms.reduce((n, m) => n + m.sum(P + 'shared_store_keys_total', { op: 'write' }), 0);
      const keysRead = ms.reduce((n, m) => n + m.sum(P + 'shared_store_keys_total', { op: 'read' }), 0);
      run.store = {
        commands,
        commandsPer1kSpans: (total * 1000) / Math.max(1, accepted),
        commandsPer1kSpansPerSidecar: (total * 1000) / Math.max(1, accepted) / sidecars.length,
        keysWritten,
        keysRead,
        keysPer1kSpansPerSidecar: ((keysWritten + keysRead) * 1000) / Math.max(1, accepted) / sidecars.length,
        roundTrips: ms.reduce((n, m) => n + m.sum(P + 'shared_store_round_trips_total'), 0),
        redisCpuPercent: ((after.cpu - before.cpu) / (trafficMs / 1000)) * 100,
        redisCommandUsPer1kSpans: (usec * 1000) / Math.max(1, accepted),
        keysInRedis,
        withoutStore: ms.reduce((n, m) => n + m.sum(P + 'shared_decisions_without_store_total'), 0),
        learned: ms.reduce((n, m) => n + m.sum(P + 'shared_keeps_learned_total'), 0),
        peerWaitMeanS: ms.reduce((n, m) => n + m.sum(P + 'shared_peer_wait_seconds_sum'), 0) / Math.max(1, ms.reduce((n, m) => n + m.sum(P + 'shared_peer_wait_seconds_count'), 0)),
      };
    }
    return run;
  } finally {
    await stopSidecars(sidecars);
    await stopSidecars(tiers);
    await sink.close();
    await redis?.stop();
  }
}

const pct = (a: number, b: number) => (b === 0 ? '-' : `${((100 * a) / b).toFixed(1)}%`);
const num = (n: number, d = 0) => n.toLocaleString('en-US', { maximumFractionDigits: d, minimumFractionDigits: d });

/** The report as a text table (also written as .md next to the JSON). */
export function meshTable(r: MeshReport): string {
  const rows: string[][] = [['', ...r.runs.map((x) => x.label)]];
  const add = (name: string, f: (x: MeshRun) => string) => rows.push([name, ...r.runs.map(f)]);
  add('sidecars', (x) => String(x.sidecars));
  add('accepted spans', (x) => num(x.accepted));
  add('loss (must be 0)', (x) => num(x.loss));
  add('traces crossing sidecars', (x) => num(x.crossTraces));
  for (const c of CATEGORIES) add(`${c}: kept / complete`, (x) => `${pct(x.categories[c].kept, x.categories[c].traces)} / ${pct(x.categories[c].complete, x.categories[c].kept)} of ${num(x.categories[c].traces)}`);
  add('all kept traces complete', (x) => `${pct(x.keptComplete, x.keptTraces)} of ${num(x.keptTraces)}`);
  add('volume reduction (spans)', (x) => `${x.volumeReduction.toFixed(1)}x`);
  add('store commands / 1k spans (per sidecar)', (x) => (x.store ? `${x.store.commandsPer1kSpans.toFixed(2)} (${x.store.commandsPer1kSpansPerSidecar.toFixed(2)})` : '-'));
  add('store keys r+w / 1k spans per sidecar', (x) => (x.store ? x.store.keysPer1kSpansPerSidecar.toFixed(2) : '-'));
  add('store commands', (x) => (x.store ? Object.entries(x.store.commands).map(([k, v]) => `${k}=${num(v)}`).join(' ') : '-'));
  add('keys written / read / in Redis', (x) => (x.store ? `${num(x.store.keysWritten)} / ${num(x.store.keysRead)} / ${num(x.store.keysInRedis)}` : '-'));
  add('keeps learned from peers', (x) => (x.store ? num(x.store.learned) : '-'));
  add('mean wait for a peer\'s keep (s)', (x) => (x.store ? x.store.peerWaitMeanS.toFixed(2) : '-'));
  add('decided without the store', (x) => (x.store ? num(x.store.withoutStore) : '-'));
  add('Redis CPU % of a core (whole process, over the traffic)', (x) => (x.store ? x.store.redisCpuPercent.toFixed(2) : '-'));
  add('Redis command time µs / 1k spans', (x) => (x.store ? x.store.redisCommandUsPer1kSpans.toFixed(1) : '-'));
  add('bytes held for peers avg / max (all sidecars)', (x) => `${num(x.heldBytes.avg / 1024)} / ${num(x.heldBytes.max / 1024)} KiB`);
  add('traces held max (all sidecars)', (x) => num(x.heldTraces.max));
  add('CPU % of a core: sum / per sidecar avg / max', (x) => `${x.cpu.sumAvg.toFixed(1)} / ${x.cpu.perSidecarAvg.toFixed(2)} / ${x.cpu.perSidecarMax.toFixed(2)}`);
  add('RSS MiB per sidecar avg / max', (x) => `${x.rss.perSidecarAvg.toFixed(1)} / ${x.rss.perSidecarMax.toFixed(1)}`);
  add('spans leaving the sidecar pods / 1k accepted', (x) => num(((x.tier ? x.tier.accepted : x.exported) * 1000) / Math.max(1, x.accepted)));
  add('tier instances: CPU % avg / max, RSS MiB max', (x) => (x.tier ? `${x.tier.instances}: ${x.tier.cpuPerInstanceAvg.toFixed(2)} / ${x.tier.cpuPerInstanceMax.toFixed(2)}, ${x.tier.rssPerInstanceMax.toFixed(1)}` : '-'));
  const w = rows[0].map((_, i) => Math.max(...rows.map((row) => row[i].length)));
  const line = (row: string[]) => `| ${row.map((c, i) => c.padEnd(w[i])).join(' | ')} |`;
  return [line(rows[0]), `| ${w.map((n) => '-'.repeat(n)).join(' | ')} |`, ...rows.slice(1).map(line)].join('\n');
}

/** Runs a `mesh:` scenario (with shared decisions, then the same traffic without) and writes the report. */
export async function runMeshScenario(s: Scenario, o: { bin: string; outDir: string; log: (l: string) => void; command: string }): Promise<{ report: MeshReport; json: string; exitCode: number }> {
  const mesh = s.mesh!;
  const stamp = new Date().toISOString().replace(/[:.]/g, '-');
  const workDir = path.join(o.outDir, `${s.name}-${stamp}.d`);
  const report: MeshReport = {
    scenario: s.name,
    description: s.description,
    command: o.command,
    startedAt: new Date().toISOString(),
    machine: machineInfo(),
    rate: s.traffic.rate,
    durationMs: s.traffic.duration_ms,
    runs: [],
  };
  report.runs.push(await runMeshOnce(s, mesh, true, { ...o, workDir }));
  if (mesh.baseline) report.runs.push(await runMeshOnce(s, mesh, false, { ...o, workDir }));
  if (mesh.tier > 0) report.runs.push(await runMeshOnce(s, mesh, false, { ...o, workDir }, mesh.tier));
  fs.rmSync(workDir, { recursive: true, force: true });
  fs.mkdirSync(o.outDir, { recursive: true });
  const json = path.join(o.outDir, `${s.name}-${stamp}.json`);
  fs.writeFileSync(json, JSON.stringify(report, null, 2));
  const table = meshTable(report);
  fs.writeFileSync(json.replace(/\.json$/, '.md'), `# ${s.name}\n\n${s.description}\n\n\`${o.command}\`, ${s.traffic.rate} spans/s for ${s.traffic.duration_ms / 1000} s\n\n${table}\n`);
  o.log('');
  o.log(table);
  o.log('');
  o.log(`wrote ${path.relative(process.cwd(), json)} (and .md)`);
  const ok = report.runs.every((r) => r.loss === 0);
  return { report, json, exitCode: ok ? 0 : 1 };
}
