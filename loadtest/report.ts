/**
 * Results: the JSON document a run writes, the terminal summary and the
 * self-contained HTML report (inline SVG charts, no scripts, no CDN).
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { CLASS_ERROR, CLASS_RARE, CLASS_SLOW } from './generator/model.js';
import type { GenStats, Truth } from './generator/index.js';

export interface TimelinePoint {
  /** Seconds since the traffic started. */
  t: number;
  cpu?: number;
  rssMiB?: number;
  /** Spans/s over the last interval. */
  offered: number;
  accepted: number;
  exported: number;
  /** Event-loop delay p99 in ms (sidecar only). */
  eventLoopP99Ms?: number;
  fault?: string;
}

export interface ClassFidelity {
  /** Traces of this class that entered the collector whole. */
  total: number;
  kept: number;
  keptFraction: number;
  /** Kept traces that arrived with every span. */
  complete: number;
  completeFraction: number;
}

export interface Fidelity {
  classes: Record<'error' | 'slow' | 'rare' | 'normal', ClassFidelity>;
  /** Traces whose spans were all accepted by the collector (the base for the classes). */
  eligibleTraces: number;
  keptTraces: number;
  completeKeptTraces: number;
  incompleteKeptTraces: number;
  /** Trace ids at the sink that the generator never sent. */
  unknownTraces: number;
  /** Spans that arrived more often than they were sent (duplicates). */
  duplicateSpans: number;
  /** Spans accepted by the collector / spans exported to the sink. */
  volumeReduction: number;
  traceReduction: number;
}

export interface CrossCheck {
  check: string;
  expected: number;
  actual: number;
  ok: boolean;
  note?: string;
}

export interface Accounting {
  offered: number;
  accepted: number;
  refusedByCode: Record<string, number>;
  clientDropped: number;
  exported: number;
  droppedByReason: Record<string, number>;
  droppedTotal: number;
  /** accepted - exported - counted drops; must be 0. Undefined when the target has no such counters. */
  loss: number | undefined;
  drainComplete: boolean;
  /** What the counters are based on. */
  source: string;
}

export interface Resources {
  cpuAvg: number;
  cpuP95: number;
  cpuMax: number;
  rssAvgMiB: number;
  rssMaxMiB: number;
  eventLoopP99MsAvg: number | undefined;
  eventLoopP99MsMax: number | undefined;
  samples: number;
}

export interface LatencySummary {
  p50: number;
  p90: number;
  p99: number;
  max: number;
  mean: number;
  count: number;
}

export interface RunResult {
  target: 'sidecar' | 'peer' | 'direct' | 'external';
  label: string;
  status: 'ok' | 'skipped' | 'failed';
  message?: string;
  rate: number;
  durationMs: number;
  generator: GenStats & { workers: number; fellBehind: boolean; replay?: boolean };
  accounting: Accounting;
  /** CPU, RSS and event-loop figures after the warm-up (the whole run when there is none). */
  resources: Resources | undefined;
  /** The same over the whole run, warm-up included (only when the scenario has one). */
  resourcesWholeRun?: Resources;
  warmupMs?: number;
  latency: { span: LatencySummary; root: LatencySummary };
  fidelity: Fidelity;
  crosscheck: CrossCheck[];
  timeline: TimelinePoint[];
  expectations: Array<{ what: string; ok: boolean; detail: string }>;
  collectorExit?: { code: number | null | undefined; signal: string | null | undefined };
  peerConfigDropped?: string[];
  logTail?: string;
}

export interface SearchStep {
  rate: number;
  ok: boolean;
  reason: string;
  offered: number;
  accepted: number;
  exported: number;
  loss: number | undefined;
  cpuAvg: number | undefined;
  rssMaxMiB: number | undefined;
}

export interface SearchResult {
  target: string;
  steps: SearchStep[];
  maxZeroLossRate: number;
  boundBy: 'collector' | 'generator' | 'max_rate' | 'none';
}

export interface Machine {
  cpus: number;
  cpuModel: string;
  memGiB: number;
  node: string;
  os: string;
}

export interface Report {
  scenario: string;
  description: string;
  command: string;
  startedAt: string;
  machine: Machine;
  runs: RunResult[];
  search?: SearchResult[];
}

export function machineInfo(): Machine {
  let model = os.cpus()[0]?.model ?? 'unknown';
  try {
    const m = /model name\s*:\s*(.+)/.exec(fs.readFileSync('/proc/cpuinfo', 'utf8'));
    if (m) model = m[1].trim();
  } catch {
    /* not Linux */
  }
  return {
    cpus: os.availableParallelism?.() ?? os.cpus().length,
    cpuModel: model,
    memGiB: Math.round((os.totalmem() / 2 ** 30) * 10) / 10,
    node: process.version,
    os: `${os.type()} ${os.release()} ${os.arch()}`,
  };
}

// ------------------------------------------------------------------ computations

function hex16(ids: Uint8Array, i: number): string {
  return Buffer.from(ids.buffer, ids.byteOffset + 16 * i, 16).toString('hex');
}

/** Sampling fidelity from the generator's truth and the sink's per-trace arrivals. */
export function computeFidelity(truth: Truth, perTrace: Map<string, number>, acceptedSpans: number, exportedSpans: number): Fidelity {
  const mk = (): ClassFidelity => ({ total: 0, kept: 0, keptFraction: NaN, complete: 0, completeFraction: NaN });
  const classes = { error: mk(), slow: mk(), rare: mk(), normal: mk() };
  let eligible = 0;
  let kept = 0;
  let complete = 0;
  let incomplete = 0;
  let duplicates = 0;
  let acceptedTraces = 0;
  const seen = new Set<string>();
  for (let i = 0; i < truth.count; i++) {
    const id = hex16(truth.ids, i);
    seen.add(id);
    const arrived = perTrace.get(id) ?? 0;
    if (truth.accepted[i] > 0) acceptedTraces++;
    if (arrived > truth.accepted[i] && truth.uncertain[i] === 0) duplicates += arrived - truth.accepted[i];
    if (truth.accepted[i] !== truth.spans[i] || truth.uncertain[i] !== 0) continue;
    eligible++;
    const isKept = arrived > 0;
    const isComplete = arrived >= truth.spans[i];
    if (isKept) {
      kept++;
      if (isComplete) complete++;
      else incomplete++;
    }
    const c = truth.classes[i];
    const targets: ClassFidelity[] = [];
    if (c & CLASS_ERROR) targets.push(classes.error);
    if (c & CLASS_SLOW) targets.push(classes.slow);
    if (c & CLASS_RARE) targets.push(classes.rare);
    if (c === 0) targets.push(classes.normal);
    for (const t of targets) {
      t.total++;
      if (isKept) {
        t.kept++;
        if (isComplete) t.complete++;
      }
    }
  }
  for (const t of Object.values(classes)) {
    t.keptFraction = t.total ? t.kept / t.total : NaN;
    t.completeFraction = t.kept ? t.complete / t.kept : NaN;
  }
  let unknown = 0;
  for (const id of perTrace.keys()) if (!seen.has(id)) unknown++;
  return {
    classes,
    eligibleTraces: eligible,
    keptTraces: kept,
    completeKeptTraces: complete,
    incompleteKeptTraces: incomplete,
    unknownTraces: unknown,
    duplicateSpans: duplicates,
    volumeReduction: exportedSpans > 0 ? acceptedSpans / exportedSpans : acceptedSpans > 0 ? Infinity : NaN,
    traceReduction: perTrace.size > 0 ? acceptedTraces / perTrace.size : Infinity,
  };
}

export function percentile(values: number[], q: number): number {
  if (values.length === 0) return NaN;
  const s = values.slice().sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.max(0, Math.ceil(q * s.length) - 1))];
}

export function resourcesFrom(samples: Array<{ cpu: number; rssMiB: number }>, elp99: number[]): Resources | undefined {
  if (samples.length === 0) return undefined;
  const cpu = samples.map((s) => s.cpu);
  const rss = samples.map((s) => s.rssMiB);
  return {
    cpuAvg: cpu.reduce((a, b) => a + b, 0) / cpu.length,
    cpuP95: percentile(cpu, 0.95),
    cpuMax: Math.max(...cpu),
    rssAvgMiB: rss.reduce((a, b) => a + b, 0) / rss.length,
    rssMaxMiB: Math.max(...rss),
    eventLoopP99MsAvg: elp99.length ? elp99.reduce((a, b) => a + b, 0) / elp99.length : undefined,
    eventLoopP99MsMax: elp99.length ? Math.max(...elp99) : undefined,
    samples: samples.length,
  };
}

/**
 * Resource figures of a run whose first `warmupMs` (from `startAt`) are a
 * warm-up: `measured` leaves it out, `wholeRun` (only when there is a warm-up)
 * keeps it. Samples and event-loop points carry their time `t` (epoch ms).
 */
export function resourcesAfterWarmup(
  samples: Array<{ t: number; cpu: number; rssMiB: number }>,
  elp99: Array<{ t: number; ms: number }>,
  startAt: number,
  warmupMs: number,
): { measured: Resources | undefined; wholeRun: Resources | undefined } {
  const from = startAt + warmupMs;
  const all = samples.filter((x) => x.t >= startAt);
  const loop = elp99.filter((x) => x.t >= startAt);
  const measured = resourcesFrom(
    all.filter((x) => x.t >= from),
    loop.filter((x) => x.t >= from).map((x) => x.ms),
  );
  return { measured, wholeRun: warmupMs > 0 ? resourcesFrom(all, loop.map((x) => x.ms)) : undefined };
}

// ------------------------------------------------------------------ formatting

export function fmtNum(n: number | undefined, digits = 0): string {
  if (n === undefined || Number.isNaN(n)) return '-';
  if (!Number.isFinite(n)) return '∞';
  return n.toLocaleString('en-US', { maximumFractionDigits: digits, minimumFractionDigits: digits });
}

function fmtPct(f: number | undefined): string {
  return f === undefined || Number.isNaN(f) ? '-' : `${(f * 100).toFixed(1)}%`;
}

function fmtCodes(r: Record<string, number>): string {
  const e = Object.entries(r).filter(([, v]) => v > 0);
  return e.length === 0 ? '0' : e.map(([k, v]) => `${k}=${fmtNum(v)}`).join(' ');
}

/** Rows of the summary: [label, value per run]. */
export function summaryRows(runs: RunResult[]): Array<[string, ...string[]]> {
  const rows: Array<[string, ...string[]]> = [];
  const row = (label: string, f: (r: RunResult) => string) => rows.push([label, ...runs.map(f)]);
  row('status', (r) => r.status + (r.message ? ` (${r.message.split('\n')[0].slice(0, 60)})` : ''));
  row('rate target (spans/s)', (r) => fmtNum(r.rate));
  row('offered spans', (r) => fmtNum(r.accounting.offered));
  row('accepted spans', (r) => fmtNum(r.accounting.accepted));
  row('refused spans (by code)', (r) => fmtCodes(r.accounting.refusedByCode));
  row('client-dropped spans', (r) => fmtNum(r.accounting.clientDropped));
  row('exported spans', (r) => fmtNum(r.accounting.exported));
  row('dropped (by reason)', (r) => fmtCodes(r.accounting.droppedByReason));
  row('loss (must be 0)', (r) => (r.accounting.loss === undefined ? 'n/a' : fmtNum(r.accounting.loss)) + (r.accounting.drainComplete ? '' : ' (drain incomplete)'));
  row('CPU % of a core avg / p95', (r) => (r.resources ? `${fmtNum(r.resources.cpuAvg, 1)} / ${fmtNum(r.resources.cpuP95, 1)}` : '-'));
  if (runs.some((r) => r.resourcesWholeRun !== undefined)) {
    row('CPU % whole run, warm-up included', (r) =>
      r.resourcesWholeRun ? `${fmtNum(r.resourcesWholeRun.cpuAvg, 1)} (the line above leaves out the first ${fmtNum((r.warmupMs ?? 0) / 1000)} s)` : '-',
    );
  }
  row('RSS MiB avg / max', (r) => (r.resources ? `${fmtNum(r.resources.rssAvgMiB, 1)} / ${fmtNum(r.resources.rssMaxMiB, 1)}` : '-'));
  row('event-loop p99 ms avg / max', (r) => (r.resources?.eventLoopP99MsAvg !== undefined ? `${fmtNum(r.resources.eventLoopP99MsAvg, 1)} / ${fmtNum(r.resources.eventLoopP99MsMax, 1)}` : '-'));
  row('latency root span p50 / p99 ms', (r) => `${fmtNum(r.latency.root.p50, 1)} / ${fmtNum(r.latency.root.p99, 1)}`);
  row('latency all spans p50 / p99 ms', (r) => `${fmtNum(r.latency.span.p50, 1)} / ${fmtNum(r.latency.span.p99, 1)}`);
  for (const c of ['error', 'slow', 'rare', 'normal'] as const) {
    row(`kept ${c} traces (complete)`, (r) => {
      const f = r.fidelity.classes[c];
      return f.total === 0 ? '-' : `${fmtPct(f.keptFraction)} of ${fmtNum(f.total)} (${fmtPct(f.completeFraction)})`;
    });
  }
  row('volume reduction (spans)', (r) => `${fmtNum(r.fidelity.volumeReduction, 1)}x`);
  row('cross-checks', (r) => {
    const bad = r.crosscheck.filter((c) => !c.ok);
    return bad.length === 0 ? `all ${r.crosscheck.length} agree` : `${bad.length} disagree: ${bad.map((c) => c.check).join('; ')}`;
  });
  row('generator', (r) => {
    const g = r.generator;
    const pct = (ms: number | undefined) => fmtNum((100 * (ms ?? 0)) / g.elapsed_ms, 0);
    const busy =
      g.elapsed_ms > 0 && (g.cpu_ms ?? 0) > 0
        ? `, CPU ${pct(g.cpu_ms)}% of a core (loop busy ${pct(g.loop_active_ms)}%)`
        : g.elapsed_ms > 0 && (g.loop_active_ms ?? 0) > 0
          ? `, loop busy ${pct(g.loop_active_ms)}%`
          : '';
    return `${g.workers || 'in-thread'} worker(s)${g.replay ? ' (replay)' : ''}, max lag ${fmtNum(g.max_lag_ms)} ms${busy}${g.fellBehind ? ' — FELL BEHIND its schedule' : ''}`;
  });
  row('expectations', (r) => {
    const bad = r.expectations.filter((e) => !e.ok);
    return r.expectations.length === 0 ? '-' : bad.length === 0 ? 'all met' : `FAILED: ${bad.map((e) => e.what).join('; ')}`;
  });
  return rows;
}

export function terminalTable(report: Report): string {
  const runs = report.runs;
  const head: [string, ...string[]] = ['', ...runs.map((r) => r.label)];
  const rows = [head, ...summaryRows(runs)];
  const widths = head.map((_, i) => Math.min(80, Math.max(...rows.map((r) => (r[i] ?? '').length))));
  const line = (r: string[]) => r.map((c, i) => (c ?? '').padEnd(widths[i])).join('  ');
  const out = [`scenario ${report.scenario}: ${report.description}`.trim(), line(head), widths.map((w) => '-'.repeat(w)).join('  ')];
  for (const r of rows.slice(1)) out.push(line(r));
  for (const r of runs) {
    const bad = r.crosscheck.filter((c) => !c.ok);
    for (const c of bad) out.push(`  [${r.label}] cross-check "${c.check}": expected ${fmtNum(c.expected)}, got ${fmtNum(c.actual)}${c.note ? ` (${c.note})` : ''}`);
  }
  if (report.search) {
    for (const s of report.search) {
      out.push('', `highest zero-loss rate (${s.target}): ${fmtNum(s.maxZeroLossRate)} spans/s (bound by ${s.boundBy})`);
      for (const st of s.steps) out.push(`  ${fmtNum(st.rate).padStart(9)} spans/s  ${st.ok ? 'ok  ' : 'FAIL'}  ${st.reason}`);
    }
  }
  return out.join('\n');
}

// ------------------------------------------------------------------ HTML

const COLORS = ['#2563eb', '#dc2626', '#16a34a', '#9333ea', '#ea580c', '#0891b2'];

function esc(s: string): string {
  return s.replace(/[&<>"]/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;' })[c]!);
}

function niceMax(v: number): number {
  if (!(v > 0)) return 1;
  const p = Math.pow(10, Math.floor(Math.log10(v)));
  for (const m of [1, 2, 2.5, 5, 10]) if (m * p >= v) return m * p;
  return 10 * p;
}

export interface Series {
  name: string;
  points: Array<[number, number]>;
  dashed?: boolean;
}

/** A line chart as an SVG string. */
export function svgChart(title: string, unit: string, series: Series[], shade?: Array<[number, number, string]>): string {
  const W = 760;
  const H = 240;
  const L = 60;
  const R = 150;
  const T = 28;
  const B = 34;
  const all = series.flatMap((s) => s.points);
  const xmax = Math.max(1, ...all.map((p) => p[0]));
  const ymax = niceMax(Math.max(0, ...all.map((p) => p[1])) * 1.05);
  const x = (v: number) => L + (v / xmax) * (W - L - R);
  const y = (v: number) => H - B - (v / ymax) * (H - T - B);
  const parts: string[] = [];
  parts.push(`<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 ${W} ${H}" width="${W}" height="${H}" role="img" aria-label="${esc(title)}">`);
  parts.push(`<text x="${L}" y="18" font-size="14" font-weight="600">${esc(title)}</text>`);
  for (const [a, b, label] of shade ?? []) {
    parts.push(`<rect x="${x(a)}" y="${T}" width="${Math.max(1, x(b) - x(a))}" height="${H - T - B}" fill="#fde68a" opacity="0.5"><title>${esc(label)}</title></rect>`);
    parts.push(`<text x="${x(a) + 2}" y="${T + 12}" font-size="10" fill="#92400e">${esc(label)}</text>`);
  }
  for (let i = 0; i <= 4; i++) {
    const v = (ymax * i) / 4;
    parts.push(`<line x1="${L}" x2="${W - R}" y1="${y(v)}" y2="${y(v)}" stroke="#e5e7eb"/>`);
    parts.push(`<text x="${L - 6}" y="${y(v) + 4}" font-size="11" text-anchor="end">${esc(fmtNum(v, v < 10 && v > 0 ? 1 : 0))}</text>`);
  }
  for (let i = 0; i <= 5; i++) {
    const v = (xmax * i) / 5;
    parts.push(`<text x="${x(v)}" y="${H - B + 16}" font-size="11" text-anchor="middle">${fmtNum(v, 0)}s</text>`);
  }
  parts.push(`<text x="${L - 44}" y="${T - 8}" font-size="11">${esc(unit)}</text>`);
  parts.push(`<line x1="${L}" x2="${W - R}" y1="${H - B}" y2="${H - B}" stroke="#6b7280"/>`);
  series.forEach((s, i) => {
    const color = COLORS[i % COLORS.length];
    if (s.points.length > 0) {
      const d = s.points.map((p, k) => `${k === 0 ? 'M' : 'L'}${x(p[0]).toFixed(1)},${y(p[1]).toFixed(1)}`).join(' ');
      parts.push(`<path d="${d}" fill="none" stroke="${color}" stroke-width="2"${s.dashed ? ' stroke-dasharray="5 3"' : ''}/>`);
    }
    parts.push(`<rect x="${W - R + 12}" y="${T + i * 18}" width="12" height="3" fill="${color}"/>`);
    parts.push(`<text x="${W - R + 30}" y="${T + i * 18 + 5}" font-size="11">${esc(s.name)}</text>`);
  });
  parts.push('</svg>');
  return parts.join('');
}

function table(head: string[], rows: string[][]): string {
  return `<table><thead><tr>${head.map((h) => `<th>${esc(h)}</th>`).join('')}</tr></thead><tbody>${rows
    .map((r) => `<tr>${r.map((c, i) => (i === 0 ? `<th>${esc(c)}</th>` : `<td>${esc(c)}</td>`)).join('')}</tr>`)
    .join('')}</tbody></table>`;
}

function faultShades(r: RunResult): Array<[number, number, string]> {
  const out: Array<[number, number, string]> = [];
  let cur: { from: number; label: string } | undefined;
  for (const p of r.timeline) {
    const f = p.fault ?? 'ok';
    if (cur && cur.label !== f) {
      if (cur.label !== 'ok') out.push([cur.from, p.t, cur.label]);
      cur = undefined;
    }
    if (!cur) cur = { from: p.t, label: f };
  }
  if (cur && cur.label !== 'ok' && r.timeline.length) out.push([cur.from, r.timeline[r.timeline.length - 1].t, cur.label]);
  return out;
}

export function renderHtml(report: Report): string {
  const runs = report.runs.filter((r) => r.status !== 'skipped' || r.timeline.length > 0);
  const multi = runs.length > 1;
  const pick = (f: (p: TimelinePoint) => number | undefined) => (r: RunResult, name: string, dashed = false): Series => ({
    name: multi ? `${r.label}: ${name}` : name,
    points: r.timeline.filter((p) => f(p) !== undefined).map((p) => [p.t, f(p)!]),
    dashed,
  });
  const charts: string[] = [];
  const shades = runs[0] ? faultShades(runs[0]) : [];
  charts.push(svgChart('Collector CPU', '% of a core', runs.map((r) => pick((p) => p.cpu)(r, 'CPU')), shades));
  charts.push(svgChart('Collector RSS', 'MiB', runs.map((r) => pick((p) => p.rssMiB)(r, 'RSS')), shades));
  charts.push(
    svgChart(
      'Throughput',
      'spans/s',
      runs.flatMap((r) => [pick((p) => p.offered)(r, 'offered'), pick((p) => p.accepted)(r, 'accepted', true), pick((p) => p.exported)(r, 'exported')]),
      shades,
    ),
  );
  if (runs.some((r) => r.timeline.some((p) => p.eventLoopP99Ms !== undefined))) {
    charts.push(svgChart('Event-loop delay p99', 'ms', runs.filter((r) => r.target !== 'peer').map((r) => pick((p) => p.eventLoopP99Ms)(r, 'p99')), shades));
  }
  const m = report.machine;
  const summary = table(['', ...report.runs.map((r) => r.label)], summaryRows(report.runs));
  const cross = report.runs
    .map(
      (r) =>
        `<h3>${esc(r.label)}</h3>` +
        table(
          ['check', 'expected', 'actual', 'agree'],
          r.crosscheck.map((c) => [c.check + (c.note ? ` (${c.note})` : ''), fmtNum(c.expected), fmtNum(c.actual), c.ok ? 'yes' : 'NO']),
        ),
    )
    .join('');
  const expectations = report.runs
    .filter((r) => r.expectations.length > 0)
    .map((r) => `<h3>${esc(r.label)}</h3>` + table(['expectation', 'met', 'detail'], r.expectations.map((e) => [e.what, e.ok ? 'yes' : 'NO', e.detail])))
    .join('');
  const search = (report.search ?? [])
    .map(
      (s) =>
        `<h3>${esc(s.target)}: highest zero-loss rate ${esc(fmtNum(s.maxZeroLossRate))} spans/s (bound by ${esc(s.boundBy)})</h3>` +
        table(
          ['rate (spans/s)', 'result', 'reason', 'CPU avg %', 'RSS max MiB'],
          s.steps.map((st) => [fmtNum(st.rate), st.ok ? 'ok' : 'fail', st.reason, fmtNum(st.cpuAvg, 1), fmtNum(st.rssMaxMiB, 1)]),
        ),
    )
    .join('');
  const notes = report.runs
    .filter((r) => r.peerConfigDropped && r.peerConfigDropped.length > 0)
    .map((r) => `<p>Left out of the peer's config (sidecar-only): ${esc(r.peerConfigDropped!.join(', '))}</p>`)
    .join('');
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>loadtest ${esc(report.scenario)}</title>
<style>
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:24px;color:#111827;max-width:1100px}
table{border-collapse:collapse;margin:8px 0 20px}th,td{border:1px solid #e5e7eb;padding:4px 10px;text-align:left;font-size:13px}
thead th{background:#f3f4f6}tbody th{font-weight:500;background:#fafafa}
.charts svg{display:block;margin:10px 0}.meta{color:#4b5563;font-size:13px}
</style></head><body>
<h1>Load test: ${esc(report.scenario)}</h1>
<p>${esc(report.description)}</p>
<p class="meta">${esc(report.startedAt)} · <code>${esc(report.command)}</code><br>
${esc(`${m.cpus} CPUs (${m.cpuModel}), ${m.memGiB} GiB RAM, Node ${m.node}, ${m.os}`)}</p>
<h2>Summary</h2>${summary}
<p class="meta">loss = accepted − exported − counted drops (must be 0). Latency: span end time → arrival at the sink; the generator ends each trace's root span when it sends it, so the root-span figure is the latency the pipeline adds.</p>
${notes}
${search ? `<h2>Highest zero-loss rate</h2>${search}` : ''}
<h2>Over time</h2><div class="charts">${charts.join('\n')}</div>
<h2>Cross-check: collector /metrics vs generator and sink</h2>${cross}
${expectations ? `<h2>Expectations</h2>${expectations}` : ''}
</body></html>
`;
}

export function writeReport(report: Report, dir: string, stamp: string): { json: string; html: string } {
  fs.mkdirSync(dir, { recursive: true });
  const base = path.join(dir, `${report.scenario}-${stamp}`);
  const json = `${base}.json`;
  const html = `${base}.html`;
  fs.writeFileSync(json, JSON.stringify(report, (_k, v) => (typeof v === 'number' && !Number.isFinite(v) ? String(v) : v), 2));
  fs.writeFileSync(html, renderHtml(report));
  return { json, html };
}
