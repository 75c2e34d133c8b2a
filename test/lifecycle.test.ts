/** The collector as a process: start, SIGTERM with the accept delay, drain, exit 0. */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import * as grpc from '@grpc/grpc-js';
import { OtlpTestBackend } from '../loadtest/sink/backend.js';
import { requestBytes } from './otlp.js';
import { freePort, startChild, waitReady, type Child } from './child.js';

let backend: OtlpTestBackend;
let tmp: string;
beforeAll(async () => {
  backend = new OtlpTestBackend();
  await backend.start();
  tmp = mkdtempSync(path.join(os.tmpdir(), 'lifecycle-'));
});
afterAll(async () => {
  await backend.close();
  rmSync(tmp, { recursive: true, force: true });
});

async function configFile(delay: string): Promise<{ file: string; grpcPort: number; metricsPort: number }> {
  const grpcPort = await freePort();
  const metricsPort = await freePort();
  const file = path.join(tmp, `config-${grpcPort}.yaml`);
  writeFileSync(
    file,
    `receivers:
  otlp:
    protocols:
      grpc: { endpoint: "127.0.0.1:${grpcPort}" }
processors:
  batch: { timeout: 2s }
exporters:
  otlp:
    endpoint: ${backend.grpcEndpoint}
    tls: { insecure: true }
service:
  shutdown_delay: ${delay}
  telemetry:
    logs: { level: warn }
    metrics: { address: "127.0.0.1:${metricsPort}" }
  pipelines:
    traces: { receivers: [otlp], processors: [batch], exporters: [otlp] }
`,
  );
  return { file, grpcPort, metricsPort };
}

function sendBatch(client: grpc.Client, n: number, base: number): Promise<grpc.ServiceError | null> {
  const spans = Array.from({ length: n }, (_, i) => ({
    traceId: (base + i).toString(16).padStart(32, 'a'),
    spanId: (base + i).toString(16).padStart(16, 'b'),
  }));
  const id = (b: Buffer) => b;
  return new Promise((resolve) =>
    client.makeUnaryRequest('/opentelemetry.proto.collector.trace.v1.TraceService/Export', id, id, Buffer.from(requestBytes(spans)), (err) => resolve(err)),
  );
}

describe('process lifecycle', () => {
  let child: Child | undefined;
  afterAll(() => child?.proc.kill('SIGKILL'));

  it('delivers spans accepted just before SIGTERM, keeps accepting during the delay, and exits 0', async () => {
    backend.reset();
    const { file, grpcPort, metricsPort } = await configFile('1s');
    child = startChild(['--config', file]);
    const readyMs = await waitReady(metricsPort, child);
    expect(readyMs).toBeGreaterThan(0);
    const client = new grpc.Client(`127.0.0.1:${grpcPort}`, grpc.credentials.createInsecure());
    // Held by the batch processor (2 s timeout) when SIGTERM arrives.
    expect(await sendBatch(client, 50, 1)).toBeNull();
    child.proc.kill('SIGTERM');
    await new Promise((r) => setTimeout(r, 200));
    // Readiness drops at once, but the receiver still takes spans during the delay.
    expect((await fetch(`http://127.0.0.1:${metricsPort}/readyz`)).status).toBe(503);
    expect(await sendBatch(client, 25, 1000)).toBeNull();
    client.close();
    expect(await child.exited).toBe(0);
    expect(backend.stats.acceptedSpans).toBe(75);
    expect(backend.spanKeys.size).toBe(75);
  });

  it('refuses to start on a bad config with the line and key, exit 1', async () => {
    const bad = path.join(tmp, 'bad.yaml');
    writeFileSync(bad, 'receivers:\n  otlp:\n    protocls: {}\n');
    const c = startChild(['--config', bad]);
    expect(await c.exited).toBe(1);
    expect(c.output()).toContain(`${bad}:3:5: receivers.otlp.protocls: unknown field "protocls"; did you mean "protocols"?`);
  });

  it('validate exits 0 for a good file and 1 for a bad one', async () => {
    const { file } = await configFile('0s');
    const ok = startChild(['validate', '--config', file]);
    expect(await ok.exited).toBe(0);
    const bad = path.join(tmp, 'bad2.yaml');
    writeFileSync(bad, 'exporters:\n  otlp:\n    endpont: x\n');
    const no = startChild(['validate', '--config', bad]);
    expect(await no.exited).toBe(1);
    expect(no.output()).toContain('did you mean "endpoint"');
  });
});
