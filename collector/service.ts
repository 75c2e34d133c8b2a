/**
 * The service builds the pipelines of a loaded config and owns their
 * lifecycle (after the Collector's service/internal/graph). Each entry of
 * `service.pipelines` (`traces`, `logs`, `metrics`, `logs/app`, ...) is
 *
 *   receivers -> processors[0] -> ... -> processors[n-1] -> fan-out -> exporters
 *
 * for its signal. A receiver or exporter id is one instance however many
 * pipelines (of whatever signals) list it: the receiver feeds the head of each
 * of its pipelines, the exporter takes every signal it is handed. Processors
 * are one instance per pipeline, except a type that is `sharedAcrossSignals`
 * (tail_sampling), which is one instance per id for its traces and logs.
 *
 * Start goes from the back (exporters first, receivers last) so no stage ever
 * receives data before its next stage is running; shutdown goes from the front
 * (receivers stop accepting, each processor flushes into the next, exporters
 * drain) so every stage can hand on what it holds.
 */
import type { Logger } from 'pino';
import type { Clock, Component, CreateSettings, ExporterFactory, LogsAttachable, ProcessorFactory, ReceiverFactory } from './component.js';
import { fanout, type LogsConsumer, type MetricsConsumer, type SignalConsumers, type TracesConsumer } from './consumer.js';
import type { Telemetry } from './telemetry/metrics.js';
import { RetryableError } from './errors.js';
import { pipelineSignal, SIGNALS, type Signal } from './signals.js';
import type { Span } from './pdata/spans.js';
import type { LogRecord } from './pdata/logs.js';
import type { Metric } from './pdata/metrics.js';

export interface ComponentEntry<F> {
  id: string;
  type: string;
  factory: F;
  config: unknown;
}

export interface PipelineConfig {
  receivers: string[];
  processors: string[];
  exporters: string[];
}

/** The part of a loaded config the service needs (config/load.ts produces it). */
export interface ServiceConfig {
  receivers: Map<string, ComponentEntry<ReceiverFactory>>;
  processors: Map<string, ComponentEntry<ProcessorFactory>>;
  exporters: Map<string, ComponentEntry<ExporterFactory>>;
  service: {
    /** Pipeline id (`traces`, `logs/app`, ...) -> its components. */
    pipelines: Record<string, PipelineConfig>;
    shutdownTimeoutMs: number;
  };
}

interface Built {
  id: string;
  /** JSON of type + config, to tell whether a reload changed it. */
  key: string;
  component: Component;
}

interface Chain {
  /** Every processor instance, in pipeline order (a shared instance once). */
  processors: Built[];
  exporters: Built[];
  /** Pipeline id -> the first stage of its chain. */
  entries: Map<string, object>;
}

type AnyConsumer = TracesConsumer | LogsConsumer | MetricsConsumer;

const notRunning = () => Promise.reject(new RetryableError('pipeline is not running', 1000, 'ERR_SHUTTING_DOWN'));

/**
 * The stable head of a pipeline that receivers hold. A reload points it at a
 * new processor/exporter chain; requests already inside the old chain finish
 * there while the old chain drains. It forwards the signal it is handed.
 */
export class SwitchConsumer implements TracesConsumer, LogsConsumer, MetricsConsumer {
  target: object | undefined;
  get mutatesData(): boolean {
    return (this.target as { mutatesData?: boolean } | undefined)?.mutatesData === true;
  }
  consume(spans: Span[]): Promise<void> {
    const t = this.target as TracesConsumer | undefined;
    return t === undefined ? notRunning() : t.consume(spans);
  }
  consumeLogs(records: LogRecord[]): Promise<void> {
    const t = this.target as LogsConsumer | undefined;
    return t === undefined ? notRunning() : t.consumeLogs(records);
  }
  consumeMetrics(metrics: Metric[]): Promise<void> {
    const t = this.target as MetricsConsumer | undefined;
    return t === undefined ? notRunning() : t.consumeMetrics(metrics);
  }
}

/** Pipelines in build order: traces first, so a processor shared with logs exists when a logs pipeline needs it. */
function pipelineIds(config: ServiceConfig): string[] {
  const ids = Object.keys(config.service.pipelines);
  return SIGNALS.flatMap((s) => ids.filter((id) => pipelineSignal(id) === s));
}

/**
 * Loads, in parallel, the implementations of every component type the pipelines
 * use (factories import them lazily; see `lazyModule`). Types the config does
 * not use are never loaded.
 */
export async function loadImplementations(config: ServiceConfig): Promise<void> {
  const used = new Set<{ load?(): Promise<void> }>();
  for (const p of Object.values(config.service.pipelines)) {
    for (const id of p.receivers) used.add(config.receivers.get(id)!.factory);
    for (const id of p.processors) used.add(config.processors.get(id)!.factory);
    for (const id of p.exporters) used.add(config.exporters.get(id)!.factory);
  }
  await Promise.all([...used].map((f) => f.load?.()));
}

function keyOf(type: string, config: unknown): string {
  return type + ':' + JSON.stringify(config);
}

/** The pipelines without their receivers: equal shapes can keep their chain. */
function chainShape(config: ServiceConfig): string {
  return JSON.stringify(pipelineIds(config).map((id) => [id, config.service.pipelines[id].processors, config.service.pipelines[id].exporters]));
}

/** Which pipelines a receiver feeds (a change restarts it: its consumers change). */
function receiverPipelines(config: ServiceConfig, id: string): string[] {
  return pipelineIds(config).filter((p) => config.service.pipelines[p].receivers.includes(id));
}

export interface ReloadResult {
  receiversReplaced: string[];
  chainRebuilt: boolean;
  reconfigured: string[];
}

export class Service {
  private receivers: Built[] = [];
  private chain: Chain | undefined;
  /** Pipeline id -> its head; kept across reloads. */
  private readonly heads = new Map<string, SwitchConsumer>();
  private state: 'new' | 'starting' | 'running' | 'stopping' | 'stopped' = 'new';
  private shutdownPromise: Promise<void> | undefined;
  private config: ServiceConfig;

  constructor(
    config: ServiceConfig,
    private readonly logger: Logger,
    private readonly telemetry: Telemetry,
    private readonly clock: Clock,
  ) {
    this.config = config;
  }

  private settings(id: string): CreateSettings {
    return { id, logger: this.logger.child({ component: id }), telemetry: this.telemetry, clock: this.clock };
  }

  private head(pipeline: string): SwitchConsumer {
    let h = this.heads.get(pipeline);
    if (h === undefined) {
      h = new SwitchConsumer();
      this.heads.set(pipeline, h);
    }
    return h;
  }

  /** Components by id, for tests and for reading bound ports (the first instance of a processor id). */
  component(id: string): Component | undefined {
    const all = [...this.receivers, ...(this.chain?.processors ?? []), ...(this.chain?.exporters ?? [])];
    for (const b of all) if (b.id === id) return b.component;
    return undefined;
  }

  get running(): boolean {
    return this.state === 'running';
  }

  /** Creates and starts exporters, then each pipeline's processors back to front. On failure, stops what started. */
  private async buildChain(config: ServiceConfig): Promise<Chain> {
    const chain: Chain = { processors: [], exporters: [], entries: new Map() };
    try {
      await loadImplementations(config);
      const exporters = new Map<string, Component & AnyConsumer>();
      for (const pid of pipelineIds(config)) {
        for (const id of config.service.pipelines[pid].exporters) {
          if (exporters.has(id)) continue;
          const e = config.exporters.get(id)!;
          const c = e.factory.create(this.settings(id), e.config as never);
          chain.exporters.push({ id, key: keyOf(e.type, e.config), component: c });
          exporters.set(id, c);
          await c.start();
        }
      }
      const shared = new Map<string, Component & TracesConsumer & Partial<LogsAttachable>>();
      for (const pid of pipelineIds(config)) {
        const signal = pipelineSignal(pid)!;
        const p = config.service.pipelines[pid];
        let next: object = fanout(signal, p.exporters.map((id) => exporters.get(id)!));
        const built: Built[] = [];
        for (let i = p.processors.length - 1; i >= 0; i--) {
          const id = p.processors[i];
          const e = config.processors.get(id)!;
          const key = keyOf(e.type, e.config);
          const s = shared.get(id);
          if (s !== undefined && signal === 'logs' && typeof s.attachLogs === 'function') {
            // One instance for the traces and the logs of the same id: logs follow their trace's decision.
            next = s.attachLogs(next as LogsConsumer);
            continue;
          }
          const c = this.createProcessor(e, id, signal, next);
          if (e.factory.sharedAcrossSignals && signal === 'traces') shared.set(id, c as never);
          built.unshift({ id, key, component: c });
          await c.start();
          next = c;
        }
        chain.processors.push(...built);
        chain.entries.set(pid, next);
      }
      return chain;
    } catch (err) {
      await this.stopChain(chain);
      throw err;
    }
  }

  private createProcessor(e: ComponentEntry<ProcessorFactory>, id: string, signal: Signal, next: object): Component & AnyConsumer {
    const f = e.factory;
    const cfg = e.config as never;
    if (signal === 'traces') return f.create(this.settings(id), cfg, next as TracesConsumer);
    // The config loader refuses a processor in a pipeline of a signal its type does not support.
    if (signal === 'logs' && f.createLogs) return f.createLogs(this.settings(id), cfg, next as LogsConsumer);
    if (signal === 'metrics' && f.createMetrics) return f.createMetrics(this.settings(id), cfg, next as MetricsConsumer);
    throw new Error(`processor ${id} does not support ${signal}`);
  }

  private async startReceiver(config: ServiceConfig, id: string): Promise<Built> {
    const e = config.receivers.get(id)!;
    await e.factory.load?.();
    const pipelines = receiverPipelines(config, id);
    const consumers: SignalConsumers = {};
    for (const signal of SIGNALS) {
      const heads = pipelines.filter((p) => pipelineSignal(p) === signal).map((p) => this.head(p));
      if (heads.length > 0) (consumers as Record<Signal, AnyConsumer>)[signal] = fanout(signal, heads);
    }
    const tracesNext = consumers.traces ?? this.head('traces');
    const c = e.factory.create(this.settings(id), e.config as never, tracesNext, consumers);
    const b = { id, key: keyOf(e.type, e.config) + JSON.stringify(pipelines), component: c };
    await c.start();
    return b;
  }

  private pointHeads(config: ServiceConfig, chain: Chain): void {
    for (const [pid, h] of this.heads) h.target = chain.entries.get(pid);
    for (const pid of Object.keys(config.service.pipelines)) this.head(pid).target = chain.entries.get(pid);
  }

  private allReceivers(config: ServiceConfig): string[] {
    const out: string[] = [];
    for (const pid of pipelineIds(config)) for (const id of config.service.pipelines[pid].receivers) if (!out.includes(id)) out.push(id);
    return out;
  }

  async start(): Promise<void> {
    if (this.state !== 'new') throw new Error(`service cannot start from state ${this.state}`);
    this.state = 'starting';
    try {
      this.chain = await this.buildChain(this.config);
      this.pointHeads(this.config, this.chain);
      for (const id of this.allReceivers(this.config)) this.receivers.push(await this.startReceiver(this.config, id));
      this.state = 'running';
    } catch (err) {
      this.logger.error({ err }, 'pipeline failed to start; shutting down what started');
      await this.shutdown();
      throw err;
    }
  }

  /**
   * Applies a new config without losing data. Receivers whose config (and
   * pipelines) did not change keep their listeners. If no processor or
   * exporter changed, the chains stay; a changed component that can apply its
   * new config live (`reconfigure`) does so; otherwise new chains are built,
   * the heads switch to them, and the old chains drain into their own exporters.
   */
  async reload(next: ServiceConfig): Promise<ReloadResult> {
    if (this.state !== 'running') throw new Error(`cannot reload while ${this.state}`);
    const result: ReloadResult = { receiversReplaced: [], chainRebuilt: false, reconfigured: [] };
    const oldChain = this.chain!;
    let rebuild = chainShape(next) !== chainShape(this.config);
    if (!rebuild) {
      const pending: Array<{ b: Built; config: unknown; key: string }> = [];
      for (const b of [...oldChain.processors, ...oldChain.exporters]) {
        const e = next.processors.get(b.id) ?? next.exporters.get(b.id)!;
        const key = keyOf(e.type, e.config);
        if (key === b.key) continue;
        const r = (b.component as Partial<Reconfigurable>).reconfigure;
        if (typeof r !== 'function') {
          rebuild = true;
          break;
        }
        pending.push({ b, config: e.config, key });
      }
      if (!rebuild) {
        for (const { b, config, key } of pending) {
          if ((b.component as unknown as Reconfigurable).reconfigure(config)) {
            b.key = key;
            if (!result.reconfigured.includes(b.id)) result.reconfigured.push(b.id);
          } else {
            rebuild = true;
            break;
          }
        }
      }
    }
    if (rebuild) {
      const fresh = await this.buildChain(next);
      this.chain = fresh;
      this.pointHeads(next, fresh);
      result.chainRebuilt = true;
      // The old chain drains into its own exporters; nothing it holds is dropped.
      void this.stopChain(oldChain, next.service.shutdownTimeoutMs);
    }
    // Receivers: keep unchanged ones; replace changed ones (close first: the address may be the same).
    const kept: Built[] = [];
    const wanted = this.allReceivers(next);
    const wantedKey = (id: string) => {
      const e = next.receivers.get(id)!;
      return keyOf(e.type, e.config) + JSON.stringify(receiverPipelines(next, id));
    };
    for (const b of this.receivers) {
      if (wanted.includes(b.id) && wantedKey(b.id) === b.key) kept.push(b);
      else {
        await b.component.shutdown();
        if (wanted.includes(b.id)) {
          kept.push(await this.startReceiver(next, b.id));
          result.receiversReplaced.push(b.id);
        }
      }
    }
    for (const id of wanted) {
      if (!kept.some((b) => b.id === id)) {
        kept.push(await this.startReceiver(next, id));
        result.receiversReplaced.push(id);
      }
    }
    this.receivers = kept;
    this.config = next;
    return result;
  }

  private async stopOne(b: Built, deadline: number): Promise<void> {
    const remaining = Math.max(0, deadline - this.clock.now());
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<'timeout'>((resolve) => {
      timer = setTimeout(() => resolve('timeout'), remaining);
    });
    try {
      const r = await Promise.race([b.component.shutdown(remaining).then(() => 'ok' as const), timeout]);
      if (r === 'timeout') this.logger.warn({ component: b.id }, 'component did not finish shutting down within service.shutdown_timeout');
    } catch (err) {
      this.logger.error({ err, component: b.id }, 'component failed to shut down cleanly');
    } finally {
      clearTimeout(timer);
    }
  }

  private async stopChain(chain: Chain, timeoutMs = this.config.service.shutdownTimeoutMs): Promise<void> {
    const deadline = this.clock.now() + timeoutMs;
    // Processors flush in order into the next stage, then exporters drain.
    for (const b of chain.processors) await this.stopOne(b, deadline);
    await Promise.all(chain.exporters.map((b) => this.stopOne(b, deadline)));
  }

  /** Drains the pipelines front to back. Safe to call twice; resolves when done. */
  shutdown(): Promise<void> {
    if (!this.shutdownPromise) this.shutdownPromise = this.doShutdown();
    return this.shutdownPromise;
  }

  private async doShutdown(): Promise<void> {
    this.state = 'stopping';
    const deadline = this.clock.now() + this.config.service.shutdownTimeoutMs;
    // Receivers stop accepting (in-flight requests finish), then the chains drain.
    await Promise.all(this.receivers.map((b) => this.stopOne(b, deadline)));
    if (this.chain) await this.stopChain(this.chain);
    for (const h of this.heads.values()) h.target = undefined;
    this.state = 'stopped';
  }
}

/** A component that can apply a changed config without being rebuilt (keeps what it buffers). */
export interface Reconfigurable {
  /** Returns false when the change needs a rebuild. */
  reconfigure(config: unknown): boolean;
}
