/**
 * Load test for logs and metrics (issue 16), beside the trace harness:
 *
 *   node dist/loadtest/signals.js correlated [--duration 20s] [--traces 200]
 *   node dist/loadtest/signals.js passthrough [--duration 10s] [--rate 50000]
 *
 * `correlated`: the generator sends traces (5 spans each, 5% with an error),
 * two log records per span carrying its trace and span id, one record in ten
 * without a trace id, and a metrics export per simulated service every
 * second, to a collector that tail-samples traces and logs with one
 * tail_sampling processor (errors + 10%). The report says, for kept traces,
 * whether all their log records arrived, and that no record of a dropped
 * trace did, none twice, and every record without a trace id did.
 *
 * `passthrough`: spans, log records and metric data points, each alone at
 * the same item rate through memory_limiter + batch, requests the size an SDK
 * sends (512 spans or records; a periodic export of 64 metrics, 256 points);
 * reports items/s delivered and the collector's CPU per item.
 *
 * Everything on 127.0.0.1 with ephemeral ports; the collector is a child
 * process (`dist/collector/sidecar.mjs`, or `--collector-main PATH`); the
 * sink is the collector's own OTLP receiver in this process. Runs end by themselves.
 */
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { CollectorProcess, freePort } from './collector.js';
import { readCpuSeconds } from './proc.js';
import { OtlpReceiver } from '../receivers/otlp/receiver.js';
import { OtlpReceiverSchema } from '../receivers/otlp/config.js';
import { withDefaults } from '../config/defaults.js';
import { Telemetry } from '../collector/telemetry/metrics.js';
import { silentLogger } from '../collector/telemetry/logger.js';
import { systemClock } from '../collector/component.js';
import { jsonToProtobuf } from '../collector/pdata/otlp-json.js';
import { countPoints } from '../collector/pdata/metrics.js';
import type { Span } from '../collector/pdata/spans.js';
import type { LogRecord } from '../collector/pdata/logs.js';
import type { Metric } from '../collector/pdata/metrics.js';
import { realisticRequest } from '../collector/pdata/bench.js';
import { realisticLogsRequest, realisticMetricsRequest } from '../collector/pdata/bench_signals.js';

const arg = (name: string, def: string) => {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? process.argv[i + 1] : def;
};
const seconds = (s: string) => (s.endsWith('ms') ? Number(s.slice(0, -2)) / 1000 : Number(s.replace(/s$/, '')));
const hex = (n: number, len: number) => n.toString(16).padStart(len, '0');
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** The sink: counts what arrives, and for the correlation check what each log record belongs to. */
class Sink {
  spans = 0;
  logs = 0;
  points = 0;
  keptTraces = new Set<string>();
  /** Log records by trace id ('' for none). */
  logsByTrace = new Map<string, number>();
  /** Record identity (time) -> times seen. */
  seen = new Map<number, number>();
  duplicates = 0;
  record = false;
  readonly receiver: OtlpReceiver;
  constructor() {
    const settings = { id: 'sink', logger: silentLogger(), telemetry: new Telemetry(), clock: systemClock };
    const cfg = withDefaults(OtlpReceiverSchema, { protocols: { grpc: { endpoint: '127.0.0.1:0', max_recv_msg_size_mib: 64 } } });
    const traces = {
      consume: async (s: Span[]) => {
        this.spans += s.length;
        if (this.record) for (const x of s) this.keptTraces.add(x.traceId);
      },
    };
    this.receiver = new OtlpReceiver(settings, cfg, traces, {
      consumers: {
        traces,
        logs: {
          consumeLogs: async (r: LogRecord[]) => {
            this.logs += r.length;
            if (!this.record) return;
            for (const x of r) {
              this.logsByTrace.set(x.traceId, (this.logsByTrace.get(x.traceId) ?? 0) + 1);
              const n = (this.seen.get(x.timeNs) ?? 0) + 1;
              this.seen.set(x.timeNs, n);
              if (n > 1) this.duplicates++;
            }
          },
        },
        metrics: { consumeMetrics: async (m: Metric[]) => void (this.points += countPoints(m)) },
      },
    });
  }
}

const agent = new http.Agent({ keepAlive: true, maxSockets: 8 });
function post(port: number, p: string, body: Uint8Array): Promise<number> {
  return new Promise((resolve) => {
    const req = http.request(
      { host: '127.0.0.1', port, path: p, method: 'POST', agent, headers: { 'content-type': 'application/x-protobuf', 'content-length': body.length } },
      (res) => {
        res.resume();
        res.on('end', () => resolve(res.statusCode ?? 0));
      },
    );
    req.on('error', () => resolve(0));
    req.end(body);
  });
}

/** Sends until accepted (a retryable answer is retried after a short wait, as an SDK would). */
async function send(port: number, p: string, body: Uint8Array, deadline: number): Promise<boolean> {
  for (;;) {
    const s = await post(port, p, body);
    if (s === 200) return true;
    if (Date.now() > deadline || (s !== 429 && s !== 503 && s !== 0)) return false;
    await sleep(50);
  }
}

async function startCollector(pipelines: Record<string, unknown>, processors: Record<string, unknown>, sinkPort: number, t0: number): Promise<{ c: CollectorProcess; httpPort: number }> {
  const [httpPort, metricsPort, grpcPort] = [await freePort(), await freePort(), await freePort()];
  const config = {
    receivers: { otlp: { protocols: { http: { endpoint: `127.0.0.1:${httpPort}` }, grpc: { endpoint: `127.0.0.1:${grpcPort}` } } } },
    processors,
    exporters: { otlp: { endpoint: `127.0.0.1:${sinkPort}`, tls: { insecure: true }, sending_queue: { queue_size: 1000 } } },
    service: { pipelines, telemetry: { metrics: { address: `127.0.0.1:${metricsPort}` }, logs: { level: 'warn' } }, shutdown_delay: '0s', config_watch: false },
  };
  const bin = arg('collector-main', path.resolve('dist/collector/sidecar.mjs'));
  const c = new CollectorProcess({ kind: 'sidecar', bin, config, workDir: path.join(os.tmpdir(), `signals-load-${process.pid}`), metricsPort, grpcPort, t0 });
  await c.start();
  return { c, httpPort };
}

// ------------------------------------------------------------------ correlated

interface GenTrace {
  id: string;
  spans: Array<Record<string, unknown>>;
  logs: Array<Record<string, unknown>>;
}

let logSeq = 0;
/** A log record whose time is unique in the run (the sink's identity for duplicates). */
function logRecord(traceId: string | undefined, spanId: string | undefined, text: string): Record<string, unknown> {
  const r: Record<string, unknown> = {
    timeUnixNano: String(1_700_000_000_000_000_000n + BigInt(++logSeq) * 4096n),
    severityNumber: 9,
    body: { stringValue: text },
    attributes: [{ key: 'logger.name', value: { stringValue: 'app' } }],
  };
  if (traceId !== undefined) r.traceId = traceId;
  if (spanId !== undefined) r.spanId = spanId;
  return r;
}

function genTrace(n: number, now: bigint): GenTrace {
  const id = 'c' + hex(n, 31);
  const error = n % 20 === 0;
  const spans: Array<Record<string, unknown>> = [];
  const logs: Array<Record<string, unknown>> = [];
  for (let i = 0; i < 5; i++) {
    const spanId = hex(n * 8 + i + 1, 16);
    spans.push({
      traceId: id,
      spanId,
      parentSpanId: i === 0 ? undefined : hex(n * 8 + 1, 16),
      name: i === 0 ? 'GET /orders/{id}' : `db.query ${i}`,
      kind: i === 0 ? 2 : 3,
      startTimeUnixNano: String(now + BigInt(i) * 1_000_000n),
      endTimeUnixNano: String(now + BigInt(i + 1) * 2_000_000n),
      status: { code: error && i === 0 ? 2 : 0 },
    });
    logs.push(logRecord(id, spanId, `span ${i} of trace ${n} started`), logRecord(id, spanId, `span ${i} of trace ${n} done`));
  }
  return { id, spans, logs };
}

const resource = (service: string) => ({ attributes: [{ key: 'service.name', value: { stringValue: service } }] });

async function correlated(): Promise<void> {
  const duration = seconds(arg('duration', '20s'));
  const tracesPerSec = Number(arg('traces', '200'));
  const sink = new Sink();
  sink.record = true;
  await sink.receiver.start();
  const t0 = Date.now();
  const ts = { decision_wait: '2s', decision_wait_after_root_received: '0s', decision_cache: { sampled_cache_size: 100000, non_sampled_cache_size: 100000 },
    policies: [
      { name: 'errors', type: 'status_code', status_code: { status_codes: ['ERROR'] } },
      { name: 'baseline', type: 'probabilistic', probabilistic: { sampling_percentage: 10 } },
    ] };
  const { c, httpPort } = await startCollector(
    {
      traces: { receivers: ['otlp'], processors: ['tail_sampling', 'batch'], exporters: ['otlp'] },
      logs: { receivers: ['otlp'], processors: ['tail_sampling', 'batch'], exporters: ['otlp'] },
      metrics: { receivers: ['otlp'], processors: ['batch'], exporters: ['otlp'] },
    },
    { tail_sampling: ts, batch: { timeout: '200ms' } },
    sink.receiver.grpcPort,
    t0,
  );
  const generated = new Map<string, number>();
  let freeLogs = 0;
  let sentPoints = 0;
  let refused = 0;
  let n = 0;
  const end = Date.now() + duration * 1000;
  const services = ['orders', 'payments', 'inventory', 'shipping'];
  let nextMetrics = Date.now();
  while (Date.now() < end) {
    const tickStart = Date.now();
    const batch: GenTrace[] = [];
    for (let i = 0; i < tracesPerSec / 10; i++) batch.push(genTrace(++n, BigInt(Date.now()) * 1_000_000n));
    for (const t of batch) generated.set(t.id, t.logs.length);
    const spansReq = jsonToProtobuf(JSON.stringify({ resourceSpans: [{ resource: resource('orders'), scopeSpans: [{ scope: { name: 'gen' }, spans: batch.flatMap((t) => t.spans) }] }] }));
    const free = Array.from({ length: Math.ceil(batch.length), }, () => logRecord(undefined, undefined, 'no trace context'));
    freeLogs += free.length;
    // Logs of half the traces go before their spans, the others after (as SDKs' batches interleave).
    const half = Math.floor(batch.length / 2);
    const logsReq = (ts: GenTrace[], extra: Array<Record<string, unknown>>) =>
      jsonToProtobuf(JSON.stringify({ resourceLogs: [{ resource: resource('orders'), scopeLogs: [{ scope: { name: 'gen' }, logRecords: [...ts.flatMap((t) => t.logs), ...extra] }] }] }), 'ExportLogsServiceRequest');
    const deadline = end + 30_000;
    const ok = [
      await send(httpPort, '/v1/logs', logsReq(batch.slice(0, half), free), deadline),
      await send(httpPort, '/v1/traces', spansReq, deadline),
      await send(httpPort, '/v1/logs', logsReq(batch.slice(half), []), deadline),
    ];
    refused += ok.filter((x) => !x).length;
    if (Date.now() >= nextMetrics) {
      nextMetrics += 1000;
      for (const s of services) {
        const m = jsonToProtobuf(JSON.stringify({ resourceMetrics: [{ resource: resource(s), scopeMetrics: [{ scope: { name: 'gen' }, metrics: JSON.parse(JSON.stringify(metricsJson)) }] }] }), 'ExportMetricsServiceRequest');
        if (await send(httpPort, '/v1/metrics', m, deadline)) sentPoints += metricsPoints;
      }
    }
    const wait = 100 - (Date.now() - tickStart);
    if (wait > 0) await sleep(wait);
  }
  await sleep(3000); // decision_wait + batch
  await c.stop(); // decides what is left (shutdown) and drains
  await sleep(500);
  await sink.receiver.shutdown();

  let keptTraces = 0;
  let keptLogsExpected = 0;
  let keptLogsArrived = 0;
  let keptTracesMissingLogs = 0;
  let droppedTraces = 0;
  let droppedTraceLogsArrived = 0;
  for (const [id, count] of generated) {
    const got = sink.logsByTrace.get(id) ?? 0;
    if (sink.keptTraces.has(id)) {
      keptTraces++;
      keptLogsExpected += count;
      keptLogsArrived += got;
      if (got !== count) keptTracesMissingLogs++;
    } else {
      droppedTraces++;
      droppedTraceLogsArrived += got;
    }
  }
  const report = {
    scenario: 'signals-correlated',
    duration_s: duration,
    traces_generated: generated.size,
    kept_traces: keptTraces,
    dropped_traces: droppedTraces,
    kept_fraction: Math.round((keptTraces / generated.size) * 1000) / 1000,
    log_records_of_kept_traces: { expected: keptLogsExpected, arrived: keptLogsArrived, traces_missing_some: keptTracesMissingLogs },
    log_records_of_dropped_traces_arrived: droppedTraceLogsArrived,
    log_records_without_trace_id: { sent: freeLogs, arrived: sink.logsByTrace.get('') ?? 0 },
    duplicate_log_records: sink.duplicates,
    metric_points: { sent: sentPoints, arrived: sink.points },
    requests_refused_for_good: refused,
    verdict:
      keptTracesMissingLogs === 0 && droppedTraceLogsArrived === 0 && sink.duplicates === 0 && (sink.logsByTrace.get('') ?? 0) === freeLogs && sink.points === sentPoints
        ? 'PASS: every log record of a kept trace arrived, none of a dropped trace, none twice'
        : 'FAIL',
  };
  console.log(JSON.stringify(report, null, 2));
  agent.destroy();
  process.exitCode = report.verdict.startsWith('PASS') ? 0 : 1;
}

const metricsJson = (() => {
  const t = String(1_700_000_000_000_000_000n);
  const attrs = (j: number) => [{ key: 'http.route', value: { stringValue: `/r${j}` } }];
  return Array.from({ length: 8 }, (_, i) => ({
    name: `app.metric.${i}`,
    sum: { dataPoints: Array.from({ length: 4 }, (_, j) => ({ timeUnixNano: t, asInt: String(i * j), attributes: attrs(j) })), aggregationTemporality: 2, isMonotonic: true },
  }));
})();
const metricsPoints = 32;

// ------------------------------------------------------------------ pass-through

async function passthrough(): Promise<void> {
  const duration = seconds(arg('duration', '10s'));
  const rate = Number(arg('rate', '50000'));
  const only = arg('signals', 'traces,logs,metrics').split(',');
  const bodies = {
    traces: { path: '/v1/traces', body: realisticRequest(512), items: 512 },
    logs: { path: '/v1/logs', body: realisticLogsRequest(512), items: 512 },
    metrics: { path: '/v1/metrics', body: realisticMetricsRequest(64), items: 256 },
  } as const;
  const results = [];
  for (const signal of only as Array<keyof typeof bodies>) {
    const sink = new Sink();
    await sink.receiver.start();
    const t0 = Date.now();
    const { c, httpPort } = await startCollector(
      { [signal]: { receivers: ['otlp'], processors: ['memory_limiter', 'batch'], exporters: ['otlp'] } },
      { memory_limiter: { limit_mib: 1024 }, batch: {} },
      sink.receiver.grpcPort,
      t0,
    );
    const b = bodies[signal];
    const perSec = rate / b.items;
    const count = () => (signal === 'traces' ? sink.spans : signal === 'logs' ? sink.logs : sink.points);
    const runFor = async (ms: number) => {
      let sent = 0;
      const start = Date.now();
      const until = start + ms;
      const inflight = new Set<Promise<boolean>>();
      while (Date.now() < until) {
        const due = Math.floor(((Date.now() - start) / 1000) * perSec);
        while (sent < due && inflight.size < 8) {
          const p = send(httpPort, b.path, b.body, until + 10_000);
          inflight.add(p);
          void p.finally(() => inflight.delete(p));
          sent++;
        }
        await sleep(2);
      }
      await Promise.all(inflight);
      return sent;
    };
    // Warm-up: 3 s at the rate, not measured (V8 optimizes the hot path).
    await runFor(3000);
    const settle = async (want: number) => {
      const until = Date.now() + 10_000;
      while (count() < want && Date.now() < until) await sleep(20);
    };
    await settle(0);
    await sleep(500);
    const arrived0 = count();
    const cpu0 = readCpuSeconds(c.pid!)!;
    const sentReqs = await runFor(duration * 1000);
    await settle(arrived0 + sentReqs * b.items);
    const cpu1 = readCpuSeconds(c.pid!)!;
    const secs = duration;
    const arrived = count() - arrived0;
    const rss = c.sampler?.samples.at(-1)?.rssMiB;
    await c.stop();
    await sink.receiver.shutdown();
    results.push({
      signal,
      item: signal === 'traces' ? 'span' : signal === 'logs' ? 'log record' : 'data point',
      request_items: b.items,
      request_bytes: b.body.length,
      sent_items: sentReqs * b.items,
      arrived_items: arrived,
      items_per_s: Math.round(arrived / secs),
      collector_cpu_pct: Math.round(((cpu1 - cpu0) / secs) * 1000) / 10,
      cpu_us_per_item: Math.round((((cpu1 - cpu0) * 1e6) / arrived) * 100) / 100,
      rss_mib: rss,
    });
    console.log(JSON.stringify(results.at(-1)));
  }
  agent.destroy();
}

const mode = process.argv[2];
if (mode === 'correlated') await correlated();
else if (mode === 'passthrough') await passthrough();
else {
  console.error('usage: node dist/loadtest/signals.js correlated|passthrough [--duration 20s] [--traces 200] [--rate 50000] [--signals traces,logs,metrics] [--collector-main PATH]');
  process.exitCode = 2;
}
