/**
 * A bounded least-recently-used map that grows with use. The decision caches
 * hold up to hundreds of thousands of trace ids, but an idle collector holds
 * none: lru-cache preallocates its arrays for `max` entries at construction
 * (3 MiB for the default config's 110,000 entries), this allocates per entry.
 * A Map keeps insertion order, so the oldest entry is its first key and a hit
 * moves an entry to the end by re-inserting it.
 */
export class BoundedLru<K, V> {
  private readonly map = new Map<K, V>();

  constructor(readonly max: number) {
    if (!(max >= 1)) throw new RangeError(`BoundedLru max must be at least 1, got ${max}`);
  }

  get size(): number {
    return this.map.size;
  }

  /** The value, marking the entry most recently used; undefined when absent. */
  get(key: K): V | undefined {
    const map = this.map;
    const v = map.get(key);
    if (v !== undefined) {
      map.delete(key);
      map.set(key, v);
    }
    return v;
  }

  /** Adds or replaces an entry as the most recently used, evicting the least recently used beyond `max`. */
  set(key: K, value: V): void {
    const map = this.map;
    if (map.has(key)) map.delete(key);
    else if (map.size >= this.max) map.delete(map.keys().next().value as K);
    map.set(key, value);
  }

  has(key: K): boolean {
    return this.map.has(key);
  }

  clear(): void {
    this.map.clear();
  }
}
