/**
 * The harness's own accounting, with the collector replaced by a direct path
 * (generator -> sink): its counts must equal the truth, with and without a
 * known drop rule at the sink.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, test } from 'vitest';
import { runOnce } from './run.js';
import { parseScenario } from './scenario.js';
import { Metrics } from './prom.js';
import { LatencyHistogram } from './recorder.js';
import { computeFidelity } from './report.js';
import { CLASS_ERROR, CLASS_SLOW } from './generator/model.js';

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'loadtest-acct-'));
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

function scenario(protocol: string, extra = '') {
  return parseScenario(
    `name: direct\nduration: 1500ms\ntraffic:\n  rate: 2000\n  protocol: ${protocol}\n  seed: 5\n  spans_per_request: 50\n  retry: {initial: 50ms, max: 200ms, max_attempts: 20}\n${extra}`,
  );
}

function idHex(ids: Uint8Array, i: number): string {
  return Buffer.from(ids.subarray(16 * i, 16 * i + 16)).toString('hex');
}

describe('generator -> sink directly', () => {
  for (const protocol of ['grpc', 'http/protobuf', 'http/json']) {
    test(`${protocol}: loss 0 and every count equals the truth`, async () => {
      const s = scenario(protocol, protocol === 'http/json' ? '  gzip: true\n' : '');
      const r = await runOnce({ scenario: s, target: 'direct', inThreadGenerator: true, workDir: tmp, progressEvery: 0, log: () => {} });
      const g = r.generator;
      expect(r.status).toBe('ok');
      // The rate is 2,000 spans/s for 1.5 s, but a loaded machine (CI beside other work) generates fewer:
      // the equalities below are the test; this only checks that traffic ran (many requests, many traces).
      expect(g.generated_spans).toBeGreaterThan(250);
      expect(g.offered_spans).toBe(g.generated_spans);
      expect(g.accepted_spans).toBe(g.offered_spans);
      expect(r.accounting.exported).toBe(g.offered_spans);
      expect(r.accounting.loss).toBe(0);
      expect(r.accounting.drainComplete).toBe(true);
      expect(r.crosscheck.every((c) => c.ok)).toBe(true);
      // every trace arrived whole: fidelity sees all of them kept and complete
      expect(r.fidelity.eligibleTraces).toBe(g.generated_traces);
      expect(r.fidelity.keptTraces).toBe(g.generated_traces);
      expect(r.fidelity.incompleteKeptTraces).toBe(0);
      expect(r.fidelity.volumeReduction).toBe(1);
      expect(r.latency.span.count).toBe(g.offered_spans);
      expect(r.latency.root.count).toBe(g.generated_traces);
    });
  }

  for (const protocol of ['grpc', 'http/protobuf']) {
    test(`${protocol} replay: a 4-request pool re-sent many times; ids unique, truth exact, loss 0`, async () => {
      const s = scenario(protocol, `  replay: true\n  replay_pool: 4\n${protocol === 'http/protobuf' ? '  gzip: true\n' : ''}`);
      const r = await runOnce({ scenario: s, target: 'direct', inThreadGenerator: true, workDir: tmp, progressEvery: 0, log: () => {} });
      const g = r.generator;
      expect(r.status).toBe('ok');
      expect(g.replay).toBe(true);
      expect(g.offered_requests).toBeGreaterThan(4 * 10); // the pool went round at least 10 times
      expect(g.offered_spans).toBe(g.generated_spans);
      expect(g.accepted_spans).toBe(g.offered_spans);
      expect(r.accounting.exported).toBe(g.offered_spans);
      expect(r.accounting.loss).toBe(0);
      expect(r.crosscheck.every((c) => c.ok)).toBe(true);
      // every sent (trace, span) id pair is new, every trace id is one of the truth's, every trace arrived whole
      expect(r.fidelity.duplicateSpans).toBe(0);
      expect(r.fidelity.unknownTraces).toBe(0);
      expect(r.fidelity.eligibleTraces).toBe(g.generated_traces);
      expect(r.fidelity.keptTraces).toBe(g.generated_traces);
      expect(r.fidelity.incompleteKeptTraces).toBe(0);
      // one root per trace: parent ids were rewritten with their trace
      expect(r.latency.root.count).toBe(g.generated_traces);
      // roots end as their request leaves: latency stays small instead of growing with the pool's age
      expect(r.latency.root.p99).toBeLessThan(1000);
    });
  }

  test('replay with OTLP/JSON is a configuration error', () => {
    expect(() => scenario('http/json', '  replay: true\n')).toThrow(/replay works only with protobuf/);
  });

  test('known drop rule: the sink rejects 3 spans of every request via partial_success', async () => {
    const s = scenario('grpc', 'faults:\n  - {at: 0s, mode: partial, reject: 3}\n');
    const r = await runOnce({ scenario: s, target: 'direct', inThreadGenerator: true, workDir: tmp, progressEvery: 0, log: () => {} });
    const g = r.generator;
    const expectedRejected = 3 * g.offered_requests;
    expect(g.offered_requests).toBeGreaterThan(20);
    expect(g.partial_rejected_spans).toBe(expectedRejected);
    expect(g.accepted_spans).toBe(g.offered_spans - expectedRejected);
    expect(r.accounting.exported).toBe(g.offered_spans - expectedRejected);
    expect(r.accounting.droppedByReason).toEqual({ backend_rejected: expectedRejected });
    expect(r.accounting.loss).toBe(0);
    expect(r.crosscheck.every((c) => c.ok)).toBe(true);
    // partially rejected requests make their traces uncertain: they are not counted as eligible
    expect(r.fidelity.eligibleTraces).toBeLessThan(g.generated_traces);
  });

  test('a window of 503s: the client retries like an SDK, nothing is lost or duplicated', async () => {
    const s = scenario('http/protobuf', 'faults:\n  - {at: 300ms, mode: "503", for: 500ms}\n');
    const r = await runOnce({ scenario: s, target: 'direct', inThreadGenerator: true, workDir: tmp, progressEvery: 0, log: () => {} });
    const g = r.generator;
    expect(g.failed_attempt_spans['http:503']).toBeGreaterThan(0);
    expect(g.retries).toBeGreaterThan(0);
    expect(g.accepted_spans).toBe(g.offered_spans);
    expect(r.accounting.refusedByCode).toEqual({});
    expect(r.accounting.exported).toBe(g.offered_spans);
    expect(r.fidelity.duplicateSpans).toBe(0);
    expect(r.crosscheck.every((c) => c.ok)).toBe(true);
  });

  test('a permanent error is not retried and is reported by code', async () => {
    const s = scenario('grpc', 'faults:\n  - {at: 0s, mode: permanent}\n');
    const r = await runOnce({ scenario: s, target: 'direct', inThreadGenerator: true, workDir: tmp, progressEvery: 0, log: () => {} });
    const g = r.generator;
    expect(g.retries).toBe(0);
    expect(g.accepted_spans).toBe(0);
    expect(r.accounting.refusedByCode).toEqual({ 'grpc:INVALID_ARGUMENT': g.offered_spans });
    expect(r.accounting.exported).toBe(0);
  });
});

describe('report arithmetic', () => {
  test('fidelity counts classes, completeness and reduction from truth and arrivals', () => {
    const n = 4;
    const ids = new Uint8Array(16 * n);
    for (let i = 0; i < n; i++) ids[16 * i] = i + 1;
    const truth = {
      count: n,
      ids,
      spans: Int32Array.from([5, 3, 2, 4]),
      accepted: Int32Array.from([5, 3, 2, 4]),
      classes: Uint8Array.from([CLASS_ERROR, CLASS_SLOW, 0, 0]),
      durationMs: new Float32Array(n),
      uncertain: new Uint8Array(n),
    };
    // error trace whole, slow trace missing a span, one normal kept, one dropped
    const arrived = new Map([
      [idHex(ids, 0), 5],
      [idHex(ids, 1), 2],
      [idHex(ids, 2), 2],
      ['ff'.repeat(16), 1],
    ]);
    const f = computeFidelity(truth, arrived, 14, 10);
    expect(f.classes.error).toMatchObject({ total: 1, kept: 1, complete: 1 });
    expect(f.classes.slow).toMatchObject({ total: 1, kept: 1, complete: 0 });
    expect(f.classes.normal).toMatchObject({ total: 2, kept: 1, keptFraction: 0.5 });
    expect(f.incompleteKeptTraces).toBe(1);
    expect(f.unknownTraces).toBe(1);
    expect(f.volumeReduction).toBeCloseTo(1.4);
  });

  test('latency histogram quantiles land within a bucket (10%)', () => {
    const h = new LatencyHistogram();
    for (let i = 1; i <= 1000; i++) h.add(i);
    expect(h.quantile(0.5)).toBeGreaterThanOrEqual(500);
    expect(h.quantile(0.5)).toBeLessThanOrEqual(550);
    expect(h.quantile(0.99)).toBeGreaterThanOrEqual(990);
    expect(h.quantile(0.99)).toBeLessThanOrEqual(1000);
  });

  test('prometheus text: sums by name and label, escapes, several label sets', () => {
    const m = Metrics.parse(
      [
        '# HELP x y',
        'otelcol_receiver_accepted_spans_total{receiver="otlp",transport="grpc"} 10',
        'otelcol_receiver_accepted_spans_total{receiver="otlp",transport="http"} 5',
        'sidecar_spans_dropped_total{component="tail_sampling",reason="sampled_out"} 7',
        'sidecar_spans_dropped_total{component="exporter/otlp",reason="export_permanent_error"} 2',
        'weird{a="q\\"uote"} 1e3',
      ].join('\n'),
    );
    expect(m.sum('otelcol_receiver_accepted_spans_total')).toBe(15);
    expect(m.sum('otelcol_receiver_accepted_spans_total', { transport: 'http' })).toBe(5);
    expect(m.by('sidecar_spans_dropped_total', 'reason')).toEqual({ sampled_out: 7, export_permanent_error: 2 });
    expect(m.samples.find((s) => s.name === 'weird')!.labels.a).toBe('q"uote');
    expect(m.value('weird')).toBe(1000);
  });
});
