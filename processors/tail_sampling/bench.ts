/**
 * Micro-benchmark of the tail_sampling processor (no network):
 *   node dist/processors/tail_sampling/bench.js [--spans 400000] [--pending 200000]
 *
 * 1. throughput: spans/s through consume() + the ticks that decide them, with
 *    the five policies of the figures (status_code ERROR, latency
 *    > 500 ms, probabilistic 10%, a string_attribute, a rate_limiting).
 *    Requests are scanned before timing (that is the receiver's cost).
 * 2. tick cost with N traces pending (3 spans each, arrivals spread over 30 s):
 *    a tick with nothing due, a tick deciding one second's bucket, and
 *    deciding everything at once.
 * Prints one JSON line.
 */
import { jsonToProtobuf } from '../../collector/pdata/otlp-json.js';
import { scanExportRequest, type Span } from '../../collector/pdata/spans.js';
import { Telemetry } from '../../collector/telemetry/metrics.js';
import { silentLogger } from '../../collector/telemetry/logger.js';
import { withDefaults } from '../../config/defaults.js';
import { TailSamplingConfigSchema } from './config.js';
import { TailSamplingProcessor } from './processor.js';

function arg(name: string, def: number): number {
  const i = process.argv.indexOf(name);
  return i >= 0 ? Number(process.argv[i + 1]) : def;
}

const POLICIES = [
  { name: 'errors', type: 'status_code', status_code: { status_codes: ['ERROR'] } },
  { name: 'slow', type: 'latency', latency: { threshold_ms: 500 } },
  { name: 'sample-10', type: 'probabilistic', probabilistic: { sampling_percentage: 10 } },
  { name: 'checkout', type: 'string_attribute', string_attribute: { key: 'http.route', values: ['/checkout', '/pay'] } },
  { name: 'budget', type: 'rate_limiting', rate_limiting: { spans_per_second: 1000 } },
];

let seq = 1;
function hex(n: number, width: number): string {
  return n.toString(16).padStart(width, '0');
}
const ROUTES = ['/cart', '/checkout', '/items', '/search', '/pay', '/health', '/user', '/home'];

/** One request of `traces` traces x `perTrace` spans (a root and children), realistic attributes. */
function request(traces: number, perTrace: number, startMs: number): Uint8Array {
  const spans: unknown[] = [];
  for (let t = 0; t < traces; t++) {
    const s = seq++;
    const traceId = hex(Math.floor(Math.random() * 2 ** 32), 8) + hex(s, 8) + hex(Math.floor(Math.random() * 2 ** 32), 8) + hex(Math.floor(Math.random() * 2 ** 32), 8);
    const rootId = hex(s, 8) + '00000000';
    const err = Math.random() < 0.01;
    const slow = Math.random() < 0.02;
    const route = ROUTES[s % ROUTES.length];
    for (let k = 0; k < perTrace; k++) {
      const start = BigInt(startMs + k) * 1_000_000n;
      const dur = BigInt(k === 0 ? (slow ? 800 : 40) : 5) * 1_000_000n;
      spans.push({
        traceId,
        spanId: k === 0 ? rootId : hex(s, 8) + hex(k, 8),
        parentSpanId: k === 0 ? '' : rootId,
        name: k === 0 ? `GET ${route}` : `SELECT items ${k}`,
        kind: k === 0 ? 2 : 3,
        startTimeUnixNano: start.toString(),
        endTimeUnixNano: (start + dur).toString(),
        attributes: [
          { key: 'http.route', value: { stringValue: route } },
          { key: 'http.request.method', value: { stringValue: 'GET' } },
          { key: 'http.response.status_code', value: { intValue: err && k === 0 ? '500' : '200' } },
          { key: 'db.system', value: { stringValue: 'postgresql' } },
        ],
        status: { code: err && k === 0 ? 2 : 0 },
      });
    }
  }
  const body = {
    resourceSpans: [
      {
        resource: { attributes: [{ key: 'service.name', value: { stringValue: 'checkout' } }, { key: 'k8s.pod.name', value: { stringValue: 'checkout-7d9f-abcde' } }] },
        scopeSpans: [{ scope: { name: 'bench', version: '1' }, spans }],
      },
    ],
  };
  return jsonToProtobuf(JSON.stringify(body));
}

function makeProcessor(clock: { now(): number }, extra: Record<string, unknown> = {}) {
  const cfg = withDefaults(TailSamplingConfigSchema, { policies: POLICIES, num_traces: 1_000_000, buffer: { max_bytes: 4 * 1024 ** 3 }, ...extra });
  let forwarded = 0;
  const next = {
    async consume(s: Span[]) {
      forwarded += s.length;
    },
  };
  const p = new TailSamplingProcessor({ id: 'tail_sampling', logger: silentLogger(), telemetry: new Telemetry(), clock }, cfg, next);
  return { p, forwarded: () => forwarded };
}

async function throughput(totalSpans: number) {
  const perTrace = 5;
  const tracesPerReq = 100;
  const reqs = Math.ceil(totalSpans / (perTrace * tracesPerReq));
  const clock = { t: 1_700_000_000_000, now() { return this.t; } };
  const { p, forwarded } = makeProcessor(clock, { decision_wait: '5s' });
  const batches: Span[][] = [];
  for (let i = 0; i < reqs; i++) batches.push(scanExportRequest(request(tracesPerReq, perTrace, clock.t)).spans);
  let spans = 0;
  // Warm-up on a tenth, not timed.
  const warm = Math.floor(reqs / 10);
  for (let i = 0; i < warm; i++) await p.consume(batches[i]);
  clock.t += 10_000;
  await p.tick();
  const start = process.hrtime.bigint();
  // Spread the rest over "seconds" of fake time; tick every simulated second.
  const perSecond = Math.max(1, Math.floor((reqs - warm) / 20));
  for (let i = warm; i < reqs; i++) {
    await p.consume(batches[i]);
    spans += batches[i].length;
    if ((i - warm + 1) % perSecond === 0) {
      clock.t += 1000;
      await p.tick();
    }
  }
  clock.t += 10_000;
  await p.tick();
  const secs = Number(process.hrtime.bigint() - start) / 1e9;
  const pending = p.pendingTraces;
  await p.shutdown();
  return { spans, seconds: +secs.toFixed(3), spans_per_sec: Math.round(spans / secs), kept_spans: forwarded(), pending_after: pending };
}

async function tickCost(pendingTraces: number) {
  const clock = { t: 1_700_000_000_000, now() { return this.t; } };
  const { p } = makeProcessor(clock);
  const perTrace = 3;
  const tracesPerReq = 200;
  const reqs = Math.ceil(pendingTraces / tracesPerReq);
  const perSecond = Math.ceil(reqs / 30);
  for (let i = 0; i < reqs; i++) {
    await p.consume(scanExportRequest(request(tracesPerReq, perTrace, clock.t)).spans);
    if ((i + 1) % perSecond === 0) clock.t += 1000;
  }
  const heapMiB = Math.round(process.memoryUsage().heapUsed / 1024 / 1024);
  const rssMiB = Math.round(process.memoryUsage().rss / 1024 / 1024);
  const pending = p.pendingTraces;
  const time = async () => {
    const s = process.hrtime.bigint();
    await p.tick();
    return +(Number(process.hrtime.bigint() - s) / 1e6).toFixed(2);
  };
  const idleMs = await time(); // nothing due yet (first arrivals are < 30 s old)
  clock.t = 1_700_000_000_000 + 30_000;
  const oneBucketMs = await time(); // the first second's arrivals are due
  const afterOne = p.pendingTraces;
  // Steady state: the next five seconds, one tick each.
  const bucketTicks: number[] = [];
  for (let i = 0; i < 5; i++) {
    clock.t += 1000;
    bucketTicks.push(await time());
  }
  const afterSix = p.pendingTraces;
  clock.t += 60_000;
  const allMs = await time();
  await p.shutdown();
  return {
    pending_traces: pending,
    heap_mib: heapMiB,
    rss_mib: rssMiB,
    tick_idle_ms: idleMs,
    tick_first_bucket_ms: oneBucketMs,
    tick_next_buckets_ms: bucketTicks,
    traces_per_bucket: Math.round((pending - afterSix) / 6),
    tick_decide_rest_ms: allMs,
    decided_in_rest: afterSix,
  };
}

async function main() {
  const totalSpans = arg('--spans', 400_000);
  const pending = arg('--pending', 200_000);
  const tp = await throughput(totalSpans);
  const tc = await tickCost(pending);
  console.log(JSON.stringify({ bench: 'tail_sampling', node: process.version, policies: POLICIES.map((p) => p.type), throughput: tp, tick: tc }));
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
