/**
 * Start-up and idle figures: process spawn to `/readyz` 200, and idle RSS,
 * for the built-in default config and for a config whose tail-sampling spill
 * file already holds pending traces (as after a restart with data on disk).
 *
 *   node dist/loadtest/startup.js [--runs 5] [--idle-runs 3] [--idle-wait-s 5] [--pending-mib 1024]
 *                                 [--burst-spans N] [--scrapes N] [--main dist/collector/sidecar.mjs]
 *
 * `--burst-spans N` sends N realistic spans (OTLP/HTTP protobuf, 500-span
 * requests) right after ready, so the idle RSS is that of a collector that has
 * seen traffic (its optimized code, grown pools) rather than a fresh one.
 * `--scrapes N` reads `/metrics` and `/readyz` N times (20 ms apart) right
 * after ready, as Prometheus and the kubelet do all day: enough of them make V8
 * optimize the exposition code, which pages its optimizing compiler in.
 * `--main` measures another build (a copy of dist/ kept from before a change);
 * LOADTEST_COLLECTOR_NODE_FLAGS adds node flags, as in the load-test harness.
 *
 * Prints one JSON line per measurement.
 */
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { REPO_ROOT } from './scenario.js';
import { SIDECAR_NODE_FLAGS, extraNodeFlags } from './collector.js';
import { TraceSpillStore } from '../storage/spill.js';
import { fileNameFor } from '../storage/registry.js';
import { scanExportRequest } from '../collector/pdata/spans.js';
import { realisticRequest } from '../collector/pdata/bench.js';
import { Telemetry } from '../collector/telemetry/metrics.js';
import { silentLogger } from '../collector/telemetry/logger.js';

function arg(name: string, def: number): number {
  const i = process.argv.indexOf(name);
  return i > 0 ? Number(process.argv[i + 1]) : def;
}

const mainArg = process.argv.indexOf('--main');
const MAIN = mainArg > 0 ? path.resolve(process.argv[mainArg + 1]) : path.join(REPO_ROOT, 'dist', 'collector', 'sidecar.mjs');

/** Sends `spans` spans to the OTLP/HTTP receiver in requests of up to 500, one at a time. */
async function burst(httpPort: number, spans: number): Promise<void> {
  for (let sent = 0, seed = 1; sent < spans; seed++) {
    const n = Math.min(500, spans - sent);
    const r = await fetch(`http://127.0.0.1:${httpPort}/v1/traces`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-protobuf' },
      body: Buffer.from(realisticRequest(n, seed)),
    });
    if (r.status !== 200) throw new Error(`burst: HTTP ${r.status}`);
    await r.arrayBuffer();
    sent += n;
  }
}

async function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const s = net.createServer().listen(0, '127.0.0.1', () => {
      const p = (s.address() as net.AddressInfo).port;
      s.close(() => resolve(p));
    });
  });
}

interface Rss {
  /** VmRSS = RssAnon (heap, malloc, stacks) + RssFile (mostly the node binary's pages) + RssShmem. */
  rss: number;
  anon: number;
  file: number;
}

function rssMiB(pid: number): Rss {
  const status = fs.readFileSync(`/proc/${pid}/status`, 'utf8');
  const kib = (k: string) => Number(new RegExp(`${k}:\\s+(\\d+)`).exec(status)?.[1] ?? 0);
  const mib = (k: string) => Math.round(kib(k) / 102.4) / 10;
  return { rss: mib('VmRSS'), anon: mib('RssAnon'), file: mib('RssFile') };
}

/**
 * Spawns the collector, returns ms from spawn to /readyz 200 and the RSS
 * `--idle-wait-s` (5) seconds later. V8's memory reducer compacts the heap
 * about 8 s after start when the process is idle, so 5 s shows the footprint
 * right after start-up and 20 s the steady idle state.
 */
async function measure(configText: string, dir: string, idle: boolean): Promise<{ ready_ms: number; idle?: Rss }> {
  const metrics = await freePort();
  const grpc = await freePort();
  const http = await freePort();
  const text = configText
    .replace('127.0.0.1:8888', `127.0.0.1:${metrics}`)
    .replace('127.0.0.1:4317', `127.0.0.1:${grpc}`)
    .replace('127.0.0.1:4318', `127.0.0.1:${http}`);
  const file = path.join(dir, `config-${metrics}.yaml`);
  fs.writeFileSync(file, text);
  const t0 = performance.now();
  // As `npm start` runs it; LOADTEST_COLLECTOR_NODE_FLAGS adds flags, as in the load-test harness.
  const child = spawn(process.execPath, [...SIDECAR_NODE_FLAGS, ...extraNodeFlags(), MAIN, '--config', file], { cwd: dir, stdio: 'ignore' });
  let ready = -1;
  for (let i = 0; i < 6000 && ready < 0; i++) {
    try {
      const r = await fetch(`http://127.0.0.1:${metrics}/readyz`);
      if (r.status === 200) ready = performance.now() - t0;
    } catch {
      /* not yet */
    }
    if (ready < 0) await new Promise((r) => setTimeout(r, 5));
  }
  let idleRss: Rss | undefined;
  if (idle) {
    const spans = arg('--burst-spans', 0);
    if (spans > 0) await burst(http, spans);
    for (let i = arg('--scrapes', 0); i > 0; i--) {
      await (await fetch(`http://127.0.0.1:${metrics}/metrics`)).text();
      await (await fetch(`http://127.0.0.1:${metrics}/readyz`)).text();
      await new Promise((r) => setTimeout(r, 20));
    }
    await new Promise((r) => setTimeout(r, arg('--idle-wait-s', 5) * 1000));
    idleRss = rssMiB(child.pid!);
  }
  child.kill('SIGINT');
  await new Promise((r) => child.on('exit', r));
  return { ready_ms: Math.round(ready), idle: idleRss };
}

async function prefill(dir: string, mib: number): Promise<number> {
  const store = TraceSpillStore.open({
    directory: dir,
    file: fileNameFor('spill', 'tail_sampling'),
    sync: 'normal',
    maxBytes: (mib + 256) * 1024 * 1024,
    logger: silentLogger(),
    telemetry: new Telemetry(),
    component: 'tail_sampling',
  });
  let bytes = 0;
  let seed = 1;
  const now = Date.now();
  while (bytes < mib * 1024 * 1024) {
    const spans = scanExportRequest(realisticRequest(512, seed++)).spans;
    const byTrace = new Map<string, typeof spans>();
    for (const s of spans) byTrace.set(s.traceId, [...(byTrace.get(s.traceId) ?? []), s]);
    // Each request has its own trace ids: none is on disk yet (prevSeq 0).
    store.spill([...byTrace].map(([traceId, s]) => ({ traceId, firstSeenMs: now, dueMs: now + 3_600_000, spans: s, prevSeq: 0 })));
    for (const s of spans) bytes += s.len;
  }
  store.close();
  return bytes;
}

async function main(): Promise<void> {
  const runs = arg('--runs', 5);
  const pendingMiB = arg('--pending-mib', 1024);
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'startup-'));
  try {
    const def = fs.readFileSync(path.join(REPO_ROOT, 'config', 'default.yaml'), 'utf8');
    const ready: number[] = [];
    const idle: Rss[] = [];
    // Idle RSS 5 s after ready in the first `idleRuns` runs (it varies little: ±0.3 MiB).
    const idleRuns = Math.min(runs, arg('--idle-runs', 3));
    for (let i = 0; i < runs; i++) {
      const m = await measure(def, dir, i < idleRuns);
      ready.push(m.ready_ms);
      if (m.idle !== undefined) idle.push(m.idle);
    }
    console.log(
      JSON.stringify({
        bench: 'startup.default_config',
        runs,
        burst_spans: arg('--burst-spans', 0),
        scrapes: arg('--scrapes', 0),
        idle_wait_s: arg('--idle-wait-s', 5),
        ready_ms_median: median(ready),
        ready_ms_max: Math.max(...ready),
        idle_rss_mib: median(idle.map((r) => r.rss)),
        idle_rss_mib_range: [Math.min(...idle.map((r) => r.rss)), Math.max(...idle.map((r) => r.rss))],
        idle_anon_mib: median(idle.map((r) => r.anon)),
        idle_file_mib: median(idle.map((r) => r.file)),
      }),
    );

    if (pendingMiB > 0) {
      const spillDir = path.join(dir, 'spill');
      const t0 = performance.now();
      const bytes = await prefill(spillDir, pendingMiB);
      const fillMs = performance.now() - t0;
      const withDisk = def.replace(
        '    num_traces: 50000\n',
        `    num_traces: 50000\n    buffer:\n      disk:\n        directory: ${spillDir}\n        max_bytes: ${(pendingMiB + 512) * 1024 * 1024}\n`,
      );
      const r: number[] = [];
      for (let i = 0; i < Math.min(runs, 3); i++) r.push((await measure(withDisk, dir, false)).ready_ms);
      console.log(
        JSON.stringify({ bench: 'startup.pending_on_disk', pending_mib: Math.round(bytes / 1048576), prefill_s: Math.round(fillMs / 100) / 10, ready_ms_median: median(r), ready_ms_max: Math.max(...r) }),
      );
    }
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)];
}

if (import.meta.url === `file://${process.argv[1]}`) void main();
