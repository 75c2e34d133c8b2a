import { describe, it, expect } from 'vitest';
import { scanLogsRequest, type LogRecord } from '../../collector/pdata/logs.js';
import { scanMetricsRequest, type Metric } from '../../collector/pdata/metrics.js';
import { encodeExportRequest } from '../../collector/pdata/encode.js';
import { jsonToProtobuf } from '../../collector/pdata/otlp-json.js';
import { withDefaults } from '../../config/defaults.js';
import { silentLogger } from '../../collector/telemetry/logger.js';
import { Telemetry } from '../../collector/telemetry/metrics.js';
import { FakeClock } from '../../collector/consumertest.js';
import { decodeLogs, decodeMetrics, frame, logsRequest, metricsRequest, withUnknownField } from '../../test/signals.js';
import { NormalizeConfig } from './config.js';
import { normalizeProcessorFactory } from './index.js';
import { OVERFLOW_KEY } from './processor.js';
import { readFileSync } from 'node:fs';
import { loadConfigText } from '../../config/load.js';

const T1 = '0af7651916cd43dd8448eb211c80319c';

function setup(config: unknown) {
  const telemetry = new Telemetry();
  const clock = new FakeClock();
  const settings = { id: 'normalize', logger: silentLogger(), telemetry, clock };
  const cfg = withDefaults(NormalizeConfig, config);
  const logs: LogRecord[] = [];
  const metrics: Metric[] = [];
  const lp = normalizeProcessorFactory.createLogs!(settings, cfg, { consumeLogs: async (r) => void logs.push(...r) });
  const mp = normalizeProcessorFactory.createMetrics!(settings, cfg, { consumeMetrics: async (m) => void metrics.push(...m) });
  return { telemetry, clock, logs, metrics, lp, mp };
}

type J = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any
const logRecords = (items: LogRecord[]): J[] => (decodeLogs(encodeExportRequest(items)) as J).resourceLogs.flatMap((r: J) => r.scopeLogs.flatMap((s: J) => s.logRecords));
const attrsOf = (kvs: J[] | undefined): Record<string, unknown> => Object.fromEntries((kvs ?? []).map((kv) => [kv.key, Object.values(kv.value)[0]]));
const allMetrics = (items: Metric[]): J[] => (decodeMetrics(encodeExportRequest(items)) as J).resourceMetrics.flatMap((r: J) => r.scopeMetrics.flatMap((s: J) => s.metrics));

describe('normalize: logs', () => {
  const config = {
    rules: [
      { rename: { keys: { Env: 'deployment.environment' } } },
      { scope: ['span', 'event', 'span_name'], redact: { detectors: ['email', 'credit_card'] } },
    ],
  };

  it('renames log record attributes and redacts string bodies, keeping the trace id', async () => {
    const { lp, logs } = setup(config);
    const scan = scanLogsRequest(logsRequest([{ traceId: T1, spanId: 'b7ad6b7169203331', body: { stringValue: 'mail alice@example.com now' }, attributes: { Env: 'prod', who: 'bob@example.org' } }]));
    await lp.consumeLogs(scan.items);
    expect(logs).toHaveLength(1);
    const [rec] = logRecords(logs);
    expect(rec.body).toEqual({ stringValue: 'mail [REDACTED] now' });
    expect(attrsOf(rec.attributes)).toEqual({ 'deployment.environment': 'prod', who: '[REDACTED]' });
    expect(logs[0].traceId).toBe(T1);
    expect(logs[0].spanId).toBe('b7ad6b7169203331');
  });

  it('redacts strings nested in kvlist and array bodies', async () => {
    const { lp, logs } = setup(config);
    const body = {
      kvlistValue: {
        values: [
          { key: 'user', value: { stringValue: 'alice@example.com' } },
          { key: 'n', value: { intValue: '7' } },
          { key: 'notes', value: { arrayValue: { values: [{ stringValue: 'card 4111 1111 1111 1111' }, { stringValue: 'fine' }] } } },
        ],
      },
    };
    await lp.consumeLogs(scanLogsRequest(logsRequest([{ body }])).items);
    const [rec] = logRecords(logs);
    expect(rec.body).toEqual({
      kvlistValue: {
        values: [
          { key: 'user', value: { stringValue: '[REDACTED]' } },
          { key: 'n', value: { intValue: '7' } },
          { key: 'notes', value: { arrayValue: { values: [{ stringValue: 'card [REDACTED]' }, { stringValue: 'fine' }] } } },
        ],
      },
    });
  });

  it('keeps an untouched record byte for byte (same buffer) and unknown fields through an edit', async () => {
    const { lp, logs } = setup(config);
    const clean = scanLogsRequest(logsRequest([{ traceId: T1, body: { stringValue: 'hello' }, attributes: { k: 'v' } }])).items[0];
    const dirty = scanLogsRequest(frame(withUnknownField(scanLogsRequest(logsRequest([{ attributes: { Env: 'prod' } }])).items[0].bytes(), 42))).items[0];
    const cleanBuf = clean.buf;
    const cleanBytes = Buffer.from(clean.bytes());
    await lp.consumeLogs([clean, dirty]);
    expect(logs[0].buf).toBe(cleanBuf);
    expect(Buffer.from(logs[0].bytes()).equals(cleanBytes)).toBe(true);
    // field 1000, varint 42: tag bytes 0xc0 0x3e
    expect(Buffer.from(logs[1].bytes()).includes(Buffer.from([0xc0, 0x3e, 42]))).toBe(true);
    expect(attrsOf(logRecords([logs[1]])[0].attributes)).toEqual({ 'deployment.environment': 'prod' });
  });

  it('applies resource rules to log resources and truncates bodies', async () => {
    const { lp, logs } = setup({ rules: [{ scope: 'resource', rename: { keys: { 'service.name': 'svc' } } }, { truncate: { max_length: 4 } }] });
    await lp.consumeLogs(scanLogsRequest(logsRequest([{ body: { stringValue: 'abcdefgh' } }])).items);
    expect(logs[0].resource.header.length).toBeGreaterThan(0);
    const out = decodeLogs(encodeExportRequest(logs)) as J;
    expect(attrsOf(out.resourceLogs[0].resource.attributes)).toEqual({ svc: 'checkout' });
    expect(out.resourceLogs[0].scopeLogs[0].logRecords[0].body).toEqual({ stringValue: 'abcd' });
  });
});

function pointsRequest(routes: string[]): Uint8Array {
  const t = String(1_700_000_000_000n * 1_000_000n);
  const dataPoints = routes.map((r, i) => ({ timeUnixNano: t, asInt: String(i + 1), attributes: [{ key: 'route', value: { stringValue: r } }] }));
  return jsonToProtobuf(
    JSON.stringify({
      resourceMetrics: [
        {
          resource: { attributes: [{ key: 'service.name', value: { stringValue: 'checkout' } }] },
          scopeMetrics: [{ scope: { name: 'test' }, metrics: [{ name: 'requests', sum: { dataPoints, aggregationTemporality: 2, isMonotonic: true } }] }],
        },
      ],
    }),
    'ExportMetricsServiceRequest',
  );
}

describe('normalize: metrics', () => {
  it('renames data point attributes on every metric type that has them; metrics without a match keep their bytes', async () => {
    const { mp, metrics } = setup({ rules: [{ rename: { keys: { route: 'http.route' } } }] });
    const scan = scanMetricsRequest(metricsRequest('checkout', 2));
    const before = scan.items.map((m) => ({ buf: m.buf, bytes: Buffer.from(m.bytes()) }));
    await mp.consumeMetrics(scan.items);
    const out = allMetrics(metrics);
    expect(out.map((m) => m.name)).toEqual(['requests', 'inflight', 'latency', 'size', 'gc']);
    expect(out[0].sum.dataPoints.map((p: J) => attrsOf(p.attributes))).toEqual([{ 'http.route': '/r/0' }, { 'http.route': '/r/1' }]);
    expect(out[0].sum.dataPoints.map((p: J) => p.asInt)).toEqual(['1', '2']);
    expect(out[0].sum.isMonotonic).toBe(true);
    expect(attrsOf(out[1].gauge.dataPoints[0].attributes)).toEqual({ 'http.route': '/r/0' });
    expect(attrsOf(out[2].histogram.dataPoints[0].attributes)).toEqual({ 'http.route': '/r/0' });
    expect(out[2].histogram.dataPoints[0].bucketCounts).toEqual(['1', '2']);
    // exponential histogram and summary carry no attributes: untouched, same buffer
    for (const i of [3, 4]) {
      expect(metrics[i].buf).toBe(before[i].buf);
      expect(Buffer.from(metrics[i].bytes()).equals(before[i].bytes)).toBe(true);
    }
    expect(metrics.map((m) => m.points)).toEqual([2, 1, 1, 1, 1]);
  });

  it('cardinality_limit collapses new values past the limit to _OTHER and marks the point as overflow', async () => {
    const { mp, metrics, telemetry, clock } = setup({ rules: [{ cardinality_limit: { keys: ['route'], max_values: 2, window: '1m' } }] });
    await mp.consumeMetrics(scanMetricsRequest(pointsRequest(['/a', '/b', '/a', '/c', '/d'])).items);
    const pts = allMetrics(metrics)[0].sum.dataPoints as J[];
    expect(pts.map((p) => attrsOf(p.attributes))).toEqual([
      { route: '/a' },
      { route: '/b' },
      { route: '/a' },
      { route: '_OTHER', [OVERFLOW_KEY]: true },
      { route: '_OTHER', [OVERFLOW_KEY]: true },
    ]);
    expect(pts.map((p) => p.asInt)).toEqual(['1', '2', '3', '4', '5']);
    expect(await telemetry.total('otelcol_processor_normalize_values_collapsed_total', { key: 'route' })).toBe(2);
    // A new window forgets the values seen.
    metrics.length = 0;
    clock.advance(60_000);
    await mp.consumeMetrics(scanMetricsRequest(pointsRequest(['/c', '/d', '/e'])).items);
    expect((allMetrics(metrics)[0].sum.dataPoints as J[]).map((p) => attrsOf(p.attributes).route)).toEqual(['/c', '/d', '_OTHER']);
  });

  it('a metric whose points need no change keeps its exact bytes', async () => {
    const { mp, metrics } = setup({ rules: [{ cardinality_limit: { keys: ['route'], max_values: 5 } }] });
    const m = scanMetricsRequest(pointsRequest(['/a', '/b'])).items[0];
    const buf = m.buf;
    const bytes = Buffer.from(m.bytes());
    await mp.consumeMetrics([m]);
    expect(metrics[0].buf).toBe(buf);
    expect(Buffer.from(metrics[0].bytes()).equals(bytes)).toBe(true);
  });
});

describe('normalize: config', () => {
  it('is accepted in logs and metrics pipelines; the default config lists it in all three', () => {
    const text = ['receivers:', '  otlp:', 'processors:', '  normalize:', '    preset: recommended', 'exporters:', '  debug:', 'service:', '  pipelines:']
      .concat(...['traces', 'logs', 'metrics'].map((s) => [`    ${s}:`, '      receivers: [otlp]', '      processors: [normalize]', '      exporters: [debug]']))
      .join('\n');
    const cfg = loadConfigText(text + '\n', 'config.yaml', { env: {} });
    expect(cfg.service.pipelines.logs.processors).toEqual(['normalize']);
    const def = loadConfigText(readFileSync(new URL('../../config/default.yaml', import.meta.url), 'utf8'), 'default.yaml', { env: {} });
    for (const s of ['traces', 'logs', 'metrics']) expect(def.service.pipelines[s].processors).toContain('normalize');
  });
});
