import { describe, it, expect } from 'vitest';
import { BytesTable, fullHash, sampleHash } from './bytes_table.js';

const bytes = (s: string) => new Uint8Array(Buffer.from(s, 'latin1'));

describe('BytesTable', () => {
  it('finds a value by equal bytes in another array, and nothing for other bytes', () => {
    const t = new BytesTable<string>();
    t.set(bytes('resource service.name=checkout'), 'a');
    t.set(new Uint8Array(0), 'empty');
    expect(t.get(bytes('resource service.name=checkout'))).toBe('a');
    expect(t.get(new Uint8Array(0))).toBe('empty');
    expect(t.get(bytes('resource service.name=checkouT'))).toBeUndefined();
    expect(t.get(bytes('resource service.name=checkout '))).toBeUndefined();
    expect(t.size).toBe(2);
  });

  it('tells apart arrays that differ only where the sample does not look', () => {
    // 200 bytes: the sample reads every 12th byte and the last 16; byte 1 is not among them.
    const base = Buffer.alloc(200, 'x');
    const variants = Array.from({ length: 50 }, (_, i) => {
      const b = new Uint8Array(base);
      b[1] = i;
      return b;
    });
    expect(new Set(variants.map(sampleHash)).size).toBe(1);
    const t = new BytesTable<number>();
    variants.forEach((v, i) => t.set(v, i));
    for (let round = 0; round < 2; round++) {
      variants.forEach((v, i) => expect(t.get(new Uint8Array(v))).toBe(i));
    }
    expect(t.size).toBe(50);
  });

  it('keeps entries whose full hashes collide apart', () => {
    const t = new BytesTable<string>();
    const a = bytes('aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa');
    const b = bytes('bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb');
    t.set(a, 'a');
    t.set(b, 'b');
    // Put both entries in one chain under both hashes, as a collision would, and drop the sample hints.
    const inner = t as unknown as { byFull: Map<number, unknown>; bySample: Map<number, unknown> };
    const chain = [inner.byFull.get(fullHash(a)), inner.byFull.get(fullHash(b))];
    inner.byFull.set(fullHash(a), chain);
    inner.byFull.set(fullHash(b), chain);
    inner.bySample.clear();
    expect(t.get(new Uint8Array(a))).toBe('a');
    expect(t.get(new Uint8Array(b))).toBe('b');
    expect(t.get(bytes('cccccccccccccccccccccccccccccccccccccc'))).toBeUndefined();
  });

  it('clear() empties it', () => {
    const t = new BytesTable<number>();
    t.set(bytes('x'), 1);
    t.clear();
    expect(t.get(bytes('x'))).toBeUndefined();
    expect(t.size).toBe(0);
  });
});
