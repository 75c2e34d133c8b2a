/**
 * The component model (after the Collector's component/ and processor/ packages):
 * every receiver, processor and exporter type is described by a factory that
 * owns its config schema (with defaults) and creates instances. A component
 * never builds its neighbour: the next stage is handed in.
 */
import type { TSchema, Static } from '@sinclair/typebox';
import type { Logger } from 'pino';
import type { TracesConsumer } from './consumer.js';
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

export interface ReceiverFactory<S extends TSchema = TSchema> extends FactoryBase<S> {
  readonly kind: 'receiver';
  create(settings: CreateSettings, config: Static<S>, next: TracesConsumer): Component;
}

export interface ProcessorFactory<S extends TSchema = TSchema> extends FactoryBase<S> {
  readonly kind: 'processor';
  create(settings: CreateSettings, config: Static<S>, next: TracesConsumer): Component & TracesConsumer;
}

export interface ExporterFactory<S extends TSchema = TSchema> extends FactoryBase<S> {
  readonly kind: 'exporter';
  create(settings: CreateSettings, config: Static<S>): Component & TracesConsumer;
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
