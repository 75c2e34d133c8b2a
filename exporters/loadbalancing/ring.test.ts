import { describe, expect, it } from 'vitest';
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { crc32 } from 'node:zlib';
import { HashRing, crc32Hex } from './ring.js';

interface Golden {
  endpoints: string[];
  trace_ids: Record<string, string>;
  services: Record<string, string>;
}
// Produced by the Collector's own consistent_hashing.go (contrib exporter/loadbalancingexporter)
// in a scratch Go program (see README "Hash"); the same ids must route to the same endpoints here.
const golden = JSON.parse(readFileSync(new URL('./testdata/ring_golden.json', import.meta.url), 'utf8')) as Golden[];

const ids = (n: number) => Array.from({ length: n }, () => randomBytes(16).toString('hex'));

describe('hash ring (the Collector loadbalancing exporter ring)', () => {
  it('routes fixed trace ids and service names exactly as the Collector does', () => {
    let checked = 0;
    for (const g of golden) {
      // Given unsorted: the ring sorts, as the Collector's resolvers do.
      const ring = new HashRing([...g.endpoints].reverse());
      for (const [id, want] of Object.entries(g.trace_ids)) {
        expect(ring.endpoints[ring.ownerOfTraceId(id)], id).toBe(want);
        checked++;
      }
      for (const [svc, want] of Object.entries(g.services)) expect(ring.endpoints[ring.ownerOfKey(svc)], svc).toBe(want);
    }
    expect(checked).toBeGreaterThan(100);
    // The golden set covers every endpoint of each ring (a constant answer would fail).
    for (const g of golden) expect(new Set(Object.values(g.trace_ids)).size).toBe(g.endpoints.length);
  });

  it('the hex CRC equals zlib\'s over the id bytes', () => {
    const ring = new HashRing(['a:1', 'b:1', 'c:1']);
    for (const id of ids(3000)) expect(ring.ownerOfTraceId(id)).toBe(ring.ownerOfTraceIdZlib(id));
    expect(crc32Hex('5b8efff798038103d269b633813fc60c')).toBe(crc32(Buffer.from('5b8efff798038103d269b633813fc60c', 'hex')));
  });

  it('the same trace id always maps to the same endpoint, whatever the order of the list', () => {
    const a = new HashRing(['b:4317', 'a:4317', 'c:4317']);
    const b = new HashRing(['c:4317', 'b:4317', 'a:4317', 'a:4317']);
    for (const id of ids(2000)) expect(a.endpoints[a.ownerOfTraceId(id)]).toBe(b.endpoints[b.ownerOfTraceId(id)]);
  });

  it('adding a backend moves only keys to the new one, about 1/N of them', () => {
    const before = new HashRing(['s-0:4317', 's-1:4317', 's-2:4317']);
    const after = new HashRing(['s-0:4317', 's-1:4317', 's-2:4317', 's-3:4317']);
    const sample = ids(5000);
    let moved = 0;
    for (const id of sample) {
      const x = before.endpoints[before.ownerOfTraceId(id)];
      const y = after.endpoints[after.ownerOfTraceId(id)];
      if (x !== y) {
        moved++;
        expect(y).toBe('s-3:4317'); // nothing moves between the old ones
      }
    }
    const share = moved / sample.length;
    expect(share).toBeGreaterThan(0.12);
    expect(share).toBeLessThan(0.4);
  });

  it('removing a backend moves only its own keys', () => {
    const before = new HashRing(['s-0:4317', 's-1:4317', 's-2:4317', 's-3:4317']);
    const after = new HashRing(['s-0:4317', 's-1:4317', 's-3:4317']);
    for (const id of ids(5000)) {
      const x = before.endpoints[before.ownerOfTraceId(id)];
      const y = after.endpoints[after.ownerOfTraceId(id)];
      if (x !== 's-2:4317') expect(y).toBe(x);
      else expect(y).not.toBe('s-2:4317');
    }
  });

  it('an empty ring owns nothing', () => {
    expect(new HashRing([]).ownerOfTraceId('5b8efff798038103d269b633813fc60c')).toBe(-1);
  });
});
