/**
 * `resolver.dns`: the A and AAAA records of a name (a headless Service lists
 * one per ready pod), every `interval`. A failed or timed-out lookup keeps the
 * last good list; an answer with no address counts as a failure too (a
 * headless Service briefly without ready pods would otherwise drop every
 * backend and its queue at once).
 */
import { promises as dnsPromises } from 'node:dns';
import type { Logger } from 'pino';
import { joinHostPort, normalizeList, sameList, type Resolver, type ResolverEvents } from './resolver.js';

export type LookupFn = (hostname: string) => Promise<string[]>;

export const systemLookup: LookupFn = async (hostname) => {
  const r = await dnsPromises.lookup(hostname, { all: true, verbatim: true });
  return r.map((a) => a.address);
};

export interface DnsResolverOptions {
  hostname: string;
  port: number | string;
  intervalMs: number;
  timeoutMs: number;
  logger: Logger;
  lookup?: LookupFn;
}

export class DnsResolver implements Resolver {
  readonly name = 'dns';
  private events: ResolverEvents | undefined;
  private last: string[] | undefined;
  private timer: NodeJS.Timeout | undefined;
  private stopped = false;
  private lastErrorLog = -Infinity;
  private readonly lookup: LookupFn;

  constructor(private readonly o: DnsResolverOptions) {
    this.lookup = o.lookup ?? systemLookup;
  }

  async start(events: ResolverEvents): Promise<void> {
    this.events = events;
    await this.resolveNow();
    this.schedule();
  }

  async shutdown(): Promise<void> {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
  }

  /** One resolution (the periodic timer calls this; tests call it directly). */
  async resolveNow(): Promise<void> {
    const events = this.events;
    if (events === undefined) return;
    let ips: string[];
    try {
      ips = await withTimeout(this.lookup(this.o.hostname), this.o.timeoutMs);
      if (ips.length === 0) throw new Error('no addresses');
    } catch (err) {
      events.onResolution(false);
      const now = Date.now();
      if (now - this.lastErrorLog > 30_000) {
        this.lastErrorLog = now;
        this.o.logger.warn({ hostname: this.o.hostname, err: (err as Error).message, kept: this.last?.length ?? 0 }, 'dns resolver: lookup failed; keeping the last good backends');
      }
      return;
    }
    events.onResolution(true);
    const list = normalizeList(ips.map((ip) => joinHostPort(ip, this.o.port)));
    if (sameList(this.last, list)) return;
    this.last = list;
    events.onChange(list);
  }

  private schedule(): void {
    if (this.stopped) return;
    this.timer = setTimeout(() => {
      void this.resolveNow().finally(() => this.schedule());
    }, this.o.intervalMs);
    this.timer.unref();
  }
}

function withTimeout<T>(p: Promise<T>, ms: number): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const t = setTimeout(() => reject(new Error(`timed out after ${ms} ms`)), ms);
    p.then(
      (v) => {
        clearTimeout(t);
        resolve(v);
      },
      (e: unknown) => {
        clearTimeout(t);
        reject(e as Error);
      },
    );
  });
}
