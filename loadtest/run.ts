/**
 * `npm run loadtest -- <scenario> [options]`: starts the sink, the collector
 * (or a peer Collector, or nothing: --direct), and the generator; prints
 * progress; waits for the pipeline to drain; writes a JSON result and an HTML
 * report to loadtest/results/ and prints a summary table.
 */
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Generator, type GeneratorResult } from './generator/index.js';
import { emptyStats } from './generator/loop.js';
import { scaleDuration, scaleRates } from './generator/traffic.js';
import { runMeshScenario } from './mesh.js';
import { CollectorProcess, CollectorStartError, freePort } from './collector.js';
import { Metrics } from './prom.js';
import { SinkRecorder } from './recorder.js';
import {
  REPO_ROOT,
  checkReplay,
  collectorConfig,
  listScenarios,
  loadScenario,
  peerConfig,
  type Ports,
  type Scenario,
} from './scenario.js';
import {
  computeFidelity,
  fmtNum,
  machineInfo,
  resourcesAfterWarmup,
  terminalTable,
  writeReport,
  type Accounting,
  type CrossCheck,
  type Report,
  type RunResult,
  type SearchResult,
  type SearchStep,
  type TimelinePoint,
} from './report.js';

export type Target = 'sidecar' | 'peer' | 'direct' | 'external';

export interface RunOnceOptions {
  scenario: Scenario;
  target: Target;
  /** dist/collector/sidecar.mjs (the bundle `npm start` runs). */
  collectorMain?: string;
  /** Peer Collector binary. */
  peerBin?: string;
  /** host:port of a running collector (external). */
  externalEndpoint?: string;
  /** Its /metrics URL, if it has one. */
  externalMetrics?: string;
  /** Run the generator in this thread (tests). */
  inThreadGenerator?: boolean;
  workDir: string;
  log?: (line: string) => void;
  /** Seconds between progress lines (0 = none). */
  progressEvery?: number;
}

export const SIDE_CAR_MAIN = path.join(REPO_ROOT, 'dist', 'collector', 'sidecar.mjs');

/** Applies --rate / --duration: rates scale together; phases, bursts and faults stretch with the duration. */
export function withOverrides(s: Scenario, o: { rate?: number; durationMs?: number }): Scenario {
  let traffic = s.traffic;
  let faults = s.faults;
  if (o.rate !== undefined && o.rate > 0) traffic = scaleRates(traffic, o.rate / traffic.rate);
  if (o.durationMs !== undefined && o.durationMs > 0) {
    // --duration sets the measured part; a scenario's warm-up runs before it as it is.
    const total = o.durationMs + s.warmup_ms;
    const f = total / traffic.duration_ms;
    traffic = scaleDuration(traffic, total);
    faults = faults.map((x) => ({ ...x, at_ms: x.at_ms * f, for_ms: x.for_ms === undefined ? undefined : x.for_ms * f }));
  }
  return { ...s, traffic, faults };
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function rate(n: number): string {
  return n >= 1000 ? `${(n / 1000).toFixed(1)}k/s` : `${n.toFixed(0)}/s`;
}

interface Counters {
  accepted: number;
  refused: number;
  /** Requests refused at their headers (receiver's refusal memory): their spans are in no span counter. */
  refusedEarly: number;
  exported: number;
  sendFailed: number;
  drops: Record<string, number>;
  dropsTotal: number;
  elp99Ms: number | undefined;
}

function counters(m: Metrics, target: Target): Counters {
  const drops = target === 'sidecar' ? m.by('sidecar_spans_dropped_total', 'reason') : {};
  return {
    accepted: m.sumAny(['otelcol_receiver_accepted_spans_total', 'otelcol_receiver_accepted_spans']),
    refused: m.sumAny(['otelcol_receiver_refused_spans_total', 'otelcol_receiver_refused_spans']),
    refusedEarly: m.sumAny(['sidecar_receiver_refused_requests_total']),
    exported: m.sumAny(['otelcol_exporter_sent_spans_total', 'otelcol_exporter_sent_spans']),
    sendFailed: m.sumAny(['otelcol_exporter_send_failed_spans_total', 'otelcol_exporter_send_failed_spans']),
    drops,
    dropsTotal: Object.values(drops).reduce((a, b) => a + b, 0),
    elp99Ms: m.has('nodejs_eventloop_lag_p99_seconds') ? m.value('nodejs_eventloop_lag_p99_seconds')! * 1000 : undefined,
  };
}

function emptyResult(s: Scenario, target: Target, label: string, status: RunResult['status'], message: string): RunResult {
  const lat = { p50: NaN, p90: NaN, p99: NaN, max: NaN, mean: NaN, count: 0 };
  const mk = () => ({ total: 0, kept: 0, keptFraction: NaN, complete: 0, completeFraction: NaN });
  return {
    target,
    label,
    status,
    message,
    rate: s.traffic.rate,
    durationMs: s.traffic.duration_ms,
    generator: { ...emptyStats(), workers: 0, fellBehind: false },
    accounting: { offered: 0, accepted: 0, refusedByCode: {}, clientDropped: 0, exported: 0, droppedByReason: {}, droppedTotal: 0, loss: undefined, drainComplete: false, source: '' },
    resources: undefined,
    latency: { span: lat, root: lat },
    fidelity: {
      classes: { error: mk(), slow: mk(), rare: mk(), normal: mk() },
      eligibleTraces: 0,
      keptTraces: 0,
      completeKeptTraces: 0,
      incompleteKeptTraces: 0,
      unknownTraces: 0,
      duplicateSpans: 0,
      volumeReduction: NaN,
      traceReduction: NaN,
    },
    crosscheck: [],
    timeline: [],
    expectations: [],
  };
}

/** One run of a scenario against one target. Always ends: bounded by duration, drain timeout and a hard timeout. */
export async function runOnce(o: RunOnceOptions): Promise<RunResult> {
  const s = o.scenario;
  const log = o.log ?? ((l: string) => console.log(l));
  const label = o.target === 'sidecar' ? 'sidecar' : o.target === 'peer' ? 'otelcol (peer)' : o.target === 'direct' ? 'direct (no collector)' : `external ${o.externalEndpoint}`;
  const hardDeadline = Date.now() + s.traffic.duration_ms + s.collector.drain_timeout_ms + 90_000;
  const sink = new SinkRecorder({ countOnly: s.sink.record === 'counts' });
  await sink.start();
  let proc: CollectorProcess | undefined;
  let endpoint: string;
  let metricsUrl: string | undefined;
  let peerDropped: string[] | undefined;
  try {
    if (o.target === 'direct') {
      endpoint = `127.0.0.1:${s.traffic.protocol === 'grpc' ? sink.grpcPort : sink.httpPort}`;
    } else if (o.target === 'external') {
      if (!o.externalEndpoint) throw new Error('--target needs host:port');
      endpoint = o.externalEndpoint;
      metricsUrl = o.externalMetrics;
      log(`[${s.name}] sending to ${endpoint}; point its exporter at the sink: otlp 127.0.0.1:${sink.grpcPort} / otlphttp http://127.0.0.1:${sink.httpPort}`);
    } else {
      const ports: Ports = { grpc: await freePort(), http: await freePort(), metrics: await freePort(), sinkGrpc: sink.grpcPort, sinkHttp: sink.httpPort };
      let config: Record<string, unknown>;
      if (o.target === 'peer') {
        const t = peerConfig(s, ports);
        config = t.config;
        peerDropped = t.dropped;
      } else config = collectorConfig(s, ports);
      const bin = o.target === 'peer' ? o.peerBin! : o.collectorMain ?? SIDE_CAR_MAIN;
      if (!fs.existsSync(bin)) {
        await sink.close();
        return emptyResult(s, o.target, label, 'skipped', o.target === 'sidecar' ? `${bin} is missing: run npm run build first` : `peer binary ${bin} not found`);
      }
      proc = new CollectorProcess({
        kind: o.target === 'peer' ? 'peer' : 'sidecar',
        bin,
        config,
        workDir: o.workDir,
        metricsPort: ports.metrics,
        grpcPort: ports.grpc,
        memoryLimitMiB: s.collector.memory_limit_mib,
        t0: 0,
      });
      try {
        await proc.start();
      } catch (e) {
        await sink.close();
        if (e instanceof CollectorStartError) {
          const r = emptyResult(s, o.target, label, e.kind === 'unknown_component' ? 'skipped' : 'failed', e.kind === 'unknown_component' ? `the collector does not know a component this scenario needs: ${firstLine(e.output, /unknown/i)}` : e.message);
          r.logTail = e.output.slice(-4000);
          return r;
        }
        throw e;
      }
      endpoint = `127.0.0.1:${s.traffic.protocol === 'grpc' ? ports.grpc : ports.http}`;
      metricsUrl = `http://127.0.0.1:${ports.metrics}/metrics`;
    }

    const traffic = o.inThreadGenerator ? { ...s.traffic, workers: 0 } : s.traffic;
    const gen = new Generator({ traffic, endpoint, drainMs: Math.min(20_000, s.collector.drain_timeout_ms) });
    // Faults at 0 s must be in place before the first request leaves; re-anchored on the generator's start below.
    sink.scheduleFaults(s.faults, Date.now(), Date.now() + s.traffic.duration_ms);
    const running = gen.start();
    let genResult: GeneratorResult | undefined;
    void running.then((r) => (genResult = r)).catch(() => undefined);
    const startAt = gen.startAt;
    sink.setT0(startAt);
    sink.scheduleFaults(s.faults, startAt, startAt + s.traffic.duration_ms);

    const timeline: TimelinePoint[] = [];
    const elp99: Array<{ t: number; ms: number }> = [];
    let last = { at: startAt, offered: 0, accepted: 0, exported: 0 };
    let lastCounters: Counters | undefined;
    const scrape = async (): Promise<Counters | undefined> => {
      if (proc) {
        const m = await proc.scrape();
        return m ? counters(m, o.target) : undefined;
      }
      if (metricsUrl) {
        try {
          const r = await fetch(metricsUrl, { signal: AbortSignal.timeout(2000) });
          return counters(Metrics.parse(await r.text()), o.target);
        } catch {
          return undefined;
        }
      }
      return undefined;
    };
    const point = async (phase: string) => {
      const now = Date.now();
      sink.drain();
      const c = await scrape();
      if (c) lastCounters = c;
      const gp = genResult?.stats ?? gen.progress();
      const dt = Math.max(0.001, (now - last.at) / 1000);
      const acceptedNow = c ? c.accepted : gp.accepted_spans;
      const samples = proc?.sampler?.samples.filter((x) => x.t > last.at && x.t <= now) ?? [];
      const p: TimelinePoint = {
        t: Math.round(((now - startAt) / 1000) * 10) / 10,
        offered: Math.max(0, (gp.offered_spans - last.offered) / dt),
        accepted: Math.max(0, (acceptedNow - last.accepted) / dt),
        exported: Math.max(0, (sink.acceptedSpans - last.exported) / dt),
        fault: sink.faultLabel(),
      };
      if (samples.length > 0) {
        p.cpu = samples.reduce((a, x) => a + x.cpu, 0) / samples.length;
        p.rssMiB = samples[samples.length - 1].rssMiB;
      }
      if (c?.elp99Ms !== undefined) {
        p.eventLoopP99Ms = c.elp99Ms;
        elp99.push({ t: now, ms: c.elp99Ms });
      }
      if (now >= startAt) timeline.push(p);
      last = { at: now, offered: gp.offered_spans, accepted: acceptedNow, exported: sink.acceptedSpans };
      if (o.progressEvery !== 0 && now >= startAt) {
        log(
          `[${s.name} ${o.target}] ${phase} ${p.t.toFixed(0).padStart(4)}s  offered ${rate(p.offered).padStart(8)}  accepted ${rate(p.accepted).padStart(8)}  exported ${rate(p.exported).padStart(8)}` +
            (p.cpu !== undefined ? `  cpu ${p.cpu.toFixed(1).padStart(5)}%  rss ${p.rssMiB!.toFixed(0)} MiB` : '') +
            `  in-flight ${gp.in_flight}${gp.lag_ms > 500 ? `  GENERATOR BEHIND ${gp.lag_ms.toFixed(0)} ms` : ''}  sink ${sink.faultLabel()}` +
            (c && c.dropsTotal > 0 ? `  dropped ${fmtNum(c.dropsTotal)}` : ''),
        );
      }
    };

    const every = (o.progressEvery ?? 1) * 1000 || 1000;
    while (genResult === undefined && Date.now() < hardDeadline) {
      await Promise.race([sleep(every), running.catch(() => undefined)]);
      if (genResult === undefined) await point('run  ');
    }
    if (genResult === undefined) {
      gen.stop();
      genResult = await Promise.race([running, sleep(30_000).then(() => undefined)]);
      if (genResult === undefined) throw new Error('the generator did not finish within the hard timeout');
    }
    const g = genResult;
    sink.clearFaults();

    // Drain: until every accepted span is exported or counted as dropped, and the sink is quiet.
    const drainDeadline = Math.min(hardDeadline, Date.now() + s.collector.drain_timeout_ms);
    let drainComplete = false;
    let stableSince = 0;
    let lastSink = -1;
    while (Date.now() < drainDeadline) {
      await sleep(o.target === 'direct' ? 50 : 250);
      sink.drain();
      const c = await scrape();
      if (c) lastCounters = c;
      const sinkNow = sink.acceptedSpans + sink.rejectedSpans;
      if (sinkNow !== lastSink) {
        lastSink = sinkNow;
        stableSince = Date.now();
      }
      let settled: boolean;
      if (o.target === 'sidecar' && c) settled = c.accepted >= g.stats.accepted_spans && c.accepted - c.exported - c.dropsTotal === 0 && Date.now() - stableSince >= 300;
      else if (o.target === 'direct') settled = sinkNow >= g.stats.accepted_spans + g.stats.partial_rejected_spans;
      else settled = Date.now() - stableSince >= 3000 && (c === undefined || c.accepted >= g.stats.accepted_spans);
      if (o.target !== 'direct' && Date.now() - last.at >= 950) await point('drain');
      if (settled) {
        drainComplete = true;
        break;
      }
    }
    const finalCounters = (await scrape()) ?? lastCounters;
    let collectorExit: RunResult['collectorExit'];
    if (proc) {
      await proc.stop();
      collectorExit = { code: proc.exitCode, signal: proc.exitSignal };
      await sleep(300);
    }
    sink.drain();

    // ---------------------------------------------------------------- accounting
    const gs = g.stats;
    let acc: Accounting;
    if (o.target === 'direct') {
      acc = {
        offered: gs.offered_spans,
        accepted: sink.acceptedSpans + sink.backend.stats.rejectedSpans,
        refusedByCode: gs.refused_spans,
        clientDropped: gs.client_dropped_spans,
        exported: sink.acceptedSpans,
        droppedByReason: sink.backend.stats.rejectedSpans > 0 ? { backend_rejected: sink.backend.stats.rejectedSpans } : {},
        droppedTotal: sink.backend.stats.rejectedSpans,
        loss: sink.acceptedSpans + sink.backend.stats.rejectedSpans - sink.acceptedSpans - sink.backend.stats.rejectedSpans,
        drainComplete,
        source: 'sink (no collector)',
      };
      acc.loss = gs.accepted_spans + gs.partial_rejected_spans - acc.exported - acc.droppedTotal;
    } else {
      const c = finalCounters;
      acc = {
        offered: gs.offered_spans,
        accepted: c ? c.accepted : gs.accepted_spans,
        refusedByCode: gs.refused_spans,
        clientDropped: gs.client_dropped_spans,
        exported: c && (o.target === 'sidecar' || c.exported > 0) ? c.exported : sink.acceptedSpans,
        droppedByReason: c?.drops ?? {},
        droppedTotal: c?.dropsTotal ?? 0,
        loss: o.target === 'sidecar' && c ? c.accepted - c.exported - c.dropsTotal : undefined,
        drainComplete,
        source: c ? 'collector /metrics' : 'generator and sink (no /metrics)',
      };
    }

    // Counting only: no per-trace arrivals to judge, so every class shows as not measured.
    const fidelity = computeFidelity(sink.countOnly ? { ...g.truth, count: 0 } : g.truth, sink.perTrace, acc.accepted, sink.acceptedSpans);
    const crosscheck: CrossCheck[] = [];
    const collectorCodes = Object.entries(gs.failed_attempt_spans)
      .filter(([k]) => k.startsWith('grpc:') || k.startsWith('http:'))
      .reduce((a, [, v]) => a + v, 0);
    if (o.target === 'direct') {
      crosscheck.push({ check: 'sink accepted = generator accepted', expected: gs.accepted_spans, actual: sink.acceptedSpans, ok: gs.accepted_spans === sink.acceptedSpans });
      crosscheck.push({ check: 'sink partial rejections = generator partial_success count', expected: gs.partial_rejected_spans, actual: sink.backend.stats.rejectedSpans, ok: gs.partial_rejected_spans === sink.backend.stats.rejectedSpans });
      crosscheck.push({ check: 'sink error answers = generator failed attempts', expected: collectorCodes, actual: sink.failedAttemptSpans, ok: collectorCodes === sink.failedAttemptSpans });
    } else if (finalCounters) {
      const c = finalCounters;
      crosscheck.push({ check: 'collector accepted = generator accepted', expected: gs.accepted_spans, actual: c.accepted, ok: c.accepted === gs.accepted_spans });
      // Requests refused at their headers were never read: their spans are missing from c.refused,
      // so then the spans of the failed attempts must cover c.refused plus at least one span per such request.
      const expectedRefused = collectorCodes + gs.partial_rejected_spans;
      crosscheck.push({
        check: 'collector refused = generator failed attempts',
        expected: expectedRefused,
        actual: c.refused,
        ok: c.refusedEarly === 0 ? c.refused === expectedRefused : c.refused + c.refusedEarly <= expectedRefused,
        note:
          c.refusedEarly === 0
            ? 'spans of every refused attempt, retries included'
            : `spans of every refused attempt, retries included; ${c.refusedEarly} requests were refused at their headers (spans never read, not counted)`,
      });
      const rejected = sink.backend.stats.rejectedSpans;
      const exportedOk = c.exported === sink.acceptedSpans || c.exported === sink.acceptedSpans + rejected;
      crosscheck.push({
        check: 'collector exported = sink received',
        expected: c.exported,
        actual: sink.acceptedSpans,
        ok: exportedOk || (!drainComplete && c.exported <= sink.acceptedSpans + rejected),
        note: rejected > 0 ? `the sink also rejected ${rejected} spans via partial_success` : !drainComplete ? 'read before shutdown; the sink counts after' : undefined,
      });
      if (rejected > 0 && o.target === 'sidecar') {
        const counted = c.drops.backend_rejected ?? 0;
        crosscheck.push({ check: 'backend_rejected drops = sink partial rejections', expected: rejected, actual: counted, ok: counted === rejected });
      }
    }
    if (!sink.countOnly) {
      crosscheck.push({ check: 'no duplicate spans at the sink', expected: 0, actual: fidelity.duplicateSpans, ok: fidelity.duplicateSpans === 0 });
      crosscheck.push({ check: 'no unknown traces at the sink', expected: 0, actual: fidelity.unknownTraces, ok: fidelity.unknownTraces === 0 });
    }

    const res = resourcesAfterWarmup(proc?.sampler?.samples ?? [], elp99, startAt, s.warmup_ms);
    const result: RunResult = {
      target: o.target,
      label,
      status: 'ok',
      rate: s.traffic.rate,
      durationMs: s.traffic.duration_ms,
      warmupMs: s.warmup_ms,
      generator: { ...gs, workers: g.workers, fellBehind: g.fellBehind, replay: s.traffic.replay === true },
      accounting: acc,
      resources: res.measured,
      resourcesWholeRun: res.wholeRun,
      latency: { span: sink.latency.summary(), root: sink.rootLatency.summary() },
      fidelity,
      crosscheck,
      timeline,
      expectations: [],
      collectorExit,
      peerConfigDropped: peerDropped,
    };
    result.expectations = expectations(s, result);
    if (proc && collectorExit && collectorExit.code !== 0) {
      result.status = 'failed';
      result.message = `collector exited with code ${collectorExit.code}${collectorExit.signal ? ` (${collectorExit.signal})` : ''}`;
      result.logTail = proc.output.slice(-4000);
    } else if (proc && proc.output.trim() !== '') result.logTail = proc.output.slice(-4000);
    return result;
  } finally {
    if (proc && proc.exitCode === undefined) await proc.stop(5000);
    await sink.close();
  }
}

function firstLine(text: string, re: RegExp): string {
  return text.split('\n').find((l) => re.test(l))?.trim().slice(0, 300) ?? text.trim().split('\n')[0]?.slice(0, 300) ?? '';
}

export function expectations(s: Scenario, r: RunResult): RunResult['expectations'] {
  const out: RunResult['expectations'] = [];
  const e = s.expect;
  if (e.loss !== undefined && r.accounting.loss !== undefined) {
    out.push({ what: `loss = ${e.loss}`, ok: r.accounting.loss === e.loss, detail: `loss ${r.accounting.loss}` });
  }
  out.push({ what: 'pipeline drained', ok: r.accounting.drainComplete, detail: r.accounting.drainComplete ? 'every accepted span exported or counted' : 'drain timeout reached' });
  for (const [cls, min] of Object.entries(e.min_kept)) {
    const f = r.fidelity.classes[cls as 'error'];
    if (!f) {
      out.push({ what: `kept ${cls}`, ok: false, detail: `unknown class ${cls} (error, slow, rare, normal)` });
      continue;
    }
    out.push({
      what: `kept ${cls} >= ${(min * 100).toFixed(0)}%`,
      ok: f.total === 0 || f.keptFraction >= min,
      detail: f.total === 0 ? 'no traces of this class were sent' : `${f.kept} of ${f.total}`,
    });
  }
  if (e.complete) {
    out.push({ what: 'kept traces complete', ok: r.fidelity.incompleteKeptTraces === 0, detail: `${r.fidelity.incompleteKeptTraces} of ${r.fidelity.keptTraces} incomplete` });
  }
  if (e.min_volume_reduction !== undefined) {
    out.push({ what: `volume reduction >= ${e.min_volume_reduction}x`, ok: r.fidelity.volumeReduction >= e.min_volume_reduction, detail: `${fmtNum(r.fidelity.volumeReduction, 1)}x` });
  }
  const bad = r.crosscheck.filter((c) => !c.ok);
  out.push({ what: 'cross-checks agree', ok: bad.length === 0, detail: bad.length === 0 ? `${r.crosscheck.length} checks` : bad.map((c) => c.check).join('; ') });
  return out;
}

// -------------------------------------------------------------------- search

/** Why a step is not a zero-loss step ('' when it is). */
export function stepVerdict(r: RunResult): string {
  if (r.status !== 'ok') return r.status + (r.message ? `: ${r.message.split('\n')[0]}` : '');
  const a = r.accounting;
  if (r.generator.fellBehind) return `generator fell behind (max lag ${fmtNum(r.generator.max_lag_ms)} ms)`;
  const refused = Object.values(a.refusedByCode).reduce((x, y) => x + y, 0);
  if (refused > 0) return `refused ${fmtNum(refused)} spans`;
  if (a.clientDropped > 0) return `client queue dropped ${fmtNum(a.clientDropped)} spans (collector too slow)`;
  if (a.accepted < a.offered) return `accepted ${fmtNum(a.accepted)} of ${fmtNum(a.offered)}`;
  if (a.loss !== undefined && a.loss !== 0) return `loss ${fmtNum(a.loss)}`;
  if (a.droppedTotal > 0 && !Object.keys(a.droppedByReason).every((k) => k === 'sampled_out' || k === 'late_not_sampled' || k === 'policy_drop')) {
    return `dropped ${fmtNum(a.droppedTotal)} spans (${Object.keys(a.droppedByReason).join(', ')})`;
  }
  if (!a.drainComplete) return 'did not drain in time';
  return '';
}

export async function runSearch(base: Scenario, o: Omit<RunOnceOptions, 'scenario'>, stepDurationMs?: number): Promise<{ search: SearchResult; best: RunResult | undefined }> {
  const spec = base.search!;
  const steps: SearchStep[] = [];
  let best: RunResult | undefined;
  let lo = 0;
  let hi = Infinity;
  let boundBy: SearchResult['boundBy'] = 'none';
  const log = o.log ?? ((l: string) => console.log(l));
  const tryRate = async (r: number): Promise<boolean> => {
    const sc = withOverrides(base, { rate: r, durationMs: stepDurationMs ?? spec.step_duration_ms });
    const res = await runOnce({ ...o, scenario: sc, progressEvery: o.progressEvery ?? 0 });
    const why = stepVerdict(res);
    steps.push({
      rate: Math.round(r),
      ok: why === '',
      reason: why === '' ? `offered ${fmtNum(res.accounting.offered)}, all exported or sampled` : why,
      offered: res.accounting.offered,
      accepted: res.accounting.accepted,
      exported: res.accounting.exported,
      loss: res.accounting.loss,
      cpuAvg: res.resources?.cpuAvg,
      rssMaxMiB: res.resources?.rssMaxMiB,
    });
    log(`[${base.name} search ${o.target}] ${fmtNum(r)} spans/s: ${why === '' ? 'ok' : why}`);
    if (res.status === 'skipped') throw Object.assign(new Error(res.message), { skipped: res });
    if (why === '') best = res;
    if (res.generator.fellBehind) boundBy = 'generator';
    return why === '';
  };
  let r = spec.start_rate;
  for (let i = 0; i < 12; i++) {
    if (await tryRate(r)) {
      lo = r;
      if (r >= spec.max_rate) {
        boundBy = 'max_rate';
        break;
      }
      r = Math.min(spec.max_rate, r * spec.factor);
    } else {
      hi = r;
      break;
    }
  }
  if ((boundBy as SearchResult['boundBy']) !== 'generator' && Number.isFinite(hi)) {
    boundBy = 'collector';
    for (let i = 0; i < 6 && lo > 0 && hi / lo > 1 + spec.precision; i++) {
      const mid = Math.round((lo + hi) / 2);
      if (await tryRate(mid)) lo = mid;
      else {
        hi = mid;
        if (steps[steps.length - 1].reason.startsWith('generator')) {
          boundBy = 'generator';
          break;
        }
      }
    }
  }
  return { search: { target: o.target, steps, maxZeroLossRate: lo, boundBy }, best };
}

// -------------------------------------------------------------------- CLI

export interface CliOptions {
  scenario: string;
  /** An already loaded (and possibly edited) scenario; `scenario` is then only its label. */
  prepared?: Scenario;
  durationMs?: number;
  rate?: number;
  collectorBin?: string;
  target?: string;
  metricsUrl?: string;
  direct?: boolean;
  /** Replay mode for the traffic (see generator/replay.ts). */
  replay?: boolean;
  outDir?: string;
  quiet?: boolean;
  inThreadGenerator?: boolean;
  collectorMain?: string;
  log?: (l: string) => void;
}

export interface ScenarioOutcome {
  report: Report;
  files: { json: string; html: string };
  /** 0 all expectations met, 1 some failed, 3 skipped (the collector lacks a component). */
  exitCode: number;
}

export async function runScenario(c: CliOptions): Promise<ScenarioOutcome> {
  const log = c.log ?? ((l: string) => console.log(l));
  let loaded = c.prepared ?? loadScenario(c.scenario);
  if (c.replay) {
    loaded = { ...loaded, traffic: { ...loaded.traffic, replay: true } };
    checkReplay(loaded.traffic, '--replay');
  }
  // For a search, --rate sets the starting rate and --duration the length of each step.
  const scenario = loaded.search
    ? { ...loaded, search: { ...loaded.search, start_rate: c.rate ?? loaded.search.start_rate } }
    : withOverrides(loaded, { rate: c.rate, durationMs: c.durationMs });
  const outDir = c.outDir ?? path.join(REPO_ROOT, 'loadtest', 'results');
  if (scenario.mesh !== undefined) {
    // One sidecar per service, one sink, one Redis (loadtest/mesh.ts); its own report.
    const bin = c.collectorMain ?? SIDE_CAR_MAIN;
    if (!fs.existsSync(bin)) throw new Error(`${bin} is missing: run npm run build first`);
    const command = `npm run loadtest -- ${process.argv.slice(2).join(' ') || c.scenario}`;
    const m = await runMeshScenario(scenario, { bin, outDir, log, command });
    return { report: { scenario: scenario.name, description: scenario.description, command, startedAt: m.report.startedAt, machine: m.report.machine, runs: [] }, files: { json: m.json, html: m.json.replace(/\.json$/, '.md') }, exitCode: m.exitCode };
  }
  const stamp = new Date().toISOString().replace(/[:.]/g, '-');
  const workDir = path.join(outDir, `${scenario.name}-${stamp}.d`);
  const base: Omit<RunOnceOptions, 'scenario' | 'target'> = {
    collectorMain: c.collectorMain,
    workDir,
    inThreadGenerator: c.inThreadGenerator,
    log,
    progressEvery: c.quiet ? 0 : 1,
  };
  const targets: Array<Omit<RunOnceOptions, 'scenario'>> = [];
  if (c.direct) targets.push({ ...base, target: 'direct' });
  else if (c.target) targets.push({ ...base, target: 'external', externalEndpoint: c.target, externalMetrics: c.metricsUrl });
  else targets.push({ ...base, target: 'sidecar' });
  if (c.collectorBin) {
    if (fs.existsSync(c.collectorBin)) targets.push({ ...base, target: 'peer', peerBin: c.collectorBin });
    else log(`peer comparison skipped: ${c.collectorBin} does not exist (build it with loadtest/peer/build-otelcol.sh)`);
  }
  const report: Report = {
    scenario: scenario.name,
    description: scenario.description,
    command: `npm run loadtest -- ${process.argv.slice(2).join(' ') || c.scenario}`,
    startedAt: new Date().toISOString(),
    machine: machineInfo(),
    runs: [],
  };
  let skipped = false;
  for (const t of targets) {
    if (scenario.search) {
      try {
        const { search, best } = await runSearch(scenario, t, c.durationMs);
        (report.search ??= []).push(search);
        if (best) report.runs.push(best);
      } catch (e) {
        const sk = (e as { skipped?: RunResult }).skipped;
        if (!sk) throw e;
        report.runs.push(sk);
        skipped = true;
      }
    } else {
      const r = await runOnce({ ...t, scenario });
      report.runs.push(r);
      if (r.status === 'skipped') skipped = true;
    }
  }
  fs.rmSync(workDir, { recursive: true, force: true });
  const files = writeReport(report, outDir, stamp);
  log('');
  log(terminalTable(report));
  log('');
  for (const r of report.runs) if (r.status !== 'ok' && r.message) log(`[${r.label}] ${r.message}`);
  log(`wrote ${path.relative(process.cwd(), files.json)} and ${path.relative(process.cwd(), files.html)}`);
  const failed = report.runs.some((r) => r.status === 'failed' || r.expectations.some((e) => !e.ok));
  return { report, files, exitCode: skipped && !failed ? 3 : failed ? 1 : 0 };
}

const USAGE = `usage: npm run loadtest -- <scenario|file.yaml> [options]

options:
  --duration 5s          shorten or stretch the run (phases and faults scale with it)
  --rate N               scale the scenario's rates so the base rate is N spans/s
  --collector-bin PATH   also run the same traffic against an OpenTelemetry Collector binary
  --target HOST:PORT     send to a running collector instead of starting one
  --metrics-url URL      that collector's Prometheus endpoint (with --target)
  --collector-main PATH  run this sidecar bundle instead of dist/collector/sidecar.mjs (e.g. a saved "before" build)
  --direct               no collector: generator -> sink (checks the harness itself)
  --replay               replay mode: re-send a pool of pre-encoded requests with fresh ids (protobuf only; for throughput)
  --out DIR              where results go (default loadtest/results)
  --quiet                no progress lines
  --list                 list the bundled scenarios`;

export function parseArgs(argv: string[]): CliOptions | 'list' | 'help' {
  let scenario: string | undefined;
  const o: Partial<CliOptions> = {};
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const val = () => {
      const v = argv[++i];
      if (v === undefined) throw new Error(`${a} needs a value`);
      return v;
    };
    const [flag, inline] = a.startsWith('--') && a.includes('=') ? [a.slice(0, a.indexOf('=')), a.slice(a.indexOf('=') + 1)] : [a, undefined];
    const v = () => inline ?? val();
    switch (flag) {
      case '--duration': {
        const d = v();
        o.durationMs = /^\d+$/.test(d) ? Number(d) * 1000 : parseDurationArg(d);
        break;
      }
      case '--rate':
        o.rate = Number(v());
        if (!(o.rate > 0)) throw new Error('--rate needs a positive number');
        break;
      case '--collector-bin':
        o.collectorBin = v();
        break;
      case '--target':
        o.target = v();
        break;
      case '--metrics-url':
        o.metricsUrl = v();
        break;
      case '--collector-main':
        o.collectorMain = v();
        break;
      case '--direct':
        o.direct = true;
        break;
      case '--replay':
        o.replay = true;
        break;
      case '--out':
        o.outDir = v();
        break;
      case '--quiet':
        o.quiet = true;
        break;
      case '--list':
        return 'list';
      case '--help':
      case '-h':
        return 'help';
      default:
        if (a.startsWith('-')) throw new Error(`unknown option ${a}`);
        if (scenario !== undefined) throw new Error(`one scenario at a time (got ${scenario} and ${a})`);
        scenario = a;
    }
  }
  if (scenario === undefined) return 'help';
  return { ...o, scenario };
}

function parseDurationArg(d: string): number {
  const m = /^(\d+(?:\.\d+)?)(ms|s|m)$/.exec(d);
  if (!m) throw new Error(`--duration: expected e.g. 5s, 500ms, 2m (got ${d})`);
  return Number(m[1]) * (m[2] === 'ms' ? 1 : m[2] === 's' ? 1000 : 60_000);
}

async function main(): Promise<void> {
  let parsed: ReturnType<typeof parseArgs>;
  try {
    parsed = parseArgs(process.argv.slice(2));
  } catch (e) {
    console.error(`${(e as Error).message}\n\n${USAGE}`);
    process.exit(2);
  }
  if (parsed === 'help') {
    console.log(`${USAGE}\n\nscenarios: ${listScenarios().join(', ')}`);
    process.exit(parsed === 'help' && process.argv.length > 2 ? 0 : 2);
  }
  if (parsed === 'list') {
    for (const n of listScenarios()) {
      const s = loadScenario(n);
      console.log(`${n.padEnd(20)} ${s.description}`);
    }
    return;
  }
  const out = await runScenario(parsed);
  process.exit(out.exitCode);
}

if (process.argv[1] && fileURLToPath(import.meta.url) === path.resolve(process.argv[1])) {
  main().catch((e) => {
    console.error((e as Error).stack ?? e);
    process.exit(1);
  });
}
