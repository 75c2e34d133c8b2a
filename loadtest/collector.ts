/**
 * The collector under test as a child process: writes its config, starts it
 * (the sidecar through node, or a peer Collector binary), waits until it is
 * ready, samples its CPU and RSS from /proc, scrapes /metrics, and stops it
 * with SIGTERM (SIGKILL after a bounded wait).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import path from 'node:path';
import YAML from 'yaml';
import { Metrics } from './prom.js';
import { ProcSampler } from './proc.js';

/**
 * The node flags `npm start` and the image's entrypoint run the collector with
 * (BENCHMARKS.md and ARCHITECTURE.md say why); test/launch-flags.test.ts
 * checks that package.json and the Dockerfile agree.
 */
export const SIDECAR_NODE_FLAGS: readonly string[] = ['--max-semi-space-size=2', '--single-threaded-gc'];

/** Extra node flags for the collector only, e.g. LOADTEST_COLLECTOR_NODE_FLAGS="--cpu-prof --cpu-prof-dir=/tmp/prof". */
export function extraNodeFlags(): string[] {
  return (process.env.LOADTEST_COLLECTOR_NODE_FLAGS ?? '').split(/\s+/).filter(Boolean);
}

export class CollectorStartError extends Error {
  constructor(
    message: string,
    /** 'unknown_component' when the collector does not know a configured component type. */
    readonly kind: 'unknown_component' | 'exited' | 'timeout',
    readonly output: string,
  ) {
    super(message);
    this.name = 'CollectorStartError';
  }
}

/** A free TCP port on 127.0.0.1 (bound and released; fine for a local harness). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.unref();
    srv.on('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const port = (srv.address() as net.AddressInfo).port;
      srv.close(() => resolve(port));
    });
  });
}

export function httpGet(url: string, timeoutMs = 2000): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = http.get(url, { timeout: timeoutMs }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString('utf8') }));
      res.on('error', reject);
    });
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.on('error', reject);
  });
}

function tcpOpen(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = net.connect({ host: '127.0.0.1', port }, () => {
      s.destroy();
      resolve(true);
    });
    s.on('error', () => resolve(false));
    s.setTimeout(500, () => {
      s.destroy();
      resolve(false);
    });
  });
}

export interface CollectorProcessOptions {
  /** 'sidecar' runs `node dist/collector/sidecar.mjs`; 'peer' runs the given binary. */
  kind: 'sidecar' | 'peer';
  /** Path to dist/collector/sidecar.mjs (sidecar) or the otelcol binary (peer). */
  bin: string;
  config: Record<string, unknown>;
  workDir: string;
  metricsPort: number;
  grpcPort: number;
  memoryLimitMiB?: number;
  /** Time origin for the samples (ms epoch). */
  t0: number;
  readyTimeoutMs?: number;
}

export class CollectorProcess {
  child: ChildProcess | undefined;
  sampler: ProcSampler | undefined;
  output = '';
  exitCode: number | null | undefined;
  exitSignal: NodeJS.Signals | null | undefined;
  private exited: Promise<void> | undefined;
  readonly configPath: string;

  constructor(readonly opts: CollectorProcessOptions) {
    this.configPath = path.join(opts.workDir, `${opts.kind}-config.yaml`);
  }

  get pid(): number | undefined {
    return this.child?.pid;
  }

  async start(): Promise<void> {
    const o = this.opts;
    fs.mkdirSync(o.workDir, { recursive: true });
    fs.writeFileSync(this.configPath, YAML.stringify(o.config));
    let cmd: string;
    let args: string[];
    if (o.kind === 'sidecar') {
      cmd = process.execPath;
      args = [...SIDECAR_NODE_FLAGS];
      if (o.memoryLimitMiB !== undefined) args.push(`--max-old-space-size=${Math.max(16, Math.floor(o.memoryLimitMiB * 0.75))}`);
      args.push(...extraNodeFlags(), o.bin, '--config', this.configPath);
    } else {
      cmd = o.bin;
      args = ['--config', this.configPath];
    }
    const env = { ...process.env };
    if (o.kind === 'peer' && o.memoryLimitMiB !== undefined) env.GOMEMLIMIT = `${Math.floor(o.memoryLimitMiB * 0.8)}MiB`;
    const child = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'], env });
    this.child = child;
    const keep = (b: Buffer) => {
      // keep the first and the latest output, bounded
      this.output += b.toString('utf8');
      if (this.output.length > 200_000) this.output = this.output.slice(0, 50_000) + '\n...\n' + this.output.slice(-100_000);
    };
    child.stdout!.on('data', keep);
    child.stderr!.on('data', keep);
    // The whole output to a file as well, e.g. LOADTEST_COLLECTOR_OUTPUT=/tmp/out.log with --trace-gc in LOADTEST_COLLECTOR_NODE_FLAGS.
    const outFile = process.env.LOADTEST_COLLECTOR_OUTPUT;
    if (outFile) {
      const sink = fs.createWriteStream(outFile);
      child.stdout!.pipe(sink, { end: false });
      child.stderr!.pipe(sink, { end: false });
      child.on('exit', () => sink.end());
    }
    this.exited = new Promise((resolve) => {
      child.on('exit', (code, signal) => {
        this.exitCode = code;
        this.exitSignal = signal;
        resolve();
      });
      child.on('error', (e) => {
        this.output += `\nspawn error: ${e.message}`;
        this.exitCode = -1;
        resolve();
      });
    });
    await this.waitReady(o.readyTimeoutMs ?? 20_000);
    this.sampler = new ProcSampler(child.pid!, o.t0);
    this.sampler.start();
  }

  private async waitReady(timeoutMs: number): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (Date.now() < deadline) {
      if (this.exitCode !== undefined) {
        const out = this.output.trim();
        const unknown = /unknown (processor|exporter|receiver|extension|component)( type)?/i.test(out);
        throw new CollectorStartError(
          `collector exited during start (code ${this.exitCode}${this.exitSignal ? `, signal ${this.exitSignal}` : ''}):\n${out.slice(-4000)}`,
          unknown ? 'unknown_component' : 'exited',
          out,
        );
      }
      try {
        if (this.opts.kind === 'sidecar') {
          const r = await httpGet(`http://127.0.0.1:${this.opts.metricsPort}/readyz`, 500);
          if (r.status === 200) return;
        } else {
          const r = await httpGet(`http://127.0.0.1:${this.opts.metricsPort}/metrics`, 500);
          if (r.status === 200 && (await tcpOpen(this.opts.grpcPort))) return;
        }
      } catch {
        // not yet
      }
      await new Promise((r) => setTimeout(r, 100));
    }
    await this.stop(2000);
    throw new CollectorStartError(`collector not ready after ${timeoutMs} ms:\n${this.output.slice(-4000)}`, 'timeout', this.output);
  }

  async scrape(): Promise<Metrics | undefined> {
    try {
      const r = await httpGet(`http://127.0.0.1:${this.opts.metricsPort}/metrics`, 2000);
      return r.status === 200 ? Metrics.parse(r.body) : undefined;
    } catch {
      return undefined;
    }
  }

  /** SIGTERM, then SIGKILL after `graceMs`. Resolves when the process is gone. */
  async stop(graceMs = 15_000): Promise<void> {
    this.sampler?.stop();
    const child = this.child;
    if (!child || this.exitCode !== undefined) return;
    child.kill('SIGTERM');
    const killer = setTimeout(() => {
      this.output += '\n[harness] collector did not exit after SIGTERM; sent SIGKILL';
      child.kill('SIGKILL');
    }, graceMs);
    await this.exited;
    clearTimeout(killer);
  }

  async waitExit(): Promise<void> {
    await this.exited;
  }
}
