/**
 * Logs follow their trace's sampling decision through the whole collector:
 * one tail_sampling id listed in a traces and a logs pipeline is one
 * processor; exactly the log records of kept traces reach the file, stamped,
 * none of dropped traces, none twice, and records without a trace id pass.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdtempSync, readFileSync, rmSync, existsSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Collector } from '../collector/collector.js';
import { loadConfigText } from '../config/load.js';
import { silentLogger } from '../collector/telemetry/logger.js';
import type { OtlpReceiver } from '../receivers/otlp/receiver.js';
import { requestBytes } from './otlp.js';
import { logsRequest } from './signals.js';

let tmp: string;
beforeAll(() => {
  tmp = mkdtempSync(path.join(os.tmpdir(), 'logs-sampling-'));
});
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

const hex = (n: number, len: number) => n.toString(16).padStart(len, '0');

describe('logs with tail sampling, end to end', () => {
  it('exactly the logs of kept traces arrive, stamped; none of dropped traces; none twice', async () => {
    const traces = path.join(tmp, 'traces.jsonl');
    const logs = path.join(tmp, 'logs.jsonl');
    const yaml = `
receivers:
  otlp:
    protocols:
      http: { endpoint: "127.0.0.1:0" }
processors:
  tail_sampling:
    decision_wait: 300ms
    tick_interval: 20ms
    decision_cache: { sampled_cache_size: 1000, non_sampled_cache_size: 1000 }
    policies: [{ name: errors, type: status_code, status_code: { status_codes: [ERROR] } }]
  batch: { timeout: 20ms }
exporters:
  file/traces: { path: ${traces} }
  file/logs: { path: ${logs} }
service:
  config_watch: false
  shutdown_delay: 0s
  telemetry:
    metrics: { address: "127.0.0.1:0" }
  pipelines:
    traces:
      receivers: [otlp]
      processors: [tail_sampling, batch]
      exporters: [file/traces]
    logs:
      receivers: [otlp]
      processors: [tail_sampling, batch]
      exporters: [file/logs]
`;
    const c = new Collector(loadConfigText(yaml, 'e2e.yaml'), { logger: silentLogger(), processMetrics: false });
    await c.start();
    const r = c.service.component('otlp') as OtlpReceiver;
    const post = (p: string, body: Uint8Array) =>
      fetch(`http://127.0.0.1:${r.httpPort}${p}`, { method: 'POST', headers: { 'content-type': 'application/x-protobuf' }, body }).then((x) => x.status);
    const ids = Array.from({ length: 20 }, (_, i) => 'f' + hex(i + 1, 31));
    const kept = ids.filter((_, i) => i % 4 === 0);
    // Spans: every 4th trace has an error (kept); logs: two per trace, one before and one after its spans, plus free ones.
    const logSpecs = (when: string) => ids.map((id) => ({ traceId: id, body: { stringValue: `${when} ${id}` } }));
    expect(await post('/v1/logs', logsRequest(logSpecs('before')))).toBe(200);
    const spanSpecs = ids.map((id, i) => ({ traceId: id, spanId: hex(i + 1, 16), status: i % 4 === 0 ? 2 : 0 }));
    expect(await post('/v1/traces', requestBytes(spanSpecs))).toBe(200);
    expect(await post('/v1/logs', logsRequest([...logSpecs('with'), { body: { stringValue: 'free' } }]))).toBe(200);
    // After the decisions: late records follow the cached decision.
    const t0 = Date.now();
    while (Date.now() - t0 < 5000) {
      if (existsSync(logs) && readFileSync(logs, 'utf8').split('\n').filter(Boolean).length > 0 && Date.now() - t0 > 500) break;
      await new Promise((res) => setTimeout(res, 50));
    }
    expect(await post('/v1/logs', logsRequest(logSpecs('late')))).toBe(200);
    await c.shutdown();

    type Rec = { traceId?: string; body?: { stringValue?: string }; attributes?: Array<{ key: string; value: { stringValue?: string } }> };
    const records: Rec[] = [];
    for (const line of readFileSync(logs, 'utf8').split('\n').filter(Boolean)) {
      const o = JSON.parse(line) as { resourceLogs: Array<{ scopeLogs: Array<{ logRecords: Rec[] }> }> };
      for (const rl of o.resourceLogs) for (const sl of rl.scopeLogs) records.push(...sl.logRecords);
    }
    const got = records.map((x) => x.body?.stringValue ?? '').sort();
    const want = ['free', ...kept.flatMap((id) => [`before ${id}`, `with ${id}`, `late ${id}`])].sort();
    expect(got).toEqual(want); // exactly these: none of dropped traces, none twice
    for (const rec of records.filter((x) => x.traceId !== undefined)) {
      expect(rec.attributes?.find((a) => a.key === 'tailsampling.policy')?.value.stringValue).toBe('errors');
    }
    const spanLines = readFileSync(traces, 'utf8').split('\n').filter(Boolean);
    const spanTraces = new Set(spanLines.flatMap((l) => [...l.matchAll(/"traceId":"([0-9a-f]{32})"/g)].map((m) => m[1])));
    expect([...spanTraces].sort()).toEqual([...kept].sort());
  });
});
