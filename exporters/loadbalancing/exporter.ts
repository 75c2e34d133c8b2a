/**
 * The `loadbalancing` exporter: routes each span by its trace id (or service
 * name) over a consistent-hash ring (ring.ts) to one OTLP/gRPC exporter per
 * backend, each a QueuedExporter with its own queue, retries, circuit breaker
 * and (with storage: disk) its own queue file.
 *
 * What it adds to the Collector's exporter:
 * - a backend that leaves the resolved set hands what it still holds (queued
 *   and interrupted requests, memory or disk) to the new owners of those keys
 *   instead of dropping it (contrib #35378, #36717);
 * - a backend that has failed every send for `reroute_after` is taken out of
 *   the ring the same way, and probed every `probe_interval` until it answers,
 *   then put back (contrib #31209); at least one backend always stays in;
 * - queue files left by backends that are gone (a restart with a new set) are
 *   re-routed at start;
 * - every span that cannot be delivered is counted with its reason.
 */
import fs from 'node:fs';
import type { Logger } from 'pino';
import type { Clock, Component, CreateSettings } from '../../collector/component.js';
import type { TracesConsumer } from '../../collector/consumer.js';
import { scanExportRequest, type Span } from '../../collector/pdata/spans.js';
import { CollectorError, RetryableError } from '../../collector/errors.js';
import type { Telemetry } from '../../collector/telemetry/metrics.js';
import { parseDuration } from '../../config/duration.js';
import { QueuedExporter, type SendFn } from '../exporterhelper/exporter.js';
import type { ExportRequest } from '../exporterhelper/queue.js';
import { fileNameFor } from '../../storage/registry.js';
import { GrpcSender } from '../otlp/sender.js';
import type { OtlpExporterConfig } from '../otlp/config.js';
import { endpointWithPort, type LoadBalancingConfig } from './config.js';
import { HashRing } from './ring.js';
import { sameList, type Resolver } from './resolvers/resolver.js';

/** What a backend exporter needs from the OTLP side; tests replace it. */
export interface BackendSender {
  start(): Promise<void>;
  close(): void;
  send: SendFn;
}
export type SenderFactory = (endpoint: string, cfg: OtlpExporterConfig) => BackendSender;

export interface LoadBalancingOptions {
  resolver: Resolver;
  senderFactory?: SenderFactory;
  /** Health checks and probes run on this period (default 1 s); tests call checkHealth() instead (0). */
  healthIntervalMs?: number;
  /** How long a re-route keeps trying a refusing owner before it gives up (default 30 s). */
  rerouteTimeoutMs?: number;
  /** Waits between re-route attempts (default real timers). */
  sleep?: (ms: number) => Promise<void>;
}

interface Backend {
  endpoint: string;
  sender: BackendSender;
  exporter: QueuedExporter | undefined;
  /** First failed attempt since the last success. */
  failingSince: number | undefined;
  down: boolean;
  lastProbe: number;
  probing: boolean;
  outcomeOk: { inc(n?: number): void };
  outcomeFail: { inc(n?: number): void };
  latency: { observe(v: number): void };
}

const EMPTY_REQUEST: ExportRequest = { bytes: new Uint8Array(0), spans: 0 };
/** How long consume() keeps offering the refused part of a batch whose other parts were taken. */
const PARTIAL_RETRY_MS = 5000;

export class LoadBalancingExporter implements Component, TracesConsumer {
  readonly mutatesData = false;
  readonly id: string;
  private readonly log: Logger;
  private readonly telemetry: Telemetry;
  private readonly clock: Clock;
  private readonly otlpCfg: OtlpExporterConfig;
  private readonly byService: boolean;
  private readonly rerouteAfterMs: number;
  private readonly probeIntervalMs: number;
  private readonly rerouteTimeoutMs: number;
  private readonly resolver: Resolver;
  private readonly senderFactory: SenderFactory;
  private readonly sleep: (ms: number) => Promise<void>;

  private readonly backends = new Map<string, Backend>();
  private resolved: string[] | undefined;
  private ring = new HashRing([]);
  /** Backend of each ring endpoint index. */
  private ringBackends: Backend[] = [];
  private updates: Promise<void> = Promise.resolve();
  private readonly retiring = new Set<Promise<void>>();
  private healthTimer: NodeJS.Timeout | undefined;
  private stopping = false;
  private shutdownPromise: Promise<void> | undefined;
  private readonly healthIntervalMs: number;

  private readonly mBackends;
  private readonly mRoutable;
  private readonly mResolutionsOk;
  private readonly mResolutionsFail;
  private readonly mUpdates;
  private readonly mRerouted;
  private readonly mOutcome;
  private readonly mLatency;

  constructor(settings: CreateSettings, cfg: LoadBalancingConfig, opts: LoadBalancingOptions) {
    this.id = settings.id;
    this.log = settings.logger;
    this.telemetry = settings.telemetry;
    this.clock = settings.clock;
    this.otlpCfg = { ...cfg.protocol.otlp, endpoint: '' };
    this.byService = cfg.routing_key === 'service';
    this.rerouteAfterMs = parseDuration(cfg.reroute_after);
    this.probeIntervalMs = parseDuration(cfg.probe_interval);
    this.resolver = opts.resolver;
    this.senderFactory = opts.senderFactory ?? ((endpoint, c) => new GrpcSender({ ...c, endpoint }));
    this.healthIntervalMs = opts.healthIntervalMs ?? 1000;
    this.rerouteTimeoutMs = opts.rerouteTimeoutMs ?? 30_000;
    this.sleep = opts.sleep ?? ((ms) => new Promise((r) => setTimeout(r, ms)));

    const t = settings.telemetry;
    const res = this.resolver.name;
    this.mBackends = t.gauge('otelcol_loadbalancer_num_backends', 'Current number of backends in use (resolved).', ['resolver']).labels(res);
    this.mRoutable = t
      .gauge('sidecar_loadbalancer_routable_backends', 'Backends in the ring (resolved and not taken out for failing).', ['exporter'])
      .labels(this.id);
    const resolutions = t.counter('otelcol_loadbalancer_num_resolutions_total', 'Number of times the resolver has triggered new resolutions.', ['resolver', 'success']);
    this.mResolutionsOk = resolutions.labels(res, 'true');
    this.mResolutionsFail = resolutions.labels(res, 'false');
    this.mUpdates = t.counter('otelcol_loadbalancer_num_backend_updates_total', 'Number of times the list of backends was updated.', ['resolver']).labels(res);
    this.mRerouted = t.counter(
      'sidecar_loadbalancer_rerouted_spans_total',
      'Spans held for a backend that left the set (removed) or stayed down (backend_down), handed to the new owner of their key.',
      ['exporter', 'reason'],
    );
    this.mOutcome = t.counter('otelcol_loadbalancer_backend_outcome_total', 'Number of successes and failures for each endpoint.', ['endpoint', 'success']);
    this.mLatency = t.histogram('otelcol_loadbalancer_backend_latency', 'Response latency in ms for the backends.', ['endpoint'], [5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000]);
    this.mBackends.set(0);
    this.mRoutable.set(0);
  }

  async start(): Promise<void> {
    await this.resolver.start({
      onChange: (eps) => {
        this.updates = this.updates.then(() => this.applyResolved(eps)).catch((err: unknown) => {
          this.log.error({ exporter: this.id, err: (err as Error).message }, 'loadbalancing: applying a new backend list failed');
        });
      },
      onResolution: (ok) => (ok ? this.mResolutionsOk : this.mResolutionsFail).inc(),
    });
    await this.updates;
    await this.recoverOrphanQueues();
    if (this.healthIntervalMs > 0) {
      this.healthTimer = setInterval(() => this.checkHealth(), this.healthIntervalMs);
      this.healthTimer.unref();
    }
  }

  /** Endpoints in the ring now (for tests and the README's examples). */
  get routable(): readonly string[] {
    return this.ring.endpoints;
  }

  /** The endpoint a trace id is routed to now. */
  endpointForTraceId(traceId: string): string | undefined {
    const i = this.ring.ownerOfTraceId(traceId);
    return i < 0 ? undefined : this.ring.endpoints[i];
  }

  /** Settles once the resolver's latest list is applied. */
  settled(): Promise<void> {
    return this.updates;
  }

  /** Settles once every hand-over started so far is done. */
  async handOversDone(): Promise<void> {
    while (this.retiring.size > 0) await Promise.allSettled([...this.retiring]);
  }

  async consume(spans: Span[]): Promise<void> {
    if (spans.length === 0) return;
    if (this.stopping) throw new CollectorError('ERR_SHUTTING_DOWN', `exporter ${this.id} is shutting down`, true, 1000);
    let refused = await this.deliver(spans);
    if (refused === undefined || refused.spans.length === spans.length) {
      if (refused !== undefined) throw refused.error; // nothing was taken: the caller re-sends, nothing twice
      return;
    }
    // Some backends took their part and another refused (its queue is full): a refusal now would make
    // the caller re-send the parts already taken (duplicates; contrib #47600). Keep offering the rest,
    // routed over the current ring, for up to PARTIAL_RETRY_MS first.
    const deadline = this.clock.now() + PARTIAL_RETRY_MS;
    while (refused !== undefined && !this.stopping && this.clock.now() < deadline) {
      await this.sleep(Math.min(PARTIAL_RETRY_MS / 10, refused.error.retryAfterMs ?? 100));
      refused = await this.deliver(refused.spans);
    }
    if (refused !== undefined) throw refused.error;
  }

  shutdown(timeoutMs?: number): Promise<void> {
    this.shutdownPromise ??= this.doShutdown(timeoutMs ?? 10_000);
    return this.shutdownPromise;
  }

  private async doShutdown(timeoutMs: number): Promise<void> {
    this.stopping = true;
    if (this.healthTimer) clearInterval(this.healthTimer);
    await this.resolver.shutdown();
    await this.updates;
    await this.handOversDone();
    await Promise.allSettled(
      [...this.backends.values()].map(async (b) => {
        if (b.exporter) await b.exporter.shutdown(timeoutMs);
        b.sender.close();
      }),
    );
  }

  // --- routing -------------------------------------------------------------

  /**
   * Splits spans by owner and offers each group to its backend. Resolves
   * undefined when every group was queued, else with the spans of the groups
   * that were refused and the first refusal.
   */
  private async deliver(spans: Span[]): Promise<{ spans: Span[]; error: CollectorError } | undefined> {
    const ring = this.ring;
    const backends = this.ringBackends;
    if (ring.size === 0) {
      return { spans, error: new RetryableError(`exporter ${this.id} has no backend (resolver ${this.resolver.name} found none yet)`, 1000) };
    }
    if (ring.size === 1) return this.offer(backends[0], spans);
    const groups: Span[][] = new Array(ring.size);
    let lastKey = '';
    let lastOwner = -1;
    let distinct = 0;
    for (let i = 0; i < spans.length; i++) {
      const s = spans[i];
      const key = this.byService ? s.scope.resource.serviceName() : s.traceId;
      if (key !== lastKey) {
        lastKey = key;
        lastOwner = this.byService ? ring.ownerOfKey(key) : ring.ownerOfTraceId(key);
      }
      let g = groups[lastOwner];
      if (g === undefined) {
        g = groups[lastOwner] = [];
        distinct++;
      }
      g.push(s);
    }
    if (distinct === 1) {
      for (let i = 0; i < groups.length; i++) if (groups[i] !== undefined) return this.offer(backends[i], spans);
    }
    const results = await Promise.all(groups.map((g, i) => (g === undefined ? undefined : this.offer(backends[i], g))));
    let out: { spans: Span[]; error: CollectorError } | undefined;
    for (const r of results) {
      if (r === undefined) continue;
      if (out === undefined) out = { spans: [...r.spans], error: r.error };
      else out.spans.push(...r.spans);
    }
    return out;
  }

  private async offer(b: Backend, spans: Span[]): Promise<{ spans: Span[]; error: CollectorError } | undefined> {
    const exp = b.exporter;
    if (exp === undefined) return { spans, error: new RetryableError(`backend ${b.endpoint} is being replaced`, 500) };
    try {
      await exp.consume(spans);
      return undefined;
    } catch (err) {
      return { spans, error: err instanceof CollectorError ? err : new RetryableError(String(err)) };
    }
  }

  /**
   * Takes a request a backend held and routes its spans over the current ring
   * (a re-scan of its bytes: rare, so the hot path never decodes). Keeps
   * trying refused parts for `rerouteTimeoutMs`; rejects after that.
   */
  private async reroute(req: ExportRequest, reason: 'removed' | 'backend_down'): Promise<void> {
    const scanned = scanExportRequest(req.bytes);
    let left = scanned.spans;
    const deadline = this.clock.now() + this.rerouteTimeoutMs;
    for (;;) {
      const r = await this.deliver(left);
      const moved = left.length - (r?.spans.length ?? 0);
      if (moved > 0) this.mRerouted.labels(this.id, reason).inc(moved);
      if (r === undefined) return;
      left = r.spans;
      if (this.clock.now() >= deadline || (this.stopping && this.ring.size === 0)) throw r.error;
      await this.sleep(Math.min(1000, r.error.retryAfterMs ?? 500));
    }
  }

  // --- the backend set -------------------------------------------------------

  private async applyResolved(list: string[]): Promise<void> {
    if (this.stopping || sameList(this.resolved, list)) return;
    this.resolved = list;
    this.mUpdates.inc();
    this.mBackends.set(list.length);
    const added: Backend[] = [];
    for (const ep of list) {
      if (this.backends.has(ep)) continue;
      const b = this.newBackend(ep);
      this.backends.set(ep, b);
      added.push(b);
    }
    await Promise.all(added.map((b) => this.openExporter(b)));
    const removed: Backend[] = [];
    for (const [ep, b] of this.backends) {
      if (!list.includes(ep)) {
        this.backends.delete(ep);
        removed.push(b);
      }
    }
    this.rebuildRing();
    this.log.info({ exporter: this.id, backends: list, removed: removed.map((b) => b.endpoint) }, 'loadbalancing: backend list changed');
    for (const b of removed) this.retire(b, 'removed', true);
  }

  private newBackend(endpoint: string): Backend {
    const target = endpointWithPort(endpoint);
    const b: Backend = {
      endpoint,
      sender: this.senderFactory(target, this.otlpCfg),
      exporter: undefined,
      failingSince: undefined,
      down: false,
      lastProbe: 0,
      probing: false,
      outcomeOk: this.mOutcome.labels(endpoint, 'true'),
      outcomeFail: this.mOutcome.labels(endpoint, 'false'),
      latency: this.mLatency.labels(endpoint),
    };
    return b;
  }

  private async openExporter(b: Backend): Promise<void> {
    const send: SendFn = async (req, signal) => {
      const t0 = this.clock.now();
      try {
        const r = await b.sender.send(req, signal);
        b.failingSince = undefined;
        b.outcomeOk.inc();
        return r;
      } catch (err) {
        if (!(err instanceof CollectorError) || err.retryable) b.failingSince ??= t0;
        b.outcomeFail.inc();
        throw err;
      } finally {
        b.latency.observe(this.clock.now() - t0);
      }
    };
    const exp = new QueuedExporter(this.backendSettings(b.endpoint), this.otlpCfg, send, {
      onStart: () => b.sender.start(),
    });
    await exp.start();
    b.exporter = exp;
  }

  private backendSettings(endpoint: string): CreateSettings {
    return { id: `${this.id}/${endpoint}`, logger: this.log, telemetry: this.telemetry, clock: this.clock };
  }

  private rebuildRing(): void {
    const up = [...this.backends.values()].filter((b) => !b.down && b.exporter !== undefined);
    this.ring = new HashRing(up.map((b) => b.endpoint));
    this.ringBackends = this.ring.endpoints.map((ep) => this.backends.get(ep)!);
    this.mRoutable.set(this.ring.size);
  }

  /** Takes a backend's exporter out of service and re-routes what it held. */
  private retire(b: Backend, reason: 'removed' | 'backend_down', closeSender: boolean): void {
    const exp = b.exporter;
    b.exporter = undefined;
    const p = (async () => {
      if (exp !== undefined) {
        await exp.handOver((req) => this.reroute(req, reason)).catch((err: unknown) => {
          this.log.error({ exporter: this.id, backend: b.endpoint, err: (err as Error).message }, 'loadbalancing: hand-over failed');
        });
      }
      if (closeSender) b.sender.close();
    })();
    this.retiring.add(p);
    void p.finally(() => this.retiring.delete(p));
  }

  /**
   * Takes backends that have failed every send for `reroute_after` out of the
   * ring (while another one is up), and probes those out of it. Runs every
   * second; tests call it directly.
   */
  checkHealth(): void {
    if (this.stopping) return;
    const now = this.clock.now();
    if (this.rerouteAfterMs > 0) {
      for (const b of this.ringBackends) {
        if (b.failingSince === undefined || now - b.failingSince < this.rerouteAfterMs) continue;
        if (this.ring.size <= 1) break; // the last one stays: its data waits for it
        b.down = true;
        b.lastProbe = now;
        this.rebuildRing();
        this.log.warn(
          { exporter: this.id, backend: b.endpoint, failing_ms: now - b.failingSince },
          'loadbalancing: backend failed every send; re-routing its share until it answers',
        );
        this.retire(b, 'backend_down', false);
      }
    }
    for (const b of this.backends.values()) {
      if (!b.down || b.probing || now - b.lastProbe < this.probeIntervalMs) continue;
      b.probing = true;
      b.lastProbe = now;
      void this.probe(b).finally(() => (b.probing = false));
    }
  }

  private async probe(b: Backend): Promise<void> {
    const ac = new AbortController();
    const t = setTimeout(() => ac.abort(), 2000);
    try {
      await b.sender.send(EMPTY_REQUEST, ac.signal);
    } catch {
      b.outcomeFail.inc();
      return;
    } finally {
      clearTimeout(t);
    }
    b.outcomeOk.inc();
    // Wait for its old exporter's hand-over before taking keys back.
    await this.handOversDone();
    if (this.stopping || this.backends.get(b.endpoint) !== b) return;
    b.failingSince = undefined;
    await this.openExporter(b);
    b.down = false;
    this.rebuildRing();
    this.log.info({ exporter: this.id, backend: b.endpoint }, 'loadbalancing: backend answers again; back in the ring');
  }

  /**
   * With storage: disk, queue files of backends that are not in the set now
   * (left by an earlier run) are opened and re-routed, so a restart with a new
   * backend set strands nothing.
   */
  private async recoverOrphanQueues(): Promise<void> {
    const q = this.otlpCfg.sending_queue;
    if (!q.enabled || q.storage !== 'disk') return;
    const prefix = fileNameFor('queue', `${this.id}/`).replace(/\.sqlite$/, '');
    const current = new Set([...this.backends.keys()].map((ep) => fileNameFor('queue', `${this.id}/${ep}`)));
    let names: string[];
    try {
      names = fs.readdirSync(q.directory);
    } catch {
      return;
    }
    for (const name of names) {
      if (!name.startsWith(prefix) || !name.endsWith('.sqlite') || current.has(name)) continue;
      const id = name.slice('queue-'.length, -'.sqlite'.length);
      const orphan = new QueuedExporter({ id, logger: this.log, telemetry: this.telemetry, clock: this.clock }, this.otlpCfg, async () => {
        throw new RetryableError('orphan queue is never sent from');
      });
      if (orphan.queue.size === 0) {
        orphan.queue.close();
        continue;
      }
      this.log.info({ exporter: this.id, file: name, requests: orphan.queue.size }, 'loadbalancing: re-routing a queue file of a backend that is gone');
      const p = orphan.handOver((req) => this.reroute(req, 'removed')).catch(() => {});
      this.retiring.add(p);
      void p.finally(() => this.retiring.delete(p));
    }
  }
}
