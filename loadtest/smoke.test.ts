/**
 * A short smoke run of every bundled scenario through the real collector
 * (dist/collector/sidecar.mjs; run `npm run build` first): a couple of seconds at a
 * low rate, asserting the report files are written and the loss is 0.
 * Full-length runs stay out of `npm test` (npm run loadtest -- <scenario>).
 *
 * To keep each run short, tail_sampling's decision_wait is cut to 1s and
 * searches take a single 2s step.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, test } from 'vitest';
import { runScenario, SIDE_CAR_MAIN } from './run.js';
import { listScenarios, loadScenario } from './scenario.js';

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'loadtest-smoke-'));
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

const haveCollector = fs.existsSync(SIDE_CAR_MAIN);
if (!haveCollector) console.warn(`loadtest smoke runs skipped: ${SIDE_CAR_MAIN} is missing (run npm run build)`);

describe.skipIf(!haveCollector)('scenario smoke runs through the collector', () => {
  // Multi-sidecar scenarios have their own report (below: one of them).
  for (const name of listScenarios().filter((n) => loadScenario(n).mesh === undefined)) {
    test(name, { timeout: 90_000 }, async (ctx) => {
      const s = loadScenario(name);
      for (const [id, cfg] of Object.entries(s.collector.processors)) {
        if (id.split('/')[0] === 'tail_sampling' && cfg) cfg.decision_wait = '1s';
      }
      s.collector.drain_timeout_ms = Math.min(s.collector.drain_timeout_ms, 20_000);
      if (s.search) s.search = { ...s.search, start_rate: 1000, max_rate: 1000 };
      const out = await runScenario({
        scenario: name,
        prepared: s,
        durationMs: 2000,
        rate: s.search ? undefined : 800 * (s.traffic.rate / Math.max(s.traffic.rate, ...s.traffic.phases.map((p) => p.rate ?? p.ramp_to ?? 0))),
        outDir: tmp,
        quiet: true,
        inThreadGenerator: true,
        log: () => {},
      });
      const run = out.report.runs[0];
      if (run.status === 'skipped') {
        console.warn(`smoke ${name} skipped: ${run.message}`);
        ctx.skip();
        return;
      }
      expect(fs.existsSync(out.files.json)).toBe(true);
      expect(fs.existsSync(out.files.html)).toBe(true);
      const html = fs.readFileSync(out.files.html, 'utf8');
      expect(html).toContain('<svg');
      expect(html).not.toMatch(/<script|https?:\/\/(?!www\.w3\.org)/);
      const json = JSON.parse(fs.readFileSync(out.files.json, 'utf8')) as { runs: Array<{ accounting: { loss: number; accepted: number } }> };
      expect(json.runs[0].accounting.accepted).toBeGreaterThan(0);
      expect(run.status, run.message).toBe('ok');
      expect(run.accounting.loss).toBe(0);
      expect(run.accounting.drainComplete).toBe(true);
      expect(run.crosscheck.filter((c) => !c.ok)).toEqual([]);
    });
  }

  test('mesh-3 (three sidecars, one Redis): kept traces whole with shared decisions and through a two-instance sampling tier, loss 0 in every run', { timeout: 90_000 }, async (ctx) => {
    const { HAVE_REDIS } = await import('./redis.js');
    if (!HAVE_REDIS) {
      ctx.skip();
      return;
    }
    const s = loadScenario('mesh-3');
    s.collector.processors.tail_sampling!.decision_wait = '1s';
    // A wait and a store timeout with room for a machine busy with the rest of the suite (the goal is completeness, not speed).
    s.mesh = { ...s.mesh!, shared: { ...s.mesh!.shared, wait: '3s', redis: { timeout: '2s' } }, tier: 2 };
    s.collector.drain_timeout_ms = 20_000;
    const out = await runScenario({ scenario: 'mesh-3', prepared: s, durationMs: 2000, rate: 600, outDir: tmp, quiet: true, log: () => {} });
    const report = JSON.parse(fs.readFileSync(out.files.json, 'utf8')) as { runs: Array<{ label: string; loss: number; keptTraces: number; keptComplete: number; store?: { keysInRedis: number } }> };
    const [shared, alone, tier] = report.runs;
    expect([shared.label, alone.label, tier.label]).toEqual(['shared_decisions', 'alone', 'tier_2']);
    expect([shared.loss, alone.loss, tier.loss]).toEqual([0, 0, 0]);
    expect(tier.keptTraces).toBeGreaterThan(0);
    expect(tier.keptComplete).toBe(tier.keptTraces);
    expect(shared.keptTraces).toBeGreaterThan(0);
    expect(shared.keptComplete).toBe(shared.keptTraces);
    expect(shared.store!.keysInRedis).toBe(shared.keptTraces);
    expect(out.exitCode).toBe(0);
  });
});
