/**
 * Parity with the Collector's probabilistic policy.
 *
 * testdata/probabilistic_parity.json was produced by a throwaway Go program
 * (not committed) that runs the Collector's own computation from
 * processor/tailsamplingprocessor/internal/sampling/probabilistic.go:
 * `calculateThreshold` (big.Float product of MaxUint64 and the ratio,
 * truncated with Uint64()) and `hashTraceID` (hash/fnv New64a over the salt
 * then the 16 trace-id bytes), on 300 pseudo-random trace ids, three salts
 * (the empty salt meaning "default-hash-seed") and three percentages.
 */
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { CollectorProbabilistic, collectorThreshold, SaltedFnv64 } from './hash.js';

interface ParityFile {
  thresholds: Record<string, string>;
  cases: Array<{ trace_id: string; salt: string; sampling_percentage: number; hash: string; sampled: boolean }>;
}
const parity = JSON.parse(readFileSync(new URL('./testdata/probabilistic_parity.json', import.meta.url), 'utf8')) as ParityFile;

describe('probabilistic parity with the Collector', () => {
  it('computes the threshold exactly as Go big.Float does', () => {
    for (const [pct, want] of Object.entries(parity.thresholds)) {
      expect(collectorThreshold(Number(pct) / 100).toString(), `percentage ${pct}`).toBe(want);
    }
    // Not the naive floor((2^64-1) * 0.1): the Collector rounds the product to 64 bits first.
    expect(collectorThreshold(0.1)).toBe(1844674407370955263n);
    expect(collectorThreshold(1)).toBe((1n << 64n) - 1n);
    expect(collectorThreshold(0)).toBe(0n);
  });

  it('hashes salt + trace id with FNV-1a 64 like hash/fnv', () => {
    // Known FNV-1a 64 values: empty input is the offset basis; "a" is 0xaf63dc4c8601ec8c.
    const f = new SaltedFnv64('a');
    expect(f.hi.toString(16) + f.lo.toString(16).padStart(8, '0')).toBe('af63dc4c8601ec8c');
    for (const c of parity.cases) {
      const s = new CollectorProbabilistic(c.sampling_percentage, c.salt);
      expect(s.hashOf(c.trace_id).toString(), c.trace_id).toBe(c.hash);
    }
  });

  it('reaches the same keep/drop decision on every pinned trace id', () => {
    let kept = 0;
    for (const c of parity.cases) {
      const s = new CollectorProbabilistic(c.sampling_percentage, c.salt);
      expect(s.sampled(c.trace_id), `${c.trace_id} salt=${c.salt} pct=${c.sampling_percentage}`).toBe(c.sampled);
      if (c.sampled) kept++;
    }
    expect(kept).toBe(47); // both outcomes are exercised
  });

  it('keeps a fraction within statistical bounds over 100,000 random trace ids', () => {
    const n = 100_000;
    // xorshift32: deterministic, and its output bits are well mixed (unlike a bare LCG's low bits).
    let seed = 2463534242;
    const rnd = () => {
      seed ^= seed << 13;
      seed >>>= 0;
      seed ^= seed >>> 17;
      seed ^= seed << 5;
      seed >>>= 0;
      return seed;
    };
    const ids: string[] = [];
    for (let i = 0; i < n; i++) {
      let h = '';
      for (let k = 0; k < 4; k++) h += rnd().toString(16).padStart(8, '0');
      ids.push(h);
    }
    for (const pct of [1, 10, 50]) {
      const s = new CollectorProbabilistic(pct, '');
      let kept = 0;
      for (const id of ids) if (s.sampled(id)) kept++;
      const p = pct / 100;
      const sd = Math.sqrt(n * p * (1 - p));
      // 5 standard deviations: a correct sampler fails this about once in 3 million runs.
      expect(Math.abs(kept - n * p), `pct ${pct}: kept ${kept}`).toBeLessThan(5 * sd);
    }
    expect(ids.filter((id) => new CollectorProbabilistic(0, '').sampled(id)).length).toBe(0);
    expect(ids.filter((id) => new CollectorProbabilistic(100, '').sampled(id)).length).toBe(n);
  });
});
