/**
 * Shared tail-sampling decisions across sidecar processes: three collectors
 * (frontend, api, db: each gets only its own service's spans, as in a mesh),
 * one redis-server, one sink.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startChild, freePort, waitReady, type Child } from './child.js';
import { requestBytes, type SpanSpec } from './otlp.js';
import { OtlpTestBackend } from '../loadtest/sink/backend.js';
import { HAVE_REDIS, TestRedis, DelayProxy } from './redis.js';

const SERVICES = ['frontend', 'api', 'db'] as const;
type Service = (typeof SERVICES)[number];

interface Sidecar {
  service: Service;
  child: Child;
  httpPort: number;
  metricsPort: number;
}

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'shared-decisions-'));
const children: Child[] = [];

function config(httpPort: number, metricsPort: number, sink: string, redisUrl: string, prefix: string, timeout = '300ms'): string {
  return `
receivers:
  otlp:
    protocols:
      http: { endpoint: "127.0.0.1:${httpPort}" }
processors:
  tail_sampling:
    decision_wait: 1s
    tick_interval: 100ms
    decision_cache: { sampled_cache_size: 10000, non_sampled_cache_size: 10000 }
    shared_decisions:
      redis: { endpoint: "${redisUrl}", key_prefix: "${prefix}", timeout: ${timeout} }
      wait: 1s
      ttl: 1m
    policies:
      - { name: errors, type: status_code, status_code: { status_codes: [ERROR] } }
      - { name: slow, type: latency, latency: { threshold_ms: 500 } }
exporters:
  otlphttp:
    endpoint: ${sink}
    compression: none
service:
  config_watch: false
  shutdown_delay: 0s
  telemetry:
    metrics: { address: "127.0.0.1:${metricsPort}" }
  pipelines:
    traces:
      receivers: [otlp]
      processors: [tail_sampling]
      exporters: [otlphttp]
`;
}

async function startSidecar(service: Service, sink: string, redisUrl: string, prefix: string, timeout?: string): Promise<Sidecar> {
  for (let attempt = 1; ; attempt++) {
    const httpPort = await freePort();
    const metricsPort = await freePort();
    const file = path.join(tmp, `${prefix.replace(/\W/g, '')}-${service}.yaml`);
    fs.writeFileSync(file, config(httpPort, metricsPort, sink, redisUrl, prefix, timeout));
    const child = startChild(['--config', file]);
    children.push(child);
    try {
      await waitReady(metricsPort, child);
      return { service, child, httpPort, metricsPort };
    } catch (err) {
      // Another test file may have taken a port between freePort() and the bind: try new ones.
      if (attempt >= 3 || !child.output().includes('EADDRINUSE')) throw err;
    }
  }
}

async function startSidecars(sink: string, redisUrl: string, prefix: string, timeout?: string): Promise<Sidecar[]> {
  return Promise.all(SERVICES.map((service) => startSidecar(service, sink, redisUrl, prefix, timeout)));
}

async function stopSidecars(sidecars: Sidecar[]): Promise<void> {
  for (const s of sidecars) if (s.child.proc.exitCode === null) s.child.proc.kill('SIGTERM');
  await Promise.all(sidecars.map((s) => s.child.exited));
}

let seq = 0;
const hex = (n: number, w: number) => n.toString(16).padStart(w, '0');

/** A trace across the three services: frontend (root, unless the root is outside the mesh) -> api -> db. */
interface TestTrace {
  id: string;
  spans: Record<Service, SpanSpec[]>;
}
function trace(opts: { errorIn?: Service; slow?: boolean; rootOutside?: boolean } = {}): TestTrace {
  const id = 'b2' + hex(++seq, 30);
  const now = Date.now();
  const sid = (k: number) => hex(seq, 12) + hex(k, 4);
  const f: SpanSpec = {
    traceId: id,
    spanId: sid(1),
    parentSpanId: opts.rootOutside ? 'eeeeeeeeeeeeeeee' : undefined,
    name: 'GET /checkout',
    startMs: now,
    durationMs: opts.slow ? 800 : 30,
    status: opts.errorIn === 'frontend' ? 2 : 0,
  };
  const a: SpanSpec = { traceId: id, spanId: sid(2), parentSpanId: sid(1), name: 'POST /api/cart', startMs: now + 2, durationMs: 20, status: opts.errorIn === 'api' ? 2 : 0 };
  const d: SpanSpec = { traceId: id, spanId: sid(3), parentSpanId: sid(2), name: 'SELECT cart', startMs: now + 4, durationMs: 5, status: opts.errorIn === 'db' ? 2 : 0 };
  return { id, spans: { frontend: [f], api: [a], db: [d] } };
}

async function send(s: Sidecar, spans: SpanSpec[]): Promise<number> {
  const r = await fetch(`http://127.0.0.1:${s.httpPort}/v1/traces`, {
    method: 'POST',
    headers: { 'content-type': 'application/x-protobuf' },
    body: requestBytes(spans, { 'service.name': s.service }),
  });
  await r.arrayBuffer();
  return r.status;
}

/** Sends each sidecar its services' spans of all traces (one request per sidecar); every answer must be 200. */
async function sendAll(sidecars: Sidecar[], traces: TestTrace[]): Promise<void> {
  const statuses = await Promise.all(sidecars.map((s) => send(s, traces.flatMap((t) => t.spans[s.service]))));
  expect(statuses).toEqual([200, 200, 200]);
}

async function metric(s: Sidecar, name: string, labels: Record<string, string> = {}): Promise<number> {
  const text = await (await fetch(`http://127.0.0.1:${s.metricsPort}/metrics`)).text();
  let sum = 0;
  for (const line of text.split('\n')) {
    if (!line.startsWith(name + '{') && !line.startsWith(name + ' ')) continue;
    if (!Object.entries(labels).every(([k, v]) => line.includes(`${k}="${v}"`))) continue;
    sum += Number(line.slice(line.lastIndexOf(' ') + 1));
  }
  return sum;
}

const keysOf = (t: TestTrace) => SERVICES.flatMap((s) => t.spans[s].map((x) => `${x.traceId}:${x.spanId}`));
const arrived = (backend: OtlpTestBackend, t: TestTrace) => keysOf(t).filter((k) => backend.spanKeys.has(k)).length;

async function until(cond: () => boolean | Promise<boolean>, timeoutMs: number): Promise<void> {
  const t0 = Date.now();
  while (!(await cond())) {
    if (Date.now() - t0 > timeoutMs) return;
    await new Promise((r) => setTimeout(r, 50));
  }
}

describe.skipIf(!HAVE_REDIS)('shared decisions: three sidecar processes and one Redis', () => {
  let redis: TestRedis;
  let backend: OtlpTestBackend;
  beforeAll(async () => {
    redis = await TestRedis.start();
    backend = new OtlpTestBackend({ grpc: false });
    await backend.start();
  });
  afterAll(async () => {
    for (const c of children) if (c.proc.exitCode === null) c.proc.kill('SIGKILL');
    await backend?.close();
    await redis?.stop();
    fs.rmSync(tmp, { recursive: true, force: true });
  });

  it('every trace some sidecar keeps arrives whole from all three; traces nobody keeps do not arrive', async () => {
    const sidecars = await startSidecars(backend.httpEndpoint, redis.url, 'complete:');
    try {
      const kept = {
        errorAtRoot: [trace({ errorIn: 'frontend' }), trace({ errorIn: 'frontend' })],
        errorInMiddle: [trace({ errorIn: 'api' }), trace({ errorIn: 'api' })],
        errorAtLeaf: [trace({ errorIn: 'db' }), trace({ errorIn: 'db' })],
        rootNeverArrives: [trace({ errorIn: 'db', rootOutside: true }), trace({ slow: true, rootOutside: true })],
        slow: [trace({ slow: true }), trace({ slow: true })],
      };
      const nobody = [trace(), trace(), trace(), trace({ rootOutside: true })];
      const all = [...Object.values(kept).flat(), ...nobody];
      await sendAll(sidecars, all);
      const expected = Object.values(kept).flat();
      await until(() => expected.every((t) => arrived(backend, t) === 3), 8_000);
      for (const [category, traces] of Object.entries(kept)) {
        expect({ category, arrived: traces.map((t) => arrived(backend, t)) }).toEqual({ category, arrived: traces.map(() => 3) });
      }
      // Late spans of a trace a peer kept: forwarded by the sidecar that only learned of the keep.
      const lateOf = kept.errorAtLeaf[0];
      const late: SpanSpec = { ...lateOf.spans.api[0], spanId: 'feedfeedfeed0001', name: 'late retry' };
      expect(await send(sidecars[1], [late])).toBe(200);
      await until(() => backend.spanKeys.has(`${lateOf.id}:feedfeedfeed0001`), 3_000);
      expect(backend.spanKeys.has(`${lateOf.id}:feedfeedfeed0001`)).toBe(true);
      // Nobody keeps these: each sidecar holds them for `wait`, then drops them.
      await until(async () => (await Promise.all(sidecars.map((s) => metric(s, 'otelcol_processor_tail_sampling_shared_traces_held')))).every((n) => n === 0), 5_000);
      for (const t of nobody) expect(arrived(backend, t)).toBe(0);
      const dropped = await Promise.all(sidecars.map((s) => metric(s, 'sidecar_spans_dropped_total', { reason: 'sampled_out' })));
      expect(dropped).toEqual([nobody.length, nobody.length, nobody.length]);
      // Learned from peers: the api sidecar had no reason of its own for any kept trace but the middle errors.
      expect(await metric(sidecars[1], 'otelcol_processor_tail_sampling_shared_keeps_learned_total')).toBe(expected.length - kept.errorInMiddle.length);
      expect(await metric(sidecars[0], 'otelcol_processor_tail_sampling_shared_decisions_without_store_total')).toBe(0);
      // One key per kept trace; nothing else in the store.
      expect(Number((await redis.command('DBSIZE')).slice(1))).toBe(expected.length);
    } finally {
      await stopSidecars(sidecars);
    }
  });

  it('Redis stopped under traffic: every span accepted, each sidecar keeps what its own policies keep, drops counted; back: complete again without a restart', async () => {
    backend.reset();
    const sidecars = await startSidecars(backend.httpEndpoint, redis.url, 'outage:');
    try {
      await redis.stop();
      const during = [trace({ errorIn: 'db' }), trace({ errorIn: 'frontend' }), trace()];
      await sendAll(sidecars, during); // 200 from all three: nothing waits for the store
      await until(() => backend.spanKeys.has(`${during[0].id}:${during[0].spans.db[0].spanId}`) && backend.spanKeys.has(`${during[1].id}:${during[1].spans.frontend[0].spanId}`), 5_000);
      await until(async () => (await Promise.all(sidecars.map((s) => metric(s, 'otelcol_processor_tail_sampling_sampling_traces_on_memory')))).every((n) => n === 0), 5_000);
      // Each kept its own reason only: the db span of the db error, the frontend span of the frontend error.
      expect(arrived(backend, during[0])).toBe(1);
      expect(arrived(backend, during[1])).toBe(1);
      expect(arrived(backend, during[2])).toBe(0);
      const alone = await Promise.all(sidecars.map((s) => metric(s, 'otelcol_processor_tail_sampling_shared_decisions_without_store_total')));
      // frontend decided 2 alone (db error, plain), api 3, db 2 (frontend error, plain).
      expect(alone).toEqual([2, 3, 2]);
      const sampledOut = await Promise.all(sidecars.map((s) => metric(s, 'sidecar_spans_dropped_total', { reason: 'sampled_out' })));
      expect(sampledOut).toEqual([2, 3, 2]);
      const accepted = await Promise.all(sidecars.map((s) => metric(s, 'otelcol_receiver_accepted_spans_total')));
      expect(accepted).toEqual([3, 3, 3]);
      expect((await Promise.all(sidecars.map((s) => metric(s, 'otelcol_processor_tail_sampling_shared_store_errors_total')))).every((n) => n > 0)).toBe(true);

      await redis.resume();
      // The client reconnects by itself; after the back-off the sidecars use the store again.
      const after: TestTrace[] = [];
      await until(async () => {
        const t = trace({ errorIn: 'db' });
        after.push(t);
        await sendAll(sidecars, [t]);
        await new Promise((r) => setTimeout(r, 1_500));
        return arrived(backend, t) === 3;
      }, 15_000);
      expect(arrived(backend, after[after.length - 1])).toBe(3);
    } finally {
      await stopSidecars(sidecars);
    }
  });

  it('Redis slow: receiving never waits for it, and decisions fall back when the timeout passes', async () => {
    backend.reset();
    const proxy = await DelayProxy.start(redis.port);
    const sidecars = await startSidecars(backend.httpEndpoint, `redis://127.0.0.1:${proxy.port}`, 'slow:', '200ms');
    try {
      // A first trace while the store is fast: every sidecar is connected (through the proxy) before it slows down.
      const warm = trace({ errorIn: 'db' });
      await sendAll(sidecars, [warm]);
      await until(() => arrived(backend, warm) === 3, 5_000);
      expect(arrived(backend, warm)).toBe(3);
      proxy.delayMs = 3_000;
      const traces = [trace({ errorIn: 'db' }), trace()];
      const t0 = performance.now();
      await sendAll(sidecars, traces);
      // Requests are answered long before one store round trip could finish.
      expect(performance.now() - t0).toBeLessThan(1_500);
      await until(async () => (await Promise.all(sidecars.map((s) => metric(s, 'otelcol_processor_tail_sampling_sampling_traces_on_memory')))).every((n) => n === 0), 6_000);
      expect(arrived(backend, traces[0])).toBe(1); // the db sidecar's own keep
      expect(arrived(backend, traces[1])).toBe(0);
      const timeouts = await Promise.all(sidecars.map((s) => metric(s, 'otelcol_processor_tail_sampling_shared_store_errors_total', { kind: 'timeout' })));
      expect(timeouts.every((n) => n > 0)).toBe(true);
      const alone = await Promise.all(sidecars.map((s) => metric(s, 'otelcol_processor_tail_sampling_shared_decisions_without_store_total')));
      expect(alone).toEqual([2, 2, 1]);
      expect(await metric(sidecars[0], 'otelcol_processor_tail_sampling_shared_decisions_without_store_total', { reason: 'timeout' })).toBeGreaterThan(0);
    } finally {
      await stopSidecars(sidecars);
      await proxy.close();
    }
  });
});
