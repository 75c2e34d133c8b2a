import { describe, expect, it } from 'vitest';
import { BoundedLru } from './lru.js';

describe('BoundedLru', () => {
  it('evicts the least recently used entry beyond max', () => {
    const c = new BoundedLru<string, number>(3);
    c.set('a', 1);
    c.set('b', 2);
    c.set('c', 3);
    expect(c.get('a')).toBe(1); // a is now the most recent
    c.set('d', 4); // evicts b
    expect(c.has('b')).toBe(false);
    expect([c.get('a'), c.get('c'), c.get('d')]).toEqual([1, 3, 4]);
    expect(c.size).toBe(3);
  });

  it('replacing a value refreshes it and does not grow the map', () => {
    const c = new BoundedLru<string, boolean>(2);
    c.set('x', false);
    c.set('y', true);
    c.set('x', true); // x most recent
    c.set('z', false); // evicts y
    expect(c.get('x')).toBe(true);
    expect(c.get('y')).toBeUndefined();
    expect(c.size).toBe(2);
  });

  it('rejects a max below 1', () => {
    expect(() => new BoundedLru(0)).toThrow(RangeError);
  });
});
