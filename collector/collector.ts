/**
 * A whole collector process: telemetry endpoint, summary log, and the service
 * (pipeline). main.ts drives it from the command line; tests drive it directly.
 */
import type { Logger } from 'pino';
import { Service } from './service.js';
import { Telemetry } from './telemetry/metrics.js';
import { TelemetryServer } from './telemetry/server.js';
import { SummaryLogger } from './telemetry/summary.js';
import { createLogger } from './telemetry/logger.js';
import { systemClock, type Clock } from './component.js';
import type { LoadedConfig } from '../config/load.js';
import { ConfigWatcher } from './reload.js';

export interface CollectorOptions {
  logger?: Logger;
  clock?: Clock;
  /** Skip process metrics (tests create many collectors in one process). */
  processMetrics?: boolean;
}

export class Collector {
  readonly logger: Logger;
  readonly telemetry: Telemetry;
  readonly service: Service;
  readonly telemetryServer: TelemetryServer;
  private readonly summary: SummaryLogger;
  private shutdownPromise: Promise<void> | undefined;

  config: LoadedConfig;
  private readonly configInfo: import('./telemetry/metrics.js').Gauge;
  private watcher: ConfigWatcher | undefined;

  constructor(config: LoadedConfig, opts: CollectorOptions = {}) {
    this.config = config;
    this.logger = opts.logger ?? createLogger(config.service.telemetry.logs.level);
    this.telemetry = new Telemetry();
    if (opts.processMetrics !== false) this.telemetry.enableProcessMetrics();
    this.configInfo = this.telemetry.gauge('sidecar_config_info', 'The loaded configuration (value 1), labelled with its hash.', ['hash']);
    this.configInfo.labels(config.hash.slice(0, 16)).set(1);
    this.service = new Service(config, this.logger, this.telemetry, opts.clock ?? systemClock);
    this.telemetryServer = new TelemetryServer(config.service.telemetry.metrics.address, this.telemetry, this.logger);
    this.summary = new SummaryLogger(this.telemetry, this.logger, config.service.telemetry.summaryIntervalMs);
  }

  async start(): Promise<void> {
    const t0 = performance.now();
    // The telemetry endpoint comes up first so /healthz answers (and /readyz says 503) while the pipeline starts.
    await this.telemetryServer.start();
    await this.service.start();
    this.telemetryServer.ready = true;
    this.summary.start();
    if (this.config.service.configWatch && this.config.file && !this.config.file.startsWith('<')) {
      this.watcher = new ConfigWatcher(this.config.file, this, this.logger, this.telemetry);
      this.watcher.start();
    }
    this.logger.info({ config: this.config.file, startup_ms: Math.round(performance.now() - t0) }, 'collector ready');
  }

  /** Applies a new config (see Service.reload); the watcher calls this. */
  async reload(next: LoadedConfig): Promise<unknown> {
    const result = await this.service.reload(next);
    this.configInfo.reset();
    this.configInfo.labels(next.hash.slice(0, 16)).set(1);
    this.config = next;
    return result;
  }

  /** Re-reads the config file now (SIGHUP). */
  reloadFromFile(): Promise<void> {
    if (!this.watcher) this.watcher = new ConfigWatcher(this.config.file, this, this.logger, this.telemetry);
    return this.watcher.check('signal');
  }

  /**
   * Stops: readiness goes to 503 at once; after `delayMs` (the application may
   * still be flushing) receivers stop accepting and the pipeline drains.
   */
  shutdown(delayMs = 0): Promise<void> {
    if (!this.shutdownPromise) {
      this.shutdownPromise = (async () => {
        this.telemetryServer.ready = false;
        this.watcher?.stop();
        if (delayMs > 0) await new Promise((r) => setTimeout(r, delayMs));
        await this.service.shutdown();
        this.summary.stop();
        await this.summary.emit().catch(() => undefined);
        await this.telemetryServer.shutdown();
        this.logger.info('collector stopped');
        this.logger.flush?.();
      })();
    }
    return this.shutdownPromise;
  }
}
