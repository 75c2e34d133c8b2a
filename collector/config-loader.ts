/**
 * The config loader, for one load at a time.
 *
 * Loading a config needs the YAML parser, the loader (config/load.ts) and its
 * error reporting: a few hundred kB of code that runs at start and on a reload,
 * and never in between. V8 keeps the source text and the bytecode of every
 * function a module has run for as long as the module lives, and an ES module
 * lives forever. So the build (collector/bundle.ts) bundles config/load.ts and
 * its dependencies into dist/config/loader.cjs, which is evaluated here for each
 * load outside the module system, like the precompiled validators it loads:
 * once the load is over, all of it is garbage (about 0.7 MiB of an idle
 * collector's heap; BENCHMARKS.md, idle RSS). Component factories and
 * TypeBox come from this process (the bundled loader has no copy of its own),
 * so the loaded config refers to the same factories the service uses.
 *
 * Run unbundled (tests from source, tsc output without the build step), the
 * loader is config/load.ts itself, imported as usual.
 */
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { Type } from '@sinclair/typebox';
import * as direct from '../config/load.js';
import type { LoadedConfig, LocatedProblem } from '../config/load.js';
import { receiverFactories, processorFactories, exporterFactories } from './components.js';

type Loader = Pick<typeof direct, 'loadConfigFile'>;

/** Where the bundle's transient loader is, from dist/collector/ (the bundle, or tsc's output beside it). */
const TRANSIENT = new URL('../config/loader.cjs', import.meta.url);
const requireHere = createRequire(import.meta.url);

function loader(): Loader {
  // In the bundle, collector/bundle.ts replaces `direct` with an empty module.
  if (typeof direct.loadConfigFile === 'function') return direct;
  const text = readFileSync(TRANSIENT, 'utf8');
  const mod = { exports: {} as Loader };
  new Function('module', 'exports', 'require', '__loaderUrl', '__loaderTypeBox', text)(mod, mod.exports, requireHere, TRANSIENT.href, Type);
  return mod.exports;
}

/** Reads and validates a config file (config/load.ts `loadConfigFile`). Throws a ConfigError. */
export function loadConfig(file: string): LoadedConfig {
  return loader().loadConfigFile(file, { factories: { receivers: receiverFactories, processors: processorFactories, exporters: exporterFactories } });
}

/**
 * Whether `err` is the loader's ConfigError. By name: the transient loader has
 * its own copy of the class, so `instanceof` cannot tell.
 */
export function isConfigError(err: unknown): err is Error & { problems: LocatedProblem[] } {
  return err instanceof Error && err.name === 'ConfigError' && Array.isArray((err as { problems?: unknown }).problems);
}
