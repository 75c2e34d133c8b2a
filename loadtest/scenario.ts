/**
 * Scenario files (loadtest/scenarios/*.yaml): the collector's config (without
 * endpoints: the harness fills them in), the traffic, the sink's fault
 * schedule and what the run must show. See loadtest/README.md.
 */
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import YAML from 'yaml';
import { parseDuration } from '../config/duration.js';
import { withShapeDefaults } from './generator/shape.js';
import type { Phase, TrafficConfig } from './generator/traffic.js';
import type { Protocol } from './generator/transport.js';

export type FaultMode = 'ok' | 'slow' | 'down' | '429' | '503' | 'partial' | 'permanent';

export interface Fault {
  /** ms after the traffic starts. */
  at_ms: number;
  mode: FaultMode;
  /** How long the mode lasts; undefined = until the next fault or the end. */
  for_ms: number | undefined;
  /** slow: added delay per request. */
  delay_ms?: number;
  /** partial: spans rejected per request (partial_success). */
  reject?: number;
  /** 429: Retry-After seconds. */
  retry_after_s?: number;
  /** down: stop listening (connections refused) instead of answering UNAVAILABLE / 503. */
  refuse?: boolean;
}

export interface CollectorSpec {
  processors: Record<string, Record<string, unknown>>;
  pipeline: string[];
  /** loadbalancing: OTLP/gRPC to two ring members that are both the sink (127.0.0.1:P and localhost:P). */
  exporter: 'otlp' | 'otlphttp' | 'loadbalancing';
  exporter_config: Record<string, unknown>;
  receiver_config: Record<string, unknown>;
  memory_limit_mib: number | undefined;
  /** Processors the peer Collector does not get (normalize always). */
  sidecar_only: string[];
  drain_timeout_ms: number;
}

export interface Expectations {
  loss: number | undefined;
  min_kept: Record<string, number>;
  complete: boolean;
  min_volume_reduction: number | undefined;
}

export interface SearchSpec {
  start_rate: number;
  max_rate: number;
  factor: number;
  step_duration_ms: number;
  /** Relative precision at which the bisection stops. */
  precision: number;
}

export interface SinkSpec {
  /**
   * `traces` (default): the sink scans every span, counts arrivals per trace
   * id (fidelity, completeness, duplicates, unknown ids) and the latency.
   * `counts`: it only counts spans from the protobuf framing, for throughput
   * ceilings where the sink shares the machine; loss and the count
   * cross-checks stay, fidelity and latency are not measured.
   */
  record: 'traces' | 'counts';
}

export interface Scenario {
  name: string;
  description: string;
  file: string;
  /** Leading part of traffic.duration_ms left out of the resource figures. */
  warmup_ms: number;
  traffic: TrafficConfig;
  collector: CollectorSpec;
  faults: Fault[];
  expect: Expectations;
  search: SearchSpec | undefined;
  sink: SinkSpec;
  /** Multi-sidecar run (loadtest/mesh.ts): one sidecar per service of the shape. */
  mesh?: MeshSpec;
}

export interface MeshSpec {
  /** shared_decisions for tail_sampling, without the redis endpoint (the harness starts the server). */
  shared: Obj;
  /** Also run the same traffic without shared_decisions (default true). */
  baseline: boolean;
  /**
   * Also run it as a sampling tier (issue 15): the sidecars only batch and
   * route by trace id (`loadbalancing`) to this many tier processes, which
   * run the scenario's pipeline (tail_sampling included) to the sink. 0: no.
   */
  tier: number;
}

function parseMesh(v: unknown, where: string): MeshSpec | undefined {
  if (v === undefined) return undefined;
  const o = (v ?? {}) as Obj;
  known(o, ['shared', 'baseline', 'tier'], `${where}: mesh`);
  const tier = o.tier === undefined ? 0 : Number((o.tier as Obj).instances ?? 2);
  if (!Number.isInteger(tier) || tier < 0) throw new Error(`${where}: mesh.tier.instances must be a whole number`);
  return { shared: (o.shared ?? {}) as Obj, baseline: o.baseline !== false, tier };
}

/** Repository root (this file is loadtest/scenario.ts or dist/loadtest/scenario.js). */
export const REPO_ROOT = fileURLToPath(import.meta.url).endsWith('.ts')
  ? path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..')
  : path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');

/** Directory of the bundled scenarios (the YAML stays in the source tree). */
export function scenariosDir(): string {
  return path.join(REPO_ROOT, 'loadtest', 'scenarios');
}

export function listScenarios(): string[] {
  return fs
    .readdirSync(scenariosDir())
    .filter((f) => f.endsWith('.yaml') || f.endsWith('.yml'))
    .map((f) => f.replace(/\.ya?ml$/, ''))
    .sort();
}

type Obj = Record<string, unknown>;

function dur(v: unknown, where: string, def?: number): number {
  if (v === undefined || v === null) {
    if (def === undefined) throw new Error(`${where}: required duration missing`);
    return def;
  }
  if (typeof v !== 'string' && typeof v !== 'number') throw new Error(`${where}: expected a duration like "10s"`);
  try {
    return parseDuration(v);
  } catch (e) {
    throw new Error(`${where}: ${(e as Error).message}`);
  }
}

function num(v: unknown, where: string, def?: number): number {
  if (v === undefined || v === null) {
    if (def === undefined) throw new Error(`${where}: required number missing`);
    return def;
  }
  if (typeof v !== 'number' || !Number.isFinite(v)) throw new Error(`${where}: expected a number, got ${JSON.stringify(v)}`);
  return v;
}

function known(o: Obj, keys: string[], where: string): void {
  for (const k of Object.keys(o)) if (!keys.includes(k)) throw new Error(`${where}: unknown key "${k}" (known: ${keys.join(', ')})`);
}

const PROTOCOLS: Protocol[] = ['grpc', 'http/protobuf', 'http/json'];
const MODES: FaultMode[] = ['ok', 'slow', 'down', '429', '503', 'partial', 'permanent'];

export function parseScenario(text: string, file = '<inline>'): Scenario {
  const doc = (YAML.parse(text) ?? {}) as Obj;
  known(doc, ['name', 'description', 'duration', 'warmup', 'traffic', 'collector', 'faults', 'expect', 'search', 'sink', 'mesh'], file);
  const name = String(doc.name ?? path.basename(file).replace(/\.ya?ml$/, ''));
  // `warmup` runs the same traffic before the measured `duration`: CPU, RSS and
  // event-loop figures come from the measured part only (the JIT's start-up
  // compiling is reported apart); loss and accounting cover the whole run.
  const warmup = dur(doc.warmup, `${file}: warmup`, 0);
  const duration = warmup + dur(doc.duration, `${file}: duration`, 30_000);

  const tr = (doc.traffic ?? {}) as Obj;
  known(tr, ['rate', 'protocol', 'gzip', 'spans_per_request', 'max_in_flight', 'max_queued', 'flush_interval', 'workers', 'seed', 'phases', 'bursts', 'retry', 'timeout', 'shape', 'replay', 'replay_pool'], `${file}: traffic`);
  const protocol = (tr.protocol ?? 'grpc') as Protocol;
  if (!PROTOCOLS.includes(protocol)) throw new Error(`${file}: traffic.protocol must be one of ${PROTOCOLS.join(', ')}`);
  const phases: Phase[] = ((tr.phases ?? []) as Obj[]).map((p, i) => {
    known(p, ['duration', 'rate', 'ramp_to'], `${file}: traffic.phases[${i}]`);
    return {
      duration_ms: dur(p.duration, `${file}: traffic.phases[${i}].duration`),
      rate: p.rate === undefined ? undefined : num(p.rate, `traffic.phases[${i}].rate`),
      ramp_to: p.ramp_to === undefined ? undefined : num(p.ramp_to, `traffic.phases[${i}].ramp_to`),
    };
  });
  const b = tr.bursts as Obj | undefined;
  if (b) known(b, ['every', 'length', 'rate'], `${file}: traffic.bursts`);
  const retry = (tr.retry ?? {}) as Obj;
  known(retry, ['initial', 'max', 'multiplier', 'max_attempts', 'ignore_hints'], `${file}: traffic.retry`);
  const traffic: TrafficConfig = {
    rate: num(tr.rate, `${file}: traffic.rate`, 1000),
    duration_ms: duration,
    protocol,
    gzip: tr.gzip === true,
    spans_per_request: num(tr.spans_per_request, 'traffic.spans_per_request', 100),
    max_in_flight: num(tr.max_in_flight, 'traffic.max_in_flight', 8),
    max_queued: num(tr.max_queued, 'traffic.max_queued', 256),
    flush_interval_ms: dur(tr.flush_interval, 'traffic.flush_interval', 200),
    workers: tr.workers === undefined || tr.workers === 'auto' ? -1 : num(tr.workers, 'traffic.workers'),
    seed: (tr.seed as string | number | undefined) ?? 1,
    phases,
    bursts: b ? { every_ms: dur(b.every, 'traffic.bursts.every'), length_ms: dur(b.length, 'traffic.bursts.length'), rate: num(b.rate, 'traffic.bursts.rate') } : undefined,
    retry: {
      initial_ms: dur(retry.initial, 'traffic.retry.initial', 250),
      max_ms: dur(retry.max, 'traffic.retry.max', 5000),
      multiplier: num(retry.multiplier, 'traffic.retry.multiplier', 2),
      max_attempts: num(retry.max_attempts, 'traffic.retry.max_attempts', 8),
      ignore_hints: retry.ignore_hints === true,
    },
    timeout_ms: dur(tr.timeout, 'traffic.timeout', 10_000),
    shape: withShapeDefaults(tr.shape as Obj | undefined),
    replay: tr.replay === true,
    replay_pool: num(tr.replay_pool, 'traffic.replay_pool', 64),
  };
  checkReplay(traffic, file);

  const c = (doc.collector ?? {}) as Obj;
  known(c, ['processors', 'pipeline', 'exporter', 'exporter_config', 'receiver_config', 'memory_limit_mib', 'sidecar_only', 'drain_timeout'], `${file}: collector`);
  const processors = (c.processors ?? {}) as Record<string, Record<string, unknown>>;
  const pipeline = (c.pipeline as string[] | undefined) ?? Object.keys(processors);
  for (const p of pipeline) if (!(p in processors)) throw new Error(`${file}: collector.pipeline names "${p}", which is not under collector.processors`);
  const exporter = (c.exporter ?? 'otlp') as CollectorSpec['exporter'];
  if (exporter !== 'otlp' && exporter !== 'otlphttp' && exporter !== 'loadbalancing') {
    throw new Error(`${file}: collector.exporter must be otlp, otlphttp or loadbalancing`);
  }
  const collector: CollectorSpec = {
    processors,
    pipeline,
    exporter,
    exporter_config: (c.exporter_config ?? {}) as Obj,
    receiver_config: (c.receiver_config ?? {}) as Obj,
    memory_limit_mib: c.memory_limit_mib === undefined ? undefined : num(c.memory_limit_mib, 'collector.memory_limit_mib'),
    sidecar_only: (c.sidecar_only as string[] | undefined) ?? [],
    drain_timeout_ms: dur(c.drain_timeout, 'collector.drain_timeout', defaultDrain(processors)),
  };

  const faults: Fault[] = ((doc.faults ?? []) as Obj[]).map((f, i) => {
    known(f, ['at', 'mode', 'for', 'delay', 'reject', 'retry_after', 'refuse'], `${file}: faults[${i}]`);
    const mode = String(f.mode) as FaultMode;
    if (!MODES.includes(mode)) throw new Error(`${file}: faults[${i}].mode must be one of ${MODES.join(', ')}`);
    return {
      at_ms: dur(f.at, `faults[${i}].at`, 0),
      mode,
      for_ms: f.for === undefined ? undefined : dur(f.for, `faults[${i}].for`),
      delay_ms: f.delay === undefined ? undefined : dur(f.delay, `faults[${i}].delay`),
      reject: f.reject === undefined ? undefined : num(f.reject, `faults[${i}].reject`),
      retry_after_s: f.retry_after === undefined ? undefined : dur(f.retry_after, `faults[${i}].retry_after`) / 1000,
      refuse: f.refuse === true,
    };
  });

  const e = (doc.expect ?? {}) as Obj;
  known(e, ['loss', 'min_kept', 'complete', 'min_volume_reduction'], `${file}: expect`);
  const expect: Expectations = {
    loss: e.loss === undefined ? 0 : num(e.loss, 'expect.loss'),
    min_kept: (e.min_kept ?? {}) as Record<string, number>,
    complete: e.complete === true,
    min_volume_reduction: e.min_volume_reduction === undefined ? undefined : num(e.min_volume_reduction, 'expect.min_volume_reduction'),
  };

  const s = doc.search as Obj | undefined;
  let search: SearchSpec | undefined;
  if (s) {
    known(s, ['start_rate', 'max_rate', 'factor', 'step_duration', 'precision'], `${file}: search`);
    search = {
      start_rate: num(s.start_rate, 'search.start_rate', traffic.rate),
      max_rate: num(s.max_rate, 'search.max_rate', 500_000),
      factor: num(s.factor, 'search.factor', 2),
      step_duration_ms: dur(s.step_duration, 'search.step_duration', 10_000),
      precision: num(s.precision, 'search.precision', 0.1),
    };
  }
  const sk = (doc.sink ?? {}) as Obj;
  known(sk, ['record'], `${file}: sink`);
  const record = sk.record ?? 'traces';
  if (record !== 'traces' && record !== 'counts') throw new Error(`${file}: sink.record must be traces or counts (got ${String(record)})`);
  if (record === 'counts' && (expect.complete || Object.keys(expect.min_kept).length > 0)) {
    throw new Error(`${file}: expect.complete and expect.min_kept need the sink to record traces; remove sink.record: counts`);
  }
  const mesh = parseMesh(doc.mesh, file);
  if (mesh !== undefined && collector.processors.tail_sampling === undefined) throw new Error(`${file}: a mesh scenario needs a tail_sampling processor`);
  return { name, description: String(doc.description ?? ''), file, warmup_ms: warmup, traffic, collector, faults, expect, search, sink: { record }, mesh };
}

/** Replay rewrites ids at byte offsets of the protobuf encoding: it cannot work with OTLP/JSON. */
export function checkReplay(t: TrafficConfig, where: string): void {
  if (!t.replay) return;
  if (t.protocol === 'http/json') {
    throw new Error(`${where}: traffic.replay works only with protobuf encodings (protocol grpc or http/protobuf), not ${t.protocol}`);
  }
  if (!(Number.isInteger(t.replay_pool ?? 64) && (t.replay_pool ?? 64) >= 1)) throw new Error(`${where}: traffic.replay_pool must be a positive integer`);
}

/** decision_wait + batch timeout + margin: how long the pipeline may hold data after traffic stops. */
function defaultDrain(processors: Record<string, Record<string, unknown>>): number {
  let ms = 5000;
  for (const [id, cfg] of Object.entries(processors)) {
    const type = id.split('/')[0];
    if (type === 'tail_sampling') ms += dur(cfg?.decision_wait, 'decision_wait', 30_000);
    if (type === 'batch') ms += dur(cfg?.timeout, 'timeout', 200);
  }
  return Math.min(ms, 120_000);
}

export function loadScenario(nameOrPath: string): Scenario {
  const p = fs.existsSync(nameOrPath) ? nameOrPath : path.join(scenariosDir(), `${nameOrPath.replace(/\.ya?ml$/, '')}.yaml`);
  if (!fs.existsSync(p)) {
    throw new Error(`scenario "${nameOrPath}" not found; bundled scenarios: ${listScenarios().join(', ')}`);
  }
  return parseScenario(fs.readFileSync(p, 'utf8'), p);
}

export interface Ports {
  grpc: number;
  http: number;
  metrics: number;
  sinkGrpc: number;
  sinkHttp: number;
}

/**
 * The exporter's config pointed at the sink. `loadbalancing` gets two ring
 * members that are both the sink (`127.0.0.1:P`, `localhost:P`), so the
 * routing and the split into one request per backend are measured with one
 * sink; `exporter_config` then holds its `protocol.otlp` options.
 */
function exporterFor(kind: CollectorSpec['exporter'], cfg: Obj, ports: Ports): Obj {
  if (kind === 'otlp') return { endpoint: `127.0.0.1:${ports.sinkGrpc}`, tls: { insecure: true }, ...cfg };
  if (kind === 'otlphttp') return { endpoint: `http://127.0.0.1:${ports.sinkHttp}`, ...cfg };
  return {
    protocol: { otlp: { tls: { insecure: true }, ...cfg } },
    resolver: { static: { hostnames: [`127.0.0.1:${ports.sinkGrpc}`, `localhost:${ports.sinkGrpc}`] } },
  };
}

/** The sidecar's config for a scenario, with the harness's ports filled in. */
export function collectorConfig(s: Scenario, ports: Ports): Obj {
  const c = s.collector;
  const exporterId = c.exporter;
  const exporterCfg: Obj = exporterFor(c.exporter, c.exporter_config, ports);
  // receiver_config may set protocol options (e.g. protocols.grpc.window_size_mib); the harness owns the endpoints.
  const { protocols: rp = {}, ...receiverRest } = c.receiver_config as { protocols?: Record<string, Obj> };
  return {
    receivers: {
      otlp: {
        protocols: { grpc: { ...rp.grpc, endpoint: `127.0.0.1:${ports.grpc}` }, http: { ...rp.http, endpoint: `127.0.0.1:${ports.http}` } },
        ...receiverRest,
      },
    },
    processors: Object.fromEntries(c.pipeline.map((p) => [p, c.processors[p] ?? {}])),
    exporters: { [exporterId]: exporterCfg },
    service: {
      telemetry: { metrics: { address: `127.0.0.1:${ports.metrics}` }, logs: { level: 'warn' } },
      pipelines: { traces: { receivers: ['otlp'], processors: c.pipeline, exporters: [exporterId] } },
    },
  };
}

/** Options each processor type of the OpenTelemetry Collector accepts (anything else is sidecar-only). */
const PEER_KEYS: Record<string, string[]> = {
  tail_sampling: [
    'decision_wait', 'num_traces', 'expected_new_traces_per_sec', 'policies', 'decision_cache', 'sample_on_first_match',
    'decision_wait_after_root_received', 'maximum_trace_size_bytes', 'drop_pending_traces_on_shutdown', 'block_on_overflow',
  ],
  batch: ['timeout', 'send_batch_size', 'send_batch_max_size', 'metadata_keys', 'metadata_cardinality_limit'],
  memory_limiter: ['check_interval', 'limit_mib', 'spike_limit_mib', 'limit_percentage', 'spike_limit_percentage'],
};
const PEER_EXPORTER_KEYS = ['endpoint', 'tls', 'compression', 'timeout', 'sending_queue', 'retry_on_failure', 'headers', 'balancer_name'];

export interface PeerTranslation {
  config: Obj;
  /** What was left out, for the report. */
  dropped: string[];
}

/** The same pipeline for an OpenTelemetry Collector built with the equivalent components. */
export function peerConfig(s: Scenario, ports: Ports): PeerTranslation {
  const dropped: string[] = [];
  const c = s.collector;
  const pipeline: string[] = [];
  const processors: Obj = {};
  for (const id of c.pipeline) {
    const type = id.split('/')[0];
    if (c.sidecar_only.includes(id) || !(type in PEER_KEYS)) {
      dropped.push(`processor ${id}`);
      continue;
    }
    const cfg: Obj = {};
    for (const [k, v] of Object.entries(c.processors[id] ?? {})) {
      if (PEER_KEYS[type].includes(k)) cfg[k] = v;
      else dropped.push(`${id}.${k}`);
    }
    if (type === 'memory_limiter' && cfg.check_interval === undefined) cfg.check_interval = '1s';
    processors[id] = cfg;
    pipeline.push(id);
  }
  const exporterCfg: Obj = {};
  for (const [k, v] of Object.entries(c.exporter_config)) {
    if (PEER_EXPORTER_KEYS.includes(k)) exporterCfg[k] = v;
    else dropped.push(`exporter.${k}`);
  }
  const exporter = exporterFor(c.exporter, exporterCfg, ports);
  return {
    dropped,
    config: {
      receivers: { otlp: { protocols: { grpc: { endpoint: `127.0.0.1:${ports.grpc}` }, http: { endpoint: `127.0.0.1:${ports.http}` } } } },
      processors,
      exporters: { [c.exporter]: exporter },
      service: {
        telemetry: {
          metrics: { level: 'detailed', readers: [{ pull: { exporter: { prometheus: { host: '127.0.0.1', port: ports.metrics } } } }] },
          logs: { level: 'warn' },
        },
        pipelines: { traces: { receivers: ['otlp'], processors: pipeline, exporters: [c.exporter] } },
      },
    },
  };
}
