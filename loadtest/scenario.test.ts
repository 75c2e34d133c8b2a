/** Scenario parsing: the warm-up runs before the measured duration and is kept apart from it. */
import { describe, expect, test } from 'vitest';
import { parseScenario } from './scenario.js';
import { withOverrides } from './run.js';

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
});
