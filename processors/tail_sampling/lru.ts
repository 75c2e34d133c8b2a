/**
 * A bounded least-recently-used map whose storage is created on first write.
 * lru-cache preallocates its arrays for `max` entries when it is constructed
 * (about 3 MiB for the default config's 110,000 decision-cache entries); an
 * idle collector, or one whose traffic never reaches a cache, should not pay
 * that. The first `set` builds the lru-cache instance; reads before then miss.
 */
import { LRUCache } from 'lru-cache';

export class BoundedLru<K extends {}, V extends {}> {
  private cache: LRUCache<K, V> | undefined;

  constructor(readonly max: number) {
    if (!(max >= 1)) throw new RangeError(`BoundedLru max must be at least 1, got ${max}`);
  }

  get size(): number {
    return this.cache?.size ?? 0;
  }

  /** The value, marking the entry most recently used; undefined when absent. */
  get(key: K): V | undefined {
    return this.cache?.get(key);
  }

  /** Adds or replaces an entry as the most recently used, evicting the least recently used beyond `max`. */
  set(key: K, value: V): void {
    (this.cache ??= new LRUCache<K, V>({ max: this.max })).set(key, value);
  }

  has(key: K): boolean {
    return this.cache?.has(key) ?? false;
  }

  clear(): void {
    this.cache?.clear();
  }
}
