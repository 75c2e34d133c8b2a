/** Factory for the `tail_sampling` processor. */
import type { ProcessorFactory } from '../../collector/component.js';
import { RetryableError } from '../../collector/errors.js';
import { TailSamplingConfigSchema, validateTailSamplingConfig, TAIL_SAMPLING_LIVE_SETTINGS } from './config.js';
import { TailSamplingProcessor } from './processor.js';

export { TailSamplingConfigSchema, validateTailSamplingConfig, type TailSamplingConfig } from './config.js';

export const tailSamplingProcessorFactory: ProcessorFactory<typeof TailSamplingConfigSchema> = {
  type: 'tail_sampling',
  kind: 'processor',
  configSchema: TailSamplingConfigSchema,
  validate: validateTailSamplingConfig,
  liveSettings: TAIL_SAMPLING_LIVE_SETTINGS,
  // Logs follow their trace's decision: the same id in a traces and a logs pipeline is one instance (attachLogs).
  signals: ['traces', 'logs'],
  sharedAcrossSignals: true,
  create(settings, config, next) {
    return new TailSamplingProcessor(settings, config, next);
  },
  /** Only in logs pipelines (no traces pipeline lists this id): records are decided by the policies on their trace id alone. */
  createLogs(settings, config, next) {
    const noTraces = { consume: () => Promise.reject(new RetryableError(`${settings.id}: no traces pipeline`)) };
    const p = new TailSamplingProcessor(settings, config, noTraces);
    p.attachLogs(next);
    return p;
  },
};
