/** Scenario parsing: the warm-up runs before the measured duration and is kept apart from it. */
import { describe, expect, test } from 'vitest';
import { parseScenario } from './scenario.js';
import { withOverrides } from './run.js';
import { resourcesAfterWarmup } from './report.js';

describe('warmup', () => {
  test('runs before the measured duration: traffic lasts both', () => {
    const s = parseScenario('name: w\nwarmup: 15s\nduration: 30s\ntraffic: {rate: 100}\n');
    expect(s.warmup_ms).toBe(15_000);
    expect(s.traffic.duration_ms).toBe(45_000);
  });

  test('defaults to none', () => {
    const s = parseScenario('name: w\nduration: 30s\ntraffic: {rate: 100}\n');
    expect(s.warmup_ms).toBe(0);
    expect(s.traffic.duration_ms).toBe(30_000);
  });

  test('--duration sets the measured part and keeps the warm-up', () => {
    const s = withOverrides(parseScenario('name: w\nwarmup: 10s\nduration: 30s\ntraffic: {rate: 100}\n'), { durationMs: 5000 });
    expect(s.warmup_ms).toBe(10_000);
    expect(s.traffic.duration_ms).toBe(15_000);
  });

  test('a bad value names the key', () => {
    expect(() => parseScenario('name: w\nwarmup: soon\ntraffic: {rate: 100}\n', 'x.yaml')).toThrow(/x\.yaml: warmup/);
  });

  test('resource figures leave the warm-up out; the whole run keeps it', () => {
    const start = 1_000_000;
    // 10 s of warm-up at 10% of a core and 80 MiB, then 10 s at 4% and 60 MiB; samples before the start do not count.
    const samples = [{ t: start - 500, cpu: 99, rssMiB: 999 }];
    const loop: Array<{ t: number; ms: number }> = [];
    for (let i = 0; i < 20; i++) {
      const warm = i < 10;
      samples.push({ t: start + i * 1000, cpu: warm ? 10 : 4, rssMiB: warm ? 80 : 60 });
      loop.push({ t: start + i * 1000, ms: warm ? 50 : 5 });
    }
    const r = resourcesAfterWarmup(samples, loop, start, 10_000);
    expect(r.measured?.cpuAvg).toBe(4);
    expect(r.measured?.rssMaxMiB).toBe(60);
    expect(r.measured?.eventLoopP99MsMax).toBe(5);
    expect(r.measured?.samples).toBe(10);
    expect(r.wholeRun?.cpuAvg).toBe(7);
    expect(r.wholeRun?.eventLoopP99MsMax).toBe(50);
    const none = resourcesAfterWarmup(samples, loop, start, 0);
    expect(none.measured?.cpuAvg).toBe(7);
    expect(none.wholeRun).toBeUndefined();
  });
});
