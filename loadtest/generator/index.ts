/**
 * The generator: one GeneratorLoop per worker thread (or one in the calling
 * thread when `workers` is 0), each sending its share of the schedule. The
 * results merge into one set of stats and one ground-truth table.
 */
import os from 'node:os';
import fs from 'node:fs';
import { fileURLToPath } from 'node:url';
import { Worker } from 'node:worker_threads';
import { GeneratorLoop, addStats, emptyStats, type GenStats, type LoopConfig, type Truth } from './loop.js';
import type { TrafficConfig } from './traffic.js';

export type { GenStats, Truth } from './loop.js';

export interface GeneratorOptions {
  traffic: TrafficConfig;
  endpoint: string;
  /** Delay before the schedule starts (lets workers load). */
  startDelayMs?: number;
  /** How long after the schedule ends retries may still run. */
  drainMs?: number;
  recordTruth?: boolean;
}

export interface GeneratorResult {
  stats: GenStats;
  perWorker: GenStats[];
  truth: Truth;
  workers: number;
  /** True when generation fell behind its schedule (the generator was the bottleneck). */
  fellBehind: boolean;
}

/**
 * Workers to use when the scenario says `auto` (<0): one per 60k spans/s,
 * leaving a core for the collector. Replay costs far less per span (the limit
 * is the client's per-request cost), so one per 125k spans/s and at least 2
 * allowed even on a 2-core machine.
 */
export function autoWorkers(rate: number, replay = false): number {
  const cpus = os.availableParallelism?.() ?? os.cpus().length;
  if (replay) return Math.max(1, Math.min(Math.ceil(rate / 125000), Math.max(2, cpus - 1)));
  return Math.max(1, Math.min(Math.ceil(rate / 60000), Math.max(1, cpus - 1)));
}

function workerScript(): string | undefined {
  // Compiled: dist/loadtest/generator/worker.js next to this file. From sources (vitest): look in dist.
  const here = fileURLToPath(import.meta.url);
  if (here.endsWith('.js')) return here.replace(/index\.js$/, 'worker.js');
  const dist = here.replace(/loadtest[\\/]generator[\\/]index\.ts$/, 'dist/loadtest/generator/worker.js');
  return fs.existsSync(dist) ? dist : undefined;
}

export function mergeTruth(parts: Truth[]): Truth {
  const count = parts.reduce((n, p) => n + p.count, 0);
  const out: Truth = {
    count,
    ids: new Uint8Array(16 * count),
    spans: new Int32Array(count),
    accepted: new Int32Array(count),
    classes: new Uint8Array(count),
    durationMs: new Float32Array(count),
    uncertain: new Uint8Array(count),
  };
  let o = 0;
  for (const p of parts) {
    out.ids.set(p.ids.subarray(0, 16 * p.count), 16 * o);
    out.spans.set(p.spans.subarray(0, p.count), o);
    out.accepted.set(p.accepted.subarray(0, p.count), o);
    out.classes.set(p.classes.subarray(0, p.count), o);
    out.durationMs.set(p.durationMs.subarray(0, p.count), o);
    out.uncertain.set(p.uncertain.subarray(0, p.count), o);
    o += p.count;
  }
  return out;
}

export class Generator {
  private readonly opts: GeneratorOptions;
  private readonly latest: GenStats[] = [];
  private readonly stops: Array<() => void> = [];
  private done: Promise<GeneratorResult> | undefined;
  readonly workers: number;
  startAt = 0;

  constructor(opts: GeneratorOptions) {
    this.opts = opts;
    const w = opts.traffic.workers < 0 ? autoWorkers(Math.max(opts.traffic.rate, opts.traffic.bursts?.rate ?? 0), opts.traffic.replay === true) : opts.traffic.workers;
    this.workers = w === 0 || workerScript() === undefined ? 0 : w;
  }

  /** Starts sending; resolves with the merged result once every loop finished. */
  start(): Promise<GeneratorResult> {
    if (this.done) return this.done;
    const t = this.opts.traffic;
    this.startAt = Date.now() + (this.opts.startDelayMs ?? (this.workers > 0 ? 300 : 20));
    const n = Math.max(1, this.workers);
    const base: Omit<LoopConfig, 'index'> = {
      traffic: t,
      endpoint: this.opts.endpoint,
      count: n,
      startAt: this.startAt,
      hardDeadline: this.startAt + t.duration_ms + (this.opts.drainMs ?? 15000),
      recordTruth: this.opts.recordTruth ?? true,
    };
    const runs: Array<Promise<{ stats: GenStats; truth: Truth }>> = [];
    for (let i = 0; i < n; i++) {
      this.latest.push(emptyStats());
      const cfg: LoopConfig = { ...base, index: i };
      if (this.workers === 0) {
        const loop = new GeneratorLoop(cfg);
        this.stops.push(() => loop.stop());
        runs.push(loop.run((s) => (this.latest[i] = s), 250));
      } else {
        const w = new Worker(workerScript()!, { workerData: cfg });
        this.stops.push(() => w.postMessage({ type: 'stop' }));
        runs.push(
          new Promise((resolve, reject) => {
            w.on('message', (m: { type: string; stats: GenStats; truth: Truth }) => {
              if (m.type === 'progress') this.latest[i] = m.stats;
              else if (m.type === 'done') {
                this.latest[i] = m.stats;
                resolve({ stats: m.stats, truth: m.truth });
                void w.terminate();
              }
            });
            w.on('error', reject);
            w.on('exit', (code) => reject(new Error(`generator worker ${i} exited with code ${code} before finishing`)));
          }),
        );
      }
    }
    this.done = Promise.all(runs).then((parts) => {
      const stats = parts.map((p) => p.stats).reduce(addStats, emptyStats());
      const maxLag = Math.max(...parts.map((p) => p.stats.max_lag_ms));
      const fellBehind = maxLag > 1000 || stats.generated_spans < 0.97 * stats.target_spans;
      return { stats, perWorker: parts.map((p) => p.stats), truth: mergeTruth(parts.map((p) => p.truth)), workers: this.workers, fellBehind };
    });
    return this.done;
  }

  /** Latest merged progress. */
  progress(): GenStats {
    return this.latest.reduce(addStats, emptyStats());
  }

  stop(): void {
    for (const s of this.stops) s();
  }
}
