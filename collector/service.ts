/**
 * The service builds the traces pipeline from a loaded config and owns its
 * lifecycle (after the Collector's service/internal/graph):
 *
 *   receivers -> processors[0] -> ... -> processors[n-1] -> fan-out -> exporters
 *
 * Start goes from the back (exporters first, receivers last) so no stage ever
 * receives data before its next stage is running; shutdown goes from the front
 * (receivers stop accepting, each processor flushes into the next, exporters
 * drain) so every stage can hand on what it holds.
 */
import type { Logger } from 'pino';
import type { Clock, Component, CreateSettings, ExporterFactory, ProcessorFactory, ReceiverFactory } from './component.js';
import { FanoutConsumer, type TracesConsumer } from './consumer.js';
import type { Telemetry } from './telemetry/metrics.js';
import { RetryableError } from './errors.js';

export interface ComponentEntry<F> {
  id: string;
  type: string;
  factory: F;
  config: unknown;
}

/** The part of a loaded config the service needs (config/load.ts produces it). */
export interface ServiceConfig {
  receivers: Map<string, ComponentEntry<ReceiverFactory>>;
  processors: Map<string, ComponentEntry<ProcessorFactory>>;
  exporters: Map<string, ComponentEntry<ExporterFactory>>;
  service: {
    pipelines: { traces: { receivers: string[]; processors: string[]; exporters: string[] } };
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
  processors: Built[];
  exporters: Built[];
  entry: TracesConsumer;
}

/**
 * The stable head of the pipeline that receivers hold. A reload points it at
 * a new processor/exporter chain; requests already inside the old chain finish
 * there while the old chain drains.
 */
export class SwitchConsumer implements TracesConsumer {
  target: TracesConsumer | undefined;
  consume(spans: import('./pdata/spans.js').Span[]): Promise<void> {
    const t = this.target;
    if (t === undefined) return Promise.reject(new RetryableError('pipeline is not running', 1000, 'ERR_SHUTTING_DOWN'));
    return t.consume(spans);
  }
}

/**
 * Loads, in parallel, the implementations of every component type the pipeline
 * uses (factories import them lazily; see `lazyModule`). Types the config does
 * not use are never loaded.
 */
export async function loadImplementations(config: ServiceConfig): Promise<void> {
  const p = config.service.pipelines.traces;
  const used = new Set<{ load?(): Promise<void> }>();
  for (const id of p.receivers) used.add(config.receivers.get(id)!.factory);
  for (const id of p.processors) used.add(config.processors.get(id)!.factory);
  for (const id of p.exporters) used.add(config.exporters.get(id)!.factory);
  await Promise.all([...used].map((f) => f.load?.()));
}

function keyOf(type: string, config: unknown): string {
  return type + ':' + JSON.stringify(config);
}

export interface ReloadResult {
  receiversReplaced: string[];
  chainRebuilt: boolean;
  reconfigured: string[];
}

export class Service {
  private receivers: Built[] = [];
  private chain: Chain | undefined;
  private readonly head = new SwitchConsumer();
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

  /** Components by id, for tests and for reading bound ports. */
  component(id: string): Component | undefined {
    const all = [...this.receivers, ...(this.chain?.processors ?? []), ...(this.chain?.exporters ?? [])];
    for (const b of all) if (b.id === id) return b.component;
    return undefined;
  }

  get running(): boolean {
    return this.state === 'running';
  }

  /** Creates and starts exporters, then processors back to front. On failure, stops what started. */
  private async buildChain(config: ServiceConfig): Promise<Chain> {
    const p = config.service.pipelines.traces;
    const chain: Chain = { processors: [], exporters: [], entry: this.head };
    try {
      await loadImplementations(config);
      const exporterConsumers: TracesConsumer[] = [];
      for (const id of p.exporters) {
        const e = config.exporters.get(id)!;
        const c = e.factory.create(this.settings(id), e.config as never);
        chain.exporters.push({ id, key: keyOf(e.type, e.config), component: c });
        exporterConsumers.push(c);
        await c.start();
      }
      let next: TracesConsumer = exporterConsumers.length === 1 ? exporterConsumers[0] : new FanoutConsumer(exporterConsumers);
      for (let i = p.processors.length - 1; i >= 0; i--) {
        const id = p.processors[i];
        const e = config.processors.get(id)!;
        const c = e.factory.create(this.settings(id), e.config as never, next);
        chain.processors.unshift({ id, key: keyOf(e.type, e.config), component: c });
        await c.start();
        next = c;
      }
      chain.entry = next;
      return chain;
    } catch (err) {
      await this.stopChain(chain);
      throw err;
    }
  }

  private async startReceiver(config: ServiceConfig, id: string): Promise<Built> {
    const e = config.receivers.get(id)!;
    await e.factory.load?.();
    const c = e.factory.create(this.settings(id), e.config as never, this.head);
    const b = { id, key: keyOf(e.type, e.config), component: c };
    await c.start();
    return b;
  }

  async start(): Promise<void> {
    if (this.state !== 'new') throw new Error(`service cannot start from state ${this.state}`);
    this.state = 'starting';
    try {
      this.chain = await this.buildChain(this.config);
      this.head.target = this.chain.entry;
      for (const id of this.config.service.pipelines.traces.receivers) this.receivers.push(await this.startReceiver(this.config, id));
      this.state = 'running';
    } catch (err) {
      this.logger.error({ err }, 'pipeline failed to start; shutting down what started');
      await this.shutdown();
      throw err;
    }
  }

  /**
   * Applies a new config without losing data. Receivers whose config did not
   * change keep their listeners. If no processor or exporter changed, the
   * chain stays; a changed component that can apply its new config live
   * (`reconfigure`) does so; otherwise a new chain is built, the head switches
   * to it, and the old chain drains into its own exporters.
   */
  async reload(next: ServiceConfig): Promise<ReloadResult> {
    if (this.state !== 'running') throw new Error(`cannot reload while ${this.state}`);
    const result: ReloadResult = { receiversReplaced: [], chainRebuilt: false, reconfigured: [] };
    const oldChain = this.chain!;
    const p = next.service.pipelines.traces;
    const sameShape =
      JSON.stringify(p.processors) === JSON.stringify(oldChain.processors.map((b) => b.id)) &&
      JSON.stringify(p.exporters) === JSON.stringify(oldChain.exporters.map((b) => b.id));
    let rebuild = !sameShape;
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
            result.reconfigured.push(b.id);
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
      this.head.target = fresh.entry;
      result.chainRebuilt = true;
      // The old chain drains into its own exporters; nothing it holds is dropped.
      void this.stopChain(oldChain, next.service.shutdownTimeoutMs);
    }
    // Receivers: keep unchanged ones; replace changed ones (close first: the address may be the same).
    const kept: Built[] = [];
    const wanted = new Set(p.receivers);
    for (const b of this.receivers) {
      const e = next.receivers.get(b.id);
      if (wanted.has(b.id) && e && keyOf(e.type, e.config) === b.key) kept.push(b);
      else {
        await b.component.shutdown();
        if (wanted.has(b.id)) {
          kept.push(await this.startReceiver(next, b.id));
          result.receiversReplaced.push(b.id);
        }
      }
    }
    for (const id of p.receivers) {
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

  /** Drains the pipeline front to back. Safe to call twice; resolves when done. */
  shutdown(): Promise<void> {
    if (!this.shutdownPromise) this.shutdownPromise = this.doShutdown();
    return this.shutdownPromise;
  }

  private async doShutdown(): Promise<void> {
    this.state = 'stopping';
    const deadline = this.clock.now() + this.config.service.shutdownTimeoutMs;
    // Receivers stop accepting (in-flight requests finish), then the chain drains.
    await Promise.all(this.receivers.map((b) => this.stopOne(b, deadline)));
    if (this.chain) await this.stopChain(this.chain);
    this.head.target = undefined;
    this.state = 'stopped';
  }
}

/** A component that can apply a changed config without being rebuilt (keeps what it buffers). */
export interface Reconfigurable {
  /** Returns false when the change needs a rebuild. */
  reconfigure(config: unknown): boolean;
}
