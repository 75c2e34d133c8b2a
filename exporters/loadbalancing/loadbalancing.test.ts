import { afterEach, describe, expect, it } from 'vitest';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import { OtlpTestBackend } from '../../loadtest/sink/backend.js';
import type { Span } from '../../collector/pdata/spans.js';
import { Telemetry } from '../../collector/telemetry/metrics.js';
import { silentLogger } from '../../collector/telemetry/logger.js';
import { systemClock } from '../../collector/component.js';
import { withDefaults } from '../../config/defaults.js';
import { makeSpans, spanIdHex } from '../../test/otlp.js';
import { waitFor } from '../exporterhelper/testing.js';
import { LoadBalancingConfigSchema, validateLoadBalancingConfig } from './config.js';
import { createLoadBalancingExporter } from './create.js';
import { loadBalancingExporterFactory } from './index.js';
import { ManualResolver } from './testing.js';
import { HashRing } from './ring.js';

const FAST = {
  timeout: '500ms',
  tls: { insecure: true },
  compression: 'none',
  retry_on_failure: { initial_interval: '20ms', max_interval: '50ms', max_elapsed_time: 0 },
  circuit_breaker: { failure_threshold: 1000 },
};

let cleanup: Array<() => Promise<void> | void> = [];
afterEach(async () => {
  for (const f of cleanup.reverse()) await f();
  cleanup = [];
});

/** Backends that record which trace ids each one received. */
async function backends(n: number) {
  const out: Array<{ b: OtlpTestBackend; traces: Map<string, number> }> = [];
  for (let i = 0; i < n; i++) {
    const traces = new Map<string, number>();
    const b = new OtlpTestBackend({
      http: false,
      onRequest: (req, spans) => {
        if (req.outcome !== 'accepted') return;
        for (const s of spans ?? []) traces.set(s.traceId, (traces.get(s.traceId) ?? 0) + 1);
      },
    });
    await b.start();
    cleanup.push(() => b.close());
    out.push({ b, traces });
  }
  return out;
}

async function makeLb(endpoints: string[], cfg: Record<string, unknown> = {}, otlp: Record<string, unknown> = {}) {
  const telemetry = new Telemetry();
  const resolver = new ManualResolver(endpoints);
  const config = withDefaults(LoadBalancingConfigSchema, {
    resolver: { static: { hostnames: endpoints } },
    protocol: { otlp: { ...FAST, ...otlp } },
    probe_interval: '10ms',
    ...cfg,
  });
  expect(validateLoadBalancingConfig(config)).toEqual([]);
  const lb = createLoadBalancingExporter({ id: 'loadbalancing', logger: silentLogger(), telemetry, clock: systemClock }, config, {
    resolver,
    healthIntervalMs: 0,
    rerouteTimeoutMs: 2000,
    sleep: (ms) => new Promise((r) => setTimeout(r, Math.min(ms, 20))),
  });
  await lb.start();
  cleanup.push(() => lb.shutdown(2000));
  const dropped = async () => Object.values(await telemetry.droppedByReason()).reduce((a, b) => a + b, 0);
  return { lb, resolver, telemetry, dropped };
}

/** `n` traces of `per` spans each, as one Span[] per trace. */
function traces(n: number, per: number, service = 'checkout'): Span[][] {
  return Array.from({ length: n }, () => {
    const t = randomBytes(16).toString('hex');
    return makeSpans(Array.from({ length: per }, () => ({ traceId: t, spanId: spanIdHex(), name: 'op' })), { 'service.name': service });
  });
}

function whereIs(bs: Array<{ b: OtlpTestBackend; traces: Map<string, number> }>, traceId: string): string[] {
  return bs.filter((x) => x.traces.has(traceId)).map((x) => x.b.grpcEndpoint);
}

const total = (bs: Array<{ b: OtlpTestBackend }>) => bs.reduce((a, x) => a + x.b.stats.acceptedSpans, 0);

describe('loadbalancing exporter', () => {
  it('is registered under both spellings with the Collector config shape', () => {
    expect(loadBalancingExporterFactory.type).toBe('loadbalancing');
    const bad = withDefaults(LoadBalancingConfigSchema, { resolver: { static: { hostnames: ['a:1'] }, dns: { hostname: 'x' } } });
    expect(validateLoadBalancingConfig(bad).map((p) => p.message)).toEqual(['only one resolver may be set (found static, dns)']);
    const none = withDefaults(LoadBalancingConfigSchema, { resolver: {} });
    expect(validateLoadBalancingConfig(none)[0].message).toMatch(/exactly one resolver/);
  });

  it('sends every span of a trace to the backend the Collector ring names, one request per backend per batch', async () => {
    const bs = await backends(3);
    const eps = bs.map((x) => x.b.grpcEndpoint);
    const { lb, dropped } = await makeLb(eps);
    const ring = new HashRing(eps);
    const all = traces(60, 4);
    // The spans of each trace arrive in two separate batches, mixed with other traces.
    const firstHalf = all.flatMap((t) => t.slice(0, 2));
    const secondHalf = all.flatMap((t) => t.slice(2));
    await lb.consume(firstHalf);
    await lb.consume(secondHalf);
    await waitFor(() => total(bs) === 240);
    for (const t of all) {
      const id = t[0].traceId;
      expect(whereIs(bs, id)).toEqual([ring.endpoints[ring.ownerOfTraceId(id)]]);
    }
    for (const x of bs) expect(x.traces.size).toBeGreaterThan(0);
    expect(bs.reduce((a, x) => a + x.b.stats.requests, 0)).toBe(6); // 2 batches x 3 backends
    expect(await dropped()).toBe(0);
  });

  it('routing_key: service keeps a service on one backend', async () => {
    const bs = await backends(3);
    const { lb } = await makeLb(
      bs.map((x) => x.b.grpcEndpoint),
      { routing_key: 'service' },
    );
    for (const svc of ['a', 'b', 'c', 'd', 'e', 'f']) await lb.consume(traces(10, 1, svc).flat());
    await waitFor(() => total(bs) === 60);
    const ring = new HashRing(bs.map((x) => x.b.grpcEndpoint));
    for (const svc of ['a', 'b', 'c', 'd', 'e', 'f']) {
      const owner = bs.find((x) => x.b.grpcEndpoint === ring.endpoints[ring.ownerOfKey(svc)])!;
      // all 10 traces of this service are there
      expect([...owner.traces.keys()].length).toBeGreaterThanOrEqual(10);
    }
  });

  it('a backend that leaves the set hands its queued spans to the new owners: nothing dropped, traces stay whole', async () => {
    const bs = await backends(3);
    const eps = bs.map((x) => x.b.grpcEndpoint);
    const { lb, resolver, telemetry, dropped } = await makeLb(eps);
    const leaving = bs[1];
    await leaving.b.setMode({ kind: 'down' });
    const all = traces(90, 3);
    await lb.consume(all.flat());
    const mine = all.filter((t) => lb.endpointForTraceId(t[0].traceId) === leaving.b.grpcEndpoint);
    expect(mine.length).toBeGreaterThan(5);
    await waitFor(() => total(bs) === (90 - mine.length) * 3); // the others are delivered; its share is stuck in retries
    resolver.set([eps[0], eps[2]]);
    await lb.settled();
    await lb.handOversDone();
    await waitFor(() => total(bs) === 270);
    expect(leaving.b.stats.acceptedSpans).toBe(0);
    for (const t of all) expect(whereIs(bs, t[0].traceId)).toHaveLength(1);
    expect(await telemetry.total('sidecar_loadbalancer_rerouted_spans_total', { reason: 'removed' })).toBe(mine.length * 3);
    expect(await dropped()).toBe(0);
    expect(lb.routable).toEqual([eps[0], eps[2]].sort());
  });

  it('a backend down past reroute_after is taken out of the ring, its share moves, and it comes back when a probe succeeds', async () => {
    const bs = await backends(2);
    const eps = bs.map((x) => x.b.grpcEndpoint);
    const { lb, telemetry, dropped } = await makeLb(eps, { reroute_after: '150ms' });
    const down = bs[0];
    const up = bs[1];
    await down.b.setMode({ kind: 'down' });
    const all = traces(40, 2);
    await lb.consume(all.flat());
    const mine = all.filter((t) => lb.endpointForTraceId(t[0].traceId) === down.b.grpcEndpoint).length;
    expect(mine).toBeGreaterThan(3);
    // Before reroute_after: its share waits in its queue (retries), nothing is lost.
    lb.checkHealth();
    expect(lb.routable).toHaveLength(2);
    await new Promise((r) => setTimeout(r, 200));
    lb.checkHealth();
    expect(lb.routable).toEqual([up.b.grpcEndpoint]);
    await lb.handOversDone();
    await waitFor(() => up.b.stats.acceptedSpans === 80);
    expect(await telemetry.total('sidecar_loadbalancer_rerouted_spans_total', { reason: 'backend_down' })).toBe(mine * 2);
    // The only backend left is never taken out, however long it fails.
    await up.b.setMode({ kind: 'down' });
    await lb.consume(traces(1, 1).flat());
    await new Promise((r) => setTimeout(r, 200));
    lb.checkHealth();
    expect(lb.routable).toEqual([up.b.grpcEndpoint]);
    await up.b.setMode({ kind: 'ok' });
    await waitFor(() => up.b.stats.acceptedSpans === 81);
    // Recovery: the probe succeeds, the backend takes its keys back.
    await down.b.setMode({ kind: 'ok' });
    await new Promise((r) => setTimeout(r, 20));
    lb.checkHealth();
    await waitFor(() => lb.routable.length === 2);
    const more = traces(40, 1);
    await lb.consume(more.flat());
    await waitFor(() => total(bs) === 80 + 1 + 40);
    expect(down.b.stats.acceptedSpans).toBeGreaterThan(0);
    expect(await dropped()).toBe(0);
  });

  it('when one backend\'s queue is full and the others took their part, the rest waits for room instead of a refusal that would duplicate', async () => {
    const bs = await backends(2);
    const eps = bs.map((x) => x.b.grpcEndpoint);
    const { lb, dropped } = await makeLb(eps, {}, { sending_queue: { queue_size: 1, num_consumers: 1 } });
    const slow = bs[0];
    await slow.b.setMode({ kind: 'slow', delayMs: 150 });
    const all = traces(40, 1);
    const mine = (t: Span[][]) => t.filter((x) => lb.endpointForTraceId(x[0].traceId) === slow.b.grpcEndpoint);
    // Three batches in a row: the slow backend holds one in flight and one queued, so the third
    // finds its queue full while the other backend takes its part at once.
    await lb.consume(all.slice(0, 10).flat());
    await lb.consume(all.slice(10, 20).flat());
    const fast = bs[1];
    const fastShare = (t: Span[][]) => t.length - mine(t).length;
    await waitFor(() => fast.b.stats.acceptedSpans === fastShare(all.slice(0, 20)));
    const t0 = Date.now();
    await lb.consume(all.slice(20, 40).flat());
    expect(Date.now() - t0).toBeGreaterThan(50); // it waited for room
    await waitFor(() => total(bs) === 40);
    expect(slow.b.stats.acceptedSpans).toBe(mine(all).length);
    expect(bs.reduce((a, x) => a + x.b.stats.duplicateSpans, 0)).toBe(0);
    expect(await dropped()).toBe(0);
  });

  it('with no backend resolved it refuses (retryable) and keeps nothing', async () => {
    const { lb, resolver } = await makeLb(['127.0.0.1:9']);
    resolver.set([]);
    await lb.settled();
    await expect(lb.consume(traces(1, 1).flat())).rejects.toMatchObject({ retryable: true });
  });

  it('disk queues: one file per backend, and a restart with a smaller set re-routes the files of backends that are gone', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'lb-disk-'));
    cleanup.push(() => fs.rmSync(dir, { recursive: true, force: true }));
    const bs = await backends(2);
    const eps = bs.map((x) => x.b.grpcEndpoint);
    const disk = { sending_queue: { storage: 'disk', directory: dir } };
    await bs[1].b.setMode({ kind: 'down' });
    const first = await makeLb(eps, {}, disk);
    const all = traces(30, 2);
    await first.lb.consume(all.flat());
    const stuck = all.filter((t) => first.lb.endpointForTraceId(t[0].traceId) === eps[1]).length;
    expect(stuck).toBeGreaterThan(2);
    await waitFor(() => bs[0].b.stats.acceptedSpans === (30 - stuck) * 2);
    await first.lb.shutdown(50); // bs[1] is down: its requests stay in its file
    expect(fs.readdirSync(dir).filter((f) => f.endsWith('.sqlite')).sort()).toHaveLength(2);
    expect(await first.dropped()).toBe(0);

    const second = await makeLb([eps[0]], {}, disk);
    await second.lb.handOversDone();
    await waitFor(() => bs[0].b.stats.acceptedSpans === 60);
    expect(bs[1].b.stats.acceptedSpans).toBe(0);
    expect(await second.telemetry.total('sidecar_loadbalancer_rerouted_spans_total', { reason: 'removed' })).toBe(stuck * 2);
    expect(await second.dropped()).toBe(0);
  });
});
