/**
 * A resolver tells the load balancer which backends exist. It calls
 * `onChange` with the full list (sorted, distinct, host:port) whenever the
 * list changes, and `onResolution(success)` after each attempt (for
 * `otelcol_loadbalancer_num_resolutions`). A failed attempt never empties the
 * list: the last good answer stays.
 */
export interface ResolverEvents {
  onChange(endpoints: string[]): void;
  onResolution(success: boolean): void;
}

export interface Resolver {
  readonly name: 'static' | 'dns' | 'k8s';
  /** Starts resolving; resolves after the first attempt (successful or not). */
  start(events: ResolverEvents): Promise<void>;
  shutdown(): Promise<void>;
}

/** Sorted, distinct copy; the form every resolver hands out (the ring depends on it). */
export function normalizeList(endpoints: Iterable<string>): string[] {
  return [...new Set(endpoints)].sort();
}

export function sameList(a: readonly string[] | undefined, b: readonly string[]): boolean {
  if (a === undefined || a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

/** host:port with IPv6 addresses in brackets. */
export function joinHostPort(host: string, port: number | string): string {
  return host.includes(':') ? `[${host}]:${port}` : `${host}:${port}`;
}
