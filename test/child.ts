/** Runs the built collector as a child process, as Kubernetes would. */
import { spawn, type ChildProcess } from 'node:child_process';
import net from 'node:net';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
/** The bundle that `npm start` and the image run (built by the vitest global setup). */
export const MAIN = path.join(ROOT, 'dist', 'collector', 'sidecar.mjs');

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const p = (s.address() as net.AddressInfo).port;
      s.close(() => resolve(p));
    });
  });
}

export interface Child {
  proc: ChildProcess;
  output: () => string;
  exited: Promise<number | null>;
}

export function startChild(args: string[], env: Record<string, string> = {}): Child {
  const proc = spawn(process.execPath, [MAIN, ...args], { cwd: ROOT, env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  proc.stdout!.on('data', (d) => (out += d));
  proc.stderr!.on('data', (d) => (out += d));
  const exited = new Promise<number | null>((resolve) => proc.on('exit', (code) => resolve(code)));
  return { proc, output: () => out, exited };
}

export async function waitReady(metricsPort: number, child: Child, timeoutMs = 15_000): Promise<number> {
  const t0 = Date.now();
  while (Date.now() - t0 < timeoutMs) {
    if (child.proc.exitCode !== null) throw new Error(`collector exited early (${child.proc.exitCode}):\n${child.output()}`);
    try {
      const r = await fetch(`http://127.0.0.1:${metricsPort}/readyz`);
      if (r.status === 200) return Date.now() - t0;
    } catch {
      /* not listening yet */
    }
    await new Promise((r) => setTimeout(r, 10));
  }
  throw new Error(`collector not ready after ${timeoutMs} ms:\n${child.output()}`);
}

/** The `service:` section of a test config: one traces pipeline from the otlp receiver, telemetry on `metricsPort`. */
export function serviceYaml(metricsPort: number, processors: string[], exporters: string[], extra: string[] = []): string {
  return [
    'service:',
    '  config_watch: false',
    ...extra.map((l) => `  ${l}`),
    '  telemetry:',
    `    metrics: { address: "127.0.0.1:${metricsPort}" }`,
    '  pipelines:',
    '    traces:',
    '      receivers: [otlp]',
    `      processors: [${processors.join(', ')}]`,
    `      exporters: [${exporters.join(', ')}]`,
    '',
  ].join('\n');
}

/** The `receivers:` section of a test config: the otlp receiver on one protocol. */
export function receiverYaml(protocol: 'grpc' | 'http', port: number): string {
  return ['receivers:', '  otlp:', '    protocols:', `      ${protocol}: { endpoint: "127.0.0.1:${port}" }`, ''].join('\n');
}
