import { describe, expect, it } from 'vitest';
import { SpillIndex } from './spill_index.js';

interface Model {
  spans: number;
  root: boolean;
  byRoot: boolean;
  seq: number;
}

function id(n: number): string {
  // Deterministic, well spread 32-hex-digit ids.
  let h = (n * 2654435761) >>> 0;
  let out = '';
  for (let i = 0; i < 4; i++) {
    h = Math.imul(h ^ (h >>> 15), 0x2c1b3c6d) >>> 0;
    out += h.toString(16).padStart(8, '0');
  }
  return out;
}

describe('SpillIndex', () => {
  it('agrees with a Map through adds, merges, removes, regrowth and slot reuse', () => {
    const idx = new SpillIndex(16);
    const model = new Map<string, Model>();
    let r = 12345;
    const rnd = (k: number): number => {
      r = (Math.imul(r, 1103515245) + 12345) >>> 0;
      return r % k;
    };
    for (let step = 0; step < 60_000; step++) {
      const k = id(rnd(20_000));
      const op = rnd(10);
      if (op < 6) {
        const spans = 1 + rnd(50);
        const root = rnd(7) === 0;
        const byRoot = rnd(11) === 0;
        const seq = rnd(3) === 0 ? 0 : step + 2 ** 40;
        idx.add(k, spans, root, byRoot, seq);
        const m = model.get(k);
        if (m === undefined) model.set(k, { spans, root, byRoot, seq });
        else {
          m.spans += spans;
          m.root ||= root;
          m.byRoot ||= byRoot;
          if (seq > 0) m.seq = seq;
        }
      } else if (op < 9) {
        const m = model.get(k);
        expect(idx.remove(k)).toBe(m !== undefined);
        if (m !== undefined) {
          expect([idx.lastSpans, idx.lastRoot, idx.lastByRoot, idx.lastSeq]).toEqual([m.spans, m.root, m.byRoot, m.seq]);
          model.delete(k);
        }
      } else {
        const m = model.get(k);
        expect(idx.get(k)).toBe(m !== undefined);
        if (m !== undefined) expect([idx.lastSpans, idx.lastRoot, idx.lastByRoot, idx.lastSeq]).toEqual([m.spans, m.root, m.byRoot, m.seq]);
      }
    }
    expect(idx.size).toBe(model.size);
    let spans = 0;
    for (const m of model.values()) spans += m.spans;
    expect(idx.spanCount).toBe(spans);
    expect([...idx.keys()].sort()).toEqual([...model.keys()].sort());
    for (const k of model.keys()) expect(idx.has(k)).toBe(true);
    idx.clear();
    expect(idx.size).toBe(0);
    expect([...idx.keys()]).toEqual([]);
    idx.add(id(1), 3, true);
    expect(idx.get(id(1))).toBe(true);
    expect(idx.lastSpans).toBe(3);
  });

  it('returns its keys as lower-case hex', () => {
    const idx = new SpillIndex();
    const k = 'ABCDEF0123456789abcdef0123456789';
    idx.add(k.toLowerCase(), 2, false);
    expect([...idx.keys()]).toEqual([k.toLowerCase()]);
  });

  it('costs about 37 bytes per trace at 286k traces', () => {
    const idx = new SpillIndex();
    for (let i = 0; i < 286_000; i++) idx.add(id(i), 10, false, false, i + 1);
    expect(idx.size).toBe(286_000);
    expect(idx.memoryBytes / idx.size).toBeLessThan(40);
  });
});
