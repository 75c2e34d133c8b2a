/**
 * Batch isolation for metrics against a strict backend: it refuses (HTTP 400,
 * INVALID_ARGUMENT) any request holding a metric named "poison". Splitting is
 * by metric (the pipeline's unit), counting is in data points: exactly the
 * marked metric's points are dropped as backend_rejected, and every other
 * metric arrives exactly once, under its own resource, with all its points.
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import fs from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import zlib from 'node:zlib';
import { createOtlpHttpExporter } from '../otlphttp/exporter.js';
import { OtlpHttpExporterConfigSchema } from '../otlphttp/config.js';
import { FakeTimers, waitFor } from './testing.js';
import type { QueuedExporter } from './exporter.js';
import { FakeClock } from '../../collector/consumertest.js';
import { Telemetry } from '../../collector/telemetry/metrics.js';
import { silentLogger } from '../../collector/telemetry/logger.js';
import { jsonToProtobuf } from '../../collector/pdata/otlp-json.js';
import { scanMetricsRequest, splitMetricsExportRequest, type Metric } from '../../collector/pdata/metrics.js';
import { encodeExportRequest } from '../../collector/pdata/encode.js';
import { withDefaults } from '../../config/defaults.js';

const POISON = 'poison';
const T = String(1_700_000_000_000n * 1_000_000n);

/** `n` gauge metrics over two resources; metric i has (i % 4) + 1 points; the given indexes are named "poison" and have `poisonPoints` points. */
function batch(n: number, poisoned: number[], poisonPoints = 5): Metric[] {
  const metric = (i: number) => {
    const bad = poisoned.includes(i);
    const k = bad ? poisonPoints : (i % 4) + 1;
    return {
      name: bad ? POISON : `m-${i}`,
      gauge: { dataPoints: Array.from({ length: k }, (_, j) => ({ timeUnixNano: T, asInt: String(j + 1), attributes: [{ key: 'p', value: { intValue: String(j) } }] })) },
    };
  };
  const half = n >> 1;
  const rm = (service: string, from: number, to: number) => ({
    resource: { attributes: [{ key: 'service.name', value: { stringValue: service } }] },
    scopeMetrics: [{ scope: { name: 'test' }, metrics: Array.from({ length: to - from }, (_, i) => metric(from + i)) }],
  });
  const json = { resourceMetrics: [rm('first', 0, half), rm('second', half, n)] };
  return scanMetricsRequest(jsonToProtobuf(JSON.stringify(json), 'ExportMetricsServiceRequest')).items;
}

function serviceOf(m: Metric): string {
  return m.scope.resource.serviceName();
}

let server: http.Server;
let url: string;
let requests: number;
/** metric name -> [service.name, times received, points] */
let arrived: Map<string, [string, number, number]>;
let exporters: QueuedExporter[] = [];
let tmp: string;

beforeEach(async () => {
  arrived = new Map();
  requests = 0;
  server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      requests++;
      let body: Uint8Array = Buffer.concat(chunks);
      if (req.headers['content-encoding'] === 'gzip') body = zlib.gunzipSync(body);
      const json = (req.headers['content-type'] ?? '').startsWith('application/json');
      let metrics: Metric[];
      try {
        metrics = scanMetricsRequest(json ? jsonToProtobuf(body, 'ExportMetricsServiceRequest') : body).items;
      } catch {
        res.writeHead(400).end();
        return;
      }
      if (metrics.some((m) => m.name === POISON)) {
        res.writeHead(400, { 'content-type': 'application/json' }).end(JSON.stringify({ code: 3, message: 'request holds a marked metric' }));
        return;
      }
      for (const m of metrics) {
        const seen = arrived.get(m.name);
        arrived.set(m.name, [serviceOf(m), (seen?.[1] ?? 0) + 1, m.points]);
      }
      res.writeHead(200, { 'content-type': json ? 'application/json' : 'application/x-protobuf' }).end(json ? '{}' : '');
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  url = `http://127.0.0.1:${(server.address() as { port: number }).port}`;
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'isolate-metrics-'));
});
afterEach(async () => {
  for (const e of exporters) await e.shutdown(0);
  exporters = [];
  await new Promise<void>((r) => server.close(() => r()));
  fs.rmSync(tmp, { recursive: true, force: true });
});

async function exporter(cfg: Record<string, unknown> = {}) {
  const clock = new FakeClock();
  const timers = new FakeTimers(clock);
  const telemetry = new Telemetry();
  const settings = { id: 'exp', logger: silentLogger(), telemetry, clock };
  const exp = createOtlpHttpExporter(settings, withDefaults(OtlpHttpExporterConfigSchema, { endpoint: url, ...cfg }), { timers, random: () => 0.5, signal: 'metrics' });
  exporters.push(exp);
  await exp.start();
  const metric = (name: string) => telemetry.total(name, { exporter: 'exp' });
  const dropped = (reason: string) => telemetry.total('sidecar_metric_points_dropped_total', { reason });
  return { exp, telemetry, metric, dropped };
}

function expectDelivered(metrics: Metric[]) {
  const want = new Map<string, [string, number]>();
  for (const m of metrics) if (m.name !== POISON) want.set(m.name, [serviceOf(m), m.points]);
  expect([...arrived.keys()].sort()).toEqual([...want.keys()].sort());
  for (const [name, [service, times, points]] of arrived) {
    expect(times, name).toBe(1);
    expect([service, points], name).toEqual(want.get(name));
  }
}

const total = (ms: Metric[]) => ms.reduce((n, m) => n + m.points, 0);

describe('isolating the metrics a backend refuses as invalid', () => {
  it.each(['proto', 'json'] as const)('http-%s: drops exactly the marked metric\'s points, delivers every other metric once', async (encoding) => {
    const { exp, metric, dropped } = await exporter({ encoding });
    const metrics = batch(100, [37], 5);
    const points = total(metrics);
    await exp.consumeMetrics(metrics);
    await waitFor(() => exp.pending === 0 && arrived.size === 99);
    expectDelivered(metrics);
    expect(await dropped('backend_rejected')).toBe(5);
    expect(await metric('sidecar_exporter_rejected_metric_points_total')).toBe(5);
    expect(await metric('otelcol_exporter_send_failed_metric_points_total')).toBe(5);
    expect(await metric('otelcol_exporter_sent_metric_points_total')).toBe(points - 5);
    const extra = await metric('sidecar_exporter_isolation_requests_total');
    expect(requests).toBe(1 + extra);
    // One bad metric in 100: at most two requests per halving (7 halvings).
    expect(extra).toBeLessThanOrEqual(14);
  });

  it('several marked metrics, from the disk queue', async () => {
    const { exp, metric, dropped } = await exporter({ sending_queue: { storage: 'disk', directory: tmp } });
    const metrics = batch(64, [0, 40, 63], 3);
    await exp.consumeMetrics(metrics);
    await waitFor(() => exp.pending === 0 && arrived.size === 61);
    expectDelivered(metrics);
    expect(await dropped('backend_rejected')).toBe(9);
    expect(await metric('otelcol_exporter_sent_metric_points_total')).toBe(total(metrics) - 9);
  });

  it('stops at max_extra_requests and drops the parts still refused whole, counted in points', async () => {
    const { exp, metric, dropped } = await exporter({ isolate_rejected: { max_extra_requests: 3 } });
    const metrics = batch(100, [3, 60], 2);
    await exp.consumeMetrics(metrics);
    await waitFor(() => exp.pending === 0 && requests === 4);
    expect(await metric('sidecar_exporter_isolation_requests_total')).toBe(3);
    const lost = await dropped('backend_rejected');
    let delivered = 0;
    for (const [, [, times, points]] of arrived) {
      expect(times).toBe(1);
      delivered += points;
    }
    // Nothing lost silently, nothing counted twice: delivered + dropped = all points.
    expect(delivered + lost).toBe(total(metrics));
    expect(await metric('otelcol_exporter_sent_metric_points_total')).toBe(delivered);
    expect(await metric('otelcol_exporter_send_failed_metric_points_total')).toBe(lost);
    expect(arrived.has(POISON)).toBe(false);
    expect(lost).toBeGreaterThan(4);
  });

  it('with isolate_rejected off, the whole batch is dropped (what the test above guards against)', async () => {
    const { exp, dropped } = await exporter({ isolate_rejected: { enabled: false } });
    const metrics = batch(10, [2]);
    await exp.consumeMetrics(metrics);
    await waitFor(() => exp.pending === 0 && requests === 1);
    expect(arrived.size).toBe(0);
    expect(await dropped('export_permanent_error')).toBe(total(metrics));
  });
});

describe('splitMetricsExportRequest', () => {
  it('halves by metric, keeps every metric under its resource, and its counts add up to the batch', () => {
    const metrics = batch(7, [], 1);
    const points = total(metrics);
    const [a, b] = splitMetricsExportRequest(encodeExportRequest(metrics), points)!;
    const ma = scanMetricsRequest(a.bytes).items;
    const mb = scanMetricsRequest(b.bytes).items;
    expect(ma.map((m) => m.name)).toEqual(metrics.slice(0, 3).map((m) => m.name));
    expect(mb.map((m) => m.name)).toEqual(metrics.slice(3).map((m) => m.name));
    expect(a.spans).toBe(total(ma));
    expect(b.spans).toBe(total(mb));
    expect(a.spans + b.spans).toBe(points);
    expect(mb.map(serviceOf)).toEqual(metrics.slice(3).map(serviceOf));
    // One metric of many points is one unit: not split.
    const one = batch(2, [1], 9).slice(1);
    expect(splitMetricsExportRequest(encodeExportRequest(one), 9)).toBeUndefined();
  });
});
