/** Test doubles for the loadbalancing exporter (no vitest import). */
import type { Resolver, ResolverEvents } from './resolvers/resolver.js';
import { normalizeList } from './resolvers/resolver.js';

/** A resolver a test drives by hand: `set(list)` is a new answer. */
export class ManualResolver implements Resolver {
  readonly name = 'static';
  private events: ResolverEvents | undefined;
  constructor(private initial: string[]) {}
  async start(events: ResolverEvents): Promise<void> {
    this.events = events;
    events.onResolution(true);
    events.onChange(normalizeList(this.initial));
  }
  set(list: string[]): void {
    this.initial = list;
    this.events?.onResolution(true);
    this.events?.onChange(normalizeList(list));
  }
  async shutdown(): Promise<void> {}
}
