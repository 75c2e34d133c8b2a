/**
 * `npm run bench`: runs every micro-benchmark that exists (any bench.js under
 * dist/ printing JSON lines) and the headline load-test scenarios, then
 * rewrites the generated section of BENCHMARKS.md (between
 * `<!-- bench:start -->` and `<!-- bench:end -->`; the rest is left alone).
 *
 *   npm run bench -- [--quick] [--no-scenarios] [--no-micro] [--only steady-10k,...]
 */
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { REPO_ROOT, loadScenario } from './scenario.js';
import { runScenario } from './run.js';
import { fmtNum, machineInfo, type Report, type RunResult } from './report.js';

const START = '<!-- bench:start -->';
const END = '<!-- bench:end -->';

export interface MicroResult {
  file: string;
  lines: Array<Record<string, unknown>>;
  error?: string;
  ms: number;
}

function findBenchFiles(dir: string): string[] {
  const out: string[] = [];
  const walk = (d: string) => {
    for (const e of fs.readdirSync(d, { withFileTypes: true })) {
      const p = path.join(d, e.name);
      if (e.isDirectory()) {
        if (e.name !== 'node_modules' && e.name !== 'loadtest') walk(p);
      } else if (e.name === 'bench.js') out.push(p);
    }
  };
  if (fs.existsSync(dir)) walk(dir);
  return out.sort();
}

function runMicro(file: string, timeoutMs: number): Promise<MicroResult> {
  const t0 = Date.now();
  return new Promise((resolve) => {
    const child = spawn(process.execPath, ['--expose-gc', file], { stdio: ['ignore', 'pipe', 'pipe'], cwd: REPO_ROOT });
    let out = '';
    let err = '';
    child.stdout.on('data', (b: Buffer) => (out += b.toString()));
    child.stderr.on('data', (b: Buffer) => (err += b.toString()));
    const timer = setTimeout(() => {
      err += `\ntimed out after ${timeoutMs} ms`;
      child.kill('SIGKILL');
    }, timeoutMs);
    child.on('exit', (code) => {
      clearTimeout(timer);
      const lines: Array<Record<string, unknown>> = [];
      for (const l of out.split('\n')) {
        const t = l.trim();
        if (!t.startsWith('{')) continue;
        try {
          lines.push(JSON.parse(t) as Record<string, unknown>);
        } catch {
          /* not a result line */
        }
      }
      resolve({ file: path.relative(REPO_ROOT, file), lines, error: code === 0 ? undefined : `exit ${code}: ${err.trim().split('\n').slice(-3).join(' ')}`, ms: Date.now() - t0 });
    });
  });
}

function flatten(o: unknown, prefix = '', out: Array<[string, string]> = []): Array<[string, string]> {
  if (o !== null && typeof o === 'object' && !Array.isArray(o)) {
    for (const [k, v] of Object.entries(o as Record<string, unknown>)) flatten(v, prefix ? `${prefix}.${k}` : k, out);
  } else if (Array.isArray(o)) {
    if (o.every((x) => typeof x !== 'object' || x === null)) out.push([prefix, o.join(', ')]);
    else o.forEach((x, i) => flatten(x, `${prefix}[${i}]`, out));
  } else if (typeof o === 'number') out.push([prefix, Number.isInteger(o) ? fmtNum(o) : fmtNum(o, Math.abs(o) < 10 ? 3 : 1)]);
  else out.push([prefix, String(o)]);
  return out;
}

function microSection(results: MicroResult[]): string {
  if (results.length === 0) return '_No micro-benchmarks found (dist/**/bench.js); run `npm run build`._\n';
  const parts: string[] = [];
  for (const r of results) {
    parts.push(`#### \`${r.file}\`${r.error ? ` — failed (${r.error})` : ''}\n`);
    for (const line of r.lines) {
      const name = String(line.bench ?? line.name ?? 'result');
      const rows = flatten(line).filter(([k]) => k !== 'bench' && k !== 'name');
      parts.push(`**${name}**\n\n| measure | value |\n| --- | --- |\n${rows.map(([k, v]) => `| ${k} | ${v.replace(/\|/g, '\\|')} |`).join('\n')}\n`);
    }
  }
  return parts.join('\n');
}

function notes(r: RunResult): string {
  const refused = Object.values(r.accounting.refusedByCode).reduce((a, b) => a + b, 0);
  const out: string[] = [];
  if (r.accounting.clientDropped > 0) out.push(`client queue dropped ${fmtNum(r.accounting.clientDropped)}`);
  if (refused > 0) out.push(`refused ${fmtNum(refused)}`);
  return out.length ? ` (${out.join(', ')})` : '';
}

function runRow(name: string, r: RunResult): string {
  const res = r.resources;
  return `| ${name} | ${r.label} | ${fmtNum(r.rate)} | ${res ? `${fmtNum(res.cpuAvg, 1)} / ${fmtNum(res.cpuP95, 1)}` : '-'} | ${res ? `${fmtNum(res.rssAvgMiB, 0)} / ${fmtNum(res.rssMaxMiB, 0)}` : '-'} | ${fmtNum(r.latency.root.p50, 1)} / ${fmtNum(r.latency.root.p99, 1)} | ${fmtNum(r.accounting.offered)} | ${fmtNum(r.accounting.exported)} | ${r.accounting.loss === undefined ? 'n/a' : fmtNum(r.accounting.loss)} | ${r.status}${r.generator.fellBehind ? ' (generator behind)' : ''}${notes(r)} |`;
}

function scenarioSection(reports: Report[]): string {
  if (reports.length === 0) return '_Scenarios not run._\n';
  const lines: string[] = [];
  lines.push('| scenario | target | spans/s | CPU % of a core avg / p95 | RSS MiB avg / max | added latency p50 / p99 ms | offered | exported | loss | status |');
  lines.push('| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |');
  for (const rep of reports) for (const r of rep.runs) lines.push(runRow(rep.scenario, r));
  lines.push('');
  lines.push('Added latency: root span end (the generator ends each root span as its batch leaves) to arrival at the sink; with tail sampling it includes `decision_wait`.');
  const searches = reports.flatMap((rep) => (rep.search ?? []).map((s) => ({ rep, s })));
  if (searches.length > 0) {
    lines.push('', '**Highest rate with zero loss**', '', '| scenario | target | spans/s | bound by | steps |', '| --- | --- | --- | --- | --- |');
    for (const { rep, s } of searches) {
      lines.push(`| ${rep.scenario} | ${s.target} | ${fmtNum(s.maxZeroLossRate)} | ${s.boundBy} | ${s.steps.map((x) => `${fmtNum(x.rate)} ${x.ok ? 'ok' : `✗ (${x.reason})`}`).join('; ').replace(/\|/g, '\\|')} |`);
    }
  }
  const fid = reports.flatMap((rep) => rep.runs.filter((r) => r.fidelity.classes.error.total + r.fidelity.classes.slow.total > 0 && r.fidelity.volumeReduction > 1).map((r) => ({ rep, r })));
  if (fid.length > 0) {
    lines.push('', '**Sampling fidelity**', '', '| scenario | target | error traces kept | slow traces kept | rare traces kept | kept traces complete | volume reduction |', '| --- | --- | --- | --- | --- | --- | --- |');
    for (const { rep, r } of fid) {
      const c = r.fidelity.classes;
      const k = (x: typeof c.error) => (x.total === 0 ? '-' : `${fmtNum(x.keptFraction * 100, 1)}% of ${fmtNum(x.total)}`);
      lines.push(`| ${rep.scenario} | ${r.label} | ${k(c.error)} | ${k(c.slow)} | ${k(c.rare)} | ${fmtNum(r.fidelity.completeKeptTraces)} of ${fmtNum(r.fidelity.keptTraces)} | ${fmtNum(r.fidelity.volumeReduction, 1)}x |`);
    }
  }
  return lines.join('\n') + '\n';
}

export function rewriteBenchmarks(file: string, generated: string): void {
  const block = `${START}\n${generated.trim()}\n${END}`;
  let text = fs.existsSync(file) ? fs.readFileSync(file, 'utf8') : '# Benchmarks\n\n';
  const a = text.indexOf(START);
  const b = text.indexOf(END);
  if (a >= 0 && b > a) text = text.slice(0, a) + block + text.slice(b + END.length);
  else text = `${text.trimEnd()}\n\n${block}\n`;
  fs.writeFileSync(file, text);
}

async function main(): Promise<void> {
  const argv = process.argv.slice(2);
  const quick = argv.includes('--quick');
  const onlyIdx = argv.indexOf('--only');
  const only = onlyIdx >= 0 ? argv[onlyIdx + 1].split(',') : undefined;
  const m = machineInfo();
  const started = new Date();

  let micro: MicroResult[] = [];
  if (!argv.includes('--no-micro')) {
    for (const f of findBenchFiles(path.join(REPO_ROOT, 'dist'))) {
      console.log(`micro-benchmark ${path.relative(REPO_ROOT, f)} ...`);
      const r = await runMicro(f, 300_000);
      console.log(r.error ? `  failed: ${r.error}` : `  ${r.lines.length} result line(s) in ${(r.ms / 1000).toFixed(1)} s`);
      micro.push(r);
    }
  }

  const reports: Report[] = [];
  if (!argv.includes('--no-scenarios')) {
    const headline: Array<{ name: string; durationMs: number }> = [
      { name: 'steady-1k', durationMs: quick ? 8000 : 30_000 },
      { name: 'steady-10k', durationMs: quick ? 8000 : 30_000 },
      { name: 'steady-50k', durationMs: quick ? 8000 : 30_000 },
      { name: 'sampling-fidelity', durationMs: quick ? 8000 : 30_000 },
      { name: 'passthrough-max', durationMs: quick ? 4000 : 8000 },
      { name: 'sampling-max', durationMs: quick ? 4000 : 8000 },
    ];
    for (const h of headline) {
      if (only && !only.includes(h.name)) continue;
      console.log(`scenario ${h.name} ...`);
      const s = loadScenario(h.name);
      const out = await runScenario({ scenario: h.name, prepared: s, durationMs: h.durationMs, quiet: true, log: (l) => (l.startsWith('[') ? undefined : console.log(l)) });
      reports.push(out.report);
    }
  }
  if (only === undefined || micro.length > 0 || reports.length > 0) {
    const gen = [
      `_Generated by \`npm run bench${argv.length ? ' -- ' + argv.join(' ') : ''}\` on ${started.toISOString().slice(0, 10)} (${started.toISOString()})._`,
      '',
      `Machine: ${m.cpus} CPUs (\`nproc\`), ${m.cpuModel}, ${m.memGiB} GiB RAM, Node ${m.node}, ${m.os}.`,
      '',
      'The load generator runs on the same machine as the collector (worker threads), so CPU figures are for the collector process alone (from /proc) while the generator competes for the same cores.',
      '',
      '### Load-test scenarios',
      '',
      scenarioSection(reports),
      '### Micro-benchmarks',
      '',
      microSection(micro),
    ].join('\n');
    const file = path.join(REPO_ROOT, 'BENCHMARKS.md');
    rewriteBenchmarks(file, gen);
    console.log(`rewrote ${path.relative(process.cwd(), file)}`);
  }
}

if (process.argv[1] && fileURLToPath(import.meta.url) === path.resolve(process.argv[1])) {
  main().then(
    () => process.exit(0),
    (e) => {
      console.error((e as Error).stack ?? e);
      process.exit(1);
    },
  );
}
