/**
 * Entry point of the sidecar injector (a mutating admission webhook):
 *   node dist/deploy/injector/main.js [--config FILE] [--image IMG] [--native-sidecar true] ...
 * Options: deploy/injector/README.md. SIGTERM/SIGINT close the listener,
 * let in-flight reviews finish and exit 0.
 */
import { createLogger } from '../../collector/telemetry/logger.js';
import { InjectorConfigError, loadInjectorConfig } from './config.js';
import { startInjectorServer } from './server.js';

async function main(): Promise<void> {
  let cfg;
  try {
    cfg = loadInjectorConfig(process.argv.slice(2), process.env);
  } catch (err) {
    if (err instanceof InjectorConfigError) {
      process.stderr.write(`sidecar-injector: ${err.message}\n`);
      process.exit(2);
    }
    throw err;
  }
  const logger = createLogger(cfg.log_level).child({ component: 'sidecar-injector' });
  let server;
  try {
    server = await startInjectorServer(cfg, logger);
  } catch (err) {
    logger.fatal({ err: (err as Error).message }, 'cannot start the injector');
    logger.flush?.();
    process.exitCode = 1;
    return;
  }
  const stop = (signal: string): void => {
    logger.info({ signal }, 'shutting down');
    const force = setTimeout(() => process.exit(0), 10_000);
    force.unref();
    server.close().then(() => {
      logger.flush?.();
      process.exit(0);
    });
  };
  process.once('SIGTERM', () => stop('SIGTERM'));
  process.once('SIGINT', () => stop('SIGINT'));
}

void main();
