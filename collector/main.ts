#!/usr/bin/env node
/**
 * Entry point.
 *
 *   node dist/collector/sidecar.mjs [--config PATH]        run (COLLECTOR_CONFIG, else the built-in default)
 *   node dist/collector/sidecar.mjs validate --config PATH check a config file and exit 0 or 1
 *   node dist/collector/sidecar.mjs --version
 *
 * Only this file exits the process. After start, bad input is answered and
 * counted; it never stops the collector.
 */
import { fileURLToPath } from 'node:url';
import path from 'node:path';
import { readFileSync } from 'node:fs';
import v8 from 'node:v8';
import { Collector } from './collector.js';
import { isConfigError, loadConfig } from './config-loader.js';

const here = path.dirname(fileURLToPath(import.meta.url));
const root = path.resolve(here, '..', '..');
export const DEFAULT_CONFIG = path.join(root, 'config', 'default.yaml');

function usage(): string {
  return [
    'usage: sidecar-collector [--config PATH]',
    '       sidecar-collector validate [--config PATH]',
    '       sidecar-collector --version',
    '',
    'The config path may also come from COLLECTOR_CONFIG; without either, the built-in',
    `default (${path.relative(process.cwd(), DEFAULT_CONFIG) || DEFAULT_CONFIG}) is used.`,
  ].join('\n');
}

function parseArgs(argv: string[]): { command: 'run' | 'validate' | 'version' | 'help'; config: string } {
  let command: 'run' | 'validate' | 'version' | 'help' = 'run';
  let config = process.env.COLLECTOR_CONFIG || DEFAULT_CONFIG;
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === 'validate') command = 'validate';
    else if (a === '--version' || a === '-v') command = 'version';
    else if (a === '--help' || a === '-h') command = 'help';
    else if (a === '--config' || a === '-c') {
      const v = argv[++i];
      if (!v) throw new Error('--config needs a path');
      config = v;
    } else if (a.startsWith('--config=')) config = a.slice('--config='.length);
    else throw new Error(`unknown argument "${a}"\n\n${usage()}`);
  }
  return { command, config };
}

/**
 * Old-generation growth: V8 lets the old generation grow by a factor chosen
 * per GC (often 1.5-2x the live size) before the next full collection. Tail
 * sampling holds spans for tens of seconds and then frees them in bulk, so
 * that slack shows up as RSS. 30% caps the slack; measured with
 * `npm run loadtest -- hold-600k`: peak RSS 634-637 -> 596 MiB (0.94x) for
 * 1.2x the CPU at 20k spans/s, and cpu-10k / sampling-200k unchanged within
 * noise (BENCHMARKS.md). V8 reads the flag at every GC, so setting it here
 * works; NODE_OPTIONS may not carry it (Node refuses the flag there).
 * A `--heap-growing-percent` given to node on the command line wins.
 */
const HEAP_GROWING_PERCENT = 30;

/**
 * Tier-up: V8 optimizes a function after it has run about this many bytes of
 * bytecode (its default is 67584). At the 100 requests/s of a typical pod
 * the per-request code (HTTP/2 stream handling, scan, batch, export) takes
 * minutes to get there, and runs in the interpreter and baseline tiers until
 * it does: `cpu-10k` measured 6.5-6.6% of a core with the default and
 * 6.0-6.1% with 16384 (BENCHMARKS.md, issue 2). Set once the collector
 * is ready, so that code which runs only at start-up is not optimized for
 * nothing (cpu-10k is the same either way: 5.7/5.7 vs 5.6/5.7%, one hold);
 * a `--interrupt-budget` on the command line wins.
 */
const INTERRUPT_BUDGET = 16_384;

function given(flag: string): boolean {
  const alt = '--' + flag.slice(2).replace(/-/g, '_');
  return process.execArgv.some((a) => a.startsWith(flag) || a.startsWith(alt));
}

function tuneV8(): void {
  if (!given('--heap-growing-percent')) v8.setFlagsFromString(`--heap-growing-percent=${HEAP_GROWING_PERCENT}`);
}

/** After start-up: start-up code runs once and must not tier up (see INTERRUPT_BUDGET). */
function tuneTierUp(): void {
  if (!given('--interrupt-budget')) v8.setFlagsFromString(`--interrupt-budget=${INTERRUPT_BUDGET}`);
}

async function main(): Promise<number> {
  let args;
  try {
    args = parseArgs(process.argv.slice(2));
  } catch (err) {
    process.stderr.write(`${(err as Error).message}\n`);
    return 2;
  }
  if (args.command === 'help') {
    process.stdout.write(usage() + '\n');
    return 0;
  }
  if (args.command === 'version') {
    const pkg = JSON.parse(readFileSync(path.join(root, 'package.json'), 'utf8')) as { version: string };
    process.stdout.write(`sidecar-collector ${pkg.version}\n`);
    return 0;
  }
  if (args.command === 'validate') {
    try {
      const cfg = loadConfig(args.config);
      for (const w of cfg.warnings) process.stderr.write(`warning: ${w}\n`);
      process.stdout.write(`${args.config}: valid\n`);
      return 0;
    } catch (err) {
      process.stderr.write(isConfigError(err) ? `${err.message}\n` : `${args.config}: ${(err as Error).message}\n`);
      return 1;
    }
  }

  tuneV8();
  let collector: Collector;
  try {
    collector = new Collector(loadConfig(args.config));
  } catch (err) {
    process.stderr.write(isConfigError(err) ? `${err.message}\n` : `${args.config}: ${(err as Error).message}\n`);
    return 1;
  }
  const log = collector.logger;
  process.on('unhandledRejection', (err) => log.error({ err }, 'unhandled promise rejection (kept running)'));
  process.on('uncaughtException', (err) => log.error({ err }, 'uncaught exception (kept running)'));
  try {
    await collector.start();
    tuneTierUp();
  } catch (err) {
    log.fatal({ err }, 'collector failed to start');
    await collector.shutdown().catch(() => undefined);
    return 1;
  }
  return await new Promise<number>((resolve) => {
    let signalled = false;
    const onSignal = (sig: NodeJS.Signals) => {
      if (signalled) {
        log.warn({ signal: sig }, 'second signal: exiting now');
        resolve(1);
        return;
      }
      signalled = true;
      const delay = sig === 'SIGTERM' ? collector.config.service.shutdownDelayMs : 0;
      log.info({ signal: sig, accept_for_ms: delay }, 'shutting down: draining the pipeline');
      collector.shutdown(delay).then(
        () => resolve(0),
        (err: unknown) => {
          log.error({ err }, 'shutdown failed');
          resolve(1);
        },
      );
    };
    process.on('SIGTERM', onSignal);
    process.on('SIGHUP', () => void collector.reloadFromFile());
    process.on('SIGINT', onSignal);
  });
}

main().then(
  (code) => {
    // Let pino flush its asynchronous destination before exiting.
    setImmediate(() => process.exit(code));
  },
  (err) => {
    process.stderr.write(`fatal: ${(err as Error)?.stack ?? err}\n`);
    process.exit(1);
  },
);
