/**
 * Config blocks for components that store data on disk. Not a component of its
 * own: the tail-sampling processor embeds `SpillDiskConfigSchema` as `disk`,
 * the exporter queue embeds `QueueDiskConfigSchema` for `storage: disk`.
 */
import { Type, type Static } from '@sinclair/typebox';

const Sync = Type.Union([Type.Literal('normal'), Type.Literal('full')], {
  default: 'normal',
  description:
    'normal: a commit is written to the WAL before it is acknowledged (survives kill -9, may lose the last commits on power loss or kernel crash); full: also fsynced (survives power loss; slower).',
});

export const SpillDiskConfigSchema = Type.Object(
  {
    directory: Type.String({ default: '', description: 'Directory for the spill database. Empty disables spilling.' }),
    sync: Sync,
    max_bytes: Type.Integer({ minimum: 0, default: 1024 * 1024 * 1024, description: 'Budget for spilled spans on disk (bytes).' }),
  },
  { additionalProperties: false, default: {} },
);
export type SpillDiskConfig = Static<typeof SpillDiskConfigSchema>;

export const QueueDiskConfigSchema = Type.Object(
  {
    directory: Type.String({ default: '', description: 'Directory for the queue database.' }),
    sync: Sync,
    max_bytes: Type.Integer({ minimum: 0, default: 1024 * 1024 * 1024, description: 'Budget for queued requests on disk (bytes).' }),
    when_full: Type.Union([Type.Literal('refuse'), Type.Literal('drop_oldest')], {
      default: 'refuse',
      description: 'refuse: reject new data with a retryable error; drop_oldest: drop the oldest requests not in flight (counted as queue_full).',
    }),
  },
  { additionalProperties: false, default: {} },
);
export type QueueDiskConfig = Static<typeof QueueDiskConfigSchema>;
