import { Type, type Static } from '@sinclair/typebox';
import { Duration, parseDuration } from '../../config/duration.js';
import type { ConfigProblem } from '../../collector/component.js';

export const MemoryLimiterConfigSchema = Type.Object(
  {
    check_interval: Duration('1s', 'How often memory use (process RSS) is measured. Must be greater than 0.'),
    limit_mib: Type.Optional(
      Type.Integer({
        minimum: 0,
        description: 'Hard limit in MiB of process RSS. Set exactly one of limit_mib and limit_percentage (0 counts as unset).',
      }),
    ),
    spike_limit_mib: Type.Optional(
      Type.Integer({
        minimum: 0,
        description:
          'Headroom in MiB between the soft and the hard limit: soft = limit_mib - spike_limit_mib. Must be below limit_mib. Default: 20% of limit_mib.',
      }),
    ),
    limit_percentage: Type.Optional(
      Type.Integer({
        minimum: 0,
        maximum: 100,
        description:
          'Hard limit as a percentage of the container memory limit (cgroup v2 memory.max, or v1 memory.limit_in_bytes), or of total system memory when there is none.',
      }),
    ),
    spike_limit_percentage: Type.Optional(
      Type.Integer({
        minimum: 0,
        maximum: 100,
        description:
          'Headroom as a percentage of the same total: soft = total * (limit_percentage - spike_limit_percentage) / 100. Must be below limit_percentage. Default: 20% of the limit.',
      }),
    ),
    min_gc_interval_when_soft_limited: Duration(
      '10s',
      'Least time between garbage collections requested while above the soft limit (only when Node runs with --expose-gc).',
    ),
    min_gc_interval_when_hard_limited: Duration(
      '0s',
      'Least time between garbage collections requested while above the hard limit (only when Node runs with --expose-gc).',
    ),
  },
  { additionalProperties: false, default: {} },
);

export type MemoryLimiterConfig = Static<typeof MemoryLimiterConfigSchema>;

const isSet = (v: number | undefined): v is number => v !== undefined && v > 0;

export function validateMemoryLimiterConfig(c: MemoryLimiterConfig): ConfigProblem[] {
  const problems: ConfigProblem[] = [];
  const byMib = isSet(c.limit_mib);
  const byPct = isSet(c.limit_percentage);
  let interval = 0;
  try {
    interval = parseDuration(c.check_interval);
  } catch (e) {
    problems.push({ path: ['check_interval'], message: (e as Error).message });
  }
  if (interval <= 0) problems.push({ path: ['check_interval'], message: 'check_interval must be greater than 0' });
  if (!byMib && !byPct) {
    problems.push({ path: ['limit_mib'], message: 'set one of limit_mib or limit_percentage (both are unset)' });
  } else if (byMib && byPct) {
    problems.push({ path: ['limit_percentage'], message: 'set either limit_mib or limit_percentage, not both' });
  }
  if (byMib) {
    if (isSet(c.spike_limit_percentage)) {
      problems.push({
        path: ['spike_limit_percentage'],
        message: 'spike_limit_percentage goes with limit_percentage; with limit_mib use spike_limit_mib',
      });
    }
    if (c.spike_limit_mib !== undefined && c.spike_limit_mib >= c.limit_mib!) {
      problems.push({
        path: ['spike_limit_mib'],
        message: `spike_limit_mib (${c.spike_limit_mib}) must be smaller than limit_mib (${c.limit_mib})`,
      });
    }
  }
  if (byPct) {
    if (isSet(c.spike_limit_mib)) {
      problems.push({
        path: ['spike_limit_mib'],
        message: 'spike_limit_mib goes with limit_mib; with limit_percentage use spike_limit_percentage',
      });
    }
    if (c.spike_limit_percentage !== undefined && c.spike_limit_percentage >= c.limit_percentage!) {
      problems.push({
        path: ['spike_limit_percentage'],
        message: `spike_limit_percentage (${c.spike_limit_percentage}) must be smaller than limit_percentage (${c.limit_percentage})`,
      });
    }
  }
  return problems;
}
