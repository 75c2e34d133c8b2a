/** `resolver.static`: the configured hostnames, once. */
import { normalizeList, type Resolver, type ResolverEvents } from './resolver.js';

export class StaticResolver implements Resolver {
  readonly name = 'static';
  private readonly endpoints: string[];
  constructor(hostnames: readonly string[]) {
    this.endpoints = normalizeList(hostnames);
  }
  async start(events: ResolverEvents): Promise<void> {
    events.onResolution(true);
    events.onChange(this.endpoints);
  }
  async shutdown(): Promise<void> {}
}
