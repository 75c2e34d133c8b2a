/**
 * End to end with real OpenTelemetry JS SDK clients: spans sent through each
 * receiver protocol and out through each exporter arrive with every field
 * intact (compared with the bytes the SDK itself encodes).
 */
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { mkdtempSync, readFileSync, rmSync, existsSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Collector } from '../collector/collector.js';
import { loadConfigText } from '../config/load.js';
import { silentLogger } from '../collector/telemetry/logger.js';
import type { OtlpReceiver } from '../receivers/otlp/receiver.js';
import { OtlpTestBackend } from '../loadtest/sink/backend.js';
import { sdkClient, sdkExporter, emitRichTrace, type SdkProtocol } from './sdk.js';
import { canonicalSpans } from './canonical.js';

let backend: OtlpTestBackend;
let tmp: string;
const collectors: Collector[] = [];

beforeAll(async () => {
  backend = new OtlpTestBackend({ keepBodies: true });
  await backend.start();
  tmp = mkdtempSync(path.join(os.tmpdir(), 'e2e-'));
});
afterEach(async () => {
  await Promise.all(collectors.splice(0).map((c) => c.shutdown()));
  backend.reset();
});
afterAll(async () => {
  await backend.close();
  rmSync(tmp, { recursive: true, force: true });
});

type ExporterKind = 'otlp' | 'otlphttp/proto' | 'otlphttp/json' | 'file';

function exporterYaml(kind: ExporterKind, file: string): string {
  switch (kind) {
    case 'otlp':
      return `otlp:\n    endpoint: ${backend.grpcEndpoint}\n    tls: { insecure: true }`;
    case 'otlphttp/proto':
      return `otlphttp:\n    endpoint: ${backend.httpEndpoint}\n    encoding: proto`;
    case 'otlphttp/json':
      return `otlphttp:\n    endpoint: ${backend.httpEndpoint}\n    encoding: json`;
    case 'file':
      return `file:\n    path: ${file}`;
  }
}

async function startCollector(exporter: ExporterKind, file: string): Promise<Collector> {
  const yaml = `
receivers:
  otlp:
    protocols:
      grpc: { endpoint: "127.0.0.1:0" }
      http: { endpoint: "127.0.0.1:0" }
exporters:
  ${exporterYaml(exporter, file)}
service:
  config_watch: false
  telemetry:
    metrics: { address: "127.0.0.1:0" }
  pipelines:
    traces:
      receivers: [otlp]
      exporters: [${exporter.split('/')[0]}]
`;
  const c = new Collector(loadConfigText(yaml, 'e2e.yaml'), { logger: silentLogger(), processMetrics: false });
  collectors.push(c);
  await c.start();
  return c;
}

async function waitFor(cond: () => boolean, what: string, timeoutMs = 10_000): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

const cases: Array<[SdkProtocol, ExporterKind]> = [
  ['grpc', 'otlp'],
  ['http/protobuf', 'otlp'],
  ['http/json', 'otlp'],
  ['grpc', 'otlphttp/proto'],
  ['grpc', 'otlphttp/json'],
  ['http/protobuf', 'file'],
];

describe('SDK -> collector -> backend keeps every field', () => {
  it.each(cases)('%s receiver -> %s exporter', async (protocol, exporter) => {
    const file = path.join(tmp, `${protocol.replace('/', '-')}-${exporter.replace('/', '-')}.jsonl`);
    const c = await startCollector(exporter, file);
    const r = c.service.component('otlp') as OtlpReceiver;
    const client = sdkClient(sdkExporter(protocol, r.grpcPort, r.httpPort));
    for (let i = 0; i < 3; i++) emitRichTrace(client.provider, i);
    await client.provider.forceFlush();
    const expected = canonicalSpans([{ body: client.expectedBytes() }]);
    expect(expected.size).toBe(6);

    let got: Map<string, string>;
    if (exporter === 'file') {
      await c.shutdown(); // flushes the file
      expect(existsSync(file)).toBe(true);
      const lines = readFileSync(file, 'utf8').trim().split('\n');
      got = canonicalSpans(lines.map((l) => ({ body: Buffer.from(l), encoding: 'json' as const })));
    } else {
      await backend.waitForSpans(6);
      got = canonicalSpans(backend.received.map((q) => ({ body: q.body!, encoding: q.encoding })));
      const want = exporter === 'otlphttp/json' ? 'json' : 'proto';
      expect(backend.received.every((q) => q.encoding === want)).toBe(true);
    }
    expect([...got.keys()].sort()).toEqual([...expected.keys()].sort());
    for (const [id, span] of expected) expect(got.get(id), `span ${id}`).toBe(span);
    // The trace state, link, event and error status made it (not just "something equal").
    const root = [...got.values()].find((s) => s.includes('"GET /orders/0"'))!;
    expect(root).toContain('vendor=abc');
    expect(root).toContain('upstream failed');
    expect(root).toContain('"exception"');
    expect(root).toContain('"link.kind"');
    await client.provider.shutdown();
  });
});

describe('metrics after traffic', () => {
  it('counts accepted and exported spans on /metrics', async () => {
    const c = await startCollector('otlp', '');
    const r = c.service.component('otlp') as OtlpReceiver;
    const client = sdkClient(sdkExporter('grpc', r.grpcPort, r.httpPort));
    for (let i = 0; i < 5; i++) emitRichTrace(client.provider, 100 + i);
    await client.provider.forceFlush();
    await backend.waitForSpans(10);
    await waitFor(() => backend.stats.acceptedSpans >= 10, 'spans at the backend');
    const text = await (await fetch(`http://127.0.0.1:${c.telemetryServer.port}/metrics`)).text();
    expect(text).toMatch(/otelcol_receiver_accepted_spans_total\{receiver="otlp",transport="grpc"\} 10/);
    expect(text).toMatch(/otelcol_exporter_sent_spans_total\{exporter="otlp"\} 10/);
    expect((await fetch(`http://127.0.0.1:${c.telemetryServer.port}/readyz`)).status).toBe(200);
    await client.provider.shutdown();
  });
});
