/**
 * Live reload of the mounted config file.
 *
 * Kubernetes updates a mounted ConfigMap by writing a new `..<timestamp>`
 * directory and renaming a `..data` symlink over the old one; the key file is
 * a symlink through `..data`. A watch on the file itself misses that, so the
 * watcher watches the file's directory, and on any event re-reads the file
 * and compares content hashes. SIGHUP forces a check. An invalid new file
 * leaves the running config in place; the failure is logged with its line and
 * key and counted.
 */
import { watch, type FSWatcher } from 'node:fs';
import path from 'node:path';
import type { Logger } from 'pino';
import type { LoadedConfig } from '../config/load.js';
import { isConfigError, loadConfig } from './config-loader.js';
import type { Telemetry, Counter, Gauge } from './telemetry/metrics.js';

export interface Reloadable {
  readonly config: LoadedConfig;
  reload(next: LoadedConfig): Promise<unknown>;
}

export class ConfigWatcher {
  private watcher: FSWatcher | undefined;
  private debounce: NodeJS.Timeout | undefined;
  private running: Promise<void> = Promise.resolve();
  private readonly failures: Counter;
  private readonly successes: Counter;
  private readonly lastSuccess: Gauge;

  constructor(
    private readonly file: string,
    private readonly target: Reloadable,
    private readonly logger: Logger,
    telemetry: Telemetry,
    private readonly debounceMs = 250,
  ) {
    this.failures = telemetry.counter('sidecar_config_reload_failures_total', 'Config reloads refused because the new file was invalid (the old config kept running).');
    this.successes = telemetry.counter('sidecar_config_reloads_total', 'Config reloads applied.');
    this.lastSuccess = telemetry.gauge('sidecar_config_last_reload_success_timestamp_seconds', 'When the config was last loaded successfully (Unix seconds).');
    this.lastSuccess.set(Date.now() / 1000);
  }

  start(): void {
    const dir = path.dirname(path.resolve(this.file));
    try {
      this.watcher = watch(dir, { persistent: false }, () => this.schedule());
      this.watcher.on('error', (err) => this.logger.warn({ err, dir }, 'config directory watch failed; reload with SIGHUP'));
    } catch (err) {
      this.logger.warn({ err, dir }, 'cannot watch the config directory; reload with SIGHUP');
    }
  }

  private schedule(): void {
    if (this.debounce) clearTimeout(this.debounce);
    this.debounce = setTimeout(() => void this.check('watch'), this.debounceMs);
    this.debounce.unref();
  }

  /** Re-reads the file and applies it if its content changed. Calls are serialized. */
  check(trigger: 'watch' | 'signal' | 'manual' = 'manual'): Promise<void> {
    this.running = this.running.then(() => this.doCheck(trigger));
    return this.running;
  }

  private async doCheck(trigger: string): Promise<void> {
    let next: LoadedConfig;
    try {
      next = loadConfig(this.file);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return; // mid-swap; the next event brings the file back
      this.failures.inc();
      this.logger.error(
        { trigger, problems: isConfigError(err) ? err.problems : undefined, err: isConfigError(err) ? undefined : err },
        `config reload refused, keeping the running config: ${(err as Error).message}`,
      );
      return;
    }
    if (next.hash === this.target.config.hash) return;
    const t0 = performance.now();
    try {
      const result = await this.target.reload(next);
      this.successes.inc();
      this.lastSuccess.set(Date.now() / 1000);
      this.logger.info({ trigger, hash: next.hash.slice(0, 16), reload_ms: Math.round(performance.now() - t0), result }, 'config reloaded');
    } catch (err) {
      this.failures.inc();
      this.logger.error({ err, trigger }, 'config reload failed while applying; the previous pipeline keeps running');
    }
  }

  stop(): void {
    this.watcher?.close();
    this.watcher = undefined;
    if (this.debounce) clearTimeout(this.debounce);
  }
}
