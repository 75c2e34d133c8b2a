/**
 * `resolver.k8s`: the ready endpoints of a Service, read from its
 * EndpointSlices through the API server with the pod's service account
 * (token, CA and namespace from /var/run/secrets/kubernetes.io/serviceaccount).
 *
 * - list (`labelSelector=kubernetes.io/service-name=<name>`), then watch from
 *   the list's resourceVersion; a watch that ends is resumed from the last
 *   resourceVersion seen (bookmarks included); `410 Gone` (too old) or an
 *   ERROR event relists.
 * - only endpoints whose `conditions.ready` is not false count (a terminating
 *   or unready pod leaves the set at once: contrib #50436), and the set is
 *   rebuilt from the slices the API server reports, never patched by IP
 *   (a reused IP is not kept stale: contrib #24914).
 * - an API error keeps the last good set; it retries with backoff.
 *
 * The token is re-read for each request (projected tokens rotate).
 */
import fs from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import path from 'node:path';
import type { Logger } from 'pino';
import { joinHostPort, normalizeList, sameList, type Resolver, type ResolverEvents } from './resolver.js';

export const SERVICE_ACCOUNT_DIR = '/var/run/secrets/kubernetes.io/serviceaccount';

export interface K8sResolverOptions {
  /** name or name.namespace */
  service: string;
  ports: number[];
  timeoutMs: number;
  logger: Logger;
  /** API server base URL; default https://$KUBERNETES_SERVICE_HOST:$KUBERNETES_SERVICE_PORT. */
  apiUrl?: string;
  /** Where token, ca.crt and namespace are; default the service account mount. */
  serviceAccountDir?: string;
  /** Backoff after an API error (default 1 s, doubling to 30 s). */
  retryMs?: number;
}

interface Slice {
  metadata?: { name?: string; resourceVersion?: string };
  endpoints?: Array<{ addresses?: string[]; conditions?: { ready?: boolean | null } }>;
}
interface WatchEvent {
  type: 'ADDED' | 'MODIFIED' | 'DELETED' | 'BOOKMARK' | 'ERROR';
  object: Slice & { code?: number; message?: string };
}

class GoneError extends Error {}

export class K8sResolver implements Resolver {
  readonly name = 'k8s';
  private events: ResolverEvents | undefined;
  private readonly svc: string;
  private readonly ns: string;
  private readonly base: string;
  private readonly saDir: string;
  private readonly ca: Buffer | undefined;
  private slices = new Map<string, Slice>();
  private resourceVersion = '';
  private last: string[] | undefined;
  private stopped = false;
  private current: http.ClientRequest | undefined;
  private loop: Promise<void> | undefined;
  private wake: (() => void) | undefined;

  constructor(private readonly o: K8sResolverOptions) {
    this.saDir = o.serviceAccountDir ?? process.env.SIDECAR_K8S_SERVICE_ACCOUNT_DIR ?? SERVICE_ACCOUNT_DIR;
    const [name, namespace] = o.service.split('.', 2);
    this.svc = name;
    this.ns = namespace ?? readOptional(path.join(this.saDir, 'namespace'))?.trim() ?? 'default';
    const host = process.env.KUBERNETES_SERVICE_HOST;
    const port = process.env.KUBERNETES_SERVICE_PORT ?? '443';
    this.base = (o.apiUrl ?? process.env.SIDECAR_K8S_API_URL ?? (host ? `https://${joinHostPort(host, port)}` : '')).replace(/\/+$/, '');
    if (this.base === '') throw new Error('k8s resolver: not running in a cluster (KUBERNETES_SERVICE_HOST is not set)');
    const ca = readOptional(path.join(this.saDir, 'ca.crt'));
    this.ca = ca === undefined ? undefined : Buffer.from(ca);
  }

  /** Resolves after the first list (successful or not); watching continues in the background. */
  async start(events: ResolverEvents): Promise<void> {
    this.events = events;
    let first!: () => void;
    const listed = new Promise<void>((r) => (first = r));
    this.loop = this.run(first);
    await listed;
  }

  async shutdown(): Promise<void> {
    this.stopped = true;
    this.current?.destroy();
    this.wake?.();
    await this.loop;
  }

  private async run(firstDone: () => void): Promise<void> {
    let backoff = this.o.retryMs ?? 1000;
    let needList = true;
    while (!this.stopped) {
      try {
        if (needList) {
          await this.list();
          needList = false;
          this.events!.onResolution(true);
          firstDone();
        }
        backoff = this.o.retryMs ?? 1000;
        await this.watch();
      } catch (err) {
        if (this.stopped) break;
        if (err instanceof GoneError) {
          needList = true;
          continue;
        }
        if (needList) {
          this.events!.onResolution(false);
          firstDone();
        }
        this.o.logger.warn({ service: this.o.service, err: (err as Error).message, kept: this.last?.length ?? 0 }, 'k8s resolver: API error; keeping the last good backends');
        needList = true;
        await new Promise<void>((r) => {
          const t = setTimeout(r, backoff);
          t.unref();
          this.wake = () => {
            clearTimeout(t);
            r();
          };
        });
        backoff = Math.min(30_000, backoff * 2);
      }
    }
    firstDone();
  }

  private slicesPath(): string {
    return `/apis/discovery.k8s.io/v1/namespaces/${encodeURIComponent(this.ns)}/endpointslices?labelSelector=${encodeURIComponent(`kubernetes.io/service-name=${this.svc}`)}`;
  }

  private async list(): Promise<void> {
    const body = await this.request(this.slicesPath(), this.o.timeoutMs);
    const list = JSON.parse(body) as { metadata?: { resourceVersion?: string }; items?: Slice[] };
    this.slices = new Map();
    for (const s of list.items ?? []) this.slices.set(s.metadata?.name ?? '', s);
    this.resourceVersion = list.metadata?.resourceVersion ?? '';
    this.publish();
  }

  private watch(): Promise<void> {
    const p = `${this.slicesPath()}&watch=1&allowWatchBookmarks=true&resourceVersion=${encodeURIComponent(this.resourceVersion)}&timeoutSeconds=300`;
    return new Promise<void>((resolve, reject) => {
      const req = this.open(p, (res) => {
        if (res.statusCode === 410) {
          res.resume();
          return reject(new GoneError('410 Gone'));
        }
        if (res.statusCode !== 200) {
          res.resume();
          return reject(new Error(`watch: HTTP ${res.statusCode}`));
        }
        let buf = '';
        res.setEncoding('utf8');
        res.on('data', (chunk: string) => {
          buf += chunk;
          let nl;
          while ((nl = buf.indexOf('\n')) >= 0) {
            const line = buf.slice(0, nl).trim();
            buf = buf.slice(nl + 1);
            if (line === '') continue;
            try {
              this.onEvent(JSON.parse(line) as WatchEvent);
            } catch (err) {
              req.destroy();
              return reject(err as Error);
            }
          }
        });
        res.on('end', () => resolve()); // server closed the watch: resume from the last resourceVersion
        res.on('error', reject);
      });
      req.on('error', reject);
      req.end();
    });
  }

  private onEvent(ev: WatchEvent): void {
    const obj = ev.object;
    if (ev.type === 'ERROR') {
      if (obj.code === 410) throw new GoneError(obj.message ?? '410 Gone');
      throw new Error(`watch error: ${obj.message ?? JSON.stringify(obj)}`);
    }
    const rv = obj.metadata?.resourceVersion;
    if (rv) this.resourceVersion = rv;
    if (ev.type === 'BOOKMARK') return;
    const name = obj.metadata?.name ?? '';
    if (ev.type === 'DELETED') this.slices.delete(name);
    else this.slices.set(name, obj);
    this.publish();
  }

  private publish(): void {
    const eps: string[] = [];
    for (const s of this.slices.values()) {
      for (const e of s.endpoints ?? []) {
        if (e.conditions?.ready === false) continue;
        const ip = e.addresses?.[0];
        if (!ip) continue;
        for (const port of this.o.ports) eps.push(joinHostPort(ip, port));
      }
    }
    const list = normalizeList(eps);
    if (sameList(this.last, list)) return;
    this.last = list;
    this.events!.onChange(list);
  }

  private request(p: string, timeoutMs: number): Promise<string> {
    return new Promise<string>((resolve, reject) => {
      const req = this.open(p, (res) => {
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (c: string) => (body += c));
        res.on('end', () => (res.statusCode === 200 ? resolve(body) : reject(new Error(`list: HTTP ${res.statusCode}: ${body.slice(0, 200)}`))));
        res.on('error', reject);
      });
      req.setTimeout(timeoutMs, () => req.destroy(new Error(`list timed out after ${timeoutMs} ms`)));
      req.on('error', reject);
      req.end();
    });
  }

  private open(p: string, onResponse: (res: http.IncomingMessage) => void): http.ClientRequest {
    const url = new URL(this.base + p);
    const headers: Record<string, string> = { Accept: 'application/json' };
    const token = readOptional(path.join(this.saDir, 'token'))?.trim();
    if (token) headers.Authorization = `Bearer ${token}`;
    const req =
      url.protocol === 'https:'
        ? https.request(url, { method: 'GET', headers, ca: this.ca }, onResponse)
        : http.request(url, { method: 'GET', headers }, onResponse);
    this.current = req;
    return req;
  }
}

function readOptional(file: string): string | undefined {
  try {
    return fs.readFileSync(file, 'utf8');
  } catch {
    return undefined;
  }
}
