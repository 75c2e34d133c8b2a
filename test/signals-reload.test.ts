/**
 * Pipelines per signal through the service's lifecycle: a reload that adds a
 * logs pipeline restarts the receiver with the new path served, a reload that
 * changes only the logs chain rebuilds it while the receiver keeps its
 * listener, and nothing accepted is lost across either.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Service, type ServiceConfig } from '../collector/service.js';
import { loadConfigText } from '../config/load.js';
import { silentLogger } from '../collector/telemetry/logger.js';
import { Telemetry } from '../collector/telemetry/metrics.js';
import { systemClock } from '../collector/component.js';
import type { OtlpReceiver } from '../receivers/otlp/receiver.js';
import { logsRequest } from './signals.js';

let dir: string;
beforeAll(() => {
  dir = mkdtempSync(path.join(os.tmpdir(), 'signals-reload-'));
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function config(logsPipeline: string, batchTimeout = '10ms'): ServiceConfig {
  const text = `
receivers:
  otlp:
    protocols:
      http: { endpoint: "127.0.0.1:0" }
processors:
  batch: { timeout: ${batchTimeout} }
exporters:
  file: { path: ${path.join(dir, 'all.jsonl')} }
service:
  pipelines:
    traces: { receivers: [otlp], processors: [batch], exporters: [file] }
${logsPipeline}`;
  return loadConfigText(text, 'reload.yaml') as unknown as ServiceConfig;
}

const LOGS = '    logs: { receivers: [otlp], processors: [batch], exporters: [file] }\n';

describe('reload with pipelines per signal', () => {
  it('adds a logs pipeline, then rebuilds its chain, serving logs throughout without loss', async () => {
    const svc = new Service(config(''), silentLogger(), new Telemetry(), systemClock);
    await svc.start();
    try {
      const post = (body: Uint8Array) => {
        const port = (svc.component('otlp') as OtlpReceiver).httpPort;
        return fetch(`http://127.0.0.1:${port}/v1/logs`, { method: 'POST', headers: { 'content-type': 'application/x-protobuf' }, body }).then((r) => r.status);
      };
      expect(await post(logsRequest([{ body: { stringValue: 'refused' } }]))).toBe(404);

      const r1 = await svc.reload(config(LOGS));
      expect(r1.receiversReplaced).toEqual(['otlp']); // it now feeds a logs pipeline too
      expect(await post(logsRequest([{ body: { stringValue: 'one' } }]))).toBe(200);

      const r2 = await svc.reload(config(LOGS, '20ms'));
      expect(r2.chainRebuilt).toBe(true);
      expect(r2.receiversReplaced).toEqual([]); // same receiver, same listener
      expect(await post(logsRequest([{ body: { stringValue: 'two' } }]))).toBe(200);
    } finally {
      await svc.shutdown();
    }
    await new Promise((r) => setTimeout(r, 50)); // the old chain drained in the background
    const text = readFileSync(path.join(dir, 'all.jsonl'), 'utf8');
    expect(text).toContain('"one"');
    expect(text).toContain('"two"');
    expect(text).not.toContain('"refused"');
  });
});
