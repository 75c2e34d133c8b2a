/** Factory for the `memory_limiter` processor. */
import type { CreateSettings, ProcessorFactory } from '../../collector/component.js';
import { SIGNALS } from '../../collector/signals.js';
import { parseDuration } from '../../config/duration.js';
import { memoryTotal, type CgroupPaths } from './cgroup.js';
import { MemoryLimiterConfigSchema, validateMemoryLimiterConfig, type MemoryLimiterConfig } from './config.js';
import { MemoryLimiter, type MemoryLimits, type MemoryLimiterOptions } from './limiter.js';

export { MemoryLimiterConfigSchema, validateMemoryLimiterConfig, type MemoryLimiterConfig } from './config.js';
export { readCgroupMemoryLimit, parseCgroupMemoryValue, memoryTotal } from './cgroup.js';
export { heapSizeForLimit, type HeapSizeOptions } from './heap.js';

const MIB = 1024 * 1024;

/**
 * Hard and soft limits in bytes from a validated config. With limit_percentage
 * the total is the container limit (cgroup) or system memory.
 */
export function resolveMemoryLimits(c: MemoryLimiterConfig, env: CgroupPaths & { systemBytes?: number } = {}): MemoryLimits {
  if (c.limit_mib !== undefined && c.limit_mib > 0) {
    const hard = c.limit_mib * MIB;
    const spike = c.spike_limit_mib !== undefined && c.spike_limit_mib > 0 ? c.spike_limit_mib * MIB : hard / 5;
    return { hardBytes: hard, softBytes: hard - spike, source: 'limit_mib' };
  }
  const total = memoryTotal(env);
  const pct = c.limit_percentage ?? 0;
  const hard = Math.floor((total.bytes * pct) / 100);
  const spike =
    c.spike_limit_percentage !== undefined && c.spike_limit_percentage > 0
      ? Math.floor((total.bytes * c.spike_limit_percentage) / 100)
      : hard / 5;
  return { hardBytes: hard, softBytes: hard - spike, source: total.source };
}

export function memoryLimiterOptions(c: MemoryLimiterConfig, env?: CgroupPaths & { systemBytes?: number }): MemoryLimiterOptions {
  return {
    limits: resolveMemoryLimits(c, env),
    checkIntervalMs: parseDuration(c.check_interval),
    minGcIntervalSoftMs: parseDuration(c.min_gc_interval_when_soft_limited),
    minGcIntervalHardMs: parseDuration(c.min_gc_interval_when_hard_limited),
  };
}

function deps(settings: CreateSettings) {
  return { telemetry: settings.telemetry, logger: settings.logger, clock: settings.clock };
}

export const memoryLimiterProcessorFactory: ProcessorFactory<typeof MemoryLimiterConfigSchema> = {
  type: 'memory_limiter',
  kind: 'processor',
  configSchema: MemoryLimiterConfigSchema,
  validate: validateMemoryLimiterConfig,
  signals: SIGNALS,
  create(settings, config, next) {
    return new MemoryLimiter(settings.id, memoryLimiterOptions(config), next, deps(settings));
  },
  createLogs(settings, config, next) {
    return new MemoryLimiter(settings.id, memoryLimiterOptions(config), next, deps(settings), 'logs');
  },
  createMetrics(settings, config, next) {
    return new MemoryLimiter(settings.id, memoryLimiterOptions(config), next, deps(settings), 'metrics');
  },
};
