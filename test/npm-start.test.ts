/**
 * `npm start` as Docker or a process manager runs it: SIGTERM sent to the npm
 * process must reach the collector, which drains (spans accepted just before
 * are written) and exits 0, and npm with it.
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync, existsSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { ROOT, freePort } from './child.js';

const tmp = mkdtempSync(path.join(os.tmpdir(), 'npm-start-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

function request(n: number) {
  const now = BigInt(Date.now()) * 1_000_000n;
  const spans = Array.from({ length: n }, (_, i) => ({
    traceId: (i + 1).toString(16).padStart(32, 'c'),
    spanId: (i + 1).toString(16).padStart(16, 'd'),
    name: `npm-start-${i}`,
    startTimeUnixNano: String(now - 1_000_000n),
    endTimeUnixNano: String(now),
  }));
  return { resourceSpans: [{ resource: { attributes: [] }, scopeSpans: [{ scope: { name: 't' }, spans }] }] };
}

describe('npm start', () => {
  it('passes SIGTERM to the collector, which drains and exits 0', async () => {
    const httpPort = await freePort();
    const metricsPort = await freePort();
    const out = path.join(tmp, 'traces.jsonl');
    const cfg = path.join(tmp, 'config.yaml');
    writeFileSync(
      cfg,
      `receivers:
  otlp:
    protocols:
      http: { endpoint: "127.0.0.1:${httpPort}" }
processors:
  batch: { timeout: 60s }
exporters:
  file: { path: ${JSON.stringify(out)} }
service:
  shutdown_delay: 0s
  telemetry:
    logs: { level: warn }
    metrics: { address: "127.0.0.1:${metricsPort}" }
  pipelines:
    traces: { receivers: [otlp], processors: [batch], exporters: [file] }
`,
    );
    const npm = spawn('npm', ['start', '--silent'], { cwd: ROOT, env: { ...process.env, COLLECTOR_CONFIG: cfg }, stdio: ['ignore', 'pipe', 'pipe'], detached: true });
    let log = '';
    npm.stdout!.on('data', (d) => (log += d));
    npm.stderr!.on('data', (d) => (log += d));
    const exited = new Promise<number | null>((resolve) => npm.on('exit', (code) => resolve(code)));
    try {
      const t0 = Date.now();
      for (;;) {
        if (npm.exitCode !== null) throw new Error(`npm start exited early (${npm.exitCode}):\n${log}`);
        const ok = await fetch(`http://127.0.0.1:${metricsPort}/readyz`).then((r) => r.status === 200, () => false);
        if (ok) break;
        if (Date.now() - t0 > 20_000) throw new Error(`not ready:\n${log}`);
        await new Promise((r) => setTimeout(r, 20));
      }
      const res = await fetch(`http://127.0.0.1:${httpPort}/v1/traces`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify(request(20)),
      });
      expect(res.status).toBe(200);
      // The batch processor holds the spans (60 s timeout): only the drain writes them.
      expect(existsSync(out) ? readFileSync(out, 'utf8') : '').toBe('');
      npm.kill('SIGTERM');
      const timeout = new Promise<'timeout'>((r) => setTimeout(() => r('timeout'), 15_000).unref());
      expect(await Promise.race([exited, timeout]), log).toBe(0);
      const names = readFileSync(out, 'utf8')
        .trim()
        .split('\n')
        .flatMap((l) => (JSON.parse(l) as ReturnType<typeof request>).resourceSpans.flatMap((r) => r.scopeSpans.flatMap((s) => s.spans.map((x) => x.name))));
      expect(names.sort()).toEqual(request(20).resourceSpans[0].scopeSpans[0].spans.map((x) => x.name).sort());
      // The collector is gone with npm: its port is free.
      expect(await fetch(`http://127.0.0.1:${metricsPort}/healthz`).then(() => 'up', () => 'down')).toBe('down');
    } finally {
      // Its own process group (detached): nothing it started outlives a failed run.
      try {
        process.kill(-npm.pid!, 'SIGKILL');
      } catch {
        /* already gone */
      }
    }
  });
});
