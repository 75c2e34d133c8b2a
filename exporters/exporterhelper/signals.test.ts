/**
 * One exporter id for several signals: a queue, retries and metrics per
 * signal, so a backend refusing logs holds back neither traces nor metrics,
 * and each signal goes to its own endpoint; with a disk queue each signal has
 * its own file.
 */
import { afterEach, describe, expect, it } from 'vitest';
import fs from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { createOtlpHttpSignalExporter } from '../otlphttp/exporter.js';
import { OtlpHttpExporterConfigSchema } from '../otlphttp/config.js';
import { FakeTimers } from './testing.js';
import { FakeClock } from '../../collector/consumertest.js';
import { Telemetry } from '../../collector/telemetry/metrics.js';
import { silentLogger } from '../../collector/telemetry/logger.js';
import { withDefaults } from '../../config/defaults.js';
import { makeSpans, traceIdHex, spanIdHex } from '../../test/otlp.js';
import { scanLogsRequest } from '../../collector/pdata/logs.js';
import { scanMetricsRequest } from '../../collector/pdata/metrics.js';
import { logsRequest, metricsRequest } from '../../test/signals.js';
import type { SignalExporters } from './signals.js';

const cleanup: Array<() => Promise<void> | void> = [];
afterEach(async () => {
  for (const f of cleanup.splice(0).reverse()) await f();
});

/** A backend answering 503 on /v1/logs and 200 elsewhere, counting requests by path. */
async function backend(): Promise<{ url: string; hits: Map<string, number> }> {
  const hits = new Map<string, number>();
  const server = http.createServer((req, res) => {
    req.resume();
    req.on('end', () => {
      hits.set(req.url!, (hits.get(req.url!) ?? 0) + 1);
      res.statusCode = req.url === '/v1/logs' ? 503 : 200;
      res.end();
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  cleanup.push(() => new Promise<void>((r) => server.close(() => r())));
  return { url: `http://127.0.0.1:${(server.address() as { port: number }).port}`, hits };
}

async function exporter(cfg: Record<string, unknown>, telemetry: Telemetry): Promise<SignalExporters> {
  const clock = new FakeClock();
  const config = withDefaults(OtlpHttpExporterConfigSchema, cfg);
  const exp = createOtlpHttpSignalExporter({ id: 'otlphttp', logger: silentLogger(), telemetry, clock }, config, { timers: new FakeTimers(clock), random: () => 0.5 });
  await exp.start();
  cleanup.push(() => exp.shutdown(0));
  return exp;
}

describe('one exporter, a queue per signal', () => {
  it('a backend refusing logs holds back neither traces nor metrics; each signal has its own path and counters', async () => {
    const b = await backend();
    const telemetry = new Telemetry();
    const exp = await exporter({ endpoint: b.url, compression: 'none' }, telemetry);
    const t = traceIdHex();
    await exp.consume(makeSpans([{ traceId: t, spanId: spanIdHex() }, { traceId: t, spanId: spanIdHex() }]));
    await exp.consumeLogs(scanLogsRequest(logsRequest([{}, {}, {}])).items);
    await exp.consumeMetrics(scanMetricsRequest(metricsRequest('a', 2)).items);
    const until = Date.now() + 5000;
    while ((await telemetry.total('otelcol_exporter_sent_metric_points_total')) < 6 && Date.now() < until) await new Promise((r) => setTimeout(r, 10));
    expect(await telemetry.total('otelcol_exporter_sent_spans_total')).toBe(2);
    expect(await telemetry.total('otelcol_exporter_sent_metric_points_total')).toBe(6);
    expect(await telemetry.total('otelcol_exporter_sent_log_records_total')).toBe(0);
    expect(b.hits.get('/v1/logs')).toBeGreaterThanOrEqual(1); // tried, refused, waiting for its retry
    expect(await telemetry.total('otelcol_exporter_queue_size', { data_type: 'traces' })).toBe(0);
    expect(await telemetry.total('otelcol_exporter_send_failed_log_records_total')).toBe(0); // held for its retry, not dropped
    expect(b.hits.get('/v1/traces')).toBe(1);
    expect(b.hits.get('/v1/metrics')).toBe(1);
  });

  it('with a disk queue, each signal has its own file', async () => {
    const b = await backend();
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'signal-queue-'));
    cleanup.push(() => fs.rmSync(dir, { recursive: true, force: true }));
    const exp = await exporter({ endpoint: b.url, sending_queue: { storage: 'disk', directory: dir } }, new Telemetry());
    await exp.consumeLogs(scanLogsRequest(logsRequest([{}])).items);
    await exp.consumeMetrics(scanMetricsRequest(metricsRequest()).items);
    expect(fs.readdirSync(dir).filter((f) => f.endsWith('.sqlite')).sort()).toEqual([
      'queue-otlphttp.logs.sqlite',
      'queue-otlphttp.metrics.sqlite',
      'queue-otlphttp.sqlite',
    ]);
  });
});
