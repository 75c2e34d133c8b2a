/**
 * Calls back when any of a few files may have changed on disk.
 *
 * Kubernetes updates a mounted ConfigMap or Secret by writing a new
 * `..<timestamp>` directory and renaming a `..data` symlink over the old one;
 * each key file is a symlink through `..data`. A watch on the file itself
 * misses that, so this watches each file's directory (as `ConfigWatcher` in
 * reload.ts does for the config file) and debounces the burst of events a
 * swap makes. An optional interval re-checks anyway (for file systems
 * without change events). The callback decides whether the content changed.
 */
import { watch, type FSWatcher } from 'node:fs';
import path from 'node:path';
import type { Logger } from 'pino';

export interface FileWatchOptions {
  /** Quiet time after the last event before the callback runs. Default 100 ms. */
  debounceMs?: number;
  /** Also call back on this interval (0 or undefined: events only). */
  intervalMs?: number;
  logger: Logger;
}

export class FileWatch {
  private readonly watchers: FSWatcher[] = [];
  private debounce: NodeJS.Timeout | undefined;
  private interval: NodeJS.Timeout | undefined;
  private running: Promise<void> = Promise.resolve();

  constructor(
    private readonly files: readonly string[],
    private readonly onChange: () => Promise<void> | void,
    private readonly opts: FileWatchOptions,
  ) {}

  start(): void {
    const dirs = new Set(this.files.map((f) => path.dirname(path.resolve(f))));
    for (const dir of dirs) {
      try {
        const w = watch(dir, { persistent: false }, () => this.schedule());
        w.on('error', (err) => this.opts.logger.warn({ err, dir }, 'directory watch failed; changes to its files are picked up only on the reload interval'));
        this.watchers.push(w);
      } catch (err) {
        this.opts.logger.warn({ err, dir }, 'cannot watch directory; changes to its files are picked up only on the reload interval');
      }
    }
    const every = this.opts.intervalMs ?? 0;
    if (every > 0) {
      this.interval = setInterval(() => void this.check(), every);
      this.interval.unref();
    }
  }

  private schedule(): void {
    if (this.debounce) clearTimeout(this.debounce);
    this.debounce = setTimeout(() => void this.check(), this.opts.debounceMs ?? 100);
    this.debounce.unref();
  }

  /** Runs the callback now (calls are serialized); resolves when it is done. */
  check(): Promise<void> {
    this.running = this.running.then(async () => {
      try {
        await this.onChange();
      } catch (err) {
        this.opts.logger.error({ err }, 'handling a changed file failed');
      }
    });
    return this.running;
  }

  stop(): void {
    for (const w of this.watchers) w.close();
    this.watchers.length = 0;
    if (this.debounce) clearTimeout(this.debounce);
    if (this.interval) clearInterval(this.interval);
  }
}
