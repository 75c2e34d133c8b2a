/** The summary log line: its interval on a collector that failed to start. */
import net from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import pino from 'pino';
import { Collector } from '../collector.js';
import { loadConfigText } from '../../config/load.js';
import { Telemetry } from './metrics.js';
import { SummaryLogger } from './summary.js';

/** A logger that keeps every JSON line it writes. */
function capturingLogger(lines: Array<Record<string, unknown>>) {
  return pino({ level: 'info' }, { write: (s: string) => void lines.push(JSON.parse(s) as Record<string, unknown>) });
}

describe('summary log line', () => {
  let blocker: net.Server;
  let busyPort = 0;
  beforeAll(async () => {
    blocker = net.createServer();
    await new Promise<void>((r) => blocker.listen(0, '127.0.0.1', r));
    busyPort = (blocker.address() as net.AddressInfo).port;
  });
  afterAll(() => new Promise<void>((r) => blocker.close(() => r())));

  it('reports the time since the collector was created when start-up fails', async () => {
    const yaml = `receivers:
  otlp:
    protocols:
      http: { endpoint: "127.0.0.1:${busyPort}" }
exporters:
  debug: {}
service:
  telemetry:
    metrics: { address: "127.0.0.1:0" }
  pipelines:
    traces: { receivers: [otlp], exporters: [debug] }
`;
    const lines: Array<Record<string, unknown>> = [];
    const c = new Collector(loadConfigText(yaml, 'summary.yaml'), { logger: capturingLogger(lines), processMetrics: false });
    await expect(c.start()).rejects.toThrow();
    await c.shutdown();
    const summaries = lines.filter((l) => l.msg === 'summary');
    expect(summaries.length).toBeGreaterThan(0);
    const last = summaries[summaries.length - 1];
    // Created moments ago: the interval is a few seconds at most (it was the Unix time, ~1.8e9 s).
    expect(last.interval_s).toBeGreaterThanOrEqual(0);
    expect(last.interval_s).toBeLessThan(60);
  });

  it('adds log records and metric data points once any arrived', async () => {
    const t = new Telemetry();
    const lines: Array<Record<string, unknown>> = [];
    const s = new SummaryLogger(t, capturingLogger(lines), 60_000);
    await s.emit();
    expect(lines[0].log_records).toBeUndefined();
    t.counter('otelcol_receiver_accepted_log_records_total', 'x', ['receiver', 'transport']).labels('otlp', 'http').inc(30);
    t.counter('otelcol_exporter_sent_log_records_total', 'x', ['exporter']).labels('file').inc(20);
    t.drop('tail_sampling', 'sampled_out', 10, 'logs');
    await s.emit();
    expect(lines[1].log_records).toMatchObject({ totals: { accepted: 30, exported: 20, dropped: 10 } });
    expect(lines[1].metric_points).toBeUndefined();
  });
});
