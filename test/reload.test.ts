/**
 * Live reload of a ConfigMap-style mount: the config file is a symlink through
 * `..data`, which is swapped atomically as the kubelet does. Traffic flows
 * throughout; nothing accepted is lost, the new pipeline applies, and an
 * invalid update leaves the old config running with the failure counted.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdtempSync, mkdirSync, renameSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import * as grpc from '@grpc/grpc-js';
import { Collector } from '../collector/collector.js';
import { loadConfigFile, loadConfigText } from '../config/load.js';
import { silentLogger } from '../collector/telemetry/logger.js';
import { OtlpTestBackend } from '../loadtest/sink/backend.js';
import { requestBytes } from './otlp.js';
import { freePort } from './child.js';

let backendA: OtlpTestBackend;
let backendB: OtlpTestBackend;
let dir: string;
let collector: Collector;

function configText(grpcPort: number, backend: OtlpTestBackend, extra = ''): string {
  return `receivers:
  otlp:
    protocols:
      grpc: { endpoint: "127.0.0.1:${grpcPort}" }
processors:
  batch: { timeout: 50ms }
exporters:
  otlp:
    endpoint: ${backend.grpcEndpoint}
    tls: { insecure: true }
service:
  ${extra}telemetry:
    metrics: { address: "127.0.0.1:0" }
  pipelines:
    traces: { receivers: [otlp], processors: [batch], exporters: [otlp] }
`;
}

let version = 0;
/** Writes a new `..<ts>` dir, points a temp symlink at it, renames it over `..data`: the kubelet's atomic writer. */
function kubeletWrite(text: string): void {
  const ts = `..2026_11_24_00_00_${String(++version).padStart(2, '0')}.${process.pid}`;
  mkdirSync(path.join(dir, ts));
  writeFileSync(path.join(dir, ts, 'config.yaml'), text);
  symlinkSync(ts, path.join(dir, '..data_tmp'));
  renameSync(path.join(dir, '..data_tmp'), path.join(dir, '..data'));
}

beforeAll(async () => {
  backendA = new OtlpTestBackend();
  backendB = new OtlpTestBackend();
  await backendA.start();
  await backendB.start();
  dir = mkdtempSync(path.join(os.tmpdir(), 'configmap-'));
});
afterAll(async () => {
  await collector?.shutdown();
  await backendA.close();
  await backendB.close();
  rmSync(dir, { recursive: true, force: true });
});

async function until(cond: () => boolean | Promise<boolean>, what: string, timeoutMs = 10_000): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!(await cond())) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

describe('config reload through a ConfigMap symlink swap', () => {
  it('applies a new pipeline without losing spans, and keeps the old config on an invalid update', async () => {
    const grpcPort = await freePort();
    kubeletWrite(configText(grpcPort, backendA));
    symlinkSync(path.join('..data', 'config.yaml'), path.join(dir, 'config.yaml'));
    const file = path.join(dir, 'config.yaml');
    collector = new Collector(loadConfigFile(file), { logger: silentLogger(), processMetrics: false });
    await collector.start();
    const firstHash = collector.config.hash;

    const client = new grpc.Client(`127.0.0.1:${grpcPort}`, grpc.credentials.createInsecure());
    const id = (b: Buffer) => b;
    let sent = 0;
    let refused = 0;
    let stop = false;
    // Steady traffic during the whole test; every request must be accepted (same listener throughout).
    const traffic = (async () => {
      for (let i = 0; i < 2000 && !stop; i++) {
        const body = Buffer.from(requestBytes([{ traceId: (i + 1).toString(16).padStart(32, 'a'), spanId: (i + 1).toString(16).padStart(16, 'b') }]));
        const err = await new Promise<grpc.ServiceError | null>((r) =>
          client.makeUnaryRequest('/opentelemetry.proto.collector.trace.v1.TraceService/Export', id, id, body, (e) => r(e)),
        );
        if (err) refused++;
        else sent++;
        await new Promise((r) => setTimeout(r, 2));
      }
    })();

    await until(() => backendA.stats.acceptedSpans > 20, 'spans at backend A');
    // Swap in a config that exports to backend B.
    const swapAt = performance.now();
    kubeletWrite(configText(grpcPort, backendB));
    await until(() => collector.config.hash !== firstHash, 'the reload');
    // Swap to live: the watcher's 250 ms debounce plus building the new chain (BENCHMARKS.md).
    console.log(`reload: symlink swap to new config live in ${Math.round(performance.now() - swapAt)} ms`);
    await until(() => backendB.stats.acceptedSpans > 20, 'spans at backend B');
    const reloadedHash = collector.config.hash;

    // An invalid update: the old config keeps running and the failure is counted.
    kubeletWrite(configText(grpcPort, backendB).replace('batch: { timeout: 50ms }', 'batch: { timeot: 50ms }'));
    await until(async () => (await collector.telemetry.total('sidecar_config_reload_failures_total')) === 1, 'the counted failure');
    expect(collector.config.hash).toBe(reloadedHash);
    const before = backendB.stats.acceptedSpans;
    await until(() => backendB.stats.acceptedSpans > before + 10, 'traffic still flowing after the invalid update');

    stop = true;
    await traffic;
    client.close();
    await collector.shutdown();
    expect(refused).toBe(0);
    // Every accepted span reached one of the two backends, exactly once.
    expect(backendA.stats.acceptedSpans + backendB.stats.acceptedSpans).toBe(sent);
    expect(await collector.telemetry.total('sidecar_config_reloads_total')).toBe(1);
  });
});

describe('live policy change', () => {
  it('applies new tail_sampling policies to traces already buffered, without rebuilding the pipeline', async () => {
    const backend = new OtlpTestBackend();
    await backend.start();
    const text = (policy: string) => `receivers:
  otlp:
    protocols:
      grpc: { endpoint: "127.0.0.1:0" }
processors:
  tail_sampling:
    decision_wait: 1s
    tick_interval: 50ms
    policies: [${policy}]
exporters:
  otlp: { endpoint: "${backend.grpcEndpoint}", tls: { insecure: true } }
service:
  config_watch: false
  telemetry: { metrics: { address: "127.0.0.1:0" } }
  pipelines:
    traces: { receivers: [otlp], processors: [tail_sampling], exporters: [otlp] }
`;
    const c = new Collector(loadConfigText(text('{ name: errors, type: status_code, status_code: { status_codes: [ERROR] } }'), 'a.yaml'), {
      logger: silentLogger(),
      processMetrics: false,
    });
    await c.start();
    const before = c.service.component('tail_sampling');
    const r = c.service.component('otlp') as unknown as { grpcPort: number };
    const client = new grpc.Client(`127.0.0.1:${r.grpcPort}`, grpc.credentials.createInsecure());
    const id = (b: Buffer) => b;
    // A slow trace with no error: the running (errors) policy would drop it.
    const body = Buffer.from(requestBytes([{ traceId: 'f'.repeat(31) + '1', spanId: 'e'.repeat(15) + '1', durationMs: 1500 }]));
    await new Promise<void>((res, rej) =>
      client.makeUnaryRequest('/opentelemetry.proto.collector.trace.v1.TraceService/Export', id, id, body, (e) => (e ? rej(e) : res())),
    );
    const result = (await c.reload(loadConfigText(text('{ name: slow, type: latency, latency: { threshold_ms: 1000 } }'), 'b.yaml'))) as {
      chainRebuilt: boolean;
      reconfigured: string[];
    };
    expect(result.chainRebuilt).toBe(false);
    expect(result.reconfigured).toEqual(['tail_sampling']);
    expect(c.service.component('tail_sampling')).toBe(before);
    await backend.waitForSpans(1, 5000);
    client.close();
    await c.shutdown();
    await backend.close();
  });
});
