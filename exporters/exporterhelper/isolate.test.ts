/**
 * Batch isolation against a strict backend: it refuses (gRPC INVALID_ARGUMENT,
 * HTTP 400) any request holding a span named "poison". The exporters must
 * deliver every other span exactly once, under its own resource, and drop
 * exactly the marked spans as backend_rejected, also from the disk queue.
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { OtlpTestBackend } from '../../loadtest/sink/backend.js';
import { createOtlpExporter } from '../otlp/exporter.js';
import { createOtlpHttpExporter } from '../otlphttp/exporter.js';
import { OtlpExporterConfigSchema } from '../otlp/config.js';
import { OtlpHttpExporterConfigSchema } from '../otlphttp/config.js';
import { FakeTimers, waitFor } from './testing.js';
import type { QueuedExporter } from './exporter.js';
import { FakeClock } from '../../collector/consumertest.js';
import { Telemetry } from '../../collector/telemetry/metrics.js';
import { silentLogger } from '../../collector/telemetry/logger.js';
import { spanName } from '../../collector/pdata/attributes.js';
import type { Span } from '../../collector/pdata/spans.js';
import { withDefaults } from '../../config/defaults.js';
import { makeSpans, traceIdHex, spanIdHex } from '../../test/otlp.js';

const POISON = 'poison';

/** `n` spans over two resources (split inside each), the given indexes named "poison". */
function batch(n: number, poisoned: number[]): Span[] {
  const t = traceIdHex();
  const spec = (i: number) => ({ traceId: t, spanId: spanIdHex(), name: poisoned.includes(i) ? POISON : `op-${i}` });
  const half = n >> 1;
  return [
    ...makeSpans(Array.from({ length: half }, (_, i) => spec(i)), { 'service.name': 'first' }),
    ...makeSpans(Array.from({ length: n - half }, (_, i) => spec(half + i)), { 'service.name': 'second' }),
  ];
}

let backend: OtlpTestBackend;
/** span name -> [service.name, times received] */
let arrived: Map<string, [string, number]>;
let exporters: QueuedExporter[] = [];
let tmp: string;

beforeEach(async () => {
  arrived = new Map();
  backend = new OtlpTestBackend({
    onRequest: (_req, spans, _rejected, undecodable) => {
      if (undecodable || spans === undefined || spans.some((s) => spanName(s) === POISON)) return; // refused
      for (const s of spans) {
        const name = spanName(s);
        const seen = arrived.get(name);
        arrived.set(name, [s.resource.serviceName(), (seen?.[1] ?? 0) + 1]);
      }
    },
  });
  await backend.start();
  await backend.setMode({ kind: 'reject_marked', spanName: POISON });
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'isolate-'));
});
afterEach(async () => {
  for (const e of exporters) await e.shutdown(0);
  exporters = [];
  await backend.close();
  fs.rmSync(tmp, { recursive: true, force: true });
});

type Kind = 'grpc' | 'http-proto' | 'http-json';
async function exporter(kind: Kind, cfg: Record<string, unknown> = {}) {
  const clock = new FakeClock();
  const timers = new FakeTimers(clock);
  const telemetry = new Telemetry();
  const settings = { id: 'exp', logger: silentLogger(), telemetry, clock };
  const exp =
    kind === 'grpc'
      ? createOtlpExporter(settings, withDefaults(OtlpExporterConfigSchema, { endpoint: backend.grpcEndpoint, tls: { insecure: true }, ...cfg }), { timers, random: () => 0.5 })
      : createOtlpHttpExporter(
          settings,
          withDefaults(OtlpHttpExporterConfigSchema, { endpoint: backend.httpEndpoint, encoding: kind === 'http-json' ? 'json' : 'proto', ...cfg }),
          { timers, random: () => 0.5 },
        );
  exporters.push(exp);
  await exp.start();
  const metric = (name: string) => telemetry.total(name, { exporter: 'exp' });
  return { exp, telemetry, metric };
}

function expectDelivered(spans: Span[], except: Set<string>) {
  const want = new Map<string, string>();
  for (const s of spans) if (!except.has(spanName(s))) want.set(spanName(s), s.resource.serviceName());
  expect([...arrived.keys()].sort()).toEqual([...want.keys()].sort());
  for (const [name, [service, times]] of arrived) {
    expect(times, name).toBe(1);
    expect(service, name).toBe(want.get(name));
  }
}

describe('isolating the spans a backend refuses as invalid', () => {
  it.each(['grpc', 'http-proto', 'http-json'] as const)('%s: drops exactly the marked spans, delivers every other span once', async (kind) => {
    const { exp, telemetry, metric } = await exporter(kind);
    const spans = batch(200, [0, 77, 199]);
    await exp.consume(spans);
    await waitFor(() => exp.pending === 0 && arrived.size === 197);
    expectDelivered(spans, new Set([POISON]));
    expect(await telemetry.droppedByReason()).toEqual({ backend_rejected: 3 });
    expect(await metric('otelcol_exporter_sent_spans_total')).toBe(197);
    expect(await metric('sidecar_exporter_rejected_spans_total')).toBe(3);
    // Three bad spans in 200: at most two requests per halving for each, within the default budget.
    const extra = await metric('sidecar_exporter_isolation_requests_total');
    expect(backend.stats.requests).toBe(1 + extra);
    expect(extra).toBeLessThanOrEqual(64);
  });

  it('one bad span in 8192 costs at most 26 extra requests', async () => {
    const { exp, telemetry } = await exporter('grpc', { compression: 'none' });
    const spans = batch(8192, [5000]);
    await exp.consume(spans);
    await waitFor(() => exp.pending === 0 && arrived.size === 8191);
    expect(await telemetry.droppedByReason()).toEqual({ backend_rejected: 1 });
    expect(backend.stats.requests - 1).toBeLessThanOrEqual(26);
    expect(backend.stats.duplicateSpans).toBe(0);
  });

  it('from the disk queue (a request read back from SQLite)', async () => {
    const { exp, telemetry } = await exporter('grpc', { sending_queue: { storage: 'disk', directory: tmp } });
    const spans = batch(64, [10, 40]);
    await exp.consume(spans);
    await waitFor(() => exp.pending === 0 && arrived.size === 62);
    expectDelivered(spans, new Set([POISON]));
    expect(await telemetry.droppedByReason()).toEqual({ backend_rejected: 2 });
  });

  it('stops at max_extra_requests and drops the parts still refused whole, counted', async () => {
    const { exp, telemetry, metric } = await exporter('http-proto', { isolate_rejected: { max_extra_requests: 3 } });
    const spans = batch(100, [3, 60]);
    await exp.consume(spans);
    await waitFor(() => exp.pending === 0 && backend.stats.requests === 4);
    expect(await metric('sidecar_exporter_isolation_requests_total')).toBe(3);
    const dropped = (await telemetry.droppedByReason()).backend_rejected ?? 0;
    // Nothing lost silently: delivered + dropped = all; no marked span delivered; more than the 2 marked dropped.
    expect(arrived.size + dropped).toBe(100);
    expect(arrived.has(POISON)).toBe(false);
    expect(dropped).toBeGreaterThan(2);
    for (const [, [, times]] of arrived) expect(times).toBe(1);
  });

  it('partial_success is not split: the backend accepted the rest, so re-sending would duplicate it', async () => {
    const { exp, telemetry } = await exporter('grpc');
    await backend.setMode({ kind: 'partial', rejectSpans: 2 });
    await exp.consume(batch(10, []));
    await waitFor(() => exp.pending === 0 && backend.stats.requests === 1);
    expect(await telemetry.droppedByReason()).toEqual({ backend_rejected: 2 });
    expect(backend.stats.requests).toBe(1);
  });
});
