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
  component: Component;
}

export class Service {
  private readonly receivers: Built[] = [];
  private readonly processors: Built[] = [];
  private readonly exporters: Built[] = [];
  private state: 'new' | 'starting' | 'running' | 'stopping' | 'stopped' = 'new';
  private shutdownPromise: Promise<void> | undefined;

  constructor(
    private readonly config: ServiceConfig,
    private readonly logger: Logger,
    private readonly telemetry: Telemetry,
    private readonly clock: Clock,
  ) {}

  private settings(id: string): CreateSettings {
    return { id, logger: this.logger.child({ component: id }), telemetry: this.telemetry, clock: this.clock };
  }

  /** Components by id, for tests and for reading bound ports. */
  component(id: string): Component | undefined {
    for (const b of [...this.receivers, ...this.processors, ...this.exporters]) if (b.id === id) return b.component;
    return undefined;
  }

  get running(): boolean {
    return this.state === 'running';
  }

  async start(): Promise<void> {
    if (this.state !== 'new') throw new Error(`service cannot start from state ${this.state}`);
    this.state = 'starting';
    const p = this.config.service.pipelines.traces;
    try {
      const exporterConsumers: TracesConsumer[] = [];
      for (const id of p.exporters) {
        const e = this.config.exporters.get(id)!;
        const c = e.factory.create(this.settings(id), e.config as never);
        this.exporters.push({ id, component: c });
        exporterConsumers.push(c);
        await c.start();
      }
      let next: TracesConsumer = exporterConsumers.length === 1 ? exporterConsumers[0] : new FanoutConsumer(exporterConsumers);
      const built: Built[] = [];
      for (let i = p.processors.length - 1; i >= 0; i--) {
        const id = p.processors[i];
        const e = this.config.processors.get(id)!;
        const c = e.factory.create(this.settings(id), e.config as never, next);
        built.unshift({ id, component: c });
        await c.start();
        next = c;
      }
      this.processors.push(...built);
      for (const id of p.receivers) {
        const e = this.config.receivers.get(id)!;
        const c = e.factory.create(this.settings(id), e.config as never, next);
        this.receivers.push({ id, component: c });
        await c.start();
      }
      this.state = 'running';
    } catch (err) {
      this.logger.error({ err }, 'pipeline failed to start; shutting down what started');
      await this.shutdown();
      throw err;
    }
  }

  /** Drains the pipeline front to back. Safe to call twice; resolves when done. */
  shutdown(): Promise<void> {
    if (!this.shutdownPromise) this.shutdownPromise = this.doShutdown();
    return this.shutdownPromise;
  }

  private async doShutdown(): Promise<void> {
    this.state = 'stopping';
    const deadline = this.clock.now() + this.config.service.shutdownTimeoutMs;
    const stop = async (b: Built) => {
      const remaining = Math.max(0, deadline - this.clock.now());
      let timer: NodeJS.Timeout | undefined;
      const timeout = new Promise<'timeout'>((resolve) => {
        timer = setTimeout(() => resolve('timeout'), remaining);
      });
      try {
        const r = await Promise.race([b.component.shutdown().then(() => 'ok' as const), timeout]);
        if (r === 'timeout') this.logger.warn({ component: b.id }, 'component did not finish shutting down within service.shutdown_timeout');
      } catch (err) {
        this.logger.error({ err, component: b.id }, 'component failed to shut down cleanly');
      } finally {
        clearTimeout(timer);
      }
    };
    // Receivers stop accepting (in-flight requests finish), then processors flush in order, then exporters drain.
    await Promise.all(this.receivers.map(stop));
    for (const b of this.processors) await stop(b);
    await Promise.all(this.exporters.map(stop));
    this.state = 'stopped';
  }
}
