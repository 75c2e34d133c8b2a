/** Samples a process's CPU and memory from /proc (Linux), as the Collector's testbed does with its child. */
import fs from 'node:fs';
import { execFileSync } from 'node:child_process';

let clkTck: number | undefined;
function ticksPerSecond(): number {
  if (clkTck === undefined) {
    try {
      clkTck = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100;
    } catch {
      clkTck = 100;
    }
  }
  return clkTck;
}

export interface ProcSample {
  /** ms since the run started. */
  t: number;
  /** CPU % of one core over the last interval. */
  cpu: number;
  /** Resident set size in MiB. */
  rssMiB: number;
}

/** utime+stime in seconds, or undefined when the process is gone. */
export function readCpuSeconds(pid: number): number | undefined {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    // comm may contain spaces: fields after the closing paren
    const rest = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    // rest[0] is field 3 (state); utime is field 14, stime field 15
    return (Number(rest[11]) + Number(rest[12])) / ticksPerSecond();
  } catch {
    return undefined;
  }
}

export function readRssMiB(pid: number): number | undefined {
  try {
    const status = fs.readFileSync(`/proc/${pid}/status`, 'utf8');
    const m = /VmRSS:\s+(\d+)\s+kB/.exec(status);
    return m ? Number(m[1]) / 1024 : undefined;
  } catch {
    return undefined;
  }
}

export function procAvailable(): boolean {
  return fs.existsSync('/proc/self/stat');
}

export class ProcSampler {
  readonly samples: ProcSample[] = [];
  private timer: NodeJS.Timeout | undefined;
  private lastCpu: number | undefined;
  private lastT = 0;

  constructor(
    private readonly pid: number,
    private readonly t0: number,
    private readonly everyMs = 500,
  ) {}

  start(): void {
    this.lastCpu = readCpuSeconds(this.pid);
    this.lastT = performance.now();
    this.timer = setInterval(() => this.sample(), this.everyMs);
    this.timer.unref();
  }

  private sample(): void {
    const cpu = readCpuSeconds(this.pid);
    const rss = readRssMiB(this.pid);
    const now = performance.now();
    if (cpu === undefined || rss === undefined || this.lastCpu === undefined) return;
    const dt = (now - this.lastT) / 1000;
    this.samples.push({ t: Date.now() - this.t0, cpu: dt > 0 ? ((cpu - this.lastCpu) / dt) * 100 : 0, rssMiB: rss });
    this.lastCpu = cpu;
    this.lastT = now;
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
  }
}
