/** Factory for the `batch` processor. */
import type { CreateSettings, ProcessorFactory } from '../../collector/component.js';
import { SIGNALS } from '../../collector/signals.js';
import { parseDuration } from '../../config/duration.js';
import { BatchConfigSchema, validateBatchConfig, type BatchConfig } from './config.js';
import { BatchProcessor, type BatchOptions } from './batcher.js';
import { timersFor } from './timers.js';

export { BatchConfigSchema, type BatchConfig } from './config.js';

export function batchOptions(c: BatchConfig): BatchOptions {
  return {
    sendBatchSize: c.send_batch_size,
    sendBatchMaxSize: c.send_batch_max_size,
    sendBatchMaxBytes: c.send_batch_max_bytes,
    timeoutMs: parseDuration(c.timeout),
    maxPendingSpans: c.max_pending_spans,
    maxPendingBytes: c.max_pending_bytes,
  };
}

function deps(settings: CreateSettings) {
  return { telemetry: settings.telemetry, timers: timersFor(settings.clock), logger: settings.logger, clock: settings.clock };
}

export const batchProcessorFactory: ProcessorFactory<typeof BatchConfigSchema> = {
  type: 'batch',
  kind: 'processor',
  configSchema: BatchConfigSchema,
  validate: validateBatchConfig,
  signals: SIGNALS,
  create(settings, config, next) {
    return new BatchProcessor(settings.id, batchOptions(config), next, deps(settings));
  },
  createLogs(settings, config, next) {
    return new BatchProcessor(settings.id, batchOptions(config), next, deps(settings), 'logs');
  },
  createMetrics(settings, config, next) {
    return new BatchProcessor(settings.id, batchOptions(config), next, deps(settings), 'metrics');
  },
};
