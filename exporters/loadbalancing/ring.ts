/**
 * The consistent-hash ring of the OpenTelemetry Collector's `loadbalancing`
 * exporter (contrib `exporter/loadbalancingexporter/consistent_hashing.go`),
 * reproduced so that these sidecars and Collector agents with the same backend
 * list send every trace id to the same backend:
 *
 * - each endpoint string (as resolved, e.g. `sampler-0:4317`, never with a port
 *   added) gets 100 points: `crc32(endpoint bytes + one byte i) % 36000` for
 *   i = 0..99 (CRC-32/IEEE, the one zlib computes);
 * - endpoints are taken in sorted order and a point already taken by an
 *   earlier endpoint is skipped (the first endpoint keeps it);
 * - a key is hashed the same way (`crc32(key) % 36000`; for `traceID` the key
 *   is the 16 raw trace-id bytes, for `service` the UTF-8 service name) and
 *   belongs to the first point at or after its position, wrapping to the
 *   lowest point past the highest.
 *
 * Pinned by ring.test.ts (fixed ids -> fixed endpoints).
 */
import { crc32 } from 'node:zlib';

export const RING_POSITIONS = 36000;

/** CRC-32/IEEE table (reflected, polynomial 0xEDB88320): the same CRC as zlib's. */
const CRC_TABLE = new Int32Array(256);
for (let n = 0; n < 256; n++) {
  let c = n;
  for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
  CRC_TABLE[n] = c;
}
const HEX_VALUE = new Int8Array(128).fill(0);
for (let i = 0; i < 10; i++) HEX_VALUE[48 + i] = i;
for (let i = 0; i < 6; i++) HEX_VALUE[97 + i] = HEX_VALUE[65 + i] = 10 + i;

/**
 * CRC-32 of the bytes a hex string encodes, read straight from the string:
 * no Buffer, no native call. Measured (bench.ts, same run): see
 * ARCHITECTURE.md; zlib.crc32 after Buffer.write(hex) costs a native call and
 * a copy per trace id.
 */
export function crc32Hex(hex: string): number {
  let c = -1;
  for (let i = 0; i + 1 < hex.length; i += 2) {
    const b = (HEX_VALUE[hex.charCodeAt(i) & 127] << 4) | HEX_VALUE[hex.charCodeAt(i + 1) & 127];
    c = CRC_TABLE[(c ^ b) & 0xff] ^ (c >>> 8);
  }
  return ~c >>> 0;
}
export const POINTS_PER_ENDPOINT = 100;

export class HashRing {
  /** Ring positions, ascending. */
  private readonly positions: Uint32Array;
  /** Endpoint index of each position. */
  private readonly owners: Uint16Array;
  /** Sorted, distinct endpoints. */
  readonly endpoints: readonly string[];
  private readonly idBuf = Buffer.alloc(16);

  constructor(endpoints: readonly string[]) {
    const eps = [...new Set(endpoints)].sort();
    this.endpoints = eps;
    const taken = new Map<number, number>();
    const one = Buffer.alloc(1);
    for (let e = 0; e < eps.length; e++) {
      const base = crc32(eps[e]);
      for (let i = 0; i < POINTS_PER_ENDPOINT; i++) {
        one[0] = i;
        const pos = crc32(one, base) % RING_POSITIONS;
        if (!taken.has(pos)) taken.set(pos, e);
      }
    }
    const sorted = [...taken.keys()].sort((a, b) => a - b);
    this.positions = Uint32Array.from(sorted);
    this.owners = Uint16Array.from(sorted, (p) => taken.get(p)!);
  }

  get size(): number {
    return this.endpoints.length;
  }

  /** Index into `endpoints` of the owner of ring position `pos`, or -1 for an empty ring. */
  ownerOfPosition(pos: number): number {
    const p = this.positions;
    if (p.length === 0) return -1;
    let lo = 0;
    let hi = p.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (p[mid] < pos) lo = mid + 1;
      else hi = mid;
    }
    return this.owners[lo === p.length ? 0 : lo];
  }

  /** Owner of a trace id given as 32 lowercase hex characters (hashed as its 16 bytes). */
  ownerOfTraceId(hex: string): number {
    return this.ownerOfPosition(crc32Hex(hex) % RING_POSITIONS);
  }

  /** The same through zlib (a Buffer write and a native call): the reference crc32Hex is checked and measured against. */
  ownerOfTraceIdZlib(hex: string): number {
    const b = this.idBuf;
    b.write(hex, 'hex');
    return this.ownerOfPosition(crc32(b) % RING_POSITIONS);
  }

  /** Owner of an arbitrary string key (hashed as UTF-8). */
  ownerOfKey(key: string): number {
    return this.ownerOfPosition(crc32(key) % RING_POSITIONS);
  }
}
