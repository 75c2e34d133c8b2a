/**
 * The component model (after the Collector's component/ and processor/ packages):
 * every receiver, processor and exporter type is described by a factory that
 * owns its config schema (with defaults) and creates instances. A component
 * never builds its neighbour: the next stage is handed in.
 */
import type { TSchema, Static } from '@sinclair/typebox';
import type { Logger } from 'pino';
import type { LogsConsumer, MetricsConsumer, SignalConsumers, TracesConsumer } from './consumer.js';
import type { Signal } from './signals.js';
import type { Telemetry } from './telemetry/metrics.js';

export type ComponentKind = 'receiver' | 'processor' | 'exporter';

export interface Clock {
  /** Milliseconds since the Unix epoch. */
  now(): number;
}
export const systemClock: Clock = { now: () => Date.now() };

export interface Component {
  start(): Promise<void>;
  /**
   * Drains and releases resources. Safe to call more than once, and before
   * start. `timeoutMs` is the time it has to hand on what it holds; past it,
   * a component gives up and counts what is left as dropped (reason `shutdown`).
   */
  shutdown(timeoutMs?: number): Promise<void>;
}

export interface CreateSettings {
  /** The component id from the config, `type` or `type/name`. */
  id: string;
  logger: Logger;
  telemetry: Telemetry;
  clock: Clock;
}

/** A semantic problem found after schema validation; `path` is relative to the component's config. */
export interface ConfigProblem {
  path: Array<string | number>;
  message: string;
}

interface FactoryBase<S extends TSchema> {
  readonly type: string;
  /**
   * The signals this type can be used for (the Collector's CreateTraces /
   * CreateLogs / CreateMetrics). Absent means traces only. The config loader
   * refuses a pipeline that lists the component for any other signal.
   */
  readonly signals?: readonly Signal[];
  /** JSON Schema of the component's config (TypeBox), with defaults; drives validation, defaults and docs. */
  readonly configSchema: S;
  /** Checks that a schema cannot express (regexes compile, ranges relate). */
  validate?(config: Static<S>): ConfigProblem[];
  /**
   * Top-level settings a config reload can apply to a running instance
   * (through its `reconfigure`), keeping what it buffers. A change to any other
   * setting rebuilds the component (a receiver restarts its listener; a
   * processor or exporter chain is rebuilt and the old one drains).
   */
  readonly liveSettings?: readonly string[];
  /**
   * Loads the implementation that create() needs (a dynamic import; see
   * `lazyModule`), so a config that does not use this type never loads its code
   * or its dependencies. The service awaits it before create(); code that calls
   * create() directly awaits it first. Safe to call more than once.
   */
  load?(): Promise<void>;
}

/**
 * A receiver id used by pipelines of several signals is one instance serving
 * all of them (as the Collector shares its otlp receiver): `consumers` holds
 * the next stage of each signal it feeds. Without `consumers` (tests that
 * create a receiver directly) it feeds `next` with traces only.
 */
export interface ReceiverFactory<S extends TSchema = TSchema> extends FactoryBase<S> {
  readonly kind: 'receiver';
  create(settings: CreateSettings, config: Static<S>, next: TracesConsumer, consumers?: SignalConsumers): Component;
}

/**
 * A processor is created once per pipeline that lists it: `create` for a
 * traces pipeline, `createLogs` / `createMetrics` for the others (each present
 * exactly when `signals` names its signal). A type that sets `sharedAcrossSignals`
 * (tail_sampling: logs follow their trace's decision) gets one instance per id:
 * the service creates it for the traces pipeline and hands the logs pipeline's
 * next stage to `attachLogs` of that same instance.
 */
export interface ProcessorFactory<S extends TSchema = TSchema> extends FactoryBase<S> {
  readonly kind: 'processor';
  create(settings: CreateSettings, config: Static<S>, next: TracesConsumer): Component & TracesConsumer;
  createLogs?(settings: CreateSettings, config: Static<S>, next: LogsConsumer): Component & LogsConsumer;
  createMetrics?(settings: CreateSettings, config: Static<S>, next: MetricsConsumer): Component & MetricsConsumer;
  readonly sharedAcrossSignals?: boolean;
}

/** A processor instance that also carries the log records of the traces it holds. */
export interface LogsAttachable {
  attachLogs(next: LogsConsumer): LogsConsumer;
}

/**
 * An exporter id is one instance for every pipeline that lists it, whatever
 * their signals: it implements the consumer of each signal in `signals`
 * (`consume`, `consumeLogs`, `consumeMetrics`).
 */
export interface ExporterFactory<S extends TSchema = TSchema> extends FactoryBase<S> {
  readonly kind: 'exporter';
  create(settings: CreateSettings, config: Static<S>): Component & TracesConsumer & Partial<LogsConsumer & MetricsConsumer>;
}

export type AnyFactory = ReceiverFactory | ProcessorFactory | ExporterFactory;

/**
 * The implementation module of a factory, imported on `load()` and handed out
 * by `get()` in create(). The bundle puts each dynamically imported module in
 * its own chunk, so an unused component type costs neither start-up time nor
 * memory (collector/bundle.ts).
 */
export function lazyModule<M>(type: string, importer: () => Promise<M>): { load(): Promise<void>; get(): M } {
  let mod: M | undefined;
  let loading: Promise<void> | undefined;
  return {
    load: () =>
      (loading ??= importer().then(
        (m) => {
          mod = m;
        },
        (err: unknown) => {
          loading = undefined; // let a later load try again
          throw err;
        },
      )),
    get: () => {
      if (mod === undefined) throw new Error(`component type "${type}": create() called before load()`);
      return mod;
    },
  };
}
