/**
 * A map keyed by the contents of byte arrays (resource and scope headers),
 * without building a string per lookup.
 *
 * The batch processor looks up every ResourceSpans and ScopeSpans header of
 * every input: in 100-span requests of a multi-service load that is ~40
 * headers and ~15 KB per request. A latin1 string key costs a copy and a
 * string hash of every byte (34 µs per request, and the strings are young
 * garbage); this table costs ~5 µs.
 *
 * Lookup: a hash of the length and of about 32 sampled bytes picks the entry
 * last seen with that sample, and a native compare confirms it. Headers that
 * differ only where the sample does not look (pods of one deployment) miss
 * that fast path and fall back to a hash of every byte, read four at a time,
 * with chains only for true 32-bit collisions; so no input makes a lookup
 * slower than one pass over its bytes plus a compare.
 */

interface Entry<V> {
  readonly bytes: Uint8Array;
  readonly value: V;
}

export class BytesTable<V> {
  /** Sample hash -> the entry last found with it (a hint, always confirmed). */
  private readonly bySample = new Map<number, Entry<V>>();
  /** Full hash -> entry, or entries on a collision. */
  private readonly byFull = new Map<number, Entry<V> | Array<Entry<V>>>();
  private count = 0;

  get size(): number {
    return this.count;
  }

  get(bytes: Uint8Array): V | undefined {
    const s = sampleHash(bytes);
    const hint = this.bySample.get(s);
    if (hint !== undefined && sameBytes(hint.bytes, bytes)) return hint.value;
    const e = this.findFull(bytes, fullHash(bytes));
    if (e === undefined) return undefined;
    this.bySample.set(s, e);
    return e.value;
  }

  /** Adds `value` for these bytes; the caller has checked with get() that they are absent. */
  set(bytes: Uint8Array, value: V): void {
    const e: Entry<V> = { bytes, value };
    const f = fullHash(bytes);
    const at = this.byFull.get(f);
    if (at === undefined) this.byFull.set(f, e);
    else if (Array.isArray(at)) at.push(e);
    else this.byFull.set(f, [at, e]);
    this.bySample.set(sampleHash(bytes), e);
    this.count++;
  }

  clear(): void {
    this.bySample.clear();
    this.byFull.clear();
    this.count = 0;
  }

  private findFull(bytes: Uint8Array, f: number): Entry<V> | undefined {
    const at = this.byFull.get(f);
    if (at === undefined) return undefined;
    if (!Array.isArray(at)) return sameBytes(at.bytes, bytes) ? at : undefined;
    for (let i = 0; i < at.length; i++) if (sameBytes(at[i].bytes, bytes)) return at[i];
    return undefined;
  }
}

function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  return a.length === b.length && (a === b || Buffer.compare(a, b) === 0);
}

const FNV_PRIME = 16777619;

/** The length, 16 bytes spread over the array and its last 16 bytes. */
export function sampleHash(b: Uint8Array): number {
  const n = b.length;
  let h = Math.imul(0x811c9dc5 ^ n, FNV_PRIME);
  const step = n > 32 ? (n >>> 4) : 1;
  for (let i = 0; i < n; i += step) h = Math.imul(h ^ b[i], FNV_PRIME);
  for (let i = n > 16 ? n - 16 : 0; i < n; i++) h = Math.imul(h ^ b[i], FNV_PRIME);
  return h >>> 0;
}

/** Every byte, four at a time in two lanes (murmur3-style mixing). */
export function fullHash(b: Uint8Array): number {
  const n = b.length;
  let x = 0x9e3779b9 ^ n;
  let y = n;
  let i = 0;
  for (; i + 8 <= n; i += 8) {
    x = Math.imul(x ^ (b[i] | (b[i + 1] << 8) | (b[i + 2] << 16) | (b[i + 3] << 24)), 0xcc9e2d51);
    x = (x << 15) | (x >>> 17);
    y = Math.imul(y ^ (b[i + 4] | (b[i + 5] << 8) | (b[i + 6] << 16) | (b[i + 7] << 24)), 0x1b873593);
    y = (y << 13) | (y >>> 19);
  }
  for (; i < n; i++) x = Math.imul(x ^ b[i], FNV_PRIME);
  x ^= y;
  x = Math.imul(x ^ (x >>> 16), 0x85ebca6b);
  x = Math.imul(x ^ (x >>> 13), 0xc2b2ae35);
  return (x ^ (x >>> 16)) >>> 0;
}
